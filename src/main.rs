//! `backspace`: the server and its command line.

mod client;
mod config;

use anyhow::Context;
use backspace_core::backup::BackupSettings;
use backspace_core::{Core, OwnerSeed, Settings};
use backspace_meta::{redact, SqlStore};
use backspace_server::{AppState, ServerConfig};
use backspace_storage::LocalStore;
use backspace_types::dto::keys::CreateKeyRequest;
use clap::{Parser, Subcommand};
use client::KeysCommand;
use config::{Config, Overrides};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "backspace",
    version,
    about = "A backup server that speaks the ONLYOFFICE DocSpace backup API",
    after_help = "Client commands (backup, restore, schedule; keys and verify when --url is given) talk to a \
running server: --url / BACKSPACE_URL names it, --token / BACKSPACE_TOKEN is an API key or sign-in token \
of a portal admin. Exit codes: 0 success, 1 the operation failed, 2 usage error."
)]
struct Cli {
    #[command(flatten, next_help_heading = "Server options")]
    overrides: Overrides,
    #[command(flatten, next_help_heading = "Client options")]
    client: client::ClientArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Back up the portal, list, download and delete backups (client: needs --url and --token).
    Backup {
        #[command(subcommand)]
        command: client::BackupCommand,
    },
    /// Restore a backup into the portal (client: needs --url and --token).
    Restore(client::RestoreArgs),
    /// Show, set or delete the automatic backup schedule (client: needs --url and --token).
    Schedule {
        #[command(subcommand)]
        command: client::ScheduleCommand,
    },
    /// Manage API keys. With --url (or BACKSPACE_URL): through that server's API, as the
    /// --token's user. Without: `create` works offline on the local data directory and database,
    /// for the default portal's owner (how the first token is made); `list` and `revoke` need --url.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Open a backup repository directly, with the passphrase alone (no server, no database):
    /// what a new machine needs after the old one is lost.
    Repository {
        #[command(subcommand)]
        command: RepositoryCommand,
    },
    /// Read a backup back completely and check every chunk (or the whole archive). With --url
    /// (or BACKSPACE_URL), the server does it (API); without, it runs beside the server, on the
    /// same data directory and database. Exit code 0: intact; 1: damaged.
    Verify {
        /// The backup's id (its history id, which is its task id)
        id: String,
    },
}

/// Opens the metadata store, the file store and the services.
async fn open(config: &Config) -> anyhow::Result<Arc<Core>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory `{}`", config.data_dir.display()))?;
    let store = SqlStore::connect(&config.database_url)
        .await
        .with_context(|| format!("opening the metadata database `{}`", redact(&config.database_url)))?;
    let blobs: Arc<dyn backspace_storage::BlobStore> = match &config.files {
        config::FilesLocation::Local(dir) => Arc::new(
            LocalStore::open(dir)
                .await
                .with_context(|| format!("opening file storage `{}`", dir.display()))?,
        ),
        config::FilesLocation::S3(s3) => {
            let store = backspace_storage::ObjectStore::s3(s3).context("configuring S3 file storage")?;
            store.check().await.context("reaching S3 file storage")?;
            Arc::new(store)
        }
    };
    let settings = Settings {
        session_lifetime: Duration::from_secs(config.session_lifetime_days * 24 * 3600),
        password_salt: config.password_salt.clone(),
        max_upload_bytes: config.max_upload_bytes,
        backup: BackupSettings {
            local_roots: config.local_backup_roots.clone(),
            compression: config.compression,
            repository: config.repository.clone(),
            ..BackupSettings::default()
        },
        instance: config.instance_id.clone(),
        job_lease: Duration::from_secs(config.job_lease_seconds),
        ..Settings::default()
    };
    let core = Arc::new(Core::new(Arc::new(store), blobs, settings));
    let seed = OwnerSeed {
        alias: config.portal_alias.clone(),
        email: config.owner_email.clone(),
        password: config.owner_password.clone(),
    };
    if let Some(generated) = core
        .ensure_default_portal(seed)
        .await
        .context("creating the default portal")?
    {
        // Printed once, on the first start; never logged.
        println!("created the default portal; sign in as:");
        println!("  e-mail:   {}", generated.email);
        println!("  password: {}", generated.password);
    }
    Ok(core)
}

/// The background workers: the scheduler (every 30 s, so a backup starts within a minute of its
/// time; each due run is claimed in the database, so it fires once across instances), the
/// cleaner of expired backups and sessions (every 5 minutes, on the one instance holding its
/// lease), and the recovery of jobs whose instance died.
fn spawn_workers(core: Arc<Core>) -> Vec<tokio::task::JoinHandle<()>> {
    use backspace_types::datetime::now_ms;
    let every = |period: Duration,
                 name: &'static str,
                 core: Arc<Core>,
                 step: fn(Arc<Core>) -> futures_util::future::BoxFuture<'static, anyhow::Result<()>>| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = step(core.clone()).await {
                    tracing::warn!(worker = name, error = %e, "background step failed");
                }
            }
        })
    };
    vec![
        every(Duration::from_secs(30), "scheduler", core.clone(), |c| {
            Box::pin(async move {
                c.run_due_schedules(now_ms())
                    .await
                    .map(|_| ())
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })
        }),
        every(Duration::from_secs(300), "cleaner", core.clone(), |c| {
            Box::pin(async move {
                c.run_cleaner(now_ms())
                    .await
                    .map(|_| ())
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })
        }),
        // Jobs of instances that died are failed within about a lease period.
        every(
            Duration::from_secs((core.settings().job_lease.as_secs() / 2).max(1)),
            "recovery",
            core,
            |c| {
                Box::pin(async move {
                    c.recover_jobs(false)
                        .await
                        .map(|_| ())
                        .map_err(|e| anyhow::anyhow!("{e}"))
                })
            },
        ),
    ]
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let core = open(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let server_config = ServerConfig {
        registration: config.registration.clone(),
        max_json_bytes: config.max_json_bytes,
        public_url: config.public_url.clone(),
        secure_cookies: config.secure_cookies,
        metrics_token: config.metrics_token.clone(),
    };
    let recovered = core
        .recover_jobs(true)
        .await
        .context("recovering jobs interrupted by the last stop")?;
    if recovered > 0 {
        tracing::warn!(
            jobs = recovered,
            "jobs that were running when the server stopped are reported as failed"
        );
    }
    match (&config.repository.passphrase, config.repository.unencrypted) {
        (Some(_), _) => tracing::info!("backups to Local, DataStore and consumers go into encrypted repositories"),
        (None, true) => tracing::warn!("backup repositories are NOT encrypted (repository_unencrypted = true)"),
        (None, false) => tracing::info!(
            "no repository passphrase: every backup is one plain archive; set BACKSPACE_REPOSITORY_PASSPHRASE for incremental, encrypted backups"
        ),
    }
    let workers = spawn_workers(core.clone());
    println!("backspace listening on http://{addr}");
    tracing::info!(%addr, database = %redact(&config.database_url), data_dir = %config.data_dir.display(), "serving");
    let state = AppState {
        core,
        config: Arc::new(server_config),
    };
    backspace_server::serve(listener, state, shutdown_signal()).await?;
    for w in workers {
        w.abort();
    }
    Ok(())
}

async fn create_key(
    config: Config,
    name: String,
    permissions: Vec<String>,
    expires_in_days: Option<i64>,
    json: bool,
) -> anyhow::Result<()> {
    let core = open(&config).await?;
    let owner = core.default_owner().await?;
    let req = CreateKeyRequest {
        name: Some(name),
        permissions: (!permissions.is_empty()).then_some(permissions),
        expiresindays: expires_in_days,
    };
    let (key, plaintext) = core.create_key(&owner, req).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "created key `{}` ({}) for {} in portal `{}`",
        key.name, key.id, owner.user.email, owner.portal.alias
    );
    if json {
        let v = serde_json::json!({"id": key.id.to_string(), "name": key.name, "key": plaintext});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{plaintext}");
    }
    Ok(())
}

#[derive(clap::Subcommand)]
enum RepositoryCommand {
    /// List the backups (snapshots) in the repository at PATH.
    List {
        /// The repository's directory (`backspace-repository` inside a Local backup directory)
        path: std::path::PathBuf,
    },
    /// Write one backup of the repository at PATH as a standard archive, which any backspace
    /// restores (upload it, or restore it from a Local directory).
    Export {
        path: std::path::PathBuf,
        /// The snapshot id (the backup's id)
        id: String,
        /// Where to write the archive (`.tar.zst`)
        #[arg(short, long)]
        output: std::path::PathBuf,
    },
}

async fn open_repository(config: &Config, path: &std::path::Path) -> anyhow::Result<Arc<backspace_repo::Repository>> {
    use anyhow::Context;
    if !path.join("config").is_file() {
        anyhow::bail!("`{}` holds no backup repository (no `config` file)", path.display());
    }
    let store = backspace_storage::LocalStore::open(path)
        .await
        .with_context(|| format!("opening `{}`", path.display()))?;
    let passphrase = config.repository.passphrase.as_ref().map(|p| p.expose());
    let repo = backspace_repo::Repository::open(Arc::new(store), passphrase)
        .await
        .map_err(|e| anyhow::anyhow!("{e} (set BACKSPACE_REPOSITORY_PASSPHRASE)"))?;
    Ok(Arc::new(repo))
}

async fn repository(config: Config, command: RepositoryCommand) -> anyhow::Result<()> {
    match command {
        RepositoryCommand::List { path } => {
            let repo = open_repository(&config, &path).await?;
            let mut ids = repo.snapshots().await?;
            ids.sort();
            for id in ids {
                let snap = repo.snapshot(&id).await?;
                println!(
                    "{id}  {}  {} entries  {} bytes",
                    backspace_types::plain_utc(snap.created),
                    snap.entries.len(),
                    snap.size()
                );
            }
            Ok(())
        }
        RepositoryCommand::Export { path, id, output } => {
            let repo = open_repository(&config, &path).await?;
            let snap = repo.snapshot(&id).await?;
            let index = Arc::new(repo.load_index().await?);
            let handle = tokio::runtime::Handle::current();
            let out = output.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                use anyhow::Context;
                let partial = out.with_extension("partial");
                let file =
                    std::fs::File::create(&partial).with_context(|| format!("creating `{}`", partial.display()))?;
                let mut w = backspace_format::ArchiveWriter::new(
                    std::io::BufWriter::new(file),
                    backspace_format::Compression::Zstd,
                )?;
                for entry in &snap.entries {
                    let path = backspace_format::EntryPath::new(entry.name.clone())?;
                    let mut reader = repo.entry_reader(handle.clone(), index.clone(), entry)?;
                    w.add(&path, entry.size, &mut reader)?;
                }
                let (writer, _) = w.finish(snap.created, snap.meta.clone())?;
                writer.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::rename(&partial, &out)?;
                Ok(())
            })
            .await??;
            eprintln!("wrote backup {id} to {}", output.display());
            Ok(())
        }
    }
}

/// Libraries whose debug and trace events carry credentials (the S3 signer prints the access
/// and secret keys it tries): never logged below `info`, whatever `BACKSPACE_LOG` asks.
/// (A target matches its prefix; the full names also win over a more specific user directive.)
const SECRET_LOGGING_TARGETS: &[&str] = &[
    "reqsign",
    "reqsign_core",
    "reqsign_aws_core",
    "reqsign_aws_v4",
    "reqsign_google",
    "reqsign_file_read_tokio",
];

/// The log filter: `BACKSPACE_LOG` (default `info,sqlx=warn`), with [`SECRET_LOGGING_TARGETS`]
/// held at `info`.
fn log_filter(spec: Option<&str>) -> tracing_subscriber::EnvFilter {
    const DEFAULT: &str = "info,sqlx=warn";
    let spec = spec.filter(|s| !s.trim().is_empty()).unwrap_or(DEFAULT);
    let mut filter =
        tracing_subscriber::EnvFilter::try_new(spec).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT));
    for target in SECRET_LOGGING_TARGETS {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

fn main() -> anyhow::Result<()> {
    // Before the runtime starts its threads: arenas are made as threads first allocate.
    backspace_heap::tune();
    run()
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The client commands talk to a server: they need no server configuration.
    let has_url = cli.client.url.as_deref().is_some_and(|u| !u.trim().is_empty());
    let command = match cli.command {
        Command::Backup { command } => Err(client::Op::Backup(command)),
        Command::Restore(args) => Err(client::Op::Restore(args)),
        Command::Schedule { command } => Err(client::Op::Schedule(command)),
        Command::Keys { command } if has_url || !matches!(command, KeysCommand::Create { .. }) => {
            Err(client::Op::Keys(command))
        }
        Command::Verify { id } if has_url => Err(client::Op::Verify(id)),
        local => Ok(local),
    };
    let command = match command {
        Ok(local) => local,
        Err(op) => {
            let code = client::run(cli.client, op).await;
            use std::io::Write;
            let _ = std::io::stdout().flush();
            std::process::exit(code);
        }
    };
    let config = Config::resolve(&cli.overrides)?;
    let filter = log_filter(std::env::var("BACKSPACE_LOG").ok().as_deref());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_json {
        logs.json().flatten_event(true).init();
    } else {
        logs.init();
    }
    match command {
        Command::Serve => serve(config).await,
        Command::Keys {
            command:
                KeysCommand::Create {
                    name,
                    permissions,
                    expires_in_days,
                },
        } => create_key(config, name, permissions, expires_in_days, cli.client.json).await,
        Command::Verify { id } => verify(config, &id).await,
        Command::Repository { command } => repository(config, command).await,
        Command::Backup { .. } | Command::Restore(_) | Command::Schedule { .. } | Command::Keys { .. } => {
            unreachable!("client commands ran above")
        }
    }
}

async fn verify(config: Config, id: &str) -> anyhow::Result<()> {
    let id: backspace_types::TaskId = id
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("`{id}` is not a backup id (a GUID from the history)"))?;
    let core = open(&config).await?;
    let record = core
        .record_by_id(id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .filter(|r| !r.removed)
        .ok_or_else(|| anyhow::anyhow!("no backup `{id}` on this server"))?;
    let report = core.verify_record(&record).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.ok {
        eprintln!("backup {id} is damaged: {} bad chunk(s)", report.damaged.len());
        std::process::exit(1);
    }
    Ok(())
}

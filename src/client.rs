//! The command-line client: `backup`, `restore`, `schedule`, and `keys`/`verify` with `--url`,
//! through a running server's HTTP API.
//!
//! Output: human text on stdout by default; with `--json`, exactly one JSON document on stdout
//! (the API's `response`, or a small object for composite results). Progress bars, notes and
//! errors go to stderr. Exit codes: 0 success, 1 the operation failed, 2 usage error.

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use reqwest13 as reqwest;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The flags every client command shares.
#[derive(Debug, Default, clap::Args)]
pub struct ClientArgs {
    /// Address of the backspace server for the client commands (backup, restore, schedule; keys
    /// and verify go through it when given), e.g. http://127.0.0.1:8092
    #[arg(long, env = "BACKSPACE_URL", global = true, value_name = "URL")]
    pub url: Option<String>,
    /// Credential for --url: an API key (sk-…) or a sign-in token of a portal admin. Never printed
    #[arg(
        long,
        env = "BACKSPACE_TOKEN",
        global = true,
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Print one machine-readable JSON document on stdout (messages go to stderr, no progress bar)
    #[arg(long, global = true)]
    pub json: bool,
}

/// Where backups go: `--storage` and its `--param`s (for `backup start` and `schedule set`).
#[derive(Debug, clap::Args)]
pub struct StorageArgs {
    /// Where to store it: `temporary` (the server's data store; downloadable), `local:/abs/dir`
    /// (a directory on the server), `folder:ID` (a room or folder), `thirdparty:ID` (a folder
    /// of a connected third-party account), `consumer:MODULE` (e.g. `consumer:s3`, settings
    /// with --param)
    #[arg(long, default_value = "temporary", value_name = "STORAGE")]
    storage: String,
    /// A setting of a consumer storage, KEY=VALUE (repeatable), e.g. --param bucket=backups
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
}

impl StorageArgs {
    /// `storageType` and `storageParams` of the request.
    fn parse(&self) -> Result<(i64, Value)> {
        parse_storage(&self.storage, &self.params)
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum BackupCommand {
    /// Start a backup of the portal; with --wait, show its progress until it is done.
    Start {
        #[command(flatten)]
        storage: StorageArgs,
        /// Back up the whole server (every portal), not just the portal of --url
        #[arg(long)]
        dump: bool,
        /// Wait until the backup is done (exit code 1 if it fails)
        #[arg(long)]
        wait: bool,
    },
    /// Show the progress of the latest backup.
    Status {
        /// The whole-server backup's progress
        #[arg(long)]
        dump: bool,
    },
    /// List the stored backups, newest first.
    List {
        /// List whole-server backups
        #[arg(long)]
        dump: bool,
    },
    /// Delete a backup and its stored archive.
    Delete {
        /// The backup's id (or a unique prefix of it)
        id: String,
        /// The backup is a whole-server backup (only for an id prefix)
        #[arg(long)]
        dump: bool,
    },
    /// Download a backup's archive.
    Download {
        /// The backup's id (or a unique prefix of it)
        id: String,
        /// Where to write it [default: the backup's file name, in the current directory]
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Replace FILE if it exists
        #[arg(long)]
        force: bool,
        /// The backup is a whole-server backup
        #[arg(long)]
        dump: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup's id (or a unique prefix of it). Replaces the portal's data with the backup's
    #[arg(required_unless_present = "file")]
    pub id: Option<String>,
    /// Restore an archive file from this machine instead (a downloaded backup, `.tar.zst`,
    /// `.tar.gz` or `.tar`): it is uploaded to the server, checked there, and restored
    #[arg(long, value_name = "PATH", conflicts_with_all = ["id", "dump"])]
    pub file: Option<PathBuf>,
    /// Wait until the restore is done (exit code 1 if it fails)
    #[arg(long)]
    pub wait: bool,
    /// Restore a whole-server backup
    #[arg(long)]
    pub dump: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum ScheduleCommand {
    /// Show the automatic backup schedule and its next run.
    Get {
        /// The whole-server schedule
        #[arg(long)]
        dump: bool,
    },
    /// Create or replace the automatic backup schedule.
    Set {
        /// How often: daily, weekly or monthly
        #[arg(long, value_enum)]
        period: Period,
        /// Weekly: the weekday (sunday … saturday, or 1 = Sunday … 7); monthly: 1 to 31
        #[arg(long)]
        day: Option<String>,
        /// The hour of the day, 0 to 23, in the portal's time zone
        #[arg(long, value_parser = clap::value_parser!(i64).range(0..=23))]
        hour: i64,
        /// How many scheduled backups to keep, 1 to 30 (older ones are deleted) [default: 1]
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=30))]
        keep: Option<i64>,
        #[command(flatten)]
        storage: StorageArgs,
        /// Schedule whole-server backups
        #[arg(long)]
        dump: bool,
    },
    /// Delete the automatic backup schedule.
    Delete {
        /// The whole-server schedule
        #[arg(long)]
        dump: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Period {
    Daily,
    Weekly,
    Monthly,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create an API key and print it (once: it cannot be shown again). Works without --url:
    /// then on the local data directory and database, for the default portal's owner.
    Create {
        /// Name of the key (1 to 30 characters)
        #[arg(long)]
        name: String,
        /// Permissions, e.g. `*:read` (repeatable) [default: unrestricted]
        #[arg(long = "permission")]
        permissions: Vec<String>,
        /// Days until the key expires (1 to 365) [default: never]
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    /// List the API keys (needs --url).
    List,
    /// Revoke (delete) an API key (needs --url).
    Revoke {
        /// The key's id, as `keys list` shows it
        id: String,
    },
}

/// One remote operation.
#[derive(Debug)]
pub enum Op {
    Backup(BackupCommand),
    Restore(RestoreArgs),
    Schedule(ScheduleCommand),
    Keys(KeysCommand),
    Verify(String),
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Backup(_) => "backup",
            Op::Restore(_) => "restore",
            Op::Schedule(_) => "schedule",
            Op::Keys(KeysCommand::Create { .. }) => "keys create",
            Op::Keys(KeysCommand::List) => "keys list",
            Op::Keys(KeysCommand::Revoke { .. }) => "keys revoke",
            Op::Verify(_) => "verify",
        }
    }
}

/// Why a command did not succeed, with its exit code and what to do.
#[derive(Debug)]
pub struct Failure {
    code: i32,
    message: String,
    hint: Option<String>,
}

type Result<T> = std::result::Result<T, Failure>;

/// Exit code 1: the operation failed.
fn failed(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
        hint: None,
    }
}

/// Exit code 2: the command line is wrong.
fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
        hint: None,
    }
}

impl Failure {
    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Runs `op` against the server and returns the process's exit code.
pub async fn run(args: ClientArgs, op: Op) -> i32 {
    let name = op.name();
    let waits = matches!(
        &op,
        Op::Backup(BackupCommand::Start { wait: true, .. }) | Op::Restore(RestoreArgs { wait: true, .. })
    );
    let result = tokio::select! {
        r = dispatch(&args, op) => r,
        // Dropping the operation removes a partial download.
        _ = tokio::signal::ctrl_c() => {
            let f = failed("interrupted");
            Err(match (waits, name) {
                (true, "backup") => f.hint("the backup goes on on the server: `backspace backup status` shows it"),
                (true, _) => f.hint("the restore goes on on the server; the portal answers again when it is done"),
                _ => f,
            })
        }
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {}", f.message);
            if let Some(h) = f.hint {
                eprintln!("hint: {h}");
            }
            f.code
        }
    }
}

async fn dispatch(args: &ClientArgs, op: Op) -> Result<i32> {
    let api = Api::new(args, op.name())?;
    let out = Out { json: args.json };
    match op {
        Op::Backup(BackupCommand::Start { storage, dump, wait }) => {
            backup_start(&api, &out, &storage, dump, wait).await
        }
        Op::Backup(BackupCommand::Status { dump }) => backup_status(&api, &out, dump).await,
        Op::Backup(BackupCommand::List { dump }) => backup_list(&api, &out, dump).await,
        Op::Backup(BackupCommand::Delete { id, dump }) => backup_delete(&api, &out, &id, dump).await,
        Op::Backup(BackupCommand::Download {
            id,
            output,
            force,
            dump,
        }) => backup_download(&api, &out, &id, output, force, dump).await,
        Op::Restore(args) => restore(&api, &out, args).await,
        Op::Schedule(ScheduleCommand::Get { dump }) => schedule_get(&api, &out, dump).await,
        Op::Schedule(ScheduleCommand::Set {
            period,
            day,
            hour,
            keep,
            storage,
            dump,
        }) => {
            let day = schedule_day(period, day.as_deref())?;
            let (storage_type, storage_params) = storage.parse()?;
            let mut body = json!({
                "storageType": storage_type,
                "storageParams": storage_params,
                "cronParams": {"period": period as i64, "hour": hour, "day": day},
                "dump": dump,
            });
            if let Some(keep) = keep {
                body["backupsStored"] = json!(keep);
            }
            api.post(&with_dump("/api/2.0/backup/createbackupschedule", dump), body)
                .await?;
            let schedule = api.get(&with_dump("/api/2.0/backup/getbackupschedule", dump)).await?;
            if out.json {
                out.print(&schedule);
            } else {
                println!("backup schedule set");
                print_schedule(&schedule);
            }
            Ok(0)
        }
        Op::Schedule(ScheduleCommand::Delete { dump }) => {
            let deleted = api
                .delete(&with_dump("/api/2.0/backup/deletebackupschedule", dump))
                .await?;
            let deleted = deleted.as_bool().unwrap_or(false);
            if out.json {
                out.print(&json!({"deleted": deleted}));
            } else if deleted {
                println!("deleted the backup schedule");
            } else {
                println!("there was no backup schedule");
            }
            Ok(0)
        }
        Op::Keys(command) => keys(&api, &out, command).await,
        Op::Verify(id) => verify(&api, &out, &id).await,
    }
}

/// Where output goes.
struct Out {
    json: bool,
}

impl Out {
    /// The one JSON document of a `--json` run.
    fn print(&self, v: &Value) {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
    }

    /// A progress bar on stderr with percentages; hidden with `--json` (and, by indicatif,
    /// when stderr is not a terminal).
    fn bar(&self, message: &str, len: Option<u64>, bytes: bool) -> ProgressBar {
        if self.json {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(len, indicatif::ProgressDrawTarget::stderr());
        let template = match (bytes, len.is_some()) {
            (true, true) => "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            (true, false) => "{spinner} {msg} {bytes} {bytes_per_sec}",
            (false, _) => "{spinner} {msg} [{bar:30}] {pos:>3}% {elapsed}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// The HTTP client of one server.
struct Api {
    http: reqwest::Client,
    /// The base URL without a trailing slash.
    base: String,
    token: String,
}

impl Api {
    fn new(args: &ClientArgs, command: &str) -> Result<Self> {
        let url = args
            .url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                let offline = if command.starts_with("keys") {
                    " (without a server, on its data directory, only `keys create` and `verify` work)"
                } else {
                    ""
                };
                usage(format!(
                    "`backspace {command}` talks to a server: pass --url URL or set BACKSPACE_URL{offline}"
                ))
                .hint("e.g. --url http://127.0.0.1:8092 (the address `backspace serve` prints)")
            })?;
        let url = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| usage(format!("--url `{url}` is not a URL: {e}")).hint("e.g. --url http://127.0.0.1:8092"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(usage(format!("--url `{url}` must be an http:// or https:// address")));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() || parsed.query().is_some() {
            return Err(usage(
                "--url takes the server's address only; pass the credential with --token",
            ));
        }
        let token = args
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                usage("no credential: pass --token TOKEN or set BACKSPACE_TOKEN").hint(
                    "create an API key with `backspace keys create --name cli` on the server's machine (it needs no server running)",
                )
            })?
            .to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("backspace-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| failed(format!("setting up the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.token))
            .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
        auth.set_sensitive(true);
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, auth)
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.send(
            self.request(reqwest::Method::GET, path)
                .timeout(Duration::from_secs(120)),
        )
        .await
    }

    /// A GET without a time limit (verification reads a whole backup).
    async fn get_slow(&self, path: &str) -> Result<Value> {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.send(
            self.request(reqwest::Method::POST, path)
                .timeout(Duration::from_secs(120))
                .json(&body),
        )
        .await
    }

    async fn delete(&self, path: &str) -> Result<Value> {
        self.send(
            self.request(reqwest::Method::DELETE, path)
                .timeout(Duration::from_secs(120)),
        )
        .await
    }

    /// One call of `/backupFileUpload.ashx` (its own answer shape, not the API envelope): the
    /// `Init` call without a body, or a chunk as a multipart `file` part.
    async fn upload_chunk(&self, query: &str, chunk: Option<&[u8]>) -> Result<Value> {
        let mut req = self
            .request(reqwest::Method::POST, &format!("/backupFileUpload.ashx{query}"))
            .timeout(Duration::from_secs(600));
        if let Some(chunk) = chunk {
            // Random per call (std's hasher keys are): no chunk can be made to contain it.
            let boundary = {
                use std::hash::{BuildHasher, Hasher};
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_usize(chunk.len());
                format!("backspace-{:016x}", h.finish())
            };
            let mut body = Vec::with_capacity(chunk.len() + 256);
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"chunk\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(chunk);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            req = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body);
        }
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.transport(e))?;
        let reply: Value = serde_json::from_str(&text).map_err(|_| {
            failed(format!(
                "the server at {} did not answer the upload with the backspace API (HTTP {status})",
                self.base
            ))
        })?;
        if reply["Success"] != true {
            let message = reply["Message"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| reply["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(failed(format!("the upload was refused: {message}")));
        }
        Ok(reply)
    }

    /// What went wrong on the way to the server.
    fn transport(&self, e: reqwest::Error) -> Failure {
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        if e.is_connect() {
            failed(format!("cannot connect to {}: {detail}", self.base)).hint(format!(
                "is the server running at {}? check --url / BACKSPACE_URL",
                self.base
            ))
        } else if e.is_timeout() {
            failed(format!("the server at {} did not answer in time", self.base))
                .hint("try again; the server's log tells why it is slow")
        } else {
            failed(format!("the request to {} failed: {detail}", self.base))
        }
    }

    /// Sends a request and returns the envelope's `response` (`Null` when absent).
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.transport(e))?;
        let body: Option<Value> = serde_json::from_str(&text).ok();
        let envelope = body.as_ref().filter(|v| {
            v.is_object() && (v.get("response").is_some() || v.get("statusCode").is_some() || v.get("error").is_some())
        });
        let code = envelope
            .and_then(|v| v["statusCode"].as_u64())
            .unwrap_or(status.as_u16() as u64);
        if status.is_success() && code < 400 {
            return match envelope {
                Some(v) => Ok(v.get("response").cloned().unwrap_or(Value::Null)),
                None => Err(failed(format!(
                    "the server at {} did not answer with the backspace API (HTTP {status})",
                    self.base
                ))
                .hint("check --url: it is the server's base address, e.g. http://127.0.0.1:8092")),
            };
        }
        Err(api_failure(code as u16, envelope, &self.base))
    }
}

/// An error answer of the API, as `error: …` and a hint.
fn api_failure(code: u16, body: Option<&Value>, base: &str) -> Failure {
    let mut message = body
        .and_then(|b| b["error"]["message"].as_str())
        .unwrap_or("")
        .trim()
        .to_owned();
    if message.is_empty() {
        // A validation problem: `response.errors` of field → messages.
        if let Some(errors) = body.and_then(|b| b["response"]["errors"].as_object()) {
            message = errors
                .iter()
                .flat_map(|(field, list)| {
                    let list = list.as_array().cloned().unwrap_or_default();
                    list.into_iter()
                        .map(move |m| format!("{field}: {}", m.as_str().unwrap_or_default()))
                })
                .collect::<Vec<_>>()
                .join("; ");
        }
    }
    if message.is_empty() {
        message = match code {
            401 => "the server did not accept the credential".to_owned(),
            403 => "access denied".to_owned(),
            404 => "not found".to_owned(),
            _ => format!("the server answered HTTP {code}"),
        };
    }
    let f = failed(format!("{message} (HTTP {code})"));
    match code {
        401 => f.hint(
            "check --token / BACKSPACE_TOKEN: it must be a valid API key (sk-…) or sign-in token of this server's portal; `backspace keys create --name cli` on the server's machine makes one",
        ),
        403 => f.hint(
            "the token's user must be the portal's owner or an admin, and an API key needs the `*:write` permission (`*:read` for reading)",
        ),
        404 if body.is_none() => f.hint(format!(
            "is {base} a backspace server? --url is its base address, e.g. http://127.0.0.1:8092"
        )),
        500.. => f.hint("the server's log has the details"),
        _ => f,
    }
}

/// `path` with `?dump=true` when `dump`.
fn with_dump(path: &str, dump: bool) -> String {
    if dump {
        format!("{path}?dump=true")
    } else {
        path.to_owned()
    }
}

/// Parses `--storage` and `--param`s into `storageType` and `storageParams`.
fn parse_storage(spec: &str, params: &[String]) -> Result<(i64, Value)> {
    let pair = |k: &str, v: &str| json!({"key": k, "value": v});
    let (kind, arg) = match spec.split_once(':') {
        Some((k, a)) => (k.trim().to_ascii_lowercase(), Some(a.trim())),
        None => (spec.trim().to_ascii_lowercase(), None),
    };
    let bad = |why: &str| {
        usage(format!("--storage `{spec}`: {why}"))
            .hint("use temporary, local:/abs/dir, folder:ID, thirdparty:ID, or consumer:MODULE with --param KEY=VALUE")
    };
    if !params.is_empty() && kind != "consumer" {
        return Err(usage("--param is for consumer storage (--storage consumer:MODULE)"));
    }
    let id = |a: Option<&str>| -> Result<String> {
        match a {
            Some(id) if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) => Ok(id.to_owned()),
            _ => Err(bad("the folder id is a number, e.g. folder:12")),
        }
    };
    Ok(match (kind.as_str(), arg) {
        ("temporary" | "datastore", None) => (4, json!([])),
        ("local", Some(dir)) if Path::new(dir).is_absolute() => (3, json!([pair("filePath", dir)])),
        ("local", _) => {
            return Err(bad(
                "a local directory is an absolute path on the server, e.g. local:/srv/backups",
            ))
        }
        ("folder" | "room", a) => (0, json!([pair("folderId", &id(a)?)])),
        ("thirdparty", a) => (1, json!([pair("folderId", &id(a)?)])),
        ("consumer", Some(module)) if !module.is_empty() => {
            let mut list = vec![pair("module", module)];
            let mut seen = std::collections::BTreeSet::new();
            for p in params {
                let (k, v) = p
                    .split_once('=')
                    .filter(|(k, _)| !k.trim().is_empty())
                    .ok_or_else(|| usage(format!("--param `{p}` is not KEY=VALUE")))?;
                let k = k.trim();
                if k.eq_ignore_ascii_case("module") {
                    return Err(usage("the module is named by --storage consumer:MODULE, not --param"));
                }
                if !seen.insert(k.to_ascii_lowercase()) {
                    return Err(usage(format!("--param `{k}` is given twice")));
                }
                list.push(pair(k, v));
            }
            (5, Value::Array(list))
        }
        ("consumer", _) => return Err(bad("name the consumer, e.g. consumer:s3")),
        _ => return Err(bad("unknown storage")),
    })
}

/// A storage type and parameters as people read them.
fn describe_storage(storage_type: &Value, params: &Value) -> String {
    let param = |k: &str| {
        params
            .as_object()
            .and_then(|m| m.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    match storage_number(storage_type) {
        Some(0) => format!("folder:{}", param("folderId")),
        Some(1) => format!("thirdparty:{}", param("folderId")),
        Some(2) => "custom".to_owned(),
        Some(3) => {
            let dir = param("filePath");
            let dir = if dir.is_empty() { param("folderId") } else { dir };
            format!("local:{dir}")
        }
        Some(4) => "temporary".to_owned(),
        Some(5) => format!("consumer:{}", param("module")),
        _ => storage_type.to_string(),
    }
}

fn storage_number(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| match v.as_str()? {
        "Documents" => Some(0),
        "ThridpartyDocuments" => Some(1),
        "CustomCloud" => Some(2),
        "Local" => Some(3),
        "DataStore" => Some(4),
        "ThirdPartyConsumer" => Some(5),
        _ => None,
    })
}

fn storage_name(v: &Value) -> String {
    match storage_number(v) {
        Some(0) => "folder",
        Some(1) => "thirdparty",
        Some(2) => "custom",
        Some(3) => "local",
        Some(4) => "temporary",
        Some(5) => "consumer",
        _ => "?",
    }
    .to_owned()
}

/// An API date (`2026-01-31T10:00:00Z`) as `2026-01-31 10:00`; DocSpace's "never" as `never`.
fn date(v: &Value) -> String {
    let s = v.as_str().unwrap_or("");
    if s.is_empty() || s.starts_with("0001-01-01") {
        return "never".to_owned();
    }
    let s = s.replacen('T', " ", 1);
    s.chars().take(16).collect()
}

/// Prints rows under a header, columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn is_full_id(id: &str) -> bool {
    let hex = id.chars().filter(char::is_ascii_hexdigit).count();
    hex == 32 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The history record of `id` (or of the one backup whose id starts with it).
async fn find_record(api: &Api, id: &str, dump: bool) -> Result<Value> {
    let history = api.get(&with_dump("/api/2.0/backup/getbackuphistory", dump)).await?;
    let want = id.trim().to_ascii_lowercase();
    if want.is_empty() {
        return Err(usage("the backup id is empty"));
    }
    let records = history.as_array().cloned().unwrap_or_default();
    let matches: Vec<&Value> = records
        .iter()
        .filter(|r| {
            let rid = str_of(&r["id"]).to_ascii_lowercase();
            rid == want || (!is_full_id(&want) && rid.starts_with(&want))
        })
        .collect();
    let hint = if dump {
        "`backspace backup list --dump` shows the whole-server backups"
    } else {
        "`backspace backup list` shows the backups (whole-server ones: with --dump)"
    };
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(failed(format!("no backup `{id}` on the server")).hint(hint)),
        many => Err(failed(format!("`{id}` is the start of {} backups' ids", many.len()))
            .hint("give more of the id: `backspace backup list` shows them")),
    }
}

/// `id` as a full backup id: as given, or the one whose id starts with it.
async fn resolve_id(api: &Api, id: &str, dump: bool) -> Result<String> {
    let id = id.trim();
    if is_full_id(id) {
        return Ok(id.to_owned());
    }
    Ok(str_of(&find_record(api, id, dump).await?["id"]))
}

/// Polls `path` (a job progress) every half second until the job `task` is completed, showing
/// a progress bar; returns the last progress.
async fn wait_job(api: &Api, out: &Out, path: &str, task: &str, what: &str) -> Result<Value> {
    let bar = out.bar(what, Some(100), false);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut absent = 0;
    let result = loop {
        tick.tick().await;
        let progress = match api.get(path).await {
            Ok(p) => p,
            Err(e) => break Err(e),
        };
        if progress.is_null() {
            // The job is not visible yet (or at all): give it a few seconds.
            absent += 1;
            if absent > 20 {
                break Err(failed(format!("the server shows no {what} job")).hint("the server's log tells why"));
            }
            continue;
        }
        let this = str_of(&progress["taskId"]).eq_ignore_ascii_case(task) || task.is_empty();
        if !this {
            // A newer job replaced ours: ours is over.
            break Ok(progress);
        }
        bar.set_position(progress["progress"].as_u64().unwrap_or(0).min(100));
        if progress["isCompleted"] == true {
            break Ok(progress);
        }
    };
    bar.finish_and_clear();
    result
}

async fn backup_start(api: &Api, out: &Out, storage: &StorageArgs, dump: bool, wait: bool) -> Result<i32> {
    let (storage_type, storage_params) = storage.parse()?;
    let mut body = json!({"storageType": storage_type, "storageParams": storage_params});
    if dump {
        body["dump"] = json!(true);
    }
    let started = api.post("/api/2.0/backup/startbackup", body).await?;
    let task = str_of(&started["taskId"]);
    if !wait {
        if out.json {
            out.print(&started);
        } else {
            println!("{task}");
            let status = if dump {
                "backspace backup status --dump"
            } else {
                "backspace backup status"
            };
            eprintln!("backup {task} started; `{status}` shows its progress");
        }
        return Ok(0);
    }
    let path = with_dump("/api/2.0/backup/getbackupprogress", dump);
    let done = wait_job(api, out, &path, &task, "backup").await?;
    if str_of(&done["taskId"]).eq_ignore_ascii_case(&task) {
        let error = str_of(&done["error"]);
        if !error.is_empty() || done["status"] == 4 || done["status"] == 3 {
            if out.json {
                out.print(&done);
            }
            let error = if error.is_empty() {
                "cancelled".to_owned()
            } else {
                error
            };
            return Err(failed(format!("backup {task} failed: {error}")));
        }
        if out.json {
            out.print(&done);
            return Ok(0);
        }
    }
    // Done (or replaced by a newer job): the history tells whether it was stored.
    let record = find_record(api, &task, dump).await.map_err(|_| {
        failed(format!(
            "backup {task} is not in the history: it failed or was cancelled"
        ))
        .hint("the server's log tells why")
    })?;
    if out.json {
        out.print(&done);
    } else {
        println!(
            "backup {task} done: {} ({})",
            str_of(&record["fileName"]),
            HumanBytes(record["size"].as_u64().unwrap_or(0))
        );
    }
    Ok(0)
}

async fn backup_status(api: &Api, out: &Out, dump: bool) -> Result<i32> {
    let progress = api.get(&with_dump("/api/2.0/backup/getbackupprogress", dump)).await?;
    if out.json {
        out.print(&progress);
        return Ok(0);
    }
    if progress.is_null() {
        println!("no backup has run yet");
        return Ok(0);
    }
    let task = str_of(&progress["taskId"]);
    let error = str_of(&progress["error"]);
    if progress["isCompleted"] != true {
        println!("backup {task}: running, {}%", progress["progress"]);
    } else if !error.is_empty() {
        println!("backup {task}: failed: {error}");
    } else if progress["status"] == 3 {
        println!("backup {task}: cancelled");
    } else {
        println!("backup {task}: done");
    }
    Ok(0)
}

async fn backup_list(api: &Api, out: &Out, dump: bool) -> Result<i32> {
    let history = api.get(&with_dump("/api/2.0/backup/getbackuphistory", dump)).await?;
    if out.json {
        out.print(&history);
        return Ok(0);
    }
    let mut records = history.as_array().cloned().unwrap_or_default();
    if records.is_empty() {
        eprintln!("no backups");
        return Ok(0);
    }
    records.sort_by(|a, b| str_of(&b["createdOn"]).cmp(&str_of(&a["createdOn"])));
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                str_of(&r["id"]),
                str_of(&r["fileName"]),
                storage_name(&r["storageType"]),
                r["size"]
                    .as_u64()
                    .map(|n| HumanBytes(n).to_string())
                    .unwrap_or_default(),
                date(&r["createdOn"]),
                date(&r["expiresOn"]),
            ]
        })
        .collect();
    table(
        &["ID", "NAME", "STORAGE", "SIZE", "CREATED (UTC)", "EXPIRES (UTC)"],
        &rows,
    );
    Ok(0)
}

async fn backup_delete(api: &Api, out: &Out, id: &str, dump: bool) -> Result<i32> {
    let id = resolve_id(api, id, dump).await?;
    let deleted = api.delete(&format!("/api/2.0/backup/deletebackup/{id}")).await?;
    if deleted == false {
        return Err(failed(format!("the server did not delete backup {id}")));
    }
    if out.json {
        out.print(&json!({"id": id, "deleted": true}));
    } else {
        println!("deleted backup {id}");
    }
    Ok(0)
}

/// A file that is removed when dropped, unless kept.
struct Partial {
    path: PathBuf,
    keep: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn backup_download(
    api: &Api,
    out: &Out,
    id: &str,
    output: Option<PathBuf>,
    force: bool,
    dump: bool,
) -> Result<i32> {
    let exists = |p: &Path| {
        failed(format!("`{}` exists; it was left as it is", p.display()))
            .hint("pass --force to replace it, or -o FILE to write elsewhere")
    };
    if let Some(o) = &output {
        if o.is_dir() {
            return Err(usage(format!(
                "`{}` is a directory; -o names the file to write",
                o.display()
            )));
        }
        if !force && o.exists() {
            return Err(exists(o));
        }
    }
    let record = find_record(api, id, dump).await?;
    let id = str_of(&record["id"]);
    let link = str_of(&record["link"]);
    if link.is_empty() {
        return Err(failed(format!("the server gives no download link for backup {id}")));
    }
    let target = match output {
        Some(o) => o,
        None => {
            let name = str_of(&record["fileName"]);
            // Only a plain file name from the server: never a path.
            let name = Path::new(&name)
                .file_name()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| failed(format!("backup {id} has no file name")).hint("pass -o FILE"))?
                .to_owned();
            PathBuf::from(name)
        }
    };
    if !force && target.exists() {
        return Err(exists(&target));
    }
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = target
        .file_name()
        .ok_or_else(|| usage(format!("`{}` names no file", target.display())))?
        .to_string_lossy()
        .into_owned();
    let mut req = if link.starts_with("http://") || link.starts_with("https://") {
        // A link elsewhere (a storage's own URL) gets no credential of ours.
        api.http.get(&link)
    } else {
        api.request(reqwest::Method::GET, &link)
    };
    req = req.header(reqwest::header::ACCEPT, "application/octet-stream");
    let mut resp = req.send().await.map_err(|e| api.transport(e))?;
    if !resp.status().is_success() {
        let code = resp.status().as_u16();
        let body: Option<Value> = resp.json().await.ok();
        return Err(api_failure(code, body.as_ref(), &api.base));
    }
    let expected = resp.content_length();
    let partial = Partial {
        path: dir.join(format!(".{file_name}.{}.partial", std::process::id())),
        keep: false,
    };
    let file = tokio::fs::File::create(&partial.path).await.map_err(|e| {
        failed(format!("cannot create `{}`: {e}", partial.path.display()))
            .hint("check that the directory exists and is writable")
    })?;
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let bar = out.bar(&format!("downloading {file_name}"), expected, true);
    let mut written: u64 = 0;
    let write_err = |e: std::io::Error| failed(format!("writing `{}`: {e}", partial.path.display()));
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                bar.finish_and_clear();
                return Err(api.transport(e));
            }
        };
        use tokio::io::AsyncWriteExt;
        file.write_all(&chunk).await.map_err(write_err)?;
        written += chunk.len() as u64;
        bar.set_position(written);
    }
    bar.finish_and_clear();
    {
        use tokio::io::AsyncWriteExt;
        file.flush().await.map_err(write_err)?;
    }
    let file = file.into_inner();
    file.sync_all().await.map_err(write_err)?;
    drop(file);
    if let Some(n) = expected {
        if n != written {
            return Err(failed(format!(
                "the download of backup {id} ended after {written} of {n} bytes"
            ))
            .hint("try again"));
        }
    }
    if force {
        std::fs::rename(&partial.path, &target).map_err(|e| failed(format!("writing `{}`: {e}", target.display())))?;
    } else {
        // A hard link fails when the target appeared meanwhile: nothing is ever overwritten.
        match std::fs::hard_link(&partial.path, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists(&target)),
            Err(_) if !target.exists() => std::fs::rename(&partial.path, &target)
                .map_err(|e| failed(format!("writing `{}`: {e}", target.display())))?,
            Err(_) => return Err(exists(&target)),
        }
    }
    drop(partial);
    if out.json {
        out.print(&json!({"id": id, "file": target.display().to_string(), "bytes": written}));
    } else {
        println!("{}  {written} bytes", target.display());
    }
    Ok(0)
}

async fn restore(api: &Api, out: &Out, args: RestoreArgs) -> Result<i32> {
    let (id, body) = match (&args.file, &args.id) {
        (Some(file), _) => {
            upload_archive(api, out, file).await?;
            // An uploaded archive is restored as a `Local` one, whatever `filePath` says.
            let body = json!({"backupId": "", "storageType": "Local", "storageParams": [{"key": "filePath", "value": "upload"}]});
            (file.display().to_string(), body)
        }
        (None, Some(id)) => {
            let id = resolve_id(api, id, args.dump).await?;
            let mut body = json!({"backupId": id});
            if args.dump {
                body["dump"] = json!(true);
            }
            (id, body)
        }
        (None, None) => return Err(usage("name a backup id, or an archive with --file")),
    };
    let started = api.post("/api/2.0/backup/startrestore", body).await?;
    let task = str_of(&started["taskId"]);
    if !args.wait {
        if out.json {
            out.print(&started);
        } else {
            println!("{task}");
            eprintln!("restore of backup {id} started; the portal answers again when it is done");
        }
        return Ok(0);
    }
    let path = with_dump("/api/2.0/backup/getrestoreprogress", args.dump);
    let done = wait_job(api, out, &path, &task, "restore").await?;
    let error = str_of(&done["error"]);
    if out.json {
        out.print(&done);
    }
    if !error.is_empty() || done["status"] == 4 {
        return Err(
            failed(format!("the restore of backup {id} failed: {error}")).hint("the server's log has the details")
        );
    }
    if !out.json {
        println!("restored backup {id}");
    }
    Ok(0)
}

/// Uploads an archive file through `/backupFileUpload.ashx` (DocSpace's restore upload: an `Init`
/// call with the size, then the bytes in chunks of the size the server names).
async fn upload_archive(api: &Api, out: &Out, file: &Path) -> Result<()> {
    use tokio::io::AsyncReadExt;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let Some(extension) = ["tar.zst", "tar.gz", "tar"]
        .into_iter()
        .find(|e| name.ends_with(&format!(".{e}")))
    else {
        return Err(usage(format!(
            "{}: not a backup archive (its name ends in .tar.zst, .tar.gz or .tar)",
            file.display()
        )));
    };
    let mut reader = tokio::fs::File::open(file)
        .await
        .map_err(|e| usage(format!("{}: {e}", file.display())))?;
    let total = reader
        .metadata()
        .await
        .map_err(|e| usage(format!("{}: {e}", file.display())))?
        .len();
    if total == 0 {
        return Err(usage(format!("{}: the file is empty", file.display())));
    }
    let init = api
        .upload_chunk(&format!("?Init=true&totalSize={total}&extension={extension}"), None)
        .await?;
    let chunk_size = init["ChunkSize"].as_u64().filter(|n| *n > 0).unwrap_or(8 << 20) as usize;
    let bar = (!out.json).then(|| {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("uploading {bytes}/{total_bytes} {wide_bar} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let mut sent = 0u64;
    let mut buf = vec![0u8; chunk_size];
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = reader
                .read(&mut buf[filled..])
                .await
                .map_err(|e| failed(format!("reading {}: {e}", file.display())))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        let reply = api.upload_chunk("", Some(&buf[..filled])).await?;
        sent += filled as u64;
        if let Some(bar) = &bar {
            bar.set_position(sent);
        }
        if reply["EndUpload"] == true {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if sent != total {
        return Err(failed(format!(
            "{} changed while it was uploaded ({sent} of {total} bytes sent)",
            file.display()
        )));
    }
    Ok(())
}

/// `cronParams.day` from `--day`.
fn schedule_day(period: Period, day: Option<&str>) -> Result<i64> {
    const WEEKDAYS: [&str; 7] = [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    match (period, day.map(|d| d.trim().to_ascii_lowercase())) {
        (Period::Daily, None) => Ok(0),
        (Period::Daily, Some(_)) => Err(usage("a daily schedule takes no --day")),
        (Period::Weekly, None) => Err(usage("a weekly schedule needs --day, e.g. --day sunday")),
        (Period::Weekly, Some(d)) => {
            if let Ok(n) = d.parse::<i64>() {
                return if (1..=7).contains(&n) {
                    Ok(n)
                } else {
                    Err(usage(format!("--day {n}: weekdays are 1 (Sunday) to 7 (Saturday)")))
                };
            }
            WEEKDAYS
                .iter()
                .position(|w| d.len() >= 3 && w.starts_with(d.as_str()))
                .map(|i| i as i64 + 1)
                .ok_or_else(|| usage(format!("--day `{d}` is not a weekday (sunday … saturday)")))
        }
        (Period::Monthly, None) => Err(usage("a monthly schedule needs --day, 1 to 31")),
        (Period::Monthly, Some(d)) => match d.parse::<i64>() {
            Ok(n) if (1..=31).contains(&n) => Ok(n),
            _ => Err(usage(format!("--day `{d}`: a monthly schedule's day is 1 to 31"))),
        },
    }
}

fn print_schedule(s: &Value) {
    const WEEKDAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let cron = &s["cronParams"];
    let hour = cron["hour"].as_i64().unwrap_or(0);
    let day = cron["day"].as_i64().unwrap_or(0);
    let when = match cron["period"].as_i64() {
        Some(1) => format!(
            "weekly, {} at {hour:02}:00",
            WEEKDAYS.get((day - 1).clamp(0, 6) as usize).copied().unwrap_or("?")
        ),
        Some(2) => format!("monthly, day {day} at {hour:02}:00"),
        _ => format!("daily at {hour:02}:00"),
    };
    println!("  when:     {when} (the portal's time zone)");
    println!(
        "  storage:  {}",
        describe_storage(&s["storageType"], &s["storageParams"])
    );
    if let Some(keep) = s["backupsStored"].as_i64() {
        println!("  keep:     {keep} backup{}", if keep == 1 { "" } else { "s" });
    }
    if s["dump"] == true {
        println!("  scope:    the whole server");
    }
    println!("  last run: {}", date(&s["lastBackupTime"]));
    let next = &s["nextBackupTime"];
    println!(
        "  next run: {}",
        if next.is_null() {
            "unknown".to_owned()
        } else {
            format!("{} UTC", date(next))
        }
    );
}

async fn schedule_get(api: &Api, out: &Out, dump: bool) -> Result<i32> {
    let schedule = api.get(&with_dump("/api/2.0/backup/getbackupschedule", dump)).await?;
    if out.json {
        out.print(&schedule);
    } else if schedule.is_null() {
        println!("no backup schedule");
    } else {
        println!("backup schedule");
        print_schedule(&schedule);
    }
    Ok(0)
}

async fn keys(api: &Api, out: &Out, command: KeysCommand) -> Result<i32> {
    match command {
        KeysCommand::Create {
            name,
            permissions,
            expires_in_days,
        } => {
            let mut body = json!({"name": name});
            if !permissions.is_empty() {
                body["permissions"] = json!(permissions);
            }
            if let Some(d) = expires_in_days {
                body["expiresInDays"] = json!(d);
            }
            let key = api.post("/api/2.0/keys", body).await?;
            if out.json {
                out.print(&key);
            } else {
                eprintln!(
                    "created key `{}` ({}); it is shown only now:",
                    str_of(&key["name"]),
                    str_of(&key["id"])
                );
                println!("{}", str_of(&key["key"]));
            }
            Ok(0)
        }
        KeysCommand::List => {
            let list = api.get("/api/2.0/keys").await?;
            if out.json {
                out.print(&list);
                return Ok(0);
            }
            let keys = list.as_array().cloned().unwrap_or_default();
            if keys.is_empty() {
                eprintln!("no API keys");
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    let permissions = k["permissions"]
                        .as_array()
                        .map(|p| p.iter().map(str_of).collect::<Vec<_>>().join(","))
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| "*".to_owned());
                    let expires = if k["expiresAt"].is_null() {
                        "never".to_owned()
                    } else {
                        date(&k["expiresAt"])
                    };
                    let last_used = if k["lastUsed"].is_null() {
                        "never".to_owned()
                    } else {
                        date(&k["lastUsed"])
                    };
                    vec![
                        str_of(&k["id"]),
                        str_of(&k["name"]),
                        str_of(&k["key"]),
                        permissions,
                        date(&k["createOn"]),
                        expires,
                        last_used,
                        if k["isActive"] == false { "no" } else { "yes" }.to_owned(),
                    ]
                })
                .collect();
            table(
                &[
                    "ID",
                    "NAME",
                    "KEY",
                    "PERMISSIONS",
                    "CREATED",
                    "EXPIRES",
                    "LAST USED",
                    "ACTIVE",
                ],
                &rows,
            );
            Ok(0)
        }
        KeysCommand::Revoke { id } => {
            let id = id.trim().to_owned();
            if id.is_empty() {
                return Err(usage("the key id is empty: `backspace keys list` shows the ids"));
            }
            let revoked = api.delete(&format!("/api/2.0/keys/{id}")).await?;
            if revoked != true {
                return Err(failed(format!("key {id} was not revoked"))
                    .hint("only the key's creator, or the portal's owner or an admin, may revoke it"));
            }
            if out.json {
                out.print(&json!({"id": id, "revoked": true}));
            } else {
                println!("revoked key {id}");
            }
            Ok(0)
        }
    }
}

async fn verify(api: &Api, out: &Out, id: &str) -> Result<i32> {
    let id = resolve_id(api, id, false).await?;
    let bar = out.bar(&format!("verifying {id}"), None, false);
    let report = api.get_slow(&format!("/api/2.0/backup/verifybackup/{id}")).await;
    bar.finish_and_clear();
    let report = report?;
    let ok = report["ok"] == true;
    if out.json {
        out.print(&report);
    } else if ok {
        println!(
            "backup {id} is intact: {} chunk(s) checked",
            report["checkedChunks"].as_u64().unwrap_or(0)
        );
    } else {
        println!("backup {id} is DAMAGED:");
        for d in report["damaged"].as_array().into_iter().flatten() {
            println!("  {}", str_of(d));
        }
    }
    if ok {
        Ok(0)
    } else {
        let damaged = report["damaged"].as_array().map_or(0, Vec::len);
        Err(failed(format!("backup {id} is damaged: {damaged} bad chunk(s)"))
            .hint("restore from another backup, and take a new one"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_specs() {
        assert_eq!(parse_storage("temporary", &[]).unwrap().0, 4);
        let (t, p) = parse_storage("local:/srv/b", &[]).unwrap();
        assert_eq!((t, p), (3, json!([{"key": "filePath", "value": "/srv/b"}])));
        assert_eq!(parse_storage("folder:12", &[]).unwrap().0, 0);
        let (t, p) = parse_storage("consumer:s3", &["bucket=b".into(), "region=x=y".into()]).unwrap();
        assert_eq!(t, 5);
        assert_eq!(p[2], json!({"key": "region", "value": "x=y"}));
        for bad in ["local:rel", "folder:", "folder:abc", "nowhere", "consumer:"] {
            assert_eq!(parse_storage(bad, &[]).unwrap_err().code, 2, "{bad}");
        }
        assert_eq!(parse_storage("temporary", &["a=b".into()]).unwrap_err().code, 2);
        assert_eq!(parse_storage("consumer:s3", &["nokey".into()]).unwrap_err().code, 2);
    }

    #[test]
    fn schedule_days() {
        assert_eq!(schedule_day(Period::Daily, None).unwrap(), 0);
        assert_eq!(schedule_day(Period::Weekly, Some("Sunday")).unwrap(), 1);
        assert_eq!(schedule_day(Period::Weekly, Some("sat")).unwrap(), 7);
        assert_eq!(schedule_day(Period::Weekly, Some("3")).unwrap(), 3);
        assert_eq!(schedule_day(Period::Monthly, Some("31")).unwrap(), 31);
        assert!(schedule_day(Period::Weekly, Some("8")).is_err());
        assert!(schedule_day(Period::Weekly, None).is_err());
        assert!(schedule_day(Period::Monthly, Some("0")).is_err());
        assert!(schedule_day(Period::Daily, Some("1")).is_err());
    }

    #[test]
    fn ids_and_dates() {
        assert!(is_full_id("3f2504e0-4f89-11d3-9a0c-0305e82c3301"));
        assert!(!is_full_id("3f2504e0"));
        assert_eq!(date(&json!("2026-01-31T10:05:09Z")), "2026-01-31 10:05");
        assert_eq!(date(&json!("0001-01-01T00:00:00")), "never");
    }
}

//! The configuration: one typed tree, read from the TOML file, then the environment, then the
//! flags (later wins). Every key is documented in README.md.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The `--config` file. Every field is optional; unset fields keep their defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub portal_alias: Option<String>,
    pub public_url: Option<String>,
    /// `off` (default), `open`.
    pub registration: Option<String>,
    pub registration_secret: Option<String>,
    pub owner_email: Option<String>,
    pub owner_password: Option<String>,
    pub max_upload_bytes: Option<u64>,
    pub max_json_bytes: Option<usize>,
    pub session_lifetime_days: Option<u64>,
    pub secure_cookies: Option<bool>,
    pub password_salt: Option<String>,
    /// Directories `Local` backups may use.
    pub local_backup_roots: Option<Vec<PathBuf>>,
    /// `zstd` (default) or `gzip`.
    pub archive_compression: Option<String>,
    /// Where file bytes live: `file:///dir` or `s3://BUCKET?endpoint=…&region=…&path_style=true`.
    pub files_url: Option<String>,
    /// This instance's name in job leases.
    pub instance_id: Option<String>,
    /// Seconds a job lease lasts without renewal.
    pub job_lease_seconds: Option<u64>,
    /// The passphrase of backup repositories (better given as BACKSPACE_REPOSITORY_PASSPHRASE).
    pub repository_passphrase: Option<String>,
    /// Allows unencrypted repositories when no passphrase is set.
    pub repository_unencrypted: Option<bool>,
    /// Targets that keep one plain archive per backup: `local`, `datastore`, `consumer`.
    pub archive_targets: Option<Vec<String>>,
    /// The bearer token `GET /metrics` requires (better given as BACKSPACE_METRICS_TOKEN).
    pub metrics_token: Option<String>,
    /// `human` (default) or `json`.
    pub log_format: Option<String>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading config file `{}`", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file `{}`", path.display()))
    }
}

/// The settings every command uses, after merging.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub portal_alias: String,
    pub public_url: Option<String>,
    pub registration: backspace_server::Registration,
    pub owner_email: Option<String>,
    pub owner_password: Option<String>,
    pub max_upload_bytes: u64,
    pub max_json_bytes: usize,
    pub session_lifetime_days: u64,
    pub secure_cookies: bool,
    pub password_salt: String,
    pub local_backup_roots: Vec<PathBuf>,
    pub compression: backspace_format::Compression,
    pub instance_id: String,
    pub job_lease_seconds: u64,
    pub files: FilesLocation,
    pub repository: backspace_core::backup::RepositorySettings,
    pub metrics_token: Option<String>,
    pub log_json: bool,
}

/// Where the portal's files (and `DataStore` backups) live.
#[derive(Debug)]
pub enum FilesLocation {
    Local(PathBuf),
    S3(backspace_storage::S3Config),
}

/// Parses `file:///dir` or `s3://BUCKET?endpoint=…&region=…&path_style=true[&root=prefix]`.
/// S3 credentials come from the environment, never from the URL.
fn files_location(url: &str, data_dir: &Path) -> anyhow::Result<FilesLocation> {
    if let Some(path) = url.strip_prefix("file://") {
        if path.is_empty() {
            return Ok(FilesLocation::Local(data_dir.join("files")));
        }
        return Ok(FilesLocation::Local(PathBuf::from(path)));
    }
    let Some(rest) = url.strip_prefix("s3://") else {
        bail!("files url `{url}` must start with file:// or s3://");
    };
    let (bucket, query) = rest.split_once('?').unwrap_or((rest, ""));
    let bucket = bucket.trim_end_matches('/');
    if bucket.is_empty() {
        bail!("files url `{url}` names no bucket");
    }
    let mut cfg = backspace_storage::S3Config {
        bucket: bucket.to_owned(),
        region: "us-east-1".to_owned(),
        access_key: std::env::var("BACKSPACE_FILES_S3_ACCESS_KEY").unwrap_or_default(),
        secret_key: std::env::var("BACKSPACE_FILES_S3_SECRET_KEY").unwrap_or_default(),
        ..Default::default()
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "endpoint" => cfg.endpoint = v.to_owned(),
            "region" => cfg.region = v.to_owned(),
            "root" => cfg.root = v.to_owned(),
            // Path-style addressing unless `path_style=false` asks for virtual-hosted style.
            "path_style" => cfg.virtual_host_style = matches!(v, "false" | "0"),
            other => bail!("files url parameter `{other}` is unknown: use endpoint, region, path_style, root"),
        }
    }
    if cfg.endpoint.is_empty() {
        bail!("files url `{url}` needs endpoint=http(s)://host:port");
    }
    if cfg.access_key.is_empty() || cfg.secret_key.is_empty() {
        bail!("S3 files need BACKSPACE_FILES_S3_ACCESS_KEY and BACKSPACE_FILES_S3_SECRET_KEY");
    }
    Ok(FilesLocation::S3(cfg))
}

/// Values from the environment and flags (clap reads both), which override the file.
#[derive(Debug, Default, clap::Args)]
pub struct Overrides {
    /// Address to listen on [default: 127.0.0.1:8092]
    #[arg(long, env = "BACKSPACE_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// Data directory: metadata database and files [default: ./backspace-data]
    #[arg(long, env = "BACKSPACE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Metadata database: sqlite://PATH or postgres://USER:PASS@HOST:PORT/DB
    /// [default: SQLite in the data directory]
    #[arg(long, env = "BACKSPACE_DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// TOML configuration file
    #[arg(long, env = "BACKSPACE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Portal registration: `off` or `open`
    #[arg(long, env = "BACKSPACE_REGISTRATION", global = true)]
    pub registration: Option<String>,
    /// Enable registration behind `Authorization: Bearer SECRET`
    #[arg(long, env = "BACKSPACE_REGISTRATION_SECRET", global = true, hide_env_values = true)]
    pub registration_secret: Option<String>,
    /// E-mail of the default portal's owner, used on first start only
    #[arg(long, env = "BACKSPACE_OWNER_EMAIL", global = true)]
    pub owner_email: Option<String>,
    /// Password of the default portal's owner, used on first start only
    #[arg(long, env = "BACKSPACE_OWNER_PASSWORD", global = true, hide_env_values = true)]
    pub owner_password: Option<String>,
    /// Public base URL for absolute links, e.g. https://backup.example.com
    #[arg(long, env = "BACKSPACE_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Largest accepted upload, in bytes [default: 1073741824]
    #[arg(long, env = "BACKSPACE_MAX_UPLOAD_BYTES", global = true)]
    pub max_upload_bytes: Option<u64>,
    /// Directories Local backups may be written to and restored from, colon-separated
    #[arg(long, env = "BACKSPACE_LOCAL_BACKUP_ROOTS", global = true)]
    pub local_backup_roots: Option<String>,
    /// Where file bytes live: file:///dir or s3://BUCKET?endpoint=…&region=…&path_style=true
    /// [default: the data directory]
    #[arg(long, env = "BACKSPACE_FILES_URL", global = true)]
    pub files_url: Option<String>,
    /// This instance's name in job leases [default: host name and data directory]
    #[arg(long, env = "BACKSPACE_INSTANCE_ID", global = true)]
    pub instance_id: Option<String>,
    /// Seconds a job lease lasts without renewal [default: 30]
    #[arg(long, env = "BACKSPACE_JOB_LEASE_SECONDS", global = true)]
    pub job_lease_seconds: Option<u64>,
    /// The passphrase that encrypts backup repositories (keep a copy: it opens them anywhere)
    #[arg(long, env = "BACKSPACE_REPOSITORY_PASSPHRASE", global = true, hide_env_values = true)]
    pub repository_passphrase: Option<String>,
    /// Allow unencrypted backup repositories when no passphrase is set
    #[arg(long, env = "BACKSPACE_REPOSITORY_UNENCRYPTED", global = true)]
    pub repository_unencrypted: Option<bool>,
    /// Targets that keep one plain archive per backup, comma-separated: local, datastore, consumer
    #[arg(long, env = "BACKSPACE_ARCHIVE_TARGETS", global = true)]
    pub archive_targets: Option<String>,
    /// Bearer token that GET /metrics requires [default: none; metrics go to loopback only]
    #[arg(long, env = "BACKSPACE_METRICS_TOKEN", global = true, hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Log format: human or json [default: human]
    #[arg(long, env = "BACKSPACE_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
}

impl Config {
    pub fn resolve(o: &Overrides) -> anyhow::Result<Self> {
        let file = match &o.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let log_json = match o.log_format.clone().or(file.log_format.clone()).as_deref() {
            None | Some("human") => false,
            Some("json") => true,
            Some(other) => bail!("log format `{other}`: use `human` or `json`"),
        };
        let data_dir = o
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./backspace-data"));
        let database_url = o
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("meta.db").display()));
        let secret = o
            .registration_secret
            .clone()
            .or(file.registration_secret)
            .filter(|s| !s.is_empty());
        let mode = o
            .registration
            .clone()
            .or(file.registration)
            .unwrap_or_else(|| "off".to_owned());
        let registration = match (mode.to_ascii_lowercase().as_str(), secret) {
            (_, Some(secret)) => backspace_server::Registration::Secret(secret),
            ("open", None) => backspace_server::Registration::Open,
            ("off", None) | ("", None) => backspace_server::Registration::Off,
            (other, None) => bail!("registration must be `off` or `open`, not `{other}`"),
        };
        let local_backup_roots = match &o.local_backup_roots {
            Some(list) => list
                .split(':')
                .filter(|p| !p.trim().is_empty())
                .map(PathBuf::from)
                .collect(),
            None => file.local_backup_roots.unwrap_or_default(),
        };
        for root in &local_backup_roots {
            if !root.is_absolute() {
                bail!("local backup root `{}` must be an absolute path", root.display());
            }
        }
        let compression = match file.archive_compression.as_deref().unwrap_or("zstd") {
            "zstd" => backspace_format::Compression::Zstd,
            "gzip" => backspace_format::Compression::Gzip,
            other => bail!("archive_compression must be `zstd` or `gzip`, not `{other}`"),
        };
        let instance_id = o.instance_id.clone().or(file.instance_id).unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| "localhost".to_owned());
            let dir = std::fs::canonicalize(&data_dir).unwrap_or_else(|_| data_dir.clone());
            format!("{host}:{}", dir.display())
        });
        let passphrase = o
            .repository_passphrase
            .clone()
            .or(file.repository_passphrase)
            .filter(|p| !p.is_empty());
        let unencrypted = o
            .repository_unencrypted
            .or(file.repository_unencrypted)
            .unwrap_or(false);
        let archive_targets: Vec<String> = match &o.archive_targets {
            Some(list) => list
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect(),
            None => file
                .archive_targets
                .unwrap_or_default()
                .iter()
                .map(|t| t.to_ascii_lowercase())
                .collect(),
        };
        for t in &archive_targets {
            if !["local", "datastore", "consumer"].contains(&t.as_str()) {
                bail!("archive_targets: `{t}` is not a target with repositories (local, datastore, consumer)");
            }
        }
        if passphrase.is_some() && unencrypted {
            bail!("repository_unencrypted and a repository passphrase exclude each other");
        }
        let repository = backspace_core::backup::RepositorySettings {
            passphrase: passphrase.map(backspace_core::backup::Passphrase::new),
            unencrypted,
            archive_targets,
        };
        let files = match o.files_url.clone().or(file.files_url) {
            Some(url) => files_location(&url, &data_dir)?,
            None => FilesLocation::Local(data_dir.join("files")),
        };
        Ok(Self {
            files,
            repository,
            instance_id,
            job_lease_seconds: o
                .job_lease_seconds
                .or(file.job_lease_seconds)
                .unwrap_or(30)
                .clamp(1, 3600),
            local_backup_roots,
            compression,
            listen: o
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8092))),
            data_dir,
            database_url,
            portal_alias: file.portal_alias.unwrap_or_else(|| "localhost".to_owned()),
            public_url: o.public_url.clone().or(file.public_url).filter(|u| !u.is_empty()),
            registration,
            owner_email: o.owner_email.clone().or(file.owner_email),
            owner_password: o.owner_password.clone().or(file.owner_password),
            max_upload_bytes: o.max_upload_bytes.or(file.max_upload_bytes).unwrap_or(1 << 30),
            max_json_bytes: file.max_json_bytes.unwrap_or(1 << 20),
            session_lifetime_days: file.session_lifetime_days.unwrap_or(365).clamp(1, 3650),
            secure_cookies: file.secure_cookies.unwrap_or(false),
            password_salt: file.password_salt.unwrap_or_else(|| "backspace".to_owned()),
            metrics_token: o.metrics_token.clone().or(file.metrics_token).filter(|t| !t.is_empty()),
            log_json,
        })
    }
}

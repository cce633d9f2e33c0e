//! Real external servers a test starts for itself, so it can stop and restart them: an S3
//! server (s3s-fs) and a WebDAV server (wsgidav). The binaries come from `BACKSPACE_TEST_S3FS` /
//! `BACKSPACE_TEST_WSGIDAV` or the `PATH`; when one is missing the test is skipped, unless
//! `BACKSPACE_REQUIRE_S3` / `BACKSPACE_REQUIRE_WEBDAV` say it must run (CI sets both).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn find(var: &str, name: &str, require: &str) -> Option<String> {
    let found = std::env::var(var).ok().or_else(|| {
        let path = std::env::var("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    });
    if found.is_none() {
        assert!(
            std::env::var(require).is_err(),
            "{require} is set but `{name}` is not installed (set {var})"
        );
        eprintln!("skipped: `{name}` is not installed");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (bounded) until `port` accepts connections.
fn wait_listening(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("backspace-{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Regular files below `dir` whose names do not start with a dot, as paths relative to `dir`.
pub fn visible_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries {
            let p = e.unwrap().path();
            if p.file_name().unwrap().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Every file below `dir`, hidden ones included.
pub fn all_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

/// A private s3s-fs server with one bucket.
pub struct S3Fs {
    bin: String,
    child: Option<Child>,
    pub dir: PathBuf,
    pub port: u16,
    pub endpoint: String,
    pub bucket: String,
    pub access: String,
    pub secret: String,
}

impl S3Fs {
    pub fn spawn() -> Option<Self> {
        let bin = find("BACKSPACE_TEST_S3FS", "s3s-fs", "BACKSPACE_REQUIRE_S3")?;
        let dir = temp_dir("s3fs");
        let bucket = "backups".to_owned();
        std::fs::create_dir_all(dir.join(&bucket)).unwrap();
        let port = free_port();
        let mut s3 = Self {
            bin,
            child: None,
            dir,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket,
            access: format!("AK{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            secret: uuid::Uuid::new_v4().simple().to_string(),
        };
        s3.start();
        Some(s3)
    }

    /// Starts (again) on the same port and directory.
    pub fn start(&mut self) {
        let mut child = Command::new(&self.bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", &self.access, "--secret-key", &self.secret])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        wait_listening(self.port, &mut child, "s3s-fs");
        self.child = Some(child);
    }

    /// Kills the server at once.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The objects of the bucket (the server's internal part files excluded).
    pub fn objects(&self) -> Vec<String> {
        visible_files(&self.dir.join(&self.bucket))
    }

    /// The `storageParams` of a ThirdPartyConsumer request for this server (no keys).
    pub fn params(&self) -> serde_json::Value {
        serde_json::json!([
            {"key": "module", "value": "s3"},
            {"key": "bucket", "value": self.bucket},
            {"key": "region", "value": "us-east-1"},
            {"key": "serviceurl", "value": self.endpoint},
            {"key": "forcepathstyle", "value": "true"},
            {"key": "usehttp", "value": "true"},
        ])
    }
}

impl Drop for S3Fs {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private wsgidav server: one folder at `/dav/`, one user.
pub struct Dav {
    bin: String,
    child: Option<Child>,
    pub dir: PathBuf,
    pub root: PathBuf,
    pub port: u16,
    pub url: String,
    pub login: String,
    pub password: String,
}

impl Dav {
    pub fn spawn() -> Option<Self> {
        let bin = find("BACKSPACE_TEST_WSGIDAV", "wsgidav", "BACKSPACE_REQUIRE_WEBDAV")?;
        let dir = temp_dir("dav");
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let port = free_port();
        let password = uuid::Uuid::new_v4().simple().to_string();
        let config = format!(
            r#"host: 127.0.0.1
port: {port}
provider_mapping:
  "/dav": "{root}"
http_authenticator:
  domain_controller: null
  accept_basic: true
  accept_digest: false
  default_to_digest: false
simple_dc:
  user_mapping:
    "*":
      "backup":
        password: "{password}"
verbose: 0
"#,
            root = root.display()
        );
        std::fs::write(dir.join("wsgidav.yaml"), config).unwrap();
        let mut dav = Self {
            bin,
            child: None,
            dir,
            root,
            port,
            url: format!("http://127.0.0.1:{port}/dav/"),
            login: "backup".to_owned(),
            password,
        };
        dav.start();
        Some(dav)
    }

    pub fn start(&mut self) {
        let mut child = Command::new(&self.bin)
            .arg("--config")
            .arg(self.dir.join("wsgidav.yaml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wsgidav");
        wait_listening(self.port, &mut child, "wsgidav");
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Dav {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

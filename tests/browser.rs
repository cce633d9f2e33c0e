//! The admin page ("Data backup", served at `/`) in a real browser: Debian's `chromium` driven
//! by npm's `playwright-core` through `tests/browser/admin_page.mjs`, against a real server.
//! The script signs in, starts a backup and watches the progress bar reach 100, finds it in the
//! history, downloads it, saves a schedule and reads it back after a reload, deletes the backup
//! and checks that a plain user sees none of the backup controls. One screenshot per step goes
//! to `target/browser-artifacts/`.
//!
//! `BACKSPACE_TEST_NODE_MODULES` names the `node_modules` directory holding `playwright-core`
//! (`scripts/test` installs `tests/browser/package-lock.json` into `target/browser-node/`).
//! Without it the test is skipped, unless `BACKSPACE_REQUIRE_BROWSER=1` (CI) makes that an
//! error. `BACKSPACE_CHROMIUM` overrides `/usr/bin/chromium`; `BACKSPACE_TEST_NODE` overrides
//! `node`.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/admin_page.mjs");
const ROOM: &str = "Browser Test Room";

/// The `node_modules` directory and the browser, or `None` when the test is to be skipped.
fn browser_tools() -> Option<(PathBuf, String)> {
    let required = std::env::var("BACKSPACE_REQUIRE_BROWSER").is_ok_and(|v| !v.is_empty() && v != "0");
    let Some(modules) = std::env::var_os("BACKSPACE_TEST_NODE_MODULES") else {
        assert!(
            !required,
            "BACKSPACE_REQUIRE_BROWSER is set but BACKSPACE_TEST_NODE_MODULES is not: run scripts/test, or set it \
             to a node_modules directory holding playwright-core"
        );
        eprintln!(
            "skipped: BACKSPACE_TEST_NODE_MODULES is not set (a node_modules directory holding playwright-core; \
             scripts/test sets it up in target/browser-node)"
        );
        return None;
    };
    let modules = PathBuf::from(modules);
    assert!(
        modules.join("playwright-core").join("package.json").is_file(),
        "playwright-core is not installed in {} (BACKSPACE_TEST_NODE_MODULES)",
        modules.display()
    );
    let chromium = std::env::var("BACKSPACE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).is_file(),
        "the browser {chromium} is not installed (apt-get install chromium, or set BACKSPACE_CHROMIUM)"
    );
    Some((modules, chromium))
}

/// `target/browser-artifacts/`, emptied.
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(target)
    };
    let dir = target.join("browser-artifacts");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn admin_page_in_a_browser() {
    let Some((modules, chromium)) = browser_tools() else {
        return;
    };
    let roots = TempDir::new("backspace-browser-local");
    let outside = TempDir::new("backspace-browser-outside");
    let s = TestServer::spawn_with(&[("BACKSPACE_LOCAL_BACKUP_ROOTS", roots.to_str().unwrap())]).await;
    let owner = Auth::bearer(&s.owner_token().await);

    // What the page will see: a room with a file in it, and a plain user.
    let room = s.room(&owner, ROOM).await;
    let (status, v) = s.upload(&owner, room, "notes.txt", bytes(4096, 7)).await;
    assert_eq!(status, 200, "{v}");
    let (user_email, user) = s.person(&owner, "User").await;
    let (status, _) = s.get("/api/2.0/backup/getbackuphistory", &user).await;
    assert_eq!(status, 403, "a plain user must not reach the backup API");

    let artifacts = artifacts_dir();
    let node = std::env::var("BACKSPACE_TEST_NODE").unwrap_or_else(|_| "node".to_owned());
    let mut cmd = tokio::process::Command::new(node);
    cmd.arg(SCRIPT)
        .env("BACKSPACE_TEST_NODE_MODULES", &modules)
        .env("BACKSPACE_CHROMIUM", &chromium)
        .env("BACKSPACE_URL", &s.base)
        .env("BACKSPACE_ADMIN_EMAIL", OWNER_EMAIL)
        .env("BACKSPACE_ADMIN_PASSWORD", OWNER_PASSWORD)
        .env("BACKSPACE_USER_EMAIL", &user_email)
        .env("BACKSPACE_USER_PASSWORD", "Passw0rd-xyz")
        .env("BACKSPACE_ROOM_TITLE", ROOM)
        .env("BACKSPACE_LOCAL_FORBIDDEN", outside.to_str().unwrap())
        .env("BACKSPACE_ARTIFACTS", &artifacts)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(150), cmd.output())
        .await
        .expect("the browser test did not finish within 150 s")
        .expect("run node (set BACKSPACE_TEST_NODE)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    println!("browser screenshots: {}", artifacts.display());
    assert!(
        output.status.success(),
        "the browser test failed ({}); screenshots in {}\n{stderr}",
        output.status,
        artifacts.display()
    );
    assert!(stdout.contains("ALL STEPS PASSED"), "{stdout}");

    // One screenshot per step, named in step order.
    let mut shots: Vec<String> = std::fs::read_dir(&artifacts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    shots.sort();
    let steps = stdout.lines().filter(|l| l.starts_with("STEP ")).count();
    assert!(steps >= 10, "{stdout}");
    assert_eq!(shots.len(), steps, "one screenshot per step: {shots:?}");
    assert!(shots[0].starts_with("01-"), "{shots:?}");

    // What the page did, as the API sees it: the schedule it saved, the backup it deleted.
    let (status, v) = s.get("/api/2.0/backup/getbackupschedule", &owner).await;
    assert_eq!(status, 200, "{v}");
    let schedule = &v["response"];
    assert_eq!(schedule["storageType"], 0, "{v}");
    assert_eq!(schedule["storageParams"]["folderId"], room.to_string(), "{v}");
    assert_eq!(schedule["cronParams"]["period"], 1, "{v}");
    assert_eq!(schedule["cronParams"]["day"], 4, "{v}");
    assert_eq!(schedule["cronParams"]["hour"], 4, "{v}");
    assert_eq!(schedule["backupsStored"], 7, "{v}");
    let (status, v) = s.get("/api/2.0/backup/getbackuphistory", &owner).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["response"], Value::Array(vec![]), "the page deleted its backup: {v}");
}

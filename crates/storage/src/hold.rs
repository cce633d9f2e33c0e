//! Hold points: fault injection for the crash tests, which kill the server process at chosen
//! moments. A kill timed from outside races with the work it aims at (a small restore stages its
//! files and swaps in a few milliseconds), so the moments a test must land inside are named
//! here: with `BACKSPACE_HOLD_AT=point[,point…]` in its environment, a thread that reaches a named
//! point stops there for good, and the test kills the process while it waits. Unset, as in
//! production, a hold point costs one atomic load.
//!
//! The points: [`RESTORE_FILE_STAGED`], [`BACKUP_PACK_STORED`].

use std::sync::OnceLock;

/// A restore's staging thread has stored one file of the portal (before the swap).
pub const RESTORE_FILE_STAGED: &str = "restore-file-staged";
/// A repository backup's packer has stored one pack (before its index and snapshot).
pub const BACKUP_PACK_STORED: &str = "backup-pack-stored";

/// The environment variable naming the points to stop at.
pub const HOLD_AT_VAR: &str = "BACKSPACE_HOLD_AT";

fn points() -> &'static [String] {
    static POINTS: OnceLock<Vec<String>> = OnceLock::new();
    POINTS.get_or_init(|| {
        std::env::var(HOLD_AT_VAR)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// Whether the process was told to stop at `point`.
pub fn holds_at(point: &str) -> bool {
    points().iter().any(|p| p == point)
}

/// Stops the calling (blocking) thread for good when the process was told to stop at `point`.
/// Never call it from an async task: it would take a runtime thread with it.
pub fn hold_blocking(point: &str) {
    if !holds_at(point) {
        return;
    }
    tracing::warn!(point, "held here until the process is stopped ({HOLD_AT_VAR})");
    loop {
        std::thread::park();
    }
}

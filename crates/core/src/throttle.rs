//! Throttling of failed sign-ins per (login, client address).
//!
//! The failures are kept in the metadata database, so every instance sharing it counts the same
//! attempts: guessing is bounded to `attempts` per window however many instances a client
//! spreads its tries over. The login is stored as a digest (people type passwords into the login
//! field). Failures older than the window are dropped as new ones are recorded, so the table
//! stays bounded under a spray of distinct logins.

use crate::Result;
use backspace_meta::MetaStore;
use std::time::Duration;

/// Says when a (login, address) pair must wait, from the failures the database holds.
pub struct LoginThrottle {
    attempts: u64,
    window: Duration,
}

impl LoginThrottle {
    pub fn new(attempts: usize, window: Duration) -> Self {
        Self {
            attempts: attempts.max(1) as u64,
            window,
        }
    }

    fn digest(login: &str) -> String {
        blake3::hash(login.trim().to_lowercase().as_bytes())
            .to_hex()
            .to_string()
    }

    fn window_ms(&self) -> i64 {
        self.window.as_millis().min(i64::MAX as u128) as i64
    }

    /// `Some(seconds)` to wait when the pair has used up its attempts at `now` (ms).
    pub async fn check(&self, store: &dyn MetaStore, login: &str, address: &str, now: i64) -> Result<Option<u64>> {
        let since = now - self.window_ms();
        let (failures, oldest) = store.login_failures(&Self::digest(login), address, since).await?;
        Ok(self.wait(failures, oldest, now))
    }

    /// The wait that `failures` in the window, the oldest at `oldest`, impose at `now`.
    fn wait(&self, failures: u64, oldest: Option<i64>, now: i64) -> Option<u64> {
        if failures < self.attempts {
            return None;
        }
        let left_ms = (oldest? + self.window_ms() - now).max(0) as u64;
        Some(left_ms.div_ceil(1000).max(1))
    }

    pub async fn record_failure(&self, store: &dyn MetaStore, login: &str, address: &str, now: i64) -> Result<()> {
        let since = now - self.window_ms();
        store
            .add_login_failure(&Self::digest(login), address, now, since)
            .await?;
        Ok(())
    }

    pub async fn record_success(&self, store: &dyn MetaStore, login: &str, address: &str) -> Result<()> {
        store.clear_login_failures(&Self::digest(login), address).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_passes() {
        let t = LoginThrottle::new(3, Duration::from_secs(60));
        assert_eq!(t.wait(2, Some(0), 10_000), None, "under the limit");
        assert_eq!(t.wait(3, Some(0), 10_000), Some(50));
        assert_eq!(t.wait(3, Some(0), 59_001), Some(1), "a part of a second is a second");
        assert_eq!(t.wait(3, Some(0), 60_000), Some(1), "never 0 while blocked");
        assert_eq!(LoginThrottle::digest(" A@x "), LoginThrottle::digest("a@x"));
        assert_ne!(LoginThrottle::digest("a@x"), LoginThrottle::digest("b@x"));
    }
}

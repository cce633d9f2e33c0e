//! Throttling of failed sign-ins per (login, client address).
//!
//! Kept in memory: with several instances each counts its own failures, which still bounds
//! guessing to `attempts × instances` per window. Entries expire with the window, and the map is
//! pruned when it grows, so memory stays bounded under a spray of distinct logins.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PRUNE_ABOVE: usize = 10_000;

/// Counts failures and says when a (login, address) pair must wait.
pub struct LoginThrottle {
    attempts: usize,
    window: Duration,
    failures: Mutex<HashMap<(String, String), VecDeque<Instant>>>,
}

impl LoginThrottle {
    pub fn new(attempts: usize, window: Duration) -> Self {
        Self {
            attempts: attempts.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn key(login: &str, address: &str) -> (String, String) {
        (login.trim().to_lowercase(), address.to_owned())
    }

    /// `Some(seconds)` to wait when the pair has used up its attempts.
    pub fn check(&self, login: &str, address: &str, now: Instant) -> Option<u64> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.get_mut(&Self::key(login, address))?;
        while entry.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            entry.pop_front();
        }
        if entry.len() >= self.attempts {
            let oldest = *entry.front()?;
            let wait = self.window.saturating_sub(now.duration_since(oldest));
            Some(wait.as_secs().max(1))
        } else {
            None
        }
    }

    pub fn record_failure(&self, login: &str, address: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > PRUNE_ABOVE {
            let window = self.window;
            map.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let entry = map.entry(Self::key(login, address)).or_default();
        entry.push_back(now);
        while entry.len() > self.attempts {
            entry.pop_front();
        }
    }

    pub fn record_success(&self, login: &str, address: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&Self::key(login, address));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_passes() {
        let t = LoginThrottle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for i in 0..3 {
            assert_eq!(t.check("A@x", "1.2.3.4", start), None, "blocked after {i} failures");
            t.record_failure("a@x", "1.2.3.4", start);
        }
        let wait = t
            .check("a@X", "1.2.3.4", start + Duration::from_secs(10))
            .expect("should be blocked");
        assert_eq!(wait, 50);
        assert_eq!(t.check("a@x", "5.6.7.8", start), None, "another address is not blocked");
        assert_eq!(t.check("a@x", "1.2.3.4", start + Duration::from_secs(61)), None);
        t.record_failure("b@x", "1", start);
        t.record_success("b@x", "1");
        assert_eq!(t.check("b@x", "1", start), None);
    }
}

//! The server's metrics, rendered in Prometheus' text format for `GET /metrics`.
//!
//! Counters and histograms live in memory, per instance (Prometheus scrapes each instance and
//! sums): requests by route template, method and status, and their latency; jobs by kind and
//! outcome; bytes backed up and restored; backup durations; storage errors. Labels are route
//! templates and fixed words only, never ids or user input, so the series stay few.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Request latency buckets, seconds.
const REQUEST_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0];
/// Backup duration buckets, seconds.
const JOB_BUCKETS: [f64; 9] = [1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4.0 * 3600.0, 12.0 * 3600.0];

/// A histogram with fixed buckets.
#[derive(Clone, Debug)]
struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative; one more for `+Inf`.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    fn observe(&mut self, value: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += value;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i];
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()];
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}");
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {cumulative}", braces(labels));
    }
}

/// How a job ended, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Succeeded,
    Failed,
    Cancelled,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The metrics of one server process.
#[derive(Default)]
pub struct Metrics {
    /// (route template, method, status) → count.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// (route template, method) → latency.
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    /// (kind, outcome) → count.
    jobs: Mutex<BTreeMap<(&'static str, Outcome), u64>>,
    backup_seconds: Mutex<Option<Histogram>>,
    backed_up_bytes: AtomicU64,
    restored_bytes: AtomicU64,
    storage_errors: AtomicU64,
    /// Garbage collections of repositories that finished, were deferred, failed.
    collections: [AtomicU64; 3],
    collected_bytes: AtomicU64,
    collected_packs: AtomicU64,
}

/// How a garbage collection of a repository ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    /// It ran; the space of what it deleted is free.
    Done {
        freed_bytes: u64,
        deleted_packs: u64,
    },
    /// A backup was writing: nothing was deleted, it runs again later.
    Deferred,
    Failed,
}

const COLLECTION_OUTCOMES: [&str; 3] = ["done", "deferred", "failed"];

impl Metrics {
    /// One answered request. `route` is the route's template (`/api/2.0/backup/deletebackup/{backupid}`),
    /// or `unmatched`.
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        self.latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route.to_owned(), method.to_owned()))
            .or_insert_with(|| Histogram::new(&REQUEST_BUCKETS))
            .observe(took.as_secs_f64());
    }

    /// A job's end. A successful backup's duration is observed; bytes are counted by
    /// [`Metrics::backed_up`] and [`Metrics::restored`].
    pub fn job(&self, kind: &'static str, outcome: Outcome, took: Duration) {
        *self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((kind, outcome))
            .or_default() += 1;
        if kind == "backup" && outcome == Outcome::Succeeded {
            self.backup_seconds
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(|| Histogram::new(&JOB_BUCKETS))
                .observe(took.as_secs_f64());
        }
    }

    pub fn backed_up(&self, bytes: u64) {
        self.backed_up_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn restored(&self, bytes: u64) {
        self.restored_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A garbage collection's end.
    pub fn collection(&self, end: Collection) {
        let slot = match end {
            Collection::Done {
                freed_bytes,
                deleted_packs,
            } => {
                self.collected_bytes.fetch_add(freed_bytes, Ordering::Relaxed);
                self.collected_packs.fetch_add(deleted_packs, Ordering::Relaxed);
                0
            }
            Collection::Deferred => 1,
            Collection::Failed => 2,
        };
        self.collections[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// A storage operation that failed (the store did not answer, refused, or broke off).
    pub fn storage_error(&self) {
        self.storage_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP backspace_http_requests_total HTTP requests answered, by route template, method and status.\n",
        );
        out.push_str("# TYPE backspace_http_requests_total counter\n");
        for ((route, method, status), n) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "backspace_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(route),
                escape(method)
            );
        }
        out.push_str(
            "# HELP backspace_http_request_duration_seconds Time to answer a request, by route template and method.\n",
        );
        out.push_str("# TYPE backspace_http_request_duration_seconds histogram\n");
        for ((route, method), h) in self.latency.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let labels = format!("route=\"{}\",method=\"{}\"", escape(route), escape(method));
            h.render(&mut out, "backspace_http_request_duration_seconds", &labels);
        }
        out.push_str("# HELP backspace_jobs_total Backup and restore jobs that ended, by kind and outcome.\n");
        out.push_str("# TYPE backspace_jobs_total counter\n");
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for kind in ["backup", "restore"] {
            for outcome in [Outcome::Succeeded, Outcome::Failed, Outcome::Cancelled] {
                let n = jobs.get(&(kind, outcome)).copied().unwrap_or(0);
                let _ = writeln!(
                    out,
                    "backspace_jobs_total{{kind=\"{kind}\",outcome=\"{}\"}} {n}",
                    outcome.label()
                );
            }
        }
        out.push_str("# HELP backspace_backup_duration_seconds Time a successful backup took.\n");
        out.push_str("# TYPE backspace_backup_duration_seconds histogram\n");
        let backups = self
            .backup_seconds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| Histogram::new(&JOB_BUCKETS));
        backups.render(&mut out, "backspace_backup_duration_seconds", "");
        for (name, help, value) in [
            (
                "backspace_backed_up_bytes_total",
                "Bytes of portal data that successful backups covered.",
                &self.backed_up_bytes,
            ),
            (
                "backspace_restored_bytes_total",
                "Bytes of portal files that successful restores put back.",
                &self.restored_bytes,
            ),
            (
                "backspace_storage_errors_total",
                "Storage operations that failed (the store was unreachable, refused or broke off).",
                &self.storage_errors,
            ),
            (
                "backspace_gc_freed_bytes_total",
                "Bytes of repository packs that garbage collections deleted or rewrote smaller.",
                &self.collected_bytes,
            ),
            (
                "backspace_gc_deleted_packs_total",
                "Repository packs that garbage collections deleted.",
                &self.collected_packs,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        out.push_str(
            "# HELP backspace_gc_runs_total Garbage collections of backup repositories, by outcome (deferred: a backup was writing; it runs again later).\n",
        );
        out.push_str("# TYPE backspace_gc_runs_total counter\n");
        for (outcome, n) in COLLECTION_OUTCOMES.iter().zip(&self.collections) {
            let _ = writeln!(
                out,
                "backspace_gc_runs_total{{outcome=\"{outcome}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// A label value, escaped as the text format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("/api/2.0/backup/startbackup", "POST", 200, Duration::from_millis(3));
        m.request("/api/2.0/backup/startbackup", "POST", 200, Duration::from_millis(30));
        m.request("unmatched", "GET", 404, Duration::from_millis(1));
        m.job("backup", Outcome::Succeeded, Duration::from_secs(2));
        m.job("restore", Outcome::Failed, Duration::from_secs(2));
        m.backed_up(1000);
        m.storage_error();
        m.collection(Collection::Done {
            freed_bytes: 4096,
            deleted_packs: 2,
        });
        m.collection(Collection::Deferred);
        let text = m.render();
        for line in [
            "backspace_http_requests_total{route=\"/api/2.0/backup/startbackup\",method=\"POST\",status=\"200\"} 2",
            "backspace_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
            "backspace_http_request_duration_seconds_bucket{route=\"/api/2.0/backup/startbackup\",method=\"POST\",le=\"0.005\"} 1",
            "backspace_http_request_duration_seconds_bucket{route=\"/api/2.0/backup/startbackup\",method=\"POST\",le=\"0.05\"} 2",
            "backspace_http_request_duration_seconds_count{route=\"/api/2.0/backup/startbackup\",method=\"POST\"} 2",
            "backspace_jobs_total{kind=\"backup\",outcome=\"succeeded\"} 1",
            "backspace_jobs_total{kind=\"restore\",outcome=\"failed\"} 1",
            "backspace_jobs_total{kind=\"backup\",outcome=\"cancelled\"} 0",
            "backspace_backup_duration_seconds_bucket{le=\"5\"} 1",
            "backspace_backup_duration_seconds_count 1",
            "backspace_backed_up_bytes_total 1000",
            "backspace_restored_bytes_total 0",
            "backspace_storage_errors_total 1",
            "backspace_gc_freed_bytes_total 4096",
            "backspace_gc_deleted_packs_total 2",
            "backspace_gc_runs_total{outcome=\"done\"} 1",
            "backspace_gc_runs_total{outcome=\"deferred\"} 1",
            "backspace_gc_runs_total{outcome=\"failed\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
        }
        // Every sample line belongs to a declared family.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {family} ")), "{name} has no TYPE line");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

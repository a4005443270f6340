//! Prometheus metrics, rendered in the text exposition format at `/metrics`.
//!
//! A fixed, small set of families: counters are atomics, the per-route request families
//! one map behind a mutex (a handful of nanoseconds per request, uncontended).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the request duration histogram.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0];

#[derive(Default)]
struct RouteStats {
    count: u64,
    duration_sum: f64,
    /// Cumulative counts per bucket of `BUCKETS`.
    buckets: [u64; BUCKETS.len()],
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, String, u16), u64>>,
    durations: Mutex<BTreeMap<&'static str, RouteStats>>,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub uploads_started: AtomicU64,
    pub uploads_completed: AtomicU64,
    pub uploads_cancelled: AtomicU64,
    pub uploads_in_progress: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub gc_runs: AtomicU64,
    pub gc_blobs_deleted: AtomicU64,
    pub gc_manifests_deleted: AtomicU64,
    pub gc_bytes_freed: AtomicU64,
    pub gc_last_run_seconds: AtomicU64,
    pub quota_denied: AtomicU64,
    pub rate_limited: AtomicU64,
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// Records one finished request.
    pub fn request(&self, route: &'static str, method: &str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route, method.to_string(), status))
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut d = self.durations.lock().unwrap_or_else(|p| p.into_inner());
        let s = d.entry(route).or_default();
        s.count += 1;
        s.duration_sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP strata_registry_http_requests_total HTTP requests by route, method and status.\n# TYPE strata_registry_http_requests_total counter"
        );
        for ((route, method, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "strata_registry_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP strata_registry_http_request_duration_seconds Time to the response head, by route.\n# TYPE strata_registry_http_request_duration_seconds histogram"
        );
        for (route, s) in self
            .durations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            for (b, n) in BUCKETS.iter().zip(s.buckets) {
                let _ = writeln!(
                    out,
                    "strata_registry_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "strata_registry_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\nstrata_registry_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\nstrata_registry_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                s.count, s.duration_sum, s.count
            );
        }
        let counters: [(&str, &str, &str, &AtomicU64); 15] = [
            (
                "strata_registry_bytes_received_total",
                "counter",
                "Bytes of blob and manifest bodies received.",
                &self.bytes_received,
            ),
            (
                "strata_registry_bytes_sent_total",
                "counter",
                "Bytes of blob and manifest bodies sent.",
                &self.bytes_sent,
            ),
            (
                "strata_registry_upload_sessions_started_total",
                "counter",
                "Blob upload sessions started.",
                &self.uploads_started,
            ),
            (
                "strata_registry_upload_sessions_completed_total",
                "counter",
                "Blob uploads completed and verified.",
                &self.uploads_completed,
            ),
            (
                "strata_registry_upload_sessions_cancelled_total",
                "counter",
                "Blob upload sessions cancelled or failed verification.",
                &self.uploads_cancelled,
            ),
            (
                "strata_registry_upload_requests_in_progress",
                "gauge",
                "Requests streaming upload data right now.",
                &self.uploads_in_progress,
            ),
            (
                "strata_registry_cache_hits_total",
                "counter",
                "Pull-through cache hits.",
                &self.cache_hits,
            ),
            (
                "strata_registry_cache_misses_total",
                "counter",
                "Pull-through cache misses.",
                &self.cache_misses,
            ),
            (
                "strata_registry_gc_runs_total",
                "counter",
                "Garbage collections completed.",
                &self.gc_runs,
            ),
            (
                "strata_registry_gc_blobs_deleted_total",
                "counter",
                "Blobs deleted by garbage collection.",
                &self.gc_blobs_deleted,
            ),
            (
                "strata_registry_gc_manifests_deleted_total",
                "counter",
                "Untagged manifests deleted by garbage collection.",
                &self.gc_manifests_deleted,
            ),
            (
                "strata_registry_gc_bytes_freed_total",
                "counter",
                "Bytes freed by garbage collection.",
                &self.gc_bytes_freed,
            ),
            (
                "strata_registry_gc_last_run_timestamp_seconds",
                "gauge",
                "When the last garbage collection finished (Unix time).",
                &self.gc_last_run_seconds,
            ),
            (
                "strata_registry_quota_denied_total",
                "counter",
                "Pushes refused by a quota.",
                &self.quota_denied,
            ),
            (
                "strata_registry_rate_limited_total",
                "counter",
                "Requests refused with 429 by the rate limit.",
                &self.rate_limited,
            ),
        ];
        for (name, kind, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_exposition_format() {
        let m = Metrics::default();
        m.request("manifest", "GET", 200, Duration::from_millis(2));
        m.request("manifest", "GET", 200, Duration::from_millis(200));
        add(&m.bytes_sent, 42);
        let text = m.render();
        assert!(text.contains(
            "strata_registry_http_requests_total{route=\"manifest\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "strata_registry_http_request_duration_seconds_bucket{route=\"manifest\",le=\"0.005\"} 1"
        ));
        assert!(text
            .contains("strata_registry_http_request_duration_seconds_count{route=\"manifest\"} 2"));
        assert!(text.contains("strata_registry_bytes_sent_total 42"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert_eq!(line.split(' ').count(), 2, "{line}");
        }
    }
}

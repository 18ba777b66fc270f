//! Prometheus metrics in the text exposition format: request counts by route and status, a
//! latency histogram by route, requests in flight, and feedback events stored.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    n: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    pub(crate) in_flight: AtomicI64,
    pub feedback_stored: AtomicU64,
}

impl Metrics {
    pub(crate) fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(route.to_owned()).or_default();
            for (c, le) in h.counts.iter_mut().zip(BUCKETS) {
                if seconds <= le {
                    *c += 1;
                }
            }
            h.sum += seconds;
            h.n += 1;
        }
    }

    /// The exposition text for `GET /metrics`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP micro_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE micro_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((method, route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "micro_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP micro_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE micro_http_request_duration_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for (route, h) in m.iter() {
                for (c, le) in h.counts.iter().zip(BUCKETS) {
                    let _ = writeln!(out, "micro_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {c}");
                }
                let _ = writeln!(out, "micro_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.n);
                let _ = writeln!(
                    out,
                    "micro_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "micro_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.n
                );
            }
        }
        out.push_str("# HELP micro_http_requests_in_flight Requests being served.\n# TYPE micro_http_requests_in_flight gauge\n");
        let _ = writeln!(
            out,
            "micro_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        out.push_str("# HELP micro_feedback_stored_total Feedback events committed to the log.\n# TYPE micro_feedback_stored_total counter\n");
        let _ = writeln!(
            out,
            "micro_feedback_stored_total {}",
            self.feedback_stored.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.record("POST", "/v1/score", 200, 0.003);
        m.record("POST", "/v1/score", 200, 0.2);
        let text = m.render();
        assert!(text.contains(
            "micro_http_requests_total{method=\"POST\",route=\"/v1/score\",status=\"200\"} 2"
        ));
        assert!(text.contains("route=\"/v1/score\",le=\"0.0025\"} 0"));
        assert!(text.contains("route=\"/v1/score\",le=\"0.005\"} 1"));
        assert!(text.contains("route=\"/v1/score\",le=\"0.25\"} 2"));
        assert!(text.contains("micro_http_request_duration_seconds_count{route=\"/v1/score\"} 2"));
    }
}

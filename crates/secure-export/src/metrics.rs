//! A small in-process metrics registry rendering the Prometheus text format (0.0.4).
//!
//! Counters, gauges and histograms are keyed by name and a label set. The registry is a cheap
//! [`Clone`] handle; every clone records into the same tables.
//!
//! ```
//! use secure_export::metrics::Metrics;
//! let m = Metrics::new();
//! m.inc_counter("secure_export_jobs_total", &[("connection", "default"), ("outcome", "created")]);
//! m.observe("secure_export_itsm_call_seconds", &[("backend", "mock"), ("operation", "create")], 0.02);
//! let text = m.render();
//! assert!(text.contains(r#"secure_export_jobs_total{connection="default",outcome="created"} 1"#));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

/// Histogram bucket upper bounds, in seconds.
pub const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

type Labels = Vec<(String, String)>;

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Tables {
    counters: BTreeMap<String, BTreeMap<Labels, u64>>,
    gauges: BTreeMap<String, BTreeMap<Labels, f64>>,
    histograms: BTreeMap<String, BTreeMap<Labels, Histogram>>,
}

/// The metrics registry (see the [module docs](self)).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Tables>>,
}

fn labels(l: &[(&str, &str)]) -> Labels {
    l.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The `# HELP` text of the metrics this crate records.
fn help(name: &str) -> &'static str {
    match name {
        "secure_export_deliveries_total" => "Alert deliveries received, by outcome and reason.",
        "secure_export_token_failures_total" => "Rejected bearer tokens, by error code.",
        "secure_export_itsm_calls_total" => "ITSM calls, by backend, operation and status.",
        "secure_export_itsm_call_seconds" => "ITSM call latency in seconds.",
        "secure_export_request_seconds" => "HTTP request latency in seconds.",
        "secure_export_queue_depth" => "Jobs waiting in the outbox.",
        "secure_export_dead_letters" => "Jobs in the dead-letter table awaiting replay.",
        "secure_export_jobs_total" => "Outbox jobs finished, by outcome.",
        "secure_export_accept_batches_total" => "Group-commit transactions of accepted deliveries.",
        "secure_export_store_commits_total" => {
            "Transactions of the SQLite store's group-commit writer, by outcome."
        }
        "secure_export_store_write_operations_total" => {
            "Write operations committed by the SQLite store's writer (divide by commits for the mean batch size)."
        }
        "secure_export_store_commit_seconds" => {
            "Time of one SQLite group commit (its statements, the commit and its fsync), in seconds."
        }
        "secure_export_accept_batched_deliveries_total" => {
            "Deliveries committed by group commit (divide by batches for the mean batch size)."
        }
        "secure_export_future_events_total" => {
            "Deliveries dated more than max_clock_skew in the future, treated as received now."
        }
        "secure_export_connection_queue_depth" => "Jobs waiting in the outbox, per connection.",
        "secure_export_store_up" => "1 when the last background store check passed.",
        "secure_export_backend_up" => {
            "1 when the last background health check of the connection's backend passed."
        }
        "secure_export_connections_total" => "TCP connections accepted, by listener.",
        "secure_export_connections_open" => "TCP connections open, by listener.",
        "secure_export_connections_waited_total" => {
            "Times the listener reached max_connections and new connections had to wait."
        }
        "secure_export_connections_timed_out_total" => {
            "Connections closed because the request head did not arrive within header_read_timeout."
        }
        "secure_export_tls_handshake_failures_total" => {
            "TLS handshakes that failed or did not finish within header_read_timeout."
        }
        _ => "secure-export metric.",
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn write_labels(out: &mut String, labels: &Labels, extra: Option<(&str, &str)>) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let all = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra);
    for (k, v) in all {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{k}=\"{}\"", escape(v));
    }
    out.push('}');
}

fn fmt_f64(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        }
    } else {
        format!("{v}")
    }
}

impl Metrics {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // Every mutation is a single map update, so a poisoned lock holds consistent data.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds one to a counter.
    pub fn inc_counter(&self, name: &str, labels: &[(&str, &str)]) {
        self.add_counter(name, labels, 1);
    }

    /// Adds `n` to a counter.
    pub fn add_counter(&self, name: &str, l: &[(&str, &str)], n: u64) {
        let mut t = self.lock();
        let v = t
            .counters
            .entry(name.to_owned())
            .or_default()
            .entry(labels(l))
            .or_default();
        *v = v.saturating_add(n);
    }

    /// Sets a gauge.
    pub fn set_gauge(&self, name: &str, l: &[(&str, &str)], v: f64) {
        self.lock()
            .gauges
            .entry(name.to_owned())
            .or_default()
            .insert(labels(l), v);
    }

    /// Records one observation (in seconds) into a histogram with the [`BUCKETS`] bounds.
    pub fn observe(&self, name: &str, l: &[(&str, &str)], seconds: f64) {
        let mut t = self.lock();
        let h = t
            .histograms
            .entry(name.to_owned())
            .or_default()
            .entry(labels(l))
            .or_default();
        if h.counts.len() != BUCKETS.len() {
            h.counts = vec![0; BUCKETS.len()];
        }
        for (count, bound) in h.counts.iter_mut().zip(BUCKETS) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// The current value of a counter (0 when never touched); handy in tests and admin tools.
    #[must_use]
    pub fn counter(&self, name: &str, l: &[(&str, &str)]) -> u64 {
        self.lock()
            .counters
            .get(name)
            .and_then(|m| m.get(&labels(l)))
            .copied()
            .unwrap_or(0)
    }

    /// The sum of a counter over every label set whose labels include all of `filter`.
    #[must_use]
    pub fn counter_sum(&self, name: &str, filter: &[(&str, &str)]) -> u64 {
        let t = self.lock();
        let Some(m) = t.counters.get(name) else {
            return 0;
        };
        m.iter()
            .filter(|(ls, _)| {
                filter
                    .iter()
                    .all(|(k, v)| ls.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, v)| *v)
            .sum()
    }

    /// The current value of a gauge.
    #[must_use]
    pub fn gauge(&self, name: &str, l: &[(&str, &str)]) -> Option<f64> {
        self.lock()
            .gauges
            .get(name)
            .and_then(|m| m.get(&labels(l)))
            .copied()
    }

    /// Renders every metric in the Prometheus text exposition format 0.0.4.
    #[must_use]
    pub fn render(&self) -> String {
        let t = self.lock();
        let mut out = String::new();
        for (name, series) in &t.counters {
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} counter", help(name));
            for (l, v) in series {
                out.push_str(name);
                write_labels(&mut out, l, None);
                let _ = writeln!(out, " {v}");
            }
        }
        for (name, series) in &t.gauges {
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} gauge", help(name));
            for (l, v) in series {
                out.push_str(name);
                write_labels(&mut out, l, None);
                let _ = writeln!(out, " {}", fmt_f64(*v));
            }
        }
        for (name, series) in &t.histograms {
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} histogram", help(name));
            for (l, h) in series {
                for (bound, count) in BUCKETS.iter().zip(&h.counts) {
                    let _ = write!(out, "{name}_bucket");
                    write_labels(&mut out, l, Some(("le", &fmt_f64(*bound))));
                    let _ = writeln!(out, " {count}");
                }
                let _ = write!(out, "{name}_bucket");
                write_labels(&mut out, l, Some(("le", "+Inf")));
                let _ = writeln!(out, " {}", h.count);
                let _ = write!(out, "{name}_sum");
                write_labels(&mut out, l, None);
                let _ = writeln!(out, " {}", fmt_f64(h.sum));
                let _ = write!(out, "{name}_count");
                write_labels(&mut out, l, None);
                let _ = writeln!(out, " {}", h.count);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_all_kinds_with_escaping() {
        let m = Metrics::new();
        m.inc_counter("c_total", &[("a", "x\"y")]);
        m.add_counter("c_total", &[("a", "x\"y")], 2);
        m.set_gauge("g", &[], 4.0);
        m.observe("h_seconds", &[("op", "create")], 0.003);
        m.observe("h_seconds", &[("op", "create")], 100.0);
        let text = m.render();
        assert!(text.contains("# TYPE c_total counter\n"), "{text}");
        assert!(text.contains("c_total{a=\"x\\\"y\"} 3\n"), "{text}");
        assert!(text.contains("g 4\n"), "{text}");
        assert!(
            text.contains("h_seconds_bucket{op=\"create\",le=\"0.0025\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("h_seconds_bucket{op=\"create\",le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("h_seconds_bucket{op=\"create\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("h_seconds_count{op=\"create\"} 2\n"),
            "{text}"
        );
        assert_eq!(m.counter("c_total", &[("a", "x\"y")]), 3);
        assert_eq!(m.counter_sum("c_total", &[]), 3);
        assert_eq!(m.gauge("g", &[]), Some(4.0));
    }
}

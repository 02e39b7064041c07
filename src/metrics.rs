//! Process metrics (counters, gauges, histograms with labels) and their Prometheus text
//! rendering for `/metrics`. Small on purpose: a map behind a mutex, written rarely.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds, in seconds, of the run-duration histogram's buckets.
pub const DURATION_BUCKETS_SECONDS: [f64; 10] =
    [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

type Labels = Vec<(String, String)>;

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Count per bucket of `DURATION_BUCKETS_SECONDS` (not cumulative).
    buckets: [u64; DURATION_BUCKETS_SECONDS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Families {
    help: BTreeMap<&'static str, (&'static str, &'static str)>,
    counters: BTreeMap<(&'static str, Labels), f64>,
    gauges: BTreeMap<(&'static str, Labels), f64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

/// Every metric the bot keeps. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    families: Mutex<Families>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn write_labels(out: &mut String, labels: &Labels, extra: Option<(&str, String)>) {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if !parts.is_empty() {
        let _ = write!(out, "{{{}}}", parts.join(","));
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Families) -> R) -> R {
        let mut families = self
            .families
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut families)
    }

    /// Adds 1 to a counter.
    pub fn increment(&self, name: &'static str, help: &'static str, pairs: &[(&str, &str)]) {
        self.add(name, help, pairs, 1.0);
    }

    /// Adds `amount` to a counter.
    pub fn add(&self, name: &'static str, help: &'static str, pairs: &[(&str, &str)], amount: f64) {
        self.with(|f| {
            f.help.insert(name, (help, "counter"));
            *f.counters.entry((name, labels(pairs))).or_default() += amount;
        });
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, help: &'static str, pairs: &[(&str, &str)], value: f64) {
        self.with(|f| {
            f.help.insert(name, (help, "gauge"));
            f.gauges.insert((name, labels(pairs)), value);
        });
    }

    /// Replaces every series of a gauge at once, so a scrape never sees it half-updated.
    pub fn replace_gauge(
        &self,
        name: &'static str,
        help: &'static str,
        series: &[(Vec<(&str, &str)>, f64)],
    ) {
        self.with(|f| {
            f.help.insert(name, (help, "gauge"));
            f.gauges.retain(|(n, _), _| *n != name);
            for (pairs, value) in series {
                f.gauges.insert((name, labels(pairs)), *value);
            }
        });
    }

    /// Records one observation, in seconds, in a duration histogram.
    pub fn observe_seconds(
        &self,
        name: &'static str,
        help: &'static str,
        pairs: &[(&str, &str)],
        seconds: f64,
    ) {
        self.with(|f| {
            f.help.insert(name, (help, "histogram"));
            let h = f.histograms.entry((name, labels(pairs))).or_default();
            if let Some(i) = DURATION_BUCKETS_SECONDS.iter().position(|b| seconds <= *b) {
                h.buckets[i] += 1;
            }
            h.count += 1;
            h.sum += seconds;
        });
    }

    /// A counter's current value (0 when never counted), for tests and summaries.
    pub fn counter(&self, name: &str, pairs: &[(&str, &str)]) -> f64 {
        let wanted = labels(pairs);
        self.with(|f| {
            f.counters
                .iter()
                .filter(|((n, l), _)| *n == name && wanted.iter().all(|p| l.contains(p)))
                .map(|(_, v)| *v)
                .sum()
        })
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.with(|f| {
            let mut out = String::new();
            for (name, (help, kind)) in &f.help {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                let rows = match *kind {
                    "counter" => &f.counters,
                    "gauge" => &f.gauges,
                    _ => {
                        for ((_, l), h) in f.histograms.iter().filter(|((n, _), _)| n == name) {
                            let mut cumulative = 0;
                            for (bound, count) in DURATION_BUCKETS_SECONDS.iter().zip(h.buckets) {
                                cumulative += count;
                                out.push_str(name);
                                out.push_str("_bucket");
                                write_labels(&mut out, l, Some(("le", bound.to_string())));
                                let _ = writeln!(out, " {cumulative}");
                            }
                            out.push_str(name);
                            out.push_str("_bucket");
                            write_labels(&mut out, l, Some(("le", "+Inf".into())));
                            let _ = writeln!(out, " {}", h.count);
                            let _ = write!(out, "{name}_sum");
                            write_labels(&mut out, l, None);
                            let _ = writeln!(out, " {}", h.sum);
                            let _ = write!(out, "{name}_count");
                            write_labels(&mut out, l, None);
                            let _ = writeln!(out, " {}", h.count);
                        }
                        continue;
                    }
                };
                for ((_, l), v) in rows.iter().filter(|((n, _), _)| n == name) {
                    out.push_str(name);
                    write_labels(&mut out, l, None);
                    let _ = writeln!(out, " {v}");
                }
            }
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_escaped_labels_and_cumulative_buckets() {
        let m = Metrics::new();
        m.increment(
            "kpibot_slack_api_errors_total",
            "Slack API errors",
            &[("method", "chat.postMessage"), ("code", "not_in_channel")],
        );
        m.increment(
            "kpibot_slack_api_errors_total",
            "Slack API errors",
            &[("method", "chat.postMessage"), ("code", "not_in_channel")],
        );
        m.set("kpibot_next_run", "next", &[("report", "a\"b")], 5.0);
        m.observe_seconds("kpibot_run_seconds", "run time", &[], 0.3);
        m.observe_seconds("kpibot_run_seconds", "run time", &[], 7.0);
        let text = m.render();
        assert!(text.contains(
            "kpibot_slack_api_errors_total{method=\"chat.postMessage\",code=\"not_in_channel\"} 2"
        ));
        assert!(text.contains("kpibot_next_run{report=\"a\\\"b\"} 5"));
        assert!(text.contains("kpibot_run_seconds_bucket{le=\"0.5\"} 1"));
        assert!(text.contains("kpibot_run_seconds_bucket{le=\"10\"} 2"));
        assert!(text.contains("kpibot_run_seconds_count 2"));
        assert!(text.contains("# TYPE kpibot_run_seconds histogram"));
        assert_eq!(
            m.counter(
                "kpibot_slack_api_errors_total",
                &[("code", "not_in_channel")]
            ),
            2.0
        );
    }
}

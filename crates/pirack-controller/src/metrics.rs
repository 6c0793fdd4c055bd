//! The controller's metrics, rendered in the Prometheus text format (0.0.4): a few
//! labelled counters and one histogram, small enough to keep by hand.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Upper bounds (seconds) of the boot stage duration buckets.
const BUCKETS: [f64; 10] = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];

struct Family {
    help: &'static str,
    kind: &'static str,
}

const FAMILIES: [(&str, Family); 7] = [
    (
        "pirack_dhcp_packets_total",
        Family {
            help: "DHCP packets answered or seen, by kind.",
            kind: "counter",
        },
    ),
    (
        "pirack_tftp_files_total",
        Family {
            help: "TFTP transfers, by result.",
            kind: "counter",
        },
    ),
    (
        "pirack_power_operations_total",
        Family {
            help: "PoE power operations, by action and result.",
            kind: "counter",
        },
    ),
    (
        "pirack_watchdog_recoveries_total",
        Family {
            help: "Stalled slots power-cycled by the watchdog.",
            kind: "counter",
        },
    ),
    (
        "pirack_slot_failures_total",
        Family {
            help: "Slots marked failed.",
            kind: "counter",
        },
    ),
    (
        "pirack_spoofed_datagrams_total",
        Family {
            help: "Datagrams dropped for claiming another slot's address on a slot's wire, by protocol.",
            kind: "counter",
        },
    ),
    (
        "pirack_boot_stage_seconds",
        Family {
            help: "Time slots spent in each boot stage.",
            kind: "histogram",
        },
    ),
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
    stages: Mutex<BTreeMap<String, Histogram>>,
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    inner.join(",")
}

impl Metrics {
    /// Adds one to a counter of [`FAMILIES`].
    pub fn count(&self, name: &'static str, pairs: &[(&str, &str)]) {
        self.add(name, pairs, 1);
    }

    /// Adds `n` to a counter of [`FAMILIES`].
    pub fn add(&self, name: &'static str, pairs: &[(&str, &str)], n: u64) {
        debug_assert!(FAMILIES.iter().any(|(n, _)| *n == name), "{name}");
        *self
            .counters
            .lock()
            .expect("metrics poisoned")
            .entry((name, labels(pairs)))
            .or_default() += n;
    }

    /// Records the time a slot spent in a boot stage.
    pub fn stage(&self, stage: &str, seconds: f64) {
        let mut stages = self.stages.lock().expect("metrics poisoned");
        let h = stages.entry(stage.to_string()).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = self.counters.lock().expect("metrics poisoned");
        let stages = self.stages.lock().expect("metrics poisoned");
        for (name, fam) in FAMILIES {
            let _ = writeln!(
                out,
                "# HELP {name} {}\n# TYPE {name} {}",
                fam.help, fam.kind
            );
            if fam.kind == "histogram" {
                for (stage, h) in stages.iter() {
                    let l = labels(&[("stage", stage)]);
                    for (bound, n) in BUCKETS.iter().zip(h.counts) {
                        let _ = writeln!(out, "{name}_bucket{{{l},le=\"{bound}\"}} {n}");
                    }
                    let _ = writeln!(out, "{name}_bucket{{{l},le=\"+Inf\"}} {}", h.count);
                    let _ = writeln!(out, "{name}_sum{{{l}}} {}", h.sum);
                    let _ = writeln!(out, "{name}_count{{{l}}} {}", h.count);
                }
                continue;
            }
            for ((n, l), v) in counters.iter().filter(|((n, _), _)| *n == name) {
                let _ = writeln!(out, "{n}{{{l}}} {v}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.count("pirack_tftp_files_total", &[("result", "done")]);
        m.count("pirack_tftp_files_total", &[("result", "done")]);
        m.stage("dhcp", 1.5);
        let text = m.render();
        assert!(
            text.contains("pirack_tftp_files_total{result=\"done\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("pirack_boot_stage_seconds_bucket{stage=\"dhcp\",le=\"1\"} 0\n"));
        assert!(text.contains("pirack_boot_stage_seconds_bucket{stage=\"dhcp\",le=\"2\"} 1\n"));
        assert!(text.contains("pirack_boot_stage_seconds_count{stage=\"dhcp\"} 1\n"));
        assert!(text.contains("# TYPE pirack_boot_stage_seconds histogram\n"));
    }
}

//! The controller's metrics on `prometheus-client`, one set per process
//! ([`global`]): the switch sessions and the store record their latencies where
//! they run, without a handle threaded through. Exposed in the OpenMetrics text
//! format at `/metrics`; the slot gauges are read from the store's mirror as the
//! page is made.

use pirack_core::lifecycle::State;
use pirack_core::lifecycle::state::ALL as STATES;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::time::Duration;

/// Upper bounds (seconds) of the boot stage duration buckets.
const STAGE_BUCKETS: [f64; 10] = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];
/// Upper bounds (seconds) of SNMP request and store latencies.
const IO_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

fn stage_histogram() -> Histogram {
    Histogram::new(STAGE_BUCKETS)
}

fn io_histogram() -> Histogram {
    Histogram::new(IO_BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PowerLabels {
    pub action: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabel {
    pub protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

/// An SNMP request to a switch: GET or SET, and `ok`, `timeout` or `error`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SwitchLabels {
    pub switch: String,
    pub request: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabel {
    pub consumer: String,
}

/// A zone's drift after the last reconciliation: `missing`, `stale` or `conflict`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DriftLabels {
    pub zone: String,
    pub kind: String,
}

/// A slot's check: `ping` or `tcp/22`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub slot: String,
    pub check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SlotLabel {
    pub slot: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

pub struct Metrics {
    registry: Registry,
    pub dhcp: Family<KindLabel, Counter>,
    pub tftp: Family<ResultLabel, Counter>,
    pub power: Family<PowerLabels, Counter>,
    pub recoveries: Counter,
    pub failures: Counter,
    pub spoofed: Family<ProtocolLabel, Counter>,
    pub stages: Histograms<StageLabel>,
    pub slots: Family<StateLabel, Gauge>,
    pub switch: Histograms<SwitchLabels>,
    pub store: Histograms<OpLabel>,
    pub lagged: Family<ConsumerLabel, Counter>,
    pub dns_drift: Family<DriftLabels, Gauge>,
    pub dns_reconciles: Family<ResultLabel, Counter>,
    pub dns_applied: Counter,
    pub aname_refreshes: Family<ResultLabel, Counter>,
    /// The embedded proxy's.
    pub proxy: pirack_proxy::metrics::Metrics,
    pub probes: Family<ResultLabel, Counter>,
    pub check_up: Family<CheckLabels, Gauge>,
    pub rtt: Histograms<SlotLabel>,
    pub watts: Family<SlotLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub alerts_open: Gauge,
    pub deliveries: Family<StatusLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            dhcp: Family::default(),
            tftp: Family::default(),
            power: Family::default(),
            recoveries: Counter::default(),
            failures: Counter::default(),
            spoofed: Family::default(),
            stages: Family::new_with_constructor(stage_histogram),
            slots: Family::default(),
            switch: Family::new_with_constructor(io_histogram),
            store: Family::new_with_constructor(io_histogram),
            lagged: Family::default(),
            dns_drift: Family::default(),
            dns_reconciles: Family::default(),
            dns_applied: Counter::default(),
            aname_refreshes: Family::default(),
            proxy: pirack_proxy::metrics::Metrics::default(),
            probes: Family::default(),
            check_up: Family::default(),
            rtt: Family::new_with_constructor(io_histogram),
            watts: Family::default(),
            alerts_open: Gauge::default(),
            deliveries: Family::default(),
        };
        let mut r = m.registry;
        r.register(
            "pirack_dhcp_packets",
            "DHCP packets answered or seen, by kind",
            m.dhcp.clone(),
        );
        r.register(
            "pirack_tftp_files",
            "TFTP transfers, by result",
            m.tftp.clone(),
        );
        r.register(
            "pirack_power_operations",
            "PoE power operations, by action and result",
            m.power.clone(),
        );
        r.register(
            "pirack_watchdog_recoveries",
            "Stalled slots power-cycled by the watchdog",
            m.recoveries.clone(),
        );
        r.register(
            "pirack_slot_failures",
            "Slots marked failed",
            m.failures.clone(),
        );
        r.register(
            "pirack_spoofed_datagrams",
            "Datagrams dropped for claiming another slot's address on a slot's wire, by protocol",
            m.spoofed.clone(),
        );
        r.register(
            "pirack_boot_stage_seconds",
            "Time slots spent in each boot stage",
            m.stages.clone(),
        );
        r.register(
            "pirack_slots",
            "Slots in each lifecycle state",
            m.slots.clone(),
        );
        r.register(
            "pirack_switch_request_seconds",
            "SNMP requests to each switch: latency, by request and result",
            m.switch.clone(),
        );
        r.register(
            "pirack_store_seconds",
            "State store writes: latency, by operation",
            m.store.clone(),
        );
        r.register(
            "pirack_event_bus_lagged",
            "Events a consumer of an event bus fell behind and missed or read again",
            m.lagged.clone(),
        );
        r.register(
            "pirack_dns_drift",
            "Names of each zone found missing, stale or in conflict by the last reconciliation",
            m.dns_drift.clone(),
        );
        r.register(
            "pirack_dns_reconciles",
            "DNS reconciliations, by result",
            m.dns_reconciles.clone(),
        );
        r.register(
            "pirack_dns_changes_applied",
            "Names the DNS servers took updates for",
            m.dns_applied.clone(),
        );
        m.proxy.register(&mut r);
        r.register(
            "pirack_aname_refreshes",
            "Resolutions of ANAME targets, by result (ok, changed, error)",
            m.aname_refreshes.clone(),
        );
        r.register(
            "pirack_check_probes",
            "Probes of the slots that are up, by result (ok, fail)",
            m.probes.clone(),
        );
        r.register(
            "pirack_slot_check_up",
            "1 while a slot's check is up, 0 while down (absent while unknown or not watched)",
            m.check_up.clone(),
        );
        r.register(
            "pirack_slot_rtt_seconds",
            "ICMPv6 round trips to each slot's public address",
            m.rtt.clone(),
        );
        r.register(
            "pirack_slot_poe_watts",
            "PoE power each slot's port draws, where the switch reports it",
            m.watts.clone(),
        );
        r.register(
            "pirack_alerts_open",
            "Alerts not yet resolved",
            m.alerts_open.clone(),
        );
        r.register(
            "pirack_alert_deliveries",
            "Notices sent to alert routes, by status (sent, failed, limited)",
            m.deliveries.clone(),
        );
        Metrics { registry: r, ..m }
    }
}

/// This process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);
    &METRICS
}

impl Metrics {
    /// Records the time a slot spent in a boot stage.
    pub fn stage(&self, stage: &str, seconds: f64) {
        self.stages
            .get_or_create(&StageLabel {
                stage: stage.into(),
            })
            .observe(seconds);
    }

    /// Records one SNMP request to `switch`.
    pub fn switch_request(&self, switch: &str, request: &str, result: &str, took: Duration) {
        self.switch
            .get_or_create(&SwitchLabels {
                switch: switch.into(),
                request: request.into(),
                result: result.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// Records one store write.
    pub fn store_op(&self, op: &str, took: Duration) {
        self.store
            .get_or_create(&OpLabel { op: op.into() })
            .observe(took.as_secs_f64());
    }

    /// Counts events a bus consumer missed.
    pub fn lagged(&self, consumer: &str, n: u64) {
        self.lagged
            .get_or_create(&ConsumerLabel {
                consumer: consumer.into(),
            })
            .inc_by(n);
    }

    /// The OpenMetrics text, with the slot gauges set from `slots`.
    pub fn render(&self, slots: &[State]) -> String {
        for state in STATES {
            let n = slots.iter().filter(|s| **s == state).count();
            self.slots
                .get_or_create(&StateLabel {
                    state: state.to_string(),
                })
                .set(n as i64);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let m = Metrics::default();
        let done = ResultLabel {
            result: "done".into(),
        };
        m.tftp.get_or_create(&done).inc();
        m.tftp.get_or_create(&done).inc();
        m.stage("dhcp", 1.5);
        m.switch_request("sw-a", "get", "ok", Duration::from_millis(2));
        let text = m.render(&[State::Up, State::Up, State::Failed]);
        assert!(
            text.contains("pirack_tftp_files_total{result=\"done\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("pirack_boot_stage_seconds_bucket{le=\"1.0\",stage=\"dhcp\"} 0\n"));
        assert!(text.contains("pirack_boot_stage_seconds_bucket{le=\"2.0\",stage=\"dhcp\"} 1\n"));
        assert!(text.contains("pirack_boot_stage_seconds_count{stage=\"dhcp\"} 1\n"));
        assert!(text.contains("# TYPE pirack_boot_stage_seconds histogram\n"));
        assert!(text.contains("pirack_slots{state=\"up\"} 2\n"), "{text}");
        assert!(text.contains("pirack_slots{state=\"empty\"} 0\n"));
        assert!(text.contains(
            "pirack_switch_request_seconds_count{switch=\"sw-a\",request=\"get\",result=\"ok\"} 1\n"
        ));
        assert!(text.ends_with("# EOF\n"));
    }
}

//! The proxy's metrics, per backend: connections by outcome, bytes each way,
//! connect latency, and connections open now.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct Conn {
    pub backend: String,
    pub outcome: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct Bytes {
    pub backend: String,
    pub direction: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct Backend {
    pub backend: String,
}

fn latency() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0,
    ])
}

#[derive(Debug, Clone)]
pub struct Metrics {
    pub connections: Family<Conn, Counter>,
    pub bytes: Family<Bytes, Counter>,
    pub open: Family<Backend, Gauge>,
    pub connect_seconds: Family<Backend, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connections: Family::default(),
            bytes: Family::default(),
            open: Family::default(),
            connect_seconds: Family::new_with_constructor(latency),
        }
    }
}

impl Metrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "pirack_proxy_connections",
            "Proxied connections by backend (`-` when none was chosen) and outcome",
            self.connections.clone(),
        );
        r.register(
            "pirack_proxy_bytes",
            "Bytes carried, by backend and direction (up: client to backend)",
            self.bytes.clone(),
        );
        r.register(
            "pirack_proxy_open_connections",
            "Connections open now, by backend",
            self.open.clone(),
        );
        r.register(
            "pirack_proxy_connect_seconds",
            "Time to connect to a backend",
            self.connect_seconds.clone(),
        );
    }
}

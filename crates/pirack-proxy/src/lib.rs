//! pirack's front door for IPv4 clients: one shared IPv4 address in front of
//! Pis that have only IPv6. TLS connections are routed by the ClientHello's
//! server name without terminating TLS (the customer's keys stay on its Pi),
//! plain HTTP by the Host header; each goes over IPv6 to the Pi that owns the
//! name, with the client's address in a PROXY protocol header (v1 by default,
//! v2 or none per backend). Routes come from the controller and change live.

pub mod conn;
pub mod header;
pub mod http;
pub mod listen;
pub mod metrics;
pub mod routes;
pub mod tls;

use routes::Routes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Http,
    Tls,
}

/// Where a TLS connection goes whose name has no route (or that gives none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Fallback {
    /// A fatal `unrecognized_name` alert.
    #[default]
    Alert,
    /// A default backend, sent the header of `Config::fallback_protocol`.
    Backend(SocketAddr),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub http: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    /// The backends' ports for HTTP and TLS (the Pis listen on 80 and 443).
    pub backend_ports: (u16, u16),
    /// How long a client has to name its host.
    pub header_timeout: Duration,
    /// How long a connection may carry nothing before it is closed.
    pub idle_timeout: Duration,
    /// How long each of a backend's addresses is given to answer.
    pub connect_timeout: Duration,
    /// Connections open at once, in all.
    pub max_connections: usize,
    /// Connections open at once to one backend.
    pub per_backend: usize,
    pub tls_fallback: Fallback,
    pub fallback_protocol: routes::Protocol,
    /// Threads serving connections, each with its own copy of every listener.
    pub threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: Vec::new(),
            tls: Vec::new(),
            backend_ports: (80, 443),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(3),
            max_connections: 20_000,
            per_backend: 1_000,
            tls_fallback: Fallback::Alert,
            fallback_protocol: routes::Protocol::Off,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// What every connection shares.
pub struct Shared {
    pub config: Config,
    pub routes: Routes,
    pub metrics: metrics::Metrics,
    /// Connections the proxy may still take.
    slots: Arc<Semaphore>,
}

impl Shared {
    pub fn new(config: Config, metrics: metrics::Metrics) -> Arc<Shared> {
        Arc::new(Shared {
            routes: Routes::new(config.per_backend),
            slots: Arc::new(Semaphore::new(config.max_connections)),
            config,
            metrics,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("starting a proxy thread: {source}")]
    Thread {
        #[source]
        source: std::io::Error,
    },
}

//! pirack's front door for IPv4 clients: one shared IPv4 address in front of
//! Pis that have only IPv6. TLS connections are routed by the ClientHello's
//! server name without terminating TLS (the customer's keys stay on its Pi),
//! plain HTTP by the Host header; each goes over IPv6 to the Pi that owns the
//! name, with the client's address in a PROXY protocol header (v1 by default,
//! v2 or none per backend). Routes come from the controller and change live.

pub mod conn;
pub mod header;
pub mod http;
pub mod metrics;
pub mod routes;
pub mod tls;

use routes::Routes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
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

    /// The PROXY protocol a backend is sent, for the access log.
    fn protocol_of(&self, backend: &str) -> &'static str {
        if backend == "-" {
            return "-";
        }
        let table = self.routes.current();
        table
            .protocol_of(backend)
            .map_or("-", routes::Protocol::name)
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
}

/// Binds every listener (all or none), for [`accept`] to serve.
pub async fn bind(shared: &Shared) -> Result<Vec<(Kind, TcpListener)>, ProxyError> {
    let mut out = Vec::new();
    let all = shared
        .config
        .http
        .iter()
        .map(|a| (Kind::Http, *a))
        .chain(shared.config.tls.iter().map(|a| (Kind::Tls, *a)));
    for (kind, addr) in all {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ProxyError::Listen { addr, source })?;
        tracing::info!(
            "proxy: {} on {}",
            kind.name(),
            listener.local_addr().unwrap_or(addr)
        );
        out.push((kind, listener));
    }
    Ok(out)
}

/// Accepts on `listener` for as long as the task runs, each connection on a
/// task of its own.
pub async fn accept(shared: Arc<Shared>, kind: Kind, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            // Out of descriptors or the like: back off rather than spin.
            Err(e) => {
                tracing::warn!("proxy: accepting: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&shared.slots).try_acquire_owned() else {
            shared
                .metrics
                .connections
                .get_or_create(&metrics::Conn {
                    backend: "-".into(),
                    outcome: "proxy full".into(),
                })
                .inc();
            drop(stream);
            continue;
        };
        let s = Arc::clone(&shared);
        tokio::spawn(async move {
            conn::handle(s, kind, stream, peer).await;
            drop(permit);
        });
    }
}

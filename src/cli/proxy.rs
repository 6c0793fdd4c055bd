//! `pirack proxy`: the IPv4→IPv6 proxy on a box of its own, following a
//! controller's routes over the API (long polls on `GET /v1/proxy/routes`), so
//! several proxies can stand side by side. A controller that cannot be reached
//! leaves the last routes in force.

use super::client::Remote;
use anyhow::{Context, Result};
use pirack_proxy::routes::{Protocol, Route};
use pirack_proxy::{Config, Fallback, Shared};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(clap::Args)]
pub struct ProxyArgs {
    /// An address to listen on (the shared IPv4 address; repeat for IPv6).
    #[arg(long, required = true)]
    listen: Vec<IpAddr>,
    /// The port plain HTTP is served on (Host header routing).
    #[arg(long, default_value_t = 80)]
    http_port: u16,
    /// The port TLS is passed through on (SNI routing).
    #[arg(long, default_value_t = 443)]
    tls_port: u16,
    /// Milliseconds a client has to send its ClientHello or request head.
    #[arg(long, default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Seconds a connection may carry nothing before it is closed.
    #[arg(long, default_value_t = 300)]
    idle_timeout_s: u64,
    /// Milliseconds each of a Pi's addresses is given to answer.
    #[arg(long, default_value_t = 3_000)]
    connect_timeout_ms: u64,
    /// Connections open at once, in all.
    #[arg(long, default_value_t = 20_000)]
    max_connections: usize,
    /// Connections open at once to one Pi.
    #[arg(long, default_value_t = 1_000)]
    per_backend: usize,
    /// Where TLS connections for unknown names go (`[2001:db8::1]:443`)
    /// [default: a TLS unrecognized_name alert].
    #[arg(long)]
    tls_default: Option<SocketAddr>,
    /// Threads serving connections [default: one per CPU].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Serve Prometheus metrics on this address (`/metrics`).
    #[arg(long)]
    metrics: Option<SocketAddr>,
    #[command(flatten)]
    remote: Remote,
}

/// Shows or sets the PROXY protocol a slot's Pi is sent.
#[derive(clap::Args)]
pub struct ProtocolArgs {
    /// The slot (position or switch/port).
    slot: String,
    /// off, v1 or v2 [default: show it and the names routed to the slot].
    protocol: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

pub fn protocol(args: &ProtocolArgs) -> Result<ExitCode> {
    let path = format!(
        "/v1/slots/{}/proxy",
        pirack_controller::api::client::segment(&args.slot)
    );
    let api = args.remote.connect()?;
    let view = match &args.protocol {
        Some(p) => api.call("PUT", &path, Some(&serde_json::json!({ "protocol": p })))?,
        None => api.call("GET", &path, None)?,
    };
    println!(
        "{} PROXY {}",
        pirack_core::text::printable(&args.slot),
        view["protocol"].as_str().unwrap_or("?")
    );
    for n in view["names"].as_array().into_iter().flatten() {
        println!(
            "  {}",
            pirack_core::text::printable(n.as_str().unwrap_or_default())
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: &ProxyArgs) -> Result<ExitCode> {
    let mut config = Config {
        http: args
            .listen
            .iter()
            .map(|ip| SocketAddr::new(*ip, args.http_port))
            .collect(),
        tls: args
            .listen
            .iter()
            .map(|ip| SocketAddr::new(*ip, args.tls_port))
            .collect(),
        header_timeout: Duration::from_millis(args.header_timeout_ms),
        idle_timeout: Duration::from_secs(args.idle_timeout_s),
        connect_timeout: Duration::from_millis(args.connect_timeout_ms),
        max_connections: args.max_connections,
        per_backend: args.per_backend,
        tls_fallback: args.tls_default.map_or(Fallback::Alert, Fallback::Backend),
        fallback_protocol: Protocol::Off,
        ..Config::default()
    };
    if let Some(t) = args.threads {
        config.threads = t.into();
    }
    let client = args.remote.connect()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let metrics = pirack_proxy::metrics::Metrics::default();
        let shared = Shared::new(config, metrics.clone());
        let client = Arc::new(client);
        // The first routes before the first client: a proxy that knows no
        // names would turn every visitor away.
        let mut version = None::<u64>;
        while version.is_none() {
            follow(&client, &shared, &mut version).await?;
        }
        pirack_proxy::listen::start(Arc::clone(&shared))?;
        if let Some(addr) = args.metrics {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("metrics on {addr}"))?;
            tokio::spawn(serve_metrics(listener, metrics));
        }
        loop {
            follow(&client, &shared, &mut version).await?;
        }
    })
}

/// One (long) poll for the routes past `version`; a controller that cannot be
/// reached leaves the last routes in force and is asked again shortly.
async fn follow(
    client: &Arc<pirack_controller::api::client::Client>,
    shared: &Shared,
    version: &mut Option<u64>,
) -> Result<()> {
    let path = match version {
        Some(v) => format!("/v1/proxy/routes?after={v}&wait=25"),
        None => "/v1/proxy/routes".to_string(),
    };
    let c = Arc::clone(client);
    let answer = tokio::task::spawn_blocking(move || c.call("GET", &path, None)).await?;
    match answer.map_err(anyhow::Error::from).and_then(|doc| {
        let routes: Vec<Route> = serde_json::from_value(doc["routes"].clone())?;
        Ok((doc["version"].as_u64().unwrap_or_default(), routes))
    }) {
        Ok((v, routes)) => {
            if *version != Some(v) {
                tracing::info!("proxy: routes version {v}: {} backend(s)", routes.len());
                shared.routes.set(&routes);
                *version = Some(v);
            }
        }
        Err(e) => {
            tracing::warn!("proxy: the controller: {e:#}; the last routes stay");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    Ok(())
}

/// Answers every request on `listener` with the metrics in Prometheus' text form.
async fn serve_metrics(listener: tokio::net::TcpListener, metrics: pirack_proxy::metrics::Metrics) {
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let registry = Arc::new(registry);
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        let r = Arc::clone(&registry);
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let mut body = String::new();
            let _ = prometheus_client::encoding::text::encode(&mut body, &r);
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes()).await;
        });
    }
}

//! One client connection: its first bytes read within the header timeout until
//! they name a host (a TLS ClientHello's SNI, or an HTTP request's Host), the
//! host's backend chosen and connected over IPv6, the PROXY header and the bytes
//! read so far sent, then both directions carried until either side is done or
//! the connection has been idle too long.

use crate::http::{self, Head};
use crate::metrics::{Backend as BackendLabel, Bytes, Conn};
use crate::routes::{Backend, Protocol};
use crate::tls::{self, Hello};
use crate::{Config, Fallback, Kind, Shared};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A fatal `unrecognized_name` alert (RFC 6066): no route for the server name.
const ALERT_UNRECOGNIZED_NAME: [u8; 7] = [21, 3, 1, 0, 2, 2, 112];
/// A fatal `internal_error` alert: the backend cannot be reached or is full.
const ALERT_INTERNAL: [u8; 7] = [21, 3, 1, 0, 2, 2, 80];
/// Bytes moved per read, each way.
const CHUNK: usize = 32 * 1024;

/// How a connection ended, for the access log and metrics.
struct Done {
    name: String,
    backend: String,
    /// The PROXY header the backend was sent (`-` before one was chosen).
    protocol: &'static str,
    outcome: &'static str,
    up: u64,
    down: u64,
}

pub async fn handle(shared: Arc<Shared>, kind: Kind, mut client: TcpStream, peer: SocketAddr) {
    let started = Instant::now();
    let _ = client.set_nodelay(true);
    let done = route_and_carry(&shared, kind, &mut client, peer).await;
    let m = &shared.metrics;
    m.connections
        .get_or_create(&Conn {
            backend: done.backend.clone(),
            outcome: done.outcome.into(),
        })
        .inc();
    for (direction, n) in [("up", done.up), ("down", done.down)] {
        if n > 0 {
            m.bytes
                .get_or_create(&Bytes {
                    backend: done.backend.clone(),
                    direction: direction.into(),
                })
                .inc_by(n);
        }
    }
    tracing::info!(
        target: "pirack::proxy::access",
        "{} {} {} -> {} {} up={} down={} {}ms {}",
        plain(peer),
        kind.name(),
        if done.name.is_empty() { "-" } else { &done.name },
        done.backend,
        done.protocol,
        done.up,
        done.down,
        started.elapsed().as_millis(),
        done.outcome
    );
}

/// A client's address as logged: IPv4 clients of a dual-stack listener unmapped.
fn plain(a: SocketAddr) -> String {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()).to_string(),
            None => a.to_string(),
        },
        IpAddr::V4(_) => a.to_string(),
    }
}

async fn route_and_carry(
    shared: &Shared,
    kind: Kind,
    client: &mut TcpStream,
    peer: SocketAddr,
) -> Done {
    let cfg = &shared.config;
    let mut done = Done {
        name: String::new(),
        backend: "-".into(),
        protocol: "-",
        outcome: "",
        up: 0,
        down: 0,
    };
    let mut buf = Vec::with_capacity(4096);
    let sniffed = tokio::time::timeout(cfg.header_timeout, sniff(kind, client, &mut buf)).await;
    let name = match sniffed {
        Err(_) => {
            if kind == Kind::Http {
                let _ = client
                    .write_all(&http::page(408, "the request head took too long"))
                    .await;
            }
            done.outcome = "header timeout";
            return done;
        }
        Ok(Sniffed::Closed) => {
            done.outcome = "closed before a name";
            return done;
        }
        Ok(Sniffed::Bad { status, why }) => {
            if kind == Kind::Http {
                let _ = client.write_all(&http::page(status, why)).await;
            }
            done.outcome = why;
            return done;
        }
        Ok(Sniffed::Name(name)) => name,
    };
    done.name = name.clone().unwrap_or_default();
    let table = shared.routes.current();
    let backend = match name.as_deref().and_then(|n| table.lookup(n)) {
        Some(b) => Target::Route(b),
        None => match (kind, &cfg.tls_fallback) {
            (Kind::Tls, Fallback::Backend(addr)) => Target::Fixed(*addr),
            (Kind::Tls, Fallback::Alert) => {
                let _ = client.write_all(&ALERT_UNRECOGNIZED_NAME).await;
                done.outcome = "unknown name";
                return done;
            }
            (Kind::Http, _) => {
                let what = name.as_deref().unwrap_or("-");
                let _ = client
                    .write_all(&http::page(404, &format!("no site here is called {what}")))
                    .await;
                done.outcome = "unknown name";
                return done;
            }
        },
    };
    if let Target::Route(b) = &backend {
        done.backend = b.name.clone();
    }
    // The backend's share of connections, held until this one ends.
    let _permit = match &backend {
        Target::Route(b) => match Arc::clone(&b.slots).try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                refuse(client, kind, 503, "this site has too many connections open").await;
                done.outcome = "backend full";
                return done;
            }
        },
        Target::Fixed(_) => None,
    };
    let port = match kind {
        Kind::Http => cfg.backend_ports.0,
        Kind::Tls => cfg.backend_ports.1,
    };
    let connect_started = Instant::now();
    let Some(mut upstream) = connect(&backend, port, cfg.connect_timeout).await else {
        refuse(client, kind, 502, "the site's server does not answer").await;
        done.outcome = "backend unreachable";
        return done;
    };
    shared
        .metrics
        .connect_seconds
        .get_or_create(&BackendLabel {
            backend: done.backend.clone(),
        })
        .observe(connect_started.elapsed().as_secs_f64());
    let _ = upstream.set_nodelay(true);
    let protocol = match &backend {
        Target::Route(b) => b.protocol,
        Target::Fixed(_) => cfg.fallback_protocol,
    };
    done.protocol = protocol.name();
    // The address the client reached: only a header needs it (one syscall less).
    let local = match protocol {
        Protocol::Off => peer,
        _ => client.local_addr().unwrap_or(peer),
    };
    let mut first = crate::header::encode(protocol, peer, local, &done.name);
    first.extend_from_slice(&buf);
    if upstream.write_all(&first).await.is_err() {
        done.outcome = "backend closed";
        return done;
    }
    done.up = buf.len() as u64;
    let open = BackendLabel {
        backend: done.backend.clone(),
    };
    shared.metrics.open.get_or_create(&open).inc();
    let (up, down, outcome) = carry(client, &mut upstream, cfg.idle_timeout).await;
    shared.metrics.open.get_or_create(&open).dec();
    done.up += up;
    done.down = down;
    done.outcome = outcome;
    done
}

enum Target {
    Route(Arc<Backend>),
    Fixed(SocketAddr),
}

enum Sniffed {
    Name(Option<String>),
    Bad { status: u16, why: &'static str },
    Closed,
}

/// Reads until the first bytes name a host, keeping them in `buf`.
async fn sniff(kind: Kind, client: &mut TcpStream, buf: &mut Vec<u8>) -> Sniffed {
    let mut chunk = [0u8; 4096];
    loop {
        let verdict = match kind {
            Kind::Tls => match tls::client_hello(buf) {
                Hello::More => None,
                Hello::Sni(n) => Some(Sniffed::Name(n)),
                Hello::Bad(why) => Some(Sniffed::Bad { status: 400, why }),
            },
            Kind::Http => match http::request_host(buf) {
                Head::More => None,
                Head::Host(h) => Some(Sniffed::Name(Some(h))),
                Head::Bad { status, why } => Some(Sniffed::Bad { status, why }),
            },
        };
        if let Some(v) = verdict {
            return v;
        }
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return Sniffed::Closed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn refuse(client: &mut TcpStream, kind: Kind, status: u16, why: &str) {
    let bytes = match kind {
        Kind::Http => http::page(status, why),
        Kind::Tls => ALERT_INTERNAL.to_vec(),
    };
    let _ = client.write_all(&bytes).await;
}

/// The first of the backend's addresses that takes a connection in time.
async fn connect(target: &Target, port: u16, within: Duration) -> Option<TcpStream> {
    let addrs: Vec<SocketAddr> = match target {
        Target::Route(b) => b
            .addrs
            .iter()
            .map(|a| SocketAddr::new(IpAddr::V6(*a), port))
            .collect(),
        Target::Fixed(a) => vec![*a],
    };
    for a in addrs {
        if let Ok(Ok(s)) = tokio::time::timeout(within, TcpStream::connect(a)).await {
            return Some(s);
        }
    }
    None
}

/// Carries bytes both ways until both sides have finished (each side's end
/// passed on as a half-close) or nothing has moved for `idle`; bytes up, bytes
/// down, and how it ended.
async fn carry(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    idle: Duration,
) -> (u64, u64, &'static str) {
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let (up, down) = (AtomicU64::new(0), AtomicU64::new(0));
    let ended = AtomicU8::new(0);
    let (cr, cw) = client.split();
    let (ur, uw) = upstream.split();
    let seen = Seen {
        last: &last,
        start,
        ended: &ended,
    };
    let both = async { tokio::join!(one_way(cr, uw, &up, &seen), one_way(ur, cw, &down, &seen)) };
    let watchdog = async {
        loop {
            tokio::time::sleep(idle / 4).await;
            let quiet = start
                .elapsed()
                .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
            if quiet >= idle {
                return;
            }
        }
    };
    let outcome = tokio::select! {
        (up_ok, down_ok) = both => if up_ok && down_ok { "done" } else { "reset" },
        () = watchdog => "idle timeout",
    };
    (up.into_inner(), down.into_inner(), outcome)
}

/// What both directions of a connection share.
struct Seen<'a> {
    /// When bytes last moved, in ms since `start`.
    last: &'a AtomicU64,
    start: Instant,
    /// Directions that have ended.
    ended: &'a AtomicU8,
}

/// Copies `from` to `to` until `from` ends, then half-closes `to` (unless the
/// other way has ended too: closing both sockets, due next, says the same),
/// counting into `total`; whether it ended cleanly.
async fn one_way(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    total: &AtomicU64,
    seen: &Seen<'_>,
) -> bool {
    // Read into spare capacity: no zeroing of a buffer per connection.
    let mut buf = Vec::with_capacity(CHUNK);
    loop {
        buf.clear();
        let n = match from.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => return false,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return false;
        }
        total.fetch_add(n as u64, Ordering::Relaxed);
        seen.last
            .store(seen.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    if seen.ended.fetch_add(1, Ordering::Relaxed) == 0 {
        let _ = to.shutdown().await;
    }
    true
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Tls => "tls",
        }
    }
}

impl Config {
    /// The settings a test or a small site needs, with its listeners.
    pub fn listening(http: Vec<SocketAddr>, tls: Vec<SocketAddr>) -> Config {
        Config {
            http,
            tls,
            ..Config::default()
        }
    }
}

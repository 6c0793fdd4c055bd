//! The proxy's listeners and the threads that serve them. Each thread has a
//! current-thread runtime and its own socket for every listening address
//! (`SO_REUSEPORT`: the kernel spreads new connections across them), so a
//! connection lives on one thread from accept to close and the several round
//! trips of a TLS handshake never wake another thread, as HAProxy's and
//! nginx's workers do.

use crate::{Kind, ProxyError, Shared, conn};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Connections waiting to be accepted, per socket.
const BACKLOG: i32 = 1024;

/// Binds every listener once per thread (all or none, before anything is
/// served) and starts `config.threads` threads serving them for the life of
/// the process; the addresses bound (a port 0 resolved once, shared by all).
pub fn start(shared: Arc<Shared>) -> Result<Vec<SocketAddr>, ProxyError> {
    let threads = shared.config.threads;
    let wanted: Vec<(Kind, SocketAddr)> = shared
        .config
        .http
        .iter()
        .map(|a| (Kind::Http, *a))
        .chain(shared.config.tls.iter().map(|a| (Kind::Tls, *a)))
        .collect();
    let mut sets: Vec<Vec<(Kind, std::net::TcpListener)>> = Vec::new();
    let mut bound = Vec::new();
    for _ in 0..threads.max(1) {
        let mut set = Vec::new();
        for (i, (kind, want)) in wanted.iter().enumerate() {
            // The first thread's port for every later one (port 0 resolved).
            let addr = bound.get(i).copied().unwrap_or(*want);
            let listener = socket(addr).map_err(|source| ProxyError::Listen { addr, source })?;
            if bound.len() == i {
                bound.push(listener.local_addr().unwrap_or(addr));
            }
            set.push((*kind, listener));
        }
        sets.push(set);
    }
    for (kind, addr) in wanted.iter().map(|(k, _)| k).zip(&bound) {
        tracing::info!("proxy: {} on {addr} ({} threads)", kind.name(), sets.len());
    }
    // Every thread waits for the word to serve: if one cannot be started, the
    // others end with their sockets unused.
    let mut gates = Vec::new();
    for (n, set) in sets.into_iter().enumerate() {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("proxy-{n}"))
            .spawn(move || {
                if wait.recv().is_ok() {
                    serve(shared, set);
                }
            })
            .map_err(|source| ProxyError::Thread { source })?;
        gates.push(go);
    }
    for go in gates {
        let _ = go.send(());
    }
    Ok(bound)
}

/// A non-blocking listening socket on `addr` that others may share.
fn socket(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// One thread's runtime, accepting on its own sockets.
fn serve(shared: Arc<Shared>, set: Vec<(Kind, std::net::TcpListener)>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("proxy: a thread's runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for (kind, listener) in set {
            match TcpListener::from_std(listener) {
                Ok(l) => {
                    tasks.spawn(accept(Arc::clone(&shared), kind, l));
                }
                Err(e) => tracing::error!("proxy: a listener: {e}"),
            }
        }
        while tasks.join_next().await.is_some() {}
    });
}

/// Accepts on `listener` for as long as the task runs, each connection on a
/// task of its own (on this thread).
async fn accept(shared: Arc<Shared>, kind: Kind, listener: TcpListener) {
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
                .get_or_create(&crate::metrics::Conn {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use std::io::{Read, Write};

    /// Two threads share one port; every connection is served whichever
    /// thread the kernel hands it to.
    #[test]
    fn threads_share_each_port() {
        let config = Config {
            threads: 2,
            ..Config::listening(vec!["127.0.0.1:0".parse().unwrap()], Vec::new())
        };
        let shared = Shared::new(config, crate::metrics::Metrics::default());
        let bound = start(shared).unwrap();
        assert_eq!(bound.len(), 1);
        assert_ne!(bound[0].port(), 0);
        for _ in 0..20 {
            let mut c = std::net::TcpStream::connect(bound[0]).unwrap();
            c.write_all(b"GET / HTTP/1.1\r\nHost: nowhere.example\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            c.read_to_string(&mut answer).unwrap();
            assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        }
    }

    /// An address that cannot be bound fails the start, naming it.
    #[test]
    fn a_taken_address_is_named() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let config = Config {
            threads: 2,
            ..Config::listening(vec![addr], Vec::new())
        };
        let shared = Shared::new(config, crate::metrics::Metrics::default());
        let err = start(shared).unwrap_err();
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}

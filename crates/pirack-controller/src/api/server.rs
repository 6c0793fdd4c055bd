//! The API's HTTP/1.1 server, plain or TLS (rustls), under [`Limits`]: at most
//! `max_connections` at once (a connection beyond is answered 503 and closed at
//! once), a request head within `header_timeout` (also the wait for the next
//! one on a kept-alive connection), a connection closed after `idle_timeout`
//! without a byte either way (a stalled body, an answer the client does not
//! read). Each connection is its own task.

use super::limits::Limits;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {what}")]
    File { path: String, what: String },
    #[error("TLS: {0}")]
    Config(#[from] tokio_rustls::rustls::Error),
}

/// A TLS server configuration from a PEM certificate chain and its PEM key.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let file = |p: &Path, what: String| TlsError::File {
        path: p.display().to_string(),
        what,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file(cert, "no PEM certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file(key, e.to_string()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` on `listener` until `shutdown` resolves; then open
/// connections finish their request in flight (5 s at most).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<Arc<ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let tls = tls.map(TlsAcceptor::from);
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like pass: wait a moment rather than spin.
                    tracing::warn!("API accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tokio::spawn(refuse(tcp));
            continue;
        };
        let (router, tls, limits, stopping) = (
            router.clone(),
            tls.clone(),
            limits.clone(),
            stopping.clone(),
        );
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(tcp, router, &limits, stopping).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await;
                    match handshake {
                        Ok(Ok(tls)) => connection(tls, router, &limits, stopping).await,
                        Ok(Err(e)) => tracing::debug!("API TLS handshake: {e}"),
                        Err(_) => tracing::debug!("API TLS handshake timed out"),
                    }
                }
            }
        });
    }
    let _ = stop.send(true);
    // Connections end on their own once told; wait for their permits back.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(5), permits.acquire_many(all)).await;
    Ok(())
}

/// A connection beyond the cap: told so, and closed.
async fn refuse(mut tcp: TcpStream) {
    const BODY: &str =
        r#"{"code":"unavailable","message":"the API has all the connections it takes; try again"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(answer.as_bytes())).await;
}

/// Serves one connection until the client closes it, it idles out, or the
/// server stops.
async fn connection<T>(io: T, router: Router, limits: &Limits, mut stopping: watch::Receiver<bool>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let seen = Arc::new(AtomicU64::new(0));
    let born = Instant::now();
    let io = Watched {
        inner: io,
        seen: Arc::clone(&seen),
        born,
    };
    let service = TowerToHyperService::new(router);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let mut closing: Option<Instant> = None;
    // How long since a byte last went either way.
    let idle = || {
        born.elapsed()
            .saturating_sub(Duration::from_millis(seen.load(Ordering::Relaxed)))
    };
    loop {
        let wait = limits
            .idle_timeout
            .saturating_sub(idle())
            .max(Duration::from_millis(100));
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!("API connection: {e}");
                }
                return;
            }
            () = tokio::time::sleep(wait), if closing.is_none() => {
                if idle() >= limits.idle_timeout {
                    // Silent both ways: a stalled body or an unread answer. Nothing
                    // would finish gracefully, so the connection just ends.
                    return;
                }
            }
            _ = stopping.changed(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now());
            }
            () = tokio::time::sleep(Duration::from_secs(5)), if closing.is_some() => {
                // An answer that does not end (an event stream) ends here.
                return;
            }
        }
    }
}

/// A connection's I/O, noting when a byte last went either way (ms since
/// `born`), for the idle timeout.
struct Watched<T> {
    inner: T,
    seen: Arc<AtomicU64>,
    born: Instant,
}

impl<T> Watched<T> {
    fn touch(&self) {
        self.seen
            .store(self.born.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

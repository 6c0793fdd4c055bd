//! The HTTP check: a visitor's request through the proxy's IPv4 listener, by
//! name, over TLS (the name as SNI) or plain HTTP (as Host). Its certificate
//! is not judged: a customer may use its own CA or a self-signed one, and
//! what matters here is that the path answers.

use pirack_core::inventory::model::HttpCheck;
use pirack_core::monitor::status::{StatusError, status};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring, verify_tls12_signature};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// The most of a response read for its status line.
const HEAD: usize = 1024;

/// Asks `via` for `check.path` on `name`; the status must be in `check.ok_status`.
pub async fn probe(
    via: SocketAddr,
    name: &str,
    check: &HttpCheck,
    timeout: Duration,
) -> Result<Option<Duration>, String> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {name}\r\nUser-Agent: pirack-monitor\r\nConnection: close\r\n\r\n",
        check.path
    );
    let run = async {
        let tcp = TcpStream::connect(via)
            .await
            .map_err(|e| format!("{via}: {e}"))?;
        let code = if check.tls {
            let sni = ServerName::try_from(name.to_string()).map_err(|e| format!("{name}: {e}"))?;
            let tls = TlsConnector::from(Arc::clone(&CONFIG))
                .connect(sni, tcp)
                .await
                .map_err(|e| format!("TLS to {name} via {via}: {e}"))?;
            ask(tls, &request).await?
        } else {
            ask(tcp, &request).await?
        };
        let [lo, hi] = check.ok_status;
        match (lo..=hi).contains(&code) {
            true => Ok(None),
            false => Err(format!("{name}{} answered {code}", check.path)),
        }
    };
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer from {name} via {via} within {timeout:?}"
            ))
        })
}

async fn ask(mut io: impl AsyncRead + AsyncWrite + Unpin, request: &str) -> Result<u16, String> {
    io.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = Vec::with_capacity(HEAD);
    loop {
        let mut buf = [0; 256];
        let n = io.read(&mut buf).await.map_err(|e| e.to_string())?;
        head.extend_from_slice(&buf[..n]);
        match status(&head) {
            Err(StatusError::Incomplete(_)) if n > 0 && head.len() < HEAD => {}
            r => return r.map_err(|e| e.to_string()),
        }
    }
}

/// One client configuration for every probe: any certificate, but the
/// handshake's signatures still checked with its key.
static CONFIG: LazyLock<Arc<ClientConfig>> = LazyLock::new(|| {
    let provider = Arc::new(ring::default_provider());
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Arc::new(config)
});

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        tokio_rustls::rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

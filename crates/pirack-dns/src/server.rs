//! One signed TCP connection to a zone's primary server: zone reads by AXFR and
//! updates, each answer's TSIG checked by hickory's multiplexer.

use crate::{DnsError, wire};
use futures_util::StreamExt;
use hickory_net::DnsMultiplexer;
use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::xfer::DnsHandle;
use hickory_proto::op::{DnsRequest, Message, ResponseCode};
use hickory_proto::rr::{RecordType, TSigner};
use pirack_core::dns::Record;
use std::net::SocketAddr;
use std::time::Duration;

/// How long one exchange may take; a zone transfer gets this per message.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Updates in flight on one connection.
const IN_FLIGHT: usize = 64;

pub struct Server {
    pub addr: SocketAddr,
    key: String,
    client: Client<TokioRuntimeProvider>,
}

impl Server {
    /// Connects to `addr`, signing with `signer` (the key named `key`).
    pub async fn connect(addr: SocketAddr, signer: TSigner) -> Result<Server, DnsError> {
        let key = signer
            .signer_name()
            .to_ascii()
            .trim_end_matches('.')
            .to_string();
        let (stream, handle) =
            TcpClientStream::new(addr, None, Some(TIMEOUT), TokioRuntimeProvider::default());
        let stream = tokio::time::timeout(TIMEOUT, stream)
            .await
            .map_err(|_| hickory_net::NetError::Timeout)
            .and_then(|r| r)
            .map_err(|source| DnsError::Net {
                server: addr,
                what: "connecting".into(),
                source: Box::new(source),
            })?;
        let multiplexer = DnsMultiplexer::new(stream, handle)
            .with_timeout(TIMEOUT)
            .with_max_active_requests(IN_FLIGHT)
            .with_signer(signer);
        let (client, background) = Client::<TokioRuntimeProvider>::from_sender(multiplexer);
        tokio::spawn(background);
        Ok(Server { addr, key, client })
    }

    /// Every record of `zone` (SOA, NS and all), by AXFR.
    pub async fn transfer(&self, zone: &str) -> Result<Vec<Record>, DnsError> {
        let what = format!("zone transfer of {zone}");
        let mut stream = self.client.clone().zone_transfer(wire::name(zone)?, None);
        let mut out = Vec::new();
        while let Some(answer) = stream.next().await {
            let answer = answer.map_err(|e| self.error(&what, e))?;
            let code = answer.metadata.response_code;
            if code != ResponseCode::NoError {
                return Err(self.refusal(&what, code));
            }
            out.extend(
                answer
                    .answers
                    .iter()
                    .filter(|r| r.record_type() != RecordType::SOA)
                    .map(wire::from_wire),
            );
        }
        Ok(out)
    }

    /// Sends one update; the server's answer code (NoError, or a failed
    /// prerequisite such as YXRRSET); a refusal or a bad key is an error. With
    /// the connection's updates in flight at their bound, it waits its turn.
    pub async fn update(&self, message: Message) -> Result<ResponseCode, DnsError> {
        let what = "update";
        let answer = loop {
            let sent = self
                .client
                .send(DnsRequest::from(message.clone()))
                .next()
                .await;
            match sent {
                Some(Err(hickory_net::NetError::Busy)) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Some(answer) => break answer.map_err(|e| self.error(what, e))?,
                None => return Err(self.error(what, hickory_net::NetError::Timeout)),
            }
        };
        match answer.metadata.response_code {
            code @ (ResponseCode::NoError
            | ResponseCode::YXDomain
            | ResponseCode::YXRRSet
            | ResponseCode::NXRRSet
            | ResponseCode::NXDomain) => Ok(code),
            other => Err(self.refusal(what, other)),
        }
    }

    /// What an answer other than NoError means: a key the server rejects, or a
    /// refusal of `what`.
    fn refusal(&self, what: &str, code: ResponseCode) -> DnsError {
        match code {
            ResponseCode::NotAuth
            | ResponseCode::BADSIG
            | ResponseCode::BADKEY
            | ResponseCode::BADTIME => DnsError::Key {
                server: self.addr,
                key: self.key.clone(),
                code: code.to_string(),
            },
            other => DnsError::Refused {
                server: self.addr,
                what: what.to_string(),
                code: other.to_string(),
            },
        }
    }

    /// hickory reports a reply it cannot verify (a server that rejected the key
    /// answers unsigned) as a TSIG failure of its own: that is the key.
    fn error(&self, what: &str, e: hickory_net::NetError) -> DnsError {
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("tsig") || text.contains("hmac") || text.contains("signature") {
            return DnsError::Key {
                server: self.addr,
                key: self.key.clone(),
                code: "its answer was not signed with the key".into(),
            };
        }
        DnsError::Net {
            server: self.addr,
            what: what.to_string(),
            source: Box::new(e),
        }
    }
}

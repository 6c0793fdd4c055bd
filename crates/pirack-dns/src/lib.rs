//! Publishing the site's names on the DNS servers a hosting company already runs.
//! What should be there and how far a zone is from it are pirack-core's pure
//! [`pirack_core::dns`]; this crate talks to the servers: it reads each zone by
//! AXFR and sends the changes as RFC 2136 updates, everything signed with the
//! site's TSIG key, over TCP.

pub mod key;
pub mod reconcile;
pub mod resolve;
pub mod server;
pub mod wire;

pub use hickory_proto::op::ResponseCode;
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("TSIG key `{key}`: {reason}")]
    Secret { key: String, reason: String },
    #[error(
        "DNS server {server} refused TSIG key `{key}` ({code}): its secret or algorithm differs from the server's, \
         or the server does not know the key"
    )]
    Key {
        server: SocketAddr,
        key: String,
        code: String,
    },
    #[error("DNS server {server}: {what}: {source}")]
    Net {
        server: SocketAddr,
        what: String,
        #[source]
        source: Box<hickory_net::NetError>,
    },
    #[error("DNS server {server}: {what} answered {code}")]
    Refused {
        server: SocketAddr,
        what: String,
        code: String,
    },
    #[error("no DNS server answered: {0}")]
    NoServer(String),
    #[error("`{0}` is not a DNS name")]
    Name(String),
    #[error("not a record pirack can write: {0}")]
    Type(String),
    #[error("the store: {0}")]
    Store(String),
}

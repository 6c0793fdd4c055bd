//! The in-process event bus: every DHCP and TFTP observation, published once and
//! read by whoever subscribes (the log today, the lifecycle store later).

use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::broadcast;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A storage interface cannot be served yet (missing, down, or lacking the
    /// fileserver address); retried.
    InterfaceDown {
        interface: String,
        reason: String,
    },
    InterfaceUp {
        interface: String,
    },
    DhcpDiscover {
        mac: String,
        client: String,
    },
    DhcpOffer {
        mac: String,
        yiaddr: Ipv4Addr,
        delay_ms: u64,
    },
    DhcpRequest {
        mac: String,
    },
    DhcpAck {
        mac: String,
        yiaddr: Ipv4Addr,
    },
    DhcpNak {
        mac: String,
        reason: String,
    },
    /// A DHCP packet that got no answer, and why.
    DhcpIgnored {
        interface: String,
        mac: String,
        reason: String,
    },
    /// A board the slot does not know appeared in it.
    UnknownBoard {
        mac: String,
        serial: Option<String>,
        adopted: bool,
    },
    TftpStarted {
        peer: SocketAddr,
        file: String,
        size: u64,
    },
    TftpFinished {
        peer: SocketAddr,
        file: String,
        bytes: u64,
        #[serde(with = "millis")]
        duration: Duration,
    },
    /// The client ended the transfer after the option negotiation: the firmware's
    /// existence probe, not a failure.
    TftpProbed {
        peer: SocketAddr,
        file: String,
    },
    TftpFailed {
        peer: SocketAddr,
        file: String,
        bytes: u64,
        #[serde(with = "millis")]
        duration: Duration,
        error: String,
    },
    /// Datagrams that came in on one slot's wire (`ifindex`; the event's slot)
    /// claiming another address, dropped unanswered: a Pi posing as another.
    Spoofed {
        ifindex: u32,
        claimed: IpAddr,
        protocol: String,
        dropped: u64,
    },
    /// A request refused before any transfer: not found, not allowed, malformed.
    TftpRefused {
        peer: SocketAddr,
        file: String,
        reason: String,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::InterfaceDown { interface, reason } => {
                write!(f, "{interface} not served: {reason}")
            }
            Event::InterfaceUp { interface } => write!(f, "{interface} served"),
            Event::DhcpDiscover { mac, client } => write!(f, "DHCP DISCOVER from {mac} ({client})"),
            Event::DhcpOffer {
                mac,
                yiaddr,
                delay_ms,
            } => {
                write!(f, "DHCP OFFER {yiaddr} to {mac} after {delay_ms} ms")
            }
            Event::DhcpRequest { mac } => write!(f, "DHCP REQUEST from {mac}"),
            Event::DhcpAck { mac, yiaddr } => write!(f, "DHCP ACK {yiaddr} to {mac}"),
            Event::DhcpNak { mac, reason } => write!(f, "DHCP NAK to {mac}: {reason}"),
            Event::DhcpIgnored {
                interface,
                mac,
                reason,
            } => {
                write!(f, "DHCP from {mac} on {interface} ignored: {reason}")
            }
            Event::UnknownBoard {
                mac,
                serial,
                adopted,
            } => write!(
                f,
                "unknown board {mac} (serial {}) {}",
                serial.as_deref().unwrap_or("unknown"),
                if *adopted { "adopted" } else { "held" }
            ),
            Event::TftpStarted { peer, file, size } => {
                write!(f, "TFTP {file} to {peer}: {size} bytes")
            }
            Event::TftpFinished {
                peer,
                file,
                bytes,
                duration,
            } => {
                write!(
                    f,
                    "TFTP {file} to {peer}: done, {bytes} bytes in {} ms",
                    duration.as_millis()
                )
            }
            Event::TftpProbed { peer, file } => write!(f, "TFTP {file} to {peer}: probed"),
            Event::TftpFailed {
                peer,
                file,
                bytes,
                error,
                ..
            } => {
                write!(
                    f,
                    "TFTP {file} to {peer}: failed after {bytes} bytes: {error}"
                )
            }
            Event::Spoofed {
                ifindex,
                claimed,
                protocol,
                dropped,
            } => write!(
                f,
                "{dropped} {protocol} datagram(s) from {claimed} dropped: they came in on \
                 interface #{ifindex}, not on {claimed}'s own"
            ),
            Event::TftpRefused { peer, file, reason } => {
                write!(f, "TFTP {file:?} for {peer} refused: {reason}")
            }
        }
    }
}

mod millis {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

/// An event with when and where.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    #[serde(with = "unix_millis")]
    pub at: SystemTime,
    /// Position of the slot it concerns, when known.
    pub slot: Option<String>,
    #[serde(flatten)]
    pub event: Event,
}

mod unix_millis {
    use serde::Serializer;
    use std::time::{SystemTime, UNIX_EPOCH};
    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        )
    }
}

/// Publishes events to every subscriber. Slow subscribers lose the oldest events
/// (and are told how many) rather than slowing the servers down.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Record>>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new(4096)
    }
}

/// A subscriber's end of the bus.
pub type Receiver = broadcast::Receiver<Arc<Record>>;

impl Bus {
    pub fn new(capacity: usize) -> Bus {
        Bus {
            tx: broadcast::channel(capacity).0,
        }
    }

    pub fn publish(&self, slot: Option<&str>, event: Event) {
        // No subscriber is not an error: events are observations, not commands.
        let _ = self.tx.send(Arc::new(Record {
            at: SystemTime::now(),
            slot: slot.map(str::to_string),
            event,
        }));
    }

    pub fn subscribe(&self) -> Receiver {
        self.tx.subscribe()
    }
}

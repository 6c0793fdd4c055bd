//! The TFTP server's front: read requests on the TFTP port, checked and resolved to
//! content here, then handed to the transfer engine (`transfers`). A client's ERROR
//! ends its transfer at once, so the firmware's probe-then-abort-then-re-request
//! costs one round trip.

use super::transfers::{self, Limits, Start};
use super::tree::{self, FileCache, Refusal, Source};
use super::wire::{ErrorCode, Repr};
use crate::Shared;
use crate::events::Event;
use crate::netif;
use pirack_core::plan::SlotPlan;
use pirack_core::text::printable;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Socket buffers of the data socket: room for a storm's worth of ACKs and DATA.
const DATA_BUFFER: usize = 4 << 20;

#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The TFTP port (69 on a real network; 0 picks any).
    pub port: u16,
    pub limits: Limits,
}

/// Everything a transfer needs, shared by all of them.
pub struct Server {
    /// The slots, by their Pi's address.
    slots: HashMap<IpAddr, Arc<SlotPlan>>,
    net: Arc<Shared>,
    cache: FileCache,
    cfg: Config,
}

impl Server {
    pub fn new(slots: &[SlotPlan], net: Arc<Shared>, cfg: Config) -> Server {
        Server {
            slots: slots
                .iter()
                .map(|s| (IpAddr::V4(s.pi_ip), Arc::new(s.clone())))
                .collect(),
            net,
            cache: FileCache::default(),
            cfg,
        }
    }

    /// The request socket, shared with no other socket.
    pub fn bind(&self) -> io::Result<UdpSocket> {
        netif::udp(SocketAddr::from(([0, 0, 0, 0], self.cfg.port)), 0)
    }

    /// Serves requests arriving on `sock` until the socket fails. A request is a
    /// slot's only when it comes from the slot's Pi address and in on the slot's
    /// interface; one claiming a Pi's address on another wire is dropped unanswered.
    pub async fn run(self: Arc<Self>, sock: UdpSocket) -> io::Result<()> {
        let data = netif::udp(SocketAddr::from(([0, 0, 0, 0], 0)), DATA_BUFFER)?;
        let (starts, rx) = mpsc::unbounded_channel();
        tokio::spawn(transfers::run(
            data,
            rx,
            self.cfg.limits,
            Arc::clone(&self.net),
        ));
        let mut buf = vec![0u8; 2048];
        loop {
            let arrived = netif::recv(&sock, &mut buf).await?;
            let (n, peer) = (arrived.len, arrived.from);
            let slot = self.slots.get(&peer.ip()).cloned();
            if let Some(t) = &slot
                && self.net.wires.index_of(&t.position) != Some(arrived.ifindex)
            {
                let net = &self.net;
                net.spoofs
                    .drop(&net.wires, &net.bus, arrived.ifindex, peer.ip(), "TFTP");
                continue;
            }
            let pos = slot.as_ref().map(|t| t.position.clone());
            let refuse = |file: &str, why: Refusal| {
                self.net.bus.publish(
                    pos.as_deref(),
                    Event::TftpRefused {
                        peer,
                        file: printable(file),
                        reason: why.to_string(),
                    },
                );
                error_packet(&why)
            };
            let reply = match Repr::parse(&buf[..n]) {
                Ok(Repr::Read {
                    filename,
                    mode,
                    options,
                }) => match slot {
                    None => Some(refuse(filename, Refusal::UnknownClient(peer.ip()))),
                    Some(slot) => match self.source(&slot, filename, mode).await {
                        Ok(content) => {
                            let start = Start {
                                peer,
                                ifindex: arrived.ifindex,
                                slot: slot.position.clone(),
                                file: printable(filename),
                                content,
                                asked: options,
                            };
                            if starts.send(start).is_err() {
                                return Err(io::Error::other("TFTP transfer engine stopped"));
                            }
                            None
                        }
                        Err(why) => Some(refuse(filename, why)),
                    },
                },
                Ok(Repr::Write { filename, .. }) => {
                    let why = "pirack serves boot files read-only";
                    self.net.bus.publish(
                        pos.as_deref(),
                        Event::TftpRefused {
                            peer,
                            file: printable(filename),
                            reason: why.into(),
                        },
                    );
                    Some(
                        Repr::Error {
                            code: ErrorCode::AccessViolation,
                            message: why,
                        }
                        .to_vec(),
                    )
                }
                // Stray packets for finished transfers: nothing to say.
                Ok(_) => None,
                Err(e) => {
                    self.net.bus.publish(
                        pos.as_deref(),
                        Event::TftpRefused {
                            peer,
                            file: String::new(),
                            reason: e.to_string(),
                        },
                    );
                    Some(
                        Repr::Error {
                            code: ErrorCode::IllegalOperation,
                            message: &e.to_string(),
                        }
                        .to_vec(),
                    )
                }
            };
            if let Some(bytes) = reply {
                // A lost error reply is the client's timeout, not our failure.
                let _ = sock.send_to(&bytes, peer).await;
            }
        }
    }

    async fn source(&self, slot: &SlotPlan, name: &str, mode: &str) -> Result<Arc<[u8]>, Refusal> {
        let netascii = match mode.to_ascii_lowercase().as_str() {
            "octet" => false,
            "netascii" => true,
            _ => return Err(Refusal::BadName("unsupported transfer mode")),
        };
        let (source, root) = tree::resolve(slot, name, &self.net.boards, &self.net.boots)?;
        let bytes = match source {
            Source::Generated(b) => b,
            Source::File(path) => self.cache.get(&path, &root).await?,
        };
        Ok(if netascii {
            to_netascii(&bytes).into()
        } else {
            bytes
        })
    }
}

fn error_packet(why: &Refusal) -> Vec<u8> {
    let code = match why {
        Refusal::NotFound | Refusal::NothingToBoot => ErrorCode::FileNotFound,
        _ => ErrorCode::AccessViolation,
    };
    Repr::Error {
        code,
        message: &why.to_string(),
    }
    .to_vec()
}

/// RFC 764 netascii: line ends as CR LF, a lone CR as CR NUL.
fn to_netascii(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    for &b in bytes {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            _ => out.push(b),
        }
    }
    out
}

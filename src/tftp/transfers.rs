//! Every transfer of the server, multiplexed on one data socket. A transfer is
//! known by its client's address (the client's TID); the server's TID is the data
//! socket's port, the same for all, which RFC 1350 allows (each side picks its own).
//!
//! One socket instead of one per transfer: in a boot storm the socket holds ACKs
//! of many Pis at each wake-up, so one readiness wait and one would-block read serve
//! them all, where per-transfer sockets pay both for every block (see
//! benches/boot_storm.rs). The kernel picks each packet's source address by route:
//! the fileserver address of the Pi's own storage interface.

use super::wire::{self, ErrorCode, Options, Repr};
use crate::events::{Bus, Event};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A transfer to start: what to send to whom.
#[derive(Debug)]
pub struct Start {
    pub peer: SocketAddr,
    pub slot: String,
    pub file: String,
    pub content: Arc<[u8]>,
    pub asked: Options,
}

/// Limits applied to what clients ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub retries: u32,
    pub max_blksize: u16,
    pub max_window: u16,
}

struct Transfer {
    slot: String,
    file: String,
    content: Arc<[u8]>,
    blksize: usize,
    window: u64,
    timeout: Duration,
    /// The OACK while it awaits ACK 0.
    oack: Option<Vec<u8>>,
    /// Index of the last block (blocks count from 1; the last is short, maybe empty).
    last: u64,
    acked: u64,
    tries: u32,
    deadline: Instant,
    started: Instant,
}

impl Transfer {
    fn new(s: &Start, limits: &Limits) -> Transfer {
        let granted = Options {
            blksize: s
                .asked
                .blksize
                .map(|b| b.clamp(wire::MIN_BLKSIZE, limits.max_blksize.min(wire::MAX_BLKSIZE))),
            tsize: s.asked.tsize.map(|_| s.content.len() as u64),
            timeout: s.asked.timeout.filter(|t| *t >= 1),
            windowsize: s
                .asked
                .windowsize
                .map(|w| w.clamp(1, limits.max_window.max(1))),
        };
        let blksize = usize::from(granted.blksize.unwrap_or(512));
        let now = Instant::now();
        Transfer {
            slot: s.slot.clone(),
            file: s.file.clone(),
            content: s.content.clone(),
            blksize,
            window: u64::from(granted.windowsize.unwrap_or(1)),
            timeout: granted
                .timeout
                .map_or(limits.timeout, |t| Duration::from_secs(u64::from(t))),
            oack: (!granted.is_empty()).then(|| Repr::OptionAck { options: granted }.to_vec()),
            last: s.content.len() as u64 / blksize as u64 + 1,
            acked: 0,
            tries: 0,
            deadline: now,
            started: now,
        }
    }

    fn sent_bytes(&self) -> u64 {
        (self.acked * self.blksize as u64).min(self.content.len() as u64)
    }
}

enum End {
    Done,
    Probed,
    Failed(String),
}

/// Runs the transfers handed in on `starts` until that channel closes.
pub async fn run(
    sock: UdpSocket,
    mut starts: mpsc::UnboundedReceiver<Start>,
    limits: Limits,
    bus: Bus,
) {
    let mut e = Engine {
        sock,
        transfers: HashMap::new(),
        limits,
        bus,
        out: Vec::with_capacity(4 + usize::from(limits.max_blksize)),
    };
    let mut buf = vec![0u8; 2048];
    loop {
        let next = e.transfers.values().map(|t| t.deadline).min();
        tokio::select! {
            biased;
            ready = e.sock.readable() => {
                if let Err(err) = ready {
                    tracing::error!("TFTP data socket: {err}");
                    return;
                }
                // Every datagram queued now, then back to waiting.
                loop {
                    match e.sock.try_recv_from(&mut buf) {
                        Ok((n, peer)) => e.packet(peer, &buf[..n]),
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                        Err(err) => {
                            tracing::warn!("TFTP data socket: {err}");
                            break;
                        }
                    }
                }
            }
            start = starts.recv() => match start {
                Some(s) => e.start(s),
                None => return,
            },
            _ = sleep_until(next) => e.expire(),
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Engine {
    sock: UdpSocket,
    transfers: HashMap<SocketAddr, Transfer>,
    limits: Limits,
    bus: Bus,
    out: Vec<u8>,
}

impl Engine {
    fn start(&mut self, s: Start) {
        let t = Transfer::new(&s, &self.limits);
        self.bus.publish(
            Some(&t.slot),
            Event::TftpStarted {
                peer: s.peer,
                file: t.file.clone(),
                size: t.content.len() as u64,
            },
        );
        // A repeated request from the same client replaces its transfer.
        self.transfers.insert(s.peer, t);
        self.transmit(s.peer);
    }

    /// Sends what the transfer is waiting to have acknowledged: the OACK, or the
    /// window after the last acknowledged block.
    fn transmit(&mut self, peer: SocketAddr) {
        let Some(t) = self.transfers.get_mut(&peer) else {
            return;
        };
        t.deadline = Instant::now() + t.timeout;
        if let Some(oack) = &t.oack {
            send(&self.sock, oack, peer);
            return;
        }
        for i in t.acked + 1..=(t.acked + t.window).min(t.last) {
            let start = ((i - 1) as usize * t.blksize).min(t.content.len());
            let data = &t.content[start..(start + t.blksize).min(t.content.len())];
            self.out.clear();
            Repr::Data {
                block: i as u16,
                data,
            }
            .emit(&mut self.out);
            send(&self.sock, &self.out, peer);
        }
    }

    fn packet(&mut self, peer: SocketAddr, bytes: &[u8]) {
        let Some(t) = self.transfers.get_mut(&peer) else {
            // A stray packet for a finished transfer, or from a stranger.
            return;
        };
        match Repr::parse(bytes) {
            Ok(Repr::Ack { block: 0 }) if t.oack.is_some() => {
                t.oack = None;
                t.tries = 0;
                self.transmit(peer);
            }
            Ok(Repr::Ack { .. }) if t.oack.is_some() => {}
            Ok(Repr::Ack { block }) => {
                // Which unacknowledged block of the window this ACK names; older and
                // duplicate ACKs are ignored (no Sorcerer's Apprentice resends).
                let span = t.window.min(t.last - t.acked);
                if let Some(i) = (t.acked + 1..=t.acked + span).find(|i| *i as u16 == block) {
                    t.acked = i;
                    t.tries = 0;
                    if t.acked == t.last {
                        self.finish(peer, End::Done);
                    } else {
                        self.transmit(peer);
                    }
                }
            }
            Ok(Repr::Error { .. }) if t.oack.is_some() => self.finish(peer, End::Probed),
            Ok(Repr::Error { code, message }) => {
                let why = format!("client sent ERROR {}: {message}", code.to_u16());
                self.finish(peer, End::Failed(why));
            }
            _ => {}
        }
    }

    /// Retransmits for every transfer past its deadline, or gives it up.
    fn expire(&mut self) {
        let now = Instant::now();
        let due: Vec<SocketAddr> = self
            .transfers
            .iter()
            .filter(|(_, t)| t.deadline <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            let t = self.transfers.get_mut(&peer).expect("listed above");
            if t.tries >= self.limits.retries {
                let why = format!("no ACK after {} retransmissions", t.tries);
                self.finish(peer, End::Failed(why));
            } else {
                t.tries += 1;
                self.transmit(peer);
            }
        }
    }

    fn finish(&mut self, peer: SocketAddr, end: End) {
        let Some(t) = self.transfers.remove(&peer) else {
            return;
        };
        let duration = t.started.elapsed();
        let event = match end {
            End::Done => Event::TftpFinished {
                peer,
                file: t.file,
                bytes: t.content.len() as u64,
                duration,
            },
            End::Probed => Event::TftpProbed { peer, file: t.file },
            End::Failed(error) => {
                let bytes = t.sent_bytes();
                if !error.starts_with("client") {
                    let abort = Repr::Error {
                        code: ErrorCode::Undefined,
                        message: &error,
                    }
                    .to_vec();
                    send(&self.sock, &abort, peer);
                }
                Event::TftpFailed {
                    peer,
                    file: t.file,
                    bytes,
                    duration,
                    error,
                }
            }
        };
        self.bus.publish(Some(&t.slot), event);
    }
}

/// Sends without waiting: UDP has no flow control to wait for, and a datagram the
/// kernel cannot queue is a lost packet that the retransmission timer recovers.
fn send(sock: &UdpSocket, bytes: &[u8], peer: SocketAddr) {
    if let Err(e) = sock.try_send_to(bytes, peer)
        && e.kind() != io::ErrorKind::WouldBlock
    {
        tracing::debug!("TFTP send to {peer}: {e}");
    }
}

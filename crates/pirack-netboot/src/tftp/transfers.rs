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
use crate::events::Event;
use crate::{Shared, netif};
use pirack_core::text::printable;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Datagrams handled per wake-up before other tasks get a turn.
const BATCH: usize = 64;

/// A transfer to start: what to send to whom.
#[derive(Debug)]
pub struct Start {
    pub peer: SocketAddr,
    /// The interface the request came in on: the slot's.
    pub ifindex: u32,
    pub slot: String,
    pub file: String,
    pub content: Arc<[u8]>,
    pub asked: Options,
}

/// Limits applied to what clients ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Retransmission timeout when the client asks for none.
    pub timeout: Duration,
    /// Retransmissions of one packet before a transfer is given up.
    pub retries: u32,
    /// Largest block size granted (a bigger one would fragment on Ethernet).
    pub max_blksize: u16,
    pub max_window: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(1),
            retries: 5,
            max_blksize: 1468,
            max_window: 64,
        }
    }
}

struct Transfer {
    slot: String,
    /// The slot's interface: ACKs from anywhere else are not the Pi's.
    ifindex: u32,
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
            ifindex: s.ifindex,
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
    net: Arc<Shared>,
) {
    let mut e = Engine {
        sock,
        transfers: HashMap::new(),
        limits,
        net,
        out: Vec::with_capacity(4 + usize::from(limits.max_blksize)),
        backlog: VecDeque::new(),
    };
    let mut buf = vec![0u8; 2048];
    loop {
        let next = e.transfers.values().map(|t| t.deadline).min();
        // Unbiased: under a flood of ACKs the socket is always readable, and new
        // transfers and retransmission timers must still get their turn.
        tokio::select! {
            ready = e.sock.readable() => {
                if let Err(err) = ready {
                    tracing::error!("TFTP data socket: {err}");
                    return;
                }
                // The datagrams queued now, up to a batch: in a storm the queue never
                // empties, and the request listener shares this thread.
                let mut handled = 0;
                while handled < BATCH {
                    match netif::try_recv(&e.sock, &mut buf) {
                        Ok(a) => e.packet(a.from, a.ifindex, &buf[..a.len]),
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                        Err(err) => {
                            tracing::warn!("TFTP data socket: {err}");
                            break;
                        }
                    }
                    handled += 1;
                }
                if handled == BATCH {
                    tokio::task::yield_now().await;
                }
            }
            ready = e.sock.writable(), if !e.backlog.is_empty() => {
                if ready.is_ok() {
                    e.flush();
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
    net: Arc<Shared>,
    out: Vec<u8>,
    /// Packets the socket had no room for, sent in order once it has. A datagram
    /// sits in the data socket's send buffer until its Pi reads it, so many slow
    /// Pis can fill the buffer that all transfers share.
    backlog: VecDeque<(SocketAddr, Vec<u8>)>,
}

impl Engine {
    /// Sends now, or queues behind what already waits for room.
    fn send(&mut self, peer: SocketAddr, bytes: &[u8]) {
        if self.backlog.is_empty() {
            match self.sock.try_send_to(bytes, peer) {
                Ok(_) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    // Lost like a dropped packet; the retransmission timer recovers.
                    tracing::debug!("TFTP send to {peer}: {e}");
                    return;
                }
            }
        }
        self.backlog.push_back((peer, bytes.to_vec()));
    }

    fn flush(&mut self) {
        while let Some((peer, bytes)) = self.backlog.front() {
            match self.sock.try_send_to(bytes, *peer) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => tracing::debug!("TFTP send to {peer}: {e}"),
                Ok(_) => {}
            }
            self.backlog.pop_front();
        }
    }

    fn start(&mut self, s: Start) {
        let t = Transfer::new(&s, &self.limits);
        self.net.bus.publish(
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
        if let Some(oack) = t.oack.clone() {
            self.send(peer, &oack);
            return;
        }
        let (content, blksize) = (Arc::clone(&t.content), t.blksize);
        let blocks = t.acked + 1..=(t.acked + t.window).min(t.last);
        let mut out = std::mem::take(&mut self.out);
        for i in blocks {
            let start = ((i - 1) as usize * blksize).min(content.len());
            let data = &content[start..(start + blksize).min(content.len())];
            out.clear();
            Repr::Data {
                block: i as u16,
                data,
            }
            .emit(&mut out);
            self.send(peer, &out);
        }
        self.out = out;
    }

    fn packet(&mut self, peer: SocketAddr, ifindex: u32, bytes: &[u8]) {
        let Some(t) = self.transfers.get_mut(&peer) else {
            // A stray packet for a finished transfer, or from a stranger.
            return;
        };
        if t.ifindex != ifindex {
            // Another wire claiming this Pi's address: it drives nothing.
            let net = &self.net;
            net.spoofs
                .drop(&net.wires, &net.bus, ifindex, peer.ip(), "TFTP");
            return;
        }
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
                let why = format!(
                    "client sent ERROR {}: {}",
                    code.to_u16(),
                    printable(message)
                );
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
                    self.send(peer, &abort);
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
        self.net.bus.publish(Some(&t.slot), event);
    }
}

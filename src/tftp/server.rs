//! The TFTP server: read requests on one port, each transfer on its own socket and
//! task, lock-step (RFC 1350) or windowed (RFC 7440). A client's ERROR ends its
//! transfer at once, so the firmware's probe-then-abort-then-re-request costs one
//! round trip.

use super::tree::{FileCache, Refusal, SlotTree, Source};
use super::wire::{self, ErrorCode, Options, Repr};
use crate::boards::Boards;
use crate::events::{Bus, Event};
use crate::netif;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    /// Retransmission timeout when the client asks for none.
    pub timeout: Duration,
    /// Retransmissions of one packet before a transfer is given up.
    pub retries: u32,
    /// Largest block size granted (a bigger one would fragment on Ethernet).
    pub max_blksize: u16,
    pub max_window: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 69,
            timeout: Duration::from_secs(1),
            retries: 5,
            max_blksize: 1468,
            max_window: 64,
        }
    }
}

/// Everything a transfer needs, shared by all of them.
pub struct Server {
    trees: HashMap<IpAddr, Arc<SlotTree>>,
    boot_dir: PathBuf,
    boards: Arc<Boards>,
    cache: FileCache,
    bus: Bus,
    cfg: Config,
}

impl Server {
    pub fn new(
        trees: Vec<SlotTree>,
        boot_dir: PathBuf,
        boards: Arc<Boards>,
        bus: Bus,
        cfg: Config,
    ) -> Server {
        Server {
            trees: trees
                .into_iter()
                .map(|t| (IpAddr::V4(t.slot.pi_ip), Arc::new(t)))
                .collect(),
            boot_dir,
            boards,
            cache: FileCache::default(),
            bus,
            cfg,
        }
    }

    pub fn bind(&self) -> io::Result<UdpSocket> {
        netif::udp(SocketAddr::from(([0, 0, 0, 0], self.cfg.port)))
    }

    /// Serves requests arriving on `sock` until the socket fails.
    pub async fn run(self: Arc<Self>, sock: UdpSocket) -> io::Result<()> {
        let mut buf = vec![0u8; 2048];
        loop {
            let (n, peer) = sock.recv_from(&mut buf).await?;
            let tree = self.trees.get(&peer.ip()).cloned();
            let pos = tree.as_ref().map(|t| t.slot.position.clone());
            let refuse = |file: &str, why: Refusal| {
                self.bus.publish(
                    pos.as_deref(),
                    Event::TftpRefused {
                        peer,
                        file: file.to_string(),
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
                }) => match tree {
                    None => Some(refuse(filename, Refusal::UnknownClient(peer.ip()))),
                    Some(tree) => match self.source(&tree, filename, mode).await {
                        Ok(content) => {
                            let me = Arc::clone(&self);
                            let file = filename.to_string();
                            tokio::spawn(async move {
                                me.transfer(tree, peer, file, content, options).await
                            });
                            None
                        }
                        Err(why) => Some(refuse(filename, why)),
                    },
                },
                Ok(Repr::Write { filename, .. }) => {
                    let why = "pirack serves boot files read-only";
                    self.bus.publish(
                        pos.as_deref(),
                        Event::TftpRefused {
                            peer,
                            file: filename.to_string(),
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
                    self.bus.publish(
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

    async fn source(&self, tree: &SlotTree, name: &str, mode: &str) -> Result<Arc<[u8]>, Refusal> {
        let netascii = match mode.to_ascii_lowercase().as_str() {
            "octet" => false,
            "netascii" => true,
            _ => return Err(Refusal::BadName("unsupported transfer mode")),
        };
        let bytes = match tree.resolve(name, &self.boards)? {
            Source::Generated(b) => b,
            Source::File(path) => self.cache.get(&path, &self.boot_dir).await?,
        };
        Ok(if netascii {
            to_netascii(&bytes).into()
        } else {
            bytes
        })
    }

    async fn transfer(
        &self,
        tree: Arc<SlotTree>,
        peer: SocketAddr,
        file: String,
        content: Arc<[u8]>,
        asked: Options,
    ) {
        let pos = Some(tree.slot.position.as_str());
        let started = Instant::now();
        self.bus.publish(
            pos,
            Event::TftpStarted {
                peer,
                file: file.clone(),
                size: content.len() as u64,
            },
        );
        let outcome = match netif::udp(SocketAddr::new(IpAddr::V4(tree.slot.fileserver_ip), 0)) {
            Ok(sock) => match sock.connect(peer).await {
                Ok(()) => self.send_file(&sock, &content, asked).await,
                Err(e) => Err(Outcome::Failed(format!("connect: {e}"), 0)),
            },
            Err(e) => Err(Outcome::Failed(format!("socket: {e}"), 0)),
        };
        let duration = started.elapsed();
        let event = match outcome {
            Ok(bytes) => Event::TftpFinished {
                peer,
                file,
                bytes,
                duration,
            },
            Err(Outcome::Probed) => Event::TftpProbed { peer, file },
            Err(Outcome::Failed(error, bytes)) => Event::TftpFailed {
                peer,
                file,
                bytes,
                duration,
                error,
            },
        };
        self.bus.publish(pos, event);
    }

    /// Negotiates options and sends `content`; returns the bytes sent.
    async fn send_file(
        &self,
        sock: &UdpSocket,
        content: &[u8],
        asked: Options,
    ) -> Result<u64, Outcome> {
        let granted = Options {
            blksize: asked.blksize.map(|b| {
                b.clamp(
                    wire::MIN_BLKSIZE,
                    self.cfg.max_blksize.min(wire::MAX_BLKSIZE),
                )
            }),
            tsize: asked.tsize.map(|_| content.len() as u64),
            timeout: asked.timeout.filter(|t| *t >= 1),
            windowsize: asked.windowsize.map(|w| w.clamp(1, self.cfg.max_window)),
        };
        let blksize = usize::from(granted.blksize.unwrap_or(512));
        let window = u64::from(granted.windowsize.unwrap_or(1));
        let timeout = granted
            .timeout
            .map_or(self.cfg.timeout, |t| Duration::from_secs(u64::from(t)));
        let mut buf = Vec::with_capacity(4 + blksize);
        let mut reply = vec![0u8; 1024];

        if !granted.is_empty() {
            let oack = Repr::OptionAck { options: granted }.to_vec();
            let mut tries = 0;
            loop {
                sock.send(&oack).await.map_err(|e| io_failed(e, 0))?;
                match self.await_ack(sock, &mut reply, timeout, 0, 0).await {
                    Ok(_) => break,
                    Err(Wait::Error) => return Err(Outcome::Probed),
                    Err(Wait::Timeout) if tries < self.cfg.retries => tries += 1,
                    Err(w) => return Err(w.failed(0)),
                }
            }
        }

        // Block i (from 1) holds bytes [(i-1)*blksize, i*blksize); the last block is
        // short, possibly empty. Indexes are 64-bit; the wire carries them mod 2^16.
        let last = content.len() as u64 / blksize as u64 + 1;
        let sent = |acked: u64| (acked * blksize as u64).min(content.len() as u64);
        let mut acked = 0u64;
        let mut tries = 0;
        while acked < last {
            for i in acked + 1..=(acked + window).min(last) {
                let start = ((i - 1) as usize) * blksize;
                let data = &content[start.min(content.len())..(start + blksize).min(content.len())];
                buf.clear();
                Repr::Data {
                    block: i as u16,
                    data,
                }
                .emit(&mut buf);
                sock.send(&buf)
                    .await
                    .map_err(|e| io_failed(e, sent(acked)))?;
            }
            match self
                .await_ack(sock, &mut reply, timeout, acked, window.min(last - acked))
                .await
            {
                Ok(i) => {
                    acked = i;
                    tries = 0;
                }
                Err(Wait::Timeout) if tries < self.cfg.retries => tries += 1,
                Err(w) => return Err(w.failed(sent(acked))),
            }
        }
        Ok(content.len() as u64)
    }

    /// Waits for an ACK of one of the blocks `acked+1 ..= acked+span` (or of block
    /// `acked` itself when `span` is 0) and returns its index. Duplicate and stale
    /// ACKs are skipped without resending (no Sorcerer's Apprentice).
    async fn await_ack(
        &self,
        sock: &UdpSocket,
        buf: &mut [u8],
        timeout: Duration,
        acked: u64,
        span: u64,
    ) -> Result<u64, Wait> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let n = match tokio::time::timeout_at(deadline, sock.recv(buf)).await {
                Err(_) => return Err(Wait::Timeout),
                Ok(Err(e)) => return Err(Wait::Io(e.to_string())),
                Ok(Ok(n)) => n,
            };
            match Repr::parse(&buf[..n]) {
                Ok(Repr::Ack { block }) => {
                    let hit = if span == 0 {
                        (block == acked as u16).then_some(acked)
                    } else {
                        (acked + 1..=acked + span).find(|i| *i as u16 == block)
                    };
                    if let Some(i) = hit {
                        return Ok(i);
                    }
                }
                Ok(Repr::Error { .. }) => return Err(Wait::Error),
                _ => {}
            }
        }
    }
}

enum Wait {
    Timeout,
    Error,
    Io(String),
}

enum Outcome {
    Probed,
    /// Why, and how many bytes the client had acknowledged.
    Failed(String, u64),
}

impl Wait {
    fn failed(self, bytes: u64) -> Outcome {
        let why = match self {
            Wait::Timeout => "timed out waiting for ACK".into(),
            Wait::Error => "client sent ERROR".into(),
            Wait::Io(e) => e,
        };
        Outcome::Failed(why, bytes)
    }
}

fn io_failed(e: io::Error, bytes: u64) -> Outcome {
    Outcome::Failed(format!("send: {e}"), bytes)
}

fn error_packet(why: &Refusal) -> Vec<u8> {
    let code = match why {
        Refusal::NotFound => ErrorCode::FileNotFound,
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

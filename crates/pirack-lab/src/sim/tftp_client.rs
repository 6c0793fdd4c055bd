//! The Pi loaders' TFTP client: each request from the next port, lock-step 512-byte
//! blocks, and the firmware's probe (ask with `tsize 0`, read the OACK, abort with
//! ERROR 0).

use pirack_netboot::tftp::wire::{ErrorCode, Options, Repr};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// The file's bytes.
    Got(Vec<u8>),
    /// A probe saw the file exists, with the size the server announced.
    Exists(Option<u64>),
    /// The server answered with an error.
    Error(ErrorCode, String),
}

pub struct Client {
    local: Ipv4Addr,
    server: SocketAddr,
    next_port: u16,
    pub timeout: Duration,
    pub retries: u32,
}

impl Client {
    pub fn new(local: Ipv4Addr, server: Ipv4Addr, first_port: u16) -> Client {
        Client {
            local,
            server: SocketAddr::from((server, 69)),
            next_port: first_port,
            timeout: Duration::from_secs(1),
            retries: 5,
        }
    }

    /// Talks to another server port than 69 (tests).
    pub fn set_server_port(&mut self, port: u16) {
        self.server.set_port(port);
    }

    /// Requests `name`; with `tsize`, asks for the size; with `probe`, aborts after
    /// the OACK. Setting `stop` (the Pi's power cut) ends the transfer within a
    /// block or a timeout.
    pub fn request(
        &mut self,
        name: &str,
        tsize: bool,
        probe: bool,
        stop: &AtomicBool,
    ) -> io::Result<Fetch> {
        // Port 0 asks the kernel for any free port.
        let port = self.next_port;
        if port != 0 {
            self.next_port = self.next_port.wrapping_add(1).max(1024);
        }
        let sock = UdpSocket::bind((self.local, port))?;
        sock.set_read_timeout(Some(self.timeout))?;
        let options = Options {
            tsize: tsize.then_some(0),
            ..Options::default()
        };
        let rrq = Repr::Read {
            filename: name,
            mode: "octet",
            options,
        }
        .to_vec();
        let mut last = rrq.clone();
        let mut peer = self.server;
        let mut expected: u16 = 1;
        let mut data = Vec::new();
        let mut announced = None;
        let mut buf = vec![0u8; 4 + 512 + 64];
        let mut tries = 0;
        sock.send_to(&rrq, self.server)?;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(io::Error::other(format!("{name}: power cut")));
            }
            let (n, from) = match sock.recv_from(&mut buf) {
                Ok(r) => r,
                // A signal is not a lost packet: wait again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    tries += 1;
                    if tries > self.retries {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("{name}: no answer"),
                        ));
                    }
                    sock.send_to(&last, peer)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            // The server's transfer ID is the port of its first answer.
            if expected == 1 && data.is_empty() {
                peer = from;
            } else if from != peer {
                continue;
            }
            match Repr::parse(&buf[..n]) {
                Ok(Repr::OptionAck { options }) if expected == 1 && data.is_empty() => {
                    announced = options.tsize;
                    if probe {
                        let abort = Repr::Error {
                            code: ErrorCode::Undefined,
                            message: "early terminate",
                        };
                        sock.send_to(&abort.to_vec(), peer)?;
                        return Ok(Fetch::Exists(announced));
                    }
                    last = Repr::Ack { block: 0 }.to_vec();
                    sock.send_to(&last, peer)?;
                }
                Ok(Repr::Data { block, data: chunk }) if block == expected => {
                    data.extend_from_slice(chunk);
                    last = Repr::Ack { block }.to_vec();
                    sock.send_to(&last, peer)?;
                    tries = 0;
                    if chunk.len() < 512 {
                        if announced.is_some_and(|a| a != data.len() as u64) {
                            return Err(io::Error::other(format!(
                                "{name}: tsize said {} bytes, got {}",
                                announced.unwrap_or(0),
                                data.len()
                            )));
                        }
                        return Ok(Fetch::Got(data));
                    }
                    expected = expected.wrapping_add(1);
                }
                // A repeat of the block before: our ACK was lost.
                Ok(Repr::Data { .. }) => {
                    sock.send_to(&last, peer)?;
                }
                Ok(Repr::Error { code, message }) => {
                    return Ok(Fetch::Error(code, message.to_string()));
                }
                _ => {}
            }
        }
    }
}

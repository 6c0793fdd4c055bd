//! ICMPv6 echo over one shared socket: an unprivileged ping socket where the
//! system allows it (`net.ipv4.ping_group_range`), else a raw one
//! (CAP_NET_RAW). Each request carries a token keyed by a secret of this
//! process, and a reply counts only if it echoes the token: a customer's Pi
//! (root on its own wire) cannot answer for a neighbour that went dark, as it
//! could if replies were matched by address and sequence alone.

use sha2::{Digest, Sha256};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

const ECHO_REQUEST: u8 = 128;
const ECHO_REPLY: u8 = 129;
const TOKEN: usize = 16;
/// Bytes of replies the socket may hold unread: a thousand and more in a burst.
const RECEIVE_BUFFER: usize = 4 << 20;

/// Replies awaited: by target and sequence, the token and who waits.
type Waiting = HashMap<(Ipv6Addr, u16), ([u8; TOKEN], oneshot::Sender<Instant>)>;

pub struct Pinger {
    socket: Arc<UdpSocket>,
    /// Raw sockets see every echo reply to the host: ours carry this identifier
    /// (ping sockets get one from the kernel, which filters for them).
    ident: u16,
    secret: [u8; 32],
    seq: AtomicU16,
    /// Probes sent: each token's own.
    sent: AtomicU64,
    waiting: Arc<Mutex<Waiting>>,
    receiver: tokio::task::AbortHandle,
}

#[derive(Debug, thiserror::Error)]
pub enum PingError {
    #[error("no ICMPv6 socket (neither a ping socket nor, without CAP_NET_RAW, a raw one): {0}")]
    Socket(std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("sending: {0}")]
    Send(std::io::Error),
}

impl Pinger {
    /// Opens the socket and starts reading replies (on the current runtime).
    pub fn new() -> Result<Pinger, PingError> {
        let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::ICMPV6))
            .or_else(|_| Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)))
            .map_err(PingError::Socket)?;
        socket.set_nonblocking(true).map_err(PingError::Socket)?;
        // Room for a shelf's replies arriving at once: beyond `rmem_max` where
        // allowed (CAP_NET_ADMIN), else as far as it goes.
        let force = RECEIVE_BUFFER as libc::c_int;
        // SAFETY: a valid socket, and an int option of the size given.
        let forced = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const force).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        } == 0;
        if !forced {
            let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER);
        }
        let socket = Arc::new(
            UdpSocket::from_std(std::net::UdpSocket::from(socket)).map_err(PingError::Socket)?,
        );
        let mut secret = [0u8; 32];
        let hex = crate::store::random_hex(34).map_err(PingError::Socket)?;
        let bytes: Vec<u8> = (0..34)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
            .collect();
        secret.copy_from_slice(&bytes[..32]);
        let ident = u16::from_be_bytes([bytes[32], bytes[33]]);
        let waiting = Arc::new(Mutex::new(Waiting::new()));
        let receiver =
            tokio::spawn(receive(Arc::clone(&socket), Arc::clone(&waiting))).abort_handle();
        Ok(Pinger {
            socket,
            ident,
            secret,
            seq: AtomicU16::new(0),
            sent: AtomicU64::new(0),
            waiting,
            receiver,
        })
    }

    /// One echo to `addr`: the round trip.
    pub async fn ping(&self, addr: Ipv6Addr, within: Duration) -> Result<Duration, PingError> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let token = self.token(addr, seq);
        let (tx, rx) = oneshot::channel();
        self.lock().insert((addr, seq), (token, tx));
        let forget = Forget {
            waiting: &self.waiting,
            key: (addr, seq),
        };
        let mut packet = vec![ECHO_REQUEST, 0, 0, 0];
        packet.extend_from_slice(&self.ident.to_be_bytes());
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&token);
        let sent = Instant::now();
        self.socket
            .send_to(&packet, SocketAddr::V6(SocketAddrV6::new(addr, 0, 0, 0)))
            .await
            .map_err(PingError::Send)?;
        let answered = tokio::time::timeout(within, rx).await;
        drop(forget);
        match answered {
            Ok(Ok(at)) => Ok(at.saturating_duration_since(sent)),
            _ => Err(PingError::Timeout(within)),
        }
    }

    fn token(&self, addr: Ipv6Addr, seq: u16) -> [u8; TOKEN] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(addr.octets());
        h.update(seq.to_be_bytes());
        // Unique per probe, though the 16-bit sequence wraps.
        h.update(self.sent.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        let mut out = [0u8; TOKEN];
        out.copy_from_slice(&h.finalize()[..TOKEN]);
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

/// Takes a probe's entry out however it ends (answered, timed out, dropped).
struct Forget<'a> {
    waiting: &'a Mutex<Waiting>,
    key: (Ipv6Addr, u16),
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

/// Reads replies for as long as the pinger lives, waking the probe each is for.
async fn receive(socket: Arc<UdpSocket>, waiting: Arc<Mutex<Waiting>>) {
    let mut buf = [0u8; 1500];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let at = Instant::now();
        let SocketAddr::V6(from) = from else { continue };
        if let Some((seq, token)) = echo_reply(&buf[..n]) {
            let mut w = waiting.lock().unwrap_or_else(|e| e.into_inner());
            let key = (*from.ip(), seq);
            if w.get(&key).is_some_and(|(want, _)| *want == token)
                && let Some((_, tx)) = w.remove(&key)
            {
                let _ = tx.send(at);
            }
        }
    }
}

/// An echo reply's sequence and token (IPv6 sockets give the ICMPv6 message
/// without the IP header), or `None` for anything else.
pub fn echo_reply(msg: &[u8]) -> Option<(u16, [u8; TOKEN])> {
    if msg.len() != 8 + TOKEN || msg[0] != ECHO_REPLY || msg[1] != 0 {
        return None;
    }
    let seq = u16::from_be_bytes([msg[6], msg[7]]);
    let mut token = [0u8; TOKEN];
    token.copy_from_slice(&msg[8..]);
    Some((seq, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_echo_replies_are_read() {
        let mut reply = vec![ECHO_REPLY, 0, 0xab, 0xcd, 0, 7, 0x01, 0x02];
        reply.extend_from_slice(&[9u8; TOKEN]);
        assert_eq!(echo_reply(&reply), Some((0x0102, [9u8; TOKEN])));
        let mut request = reply.clone();
        request[0] = ECHO_REQUEST;
        assert_eq!(echo_reply(&request), None);
        assert_eq!(echo_reply(&reply[..10]), None);
        assert_eq!(echo_reply(&[]), None);
    }

    /// The loopback answers; an address nobody holds does not, in time.
    #[tokio::test]
    async fn pings_the_loopback_and_times_out_elsewhere() {
        let p = match Pinger::new() {
            Ok(p) => p,
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("skipping: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let rtt = p.ping(Ipv6Addr::LOCALHOST, Duration::from_secs(2)).await;
        assert!(rtt.is_ok(), "{rtt:?}");
        // Documentation space, routed nowhere here: an error at once or a timeout.
        let gone = p
            .ping(
                "2001:db8::dead".parse().unwrap(),
                Duration::from_millis(200),
            )
            .await;
        assert!(gone.is_err());
        assert!(p.lock().is_empty(), "nothing left waiting");
    }
}

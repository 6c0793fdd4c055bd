//! A raw Ethernet socket (AF_PACKET) on one interface: how a Pi without an IPv4
//! address sends its DISCOVER from 0.0.0.0 and hears the broadcast reply.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct RawLink {
    fd: OwnedFd,
    ifindex: i32,
}

const ETH_P_IP: u16 = 0x0800;
/// How often a wait for a frame looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl RawLink {
    /// Opens a socket for IPv4 frames on interface `name` of the calling thread's
    /// network namespace.
    pub fn open(name: &str) -> io::Result<RawLink> {
        let ifindex = nix::net::if_::if_nametoindex(name).map_err(io::Error::from)? as i32;
        // SAFETY: plain socket(2); the descriptor is owned at once.
        let fd = unsafe {
            OwnedFd::from_raw_fd(cvt(libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(ETH_P_IP.to_be()),
            ))?)
        };
        let addr = Self::sockaddr(ifindex);
        // SAFETY: addr is a valid sockaddr_ll of the size given.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        })?;
        Ok(RawLink { fd, ifindex })
    }

    fn sockaddr(ifindex: i32) -> libc::sockaddr_ll {
        // SAFETY: sockaddr_ll is plain data; zero is a valid value.
        let mut a: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        a.sll_family = libc::AF_PACKET as u16;
        a.sll_protocol = ETH_P_IP.to_be();
        a.sll_ifindex = ifindex;
        a.sll_halen = 6;
        a.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        a
    }

    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let addr = Self::sockaddr(self.ifindex);
        // SAFETY: buffer and address are valid for the lengths given.
        cvt(unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            ) as libc::c_int
        })?;
        Ok(())
    }

    /// Receives frames until `accept` takes one, `timeout` passes or `stop` is
    /// set (a Pi whose power is cut stops listening at once, not after its wait).
    pub fn recv_until<T>(
        &self,
        timeout: Duration,
        stop: &AtomicBool,
        mut accept: impl FnMut(&[u8]) -> Option<T>,
    ) -> io::Result<Option<T>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 2048];
        loop {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .min(STOP_CHECK);
            if left.is_zero() || stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let polled = cvt(unsafe {
                libc::poll(
                    &mut pfd,
                    1,
                    left.as_millis().clamp(1, i32::MAX as u128) as i32,
                )
            });
            let ready = match polled {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            };
            if ready == 0 {
                continue;
            }
            // SAFETY: buf is valid for its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if let Some(t) = accept(&buf[..n as usize]) {
                return Ok(Some(t));
            }
        }
    }
}

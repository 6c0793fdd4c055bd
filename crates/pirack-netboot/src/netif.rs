//! UDP sockets that say which interface each datagram came in on (IP_PKTINFO), so
//! a Pi is known by its wire, not by the address it claims.

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg, sendmsg, setsockopt,
    sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};

/// A UDP socket bound to `addr` (no device, not shared with any other socket),
/// non-blocking, for tokio, reporting each datagram's arrival interface; with
/// `buffer` bytes of send and receive buffer (0: the default).
pub fn udp(addr: SocketAddr, buffer: usize) -> io::Result<tokio::net::UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if buffer > 0 {
        force_buffers(&sock, buffer);
    }
    setsockopt(&sock, sockopt::Ipv4PacketInfo, &true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(sock.into())
}

/// A datagram received: its length, its source, and the interface it came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrived {
    pub len: usize,
    pub from: SocketAddr,
    pub ifindex: u32,
}

/// Receives one datagram into `buf` without waiting (WouldBlock when there is
/// none), from a socket made by [`udp`].
pub fn try_recv(sock: &tokio::net::UdpSocket, buf: &mut [u8]) -> io::Result<Arrived> {
    sock.try_io(tokio::io::Interest::READABLE, || {
        recv_now(sock.as_raw_fd(), buf)
    })
}

/// Waits for and receives one datagram, as [`try_recv`].
pub async fn recv(sock: &tokio::net::UdpSocket, buf: &mut [u8]) -> io::Result<Arrived> {
    sock.async_io(tokio::io::Interest::READABLE, || {
        recv_now(sock.as_raw_fd(), buf)
    })
    .await
}

fn recv_now(fd: RawFd, buf: &mut [u8]) -> io::Result<Arrived> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(libc::in_pktinfo);
    let msg = recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)
        .map_err(io::Error::from)?;
    let ifindex = msg
        .cmsgs()
        .map_err(io::Error::from)?
        .find_map(|c| match c {
            ControlMessageOwned::Ipv4PacketInfo(info) => u32::try_from(info.ipi_ifindex).ok(),
            _ => None,
        })
        .unwrap_or(0);
    let from = msg
        .address
        .map(|a| SocketAddr::from((a.ip(), a.port())))
        .ok_or_else(|| io::Error::other("a datagram without a source address"))?;
    Ok(Arrived {
        len: msg.bytes,
        from,
        ifindex,
    })
}

/// Sends `bytes` to `to` out of interface `ifindex` with source address `from`,
/// whatever the routing table would pick (a broadcast to a Pi without an address).
pub async fn send_via(
    sock: &tokio::net::UdpSocket,
    bytes: &[u8],
    to: SocketAddrV4,
    ifindex: u32,
    from: Ipv4Addr,
) -> io::Result<usize> {
    let info = libc::in_pktinfo {
        ipi_ifindex: ifindex as libc::c_int,
        ipi_spec_dst: libc::in_addr {
            s_addr: u32::from(from).to_be(),
        },
        ipi_addr: libc::in_addr { s_addr: 0 },
    };
    let iov = [IoSlice::new(bytes)];
    let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
    let dest = SockaddrIn::from(to);
    sock.async_io(tokio::io::Interest::WRITABLE, || {
        sendmsg(
            sock.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::empty(),
            Some(&dest),
        )
        .map_err(io::Error::from)
    })
    .await
}

/// Sets both socket buffers to `bytes`, past the sysctl caps (net.core.wmem_max,
/// rmem_max) when the process may (CAP_NET_ADMIN), else as far as the caps allow.
fn force_buffers(sock: &Socket, bytes: usize) {
    let value = bytes.min(i32::MAX as usize) as libc::c_int;
    for (forced, plain) in [
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
    ] {
        for opt in [forced, plain] {
            // SAFETY: setsockopt with a pointer to an int of the size given.
            let r = unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&value as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as u32,
                )
            };
            if r == 0 {
                break;
            }
        }
    }
}

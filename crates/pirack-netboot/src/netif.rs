//! Network interfaces as the services need them: a storage interface must exist,
//! be up and carry the fileserver's address before a slot is served on it.

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The interface's index when `name` exists, is up and holds `addr`; otherwise
/// why not. The index tells a re-created interface from the one a socket was
/// bound to.
pub fn check(name: &str, addr: Ipv4Addr) -> Result<u32, String> {
    let addrs = getifaddrs().map_err(|e| format!("cannot list interfaces: {e}"))?;
    let mut exists = false;
    let mut up = false;
    let mut has = false;
    for a in addrs.filter(|a| a.interface_name == name) {
        exists = true;
        up |= a.flags.contains(InterfaceFlags::IFF_UP);
        has |= a
            .address
            .as_ref()
            .and_then(|s| s.as_sockaddr_in())
            .is_some_and(|s| s.ip() == addr);
    }
    match (exists, up, has) {
        (false, ..) => Err(format!("interface {name} does not exist")),
        (true, false, _) => Err(format!("interface {name} is down")),
        (true, true, false) => Err(format!("interface {name} lacks address {addr}")),
        _ => nix::net::if_::if_nametoindex(name).map_err(|e| format!("interface {name}: {e}")),
    }
}

/// A UDP socket bound to `addr` that only sees traffic of interface `device`.
/// SO_REUSEADDR lets one such socket per interface share a port.
pub fn udp_on_device(device: &str, addr: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_address(true)?;
    sock.bind_device(Some(device.as_bytes()))?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(sock.into())
}

/// A UDP socket bound to `addr` (no device), non-blocking, for tokio.
pub fn udp(addr: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    udp_buffered(addr, 0)
}

/// As [`udp`], asking for `buffer` bytes of send and receive buffer (0: default).
pub fn udp_buffered(addr: SocketAddr, buffer: usize) -> io::Result<tokio::net::UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if buffer > 0 {
        force_buffers(&sock, buffer);
    }
    if matches!(addr.ip(), IpAddr::V4(ip) if ip.is_unspecified()) {
        sock.set_reuse_address(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(sock.into())
}

/// Sets both socket buffers to `bytes`, past the sysctl caps (net.core.wmem_max,
/// rmem_max) when the process may (CAP_NET_ADMIN), else as far as the caps allow.
fn force_buffers(sock: &Socket, bytes: usize) {
    use std::os::fd::AsRawFd;
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

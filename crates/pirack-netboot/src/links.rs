//! The host's interfaces, watched once for every slot: a netlink socket (link and
//! IPv4 address groups) wakes one task on any change, which lists the interfaces
//! once and hands the listing to the slots' watcher. 96 slots cost one listing per
//! change, not 96 per second. A listing that fails (a full fd table) keeps the
//! last good one and is tried again, so a moment's EMFILE never takes every slot
//! down.

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use nix::sys::socket::{
    AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, socket,
};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

/// rtnetlink multicast groups: links (up, down, added, removed) and IPv4 addresses.
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;

/// One interface as a slot needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Link {
    index: u32,
    up: bool,
    v4: Vec<Ipv4Addr>,
}

/// The interfaces at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot(HashMap<String, Link>);

impl Snapshot {
    /// Lists the host's interfaces now.
    pub fn read() -> Result<Snapshot, String> {
        let addrs = getifaddrs().map_err(|e| format!("cannot list interfaces: {e}"))?;
        let mut links: HashMap<String, Link> = HashMap::new();
        for a in addrs {
            let link = links.entry(a.interface_name.clone()).or_default();
            link.up |= a.flags.contains(InterfaceFlags::IFF_UP);
            if let Some(v4) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
                link.v4.push(v4.ip());
            }
        }
        for (name, link) in &mut links {
            // The index tells a re-created interface from the one a socket knew.
            link.index = nix::net::if_::if_nametoindex(name.as_str()).unwrap_or(0);
        }
        Ok(Snapshot(links))
    }

    /// The interface's index when `name` exists, is up and holds `addr`; otherwise
    /// why not.
    pub fn check(&self, name: &str, addr: Ipv4Addr) -> Result<u32, String> {
        match self.0.get(name) {
            None => Err(format!("interface {name} does not exist")),
            Some(l) if !l.up => Err(format!("interface {name} is down")),
            Some(l) if !l.v4.contains(&addr) => {
                Err(format!("interface {name} lacks address {addr}"))
            }
            Some(l) if l.index == 0 => Err(format!("interface {name} has gone")),
            Some(l) => Ok(l.index),
        }
    }
}

/// The current listing, for [`watch`]'s readers.
pub type Links = watch::Receiver<Arc<Snapshot>>;

/// Starts watching: the first listing now, then one per change. `fallback` is how
/// often to list anyway (and how often to poll where netlink is unavailable).
pub fn start(fallback: Duration) -> (Links, impl Future<Output = ()> + Send + 'static) {
    let first = Snapshot::read().unwrap_or_else(|e| {
        tracing::warn!("{e}");
        Snapshot::default()
    });
    let (tx, rx) = watch::channel(Arc::new(first));
    (rx, follow(tx, fallback))
}

async fn follow(tx: watch::Sender<Arc<Snapshot>>, fallback: Duration) {
    let sock = match subscribe() {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("no netlink ({e}): listing interfaces every {fallback:?}");
            None
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match &sock {
            Some(sock) => {
                tokio::select! {
                    ready = sock.readable() => {
                        if let Ok(mut guard) = ready {
                            // What changed does not matter: everything is listed again.
                            while guard
                                .try_io(|fd| {
                                    nix::sys::socket::recv(
                                        fd.as_raw_fd(),
                                        &mut buf,
                                        nix::sys::socket::MsgFlags::MSG_DONTWAIT,
                                    )
                                    .map_err(std::io::Error::from)
                                })
                                .is_ok_and(|r| r.is_ok())
                            {}
                        }
                        // A burst of changes (an interface and its address) as one.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    () = tokio::time::sleep(fallback) => {}
                }
            }
            None => tokio::time::sleep(fallback).await,
        }
        match Snapshot::read() {
            Ok(now) => {
                tx.send_if_modified(|old| {
                    let changed = **old != now;
                    if changed {
                        *old = Arc::new(now);
                    }
                    changed
                });
            }
            Err(e) => tracing::warn!("{e}; keeping the last listing"),
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// A netlink route socket in the link and IPv4 address groups.
fn subscribe() -> std::io::Result<AsyncFd<OwnedFd>> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    bind(
        fd.as_raw_fd(),
        &NetlinkAddr::new(0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR),
    )?;
    // SAFETY: the descriptor is the OwnedFd the AsyncFd takes and keeps open,
    // unchanged, until it is dropped.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_with_its_address() {
        let now = Snapshot::read().unwrap();
        assert!(now.check("lo", Ipv4Addr::LOCALHOST).is_ok_and(|i| i > 0));
        assert!(
            now.check("lo", Ipv4Addr::new(192, 0, 2, 1))
                .unwrap_err()
                .contains("lacks address")
        );
        assert!(
            now.check("no-such-if0", Ipv4Addr::LOCALHOST)
                .unwrap_err()
                .contains("does not exist")
        );
    }
}

//! The late boot stages, seen from the fileserver: a Pi has mounted its root when
//! an established TCP connection from its storage address reaches the NFS port
//! (read from the socket table, so it holds for the kernel's nfsd and for ganesha
//! alike), and it is up when its public address answers on the watchdog's port.
//! A Pi whose power was cut leaves its old connection established on the server
//! for minutes; so a mount counts only on a connection that was not there while
//! the Pi was powering on or asking DHCP.

use crate::Controller;
use crate::store::slots::Changes;
use pirack_core::lifecycle::{State, Trigger};
use pirack_core::plan::render::exports::NFS_PORT;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The remote ends of established TCP connections to local port `port`, from the
/// text of `/proc/net/tcp` or `/proc/net/tcp6`. Malformed lines are skipped.
pub fn established_peers(table: &str, port: u16) -> HashSet<SocketAddr> {
    let mut out = HashSet::new();
    for line in table.lines().skip(1) {
        let mut f = line.split_whitespace();
        let (Some(_), Some(local), Some(remote), Some(state)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if state != "01" {
            continue;
        }
        let local_port = local
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        if local_port != Some(port) {
            continue;
        }
        if let Some((a, p)) = remote.rsplit_once(':')
            && let (Some(ip), Ok(p)) = (parse_addr(a), u16::from_str_radix(p, 16))
        {
            out.insert(SocketAddr::new(ip, p));
        }
    }
    out
}

/// An address as the kernel prints it: 32-bit words in host byte order, in hex.
fn parse_addr(hex: &str) -> Option<IpAddr> {
    let words: Option<Vec<[u8; 4]>> = (0..hex.len() / 8)
        .map(|i| {
            hex.get(i * 8..i * 8 + 8)
                .and_then(|w| u32::from_str_radix(w, 16).ok())
                .map(u32::to_ne_bytes)
        })
        .collect();
    let bytes: Vec<u8> = words?.concat();
    match (hex.len(), bytes.len()) {
        (8, 4) => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        (32, 16) => {
            let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}

fn nfs_clients() -> HashSet<SocketAddr> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| established_peers(&t, NFS_PORT))
        .collect()
}

/// Watches the slots in the late boot stages every `tick`.
pub async fn run(ctl: Arc<Controller>, tick: Duration) {
    // Per slot, its NFS connections while it was powering on: a previous boot's.
    let mut stale: HashMap<String, HashSet<SocketAddr>> = HashMap::new();
    // Reachability probes, each at most a second, so none outlives this task.
    let mut probes = tokio::task::JoinSet::new();
    loop {
        tokio::time::sleep(tick).await;
        while probes.try_join_next().is_some() {}
        let Ok(slots) = ctl.store.slots(None).await else {
            continue;
        };
        let watched: Vec<_> = slots
            .into_iter()
            .filter(|s| ctl.serves(&s.key))
            .filter(|s| {
                matches!(
                    s.state,
                    State::PoweringOn
                        | State::Dhcp
                        | State::Tftp
                        | State::KernelLoaded
                        | State::NfsMounted
                )
            })
            .collect();
        stale.retain(|k, _| watched.iter().any(|s| &s.key == k));
        if watched.is_empty() {
            continue;
        }
        let clients = tokio::task::spawn_blocking(nfs_clients)
            .await
            .unwrap_or_default();
        for slot in watched {
            let Some(plan) = ctl.slot_plan(&slot.key) else {
                continue;
            };
            let pi = IpAddr::V4(plan.pi_ip);
            let mut from_pi = clients.iter().filter(|c| c.ip() == pi);
            if matches!(slot.state, State::PoweringOn | State::Dhcp) {
                stale.insert(slot.key.clone(), from_pi.copied().collect());
                continue;
            }
            let old = stale.get(&slot.key);
            let mounted = from_pi.any(|c| old.is_none_or(|o| !o.contains(c)));
            if slot.state != State::NfsMounted && mounted {
                let cause = format!("NFS client {} connected", plan.pi_ip);
                if let Err(e) = ctl
                    .apply(&slot.key, Trigger::NfsMounted, &cause, Changes::default())
                    .await
                {
                    tracing::debug!("{}: {e}", slot.position);
                }
                continue;
            }
            if slot.state == State::NfsMounted {
                let (ctl, addr) = (
                    Arc::clone(&ctl),
                    SocketAddr::new(IpAddr::V6(plan.ipv6), ctl.site.watchdog.reach_port),
                );
                let key = slot.key.clone();
                probes.spawn(async move {
                    let reached = tokio::time::timeout(
                        Duration::from_secs(1),
                        tokio::net::TcpStream::connect(addr),
                    )
                    .await;
                    if matches!(reached, Ok(Ok(_))) {
                        let cause = format!("{addr} answered");
                        if let Err(e) = ctl
                            .apply(&key, Trigger::Reachable, &cause, Changes::default())
                            .await
                        {
                            tracing::debug!("{key}: {e}");
                        }
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernel_socket_tables() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 01BD2E0A:0801 02BD2E0A:03FF 01 00000000:00000000 00:00000000 00000000     0        0 1 1\n\
   1: 01BD2E0A:0801 06BD2E0A:03FE 0A 00000000:00000000 00:00000000 00000000     0        0 2 1\n\
   2: 05BD2E0A:0016 06BD2E0A:9C40 01 00000000:00000000 00:00000000 00000000     0        0 3 1\n\
   3: garbage\n";
        let peers = established_peers(tcp, NFS_PORT);
        if cfg!(target_endian = "little") {
            assert_eq!(
                peers,
                HashSet::from([SocketAddr::new(Ipv4Addr::new(10, 46, 189, 2).into(), 1023)])
            );
        }
        let tcp6 = "  sl  local_address                         remote_address                        st\n\
   0: 0000000000000000FFFF000001BD2E0A:0801 0000000000000000FFFF000006BD2E0A:0320 01 0\n";
        let peers = established_peers(tcp6, NFS_PORT);
        if cfg!(target_endian = "little") {
            assert_eq!(
                peers,
                HashSet::from([SocketAddr::new(Ipv4Addr::new(10, 46, 189, 6).into(), 800)])
            );
        }
    }
}

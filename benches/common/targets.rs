//! Stand-ins for 1,000 Pis' public side: addresses in network namespaces, one
//! namespace and veth pair per /64 (this side at `<net>::1`), each answering
//! ICMPv6 echo (its kernel) and TCP port 22 (a listener, as a Pi's sshd).

use pirack_lab::testbed::netns::{Netns, enter, ip_batch};
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The namespaces; dropped, their listeners stop (a thread inside a namespace
/// would keep it, and its addresses, alive) and the namespaces go.
pub struct Targets {
    stop: Arc<AtomicBool>,
    listeners: Vec<std::thread::JoinHandle<()>>,
    _spaces: Vec<Netns>,
}

impl Drop for Targets {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for l in self.listeners.drain(..) {
            let _ = l.join();
        }
    }
}

/// Namespaces holding `addrs`.
pub fn targets(addrs: &[Ipv6Addr]) -> Targets {
    let mut nets: BTreeMap<u64, Vec<Ipv6Addr>> = BTreeMap::new();
    for a in addrs {
        nets.entry((u128::from(*a) >> 64) as u64)
            .or_default()
            .push(*a);
    }
    let pid = std::process::id();
    let mut spaces = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut listeners = Vec::new();
    for (n, (net, inside_addrs)) in nets.into_iter().enumerate() {
        let ns = Netns::new(&format!("mb-{pid}-{n}")).expect("ip netns add");
        let host = format!("mbh{}-{n}", pid % 10_000);
        let here = Ipv6Addr::from((u128::from(net) << 64) | 1);
        ip_batch(
            None,
            &format!(
                "link add {host} type veth peer name eth0 netns {}\n\
                 addr add {here}/64 dev {host} nodad\nlink set {host} up\n",
                ns.name()
            ),
        )
        .expect("this side's end");
        let mut inside = String::from("link set lo up\nlink set eth0 up\n");
        for a in &inside_addrs {
            inside += &format!("addr add {a}/64 dev eth0 nodad\n");
        }
        ip_batch(Some(ns.name()), &inside).expect("the targets' addresses");
        let (name, stop) = (ns.name().to_string(), Arc::clone(&stop));
        listeners.push(std::thread::spawn(move || {
            enter(&name).unwrap();
            let l = std::net::TcpListener::bind("[::]:22").unwrap();
            l.set_nonblocking(true).unwrap();
            // The kernel completes each handshake; accepting only empties the
            // backlog, so a short sleep between tries costs a check nothing.
            while !stop.load(Ordering::Relaxed) {
                if l.accept().is_err() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }));
        spaces.push(ns);
    }
    // Neighbours resolved before anything is timed.
    let _ = Command::new("fping")
        .args(["-6", "-q", "-r", "1"])
        .args(addrs.iter().map(ToString::to_string))
        .output();
    Targets {
        stop,
        listeners,
        _spaces: spaces,
    }
}

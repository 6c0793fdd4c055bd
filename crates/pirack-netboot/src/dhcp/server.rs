//! The DHCP server: one socket for every slot, each datagram's arrival interface
//! (IP_PKTINFO) naming its slot, each reply sent out of that interface; nothing is
//! answered on an interface that is not a slot's, nor to a Pi posing as another.

use super::reply::{self, Ignored, Policy, Request};
use crate::Shared;
use crate::boards::Verdict;
use crate::events::Event;
use crate::netif;
use dhcproto::v4::MessageType;
use pirack_core::plan::SlotPlan;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Server settings beyond the reply policy.
#[derive(Debug, Clone)]
pub struct Config {
    pub policy: Policy,
    /// How often the slots' interfaces are listed even without a netlink change
    /// (a safety net; every change is seen at once).
    pub retry: Duration,
    /// Server and client ports (67 and 68 on a real network).
    pub server_port: u16,
    pub client_port: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            policy: Policy::default(),
            retry: Duration::from_secs(10),
            server_port: 67,
            client_port: 68,
        }
    }
}

/// The DHCP socket: one for every slot, port `server_port` on every interface,
/// shared with no other socket; each datagram says its interface.
pub fn bind(cfg: &Config) -> io::Result<UdpSocket> {
    let sock = netif::udp(SocketAddr::from(([0, 0, 0, 0], cfg.server_port)), 0)?;
    sock.set_broadcast(true)?;
    Ok(sock)
}

/// Answers DHCP on `sock` until it fails. A datagram is a slot's when it came in
/// on the slot's interface from no address yet (the ROM, a DISCOVER) or from the
/// slot's Pi address; one on no slot's interface is not answered, one claiming
/// another address is dropped and reported on the slot it came from.
pub async fn run(
    sock: UdpSocket,
    slots: Vec<SlotPlan>,
    net: Arc<Shared>,
    cfg: Arc<Config>,
) -> io::Result<()> {
    let slots: HashMap<String, SlotPlan> =
        slots.into_iter().map(|s| (s.position.clone(), s)).collect();
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; 1500];
    loop {
        let a = netif::recv(&sock, &mut buf).await?;
        let Some(slot) = net.wires.slot_on(a.ifindex).and_then(|p| slots.get(&p)) else {
            continue;
        };
        match a.from.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() || ip == slot.pi_ip => {
                handle(slot, a.ifindex, &sock, &buf[..a.len], &net, &cfg);
            }
            claimed => net
                .spoofs
                .drop(&net.wires, &net.bus, a.ifindex, claimed, "DHCP"),
        }
    }
}

fn handle(
    slot: &SlotPlan,
    ifindex: u32,
    sock: &Arc<UdpSocket>,
    packet: &[u8],
    net: &Shared,
    cfg: &Config,
) {
    let (boards, bus) = (&net.boards, &net.bus);
    let pos = Some(slot.position.as_str());
    let ignored = |mac: String, why: &Ignored| {
        bus.publish(
            pos,
            Event::DhcpIgnored {
                interface: slot.interface.clone(),
                mac,
                reason: why.to_string(),
            },
        )
    };
    let req = match Request::parse(packet) {
        Ok(r) => r,
        Err(why) => return ignored(String::new(), &why),
    };
    let mac = req.mac.to_string();
    match req.kind {
        MessageType::Discover => bus.publish(
            pos,
            Event::DhcpDiscover {
                mac: mac.clone(),
                client: format!("{:?}", req.loader),
            },
        ),
        MessageType::Request => bus.publish(pos, Event::DhcpRequest { mac: mac.clone() }),
        _ => {}
    }
    let verdict = boards.check_mac(&slot.position, req.mac, req.loader.serial());
    if verdict != Verdict::Own {
        bus.publish(
            pos,
            Event::UnknownBoard {
                mac: mac.clone(),
                serial: req.loader.serial().map(|s| s.to_string()),
                adopted: verdict.serve(),
            },
        );
        if !verdict.serve() {
            return ignored(mac, &Ignored::Held);
        }
    }
    let reply = match reply::answer(&req, slot, verdict == Verdict::Own, &cfg.policy) {
        Ok(r) => r,
        Err(why) => return ignored(mac, &why),
    };
    let event = match reply.kind {
        MessageType::Offer => Event::DhcpOffer {
            mac,
            yiaddr: slot.pi_ip,
            delay_ms: reply.delay.as_millis() as u64,
        },
        MessageType::Ack => Event::DhcpAck {
            mac,
            yiaddr: slot.pi_ip,
        },
        _ => Event::DhcpNak {
            mac,
            reason: "requested another address".into(),
        },
    };
    // The Pi has no address yet: broadcast out of the slot's interface, from the
    // fileserver's address there, matching option 54.
    let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, cfg.client_port);
    let sock = Arc::clone(sock);
    let bus = bus.clone();
    let (position, interface, mac, from) = (
        slot.position.clone(),
        slot.interface.clone(),
        req.mac.to_string(),
        slot.fileserver_ip,
    );
    tokio::spawn(async move {
        tokio::time::sleep(reply.delay).await;
        match netif::send_via(&sock, &reply.bytes, to, ifindex, from).await {
            Ok(_) => bus.publish(Some(&position), event),
            Err(e) => bus.publish(
                Some(&position),
                Event::DhcpIgnored {
                    interface,
                    mac,
                    reason: format!("reply not sent: {e}"),
                },
            ),
        }
    });
}

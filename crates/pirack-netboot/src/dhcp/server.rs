//! The DHCP server's sockets: one per slot, bound to the slot's storage interface
//! (SO_BINDTODEVICE), so the interface a packet came in on names the slot and
//! nothing is ever answered on an interface that is not a slot's.

use super::reply::{self, Ignored, Policy, Request};
use crate::boards::{Boards, Verdict};
use crate::events::{Bus, Event};
use crate::netif;
use dhcproto::v4::MessageType;
use pirack_core::plan::SlotPlan;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Server settings beyond the reply policy.
#[derive(Debug, Clone)]
pub struct Config {
    pub policy: Policy,
    /// How often a missing or unready interface is looked at again.
    pub retry: Duration,
    /// Server and client ports (67 and 68 on a real network).
    pub server_port: u16,
    pub client_port: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            policy: Policy::default(),
            retry: Duration::from_secs(1),
            server_port: 67,
            client_port: 68,
        }
    }
}

/// Serves one slot forever: waits for its interface, answers on it, and goes back
/// to waiting if the interface goes away.
pub async fn serve_slot(slot: SlotPlan, boards: Arc<Boards>, bus: Bus, cfg: Arc<Config>) {
    let mut last_reason = String::new();
    loop {
        match open(&slot, &cfg) {
            Ok((sock, index)) => {
                last_reason.clear();
                bus.publish(
                    Some(&slot.position),
                    Event::InterfaceUp {
                        interface: slot.interface.clone(),
                    },
                );
                let why = run(&slot, Arc::new(sock), index, &boards, &bus, &cfg).await;
                bus.publish(
                    Some(&slot.position),
                    Event::InterfaceDown {
                        interface: slot.interface.clone(),
                        reason: why,
                    },
                );
            }
            Err(reason) => {
                // Report a changed reason once, not every retry.
                if reason != last_reason {
                    bus.publish(
                        Some(&slot.position),
                        Event::InterfaceDown {
                            interface: slot.interface.clone(),
                            reason: reason.clone(),
                        },
                    );
                    last_reason = reason;
                }
            }
        }
        tokio::time::sleep(cfg.retry).await;
    }
}

/// The socket and the index of the interface it is bound to.
fn open(slot: &SlotPlan, cfg: &Config) -> Result<(UdpSocket, u32), String> {
    let index = netif::check(&slot.interface, slot.fileserver_ip)?;
    let sock = netif::udp_on_device(
        &slot.interface,
        SocketAddr::from(([0, 0, 0, 0], cfg.server_port)),
    )
    .map_err(|e| format!("cannot listen for DHCP on {}: {e}", slot.interface))?;
    sock.set_broadcast(true).map_err(|e| e.to_string())?;
    Ok((sock, index))
}

/// Answers packets until the interface stops being usable; returns why.
async fn run(
    slot: &SlotPlan,
    sock: Arc<UdpSocket>,
    index: u32,
    boards: &Boards,
    bus: &Bus,
    cfg: &Config,
) -> String {
    let mut buf = vec![0u8; 1500];
    let mut check = tokio::time::interval(cfg.retry.max(Duration::from_millis(200)));
    loop {
        tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, _)) => handle(slot, &sock, &buf[..n], boards, bus, cfg),
                Err(e) => return format!("receive failed: {e}"),
            },
            _ = check.tick() => {
                match netif::check(&slot.interface, slot.fileserver_ip) {
                    Ok(i) if i == index => {}
                    Ok(_) => return format!("interface {} was re-created", slot.interface),
                    Err(reason) => return reason,
                }
            }
        }
    }
}

fn handle(
    slot: &SlotPlan,
    sock: &Arc<UdpSocket>,
    packet: &[u8],
    boards: &Boards,
    bus: &Bus,
    cfg: &Config,
) {
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
    // The Pi has no address yet: broadcast on the slot's interface, whose only
    // address (the fileserver's) becomes the source, matching option 54.
    let to = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::BROADCAST, cfg.client_port));
    let sock = Arc::clone(sock);
    let bus = bus.clone();
    let (position, interface, mac) = (
        slot.position.clone(),
        slot.interface.clone(),
        req.mac.to_string(),
    );
    tokio::spawn(async move {
        tokio::time::sleep(reply.delay).await;
        match sock.send_to(&reply.bytes, to).await {
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

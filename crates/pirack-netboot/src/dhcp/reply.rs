//! The answer to one DHCP packet on one slot's interface: a pure function of the
//! packet and the slot's plan, so every rule of the netboot notes is unit-tested.

use super::pxe::{self, Loader};
use dhcproto::v4::{
    Decodable, Decoder, DhcpOption, Encodable, Encoder, HType, Message, MessageType, Opcode,
    OptionCode,
};
use pirack_core::inventory::MacAddr;
use pirack_core::plan::SlotPlan;
use pirack_core::text::printable;
use std::net::Ipv4Addr;
use std::time::Duration;

/// Site-wide DHCP settings.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Delay before answering a PXE DISCOVER: the Pi 3B ROM wedges on replies that
    /// come too fast (netboot notes Q2).
    pub rom_delay: Duration,
    /// Answer clients that are neither a Pi nor the slot's recorded board.
    pub serve_non_pi: bool,
    pub lease: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            rom_delay: Duration::from_secs(1),
            serve_non_pi: false,
            lease: Duration::from_secs(12 * 3600),
        }
    }
}

/// A DHCP request reduced to what the answer depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub msg: Message,
    pub kind: MessageType,
    pub mac: MacAddr,
    pub loader: Loader,
}

/// Why a packet gets no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    #[error("malformed DHCP packet: {0}")]
    Malformed(String),
    #[error("not a client request")]
    NotRequest,
    #[error("not an Ethernet client")]
    NotEthernet,
    #[error("no DHCP message type")]
    NoType,
    #[error("{0:?} needs no answer")]
    NoAnswer(MessageType),
    #[error("relayed (giaddr {0}): a slot's Pi is always on the fileserver's segment")]
    Relayed(Ipv4Addr),
    #[error("not a Raspberry Pi and the site serves only Pis")]
    NotAPi,
    #[error("a board this slot does not know; the site policy holds it")]
    Held,
    #[error("request for another server {0}")]
    OtherServer(Ipv4Addr),
}

impl Request {
    /// Decodes and checks a packet from a client.
    pub fn parse(bytes: &[u8]) -> Result<Request, Ignored> {
        super::wire::check(bytes).map_err(|e| Ignored::Malformed(printable(&e)))?;
        let msg = Message::decode(&mut Decoder::new(bytes))
            .map_err(|e| Ignored::Malformed(printable(&e.to_string())))?;
        if msg.opcode() != Opcode::BootRequest {
            return Err(Ignored::NotRequest);
        }
        if msg.htype() != HType::Eth || msg.hlen() != 6 || msg.chaddr().len() < 6 {
            return Err(Ignored::NotEthernet);
        }
        let kind = msg.opts().msg_type().ok_or(Ignored::NoType)?;
        let mac = MacAddr(msg.chaddr()[..6].try_into().expect("checked length"));
        let bytes_of = |code| match msg.opts().get(code) {
            Some(DhcpOption::ClassIdentifier(v) | DhcpOption::ClientMachineIdentifier(v)) => {
                Some(v.as_slice())
            }
            _ => None,
        };
        let arch = match msg.opts().get(OptionCode::ClientSystemArchitecture) {
            Some(DhcpOption::ClientSystemArchitecture(a)) => Some(u16::from(*a)),
            _ => None,
        };
        let loader = pxe::classify(
            bytes_of(OptionCode::ClassIdentifier),
            arch,
            bytes_of(OptionCode::ClientMachineIdentifier),
        );
        Ok(Request {
            msg,
            kind,
            mac,
            loader,
        })
    }
}

/// The answer and when to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: MessageType,
    pub bytes: Vec<u8>,
    pub delay: Duration,
}

/// Answers a request on `slot`'s interface. Every DISCOVER is answered, the same
/// each time (the ROM retransmits with the same xid, and treats the OFFER as the
/// binding since it never sends REQUEST).
pub fn answer(
    req: &Request,
    slot: &SlotPlan,
    known_board: bool,
    policy: &Policy,
) -> Result<Reply, Ignored> {
    let giaddr = req.msg.giaddr();
    if !giaddr.is_unspecified() {
        return Err(Ignored::Relayed(giaddr));
    }
    if !known_board && !pxe::is_pi3_mac(req.mac) && !policy.serve_non_pi {
        return Err(Ignored::NotAPi);
    }
    match req.kind {
        MessageType::Discover => {
            let delay = if req.loader.is_pxe() {
                policy.rom_delay
            } else {
                Duration::ZERO
            };
            Ok(Reply {
                kind: MessageType::Offer,
                bytes: build(req, slot, MessageType::Offer, policy),
                delay,
            })
        }
        MessageType::Request => {
            if let Some(DhcpOption::ServerIdentifier(server)) =
                req.msg.opts().get(OptionCode::ServerIdentifier)
                && *server != slot.fileserver_ip
            {
                return Err(Ignored::OtherServer(*server));
            }
            let wanted = match req.msg.opts().get(OptionCode::RequestedIpAddress) {
                Some(DhcpOption::RequestedIpAddress(ip)) => *ip,
                _ => req.msg.ciaddr(),
            };
            let kind = if wanted == slot.pi_ip {
                MessageType::Ack
            } else {
                MessageType::Nak
            };
            Ok(Reply {
                kind,
                bytes: build(req, slot, kind, policy),
                delay: Duration::ZERO,
            })
        }
        other => Err(Ignored::NoAnswer(other)),
    }
}

/// Encodes the reply with its options in the order dnsmasq sends them (53 first,
/// END last, never a PAD): dhcproto writes the fixed part, the options are ours.
fn build(req: &Request, slot: &SlotPlan, kind: MessageType, policy: &Policy) -> Vec<u8> {
    let nak = kind == MessageType::Nak;
    let mut msg = Message::new_with_id(
        req.msg.xid(),
        Ipv4Addr::UNSPECIFIED,
        if nak {
            Ipv4Addr::UNSPECIFIED
        } else {
            slot.pi_ip
        },
        if nak {
            Ipv4Addr::UNSPECIFIED
        } else {
            slot.fileserver_ip
        },
        Ipv4Addr::UNSPECIFIED,
        req.msg.chaddr(),
    );
    msg.set_opcode(Opcode::BootReply).set_flags(req.msg.flags());
    let lease = policy.lease.as_secs().min(u64::from(u32::MAX)) as u32;
    let mut opts = vec![
        DhcpOption::MessageType(kind),
        DhcpOption::ServerIdentifier(slot.fileserver_ip),
    ];
    if !nak {
        opts.extend([
            DhcpOption::AddressLeaseTime(lease),
            DhcpOption::Renewal(lease / 2),
            DhcpOption::Rebinding(lease / 8 * 7),
            DhcpOption::SubnetMask(slot.netmask()),
            DhcpOption::BroadcastAddr(slot.storage.broadcast()),
            DhcpOption::Router(vec![slot.fileserver_ip]),
        ]);
        if req.loader.is_pxe() {
            opts.push(DhcpOption::ClassIdentifier(b"PXEClient".to_vec()));
            if let Some(guid @ DhcpOption::ClientMachineIdentifier(_)) =
                req.msg.opts().get(OptionCode::ClientMachineIdentifier)
            {
                opts.push(guid.clone());
            }
            opts.push(DhcpOption::VendorExtensions(pxe::option_43()));
        } else {
            opts.push(DhcpOption::Hostname(slot.hostname.clone()));
            opts.push(DhcpOption::RootPath(format!(
                "{}:{},vers=3,tcp",
                slot.fileserver_ip, slot.root
            )));
        }
    }
    let mut buf = Vec::with_capacity(400);
    let mut e = Encoder::new(&mut buf);
    // An empty option set encodes nothing (not even END), leaving the order to us.
    msg.encode(&mut e).expect("encoding into a Vec cannot fail");
    for o in opts.iter().chain([&DhcpOption::End]) {
        o.encode(&mut e).expect("encoding into a Vec cannot fail");
    }
    buf
}

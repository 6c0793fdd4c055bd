//! Ethernet frames as a Pi 3 sends them before it has an address: the boot ROM's
//! DISCOVER byte for byte (pi3-netboot notes §2.1), bootcode.bin's, and a Linux
//! client's; and the reading of replies off the wire.

use dhcproto::v4::{Decodable, Decoder, DhcpOption, Message, MessageType, OptionCode};
use pirack_core::inventory::{MacAddr, Model, Serial};
use pirack_netboot::dhcp::pxe::{self, ROM_3B_GUID, ROM_VENDOR_CLASS, ROM_XID};
use std::net::Ipv4Addr;

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    /// The mask ROM of a 3B (constant GUID) or 3B+ (serial GUID).
    Rom(Model),
    /// bootcode.bin's second DHCP: serial GUID and a 14-entry request list.
    Bootcode,
}

/// The ROM's parameter request list: 43, 60, 67, 128-135, 66.
const ROM_PRL: [u8; 12] = [43, 60, 67, 128, 129, 130, 131, 132, 133, 134, 135, 66];

/// DHCP options of a Pi loader's DISCOVER, in the order the ROM sends them.
pub fn loader_options(asker: Asker, serial: Serial) -> Vec<u8> {
    let mut o = vec![53, 1, 1];
    let prl: Vec<u8> = match asker {
        Asker::Rom(_) => ROM_PRL.to_vec(),
        Asker::Bootcode => [1, 3].into_iter().chain(ROM_PRL).collect(),
    };
    o.extend([55, prl.len() as u8]);
    o.extend(prl);
    o.extend([93, 2, 0, 0, 94, 3, 1, 2, 1, 97, 17]);
    match asker {
        Asker::Rom(Model::Pi3B) => o.extend(ROM_3B_GUID),
        _ => o.extend(pxe::guid_for_serial(serial)),
    }
    o.extend([60, ROM_VENDOR_CLASS.len() as u8]);
    o.extend(ROM_VENDOR_CLASS);
    o.push(255);
    o
}

/// A Linux client's options (busybox udhcpc): DISCOVER, or REQUEST for `requested`
/// from `server`.
pub fn linux_options(kind: MessageType, requested: Option<(Ipv4Addr, Ipv4Addr)>) -> Vec<u8> {
    let code = match kind {
        MessageType::Request => 3,
        _ => 1,
    };
    let mut o = vec![53, 1, code];
    if let Some((ip, server)) = requested {
        o.extend([50, 4]);
        o.extend(ip.octets());
        o.extend([54, 4]);
        o.extend(server.octets());
    }
    o.extend([55, 7, 1, 3, 6, 12, 15, 28, 42]);
    o.extend([60, 12]);
    o.extend(b"udhcp 1.35.0");
    o.push(255);
    o
}

/// The BOOTP request around `options`: 236 fixed bytes, the cookie, the options.
pub fn bootp_request(mac: MacAddr, xid: u32, options: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 236];
    b[..4].copy_from_slice(&[1, 1, 6, 0]);
    b[4..8].copy_from_slice(&xid.to_be_bytes());
    b[28..34].copy_from_slice(&mac.0);
    b.extend([0x63, 0x82, 0x53, 0x63]);
    b.extend(options);
    b
}

/// The whole frame: broadcast Ethernet, IPv4 from 0.0.0.0 with the ROM's TTL 128 and
/// id 0, UDP 68 → 67 without checksum.
pub fn frame(mac: MacAddr, bootp: &[u8]) -> Vec<u8> {
    let udp_len = 8 + bootp.len();
    let ip_len = 20 + udp_len;
    let mut f = Vec::with_capacity(14 + ip_len);
    f.extend([0xff; 6]);
    f.extend(mac.0);
    f.extend([0x08, 0x00]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[8] = 128;
    ip[9] = 17;
    ip[16..20].copy_from_slice(&[255; 4]);
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend(ip);
    f.extend(68u16.to_be_bytes());
    f.extend(67u16.to_be_bytes());
    f.extend((udp_len as u16).to_be_bytes());
    f.extend([0, 0]);
    f.extend(bootp);
    f
}

/// The ROM's (or bootcode.bin's) DISCOVER frame.
pub fn loader_discover(asker: Asker, mac: MacAddr, serial: Serial) -> Vec<u8> {
    frame(
        mac,
        &bootp_request(mac, ROM_XID, &loader_options(asker, serial)),
    )
}

fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A DHCP reply read off the wire, with what the IP header said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub ip_src: Ipv4Addr,
    pub msg: Message,
}

impl Reply {
    pub fn kind(&self) -> Option<MessageType> {
        self.msg.opts().msg_type()
    }
    pub fn bytes_opt(&self, code: OptionCode) -> Option<&[u8]> {
        match self.msg.opts().get(code)? {
            DhcpOption::VendorExtensions(v)
            | DhcpOption::ClassIdentifier(v)
            | DhcpOption::ClientMachineIdentifier(v)
            | DhcpOption::TFTPServerName(v) => Some(v),
            _ => None,
        }
    }
    pub fn server_id(&self) -> Option<Ipv4Addr> {
        match self.msg.opts().get(OptionCode::ServerIdentifier)? {
            DhcpOption::ServerIdentifier(ip) => Some(*ip),
            _ => None,
        }
    }
    pub fn netmask(&self) -> Option<Ipv4Addr> {
        match self.msg.opts().get(OptionCode::SubnetMask)? {
            DhcpOption::SubnetMask(m) => Some(*m),
            _ => None,
        }
    }
}

/// Reads a DHCP reply (UDP to port 68) out of an Ethernet frame; anything else is
/// `None`.
pub fn parse_reply(frame: &[u8]) -> Option<Reply> {
    if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip[9] != 17 || ip.len() < ihl + 8 {
        return None;
    }
    let ip_src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let udp = &ip[ihl..];
    if u16::from_be_bytes([udp[2], udp[3]]) != 68 {
        return None;
    }
    pirack_netboot::dhcp::wire::check(&udp[8..]).ok()?;
    let msg = Message::decode(&mut Decoder::new(&udp[8..])).ok()?;
    Some(Reply { ip_src, msg })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SUSE netboot-rpi3b BPF filter's byte checks, offsets from the UDP header.
    #[test]
    fn rom_discover_matches_the_notes_byte_for_byte() {
        let mac: MacAddr = "b8:27:eb:28:f6:6d".parse().unwrap();
        let f = loader_discover(Asker::Rom(Model::Pi3B), mac, Serial::new(0x1928f66d));
        assert_eq!(f.len(), 14 + 348);
        let ip = &f[14..34];
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 348);
        assert_eq!((ip[4], ip[5], ip[8]), (0, 0, 128), "id 0, ttl 128");
        assert_eq!(checksum(ip), 0, "header checksum valid");
        let udp = &f[34..];
        assert_eq!(
            &udp[..8],
            &[0, 68, 0, 67, 1, 0x48, 0, 0],
            "68 -> 67, length 328, no checksum"
        );
        let at = |o: usize, n: usize| &udp[o..o + n];
        assert_eq!(at(8, 4), &[0x01, 0x01, 0x06, 0x00]);
        assert_eq!(at(12, 4), &[0x26, 0xf3, 0x03, 0x39]);
        assert_eq!(at(248, 4), &[0x35, 0x01, 0x01, 0x37]);
        assert_eq!(at(265, 4), &[0x5d, 0x02, 0x00, 0x00]);
        assert_eq!(at(269, 4), &[0x5e, 0x03, 0x01, 0x02]);
        assert_eq!(at(273, 4), &[0x01, 0x61, 0x11, 0x00]);
        assert_eq!(udp[293], 0x3c);
        assert_eq!(at(326, 2), &[0x31, 0xff]);
        assert_eq!(udp.len(), 328);
        let opts = &udp[248..];
        let hex: Vec<String> = opts[..17].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex.join(" "),
            "35 01 01 37 0c 2b 3c 43 80 81 82 83 84 85 86 87 42"
        );
    }

    #[test]
    fn plus_rom_sends_the_serial_guid() {
        let serial: Serial = "b66c4c16".parse().unwrap();
        let f = loader_discover(Asker::Rom(Model::Pi3BPlus), MacAddr::of_pi3(serial), serial);
        let udp = &f[34..];
        assert_eq!(&udp[276..281], &[0x00, 0x16, 0x4c, 0x6c, 0xb6]);
        let req = pirack_netboot::dhcp::Request::parse(&udp[8..]).unwrap();
        assert_eq!(req.loader, pxe::Loader::PiFirmware(serial));
    }
}

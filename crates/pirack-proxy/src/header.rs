//! The PROXY protocol header a backend is sent before the client's bytes (ppp
//! encodes it). An IPv4 client is always written as TCP4 with its plain IPv4
//! address: a dual-stack listener sees it as `::ffff:a.b.c.d`, which sniproxy
//! once passed on as TCP6 and Apache and others refuse. Version 2 carries the
//! name the client asked for in its authority TLV (0x02).

use crate::routes::Protocol;
use ppp::{v1, v2};
use std::net::{IpAddr, SocketAddr};

/// The header for a connection from `client` to the proxy's `local` address
/// that asked for `name`; empty for [`Protocol::Off`].
pub fn encode(protocol: Protocol, client: SocketAddr, local: SocketAddr, name: &str) -> Vec<u8> {
    let (client, local) = match (unmapped(client), unmapped(local)) {
        (c @ SocketAddr::V4(_), l @ SocketAddr::V4(_))
        | (c @ SocketAddr::V6(_), l @ SocketAddr::V6(_)) => (c, l),
        // One side IPv4, the other not: say the proxy's side in the client's family.
        (c @ SocketAddr::V4(_), l) => (c, SocketAddr::new(IpAddr::from([0, 0, 0, 0]), l.port())),
        (c, l) => (c, SocketAddr::new(IpAddr::from([0u16; 8]), l.port())),
    };
    match protocol {
        Protocol::Off => Vec::new(),
        Protocol::V1 => v1::Addresses::from((client, local))
            .to_string()
            .into_bytes(),
        Protocol::V2 => v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            (client, local),
        )
        .write_tlv(v2::Type::Authority, name.as_bytes())
        .and_then(v2::Builder::build)
        .expect("a header of two addresses and a host name fits in memory"),
    }
}

/// `addr` with an IPv4-mapped IPv6 address turned back into IPv4.
fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => addr,
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_ipv4_client_is_tcp4() {
        let client: SocketAddr = "[::ffff:198.51.100.7]:40000".parse().unwrap();
        let local: SocketAddr = "[::ffff:192.0.2.80]:443".parse().unwrap();
        let h = encode(Protocol::V1, client, local, "www.example.com");
        assert_eq!(h, b"PROXY TCP4 198.51.100.7 192.0.2.80 40000 443\r\n");
        let v6 = encode(
            Protocol::V1,
            "[2001:db8::7]:40000".parse().unwrap(),
            "[2001:db8::80]:80".parse().unwrap(),
            "x",
        );
        assert_eq!(v6, b"PROXY TCP6 2001:db8::7 2001:db8::80 40000 80\r\n");
        assert!(encode(Protocol::Off, client, local, "x").is_empty());
    }

    #[test]
    fn version_2_carries_the_authority() {
        let client: SocketAddr = "198.51.100.7:40000".parse().unwrap();
        let local: SocketAddr = "192.0.2.80:443".parse().unwrap();
        let h = encode(Protocol::V2, client, local, "www.example.com");
        let parsed = v2::Header::try_from(h.as_slice()).unwrap();
        assert_eq!(
            parsed.addresses,
            v2::Addresses::IPv4(v2::IPv4::new(
                [198, 51, 100, 7],
                [192, 0, 2, 80],
                40000,
                443
            ))
        );
        let authority = parsed
            .tlvs()
            .filter_map(Result::ok)
            .find(|t| t.kind == u8::from(v2::Type::Authority))
            .unwrap();
        assert_eq!(&*authority.value, b"www.example.com");
    }
}

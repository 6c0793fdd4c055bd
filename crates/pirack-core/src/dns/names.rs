//! DNS names as pirack compares them: absolute, lower-case, with the trailing dot.

use ipnet::Ipv6Net;
use std::net::Ipv6Addr;

/// `name` as compared: lower-case, with the root's trailing dot.
pub fn absolute(name: &str) -> String {
    let mut n = name.trim_end_matches('.').to_ascii_lowercase();
    n.push('.');
    n
}

/// Whether `name` (absolute) can be a host's name: labels of letters, digits,
/// `-` and `_`, each 1-63 bytes, 253 bytes in all.
pub fn is_host(name: &str) -> bool {
    let bare = name.strip_suffix('.').unwrap_or(name);
    !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Whether `name` (absolute) can own a customer's records: a host name, or a
/// wildcard (`*.` and a host name) that answers for every name under it.
pub fn is_owner(name: &str) -> bool {
    is_host(name.strip_prefix("*.").unwrap_or(name))
}

/// Whether `name` is `zone` or under it (both absolute).
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || (name.ends_with(zone) && name[..name.len() - zone.len()].ends_with('.'))
}

/// The zone of `zones` that holds `name`: the longest that does.
pub fn zone_of<'z>(name: &str, zones: &'z [String]) -> Option<&'z str> {
    zones
        .iter()
        .filter(|z| in_zone(name, z))
        .max_by_key(|z| z.len())
        .map(String::as_str)
}

/// The PTR owner of `addr`: its 32 nibbles, last first, under ip6.arpa.
pub fn ptr_name(addr: Ipv6Addr) -> String {
    nibbles(addr, 32)
}

/// The reverse zone of `prefix`, rounded down to a nibble boundary (a /96 gives
/// 24 nibbles; a /62 the zone of its /60).
pub fn reverse_zone(prefix: Ipv6Net) -> String {
    nibbles(prefix.network(), usize::from(prefix.prefix_len() / 4))
}

fn nibbles(addr: Ipv6Addr, count: usize) -> String {
    let all: Vec<u8> = addr
        .octets()
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .collect();
    let mut out = String::with_capacity(count * 2 + 9);
    for n in all[..count].iter().rev() {
        out.push(char::from_digit(u32::from(*n), 16).expect("a nibble"));
        out.push('.');
    }
    out.push_str("ip6.arpa.");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptr_names_and_reverse_zones_follow_rfc_3596() {
        let a: Ipv6Addr = "2001:db8::567:89ab".parse().unwrap();
        assert_eq!(
            ptr_name(a),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
        let p: Ipv6Net = "2001:db8:0:85:1000:1::/96".parse().unwrap();
        assert_eq!(
            reverse_zone(p),
            "1.0.0.0.0.0.0.1.5.8.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
        let odd: Ipv6Net = "2001:db8:0:84::/62".parse().unwrap();
        assert_eq!(reverse_zone(odd), "8.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.");
        assert!(in_zone(
            &ptr_name(a),
            &reverse_zone("2001:db8::/32".parse().unwrap())
        ));
    }

    #[test]
    fn zones_match_on_label_boundaries() {
        let zones = vec!["example.net.".to_string(), "pi.example.net.".to_string()];
        assert_eq!(
            zone_of("a-01.pi.example.net.", &zones),
            Some("pi.example.net.")
        );
        assert_eq!(zone_of("www.example.net.", &zones), Some("example.net."));
        assert_eq!(zone_of("notexample.net.", &zones), None);
        assert_eq!(absolute("A-01.Pi.Example.NET"), "a-01.pi.example.net.");
    }

    #[test]
    fn owners_are_host_names_or_wildcards_above_one() {
        for good in [
            "www.acme.example.",
            "*.shop.acme.example.",
            "_acme-challenge.a.",
        ] {
            assert!(is_owner(good), "{good}");
        }
        for bad in [
            "*.",
            "*.*.acme.example.",
            "w*.acme.example.",
            "a..b.",
            "bad!.example.",
        ] {
            assert!(!is_owner(bad), "{bad}");
        }
    }
}

//! ANAME names: a customer's name (typically a zone's apex, where a CNAME may not
//! stand) that follows a target hostname's addresses. No server agrees on an
//! ANAME type, so pirack resolves the target and writes plain AAAA and A records,
//! keeping the rules of the ANAME draft: address types resolved separately, TTL
//! the smaller of the ANAME's and the target's, nothing written when nothing
//! changed, and a failure never blanks a name: its last addresses stay, marked
//! stale.

use super::names::in_zone;
use super::{Data, Record};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, Ipv6Addr};

/// An ANAME name's target and what pirack last made of it (kept in the store
/// beside the records it wrote).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Status {
    /// The hostname followed, absolute.
    pub target: String,
    /// The ANAME's own TTL: the most the written records get.
    pub ttl: u32,
    /// Names from the target to the addresses (CNAMEs followed).
    #[serde(default)]
    pub chain: Vec<String>,
    /// The site's slot the chain ends at: its name's A is the proxy's address,
    /// so the proxy routes this name to that slot.
    #[serde(default)]
    pub slot: Option<String>,
    /// Last successful resolution, in ms since the epoch.
    #[serde(default)]
    pub resolved_at: Option<i64>,
    /// Why the last resolution failed; the records are then the last good ones.
    #[serde(default)]
    pub error: Option<String>,
    /// When resolutions began to fail, in ms since the epoch.
    #[serde(default)]
    pub stale_since: Option<i64>,
}

/// A target's addresses as resolved, with the smallest TTL met on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses {
    pub aaaa: Vec<Ipv6Addr>,
    pub a: Vec<Ipv4Addr>,
    pub ttl: u32,
}

/// The TTL written at the name: the ANAME's, or the target's if smaller, never
/// below `floor` (how often pirack is willing to ask).
pub fn ttl(aname_ttl: u32, target_ttl: u32, floor: u32) -> u32 {
    aname_ttl.min(target_ttl.max(floor))
}

/// Addresses of one type a name takes from its target: a target's owner must
/// not make a customer's name (and the zone) carry without bound.
pub const MAX_PER_TYPE: usize = 16;

/// The records `name` holds for `found`, sorted: the lowest [`MAX_PER_TYPE`]
/// addresses of each type, so the choice is stable from one answer to the next.
pub fn records(name: &str, aname_ttl: u32, floor: u32, found: &Addresses) -> Vec<Record> {
    let ttl = ttl(aname_ttl, found.ttl, floor);
    let lowest = |mut d: Vec<Data>| {
        d.sort();
        d.dedup();
        d.truncate(MAX_PER_TYPE);
        d
    };
    let v6 = lowest(found.aaaa.iter().map(|a| Data::Aaaa(*a)).collect());
    let v4 = lowest(found.a.iter().map(|a| Data::A(*a)).collect());
    let mut out: Vec<Record> = v6
        .into_iter()
        .chain(v4)
        .map(|data| Record {
            name: name.to_string(),
            ttl,
            data,
        })
        .collect();
    out.sort();
    out
}

/// A resolution that succeeded: the addresses, the names followed, and the
/// site's slot the chain ends at, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub addresses: Addresses,
    pub chain: Vec<String>,
    pub slot: Option<String>,
}

/// What a name holds after a resolution at `now` (ms), and how many seconds
/// until the next: the fresh addresses, or on failure the old ones, stale since
/// the first failure and asked again after the floor.
pub fn settle(
    name: &str,
    old: &[Record],
    status: &Status,
    outcome: Result<Found, String>,
    floor: u32,
    now: i64,
) -> (Vec<Record>, Status, u32) {
    match outcome {
        Ok(found) => {
            let records = records(name, status.ttl, floor, &found.addresses);
            let next = ttl(status.ttl, found.addresses.ttl, floor);
            let status = Status {
                chain: found.chain,
                slot: found.slot,
                resolved_at: Some(now),
                error: None,
                stale_since: None,
                ..status.clone()
            };
            (records, status, next)
        }
        Err(error) => {
            let status = Status {
                error: Some(error),
                stale_since: status.stale_since.or(Some(now)),
                ..status.clone()
            };
            let next = floor.min(status.ttl).max(1);
            (old.to_vec(), status, next)
        }
    }
}

/// Whether `allow` (absolute names, `*.name`, or `*`) lets a customer follow
/// `target` (absolute).
pub fn allowed(target: &str, allow: &[String]) -> bool {
    allow.iter().any(|p| match p.strip_prefix("*.") {
        _ if p == "*" => true,
        Some(parent) => target != parent && in_zone(target, parent),
        None => target == p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smaller_ttl_wins_above_the_floor() {
        assert_eq!(ttl(300, 60, 30), 60);
        assert_eq!(ttl(300, 5, 30), 30);
        assert_eq!(ttl(20, 5, 30), 20);
        assert_eq!(ttl(300, 3600, 30), 300);
    }

    #[test]
    fn records_carry_both_families_once() {
        let found = Addresses {
            aaaa: vec![
                "2001:db8::2".parse().unwrap(),
                "2001:db8::2".parse().unwrap(),
            ],
            a: vec!["192.0.2.80".parse().unwrap()],
            ttl: 120,
        };
        let r = records("example.com.", 300, 30, &found);
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|r| r.ttl == 120 && r.name == "example.com."));
        let many = Addresses {
            aaaa: (0..100u16)
                .rev()
                .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))
                .collect(),
            a: vec![],
            ttl: 60,
        };
        let r = records("example.com.", 300, 30, &many);
        assert_eq!(r.len(), MAX_PER_TYPE);
        assert_eq!(r[0].data, Data::Aaaa("2001:db8::".parse().unwrap()));
    }

    #[test]
    fn a_failure_keeps_the_old_addresses_and_when_it_began() {
        let st = Status {
            target: "t.example.net.".into(),
            ttl: 300,
            ..Status::default()
        };
        let found = Found {
            addresses: Addresses {
                aaaa: vec!["2001:db8::2".parse().unwrap()],
                a: vec![],
                ttl: 60,
            },
            chain: vec!["t.example.net.".into()],
            slot: None,
        };
        let (good, st, next) = settle("n.", &[], &st, Ok(found), 30, 1000);
        assert_eq!((good.len(), next, st.resolved_at), (1, 60, Some(1000)));
        let (kept, st, next) = settle("n.", &good, &st, Err("NXDOMAIN".into()), 30, 2000);
        assert_eq!((kept, next), (good.clone(), 30));
        assert_eq!((st.stale_since, st.resolved_at), (Some(2000), Some(1000)));
        let (_, st, _) = settle("n.", &good, &st, Err("timeout".into()), 30, 3000);
        assert_eq!(
            (st.stale_since, st.error.as_deref()),
            (Some(2000), Some("timeout"))
        );
    }

    #[test]
    fn allow_patterns() {
        let allow = vec!["*.example.net.".to_string(), "cdn.example.org.".to_string()];
        assert!(allowed("www.example.net.", &allow));
        assert!(!allowed("example.net.", &allow));
        assert!(!allowed("badexample.net.", &allow));
        assert!(allowed("cdn.example.org.", &allow));
        assert!(!allowed("x.cdn.example.org.", &allow));
        assert!(allowed("anything.", &["*".to_string()]));
        assert!(!allowed("anything.", &[]));
    }
}

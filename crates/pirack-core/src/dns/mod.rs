//! What pirack publishes in DNS and how far a zone is from it: pure functions
//! from the plan and a zone's contents to the changes that close the gap. Each
//! change becomes an RFC 2136 update whose prerequisites let it apply only to a
//! name pirack holds, or to one nobody holds yet: pirack marks what it holds with
//! a registry TXT record at `_pirack.<name>` (as Kubernetes external-dns does), so
//! records someone else wrote are left alone and reported.

pub mod aname;
pub mod drift;
pub mod names;
pub mod want;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

pub const A: u16 = 1;
pub const CNAME: u16 = 5;
pub const PTR: u16 = 12;
pub const MX: u16 = 15;
pub const TXT: u16 = 16;
pub const AAAA: u16 = 28;
pub const SRV: u16 = 33;
pub const CAA: u16 = 257;

/// The types a customer may write at its own names.
pub const CUSTOMER_TYPES: [u16; 7] = [A, AAAA, CNAME, MX, TXT, SRV, CAA];

/// The types pirack writes at the names it holds.
pub const MANAGED: [u16; 3] = [A, AAAA, PTR];

/// One resource record's data; other types are kept as text, to be shown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Data {
    A(Ipv4Addr),
    #[serde(rename = "AAAA")]
    Aaaa(Ipv6Addr),
    #[serde(rename = "PTR")]
    Ptr(String),
    #[serde(rename = "TXT")]
    Txt(String),
    #[serde(rename = "other")]
    Other {
        rtype: u16,
        rdata: String,
    },
}

impl Data {
    pub fn rtype(&self) -> u16 {
        match self {
            Data::A(_) => A,
            Data::Aaaa(_) => AAAA,
            Data::Ptr(_) => PTR,
            Data::Txt(_) => TXT,
            Data::Other { rtype, .. } => *rtype,
        }
    }
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::A(a) => write!(f, "A {a}"),
            Data::Aaaa(a) => write!(f, "AAAA {a}"),
            Data::Ptr(n) => write!(f, "PTR {n}"),
            Data::Txt(t) => write!(f, "TXT {t:?}"),
            Data::Other { rtype, rdata } => write!(f, "TYPE{rtype} {rdata}"),
        }
    }
}

/// A resource record (class IN), its name absolute and lower-case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    pub ttl: u32,
    #[serde(flatten)]
    pub data: Data,
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.name, self.ttl, self.data)
    }
}

/// The label before a name where pirack keeps its mark.
const REGISTRY: &str = "_pirack.";

/// Where pirack marks a name as its own.
pub fn registry_name(name: &str) -> String {
    format!("{REGISTRY}{name}")
}

/// The name a registry name marks, if it is one.
pub fn registered(registry_name: &str) -> Option<&str> {
    registry_name.strip_prefix(REGISTRY)
}

/// The mark: which site's controller holds the name, for what, and which types
/// it wrote there (records of other types at the name are someone else's).
pub fn registry_value(site: &str, holder: &str, types: &[u16]) -> String {
    let types: Vec<&str> = types.iter().map(|t| type_name(*t)).collect();
    format!(
        "heritage=pirack,site={site},for={holder},types={}",
        types.join("+")
    )
}

/// The site a registry mark names, if it is pirack's.
pub fn registry_site(value: &str) -> Option<&str> {
    value
        .strip_prefix("heritage=pirack,site=")?
        .split(',')
        .next()
}

/// The types a registry mark says pirack wrote (all it manages, if it does not say).
pub fn registry_types(value: &str) -> Vec<u16> {
    match value.rsplit_once(",types=") {
        Some((_, list)) => list.split('+').filter_map(type_code).collect(),
        None => MANAGED.to_vec(),
    }
}

/// The distinct types of `records`, in a stable order.
pub fn types_of(records: &[Record]) -> Vec<u16> {
    let mut t: Vec<u16> = records.iter().map(|r| r.data.rtype()).collect();
    t.sort_unstable();
    t.dedup();
    t
}

pub fn type_name(t: u16) -> &'static str {
    match t {
        A => "A",
        CNAME => "CNAME",
        PTR => "PTR",
        MX => "MX",
        TXT => "TXT",
        AAAA => "AAAA",
        SRV => "SRV",
        CAA => "CAA",
        _ => "?",
    }
}

/// A type by its name (upper-case), among those pirack writes.
pub fn type_code(name: &str) -> Option<u16> {
    [A, CNAME, PTR, MX, TXT, AAAA, SRV, CAA]
        .into_iter()
        .find(|t| type_name(*t) == name)
}

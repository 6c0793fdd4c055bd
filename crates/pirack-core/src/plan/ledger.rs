//! The address ledger: every allocation ever made to a slot, kept until staff release
//! it. The ledger, not the inventory's order, is what keeps addresses stable.

use crate::inventory::{Location, SlotKey};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

/// What one slot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allocation {
    /// Position label when last planned (informative: the key is the identity).
    pub position: String,
    pub vlan: u16,
    /// The slot's /30 storage network.
    pub storage: Ipv4Net,
    pub ipv6: Ipv6Addr,
    /// NFS export fsid.
    pub fsid: u32,
}

/// All allocations, by slot key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    /// Next NFS fsid. fsids only ever grow, so a stale NFS file handle held by a
    /// removed Pi can never resolve into the root of whoever gets its addresses next.
    pub next_fsid: u32,
    pub slots: BTreeMap<SlotKey, Allocation>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            next_fsid: 1,
            slots: BTreeMap::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot read ledger {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{}:{}: {message}", path.display(), at.line, at.column)]
    Invalid {
        path: PathBuf,
        at: Location,
        message: String,
    },
}

const HEADER: &str = "\
# pirack address ledger: what each slot (switch/port) holds. Written by `pirack plan`.
# Entries stay after a slot leaves the inventory, so nothing is reused by accident;
# free them with `pirack ledger release SWITCH/PORT`.
";

impl Ledger {
    /// The ledger's default place: `<inventory stem>.ledger.yaml` beside the inventory.
    pub fn path_for(inventory: &Path) -> PathBuf {
        let stem = inventory
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("inventory");
        inventory.with_file_name(format!("{stem}.ledger.yaml"))
    }

    /// Parses a ledger and checks that no two entries share a resource.
    pub fn parse(path: &Path, text: &str) -> Result<Ledger, LedgerError> {
        let invalid = |at: Location, message: String| LedgerError::Invalid {
            path: path.to_path_buf(),
            at,
            message,
        };
        let ledger: Ledger = serde_yaml::from_str(text).map_err(|e| {
            let at = e.location().map_or(Location::default(), |l| Location {
                line: l.line(),
                column: l.column(),
            });
            invalid(at, e.to_string())
        })?;
        let map = crate::inventory::SourceMap::build(text);
        let mut seen: HashMap<String, &SlotKey> = HashMap::new();
        for (key, a) in &ledger.slots {
            let here = map.locate(&format!("slots.{key}"));
            if a.storage.prefix_len() != 30 || a.storage.trunc() != a.storage {
                return Err(invalid(
                    here,
                    format!("{key}: storage {} is not a /30 network", a.storage),
                ));
            }
            if a.fsid >= ledger.next_fsid {
                return Err(invalid(
                    here,
                    format!("{key}: fsid {} is not below next_fsid", a.fsid),
                ));
            }
            for what in [
                format!("VLAN {}", a.vlan),
                format!("storage network {}", a.storage),
                format!("IPv6 address {}", a.ipv6),
                format!("fsid {}", a.fsid),
            ] {
                if let Some(other) = seen.insert(what.clone(), key) {
                    return Err(invalid(
                        here,
                        format!("{key}: {what} is also held by {other}"),
                    ));
                }
            }
        }
        Ok(ledger)
    }

    /// Loads the ledger at `path`; a missing file is an empty ledger.
    pub fn load(path: &Path) -> Result<Ledger, LedgerError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ledger::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ledger::default()),
            Err(source) => Err(LedgerError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn to_yaml(&self) -> String {
        HEADER.to_string() + &serde_yaml::to_string(self).expect("ledger serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(vlan: u16, net: &str, ip: &str, fsid: u32) -> Allocation {
        Allocation {
            position: "A-01".into(),
            vlan,
            storage: net.parse().unwrap(),
            ipv6: ip.parse().unwrap(),
            fsid,
        }
    }

    #[test]
    fn round_trips_and_rejects_shared_resources() {
        let mut l = Ledger {
            next_fsid: 3,
            ..Ledger::default()
        };
        l.slots.insert(
            "sw/1".parse().unwrap(),
            entry(10, "10.0.0.0/30", "2001:db8::1", 1),
        );
        l.slots.insert(
            "sw/2".parse().unwrap(),
            entry(11, "10.0.0.4/30", "2001:db8::2", 2),
        );
        let p = Path::new("l.yaml");
        assert_eq!(Ledger::parse(p, &l.to_yaml()).unwrap(), l);

        l.slots.get_mut(&"sw/2".parse().unwrap()).unwrap().vlan = 10;
        let err = Ledger::parse(p, &l.to_yaml()).unwrap_err().to_string();
        assert!(err.contains("VLAN 10 is also held by sw/1"), "{err}");
        assert!(err.starts_with("l.yaml:"), "{err}");

        let err = Ledger::parse(p, "next_fsid: 1\nslots:\n  sw/1: {position: A, vlan: x}\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("l.yaml:3:"), "{err}");
    }
}

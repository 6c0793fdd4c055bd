//! The switch port plan: each Pi port untagged in its own storage VLAN (also its
//! PVID) and tagged in the shelf's public VLAN; the trunk tagged in all of them.
//! Rendered for people as YAML and for the switch as Q-BRIDGE-MIB (RFC 4363) SETs.

use super::header;
use crate::inventory::Site;
use crate::plan::Plan;
pub use crate::switch::layout::{PortPlan, SwitchPlan, VlanPlan};
use crate::switch::qbridge::{CREATE_AND_GO, PVID, VLAN_STATIC_ENTRY, column};
use crate::switch::{Profile, portlist};
use serde::Serialize;
use std::fmt::Write as _;

/// The port VLAN plan of every switch, in inventory order.
pub fn plan_switches(site: &Site, plan: &Plan) -> Vec<SwitchPlan> {
    site.switches
        .iter()
        .map(|sw| {
            let shelf = &site.shelves[sw.shelf];
            let mine: Vec<_> = plan
                .slots
                .iter()
                .filter(|s| s.key.switch == sw.name)
                .collect();
            let mut pi_ports: Vec<PortPlan> = mine
                .iter()
                .map(|s| PortPlan {
                    port: s.key.port,
                    position: s.position.clone(),
                    pvid: s.vlan,
                    untagged: s.vlan,
                    tagged: s.public_vlan,
                })
                .collect();
            pi_ports.sort_by_key(|p| p.port);
            let mut vlans: Vec<VlanPlan> = mine
                .iter()
                .map(|s| VlanPlan {
                    id: s.vlan,
                    name: format!("pirack-{}", s.position),
                    egress: sorted(vec![s.key.port, sw.trunk_port]),
                    untagged: vec![s.key.port],
                })
                .collect();
            if !mine.is_empty() {
                let mut egress: Vec<u16> = pi_ports.iter().map(|p| p.port).collect();
                egress.push(sw.trunk_port);
                vlans.push(VlanPlan {
                    id: shelf.public_vlan,
                    name: format!("pirack-public-{}", shelf.name),
                    egress: sorted(egress),
                    untagged: Vec::new(),
                });
            }
            vlans.sort_by_key(|v| v.id);
            SwitchPlan {
                switch: sw.name.clone(),
                address: sw.address,
                profile: sw.profile.clone(),
                trunk_port: sw.trunk_port,
                ports: sw.ports,
                pi_ports,
                vlans,
            }
        })
        .collect()
}

fn sorted(mut v: Vec<u16>) -> Vec<u16> {
    v.sort_unstable();
    v
}

fn list(v: &[u16]) -> String {
    let items: Vec<String> = v.iter().map(u16::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// The plan as YAML for people (flow style: one line per port and per VLAN).
pub fn ports_yaml(sw: &SwitchPlan) -> String {
    let mut out = header("#", &format!("Port VLAN plan of switch {}", sw.switch));
    let mut trunk_vlans: Vec<u16> = sw.vlans.iter().map(|v| v.id).collect();
    trunk_vlans.sort_unstable();
    let _ = write!(
        out,
        "switch: {}\naddress: {}\nprofile: {}\ntrunk:\n  port: {}\n  tagged: {}\nports:\n",
        sw.switch,
        sw.address,
        sw.profile,
        sw.trunk_port,
        list(&trunk_vlans)
    );
    for p in &sw.pi_ports {
        let _ = writeln!(
            out,
            "  - {{port: {}, slot: {}, pvid: {}, untagged: [{}], tagged: [{}]}}",
            p.port, p.position, p.pvid, p.untagged, p.tagged
        );
    }
    out += "vlans:\n";
    for v in &sw.vlans {
        let _ = writeln!(
            out,
            "  - {{id: {}, name: {}, egress: {}, untagged: {}}}",
            v.id,
            v.name,
            list(&v.egress),
            list(&v.untagged)
        );
    }
    out
}

/// An SNMP value, in the types the Q-BRIDGE-MIB objects take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SnmpValue {
    Integer(i32),
    /// Unsigned32 / Gauge32 (dot1qPvid is one: INTEGER gets wrongType).
    Unsigned(u32),
    Text(String),
    /// An OCTET STRING such as a PortList bitmap.
    Octets(Vec<u8>),
}

/// One SET the switch needs to match the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnmpWrite {
    pub oid: String,
    pub value: SnmpValue,
    /// MIB object name with its index, for people and logs.
    pub object: String,
    /// Sent only when the row does not exist yet (RowStatus creation).
    pub create_only: bool,
}

/// A Q-BRIDGE-MIB PortList of front-panel ports.
pub fn port_list(ports: &[u16], profile: &Profile, port_count: u16) -> Vec<u8> {
    portlist::encode(
        ports.iter().map(|p| profile.ports.bridge_port(*p)),
        portlist::octets(profile, port_count),
    )
}

/// Every SET implied by the plan: per VLAN its row, name, egress and untagged ports
/// (egress before untagged, as untagged ports must be egress ports), then each Pi
/// port's PVID.
pub fn snmp_writes(sw: &SwitchPlan, profile: &Profile) -> Vec<SnmpWrite> {
    let mut out = Vec::new();
    for v in &sw.vlans {
        let col = |c: u32| format!("{VLAN_STATIC_ENTRY}.{c}.{}", v.id);
        let mut push = |c: u32, value, name: &str, create_only| {
            out.push(SnmpWrite {
                oid: col(c),
                value,
                object: format!("{name}.{}", v.id),
                create_only,
            })
        };
        push(
            column::ROW_STATUS,
            SnmpValue::Integer(CREATE_AND_GO),
            "dot1qVlanStaticRowStatus",
            true,
        );
        push(
            column::NAME,
            SnmpValue::Text(v.name.clone()),
            "dot1qVlanStaticName",
            false,
        );
        let egress = port_list(&v.egress, profile, sw.ports);
        push(
            column::EGRESS,
            SnmpValue::Octets(egress),
            "dot1qVlanStaticEgressPorts",
            false,
        );
        let untagged = port_list(&v.untagged, profile, sw.ports);
        push(
            column::UNTAGGED,
            SnmpValue::Octets(untagged),
            "dot1qVlanStaticUntaggedPorts",
            false,
        );
    }
    for p in &sw.pi_ports {
        let bp = profile.ports.bridge_port(p.port);
        out.push(SnmpWrite {
            oid: format!("{PVID}.{bp}"),
            value: SnmpValue::Unsigned(u32::from(p.pvid)),
            object: format!("dot1qPvid.{bp}"),
            create_only: false,
        });
    }
    out
}

/// The writes as `snmpset` arguments (OID, type letter, value), one per line.
pub fn snmp_writes_text(sw: &SwitchPlan, writes: &[SnmpWrite]) -> String {
    let mut out = header(
        "#",
        &format!("SNMP SETs for switch {} ({})", sw.switch, sw.address),
    );
    out += "# Q-BRIDGE-MIB (RFC 4363), as snmpset(1) arguments: i INTEGER, u Unsigned32, s string, x hex.\n";
    out += "# Lines marked `create` are sent only when the VLAN does not exist yet.\n";
    for w in writes {
        let (t, v) = match &w.value {
            SnmpValue::Integer(i) => ("i", i.to_string()),
            SnmpValue::Unsigned(u) => ("u", u.to_string()),
            SnmpValue::Text(s) => ("s", s.clone()),
            SnmpValue::Octets(b) => ("x", b.iter().map(|x| format!("{x:02X}")).collect()),
        };
        let mark = if w.create_only { " create" } else { "" };
        let _ = writeln!(out, "{} {t} {v}  # {}{mark}", w.oid, w.object);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(offset: u16, octets: Option<usize>) -> Profile {
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../../switch-profiles");
        let profiles = crate::switch::Profiles::load_dir(std::path::Path::new(shipped))
            .expect("shipped profiles load");
        let mut p = profiles.get("generic").expect("generic profile").clone();
        p.ports.bridge_port_offset = offset;
        p.ports.port_list_octets = octets;
        p
    }

    #[test]
    fn port_list_bits_follow_rfc4363() {
        // Port 1 is the most significant bit of the first octet.
        assert_eq!(
            port_list(&[1, 9, 16], &profile(0, None), 16),
            vec![0x80, 0x81]
        );
        assert_eq!(port_list(&[97], &profile(0, None), 97).len(), 13);
        assert_eq!(port_list(&[1], &profile(1, Some(32)), 8), {
            let mut v = vec![0u8; 32];
            v[0] = 0x40;
            v
        });
    }
}

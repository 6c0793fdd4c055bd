//! VLAN drift: what a switch's Q-BRIDGE-MIB state lacks against the plan, as the
//! ordered changes that close the gap. Pure: the state comes in read, the changes go
//! out to be written (`vlan.rs` does both).
//!
//! The plan owns its VLANs outright (a storage VLAN holds exactly its Pi's port and
//! the trunk) and owns the Pi ports: a Pi port found in any other VLAN is taken out,
//! since that VLAN's traffic would reach the Pi. Other ports of other VLANs, the
//! trunk's among them, are left alone.

use super::layout::SwitchPlan;
use super::profile::Profile;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Bridge port numbers (`dot1dBasePort`), as PortList bits count them.
pub type Ports = BTreeSet<u32>;

/// One `dot1qVlanStaticEntry`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VlanRow {
    pub name: String,
    pub egress: Ports,
    pub untagged: Ports,
    /// RowStatus: 1 active, 2 notInService, 3 notReady.
    pub status: i64,
}

/// A switch's VLANs and port VLAN ids, as read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VlanState {
    pub vlans: BTreeMap<u16, VlanRow>,
    /// `dot1qPvid` by bridge port.
    pub pvid: BTreeMap<u32, u32>,
}

/// One change, in bridge ports; shown in front-panel ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Create {
        vid: u16,
    },
    Name {
        vid: u16,
        from: String,
        to: String,
    },
    Egress {
        vid: u16,
        from: Ports,
        to: Ports,
    },
    Untagged {
        vid: u16,
        from: Ports,
        to: Ports,
    },
    Activate {
        vid: u16,
    },
    Pvid {
        port: u32,
        from: Option<u32>,
        to: u32,
    },
}

/// The plan as this switch numbers it.
struct Wanted {
    vlans: BTreeMap<u16, VlanRow>,
    pi_ports: Ports,
    pvid: BTreeMap<u32, u32>,
}

fn wanted(plan: &SwitchPlan, profile: &Profile) -> Wanted {
    let bp = |p: &u16| profile.ports.bridge_port(*p);
    Wanted {
        vlans: plan
            .vlans
            .iter()
            .map(|v| {
                let row = VlanRow {
                    name: v.name.clone(),
                    egress: v.egress.iter().map(bp).collect(),
                    untagged: v.untagged.iter().map(bp).collect(),
                    status: 1,
                };
                (v.id, row)
            })
            .collect(),
        pi_ports: plan.pi_ports.iter().map(|p| bp(&p.port)).collect(),
        pvid: plan
            .pi_ports
            .iter()
            .map(|p| (bp(&p.port), u32::from(p.pvid)))
            .collect(),
    }
}

/// The changes that bring `state` to the plan, in an order every switch accepts:
/// untagged sets shrink first (a port is untagged in one VLAN only, and untagged
/// ports must stay egress ports), then rows are created, named and given their
/// egress ports, untagged sets grow, rows go active, and PVIDs move last.
pub fn drift(plan: &SwitchPlan, profile: &Profile, state: &VlanState) -> Vec<Change> {
    let want = wanted(plan, profile);
    // What every existing VLAN should end as.
    let target = |vid: &u16, row: &VlanRow| -> VlanRow {
        match want.vlans.get(vid) {
            Some(w) => w.clone(),
            None => VlanRow {
                egress: &row.egress - &want.pi_ports,
                untagged: &row.untagged - &want.pi_ports,
                ..row.clone()
            },
        }
    };
    let mut shrink = Vec::new();
    let mut grow = Vec::new();
    let mut build = Vec::new();
    let mut activate = Vec::new();
    for (vid, row) in &state.vlans {
        let to = target(vid, row);
        let kept: Ports = &row.untagged & &to.untagged;
        if kept != row.untagged {
            shrink.push(Change::Untagged {
                vid: *vid,
                from: row.untagged.clone(),
                to: kept.clone(),
            });
        }
        if to.name != row.name {
            build.push(Change::Name {
                vid: *vid,
                from: row.name.clone(),
                to: to.name.clone(),
            });
        }
        if to.egress != row.egress {
            build.push(Change::Egress {
                vid: *vid,
                from: row.egress.clone(),
                to: to.egress.clone(),
            });
        }
        if to.untagged != kept {
            grow.push(Change::Untagged {
                vid: *vid,
                from: kept,
                to: to.untagged.clone(),
            });
        }
        if want.vlans.contains_key(vid) && row.status != 1 {
            activate.push(Change::Activate { vid: *vid });
        }
    }
    for (vid, w) in &want.vlans {
        if state.vlans.contains_key(vid) {
            continue;
        }
        build.push(Change::Create { vid: *vid });
        build.push(Change::Name {
            vid: *vid,
            from: String::new(),
            to: w.name.clone(),
        });
        build.push(Change::Egress {
            vid: *vid,
            from: Ports::new(),
            to: w.egress.clone(),
        });
        if !w.untagged.is_empty() {
            grow.push(Change::Untagged {
                vid: *vid,
                from: Ports::new(),
                to: w.untagged.clone(),
            });
        }
    }
    let pvids = want.pvid.iter().filter_map(|(port, to)| {
        let from = state.pvid.get(port).copied();
        (from != Some(*to)).then_some(Change::Pvid {
            port: *port,
            from,
            to: *to,
        })
    });
    shrink
        .into_iter()
        .chain(build)
        .chain(grow)
        .chain(activate)
        .chain(pvids)
        .collect()
}

/// Applies changes to a state as a strict switch would, refusing what a switch
/// refuses (for tests of the ordering, and to predict the result of a dry run).
pub fn simulate(state: &VlanState, changes: &[Change]) -> Result<VlanState, String> {
    let mut s = state.clone();
    for c in changes {
        match c {
            Change::Create { vid } => {
                if s.vlans
                    .insert(
                        *vid,
                        VlanRow {
                            status: 1,
                            ..VlanRow::default()
                        },
                    )
                    .is_some()
                {
                    return Err(format!("VLAN {vid} created twice"));
                }
            }
            Change::Name { vid, to, .. } => row(&mut s, *vid)?.name = to.clone(),
            Change::Egress { vid, to, .. } => {
                let r = row(&mut s, *vid)?;
                if !r.untagged.is_subset(to) {
                    return Err(format!("VLAN {vid}: egress would drop untagged ports"));
                }
                r.egress = to.clone();
            }
            Change::Untagged { vid, to, .. } => {
                if !to.is_subset(&row(&mut s, *vid)?.egress) {
                    return Err(format!("VLAN {vid}: untagged ports outside egress"));
                }
                let clash = s
                    .vlans
                    .iter()
                    .any(|(other, r)| other != vid && !r.untagged.is_disjoint(to));
                if clash {
                    return Err(format!("VLAN {vid}: a port untagged in two VLANs"));
                }
                row(&mut s, *vid)?.untagged = to.clone();
            }
            Change::Activate { vid } => row(&mut s, *vid)?.status = 1,
            Change::Pvid { port, to, .. } => {
                if !s.vlans.contains_key(&(*to as u16)) {
                    return Err(format!("port {port}: PVID {to} is no VLAN"));
                }
                s.pvid.insert(*port, *to);
            }
        }
    }
    Ok(s)
}

fn row(s: &mut VlanState, vid: u16) -> Result<&mut VlanRow, String> {
    s.vlans
        .get_mut(&vid)
        .ok_or(format!("VLAN {vid} does not exist"))
}

/// Ports as people read them: front-panel numbers, runs collapsed (`1-8, 10`).
pub fn show_ports(ports: &Ports, profile: &Profile) -> String {
    let front: Vec<u32> = ports
        .iter()
        .filter_map(|bp| profile.ports.front_port(*bp).map(u32::from))
        .collect();
    if front.is_empty() {
        return "none".into();
    }
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for p in front {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == p => *end = p,
            _ => runs.push((p, p)),
        }
    }
    let parts: Vec<String> = runs
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    parts.join(", ")
}

/// A change for people, with the profile that numbers the ports.
pub struct Shown<'a>(pub &'a Change, pub &'a Profile);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = |ports: &Ports| show_ports(ports, self.1);
        match self.0 {
            Change::Create { vid } => write!(f, "+ VLAN {vid}: create"),
            Change::Name { vid, from, to } => write!(f, "~ VLAN {vid} name: {from:?} -> {to:?}"),
            Change::Egress { vid, from, to } => {
                write!(f, "~ VLAN {vid} egress ports: {} -> {}", p(from), p(to))
            }
            Change::Untagged { vid, from, to } => {
                write!(f, "~ VLAN {vid} untagged ports: {} -> {}", p(from), p(to))
            }
            Change::Activate { vid } => write!(f, "~ VLAN {vid} row: -> active"),
            Change::Pvid { port, from, to } => {
                let front = self
                    .1
                    .ports
                    .front_port(*port)
                    .map_or(format!("bridge port {port}"), |n| format!("port {n}"));
                match from {
                    Some(from) => write!(f, "~ {front} PVID: {from} -> {to}"),
                    None => write!(f, "~ {front} PVID: (none) -> {to}"),
                }
            }
        }
    }
}

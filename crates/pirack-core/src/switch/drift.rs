//! VLAN drift: what a switch's Q-BRIDGE-MIB state lacks against the plan, as the
//! ordered changes that close the gap, and the same between any two states (the
//! restore after a failed write). Pure: the state comes in read, the changes go
//! out to be written (the controller's `switch::vlan` does both).
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
    /// A row a failed run created, removed again by the restore.
    Destroy {
        vid: u16,
    },
}

/// What the switch should end as: the plan's VLANs exactly, every other VLAN
/// without the Pi ports (never deleted, never renamed), the Pi ports' PVIDs as
/// planned and every other PVID as it is.
pub fn target(plan: &SwitchPlan, profile: &Profile, state: &VlanState) -> VlanState {
    let bp = |p: &u16| profile.ports.bridge_port(*p);
    let pi_ports: Ports = plan.pi_ports.iter().map(|p| bp(&p.port)).collect();
    let mut vlans: BTreeMap<u16, VlanRow> = state
        .vlans
        .iter()
        .map(|(vid, row)| {
            let kept = VlanRow {
                egress: &row.egress - &pi_ports,
                untagged: &row.untagged - &pi_ports,
                ..row.clone()
            };
            (*vid, kept)
        })
        .collect();
    for v in &plan.vlans {
        let name = match profile.vlan_names {
            true => v.name.clone(),
            // An unnamed switch keeps whatever name it shows.
            false => state
                .vlans
                .get(&v.id)
                .map(|r| r.name.clone())
                .unwrap_or_default(),
        };
        let row = VlanRow {
            name,
            egress: v.egress.iter().map(bp).collect(),
            untagged: v.untagged.iter().map(bp).collect(),
            status: 1,
        };
        vlans.insert(v.id, row);
    }
    let mut pvid = state.pvid.clone();
    for p in &plan.pi_ports {
        pvid.insert(bp(&p.port), u32::from(p.pvid));
    }
    VlanState { vlans, pvid }
}

/// The changes that bring `state` to the plan ([`target`], then [`diff`]).
pub fn drift(plan: &SwitchPlan, profile: &Profile, state: &VlanState) -> Vec<Change> {
    diff(state, &target(plan, profile, state))
}

/// The changes from `from` to `to`, ordered so that a strict switch takes each one
/// and no port ever loses its last VLAN on the way (make before break): rows are
/// created, named and their egress sets grown first; untagged sets shrink, then
/// grow (a port is untagged in one VLAN only); rows go active; PVIDs move; egress
/// sets shrink to what `to` has; and rows `to` lacks are destroyed last (a restore
/// of rows a failed run created).
pub fn diff(from: &VlanState, to: &VlanState) -> Vec<Change> {
    let mut build = Vec::new();
    let mut shrink = Vec::new();
    let mut grow = Vec::new();
    let mut activate = Vec::new();
    let mut prune = Vec::new();
    let mut destroy = Vec::new();
    for (vid, t) in &to.vlans {
        let vid = *vid;
        let Some(f) = from.vlans.get(&vid) else {
            build.push(Change::Create { vid });
            if !t.name.is_empty() {
                let (from, to) = (String::new(), t.name.clone());
                build.push(Change::Name { vid, from, to });
            }
            let (from, to) = (Ports::new(), t.egress.clone());
            build.push(Change::Egress { vid, from, to });
            if !t.untagged.is_empty() {
                let (from, to) = (Ports::new(), t.untagged.clone());
                grow.push(Change::Untagged { vid, from, to });
            }
            continue;
        };
        if f.name != t.name {
            let (from, to) = (f.name.clone(), t.name.clone());
            build.push(Change::Name { vid, from, to });
        }
        let wide: Ports = &f.egress | &t.egress;
        if wide != f.egress {
            let (from, to) = (f.egress.clone(), wide.clone());
            build.push(Change::Egress { vid, from, to });
        }
        let kept: Ports = &f.untagged & &t.untagged;
        if kept != f.untagged {
            let (from, to) = (f.untagged.clone(), kept.clone());
            shrink.push(Change::Untagged { vid, from, to });
        }
        if t.untagged != kept {
            let to = t.untagged.clone();
            grow.push(Change::Untagged {
                vid,
                from: kept,
                to,
            });
        }
        if t.status == 1 && f.status != 1 {
            activate.push(Change::Activate { vid });
        }
        if t.egress != wide {
            let to = t.egress.clone();
            prune.push(Change::Egress {
                vid,
                from: wide,
                to,
            });
        }
    }
    for (vid, f) in &from.vlans {
        if to.vlans.contains_key(vid) {
            continue;
        }
        if !f.untagged.is_empty() {
            let (from, to) = (f.untagged.clone(), Ports::new());
            shrink.push(Change::Untagged {
                vid: *vid,
                from,
                to,
            });
        }
        destroy.push(Change::Destroy { vid: *vid });
    }
    let pvids = to.pvid.iter().filter_map(|(port, to)| {
        let from = from.pvid.get(port).copied();
        (from != Some(*to)).then_some(Change::Pvid {
            port: *port,
            from,
            to: *to,
        })
    });
    build
        .into_iter()
        .chain(shrink)
        .chain(grow)
        .chain(activate)
        .chain(pvids.collect::<Vec<_>>())
        .chain(prune)
        .chain(destroy)
        .collect()
}

/// What a strict switch refuses, and what make-before-break forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("VLAN {0} created twice")]
    CreatedTwice(u16),
    #[error("VLAN {0} does not exist")]
    NoVlan(u16),
    #[error("VLAN {vid}: egress would drop its untagged bridge port(s) {ports:?}")]
    EgressDropsUntagged { vid: u16, ports: Vec<u32> },
    #[error("VLAN {vid}: untagged bridge port(s) {ports:?} are not egress ports")]
    UntaggedOutsideEgress { vid: u16, ports: Vec<u32> },
    #[error("bridge port {port} untagged in VLAN {other} and VLAN {vid}")]
    UntaggedTwice { port: u32, other: u16, vid: u16 },
    #[error("bridge port {port}: PVID {vid} is no VLAN")]
    PvidNoVlan { port: u32, vid: u32 },
    #[error("VLAN {vid} is still bridge port {port}'s PVID or holds untagged ports")]
    DestroyInUse { vid: u16, port: u32 },
    #[error("bridge port {port} would be in no VLAN on the way")]
    Stranded { port: u32 },
}

impl Refusal {
    /// The refusal with front-panel port numbers, for people.
    pub fn shown(&self, profile: &Profile) -> String {
        let front = |bp: u32| {
            profile
                .ports
                .front_port(bp)
                .map_or(format!("bridge port {bp}"), |n| format!("port {n}"))
        };
        match self {
            Refusal::UntaggedTwice { port, other, vid } => {
                format!("{} untagged in VLAN {other} and VLAN {vid}", front(*port))
            }
            Refusal::PvidNoVlan { port, vid } => format!("{}: PVID {vid} is no VLAN", front(*port)),
            Refusal::Stranded { port } => {
                format!("{} would be in no VLAN on the way", front(*port))
            }
            Refusal::DestroyInUse { vid, port } => {
                format!(
                    "VLAN {vid} is still {}'s PVID or holds untagged ports",
                    front(*port)
                )
            }
            Refusal::EgressDropsUntagged { vid, ports }
            | Refusal::UntaggedOutsideEgress { vid, ports } => {
                let ports: Ports = ports.iter().copied().collect();
                let what = match self {
                    Refusal::EgressDropsUntagged { .. } => "egress would drop its untagged",
                    _ => "untagged outside egress:",
                };
                format!("VLAN {vid}: {what} ports {}", show_ports(&ports, profile))
            }
            other => other.to_string(),
        }
    }
}

/// Applies changes to a state as a strict switch would, refusing what a switch
/// refuses and any step that leaves a port in no VLAN (for tests of the ordering,
/// and to check a plan before the first write).
pub fn simulate(state: &VlanState, changes: &[Change]) -> Result<VlanState, Refusal> {
    let mut s = state.clone();
    // Ports that were in no VLAN at some step: refused if they end in one (break
    // before make), fine if the plan takes them out for good.
    let mut stranded = Ports::new();
    for c in changes {
        let members_before = members(&s);
        match c {
            Change::Create { vid } => {
                let fresh = VlanRow {
                    status: 1,
                    ..VlanRow::default()
                };
                if s.vlans.insert(*vid, fresh).is_some() {
                    return Err(Refusal::CreatedTwice(*vid));
                }
            }
            Change::Name { vid, to, .. } => row(&mut s, *vid)?.name = to.clone(),
            Change::Egress { vid, to, .. } => {
                let r = row(&mut s, *vid)?;
                let dropped: Vec<u32> = r.untagged.difference(to).copied().collect();
                if !dropped.is_empty() {
                    return Err(Refusal::EgressDropsUntagged {
                        vid: *vid,
                        ports: dropped,
                    });
                }
                r.egress = to.clone();
            }
            Change::Untagged { vid, to, .. } => {
                let outside: Vec<u32> =
                    to.difference(&row(&mut s, *vid)?.egress).copied().collect();
                if !outside.is_empty() {
                    return Err(Refusal::UntaggedOutsideEgress {
                        vid: *vid,
                        ports: outside,
                    });
                }
                for (other, r) in &s.vlans {
                    if let Some(port) = r.untagged.intersection(to).next().filter(|_| other != vid)
                    {
                        return Err(Refusal::UntaggedTwice {
                            port: *port,
                            other: *other,
                            vid: *vid,
                        });
                    }
                }
                row(&mut s, *vid)?.untagged = to.clone();
            }
            Change::Activate { vid } => row(&mut s, *vid)?.status = 1,
            Change::Pvid { port, to, .. } => {
                if !s.vlans.contains_key(&(*to as u16)) {
                    return Err(Refusal::PvidNoVlan {
                        port: *port,
                        vid: *to,
                    });
                }
                s.pvid.insert(*port, *to);
            }
            Change::Destroy { vid } => {
                let r = row(&mut s, *vid)?;
                let port = r.untagged.iter().next().copied().or_else(|| {
                    s.pvid
                        .iter()
                        .find(|(_, v)| **v == u32::from(*vid))
                        .map(|(p, _)| *p)
                });
                if let Some(port) = port {
                    return Err(Refusal::DestroyInUse { vid: *vid, port });
                }
                s.vlans.remove(vid);
            }
        }
        stranded.extend(members_before.difference(&members(&s)));
    }
    match stranded.intersection(&members(&s)).next() {
        Some(port) => Err(Refusal::Stranded { port: *port }),
        None => Ok(s),
    }
}

/// Every port some VLAN carries.
fn members(s: &VlanState) -> Ports {
    s.vlans
        .values()
        .flat_map(|r| r.egress.iter().copied())
        .collect()
}

fn row(s: &mut VlanState, vid: u16) -> Result<&mut VlanRow, Refusal> {
    s.vlans.get_mut(&vid).ok_or(Refusal::NoVlan(vid))
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
            Change::Destroy { vid } => write!(f, "- VLAN {vid}: destroy"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(p: &[u32]) -> Ports {
        p.iter().copied().collect()
    }

    fn vlan(egress: &[u32], untagged: &[u32]) -> VlanRow {
        VlanRow {
            name: String::new(),
            egress: ports(egress),
            untagged: ports(untagged),
            status: 1,
        }
    }

    #[test]
    fn a_port_moves_vlan_without_a_moment_in_none() {
        // Port 1 untagged in VLAN 1, to be untagged in VLAN 10 (with the trunk, 10).
        let from = VlanState {
            vlans: BTreeMap::from([(1, vlan(&[1, 10], &[1, 10]))]),
            pvid: BTreeMap::from([(1, 1)]),
        };
        let to = VlanState {
            vlans: BTreeMap::from([(1, vlan(&[10], &[10])), (10, vlan(&[1, 10], &[1]))]),
            pvid: BTreeMap::from([(1, 10)]),
        };
        let changes = diff(&from, &to);
        assert_eq!(simulate(&from, &changes), Ok(to.clone()));
        // And back: the row made is destroyed, last.
        let back = diff(&to, &from);
        assert_eq!(back.last(), Some(&Change::Destroy { vid: 10 }));
        assert_eq!(simulate(&to, &back), Ok(from));
    }

    #[test]
    fn breaking_before_making_is_refused_naming_the_port() {
        let from = VlanState {
            vlans: BTreeMap::from([(1, vlan(&[1], &[1]))]),
            pvid: BTreeMap::new(),
        };
        let break_first = [
            Change::Untagged {
                vid: 1,
                from: ports(&[1]),
                to: ports(&[]),
            },
            Change::Egress {
                vid: 1,
                from: ports(&[1]),
                to: ports(&[]),
            },
            Change::Create { vid: 10 },
            Change::Egress {
                vid: 10,
                from: ports(&[]),
                to: ports(&[1]),
            },
        ];
        assert_eq!(
            simulate(&from, &break_first),
            Err(Refusal::Stranded { port: 1 })
        );
        let two = VlanState {
            vlans: BTreeMap::from([(1, vlan(&[50], &[50])), (10, vlan(&[50], &[]))]),
            pvid: BTreeMap::new(),
        };
        let both = [Change::Untagged {
            vid: 10,
            from: ports(&[]),
            to: ports(&[50]),
        }];
        let refused = simulate(&two, &both).unwrap_err();
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../../switch-profiles");
        let profiles = crate::switch::Profiles::load_dir(std::path::Path::new(shipped)).unwrap();
        assert_eq!(
            refused.shown(profiles.get("generic").unwrap()),
            "port 50 untagged in VLAN 1 and VLAN 10"
        );
    }
}

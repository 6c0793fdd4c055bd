//! Allocation: gives every slot of the inventory a storage VLAN, a /30, a public
//! IPv6 address and an fsid, keeping whatever the ledger already records.

use super::ledger::{Allocation, Ledger};
use crate::inventory::{Site, Slot};
use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::HashSet;
use std::net::Ipv6Addr;

/// Slots that cannot be given what they need, one message each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct PlanError(pub Vec<String>);

/// Returns the ledger extended with allocations for every slot that has none.
/// Existing entries never move (except a slot whose pinned VLAN changed), and entries
/// of slots no longer in the inventory stay reserved until released.
pub fn allocate(site: &Site, ledger: &Ledger) -> Result<Ledger, PlanError> {
    let mut out = ledger.clone();
    let mut problems = Vec::new();

    for slot in &site.slots {
        let Some(a) = out.slots.get_mut(&slot.key) else {
            continue;
        };
        a.position.clone_from(&slot.position);
        let (shelf, fs) = (site.shelf_of(slot), site.fileserver_of(slot));
        if !fs.storage_pool.contains(&a.storage) {
            problems.push(format!(
                "slot {} ({}): its ledger network {} is outside the storage pool {}; release it to renumber",
                slot.position, slot.key, a.storage, fs.storage_pool
            ));
        }
        if !fs.storage_vlans.contains(&a.vlan) {
            problems.push(format!(
                "slot {} ({}): its ledger VLAN {} is outside the storage range {}..={}; release it to renumber",
                slot.position,
                slot.key,
                a.vlan,
                fs.storage_vlans.start(),
                fs.storage_vlans.end()
            ));
        }
        if !shelf.ipv6_prefix.contains(&a.ipv6) {
            problems.push(format!(
                "slot {} ({}): its ledger address {} is outside shelf {}'s prefix {}; release it to renumber",
                slot.position, slot.key, a.ipv6, shelf.name, shelf.ipv6_prefix
            ));
        }
    }

    // A pin is an explicit order to move that one slot, never a reason to move another.
    for slot in site.slots.iter().filter(|s| s.pinned_vlan.is_some()) {
        let vlan = slot.pinned_vlan.expect("filtered");
        let holder = out
            .slots
            .iter()
            .find(|(k, a)| a.vlan == vlan && **k != slot.key)
            .map(|(k, a)| format!("{k} ({})", a.position));
        match (holder, out.slots.get_mut(&slot.key)) {
            (Some(h), _) => problems.push(format!(
                "slot {} ({}): pinned VLAN {vlan} is held by {h} in the ledger; release that first",
                slot.position, slot.key
            )),
            (None, Some(a)) => a.vlan = vlan,
            (None, None) => {}
        }
    }

    let pinned: HashSet<u16> = site.slots.iter().filter_map(|s| s.pinned_vlan).collect();
    let mut vlans: HashSet<u16> = out.slots.values().map(|a| a.vlan).collect();
    let mut nets: HashSet<Ipv4Net> = out.slots.values().map(|a| a.storage).collect();
    let mut addrs: HashSet<Ipv6Addr> = out.slots.values().map(|a| a.ipv6).collect();
    for slot in &site.slots {
        if out.slots.contains_key(&slot.key) {
            continue;
        }
        let fs = site.fileserver_of(slot);
        let vlan = slot.pinned_vlan.or_else(|| {
            fs.storage_vlans
                .clone()
                .find(|v| !vlans.contains(v) && !pinned.contains(v))
        });
        let storage = fs
            .storage_pool
            .subnets(30)
            .ok()
            .and_then(|mut s| s.find(|n| !nets.contains(n)));
        let ipv6 = first_free_v6(site.shelf_of(slot).ipv6_prefix, &addrs);
        let (Some(vlan), Some(storage), Some(ipv6)) = (vlan, storage, ipv6) else {
            problems.push(exhausted(slot, vlan.is_none(), storage.is_none()));
            continue;
        };
        vlans.insert(vlan);
        nets.insert(storage);
        addrs.insert(ipv6);
        let fsid = out.next_fsid;
        out.next_fsid += 1;
        out.slots.insert(
            slot.key.clone(),
            Allocation {
                position: slot.position.clone(),
                vlan,
                storage,
                ipv6,
                fsid,
            },
        );
    }
    match problems.is_empty() {
        true => Ok(out),
        false => Err(PlanError(problems)),
    }
}

/// Lowest free address of the prefix, host part 0 excluded.
fn first_free_v6(prefix: Ipv6Net, used: &HashSet<Ipv6Addr>) -> Option<Ipv6Addr> {
    let base = u128::from(prefix.network());
    let size = match prefix.prefix_len() {
        0 => u128::MAX,
        n => (1u128 << (128 - u32::from(n))) - 1,
    };
    (1..=size)
        .map(|n| Ipv6Addr::from(base + n))
        .find(|a| !used.contains(a))
}

fn exhausted(slot: &Slot, vlan: bool, net: bool) -> String {
    let what = if vlan {
        "storage VLANs"
    } else if net {
        "storage /30 networks"
    } else {
        "public IPv6 addresses"
    };
    format!(
        "slot {} ({}): no free {what} left; removed slots keep theirs until `pirack ledger release`",
        slot.position, slot.key
    )
}

//! Property tests of the address plan: allocations are unique, stable under
//! insertion, removal and reordering of slots, and planning is idempotent.

use pirack_core::inventory::model::{
    self, BoardPolicy, Inventory, SecretRef, Shelf, ShelfIpv6, SiteInfo, Snmp, Switch, VlanRange,
};
use pirack_core::inventory::{Site, SlotKey, validate};
use pirack_core::plan::{Ledger, plan};
use proptest::prelude::*;
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// A slot as the generator sees it: (switch index, port, pinned VLAN).
type Spec = (u8, u16, Option<u16>);

fn site(slots: &[Spec]) -> Site {
    site_of(slots, false)
}

/// The site of `slots`, on one fileserver, or on two (`two`: shelf s1's,
/// with its own pool and VLANs 401..=800, its slots' pins moved there).
fn site_of(slots: &[Spec], two: bool) -> Site {
    let fileserver = |name: &str, pool: &str, first: u16| model::Fileserver {
        name: name.into(),
        trunk_interface: "eth0".into(),
        storage_pool: pool.into(),
        storage_vlans: VlanRange {
            first,
            last: first + 390,
        },
        interface_name: "{trunk}.{vlan}".into(),
        export_root: "/export".into(),
        root_name: "{slot}".into(),
    };
    let mut inv = Inventory {
        site: SiteInfo {
            name: "prop".into(),
            domain: None,
            hostname: "{site}-{position}".into(),
            unknown_board: BoardPolicy::Hold,
        },
        fileserver: Some(fileserver("fileserver", "10.0.0.0/22", 10)),
        fileservers: vec![],
        boot: model::Boot::default(),
        netboot: model::Netboot::default(),
        exports: model::Exports::default(),
        watchdog: Default::default(),
        shelves: (0..2)
            .map(|i| Shelf {
                name: format!("s{i}"),
                fileserver: None,
                public_vlan: 1000 + i,
                ipv6: ShelfIpv6 {
                    prefix: format!("2001:db8:{i}:1::/112"),
                    on_link: 64,
                    gateway: format!("2001:db8:{i}:1:ffff::1"),
                },
            })
            .collect(),
        switches: (0..2)
            .map(|i| Switch {
                name: format!("sw{i}"),
                shelf: format!("s{i}"),
                address: "127.0.0.1".into(),
                snmp_port: 161,
                profile: "generic".into(),
                snmp: Snmp::V2c {
                    community: SecretRef::Env("C".into()),
                },
                ports: 48,
                trunk_port: 48,
                snmp_timeout_ms: 1000,
                snmp_retries: 2,
                power: Default::default(),
            })
            .collect(),
        owners: vec![],
        dns: None,
        proxy: None,
        monitor: None,
        backup: None,
        slots: slots
            .iter()
            .map(|&(sw, port, vlan)| model::Slot {
                position: format!("P{sw}-{port}"),
                switch: format!("sw{sw}"),
                port,
                vlan,
                owner: None,
                kind: Default::default(),
            })
            .collect(),
        boards: vec![],
    };
    if two {
        inv.fileserver = None;
        inv.fileservers = vec![
            fileserver("fs-a", "10.0.0.0/22", 10),
            fileserver("fs-b", "10.1.0.0/22", 410),
        ];
        for (shelf, fs) in inv.shelves.iter_mut().zip(["fs-a", "fs-b"]) {
            shelf.fileserver = Some(fs.into());
        }
        for slot in inv.slots.iter_mut().filter(|s| s.switch == "sw1") {
            slot.vlan = slot.vlan.map(|v| v + 400);
        }
    }
    let text = serde_yaml::to_string(&inv).unwrap();
    let profiles = BTreeSet::from(["generic".to_string()]);
    validate(Path::new("prop.yaml"), &text, &profiles).unwrap_or_else(|p| panic!("{p}\n{text}"))
}

fn key((sw, port, _): Spec) -> SlotKey {
    SlotKey {
        switch: format!("sw{sw}"),
        port,
    }
}

/// Distinct slots; about one in five pins a VLAN from 300..400, pins kept unique.
fn specs(max: usize) -> impl Strategy<Value = Vec<Spec>> {
    prop::collection::btree_map(
        (0..2u8, 1..48u16),
        prop::option::weighted(0.2, 300..400u16),
        1..max,
    )
    .prop_map(|m| {
        let mut pins = HashSet::new();
        m.into_iter()
            .map(|((sw, port), pin)| (sw, port, pin.filter(|p| pins.insert(*p))))
            .collect()
    })
}

fn assert_unique(ledger: &Ledger) {
    let n = ledger.slots.len();
    let a = ledger.slots.values();
    assert_eq!(
        a.clone().map(|a| a.vlan).collect::<HashSet<_>>().len(),
        n,
        "VLANs"
    );
    assert_eq!(
        a.clone().map(|a| a.storage).collect::<HashSet<_>>().len(),
        n,
        "/30s"
    );
    assert_eq!(
        a.clone().map(|a| a.ipv6).collect::<HashSet<_>>().len(),
        n,
        "IPv6"
    );
    assert_eq!(
        a.clone().map(|a| a.fsid).collect::<HashSet<_>>().len(),
        n,
        "fsids"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn allocations_are_unique_and_fit(slots in specs(60), two in any::<bool>()) {
        let site = site_of(&slots, two);
        let (p, ledger) = plan(&site, &Ledger::default()).unwrap();
        assert_unique(&ledger);
        for (s, spec) in p.slots.iter().zip(&slots) {
            // Each slot is its shelf's fileserver's, from that one's pool and VLANs.
            let fs = site.fileserver(&s.fileserver).unwrap();
            let expected = match (two, spec.0) {
                (true, 1) => "fs-b",
                (true, _) => "fs-a",
                (false, _) => "fileserver",
            };
            prop_assert_eq!(&fs.name, expected);
            prop_assert!(fs.storage_pool.contains(&s.storage));
            prop_assert!(fs.storage_vlans.contains(&s.vlan));
            prop_assert_eq!(s.storage.prefix_len(), 30);
            prop_assert_eq!(u32::from(s.pi_ip), u32::from(s.storage.network()) + 2);
            prop_assert_eq!(u32::from(s.fileserver_ip), u32::from(s.storage.network()) + 1);
            if let Some(pin) = spec.2 {
                let moved = if two && spec.0 == 1 { 400 } else { 0 };
                prop_assert_eq!(s.vlan, pin + moved);
            }
        }
    }

    #[test]
    fn planning_is_idempotent(slots in specs(60), two in any::<bool>()) {
        let site = site_of(&slots, two);
        let (p1, l1) = plan(&site, &Ledger::default()).unwrap();
        let (p2, l2) = plan(&site, &l1).unwrap();
        prop_assert_eq!(p1, p2);
        prop_assert_eq!(l1, l2);
    }

    #[test]
    fn inserting_a_slot_moves_no_other(slots in specs(60), new in (0..2u8, 1..48u16), at in any::<prop::sample::Index>()) {
        prop_assume!(!slots.iter().any(|s| (s.0, s.1) == new));
        let (_, before) = plan(&site(&slots), &Ledger::default()).unwrap();
        let mut grown = slots.clone();
        grown.insert(at.index(grown.len() + 1), (new.0, new.1, None));
        let (_, after) = plan(&site(&grown), &before).unwrap();
        assert_unique(&after);
        for s in &slots {
            prop_assert_eq!(&after.slots[&key(*s)], &before.slots[&key(*s)]);
        }
    }

    #[test]
    fn removing_a_slot_moves_nothing_and_keeps_its_reservation(slots in specs(60), which in any::<prop::sample::Index>(), new in (0..2u8, 1..48u16)) {
        let (_, before) = plan(&site(&slots), &Ledger::default()).unwrap();
        let mut shrunk = slots.clone();
        let gone = shrunk.remove(which.index(slots.len()));
        let (_, after) = plan(&site(&shrunk), &before).unwrap();
        prop_assert_eq!(&after, &before);

        // A newcomer never receives the removed slot's resources before release.
        prop_assume!(!slots.iter().any(|s| (s.0, s.1) == new));
        shrunk.push((new.0, new.1, None));
        let (_, later) = plan(&site(&shrunk), &after).unwrap();
        let old = &before.slots[&key(gone)];
        let got = &later.slots[&key((new.0, new.1, None))];
        prop_assert_ne!(got.vlan, old.vlan);
        prop_assert_ne!(got.storage, old.storage);
        prop_assert_ne!(got.ipv6, old.ipv6);
        prop_assert!(got.fsid > old.fsid);
    }

    #[test]
    fn reordering_slots_changes_nothing(slots in specs(60).prop_shuffle(), seed in any::<u64>()) {
        let (_, before) = plan(&site(&slots), &Ledger::default()).unwrap();
        let mut shuffled = slots.clone();
        shuffled.rotate_left((seed as usize) % slots.len());
        shuffled.reverse();
        let (_, after) = plan(&site(&shuffled), &before).unwrap();
        prop_assert_eq!(after, before);
    }

    #[test]
    fn released_resources_are_reused(slots in specs(30), which in any::<prop::sample::Index>()) {
        let (_, before) = plan(&site(&slots), &Ledger::default()).unwrap();
        let mut shrunk = slots.clone();
        let gone = shrunk.remove(which.index(slots.len()));
        let mut released = before.clone();
        let freed = released.slots.remove(&key(gone)).unwrap();
        // The lowest free /30 after release is the freed one or lower.
        let newcomer = (0..2u8).flat_map(|sw| (1..48u16).map(move |p| (sw, p, None)))
            .find(|s| !slots.iter().any(|o| (o.0, o.1) == (s.0, s.1)))
            .unwrap();
        shrunk.push(newcomer);
        let (_, after) = plan(&site(&shrunk), &released).unwrap();
        let got = &after.slots[&key(newcomer)];
        prop_assert!(got.storage.network() <= freed.storage.network());
        assert_unique(&after);
    }
}

#[test]
fn a_pin_onto_a_held_vlan_is_refused_not_moved() {
    let slots = [(0, 1, None), (0, 2, None)];
    let (_, ledger) = plan(&site(&slots), &Ledger::default()).unwrap();
    let held = ledger.slots[&key(slots[0])].vlan;
    let err = plan(&site(&[(0, 1, None), (0, 2, Some(held))]), &ledger).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("pinned VLAN {held} is held by sw0/1")),
        "{err}"
    );
}

#[test]
fn exhausting_the_pool_names_the_slot() {
    // A ledger whose removed slots still hold all 256 /30s of the /22 pool.
    let held = (0..256u32)
        .map(|i| {
            let a = pirack_core::plan::Allocation {
                position: format!("gone-{i}"),
                vlan: 10 + i as u16,
                storage: format!("10.0.{}.{}/30", i / 64, (i % 64) * 4)
                    .parse()
                    .unwrap(),
                ipv6: format!("2001:db8:9::{:x}", i + 1).parse().unwrap(),
                fsid: i + 1,
            };
            (
                SlotKey {
                    switch: "old".into(),
                    port: i as u16,
                },
                a,
            )
        })
        .collect();
    let ledger = Ledger {
        slots: held,
        next_fsid: 257,
    };
    let err = plan(&site(&[(1, 1, None)]), &ledger).unwrap_err();
    assert_eq!(
        err.to_string(),
        "slot P1-1 (sw1/1): no free storage /30 networks left; removed slots keep theirs until `pirack ledger release`"
    );
}

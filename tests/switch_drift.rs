//! VLAN drift against arbitrary switch states: the changes apply on a strict switch
//! (in the order given), leave no drift, and touch nothing the plan does not own.

mod common;

use pirack_core::plan::render::switch::{PortPlan, SwitchPlan, VlanPlan};
use pirack_core::switch::drift::{Ports, VlanRow, VlanState, drift, simulate};
use proptest::prelude::*;
use std::collections::BTreeMap;

const PORTS: u16 = 24;
const TRUNK: u16 = 24;
const PUBLIC: u16 = 900;

fn plan(pi_ports: &[u16]) -> SwitchPlan {
    let pi: Vec<PortPlan> = pi_ports
        .iter()
        .map(|&p| PortPlan {
            port: p,
            position: format!("A-{p:02}"),
            pvid: 100 + p,
            untagged: 100 + p,
            tagged: PUBLIC,
        })
        .collect();
    let mut vlans: Vec<VlanPlan> = pi
        .iter()
        .map(|p| VlanPlan {
            id: p.pvid,
            name: format!("pirack-{}", p.position),
            egress: vec![p.port, TRUNK],
            untagged: vec![p.port],
        })
        .collect();
    let mut public: Vec<u16> = pi_ports.to_vec();
    public.push(TRUNK);
    vlans.push(VlanPlan {
        id: PUBLIC,
        name: "pirack-public-a".into(),
        egress: public,
        untagged: vec![],
    });
    SwitchPlan {
        switch: "sw".into(),
        address: "127.0.0.1".parse().unwrap(),
        profile: "generic".into(),
        trunk_port: TRUNK,
        ports: PORTS,
        pi_ports: pi,
        vlans,
    }
}

/// A switch in any state a person could leave it in, as long as the switch itself
/// allows it: untagged ports are egress ports, and untagged in one VLAN at most.
fn state() -> impl Strategy<Value = VlanState> {
    let vids = prop::sample::subsequence(vec![1u16, 2, 101, 102, 105, 110, 123, 900, 4000], 0..=9);
    (
        vids,
        prop::collection::vec(
            (0u32..1 << PORTS, 0u32..1 << PORTS, any::<bool>(), 0usize..3),
            9,
        ),
        prop::collection::vec(prop::option::of(0usize..9), PORTS as usize),
    )
        .prop_map(|(vids, rows, pvids)| {
            let bits = |m: u32| -> Ports {
                (0..PORTS as u32)
                    .filter(|b| m & (1 << b) != 0)
                    .map(|b| b + 1)
                    .collect()
            };
            let mut taken = Ports::new();
            let mut vlans = BTreeMap::new();
            for (vid, (egress, untagged, active, name)) in vids.iter().zip(rows) {
                let egress = bits(egress);
                let untagged: Ports = &(&bits(untagged) & &egress) - &taken;
                taken.extend(&untagged);
                let row = VlanRow {
                    name: ["", "old", "pirack-A-01"][name].into(),
                    egress,
                    untagged,
                    status: if active { 1 } else { 2 },
                };
                vlans.insert(*vid, row);
            }
            let pvid = pvids
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    let vid = vids.get((*v)?)?;
                    Some((i as u32 + 1, u32::from(*vid)))
                })
                .collect();
            VlanState { vlans, pvid }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn drift_applies_and_converges(
        pi in prop::sample::subsequence((1..TRUNK).collect::<Vec<u16>>(), 0..=23),
        before in state(),
    ) {
        let profile = common::profiles().get("generic").unwrap().clone();
        let plan = plan(&pi);
        let changes = drift(&plan, &profile, &before);
        let after = simulate(&before, &changes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(drift(&plan, &profile, &after).is_empty(), "drift remains");
        let pi: Ports = pi.iter().map(|p| u32::from(*p)).collect();
        for v in &plan.vlans {
            let row = &after.vlans[&v.id];
            let egress: Ports = v.egress.iter().map(|p| u32::from(*p)).collect();
            prop_assert_eq!(&row.egress, &egress, "planned VLANs hold exactly their ports");
            prop_assert_eq!(row.status, 1);
        }
        for (vid, row) in &before.vlans {
            if plan.vlans.iter().any(|v| v.id == *vid) {
                continue;
            }
            let now = &after.vlans[vid];
            prop_assert!(now.egress.is_disjoint(&pi), "Pi ports leave foreign VLANs");
            prop_assert_eq!(&now.egress, &(&row.egress - &pi), "other ports stay");
            prop_assert_eq!(&now.untagged, &(&row.untagged - &pi));
            prop_assert_eq!(&now.name, &row.name);
        }
        for (port, vid) in &before.pvid {
            if !pi.contains(port) {
                prop_assert_eq!(after.pvid.get(port), Some(vid), "PVIDs of other ports stay");
            }
        }
        let again = drift(&plan, &profile, &after);
        prop_assert!(again.is_empty(), "idempotent: {:?}", again);
    }
}

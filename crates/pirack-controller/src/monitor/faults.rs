//! From what the checks see to alerts, as pure functions: failing slots grouped
//! under the one cause that explains them (the fileserver's storage trunk, a
//! switch that stopped answering) instead of one alert each, then the changes
//! that bring the open alerts in line.

use crate::store::alerts::{AlertRow, Covered};
use std::collections::{BTreeMap, HashSet};

/// A fault as the checks see it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `slot:KEY`, `switch:NAME` or `storage:INTERFACE`: the alert's identity.
    pub cause: String,
    pub summary: String,
    pub slots: Vec<Covered>,
}

/// A slot failing its checks, and the switch it hangs on.
#[derive(Debug, Clone)]
pub struct Failing {
    pub slot: Covered,
    pub switch: String,
}

/// What is wrong beyond single slots.
#[derive(Debug, Clone, Default)]
pub struct Causes {
    /// The fileserver's trunk, when its link is down.
    pub trunk_down: Option<String>,
    /// Switches that do not answer, with why.
    pub switches_down: BTreeMap<String, String>,
    /// Switches whose last poll failed, or whose PoE supply last read not
    /// on, not yet judged: their slots' failures wait for the verdict (the
    /// switch's, or theirs alone).
    pub switches_suspect: HashSet<String>,
    /// Switches whose PoE supply is off or faulty, with its state.
    pub supplies_down: BTreeMap<String, String>,
}

/// One fault per cause: everything under a down trunk, else each down switch's
/// failing slots under it (the switch itself is a fault even with none), else
/// those of a switch whose PoE supply is off or faulty under that, else a
/// slot of its own once its switch is not in doubt.
pub fn group(failing: &[Failing], causes: &Causes) -> Vec<Fault> {
    if let Some(trunk) = &causes.trunk_down {
        return vec![Fault {
            cause: format!("storage:{trunk}"),
            summary: format!(
                "the fileserver's storage link {trunk} is down ({} slot(s) failing)",
                failing.len()
            ),
            slots: failing.iter().map(|f| f.slot.clone()).collect(),
        }];
    }
    let mut out = Vec::new();
    for (switch, why) in &causes.switches_down {
        let slots: Vec<Covered> = failing
            .iter()
            .filter(|f| &f.switch == switch)
            .map(|f| f.slot.clone())
            .collect();
        out.push(Fault {
            cause: format!("switch:{switch}"),
            summary: format!(
                "switch {switch} does not answer ({why}); {} slot(s) failing",
                slots.len()
            ),
            slots,
        });
    }
    for (switch, state) in causes
        .supplies_down
        .iter()
        .filter(|(s, _)| !causes.switches_down.contains_key(*s))
    {
        let slots: Vec<Covered> = failing
            .iter()
            .filter(|f| &f.switch == switch)
            .map(|f| f.slot.clone())
            .collect();
        out.push(Fault {
            cause: format!("supply:{switch}"),
            summary: format!(
                "switch {switch}'s PoE supply is {state}; {} slot(s) failing",
                slots.len()
            ),
            slots,
        });
    }
    for f in failing.iter().filter(|f| {
        !causes.switches_down.contains_key(&f.switch)
            && !causes.supplies_down.contains_key(&f.switch)
            && !causes.switches_suspect.contains(&f.switch)
    }) {
        out.push(Fault {
            cause: format!("slot:{}", f.slot.key),
            summary: format!("{} is down: {}", f.slot.position, f.slot.why),
            slots: vec![f.slot.clone()],
        });
    }
    out
}

/// The slots whose failures wait for their switch's verdict: their alerts,
/// if open, are held as they are (neither resolved nor changed) until it is in.
pub fn held(failing: &[Failing], causes: &Causes) -> HashSet<String> {
    failing
        .iter()
        .filter(|f| {
            causes.switches_suspect.contains(&f.switch)
                && !causes.switches_down.contains_key(&f.switch)
                && !causes.supplies_down.contains_key(&f.switch)
        })
        .map(|f| format!("slot:{}", f.slot.key))
        .collect()
}

/// A change to the open alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Open(Fault),
    /// Same cause, other slots or words: no new notice.
    Update(i64, Fault),
    Resolve(i64),
}

/// The changes that make `open` match `faults`; alerts whose cause is in
/// `frozen` (slots not watched now: in maintenance, or being worked on by the
/// controller) are neither resolved nor changed.
pub fn reconcile(faults: &[Fault], open: &[AlertRow], frozen: &HashSet<String>) -> Vec<Change> {
    let mut out = Vec::new();
    for f in faults {
        match open.iter().find(|a| a.cause == f.cause) {
            None => out.push(Change::Open(f.clone())),
            Some(a) => {
                let slots = merged(&a.slots, &f.slots);
                if slots != a.slots || a.summary != f.summary {
                    let f = Fault { slots, ..f.clone() };
                    out.push(Change::Update(a.id, f));
                }
            }
        }
    }
    for a in open {
        if !faults.iter().any(|f| f.cause == a.cause) && !frozen.contains(&a.cause) {
            out.push(Change::Resolve(a.id));
        }
    }
    out
}

/// Every slot an alert has covered, each with its latest reason: whoever heard
/// of the fault hears of its recovery, though its slot recovered first.
fn merged(had: &[Covered], now: &[Covered]) -> Vec<Covered> {
    let mut out = had.to_vec();
    for s in now {
        match out.iter_mut().find(|o| o.key == s.key) {
            Some(o) => *o = s.clone(),
            None => out.push(s.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(key: &str, switch: &str) -> Failing {
        Failing {
            slot: Covered {
                key: key.into(),
                position: key.to_uppercase(),
                owner: Some("acme".into()),
                why: "ping: no answer".into(),
            },
            switch: switch.into(),
        }
    }

    fn open(id: i64, f: &Fault) -> AlertRow {
        AlertRow {
            id,
            cause: f.cause.clone(),
            summary: f.summary.clone(),
            slots: f.slots.clone(),
            opened_at: 0,
            resolved_at: None,
            sent_at: None,
            repeats: 0,
        }
    }

    #[test]
    fn a_dead_switch_is_one_fault_for_all_its_slots() {
        let all: Vec<Failing> = (1..=96)
            .map(|p| failing(&format!("sw-a/{p}"), "sw-a"))
            .chain([failing("sw-b/1", "sw-b")])
            .collect();
        let causes = Causes {
            switches_down: BTreeMap::from([("sw-a".into(), "timeout".into())]),
            ..Causes::default()
        };
        let faults = group(&all, &causes);
        assert_eq!(faults.len(), 2);
        assert_eq!(faults[0].cause, "switch:sw-a");
        assert_eq!(faults[0].slots.len(), 96);
        assert_eq!(faults[1].cause, "slot:sw-b/1");
        let doubt = Causes {
            switches_suspect: HashSet::from(["sw-b".to_string()]),
            ..causes.clone()
        };
        assert_eq!(
            group(&all, &doubt).len(),
            1,
            "sw-b/1 waits for sw-b's verdict"
        );
        assert_eq!(
            held(&all, &doubt),
            HashSet::from(["slot:sw-b/1".to_string()]),
            "and its open alert, if any, is held meanwhile"
        );
        let trunk = Causes {
            trunk_down: Some("eth0".into()),
            ..causes
        };
        let faults = group(&all, &trunk);
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].slots.len(), 97);
    }

    #[test]
    fn a_failed_supply_is_one_fault_for_its_switch_s_slots() {
        let all: Vec<Failing> = (1..=3)
            .map(|p| failing(&format!("sw-a/{p}"), "sw-a"))
            .chain([failing("sw-b/1", "sw-b")])
            .collect();
        let causes = Causes {
            supplies_down: BTreeMap::from([("sw-a".into(), "faulty".into())]),
            ..Causes::default()
        };
        let faults = group(&all, &causes);
        assert_eq!(faults.len(), 2);
        assert_eq!(faults[0].cause, "supply:sw-a");
        assert_eq!(faults[0].slots.len(), 3);
        assert!(faults[0].summary.contains("PoE supply is faulty"));
        assert_eq!(faults[1].cause, "slot:sw-b/1");
        // A switch that does not answer explains its supply's last reading too.
        let both = Causes {
            switches_down: BTreeMap::from([("sw-a".into(), "timeout".into())]),
            ..causes
        };
        let faults = group(&all, &both);
        assert_eq!(faults[0].cause, "switch:sw-a");
        assert_eq!(faults.len(), 2);
    }

    #[test]
    fn open_update_and_resolve_but_not_what_is_frozen() {
        let one = group(&[failing("sw-a/1", "sw-a")], &Causes::default());
        let two = group(
            &[failing("sw-a/1", "sw-a"), failing("sw-a/2", "sw-a")],
            &Causes::default(),
        );
        assert_eq!(
            reconcile(&one, &[], &HashSet::new()),
            [Change::Open(one[0].clone())]
        );
        let alerts = [open(1, &one[0])];
        assert!(reconcile(&one, &alerts, &HashSet::new()).is_empty());
        assert_eq!(
            reconcile(&two, &alerts, &HashSet::new()),
            [Change::Open(two[1].clone())]
        );
        assert_eq!(
            reconcile(&[], &alerts, &HashSet::new()),
            [Change::Resolve(1)]
        );
        let frozen = HashSet::from(["slot:sw-a/1".to_string()]);
        assert!(reconcile(&[], &alerts, &frozen).is_empty());
        let mut worse = one[0].clone();
        worse.summary = "A-01 is down: tcp/22".into();
        assert_eq!(
            reconcile(std::slice::from_ref(&worse), &alerts, &HashSet::new()),
            [Change::Update(1, worse)]
        );
        // A grouped alert keeps the slots it covered as they recover.
        let causes = Causes {
            switches_down: BTreeMap::from([("sw-a".into(), "timeout".into())]),
            ..Causes::default()
        };
        let both = group(
            &[failing("sw-a/1", "sw-a"), failing("sw-a/2", "sw-a")],
            &causes,
        );
        let later = group(&[failing("sw-a/2", "sw-a")], &causes);
        let changes = reconcile(&later, &[open(2, &both[0])], &HashSet::new());
        let [Change::Update(2, f)] = changes.as_slice() else {
            panic!("{changes:?}")
        };
        assert_eq!(f.slots.len(), 2);
    }
}

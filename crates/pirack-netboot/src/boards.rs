//! Which board sits in which slot, as the netboot services see it. A slot owns its
//! addresses; the board is learned from its MAC (DHCP) and serial (DHCP option 97
//! on a 3B+, the TFTP directory on a 3B). A board the slot does not know is handled
//! by the site policy: adopt it, or hold the slot until staff confirm the swap.

use pirack_core::inventory::{BoardPolicy, MacAddr, Serial};
use pirack_core::plan::SlotPlan;
use std::collections::HashMap;
use std::sync::Mutex;

/// What is known of the board in a slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Known {
    pub mac: Option<MacAddr>,
    pub serial: Option<Serial>,
}

impl Known {
    /// The board the plan (the inventory) places in `slot`.
    pub fn planned(slot: &SlotPlan) -> Known {
        slot.board.as_ref().map_or(Known::default(), |b| Known {
            mac: b.mac.parse().ok(),
            serial: b.serial.parse().ok(),
        })
    }
}

/// The answer for a board seen in a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The slot's own board.
    Own,
    /// A new board, now recorded as the slot's (policy `adopt`).
    Adopted,
    /// A new board, not served (policy `hold`).
    Held,
    /// A serial recorded in another slot: never served here.
    OtherSlot(String),
}

impl Verdict {
    pub fn serve(&self) -> bool {
        matches!(self, Verdict::Own | Verdict::Adopted)
    }
}

/// Per-slot board identities, shared by the DHCP and TFTP servers.
#[derive(Debug)]
pub struct Boards {
    policy: BoardPolicy,
    slots: Mutex<HashMap<String, Known>>,
}

impl Boards {
    /// Each slot (by position) with what is known of its board: from the store
    /// while a controller runs, so adopted and accepted boards outlive a restart.
    pub fn new(policy: BoardPolicy, slots: impl IntoIterator<Item = (String, Known)>) -> Boards {
        Boards {
            policy,
            slots: Mutex::new(slots.into_iter().collect()),
        }
    }

    /// The slot's board is now `known` (staff accepted a held board).
    pub fn set(&self, slot: &str, known: Known) {
        self.slots
            .lock()
            .expect("boards lock")
            .insert(slot.to_string(), known);
    }

    /// A board seen by its MAC in DHCP (with its serial when the packet carries it).
    pub fn check_mac(&self, slot: &str, mac: MacAddr, serial: Option<Serial>) -> Verdict {
        let mut slots = self.slots.lock().expect("boards lock");
        let known = slots.entry(slot.to_string()).or_default();
        if known.mac == Some(mac) {
            if known.serial.is_none() {
                known.serial = serial;
            }
            return Verdict::Own;
        }
        match self.policy {
            BoardPolicy::Adopt => {
                *known = Known {
                    mac: Some(mac),
                    serial,
                };
                Verdict::Adopted
            }
            BoardPolicy::Hold => Verdict::Held,
        }
    }

    /// A board seen by the serial directory it asks TFTP for: the slot's own, one
    /// the slot's MAC vouches for, or not served.
    pub fn check_serial(&self, slot: &str, serial: Serial) -> Verdict {
        let mut slots = self.slots.lock().expect("boards lock");
        if let Some((other, _)) = slots
            .iter()
            .find(|(pos, k)| pos.as_str() != slot && k.serial == Some(serial))
        {
            return Verdict::OtherSlot(other.clone());
        }
        let known = slots.entry(slot.to_string()).or_default();
        match known.serial {
            Some(s) if s == serial => Verdict::Own,
            // A 3B tells its serial only here; its MAC carries the low 24 bits.
            None if known.mac == Some(MacAddr::of_pi3(serial)) => {
                known.serial = Some(serial);
                Verdict::Own
            }
            // Adopted only from the boot ROM's DHCP on the slot's own wire, never
            // from a path a Pi can ask for (any Pi can name any serial).
            _ => Verdict::Held,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boards(policy: BoardPolicy) -> Boards {
        let b = Boards {
            policy,
            slots: Mutex::new(HashMap::new()),
        };
        let s: Serial = "7285c0f2".parse().unwrap();
        b.slots.lock().unwrap().insert(
            "A-01".into(),
            Known {
                mac: Some(MacAddr::of_pi3(s)),
                serial: Some(s),
            },
        );
        b.slots
            .lock()
            .unwrap()
            .insert("A-02".into(), Known::default());
        b
    }

    #[test]
    fn own_other_and_new_boards() {
        let own: Serial = "7285c0f2".parse().unwrap();
        let new: Serial = "b66c4c16".parse().unwrap();
        let hold = boards(BoardPolicy::Hold);
        assert_eq!(
            hold.check_mac("A-01", MacAddr::of_pi3(own), None),
            Verdict::Own
        );
        assert_eq!(hold.check_serial("A-01", own), Verdict::Own);
        assert_eq!(
            hold.check_serial("A-02", own),
            Verdict::OtherSlot("A-01".into())
        );
        assert_eq!(
            hold.check_mac("A-02", MacAddr::of_pi3(new), None),
            Verdict::Held
        );
        assert_eq!(hold.check_serial("A-02", new), Verdict::Held);

        let adopt = boards(BoardPolicy::Adopt);
        assert_eq!(
            adopt.check_mac("A-02", MacAddr::of_pi3(new), None),
            Verdict::Adopted
        );
        // The adopted MAC vouches for the serial it implies.
        assert_eq!(adopt.check_serial("A-02", new), Verdict::Own);
        assert_eq!(
            adopt.check_serial("A-01", new),
            Verdict::OtherSlot("A-02".into())
        );
    }
}

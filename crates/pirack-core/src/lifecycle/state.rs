//! A slot's lifecycle as a state machine (design notes, "Lifecycle of a slot"):
//!
//! `empty → registered → building_root → ready → powering_on → dhcp → tftp →
//! kernel_loaded → nfs_mounted → up`, with `failed`, `reimaging`, `powered_off` and
//! `decommissioned` beside it. Pure: which trigger moves which state where, and a
//! clear refusal for everything else.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// In the inventory; no board known in it.
    Empty,
    /// A board is known in the slot; nobody has it yet.
    Registered,
    BuildingRoot,
    /// Root built, powered off, ready to boot.
    Ready,
    PoweringOn,
    /// The boot ROM asked DHCP.
    Dhcp,
    /// Boot files are being fetched over TFTP.
    Tftp,
    /// The kernel was fetched; the Pi is starting Linux.
    KernelLoaded,
    /// The Pi mounted its root over NFS.
    NfsMounted,
    /// The Pi answers on its public address.
    Up,
    Failed,
    Reimaging,
    PoweredOff,
    Decommissioned,
}

pub const ALL: [State; 14] = [
    State::Empty,
    State::Registered,
    State::BuildingRoot,
    State::Ready,
    State::PoweringOn,
    State::Dhcp,
    State::Tftp,
    State::KernelLoaded,
    State::NfsMounted,
    State::Up,
    State::Failed,
    State::Reimaging,
    State::PoweredOff,
    State::Decommissioned,
];

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Empty => "empty",
            State::Registered => "registered",
            State::BuildingRoot => "building_root",
            State::Ready => "ready",
            State::PoweringOn => "powering_on",
            State::Dhcp => "dhcp",
            State::Tftp => "tftp",
            State::KernelLoaded => "kernel_loaded",
            State::NfsMounted => "nfs_mounted",
            State::Up => "up",
            State::Failed => "failed",
            State::Reimaging => "reimaging",
            State::PoweredOff => "powered_off",
            State::Decommissioned => "decommissioned",
        }
    }

    /// Whether the port is (or should be) delivering power in this state.
    pub fn powered(self) -> bool {
        matches!(
            self,
            State::PoweringOn
                | State::Dhcp
                | State::Tftp
                | State::KernelLoaded
                | State::NfsMounted
                | State::Up
        )
    }

    /// A boot stage the watchdog keeps a deadline on.
    pub fn booting(self) -> bool {
        self.powered() && self != State::Up
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<State, String> {
        ALL.into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown slot state `{s}`"))
    }
}

/// What happened to a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A board was found in (or assigned to) the slot.
    BoardKnown,
    /// A customer was given the slot with an image: its root is being built.
    Provision,
    RootBuilt,
    RootFailed,
    PowerOn,
    /// A DHCP request from the slot's board.
    DhcpSeen,
    /// A boot file served to it over TFTP.
    TftpSeen,
    KernelServed,
    /// Its NFS client connected to the fileserver.
    NfsMounted,
    /// Its public address answered.
    Reachable,
    /// The watchdog power-cycles it: booting starts over.
    Recover,
    /// The watchdog gave up on it.
    GiveUp,
    PowerOff,
    /// A new root from an image, built beside the old one (powered off only).
    Reimage,
    Rollback,
    Decommission,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::BoardKnown => "board_known",
            Trigger::Provision => "provision",
            Trigger::RootBuilt => "root_built",
            Trigger::RootFailed => "root_failed",
            Trigger::PowerOn => "power_on",
            Trigger::DhcpSeen => "dhcp_seen",
            Trigger::TftpSeen => "tftp_seen",
            Trigger::KernelServed => "kernel_served",
            Trigger::NfsMounted => "nfs_mounted",
            Trigger::Reachable => "reachable",
            Trigger::Recover => "recover",
            Trigger::GiveUp => "give_up",
            Trigger::PowerOff => "power_off",
            Trigger::Reimage => "reimage",
            Trigger::Rollback => "rollback",
            Trigger::Decommission => "decommission",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A trigger the current state does not allow, with the reason people need.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("slot is {from}: {trigger} is not allowed ({why})")]
pub struct Illegal {
    pub from: State,
    pub trigger: Trigger,
    pub why: &'static str,
}

/// Where `trigger` takes a slot in state `from`; `Ok(from)` when it changes nothing
/// (a second DHCP request while in `dhcp`).
pub fn next(from: State, trigger: Trigger) -> Result<State, Illegal> {
    use State as S;
    use Trigger as T;
    let to = match (trigger, from) {
        (T::BoardKnown, S::Empty) => S::Registered,
        (T::BoardKnown, s) => s,
        // A decommissioned slot (its customer gone, its root deleted) can be handed out again.
        (T::Provision, S::Empty | S::Registered | S::Decommissioned) => S::BuildingRoot,
        (T::RootBuilt, S::BuildingRoot | S::Reimaging) => S::Ready,
        (T::RootFailed, S::BuildingRoot | S::Reimaging) => S::Failed,
        (T::PowerOn, S::Ready | S::PoweredOff | S::Failed) => S::PoweringOn,
        (T::PowerOn, s) if s.powered() => s,
        // The ROM asks DHCP on every boot, also when an `up` Pi reboots itself.
        (T::DhcpSeen, s) if s.powered() => S::Dhcp,
        (T::TftpSeen, S::Dhcp | S::Tftp) => S::Tftp,
        // The initramfs and late files come after the kernel.
        (T::TftpSeen | T::KernelServed, S::KernelLoaded) => S::KernelLoaded,
        (T::KernelServed, S::Dhcp | S::Tftp) => S::KernelLoaded,
        (T::NfsMounted, S::KernelLoaded | S::Tftp) => S::NfsMounted,
        (T::Reachable, S::NfsMounted | S::KernelLoaded) => S::Up,
        (T::Reachable, S::Up) => S::Up,
        (T::Recover, s) if s.powered() || s == S::Failed => S::PoweringOn,
        (T::GiveUp, s) if s.booting() => S::Failed,
        (T::PowerOff, s) if s.powered() || s == S::Failed => S::PoweredOff,
        (T::PowerOff, S::PoweredOff | S::Ready) => from,
        (T::Reimage | T::Rollback, S::Ready | S::PoweredOff | S::Failed) => S::Reimaging,
        (T::Decommission, s) if !s.powered() && !matches!(s, S::BuildingRoot | S::Reimaging) => {
            S::Decommissioned
        }
        _ => {
            return Err(Illegal {
                from,
                trigger,
                why: why(from, trigger),
            });
        }
    };
    Ok(to)
}

fn why(from: State, trigger: Trigger) -> &'static str {
    use State as S;
    use Trigger as T;
    match (trigger, from) {
        (_, S::Decommissioned) => "the slot is decommissioned: provision it again first",
        (T::Reimage | T::Rollback | T::Decommission, s) if s.powered() => {
            "power the slot off first: its Pi is running from that root"
        }
        (_, S::BuildingRoot | S::Reimaging) => "its root is being built",
        (T::Provision, _) => "the slot is already provisioned",
        (T::PowerOn, S::Empty | S::Registered) => "the slot has no root yet: provision it first",
        (T::DhcpSeen | T::TftpSeen | T::KernelServed | T::NfsMounted | T::Reachable, _) => {
            "the slot is not booting"
        }
        _ => "not a step of the slot lifecycle",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_goes_from_empty_to_up() {
        let mut s = State::Empty;
        for t in [
            Trigger::BoardKnown,
            Trigger::Provision,
            Trigger::RootBuilt,
            Trigger::PowerOn,
            Trigger::DhcpSeen,
            Trigger::TftpSeen,
            Trigger::TftpSeen,
            Trigger::KernelServed,
            Trigger::NfsMounted,
            Trigger::Reachable,
        ] {
            s = next(s, t).unwrap();
        }
        assert_eq!(s, State::Up);
    }

    #[test]
    fn reimage_while_powered_on_is_refused() {
        let e = next(State::Up, Trigger::Reimage).unwrap_err();
        assert_eq!(
            e.to_string(),
            "slot is up: reimage is not allowed (power the slot off first: its Pi is running from that root)"
        );
        assert_eq!(
            next(State::PoweredOff, Trigger::Reimage),
            Ok(State::Reimaging)
        );
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for s in ALL {
            assert_eq!(s.as_str().parse::<State>(), Ok(s));
        }
    }

    #[test]
    fn a_decommissioned_slot_only_takes_a_new_provisioning() {
        for t in [Trigger::PowerOn, Trigger::Reimage, Trigger::DhcpSeen] {
            assert!(next(State::Decommissioned, t).is_err());
        }
        assert_eq!(
            next(State::Decommissioned, Trigger::Provision),
            Ok(State::BuildingRoot)
        );
    }
}

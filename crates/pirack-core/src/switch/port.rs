//! What a PoE port reads: its admin state, what the PSE detects on it
//! (POWER-ETHERNET-MIB, RFC 3621) and the power drawn where the switch tells it.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Admin {
    On,
    Off,
}

impl fmt::Display for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Admin::On => "on",
            Admin::Off => "off",
        })
    }
}

/// `pethPsePortDetectionStatus` (RFC 3621).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Detection {
    Disabled,
    Searching,
    DeliveringPower,
    Fault,
    Test,
    OtherFault,
}

impl fmt::Display for Detection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Detection::Disabled => "disabled",
            Detection::Searching => "searching",
            Detection::DeliveringPower => "delivering-power",
            Detection::Fault => "fault",
            Detection::Test => "test",
            Detection::OtherFault => "other-fault",
        })
    }
}

/// `pethMainPseOperStatus` (RFC 3621): the PoE supply as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SupplyStatus {
    On,
    Off,
    Faulty,
}

impl SupplyStatus {
    /// From the MIB's integer (1 on, 2 off, 3 faulty).
    pub fn from_mib(v: i64) -> Option<SupplyStatus> {
        match v {
            1 => Some(SupplyStatus::On),
            2 => Some(SupplyStatus::Off),
            3 => Some(SupplyStatus::Faulty),
            _ => None,
        }
    }
}

impl fmt::Display for SupplyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SupplyStatus::On => "on",
            SupplyStatus::Off => "off",
            SupplyStatus::Faulty => "faulty",
        })
    }
}

/// What the supply reads, each where the profile has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Supply {
    pub status: Option<SupplyStatus>,
    /// Power drawn from it, in watts.
    pub draw_w: Option<u64>,
}

/// What a port reads back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortStatus {
    pub port: u16,
    pub admin: Admin,
    pub detection: Detection,
    /// Power drawn on the port, where the profile has a column for it.
    pub draw_mw: Option<u64>,
}

impl PortStatus {
    /// Whether the port is as `want` asks: switched on, or off and no longer
    /// delivering power.
    pub fn settled(&self, want: Admin) -> bool {
        self.admin == want && (want == Admin::On || self.detection != Detection::DeliveringPower)
    }
}

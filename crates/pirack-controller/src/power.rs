//! A slot's power, whatever supplies it. The controller holds one driver per slot
//! kind and asks it to switch or read a slot; it never looks at how. The PoE
//! switch over SNMP is the driver of Pi 3 slots; the lab's QEMU driver powers
//! virtual ones; a PDU or a relay board would be a third, without touching the
//! controller.

use crate::switch::power::{Fleet, PowerError};
use pirack_core::inventory::SlotKind;
use pirack_core::plan::SlotPlan;
use pirack_core::switch::port::{Admin, PortStatus};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// What the API asks of a slot's power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerAction {
    On,
    Off,
    Cycle,
}

impl PowerAction {
    /// The name the API takes, as operations and metrics show it.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::Cycle => "cycle",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The switch did not do as asked, or did not answer.
    #[error(transparent)]
    Switch(#[from] PowerError),
    #[error("slot {slot} is of kind {kind}, which no power driver serves here")]
    NoDriver { slot: String, kind: &'static str },
    /// Another driver's failure, in its own words.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

pub type PowerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<PortStatus, DriverError>> + Send + 'a>>;

/// Switches and reads slots' power. Every answer is what the power reads after
/// the change, never what was asked.
pub trait PowerDriver: Send + Sync {
    fn switch<'a>(&'a self, slot: &'a SlotPlan, action: PowerAction) -> PowerFuture<'a>;
    fn read<'a>(&'a self, slot: &'a SlotPlan) -> PowerFuture<'a>;
    /// The slot's serial console log, where this driver keeps one.
    fn console(&self, _slot: &SlotPlan) -> Option<PathBuf> {
        None
    }
    /// Everything it powers goes off: the controller is stopping and what it
    /// started must not outlive it. PoE ports stay as they are.
    fn shutdown(&self) {}
}

/// Pi 3 slots on PoE switch ports: each change read back from the switch.
pub struct PoeDriver {
    pub fleet: Arc<Fleet>,
}

impl PowerDriver for PoeDriver {
    fn switch<'a>(&'a self, slot: &'a SlotPlan, action: PowerAction) -> PowerFuture<'a> {
        Box::pin(async move {
            let sw = self.fleet.get(&slot.key.switch)?;
            let port = slot.key.port;
            Ok(match action {
                PowerAction::On => sw.set(port, Admin::On).await?,
                PowerAction::Off => sw.set(port, Admin::Off).await?,
                PowerAction::Cycle => {
                    sw.cycle(port, Duration::from_millis(sw.policy.drain_ms))
                        .await?
                }
            })
        })
    }

    fn read<'a>(&'a self, slot: &'a SlotPlan) -> PowerFuture<'a> {
        Box::pin(async move {
            let sw = self.fleet.get(&slot.key.switch)?;
            let mut read = sw.status(&[slot.key.port]).await?;
            Ok(read.remove(0))
        })
    }
}

/// The drivers of a controller, by the kind of slot each powers.
#[derive(Clone, Default)]
pub struct Drivers {
    by_kind: HashMap<SlotKind, Arc<dyn PowerDriver>>,
}

impl Drivers {
    /// `driver` powers every slot of `kind` (replacing any before it).
    pub fn with(mut self, kind: SlotKind, driver: Arc<dyn PowerDriver>) -> Drivers {
        self.by_kind.insert(kind, driver);
        self
    }

    /// `other`'s drivers added, each in place of one for the same kind.
    pub fn merged(mut self, other: Drivers) -> Drivers {
        self.by_kind.extend(other.by_kind);
        self
    }

    pub fn of(&self, slot: &SlotPlan) -> Result<&dyn PowerDriver, DriverError> {
        self.by_kind
            .get(&slot.kind)
            .map(|d| d.as_ref())
            .ok_or_else(|| DriverError::NoDriver {
                slot: slot.position.clone(),
                kind: slot.kind.as_str(),
            })
    }

    pub fn shutdown(&self) {
        for d in self.by_kind.values() {
            d.shutdown();
        }
    }
}

/// The last `max` bytes of a console log, from a line start. Blocking.
pub fn tail(path: &Path, max: usize) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max as u64);
    file.seek(SeekFrom::Start(start))?;
    let mut data = Vec::with_capacity((len - start) as usize);
    file.read_to_end(&mut data)?;
    let from = match start {
        0 => 0,
        _ => data.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1),
    };
    Ok(String::from_utf8_lossy(&data[from..]).into_owned())
}

//! The controller: one process holding the store, the plan, the switches and the
//! netboot services, acting on slots for the API and the watchdog.

pub mod actions;
pub mod driver;
pub mod metrics;
pub mod observe;
pub mod watchdog;

use crate::events::Bus;
use crate::inventory::Site;
use crate::plan::{self, Ledger, Plan, SlotPlan};
use crate::store::events::NewEvent;
use crate::store::{Store, StoreError, now_ms};
use crate::switch::Profiles;
use crate::switch::power::{Fleet, PowerError};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Ledger(#[from] plan::LedgerError),
    #[error(transparent)]
    Power(#[from] PowerError),
}

/// Where the controller keeps what it does not hold in the store.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The image store.
    pub images: PathBuf,
    /// The YAML ledger beside the inventory, imported once into an empty store.
    pub ledger_yaml: Option<PathBuf>,
    /// Whether exports follow root changes (off where no NFS server runs).
    pub export: bool,
    /// Virtual slots' files and firmware namespaces.
    pub hil: crate::hil::qemu::Settings,
}

pub struct Controller {
    pub store: Store,
    pub site: Site,
    pub plan: Plan,
    pub fleet: Fleet,
    pub bus: Bus,
    pub paths: Paths,
    pub metrics: metrics::Metrics,
    /// The power of virtual slots.
    pub hil: crate::hil::qemu::Qemu,
}

impl Controller {
    /// Opens the controller's state: the store synced with the inventory, the old
    /// YAML ledger imported into an empty store, the plan against the stored ledger
    /// (new allocations recorded), and operations a crash left running failed.
    pub async fn open(
        site: Site,
        profiles: &Profiles,
        store: Store,
        paths: Paths,
    ) -> Result<Controller, ControllerError> {
        let mut ledger = store.ledger().await?;
        if ledger.slots.is_empty()
            && let Some(yaml) = paths.ledger_yaml.as_ref().filter(|p| p.exists())
        {
            let old = Ledger::load(yaml)?;
            let added = store.record_ledger(&old).await?;
            tracing::info!("imported {added} allocation(s) from {}", yaml.display());
            ledger = store.ledger().await?;
        }
        let (plan, ledger) = plan::plan(&site, &ledger)?;
        store.record_ledger(&ledger).await?;
        store.sync_inventory(&site).await?;
        let failed = store.fail_interrupted_ops().await?;
        if failed > 0 {
            tracing::warn!("{failed} operation(s) were cut short by a restart");
        }
        let fleet = Fleet::new(&site, profiles)?;
        Ok(Controller {
            store,
            site,
            plan,
            fleet,
            bus: Bus::default(),
            hil: crate::hil::qemu::Qemu::new(paths.hil.clone()),
            paths,
            metrics: metrics::Metrics::default(),
        })
    }

    /// Records an event about a slot that changes no state (an observation, an
    /// alert); a store that cannot take it is logged, not fatal.
    pub async fn note(
        &self,
        slot: &str,
        board: Option<&str>,
        kind: &str,
        cause: &str,
        detail: &str,
    ) {
        let e = NewEvent {
            at: now_ms(),
            slot: Some(slot.to_string()),
            board: board.map(str::to_string),
            kind: kind.into(),
            cause: cause.into(),
            detail: detail.into(),
        };
        if let Err(err) = self.store.event(&e).await {
            tracing::warn!("{slot}: {kind} not recorded: {err}");
        }
    }

    /// The plan of a slot, by key or position.
    pub fn slot_plan(&self, slot: &str) -> Option<&SlotPlan> {
        self.plan
            .slots
            .iter()
            .find(|s| s.key.to_string() == slot || s.position == slot)
    }
}

//! Why an action was refused or an operation failed. Each error has a stable code,
//! kept with a failed operation in the store, and the API maps each to an HTTP
//! status in one place (`api::error`).

use crate::exporter::ExporterError;
use crate::power::DriverError;
use crate::roots::image::ImageError;
use crate::roots::slot_root::RootError;
use crate::store::StoreError;
use pirack_core::lifecycle::Illegal;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("slot {0} is not in the plan")]
    NotInPlan(String),
    #[error("image {id}: {source}")]
    Image { id: String, source: ImageError },
    /// Not a customer the site knows (the inventory's, or added by staff).
    #[error("unknown owner `{0}`: add it to the inventory's owners or with `pirack owner add`")]
    UnknownOwner(String),
    /// No slot (or not the one asked for) is free to provision.
    #[error("{0}")]
    NotFree(String),
    /// No board is held in the slot for staff to accept.
    #[error("slot {0} holds no board waiting for staff")]
    NoHeldBoard(String),
    /// The slot's power is being switched already: one operation at a time.
    #[error("slot {slot} has a power operation under way: {by}")]
    Busy { slot: String, by: String },
    #[error(transparent)]
    Illegal(#[from] Illegal),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The slot's power (its switch, or its virtual machine) failed.
    #[error(transparent)]
    Power(#[from] DriverError),
    #[error(transparent)]
    Root(#[from] RootError),
    #[error("exports: {0}")]
    Export(#[from] ExporterError),
    /// A backup or restore of the slot, or of its owner's repositories, is under way.
    #[error("{what} has a backup operation under way: {by}")]
    BackupBusy { what: String, by: String },
    /// A backup, restore or repository check failed (restic's words).
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    /// The controller itself failed (no randomness, a task that panicked).
    #[error("{0}")]
    Internal(String),
}

impl OpError {
    /// The stable code programs read (operations' `error`).
    pub fn code(&self) -> &'static str {
        match self {
            OpError::NotInPlan(_) => "not_in_plan",
            OpError::Image { .. } => "unknown_image",
            OpError::UnknownOwner(_) => "unknown_owner",
            OpError::NotFree(_) => "not_free",
            OpError::NoHeldBoard(_) => "no_held_board",
            OpError::Busy { .. } => "busy",
            OpError::Illegal(_) => "illegal_transition",
            OpError::Store(StoreError::Illegal(_)) => "illegal_transition",
            OpError::Store(StoreError::Conflict(_)) => "conflict",
            OpError::Store(_) => "store",
            OpError::Power(_) => "power_failed",
            OpError::Root(_) => "root_failed",
            OpError::Export(_) => "export_failed",
            OpError::BackupBusy { .. } => "busy",
            OpError::Backup(crate::backup::BackupError::NotConfigured) => "not_configured",
            OpError::Backup(crate::backup::BackupError::NoSnapshot { .. }) => "no_snapshot",
            OpError::Backup(crate::backup::BackupError::NoTarget(_)) => "no_target",
            OpError::Backup(_) => "backup_failed",
            OpError::Internal(_) => "internal",
        }
    }
}

//! pirack's controller: the state store (the one truth while it runs), switch I/O,
//! images, roots and exports, the slot lifecycle driven by what the netboot services
//! and the fileserver see, the watchdog, and the HTTP API. [`run`] starts it all
//! and stops it in order. It knows nothing of simulators or QEMU: slots' power
//! comes from [`power`] drivers it is given.

pub mod actions;
pub mod aname;
pub mod api;
pub mod backup;
pub mod boards;
pub mod boot;
pub mod cluster;
pub mod dns;
pub mod error;
pub mod exporter;
pub mod metrics;
pub mod monitor;
pub mod netboot;
pub mod observe;
pub mod output;
pub mod power;
pub mod proxy;
pub mod quiet;
pub mod roots;
pub mod run;
pub mod store;
pub mod switch;
pub mod walk;
pub mod watchdog;

use pirack_core::inventory::Site;
use pirack_core::plan::{self, Ledger, Plan, SlotPlan};
use pirack_core::switch::Profiles;
use pirack_netboot::boards::Boards;
use pirack_netboot::events::Bus;
use power::{Drivers, PoeDriver};
use std::path::PathBuf;
use std::sync::Arc;
use store::events::NewEvent;
use store::lease::Lease;
use store::slots::SlotRow;
use store::{Store, StoreError, now_ms};
use switch::power::{Fleet, PowerError};

pub use run::{Config, Running, run};

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
    /// The YAML ledger beside the inventory: at start its allocations the store
    /// lacks are imported, and it is rewritten from the store's ledger.
    pub ledger_yaml: Option<PathBuf>,
    /// Whether exports follow root changes (off where no NFS server runs).
    pub export: bool,
    /// The site's boot files: where `bootcode.bin` comes from first.
    pub boot_files: PathBuf,
}

pub struct Controller {
    pub store: Store,
    pub site: Site,
    pub plan: Plan,
    pub bus: Bus,
    pub paths: Paths,
    pub metrics: &'static metrics::Metrics,
    /// Slots' power, by slot kind.
    pub drivers: Drivers,
    /// Which board the netboot services serve in which slot, kept in step with
    /// the store.
    pub boards: Arc<Boards>,
    /// What each slot boots, kept with its root.
    pub boots: Arc<pirack_netboot::boots::Boots>,
    /// Operations under way.
    pub operations: actions::Operations,
    /// Slots whose power is being switched.
    pub power_claims: Arc<actions::PowerClaims>,
    /// What this controller does.
    pub role: cluster::Role,
    /// The rack lease it serves the shelves under (none on a region controller).
    pub lease: Option<Lease>,
    /// The keys of the slots on the shelves of that lease's fileserver.
    held: std::collections::HashSet<String>,
    /// The region lease, while this controller leads the region.
    pub leader: std::sync::Mutex<Option<Lease>>,
    /// Woken when another controller queues an operation.
    pub queued: Arc<tokio::sync::Notify>,
    /// The one writer of the NFS exports.
    pub exporter: exporter::Exporter,
    /// Its queue, until [`run`] starts serving it.
    pub export_queue: std::sync::Mutex<Option<exporter::Queue>>,
    /// Event streams open, per token.
    pub streams: api::limits::Streams,
    /// The slot listings the API sends.
    pub listings: api::listing::Listings,
    /// The bound on what a Pi's wire can make the controller write.
    pub quiet: quiet::Quiet,
    /// The slots' names on the site's DNS servers.
    pub dns: dns::Publisher,
    /// Customers' ANAME names, kept fresh.
    pub anames: aname::Anames,
    /// The proxy's routes, as published.
    pub proxy: proxy::ProxyRoutes,
    /// The site's PoE switches (also the PoE driver's).
    pub fleet: Arc<Fleet>,
    /// The checks of the running Pis and their alerts.
    pub monitor: monitor::Monitor,
    /// The slots' backups: what runs, and what each target last did.
    pub backups: backup::service::Backups,
}

impl Controller {
    /// Whether this controller serves the slot's shelf (runs its operations
    /// itself): it holds the rack lease of the slot's fileserver.
    pub fn serves(&self, slot_key: &str) -> bool {
        self.held.contains(slot_key)
    }

    /// Whether this controller keeps the backup repositories (prunes and
    /// checks them): they are the site's, not one fileserver's, so the rack
    /// controller of the site's first fileserver does.
    pub fn keeps_repositories(&self) -> bool {
        let first = self.site.fileservers.first().map(|f| f.name.as_str());
        first.is_some() && first == self.fileserver()
    }

    /// Whether this controller runs `op`: its slot's, or the repositories'
    /// upkeep (no slot) if it keeps them.
    pub fn runs(&self, op: &store::ops::Operation) -> bool {
        match &op.slot {
            Some(slot) => self.serves(slot),
            None => self.keeps_repositories(),
        }
    }

    /// The fileserver whose shelves it serves, by its rack lease.
    pub fn fileserver(&self) -> Option<&str> {
        (self.lease.as_ref()).and_then(|l| store::lease::fileserver_of(&l.name))
    }

    /// The slots whose shelves this controller serves.
    pub fn held_plan(&self) -> Plan {
        Plan {
            site: self.plan.site.clone(),
            slots: (self.plan.slots.iter())
                .filter(|s| self.held.contains(&s.key.to_string()))
                .cloned()
                .collect(),
        }
    }

    /// Opens the controller's state on a store (fenced by its rack lease if
    /// `role` serves shelves, [`Store::fence_by`]): the YAML ledger's
    /// allocations the store lacks imported, the plan against the stored ledger (new allocations recorded, and
    /// the YAML ledger rewritten to match), the store synced with the inventory,
    /// the boards as the store knows them, and `boots` filled from the roots on
    /// disk (operations a stop cut short are [`Controller::resume`]d or failed).
    /// `drivers` power the slots the PoE switches do not; `streams` bounds the
    /// API's event streams per token.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        role: cluster::Role,
        site: Site,
        profiles: &Profiles,
        store: Store,
        paths: Paths,
        drivers: Drivers,
        boots: Arc<pirack_netboot::boots::Boots>,
        streams: api::limits::Streams,
    ) -> Result<Controller, ControllerError> {
        let lease = store.fenced_by();
        if role.rack() && lease.is_none() {
            let why = "a rack controller's lease must be taken first";
            return Err(store::StoreError::Invalid(why.into()).into());
        }
        let fileserver = (lease.as_ref()).and_then(|l| store::lease::fileserver_of(&l.name));
        if let Some(fs) = fileserver
            && site.fileserver(fs).is_none()
        {
            let why = format!("the rack lease names fileserver {fs}, not the site's");
            return Err(store::StoreError::Invalid(why).into());
        }
        let yaml = match paths.ledger_yaml.as_ref().filter(|p| p.exists()) {
            Some(path) => Some(Ledger::load(path)?),
            None => None,
        };
        if let Some(old) = &yaml {
            let added = store.record_ledger(old).await?;
            if added > 0 {
                tracing::info!("imported {added} allocation(s) from the YAML ledger");
            }
        }
        let (plan, ledger) = plan::plan(&site, &store.ledger().await?)?;
        store.record_ledger(&ledger).await?;
        if let Some(path) = &paths.ledger_yaml
            && yaml.as_ref() != Some(&ledger)
        {
            // The YAML ledger is the store's, exported for `pirack plan`.
            match output::save_ledger(&ledger, path) {
                Ok(()) => tracing::info!("wrote the store's ledger to {}", path.display()),
                Err(e) => tracing::warn!("the YAML ledger is behind the store's: {e}"),
            }
        }
        let held = (plan.slots.iter())
            .filter(|s| Some(s.fileserver.as_str()) == fileserver)
            .map(|s| s.key.to_string())
            .collect();
        store.sync_inventory(&site).await?;
        let fleet = Arc::new(Fleet::new(&site, profiles)?);
        let poe = PoeDriver {
            fleet: Arc::clone(&fleet),
        };
        let drivers = Drivers::default()
            .with(pirack_core::inventory::SlotKind::Pi3, Arc::new(poe))
            .merged(drivers);
        let boards = Arc::new(boards::table(&store, &site, &plan).await?);
        boot::fill(&boots, &site, &plan.slots, &paths.images, &paths.boot_files);
        let (exporter, export_queue) = exporter::Exporter::new();
        let dns = dns::Publisher::new(&site);
        dns.set_grants(store.zone_grants().await?);
        let anames = aname::Anames::new(&site);
        Ok(Controller {
            store,
            site,
            plan,
            bus: Bus::default(),
            paths,
            metrics: metrics::global(),
            drivers,
            boards,
            boots,
            operations: actions::Operations::default(),
            power_claims: Arc::default(),
            exporter,
            export_queue: std::sync::Mutex::new(Some(export_queue)),
            role,
            lease,
            held,
            leader: std::sync::Mutex::default(),
            queued: Arc::default(),
            streams,
            listings: api::listing::Listings::default(),
            quiet: quiet::Quiet::default(),
            dns,
            anames,
            proxy: proxy::ProxyRoutes::default(),
            fleet,
            monitor: monitor::Monitor::default(),
            backups: backup::service::Backups::default(),
        })
    }

    /// Records an event about a slot that changes no state (an observation, an
    /// alert), as its current tenant's; a store that cannot take it is logged,
    /// not fatal. An alert repeating its cause within [`quiet::INTERVAL`] is
    /// counted into one summary instead.
    pub async fn note(
        &self,
        slot: &SlotRow,
        board: Option<&str>,
        kind: &str,
        cause: &str,
        detail: &str,
    ) {
        if kind == "alert"
            && !self
                .quiet
                .admit(&slot.key, quiet::ALERTS, cause, kind, detail)
        {
            return;
        }
        self.record(slot, board, kind, cause, detail).await;
    }

    /// Records an event as [`Controller::note`] does, without the bound.
    pub async fn record(
        &self,
        slot: &SlotRow,
        board: Option<&str>,
        kind: &str,
        cause: &str,
        detail: &str,
    ) {
        let e = NewEvent {
            at: now_ms(),
            slot: Some(slot.key.clone()),
            board: board.map(str::to_string),
            kind: kind.into(),
            cause: cause.into(),
            detail: detail.into(),
            owner: slot.owner.clone(),
            actor: None,
        };
        if let Err(err) = self.store.event(&e).await {
            tracing::warn!("{}: {kind} not recorded: {err}", slot.position);
        }
    }

    /// Writes a summary of each kind of record [`quiet`] held back in a window
    /// that ended.
    pub async fn summarise_held(&self) {
        for held in self.quiet.due() {
            let Ok(slot) = self.store.slot(&held.slot).await else {
                continue;
            };
            let detail = format!(
                "{} more {} in {} s, not recorded one by one; the last: {}",
                held.count,
                held.kind.name,
                quiet::INTERVAL.as_secs(),
                held.last
            );
            self.record(
                &slot,
                slot.board.as_deref(),
                &held.record,
                "rate limit",
                &detail,
            )
            .await;
        }
    }

    /// Ends the operations under way (the controller is stopping), after up to
    /// ten seconds for them to end on their own.
    pub async fn stop_operations(&self) {
        self.operations
            .stop(std::time::Duration::from_secs(10))
            .await;
    }

    /// The plan of a slot, by key or position.
    pub fn slot_plan(&self, slot: &str) -> Option<&SlotPlan> {
        self.plan
            .slots
            .iter()
            .find(|s| s.key.to_string() == slot || s.position == slot)
    }
}

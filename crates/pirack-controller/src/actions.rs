//! What the API (and the watchdog) ask of a slot: provision, power, reimage, roll
//! back, decommission. Each is checked against the lifecycle at once, so a refusal
//! is immediate, then runs as an operation whose id the caller can poll: here,
//! if this controller serves the shelves, or else queued in the store for the
//! rack controller that does ([`Controller::run_queued`]).

use crate::Controller;
use crate::error::OpError;
use crate::power::PowerAction;
use crate::roots::{image, qualification, slot_root};
use crate::store::ops::{OpStatus, Operation, Queued};
use crate::store::records::PowerOp;
use crate::store::slots::{Changes, SlotRow};
use crate::store::{StoreError, now_ms, random_hex};
use pirack_core::lifecycle::{self, State, Trigger};
use pirack_core::plan::SlotPlan;
use pirack_core::switch::port::PortStatus;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

/// The operations under way (root builds, power actions, watchdog recoveries), so
/// a stopping controller can end them rather than leave them detached.
#[derive(Default)]
pub struct Operations(Mutex<JoinSet<()>>);

impl Operations {
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let mut set = self.0.lock().expect("not poisoned");
        // Reap the finished ones, so the set holds only what runs.
        while set.try_join_next().is_some() {}
        set.spawn(work);
    }

    /// Gives the operations under way `grace` to end (a power cycle in its
    /// drain, say), then ends the rest; a root build's blocking half finishes on
    /// its own thread, and the next start resumes the build.
    pub async fn stop(&self, grace: Duration) {
        let mut set = std::mem::take(&mut *self.0.lock().expect("not poisoned"));
        let drained = async { while set.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(grace, drained).await;
        set.shutdown().await;
    }
}

/// Who asks for an action: `name` as every tenant of the slot may read it in
/// causes (`staff`, `customer acme`), `token` (`token ID (NAME)`) for staff only.
#[derive(Debug, Clone)]
pub struct By {
    pub name: String,
    pub token: Option<String>,
}

/// What an operation records of who asked; kept with a queued one.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Asked {
    pub cause: String,
    pub actor: Option<String>,
}

/// An operation's work, to run as it.
type Work = Pin<Box<dyn Future<Output = Result<String, OpError>> + Send>>;

/// A new operation's id.
pub(crate) fn op_id() -> Result<String, OpError> {
    let id = random_hex(8).map_err(|e| OpError::Internal(format!("no randomness: {e}")))?;
    Ok(format!("op-{id}"))
}

/// The slots whose power is being switched, and by which operation (`None`: the
/// watchdog's recovery): one at a time per slot.
#[derive(Default)]
pub struct PowerClaims(Mutex<HashMap<String, Option<String>>>);

/// A slot's power, held until dropped.
pub struct PowerClaim {
    claims: Arc<PowerClaims>,
    slot: String,
}

impl PowerClaims {
    /// The slot's power for `op`, unless another operation holds it (its id).
    pub fn claim(
        self: &Arc<Self>,
        slot: &str,
        op: Option<&str>,
    ) -> Result<PowerClaim, Option<String>> {
        let mut held = self.0.lock().expect("not poisoned");
        if let Some(other) = held.get(slot) {
            return Err(other.clone());
        }
        held.insert(slot.to_string(), op.map(str::to_string));
        Ok(PowerClaim {
            claims: Arc::clone(self),
            slot: slot.to_string(),
        })
    }
}

impl Drop for PowerClaim {
    fn drop(&mut self) {
        self.claims
            .0
            .lock()
            .expect("not poisoned")
            .remove(&self.slot);
    }
}

impl Controller {
    /// Applies a trigger to the slot as it is now, rereading it if another writer
    /// got there first.
    pub async fn apply(
        &self,
        slot: &str,
        trigger: Trigger,
        cause: &str,
        changes: Changes,
    ) -> Result<SlotRow, StoreError> {
        let mut tries = 0;
        loop {
            let seen = self.store.slot(slot).await?;
            match self
                .store
                .transition(&seen, trigger, cause, changes.clone())
                .await
            {
                Err(StoreError::Conflict(_)) if tries < 8 => tries += 1,
                done => {
                    if let Ok(row) = &done
                        && row.state == State::Failed
                        && seen.state != State::Failed
                    {
                        self.metrics.failures.inc();
                    }
                    return done;
                }
            }
        }
    }

    async fn operation(
        &self,
        kind: &str,
        slot: Option<&str>,
        owner: Option<&str>,
    ) -> Result<Operation, OpError> {
        Ok(self.store.start_op(&op_id()?, kind, slot, owner).await?)
    }

    /// Runs `work` as operation `op`, recording how it ended (a failure with its
    /// code). The task is the controller's: [`Controller::stop_operations`] ends it.
    fn finish<F>(self: &Arc<Self>, op: &Operation, work: F)
    where
        F: Future<Output = Result<String, OpError>> + Send + 'static,
    {
        let (ctl, id) = (Arc::clone(self), op.id.clone());
        self.operations.spawn(async move {
            let (status, detail, code) = match work.await {
                Ok(d) => (OpStatus::Succeeded, d, None),
                Err(e) => (OpStatus::Failed, e.to_string(), Some(e.code())),
            };
            if let Err(e) = ctl.store.update_op(&id, status, None, &detail, code).await {
                tracing::error!("operation {id}: cannot record its end: {e}");
            }
        });
    }

    fn plan_of(&self, key: &str) -> Result<SlotPlan, OpError> {
        self.slot_plan(key)
            .cloned()
            .ok_or_else(|| OpError::NotInPlan(key.to_string()))
    }

    /// The image must exist in the image store; the store notes it as used.
    /// One that is not qualified is used with a warning (returned for the
    /// answer, and logged).
    async fn check_image(&self, image_id: &str) -> Result<Vec<String>, OpError> {
        let (images, id) = (self.paths.images.clone(), image_id.to_string());
        let (manifest, warning) = tokio::task::spawn_blocking(move || {
            image::show(&images, &id).map(|m| (m, qualification::warning(&images, &id)))
        })
        .await
        .map_err(|e| OpError::Internal(e.to_string()))?
        .map_err(|source| OpError::Image {
            id: image_id.to_string(),
            source,
        })?;
        let json = serde_json::to_string(&manifest).unwrap_or_default();
        self.store
            .record_image(image_id, &manifest.name, &manifest.version, &json)
            .await?;
        if let Some(w) = &warning {
            tracing::warn!("{w}");
        }
        Ok(warning.into_iter().collect())
    }

    /// Builds the slot's root from `image_id` (powered off, as the lifecycle made
    /// sure) and moves the slot to `ready`, or `failed` if the build fails.
    async fn build_root(
        self: &Arc<Self>,
        key: &str,
        image_id: &str,
        owner: Option<String>,
    ) -> Result<String, OpError> {
        let mut plan = self.plan_of(key)?;
        plan.owner = owner;
        self.boot_ready(key, &plan, image_id, "root build").await?;
        let (site, images, image_id2) = (
            self.site.clone(),
            self.paths.images.clone(),
            image_id.to_string(),
        );
        let built = tokio::task::spawn_blocking(move || {
            slot_root::build(&site, &plan, &images, &image_id2, false)
        })
        .await
        .map_err(|e| OpError::Internal(format!("root build panicked: {e}")))?;
        self.root_done(key, built, "root build").await
    }

    /// After a root build or rollback: on success the exports follow, the store
    /// records the root, and the slot is `ready` on the root's image; on failure the
    /// slot is `failed`.
    pub(crate) async fn root_done(
        &self,
        key: &str,
        done: Result<slot_root::Record, slot_root::RootError>,
        what: &str,
    ) -> Result<String, OpError> {
        let rec = match done {
            Ok(rec) => rec,
            Err(e) => {
                let cause = format!("{what} failed: {e}");
                let _ = self
                    .apply(key, Trigger::RootFailed, &cause, Changes::default())
                    .await;
                return Err(e.into());
            }
        };
        // The root is in place: its image's boot files go with it.
        let plan = self.plan_of(key)?;
        if let Err(e) = self.boot_image(&plan, Some(&rec.image)).await {
            let cause = format!("{what}: the root is built but its boot is not: {e}");
            if let Ok(slot) = self
                .apply(key, Trigger::RootFailed, &cause, Changes::default())
                .await
            {
                self.note(&slot, slot.board.as_deref(), "alert", "boot", &cause)
                    .await;
            }
            return Err(e);
        }
        // A root that replaced another was exchanged in place.
        let swapped = (!rec.previous.is_empty()).then_some(key);
        if let Err(e) = self.export(swapped).await {
            // A root its Pi cannot mount: failed, and staff told.
            let cause = format!("{what}: the root is built but {e}");
            if let Ok(slot) = self
                .apply(key, Trigger::RootFailed, &cause, Changes::default())
                .await
            {
                self.note(&slot, slot.board.as_deref(), "alert", "exports", &cause)
                    .await;
            }
            return Err(e);
        }
        let previous = rec.previous.first().map(|p| p.image.as_str());
        self.store.record_root(key, &rec.image, previous).await?;
        let changes = Changes {
            image: Some(Some(rec.image.clone())),
            ..Changes::default()
        };
        let cause = format!("{what}: root from {} ({})", rec.image, rec.method);
        self.apply(key, Trigger::RootBuilt, &cause, changes).await?;
        Ok(format!("{key}: {cause}"))
    }

    /// Exports every root, through the one exporter; `swapped` names a slot whose
    /// root was just exchanged.
    async fn export(&self, swapped: Option<&str>) -> Result<(), OpError> {
        if !self.paths.export {
            return Ok(());
        }
        Ok(self.exporter.export(swapped).await?)
    }

    /// Starts again the root builds a stopped controller left half done (roots are
    /// built beside the one in service and swapped in, so nothing half-built was
    /// served), each under the operation that asked for it, so a client polling
    /// it sees it finish; other operations a stop cut short are failed as
    /// interrupted. Returns how many builds resumed.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, OpError> {
        // Another fileserver's controller runs its own slots' operations.
        let running: Vec<_> = (self.store.running_ops().await?.into_iter())
            .filter(|o| self.runs(o))
            .collect();
        let mut resumed = Vec::new();
        for slot in self.store.slots(None).await? {
            if !matches!(slot.state, State::BuildingRoot | State::Reimaging)
                || !self.serves(&slot.key)
            {
                continue;
            }
            if let Some(op) = running
                .iter()
                .find(|o| o.slot.as_deref() == Some(slot.key.as_str()) && o.kind == "restore")
            {
                crate::backup::service::resume_restore(self, &slot, op).await?;
                resumed.push(op.id.clone());
                continue;
            }
            let Some(image) = slot.image.clone() else {
                continue;
            };
            let cut = running.iter().find(|o| {
                o.slot.as_deref() == Some(slot.key.as_str())
                    && matches!(o.kind.as_str(), "provision" | "reimage" | "resume-build")
            });
            let op = match cut {
                Some(op) => op.clone(),
                None => {
                    self.operation("resume-build", Some(&slot.key), slot.owner.as_deref())
                        .await?
                }
            };
            let (ctl, key, owner) = (Arc::clone(self), slot.key.clone(), slot.owner.clone());
            self.finish(&op, async move {
                let done = ctl.build_root(&key, &image, owner).await?;
                Ok(format!("{done} (resumed after a restart)"))
            });
            resumed.push(op.id);
        }
        let interrupted: Vec<String> = (running.into_iter())
            .filter(|o| !resumed.contains(&o.id))
            .map(|o| o.id)
            .collect();
        let failed = self.store.fail_interrupted_ops(&interrupted).await?;
        if failed > 0 {
            tracing::warn!("{failed} operation(s) were cut short by a restart");
        }
        Ok(resumed.len())
    }

    /// Gives `owner`, a customer the site knows, a free slot (or the named one)
    /// with a root from `image_id`.
    pub async fn provision(
        self: &Arc<Self>,
        owner: &str,
        image_id: &str,
        wanted: Option<&str>,
    ) -> Result<Operation, OpError> {
        if !self.store.has_owner(owner).await? {
            return Err(OpError::UnknownOwner(owner.to_string()));
        }
        let warnings = self.check_image(image_id).await?;
        let slot = self
            .store
            .claim(owner, image_id, wanted)
            .await
            .map_err(|e| match e {
                StoreError::Invalid(m) => OpError::NotFree(m),
                other => other.into(),
            })?;
        let mut op = self
            .dispatch(&op_id()?, "provision", &slot, Asked::default(), None)
            .await?;
        op.warnings = warnings;
        Ok(op)
    }

    pub async fn power(
        self: &Arc<Self>,
        slot: &SlotRow,
        action: PowerAction,
        by: &By,
    ) -> Result<Operation, OpError> {
        let trigger = match action {
            PowerAction::On => Trigger::PowerOn,
            PowerAction::Off => Trigger::PowerOff,
            PowerAction::Cycle => Trigger::Recover,
        };
        lifecycle::next(slot.state, trigger)?;
        let id = op_id()?;
        // Here, the claim refuses at once; queued, the rack controller's does.
        let claim = match self.serves(&slot.key) {
            true => Some(self.claim_power(slot, &id)?),
            false => None,
        };
        let asked = Asked {
            cause: format!("{} by {}", action.as_str(), by.name),
            actor: by.token.clone(),
        };
        let kind = format!("power-{}", action.as_str());
        self.dispatch(&id, &kind, slot, asked, claim).await
    }

    fn claim_power(&self, slot: &SlotRow, op: &str) -> Result<PowerClaim, OpError> {
        self.power_claims
            .claim(&slot.key, Some(op))
            .map_err(|holder| OpError::Busy {
                slot: slot.position.clone(),
                by: holder.unwrap_or_else(|| "the watchdog's power cycle".into()),
            })
    }

    /// Runs operation `kind` on `slot` here if this controller serves the
    /// shelves, or queues it for the rack controller that does.
    async fn dispatch(
        self: &Arc<Self>,
        id: &str,
        kind: &str,
        slot: &SlotRow,
        asked: Asked,
        claim: Option<PowerClaim>,
    ) -> Result<Operation, OpError> {
        let owner = slot.owner.as_deref();
        if !self.serves(&slot.key) {
            let request =
                serde_json::to_string(&asked).map_err(|e| OpError::Internal(e.to_string()))?;
            return Ok(self
                .store
                .queue_op(id, kind, Some(&slot.key), owner, &request)
                .await?);
        }
        let op = self
            .store
            .start_op(id, kind, Some(&slot.key), owner)
            .await?;
        match self.work(&op, asked, claim) {
            Ok(work) => self.finish(&op, work),
            Err(e) => self.finish(&op, async move { Err(e) }),
        }
        Ok(op)
    }

    /// Takes and runs an operation another controller queued (one this
    /// controller knows not how to run fails, saying so).
    pub async fn run_queued(self: &Arc<Self>, queued: Queued) -> Result<(), OpError> {
        if !self.store.take_op(&queued.op.id).await? {
            return Ok(());
        }
        let asked = queued
            .request
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default();
        tracing::info!(
            "running operation {} ({} of {}) queued by another controller",
            queued.op.id,
            queued.op.kind,
            queued.op.slot.as_deref().unwrap_or("the site")
        );
        match self.work(&queued.op, asked, None) {
            Ok(work) => self.finish(&queued.op, work),
            Err(e) => self.finish(&queued.op, async move { Err(e) }),
        }
        Ok(())
    }

    /// The work of operation `op` on its slot, as the slot is in the store now.
    fn work(
        self: &Arc<Self>,
        op: &Operation,
        asked: Asked,
        claim: Option<PowerClaim>,
    ) -> Result<Work, OpError> {
        let key = op
            .slot
            .clone()
            .ok_or_else(|| OpError::Internal(format!("operation {} names no slot", op.id)))?;
        let ctl = Arc::clone(self);
        let action = match op.kind.as_str() {
            "provision" | "reimage" | "resume-build" => {
                return Ok(Box::pin(async move {
                    let slot = ctl.store.slot_fresh(&key).await?;
                    let image = slot
                        .image
                        .ok_or_else(|| OpError::Internal(format!("slot {key} has no image")))?;
                    ctl.build_root(&key, &image, slot.owner).await
                }));
            }
            "rollback" => return Ok(Box::pin(async move { ctl.roll_back(&key).await })),
            "decommission" => return Ok(Box::pin(async move { ctl.delete_root(&key).await })),
            "power-on" => PowerAction::On,
            "power-off" => PowerAction::Off,
            "power-cycle" => PowerAction::Cycle,
            other => {
                return Err(OpError::Internal(format!(
                    "no controller runs `{other}` operations queued"
                )));
            }
        };
        let id = op.id.clone();
        Ok(Box::pin(async move {
            let _claim = match claim {
                Some(c) => c,
                None => ctl.claim_power(&ctl.store.slot(&key).await?, &id)?,
            };
            ctl.switch_power(&key, action, &asked.cause, asked.actor)
                .await
        }))
    }

    /// Switches the slot's power through its driver (which reads it back) and
    /// records the operation; no state change.
    pub async fn cycle_port(
        &self,
        key: &str,
        action: PowerAction,
        cause: &str,
    ) -> Result<PortStatus, OpError> {
        let plan = self.plan_of(key)?;
        let started = now_ms();
        // None after this controller lost its shelves to another: checked
        // just before (not held across the switch, which storms of cycles
        // would make a wait for the store's connections).
        self.store.fence_here().await?.release().await;
        let result = match self.drivers.of(&plan) {
            Ok(driver) => driver.switch(&plan, action).await,
            Err(e) => Err(e),
        };
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        self.metrics
            .power
            .get_or_create(&crate::metrics::PowerLabels {
                action: action.as_str().into(),
                result: outcome.into(),
            })
            .inc();
        let op = PowerOp {
            slot: key.to_string(),
            action: action.as_str().to_string(),
            cause: cause.to_string(),
            ok: result.is_ok(),
            detail: match &result {
                Ok(st) => format!("port {} {}, {}", plan.key.port, st.admin, st.detection),
                Err(e) => e.to_string(),
            },
            started_at: started,
            finished_at: now_ms(),
        };
        if let Err(e) = self.store.record_power(&op).await {
            tracing::warn!("{key}: power operation not recorded: {e}");
        }
        Ok(result?)
    }

    /// What the slot's power reads now, from its driver.
    pub async fn port_status(&self, plan: &SlotPlan) -> Result<PortStatus, OpError> {
        Ok(self.drivers.of(plan)?.read(plan).await?)
    }

    /// Switches the slot's port, then records the state the port now implies
    /// (and who asked, `actor`).
    pub async fn switch_power(
        &self,
        key: &str,
        action: PowerAction,
        cause: &str,
        actor: Option<String>,
    ) -> Result<String, OpError> {
        let status = self.cycle_port(key, action, cause).await?;
        let (trigger, changes) = match action {
            PowerAction::On => (
                Trigger::PowerOn,
                Changes {
                    recoveries: Some(0),
                    ..Changes::default()
                },
            ),
            PowerAction::Off => (Trigger::PowerOff, Changes::default()),
            PowerAction::Cycle => (Trigger::Recover, Changes::default()),
        };
        let changes = Changes { actor, ..changes };
        self.apply(key, trigger, cause, changes).await?;
        Ok(format!(
            "{key}: port {} {}, {}",
            status.port, status.admin, status.detection
        ))
    }

    pub async fn reimage(
        self: &Arc<Self>,
        slot: &SlotRow,
        image_id: &str,
        by: &By,
    ) -> Result<Operation, OpError> {
        let warnings = self.check_image(image_id).await?;
        let changes = Changes {
            image: Some(Some(image_id.to_string())),
            actor: by.token.clone(),
            ..Changes::default()
        };
        let row = self
            .store
            .transition(
                slot,
                Trigger::Reimage,
                &format!("reimage to {image_id} by {}", by.name),
                changes,
            )
            .await?;
        let mut op = self
            .dispatch(&op_id()?, "reimage", &row, Asked::default(), None)
            .await?;
        op.warnings = warnings;
        Ok(op)
    }

    pub async fn rollback(self: &Arc<Self>, slot: &SlotRow, by: &By) -> Result<Operation, OpError> {
        self.plan_of(&slot.key)?;
        let row = self
            .store
            .transition(
                slot,
                Trigger::Rollback,
                &format!("rollback by {}", by.name),
                Changes {
                    actor: by.token.clone(),
                    ..Changes::default()
                },
            )
            .await?;
        self.dispatch(&op_id()?, "rollback", &row, Asked::default(), None)
            .await
    }

    /// Swaps the slot's previous root back in (its boot files with it).
    async fn roll_back(self: &Arc<Self>, key: &str) -> Result<String, OpError> {
        let plan = self.plan_of(key)?;
        let previous = slot_root::record(&self.site, &plan)
            .ok()
            .flatten()
            .and_then(|r| r.previous.first().map(|p| p.image.clone()));
        if let Some(image) = previous {
            self.boot_ready(key, &plan, &image, "rollback").await?;
        }
        let site = self.site.clone();
        let done = tokio::task::spawn_blocking(move || slot_root::rollback(&site, &plan, false))
            .await
            .map_err(|e| OpError::Internal(format!("rollback panicked: {e}")))?;
        self.root_done(key, done, "rollback").await
    }

    /// Ends a customer's use of a slot: its root is deleted and the slot freed.
    pub async fn decommission(
        self: &Arc<Self>,
        slot: &SlotRow,
        by: &By,
    ) -> Result<Operation, OpError> {
        self.plan_of(&slot.key)?;
        let changes = Changes {
            owner: Some(None),
            image: Some(None),
            actor: by.token.clone(),
            ..Changes::default()
        };
        let row = self
            .store
            .transition(
                slot,
                Trigger::Decommission,
                &format!("decommissioned by {}", by.name),
                changes,
            )
            .await?;
        // The operation stays the tenant's who asked.
        let row = SlotRow {
            owner: slot.owner.clone(),
            ..row
        };
        self.dispatch(&op_id()?, "decommission", &row, Asked::default(), None)
            .await
    }

    /// Deletes a decommissioned slot's root, its boot files and its export.
    async fn delete_root(self: &Arc<Self>, key: &str) -> Result<String, OpError> {
        let plan = self.plan_of(key)?;
        let site = self.site.clone();
        let of_slot = plan.clone();
        let deleted =
            tokio::task::spawn_blocking(move || slot_root::delete(&site, &of_slot, false))
                .await
                .map_err(|e| OpError::Internal(format!("delete panicked: {e}")))?;
        match deleted {
            Ok(()) | Err(slot_root::RootError::NoRoot(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.boot_image(&plan, None).await?;
        self.store.forget_root(key).await?;
        if let Err(e) = self.export(None).await {
            let detail = format!("decommissioned, but {e}");
            let row = self.store.slot(key).await?;
            self.note(&row, None, "alert", "exports", &detail).await;
            return Err(e);
        }
        Ok(format!("{key}: decommissioned"))
    }
}

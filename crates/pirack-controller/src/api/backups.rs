//! A slot's backups for its owner (and staff): what each target last did,
//! the snapshots each holds, a backup now, and a restore. Each customer's
//! repositories are its own, so a customer sees and restores only its own.

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::routes::{Body, Ctl, accepted, slot_for};
use crate::backup::service::{self, Progress, RestoreRequest};
use crate::store::backups::{BackupStatus, RepoCheck};
use crate::store::ops::Operation;
use crate::store::slots::SlotRow;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotBackups {
    pub slot: String,
    pub position: String,
    /// Whether the site's policy backs the slot up.
    pub enabled: bool,
    /// Each target's last good backup and last try.
    pub targets: Vec<BackupStatus>,
    /// A backup or restore under way, and how far.
    pub running: Option<Progress>,
    /// The owner's repository at each target: its last prune and check.
    pub repositories: Vec<RepoCheck>,
}

/// What each target last did for the slot.
#[utoipa::path(get, path = "/v1/slots/{slot}/backups", tag = "backups",
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 200, body = SlotBackups), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
) -> Result<Json<SlotBackups>, ApiError> {
    let row = slot_for(&ctl, &caller, &slot).await?;
    let b = ctl
        .site
        .backup
        .as_ref()
        .ok_or_else(|| ApiError::not_found("the site keeps no backups"))?;
    let targets = ctl
        .backups
        .statuses(&row.key)
        .into_iter()
        .filter(|s| s.owner == row.owner)
        .collect();
    let repositories = ctl.backups.checks(row.owner.as_deref());
    Ok(Json(SlotBackups {
        enabled: b.policy(row.owner.as_deref(), &row.position).enabled,
        repositories,
        running: ctl.backups.progress(&row.key),
        slot: row.key,
        position: row.position,
        targets,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotRow {
    pub target: String,
    pub id: String,
    pub short_id: String,
    /// RFC 3339.
    pub time: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Snapshots {
    /// Oldest first, target by target.
    pub snapshots: Vec<SnapshotRow>,
    /// Targets that could not be read, and why.
    pub unreadable: Vec<(String, String)>,
}

/// The snapshots of the slot's root its owner's repositories hold.
#[utoipa::path(get, path = "/v1/slots/{slot}/backups/snapshots", tag = "backups",
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 200, body = Snapshots), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn snapshots(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
) -> Result<Json<Snapshots>, ApiError> {
    let row = slot_for(&ctl, &caller, &slot).await?;
    on_shelves(&ctl, &row).await?;
    let plan = ctl
        .slot_plan(&row.key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no slot {slot}")))?;
    let site = ctl.site.clone();
    let listed = tokio::task::spawn_blocking(move || {
        crate::backup::list(&site, &plan, row.owner.as_deref(), &[])
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(crate::error::OpError::from)?;
    let mut out = Snapshots {
        snapshots: Vec::new(),
        unreadable: Vec::new(),
    };
    for (target, r) in listed {
        match r {
            Ok(list) => out.snapshots.extend(list.into_iter().map(|s| SnapshotRow {
                target: target.clone(),
                id: s.id,
                short_id: s.short_id,
                time: s.time,
            })),
            Err(e) => out.unreadable.push((target, e.to_string())),
        }
    }
    Ok(Json(out))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// The targets to back up to [default: every one].
    #[serde(default)]
    pub targets: Vec<String>,
}

/// Backs the slot's root up now (from a still image of it: the Pi runs on).
#[utoipa::path(post, path = "/v1/slots/{slot}/backups", tag = "backups", request_body = BackupRequest,
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 202, body = Operation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn run(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
    Body(req): Body<BackupRequest>,
) -> Result<(StatusCode, Json<Operation>), ApiError> {
    let row = slot_for(&ctl, &caller, &slot).await?;
    on_shelves(&ctl, &row).await?;
    Ok(accepted(service::back_up(&ctl, &row, req.targets).await?))
}

/// Builds the slot's root from a snapshot and swaps it in (the slot must be
/// off; the replaced root is kept for rollback).
#[utoipa::path(post, path = "/v1/slots/{slot}/restore", tag = "backups", request_body = RestoreRequest,
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 202, body = Operation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn restore(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
    Body(req): Body<RestoreRequest>,
) -> Result<(StatusCode, Json<Operation>), ApiError> {
    let row = slot_for(&ctl, &caller, &slot).await?;
    on_shelves(&ctl, &row).await?;
    Ok(accepted(
        service::restore(&ctl, &row, req, &caller.by()).await?,
    ))
}

/// Backups read and write the roots on the fileserver's disk: they run on the
/// rack controller serving the shelves, and a region controller says where.
async fn on_shelves(ctl: &crate::Controller, row: &SlotRow) -> Result<(), ApiError> {
    if ctl.serves(&row.key) {
        return Ok(());
    }
    let fs = ctl.slot_plan(&row.key).map(|p| p.fileserver.as_str());
    let rack = crate::store::lease::rack(fs.unwrap_or_default());
    let holder = ctl.store.lease(&rack).await?;
    let api = match &holder {
        Some(h) => ctl
            .store
            .controllers()
            .await?
            .into_iter()
            .find(|c| c.id == h.holder_id())
            .map_or_else(|| "unknown".into(), |c| c.api),
        None => "none serves them now".into(),
    };
    Err(ApiError::unavailable(format!(
        "backups and restores run on the rack controller serving the shelves (its API: {api})"
    )))
}

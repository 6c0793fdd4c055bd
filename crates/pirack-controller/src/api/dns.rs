//! The DNS publisher's routes: reconcile now, or read the last reconciliation's
//! report (admins); the zones names are kept in, and zones granted to owners.

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::routes::{Body, Ctl};
use crate::store::zones::Revoked;
use axum::Json;
use axum::extract::{Path, State};
use pirack_core::dns::names::{absolute, in_zone, is_host};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Read the zones and report their drift without changing them.
    #[serde(default)]
    pub dry_run: bool,
}

/// Reads every zone by AXFR and closes its drift from the published slots
/// (missing and stale names; conflicts are left alone and reported).
#[utoipa::path(post, path = "/v1/dns/sync", tag = "dns", request_body = SyncRequest,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn sync(
    State(ctl): Ctl,
    caller: Caller,
    Body(req): Body<SyncRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.admin()?;
    match ctl.dns.sync(&ctl, !req.dry_run).await {
        None => Err(not_configured()),
        Some(Ok(report)) => Ok(Json(serde_json::to_value(report).unwrap_or_default())),
        Some(Err(e)) => Err(ApiError::bad_gateway(e.to_string())),
    }
}

/// The last reconciliation's report (`null` before the first).
#[utoipa::path(get, path = "/v1/dns", tag = "dns",
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn status(State(ctl): Ctl, caller: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    caller.admin()?;
    if !ctl.dns.configured() {
        return Err(not_configured());
    }
    Ok(Json(
        serde_json::to_value(ctl.dns.last()).unwrap_or_default(),
    ))
}

pub(super) fn not_configured() -> ApiError {
    ApiError::not_found("this site publishes no names: its inventory has no `dns:` section")
}

/// A zone names are kept in, whose, and where that was set.
#[derive(Debug, Serialize)]
pub struct ZoneView {
    pub zone: String,
    /// The owner whose names it holds; none for the slots' own zones.
    pub owner: Option<String>,
    /// `site` (the slots' names), `inventory` (`owners[].zones`) or `granted`.
    pub source: &'static str,
}

/// The zones the caller may keep names in (every zone, for an admin).
#[utoipa::path(get, path = "/v1/dns/zones", tag = "dns",
    responses((status = 200, body = [Object]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn zones(State(ctl): Ctl, caller: Caller) -> Result<Json<Vec<ZoneView>>, ApiError> {
    let dns = ctl.dns.site_dns().ok_or_else(not_configured)?;
    let mut out = Vec::new();
    if caller.owner().is_none() {
        for zone in std::iter::once(&dns.zone).chain(&dns.reverse_zones) {
            out.push(ZoneView {
                zone: zone.clone(),
                owner: None,
                source: "site",
            });
        }
    }
    for (owner, zones) in &dns.owner_zones {
        if caller.owner().is_some_and(|me| me != owner) {
            continue;
        }
        for zone in zones {
            out.push(ZoneView {
                zone: zone.clone(),
                owner: Some(owner.clone()),
                source: if ctl.dns.granted(zone) {
                    "granted"
                } else {
                    "inventory"
                },
            });
        }
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// The owner who may keep names in the zone.
    pub owner: String,
}

/// Lets an owner keep names in a zone the site's servers hold for it (admins
/// only); a zone is one owner's, and not the slots' own.
#[utoipa::path(put, path = "/v1/dns/zones/{zone}", tag = "dns", request_body = GrantRequest,
    params(("zone" = String, Path, description = "the zone's name")),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn grant(
    State(ctl): Ctl,
    caller: Caller,
    Path(zone): Path<String>,
    Body(req): Body<GrantRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.admin()?;
    let dns = ctl.dns.site_dns().ok_or_else(not_configured)?;
    let zone = absolute(&zone);
    if !is_host(&zone) {
        return Err(ApiError::bad_request(format!(
            "`{zone}` is not a zone name"
        )));
    }
    if !ctl.store.has_owner(&req.owner).await? {
        return Err(ApiError::not_found(format!("no owner {}", req.owner)));
    }
    let overlaps = |z: &String| in_zone(&zone, z) || in_zone(z, &zone);
    if let Some(z) = std::iter::once(&dns.zone)
        .chain(&dns.reverse_zones)
        .find(|z| overlaps(z))
    {
        return Err(ApiError::conflict(format!(
            "{zone} overlaps {z}, which holds the slots' names"
        )));
    }
    for (owner, zones) in &dns.owner_zones {
        let theirs = zones.iter().find(|z| overlaps(z));
        if let Some(z) = theirs.filter(|z| owner != &req.owner || **z != zone) {
            return Err(ApiError::conflict(format!(
                "{zone} overlaps {owner}'s zone {z}"
            )));
        }
    }
    if let Some(holder) = ctl.store.grant_zone(&zone, &req.owner).await? {
        return Err(ApiError::conflict(format!("{zone} is {holder}'s")));
    }
    ctl.dns.set_grants(ctl.store.zone_grants().await?);
    ctl.dns.kick();
    Ok(Json(
        serde_json::json!({ "zone": zone, "owner": req.owner }),
    ))
}

/// Takes a granted zone back (admins only), once its owner has no names in it.
#[utoipa::path(delete, path = "/v1/dns/zones/{zone}", tag = "dns",
    params(("zone" = String, Path, description = "the zone's name")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(ctl): Ctl,
    caller: Caller,
    Path(zone): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.admin()?;
    let zone = absolute(&zone);
    // The zone is read one last time while still granted, so that names its
    // owner removed are gone from the servers before pirack stops reading it.
    if ctl.dns.granted(&zone) {
        match ctl.dns.sync(&ctl, true).await {
            Some(Ok(report)) => {
                let theirs = report.zones.iter().find(|z| z.drift.zone == zone);
                if let Some(e) = theirs.and_then(|z| z.error.as_ref()) {
                    return Err(ApiError::bad_gateway(format!("{zone}: {e}")));
                }
            }
            Some(Err(e)) => return Err(ApiError::bad_gateway(e.to_string())),
            None => return Err(not_configured()),
        }
    }
    match ctl.store.revoke_zone(&zone).await? {
        Revoked::Done => {}
        Revoked::NotGranted => {
            return Err(ApiError::not_found(format!(
                "{zone} was not granted through the API (the inventory's zones change there)"
            )));
        }
        Revoked::Names(why) => return Err(ApiError::conflict(why)),
    }
    ctl.dns.set_grants(ctl.store.zone_grants().await?);
    ctl.dns.kick();
    Ok(Json(serde_json::json!({ "revoked": zone })))
}

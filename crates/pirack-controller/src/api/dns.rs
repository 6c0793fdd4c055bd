//! The DNS publisher's routes (admins only): reconcile now, or read the last
//! reconciliation's report.

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::routes::{Body, Ctl};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
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

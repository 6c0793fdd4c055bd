//! The proxy's routes for stand-alone proxies (admins), and each slot's proxy
//! settings for its owner: the PROXY protocol its Pi is sent and the names
//! that lead to it.

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::routes::{Body, Ctl, Params, slot_for};
use crate::proxy::RouteDoc;
use axum::Json;
use axum::extract::{Path, State};
use pirack_proxy::routes::Protocol;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// The longest a caller waits for a change.
const LONGEST_WAIT: u64 = 60;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RoutesQuery {
    /// Answer only once the version is past this one (long poll).
    #[serde(default)]
    pub after: Option<u64>,
    /// Seconds to wait for that, at most 60 [default: 25].
    #[serde(default)]
    pub wait: Option<u64>,
}

/// The routes every proxy serves: a version, and per backend (a slot) its
/// names, addresses and PROXY protocol. With `after`, answers when the version
/// passes it or `wait` runs out, whichever comes first.
#[utoipa::path(get, path = "/v1/proxy/routes", tag = "proxy", params(RoutesQuery),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn routes(
    State(ctl): Ctl,
    caller: Caller,
    Params(q): Params<RoutesQuery>,
) -> Result<Json<RouteDoc>, ApiError> {
    caller.admin()?;
    let mut rx = ctl.proxy.subscribe();
    if let Some(after) = q.after {
        let wait = Duration::from_secs(q.wait.unwrap_or(25).min(LONGEST_WAIT));
        let _ = tokio::time::timeout(wait, rx.wait_for(|doc| doc.version > after)).await;
    }
    let doc = rx.borrow().as_ref().clone();
    Ok(Json(doc))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotProxy {
    /// off, v1 or v2.
    pub protocol: String,
    /// The names routed to the slot now.
    pub names: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotProxyRequest {
    /// The PROXY protocol header the Pi is sent: off, v1 or v2.
    #[schema(value_type = String)]
    pub protocol: Protocol,
}

/// The slot's proxy settings and the names routed to it.
#[utoipa::path(get, path = "/v1/slots/{slot}/proxy", tag = "proxy",
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 200, body = SlotProxy), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
) -> Result<Json<SlotProxy>, ApiError> {
    let row = slot_for(&ctl, &caller, &slot).await?;
    Ok(Json(slot_proxy(&ctl, &row.key).await?))
}

/// Sets the PROXY protocol the slot's Pi is sent (its owner or an admin);
/// connections open now keep theirs.
#[utoipa::path(put, path = "/v1/slots/{slot}/proxy", tag = "proxy", request_body = SlotProxyRequest,
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 200, body = SlotProxy), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
    Body(req): Body<SlotProxyRequest>,
) -> Result<Json<SlotProxy>, ApiError> {
    let row = slot_for(&ctl, &caller, &slot).await?;
    ctl.store.set_proxy_protocol(&row.key, req.protocol).await?;
    ctl.proxy.kick();
    let mut view = slot_proxy(&ctl, &row.key).await?;
    view.protocol = req.protocol.name().into();
    Ok(Json(view))
}

async fn slot_proxy(ctl: &crate::Controller, key: &str) -> Result<SlotProxy, ApiError> {
    let protocol = ctl
        .store
        .proxy_protocols()
        .await?
        .get(key)
        .copied()
        .unwrap_or_default();
    let names = ctl
        .proxy
        .current()
        .routes
        .iter()
        .find(|r| r.backend == key)
        .map(|r| r.names.clone())
        .unwrap_or_default();
    Ok(SlotProxy {
        protocol: protocol.name().into(),
        names,
    })
}

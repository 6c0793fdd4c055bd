//! Monitoring through the API: alerts and their deliveries, the routes alerts
//! go to (a customer's own, the staff's), maintenance windows, and a slot's
//! checks. A customer sees alerts only for its own slots, with the others'
//! slots left out, and only its own routes, deliveries and windows.

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::routes::{Body, Ctl, Params, slot_for};
use crate::monitor::SlotView;
use crate::store::alerts::{AlertRow, DeliveryRow, WindowRow, for_owner};
use crate::store::{now_ms, random_hex};
use axum::Json;
use axum::extract::{Path, State};
use pirack_core::lifecycle::State as SlotState;
use pirack_core::monitor::uri;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The longest window one request may set: a week.
const LONGEST_WINDOW_MIN: u64 = 7 * 24 * 60;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// How many, newest first [default: 100, at most 1000].
    #[serde(default)]
    pub limit: Option<i64>,
    /// Only those not resolved.
    #[serde(default)]
    pub open: Option<bool>,
}

/// Alerts, newest first.
#[utoipa::path(get, path = "/v1/alerts", tag = "monitoring", params(AlertsQuery),
    responses((status = 200, body = [AlertRow]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(ctl): Ctl,
    caller: Caller,
    Params(q): Params<AlertsQuery>,
) -> Result<Json<Vec<AlertRow>>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut alerts = ctl.store.alerts(caller.owner(), limit).await?;
    if q.open == Some(true) {
        alerts.retain(|a| a.resolved_at.is_none());
    }
    Ok(Json(alerts))
}

#[derive(Debug, Serialize)]
pub struct AlertView {
    #[serde(flatten)]
    pub alert: AlertRow,
    pub deliveries: Vec<DeliveryRow>,
}

/// One alert and every delivery made for it (a customer's own only).
#[utoipa::path(get, path = "/v1/alerts/{id}", tag = "monitoring",
    params(("id" = i64, Path, description = "the alert's id")),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(ctl): Ctl,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertView>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{id}` is not an alert id")))?;
    let gone = || ApiError::not_found(format!("no alert {id}"));
    let alert = ctl.store.alert(id).await?.ok_or_else(gone)?;
    let alert = match caller.owner() {
        None => alert,
        Some(o) => for_owner(&alert, o).ok_or_else(gone)?,
    };
    let deliveries = ctl.store.deliveries(id, caller.owner()).await?;
    Ok(Json(AlertView { alert, deliveries }))
}

/// A route as listed: its secret hidden.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteView {
    /// `site:N` for the inventory's routes.
    pub id: String,
    /// The customer's; none for the staff's.
    pub owner: Option<String>,
    /// The URI, all but its first characters hidden.
    pub uri: String,
    /// prowl, nma, ntfy, pushover, gotify, webhook, mail or alertmanager.
    pub kind: String,
    /// What validation wants people to know (NMA's closed service).
    pub warnings: Vec<String>,
}

fn view(id: String, owner: Option<String>, raw: &str) -> RouteView {
    let (kind, warnings) = match uri::parse(raw) {
        Ok(r) => (r.target.to_string(), r.warnings),
        Err(e) => ("invalid".into(), vec![e.to_string()]),
    };
    RouteView {
        id,
        owner,
        uri: uri::redact(raw),
        kind,
        warnings,
    }
}

/// The routes alerts go to: a customer's own; for admins, every one (the
/// inventory's `monitor.routes` first).
#[utoipa::path(get, path = "/v1/alert-routes", tag = "monitoring",
    responses((status = 200, body = [RouteView]), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn routes(State(ctl): Ctl, caller: Caller) -> Result<Json<Vec<RouteView>>, ApiError> {
    let mut out = Vec::new();
    if caller.owner().is_none()
        && let Some(m) = &ctl.site.monitor
    {
        for (i, t) in m.routes.iter().enumerate() {
            out.push(RouteView {
                id: format!("site:{i}"),
                owner: None,
                uri: "(in the inventory)".into(),
                kind: t.to_string(),
                warnings: Vec::new(),
            });
        }
    }
    for r in ctl.store.alert_routes().await? {
        if caller.owner().is_none() || caller.owner() == r.owner.as_deref() {
            out.push(view(r.id, r.owner, &r.uri));
        }
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRequest {
    /// `ntfy://host/topic`, `prowl:KEY`, `nma:KEY`, `pover://USER@TOKEN`,
    /// `gotify://host/TOKEN`, `json://host/path` or an https URL,
    /// `mailto:someone@example.com`, `alertmanager://host:9093`.
    pub uri: String,
    /// The customer it is for [admins only; default: the token's own, or the
    /// staff's for an admin].
    #[serde(default)]
    pub owner: Option<String>,
}

/// Adds a route: a customer's gets the alerts of its own slots only.
#[utoipa::path(post, path = "/v1/alert-routes", tag = "monitoring", request_body = RouteRequest,
    responses((status = 200, body = RouteView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn add_route(
    State(ctl): Ctl,
    caller: Caller,
    Body(req): Body<RouteRequest>,
) -> Result<Json<RouteView>, ApiError> {
    if ctl.site.monitor.is_none() {
        return Err(ApiError::conflict("this site has no monitor: section"));
    }
    let owner = match (caller.owner(), req.owner) {
        (Some(me), None) => Some(me.to_string()),
        (Some(me), Some(o)) if o == me => Some(o),
        (Some(_), Some(_)) => {
            return Err(ApiError::forbidden(
                "a customer token adds its own routes only",
            ));
        }
        (None, o) => o,
    };
    if let Some(o) = &owner
        && !ctl.store.has_owner(o).await?
    {
        return Err(ApiError::bad_request(format!("no owner is called `{o}`")));
    }
    let parsed = uri::parse(&req.uri).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if owner.is_some()
        && let Some(m) = ctl.site.monitor.clone()
    {
        let target = parsed.target.clone();
        tokio::task::spawn_blocking(move || crate::monitor::notify::customer_may_call(&m, &target))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(ApiError::bad_request)?;
    }
    if matches!(parsed.target, uri::Target::Mail { .. })
        && ctl.site.monitor.as_ref().is_some_and(|m| m.smtp.is_none())
    {
        return Err(ApiError::bad_request(
            "mailto: routes need the site's monitor.smtp relay, which is not set",
        ));
    }
    let row = ctl
        .store
        .add_alert_route(owner.as_deref(), req.uri.trim())
        .await?;
    Ok(Json(view(row.id, row.owner, &row.uri)))
}

/// Removes a route (a customer's own only).
#[utoipa::path(delete, path = "/v1/alert-routes/{id}", tag = "monitoring",
    params(("id" = String, Path, description = "the route's id")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_route(
    State(ctl): Ctl,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !ctl.store.delete_alert_route(&id, caller.owner()).await? {
        return Err(ApiError::not_found(format!("no route {id}")));
    }
    Ok(Json(serde_json::json!({ "deleted": id })))
}

/// Maintenance windows not yet over (a customer's own only).
#[utoipa::path(get, path = "/v1/maintenance", tag = "monitoring",
    responses((status = 200, body = [WindowRow]), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn windows(State(ctl): Ctl, caller: Caller) -> Result<Json<Vec<WindowRow>>, ApiError> {
    let mut all = ctl.store.maintenance(now_ms()).await?;
    if let Some(me) = caller.owner() {
        all.retain(|w| w.owner.as_deref() == Some(me));
    }
    Ok(Json(all))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowRequest {
    /// `site`, `shelf:NAME`, `switch:NAME` (admins) or `slot:A-01` (a
    /// customer's own slot, by position or switch/port).
    pub scope: String,
    /// How long it lasts, in minutes (at most a week).
    pub minutes: u64,
    /// Minutes from now until it starts [default: 0].
    #[serde(default)]
    pub starts_in: Option<u64>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Opens a maintenance window: no checks and no alerts in its scope while it
/// lasts.
#[utoipa::path(post, path = "/v1/maintenance", tag = "monitoring", request_body = WindowRequest,
    responses((status = 200, body = WindowRow), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn open_window(
    State(ctl): Ctl,
    caller: Caller,
    Body(req): Body<WindowRequest>,
) -> Result<Json<WindowRow>, ApiError> {
    if !(1..=LONGEST_WINDOW_MIN).contains(&req.minutes) {
        return Err(ApiError::bad_request(format!(
            "minutes must be 1..={LONGEST_WINDOW_MIN}"
        )));
    }
    let starts_in = req.starts_in.unwrap_or(0);
    if starts_in > LONGEST_WINDOW_MIN {
        return Err(ApiError::bad_request(format!(
            "starts_in must be at most {LONGEST_WINDOW_MIN} minutes"
        )));
    }
    let scope = match req.scope.split_once(':') {
        Some(("slot", s)) => format!("slot:{}", slot_for(&ctl, &caller, s).await?.key),
        _ if caller.owner().is_some() => {
            return Err(ApiError::forbidden(
                "a customer token sets windows on its own slots only (`slot:A-01`)",
            ));
        }
        None if req.scope == "site" => "site".into(),
        Some(("shelf", s)) if ctl.site.shelves.iter().any(|x| x.name == s) => req.scope.clone(),
        Some(("switch", s)) if ctl.site.switches.iter().any(|x| x.name == s) => req.scope.clone(),
        _ => {
            return Err(ApiError::bad_request(format!(
                "`{}` is not a scope here: site, shelf:NAME, switch:NAME or slot:POSITION",
                req.scope
            )));
        }
    };
    let reason = req.reason.unwrap_or_default();
    if reason.len() > 500 {
        return Err(ApiError::bad_request("a reason is 500 bytes at most"));
    }
    let starts_at = now_ms() + (starts_in * 60_000) as i64;
    let w = WindowRow {
        id: format!(
            "mw-{}",
            random_hex(6).map_err(|e| ApiError::internal(e.to_string()))?
        ),
        scope,
        owner: caller.owner().map(str::to_string),
        starts_at,
        ends_at: starts_at + (req.minutes * 60_000) as i64,
        reason,
    };
    ctl.store.add_maintenance(&w).await?;
    Ok(Json(w))
}

/// Ends a window now (a customer's own only).
#[utoipa::path(delete, path = "/v1/maintenance/{id}", tag = "monitoring",
    params(("id" = String, Path, description = "the window's id")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn end_window(
    State(ctl): Ctl,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !ctl.store.end_maintenance(&id, caller.owner()).await? {
        return Err(ApiError::not_found(format!("no open window {id}")));
    }
    Ok(Json(serde_json::json!({ "ended": id })))
}

/// A slot's checks now: each check's status, the last round trip and PoE
/// draw, and the last day a point a minute.
#[utoipa::path(get, path = "/v1/slots/{slot}/checks", tag = "monitoring",
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn checks(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
) -> Result<Json<SlotView>, ApiError> {
    let row = slot_for(&ctl, &caller, &slot).await?;
    Ok(Json(ctl.monitor.view(&row.key).unwrap_or_default()))
}

/// A switch's PoE supply against its budget.
#[derive(Debug, Serialize, ToSchema)]
pub struct Supply {
    pub switch: String,
    pub shelf: String,
    /// The last total read, where the profile reads it.
    pub draw_w: Option<u64>,
    pub budget_w: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct Glances {
    /// By slot key: each check's state, the last round trip and draw.
    pub slots: std::collections::BTreeMap<String, crate::monitor::Glance>,
    /// The switches' supplies (admins only).
    pub supplies: Vec<Supply>,
    /// The watchdog's deadline per stage (ms), before its doubling per
    /// recovery: how the rack view colours a slot nearing it.
    pub deadlines_ms: std::collections::BTreeMap<String, u64>,
}

/// The rack view's glance: every slot's checks (the caller's own), and the
/// switches' PoE supplies against their budgets (admins).
#[utoipa::path(get, path = "/v1/monitor", tag = "monitoring",
    responses((status = 200, body = Object), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn glance(State(ctl): Ctl, caller: Caller) -> Json<Glances> {
    let mine = ctl.store.mirror().slots(caller.owner());
    let slots = ctl.monitor.glance(mine.iter().map(|s| s.key.as_str()));
    let mut supplies = Vec::new();
    if caller.owner().is_none() {
        let draws = ctl.monitor.draws();
        let budgets = ctl.site.monitor.as_ref().map(|m| &m.poe_budget_w);
        for sw in &ctl.site.switches {
            supplies.push(Supply {
                switch: sw.name.clone(),
                shelf: ctl
                    .site
                    .shelves
                    .get(sw.shelf)
                    .map_or(String::new(), |s| s.name.clone()),
                draw_w: draws.get(&sw.name).copied(),
                budget_w: budgets.and_then(|b| b.get(&sw.name)).copied(),
            });
        }
    }
    let w = &ctl.site.watchdog;
    let deadlines_ms = [
        (SlotState::PoweringOn, w.powering_on_s),
        (SlotState::Dhcp, w.dhcp_s),
        (SlotState::Tftp, w.tftp_s),
        (SlotState::KernelLoaded, w.kernel_loaded_s),
        (SlotState::NfsMounted, w.nfs_mounted_s),
        (SlotState::BuildingRoot, w.root_build_s),
        (SlotState::Reimaging, w.root_build_s),
    ]
    .into_iter()
    .map(|(st, s)| (st.as_str().to_string(), s * 1000))
    .collect();
    Json(Glances {
        slots,
        supplies,
        deadlines_ms,
    })
}

//! The API's handlers. Every slot route resolves the slot for the caller first: a
//! customer asking for another customer's slot gets the 404 of a missing one, and
//! nothing is done.

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::model::{
    EventsQuery, Health, Port, PowerRequest, ProvisionRequest, ReimageRequest, Slot, Whoami,
};
use crate::Controller;
use crate::store::StoreError;
use crate::store::events::{EventRow, Page};
use crate::store::ops::Operation;
use crate::store::slots::SlotRow;
use axum::Json;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

pub(super) type Ctl = State<Arc<Controller>>;

/// A JSON body whose rejection is a JSON error like every other.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Body<T>, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::payload_too_large(format!(
                    "bodies are {} bytes at most",
                    super::guard::MAX_BODY
                )))
            }
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// Query parameters whose rejection is a JSON error like every other.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Params<T>, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Params(v)),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

pub(super) async fn slot_for(
    ctl: &Controller,
    caller: &Caller,
    slot: &str,
) -> Result<SlotRow, ApiError> {
    // A missing slot is a 404 (StoreError::NoSlot); a failing store stays a 500.
    let row = ctl.store.slot(slot).await?;
    if !row.in_inventory {
        return Err(ApiError::not_found(format!("no slot {slot}")));
    }
    caller.sees(row, slot)
}

pub(super) fn accepted(op: Operation) -> (StatusCode, Json<Operation>) {
    (StatusCode::ACCEPTED, Json(op))
}

/// The caller's slots (every slot for an admin).
#[utoipa::path(get, path = "/v1/slots", tag = "slots",
    responses((status = 200, body = [Slot]), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_slots(State(ctl): Ctl, caller: Caller) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = ctl.listings.get(&ctl, caller.owner());
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// One slot, by position (`A-07`) or key (`sw-a/7`).
#[utoipa::path(get, path = "/v1/slots/{slot}", tag = "slots",
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 200, body = Slot), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show_slot(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
) -> Result<Json<Slot>, ApiError> {
    let row = slot_for(&ctl, &caller, &slot).await?;
    Ok(Json(Slot::new(&ctl, row)))
}

/// Gives a customer a slot with a root from an image; the slot ends `ready`.
#[utoipa::path(post, path = "/v1/slots", tag = "slots", request_body = ProvisionRequest,
    responses((status = 202, body = Operation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn provision(
    State(ctl): Ctl,
    caller: Caller,
    Body(req): Body<ProvisionRequest>,
) -> Result<(StatusCode, Json<Operation>), ApiError> {
    let owner = match (caller.owner(), req.owner.as_deref()) {
        (Some(me), None) => me.to_string(),
        (Some(me), Some(o)) if o == me => me.to_string(),
        (Some(_), Some(_)) => {
            return Err(ApiError::forbidden(
                "a customer token provisions for its own owner only",
            ));
        }
        (None, Some(o)) if !o.trim().is_empty() => o.to_string(),
        (None, _) => return Err(ApiError::bad_request("name the owner to provision for")),
    };
    if let Some(wanted) = &req.slot {
        // A named slot must exist for the caller like any other.
        let row = ctl.store.slot(wanted).await?;
        if caller.owner().is_some() && row.owner.as_deref().is_some_and(|o| o != owner) {
            return Err(ApiError::not_found(format!("no slot {wanted}")));
        }
    }
    let op = ctl
        .provision(&owner, &req.image, req.slot.as_deref())
        .await?;
    Ok(accepted(op))
}

/// Switches the slot's PoE port on or off, or power-cycles it.
#[utoipa::path(post, path = "/v1/slots/{slot}/power", tag = "slots", request_body = PowerRequest,
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 202, body = Operation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn power(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
    Body(req): Body<PowerRequest>,
) -> Result<(StatusCode, Json<Operation>), ApiError> {
    let row = slot_for(&ctl, &caller, &slot).await?;
    Ok(accepted(ctl.power(&row, req.action, &caller.by()).await?))
}

/// Builds a new root from an image beside the old one (the slot must be off).
#[utoipa::path(post, path = "/v1/slots/{slot}/reimage", tag = "slots", request_body = ReimageRequest,
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 202, body = Operation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reimage(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
    Body(req): Body<ReimageRequest>,
) -> Result<(StatusCode, Json<Operation>), ApiError> {
    let row = slot_for(&ctl, &caller, &slot).await?;
    Ok(accepted(ctl.reimage(&row, &req.image, &caller.by()).await?))
}

/// Puts the root the last reimage replaced back in service (the slot must be off).
#[utoipa::path(post, path = "/v1/slots/{slot}/rollback", tag = "slots",
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 202, body = Operation), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn rollback(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
) -> Result<(StatusCode, Json<Operation>), ApiError> {
    let row = slot_for(&ctl, &caller, &slot).await?;
    Ok(accepted(ctl.rollback(&row, &caller.by()).await?))
}

/// Ends the hosted Pi: its root is deleted and the slot freed (the slot must be off).
#[utoipa::path(delete, path = "/v1/slots/{slot}", tag = "slots",
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 202, body = Operation), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn decommission(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
) -> Result<(StatusCode, Json<Operation>), ApiError> {
    let row = slot_for(&ctl, &caller, &slot).await?;
    Ok(accepted(ctl.decommission(&row, &caller.by()).await?))
}

/// Accepts the board the site's policy held in the slot (admins only): it becomes
/// the slot's board, in the store and for the netboot services, and boots.
#[utoipa::path(post, path = "/v1/slots/{slot}/board/accept", tag = "slots",
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 200, body = Slot), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn accept_board(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
) -> Result<Json<Slot>, ApiError> {
    caller.admin()?;
    let row = slot_for(&ctl, &caller, &slot).await?;
    let row = ctl.accept_board(&row, &caller.by()).await?;
    Ok(Json(Slot::new(&ctl, row)))
}

/// A long operation's progress.
#[utoipa::path(get, path = "/v1/operations/{id}", tag = "operations",
    params(("id" = String, Path)),
    responses((status = 200, body = Operation), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn operation(
    State(ctl): Ctl,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Operation>, ApiError> {
    let op = ctl
        .store
        .op(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no operation {id}")))?;
    match caller.owner() {
        Some(me) if op.owner.as_deref() != Some(me) => {
            Err(ApiError::not_found(format!("no operation {id}")))
        }
        _ => Ok(Json(op)),
    }
}

/// Which events a caller reads: a customer only those of their own tenancies
/// (and of the named slot, which must be theirs now), without who caused them;
/// staff every one.
struct EventScope {
    slots: Option<Vec<String>>,
    owner: Option<String>,
    /// The caller's token, checked again before each event streamed.
    token: String,
}

impl EventScope {
    async fn of(
        ctl: &Controller,
        caller: &Caller,
        only: Option<&str>,
    ) -> Result<EventScope, ApiError> {
        let slots = match only {
            Some(slot) => Some(vec![slot_for(ctl, caller, slot).await?.key]),
            None => None,
        };
        Ok(EventScope {
            slots,
            owner: caller.owner().map(str::to_string),
            token: caller.0.id.clone(),
        })
    }

    async fn read(
        &self,
        ctl: &Controller,
        page: Page,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let mut rows = ctl
            .store
            .events_of(page, limit, self.slots.as_deref(), self.owner.as_deref())
            .await?;
        for r in &mut rows {
            self.shape(r);
        }
        Ok(rows)
    }

    /// Whether the caller may read `e`.
    fn sees(&self, e: &EventRow) -> bool {
        self.owner
            .as_deref()
            .is_none_or(|me| e.owner.as_deref() == Some(me))
            && self
                .slots
                .as_ref()
                .is_none_or(|s| e.slot.as_ref().is_some_and(|k| s.contains(k)))
    }

    /// What the caller reads of an event: customers never see who caused it.
    fn shape(&self, e: &mut EventRow) {
        if self.owner.is_some() {
            e.actor = None;
        }
    }
}

/// Events: the newest first, older pages with `before` (the last id of a page);
/// or, with `after`, oldest first from there (to follow).
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventsQuery),
    responses((status = 200, body = [EventRow]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn events(
    State(ctl): Ctl,
    caller: Caller,
    Params(q): Params<EventsQuery>,
) -> Result<Json<Vec<EventRow>>, ApiError> {
    let scope = EventScope::of(&ctl, &caller, q.slot.as_deref()).await?;
    let page = match (q.after, q.before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give `after` or `before`, not both"));
        }
        (Some(after), None) => Page::After(after.max(0)),
        (None, before) => Page::Before(before.unwrap_or(i64::MAX)),
    };
    Ok(Json(scope.read(&ctl, page, q.limit.unwrap_or(100)).await?))
}

/// Events as they happen, as server-sent events (`id` is the event id: reconnect
/// with `after` set to the last one). Those after `after` are read from the store
/// first, then each is sent as it is committed; without `after`, from now on.
/// The token is checked before every event: a revoked one ends the stream. A
/// token has a bounded number of streams open (429 beyond).
#[utoipa::path(get, path = "/v1/events/stream", tag = "events", params(EventsQuery),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn events_stream(
    State(ctl): Ctl,
    caller: Caller,
    Params(q): Params<EventsQuery>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let scope = EventScope::of(&ctl, &caller, q.slot.as_deref()).await?;
    let held = ctl.streams.open(&scope.token).ok_or_else(|| {
        ApiError::too_many_requests(format!(
            "this token has {} event streams open already",
            ctl.streams.per_token()
        ))
    })?;
    // Subscribed before the backlog is read, so nothing falls between the two.
    let live = ctl.store.mirror().subscribe();
    let after = match q.after {
        Some(after) => after.max(0),
        None => ctl.store.last_event_id().await?,
    };
    let follow = Follow {
        ctl,
        scope,
        live,
        backlog: Vec::new(),
        after,
        boundary: 0,
        caught_up: false,
        _held: held,
    };
    let stream = futures_util::stream::unfold(follow, |mut f| async move {
        let e = f.next().await?;
        let data = serde_json::to_string(&e).unwrap_or_default();
        let item = SseEvent::default()
            .id(f.after.to_string())
            .event(e.kind.clone())
            .data(data);
        Some((Ok(item), f))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One event stream's place: the store's backlog first, then the broadcast.
struct Follow {
    ctl: Arc<Controller>,
    scope: EventScope,
    live: tokio::sync::broadcast::Receiver<Arc<EventRow>>,
    /// Read from the store, newest last.
    backlog: Vec<EventRow>,
    /// The largest id read (or asked to start after).
    after: i64,
    /// The largest id read from the store: the broadcast's older ones were sent.
    boundary: i64,
    /// Whether the store has nothing after `after` the broadcast lacks.
    caught_up: bool,
    _held: super::limits::StreamHeld,
}

impl Follow {
    /// The next event the caller may read; `None` ends the stream (token revoked).
    async fn next(&mut self) -> Option<EventRow> {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let e = if let Some(e) = self.backlog.pop() {
                e
            } else if !self.caught_up {
                match self
                    .scope
                    .read(&self.ctl, Page::After(self.after), 500)
                    .await
                {
                    Ok(rows) if rows.is_empty() => {
                        self.caught_up = true;
                        self.boundary = self.after;
                    }
                    Ok(rows) => {
                        self.after = self.after.max(rows.last().map_or(0, |e| e.id));
                        self.backlog = rows.into_iter().rev().collect();
                    }
                    Err(e) => {
                        tracing::warn!("event stream: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                continue;
            } else {
                let received = tokio::select! {
                    r = self.live.recv() => r,
                    // A quiet stream still ends soon after its token is revoked.
                    () = tokio::time::sleep(Duration::from_secs(1)) => {
                        if !self.ctl.store.token_live(&self.scope.token) {
                            return None;
                        }
                        continue;
                    }
                };
                match received {
                    // Committed before the backlog was read: sent already.
                    Ok(e) if e.id <= self.boundary => continue,
                    Ok(e) => {
                        self.after = self.after.max(e.id);
                        if !self.scope.sees(&e) {
                            continue;
                        }
                        let mut e = EventRow::clone(&e);
                        self.scope.shape(&mut e);
                        e
                    }
                    Err(RecvError::Lagged(n)) => {
                        self.ctl.metrics.lagged("event stream", n);
                        // Too slow for the broadcast: read what was missed.
                        self.caught_up = false;
                        continue;
                    }
                    Err(RecvError::Closed) => return None,
                }
            };
            match self.ctl.store.token_live_at(&self.scope.token, e.at).await {
                Ok(true) => return Some(e),
                Ok(false) => return None,
                Err(err) => {
                    tracing::warn!("event stream: {err}");
                    return None;
                }
            }
        }
    }
}

/// The address plan (admins only).
#[utoipa::path(get, path = "/v1/plan", tag = "site",
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn plan(State(ctl): Ctl, caller: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    caller.admin()?;
    let switches = pirack_core::plan::render::switch::plan_switches(&ctl.site, &ctl.plan);
    Ok(Json(
        serde_json::json!({ "plan": ctl.plan, "switches": switches }),
    ))
}

/// Prometheus metrics (admins only).
#[utoipa::path(get, path = "/metrics", tag = "site",
    responses((status = 200, content_type = "application/openmetrics-text", body = String), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn metrics(
    State(ctl): Ctl,
    caller: Caller,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), ApiError> {
    caller.admin()?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ctl.metrics.render(
            &ctl.store
                .slots(None)
                .await?
                .iter()
                .map(|s| s.state)
                .collect::<Vec<_>>(),
        ),
    ))
}

/// What the slot's PoE port reads now: admin state, detection and power draw (where
/// the switch's profile has a per-port column).
#[utoipa::path(get, path = "/v1/slots/{slot}/port", tag = "slots",
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 200, body = Port), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn port(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
) -> Result<Json<Port>, ApiError> {
    let row = slot_for(&ctl, &caller, &slot).await?;
    let plan = ctl
        .slot_plan(&row.key)
        .ok_or_else(|| ApiError::not_found(format!("no slot {slot}")))?;
    let status = ctl.port_status(plan).await?;
    Ok(Json(Port {
        switch: plan.key.switch.clone(),
        port: plan.key.port,
        admin: status.admin.to_string(),
        detection: status.detection.to_string(),
        draw_mw: status.draw_mw,
    }))
}

/// A virtual slot's serial console, its last 64 KiB (every boot is appended, with
/// pirack's own lines for the firmware stage and QEMU's start).
#[utoipa::path(get, path = "/v1/slots/{slot}/console", tag = "slots",
    params(("slot" = String, Path, description = "position or switch/port")),
    responses((status = 200, content_type = "text/plain", body = String), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn console(
    State(ctl): Ctl,
    caller: Caller,
    Path(slot): Path<String>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), ApiError> {
    let row = slot_for(&ctl, &caller, &slot).await?;
    let log = ctl
        .slot_plan(&row.key)
        .and_then(|p| ctl.drivers.of(p).ok()?.console(p))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "slot {slot} is a Pi 3: its console is its UART, not kept by pirack"
            ))
        })?;
    let read = tokio::task::spawn_blocking(move || crate::power::tail(&log, 64 * 1024))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let text = match read {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(ApiError::internal(e.to_string())),
    };
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        text,
    ))
}

/// Who the token belongs to, and what it may see.
#[utoipa::path(get, path = "/v1/whoami", tag = "site",
    responses((status = 200, body = Whoami), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn whoami(caller: Caller) -> Json<Whoami> {
    Json(Whoami {
        id: caller.0.id.clone(),
        name: caller.0.name.clone(),
        scope: if caller.owner().is_some() {
            "customer"
        } else {
            "admin"
        }
        .into(),
        owner: caller.owner().map(str::to_string),
    })
}

/// The rack view: one page, its assets inside the binary (no CDN), data from the
/// API with the viewer's own token.
pub async fn rack() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_SECURITY_POLICY,
            super::guard::rack_csp(),
        )],
        axum::response::Html(super::guard::RACK),
    )
}

/// Whether the controller and its store answer.
#[utoipa::path(get, path = "/healthz", tag = "site", responses((status = 200, body = Health), (status = 500, body = ErrorBody)))]
pub async fn healthz(State(ctl): Ctl) -> Result<Json<Health>, ApiError> {
    ctl.store.ping().await?;
    let slots = ctl.store.slots(None).await?.len();
    Ok(Json(Health {
        status: "ok".into(),
        slots,
    }))
}

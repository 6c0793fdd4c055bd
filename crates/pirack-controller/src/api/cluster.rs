//! The controllers sharing this store, for staff: each one's role, whether it
//! serves or stands by and how long since it last said so, the leases (the
//! rack controllers' on their shelves, the region leader's) and the last
//! failovers.

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::routes::Ctl;
use crate::store::cluster::ControllerRow;
use crate::store::lease::{self, Failover};
use crate::store::now_ms;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

/// The store's controllers, leases and failovers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cluster {
    pub controllers: Vec<Member>,
    /// Every lease ever taken, by name; `live` false between a holder's end
    /// and its successor's start.
    pub leases: Vec<Lease>,
    /// The last ten failovers, newest first.
    pub failovers: Vec<Failover>,
}

/// A controller and its lag.
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    #[serde(flatten)]
    pub row: ControllerRow,
    /// Milliseconds since it last said it was there (its state `gone` once
    /// that is longer than a lease lives).
    pub lag_ms: i64,
    /// The leases it holds (`rack:FILESERVER`, `region`).
    pub holds: Vec<String>,
}

/// A lease as it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct Lease {
    /// `rack:FILESERVER` (the fileserver's shelves) or `region` (the leader).
    pub name: String,
    /// The shelves a rack lease holds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shelves: Vec<String>,
    /// `pirack serve (pid 1234 on fs1, since ...)`.
    pub holder: String,
    pub host: String,
    pub pid: i64,
    pub since: i64,
    pub renewed_at: i64,
    pub ttl_ms: i64,
    /// Renewed within its lifetime, by a holder still running.
    pub live: bool,
    /// Raised at each change of holder; the holder's writes are fenced by it.
    pub generation: i64,
    /// Its holder's name in the list of controllers.
    #[serde(skip)]
    holder_id: String,
}

/// Every controller on this store, the leases and the last failovers (staff).
#[utoipa::path(get, path = "/v1/cluster", tag = "cluster",
    responses((status = 200, body = Cluster), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn status(State(ctl): Ctl, caller: Caller) -> Result<Json<Cluster>, ApiError> {
    caller.admin()?;
    let now = now_ms();
    let leases: Vec<Lease> = ctl
        .store
        .leases()
        .await?
        .into_iter()
        .filter(|l| l.generation > 0)
        .map(|l| Lease {
            shelves: (ctl.site.shelves.iter())
                .filter(|s| {
                    lease::fileserver_of(&l.name) == Some(&ctl.site.fileservers[s.fileserver].name)
                })
                .map(|s| s.name.clone())
                .collect(),
            live: l.live(now),
            holder: l.to_string(),
            holder_id: l.holder_id(),
            name: l.name.clone(),
            host: l.host.clone(),
            pid: l.pid,
            since: l.since,
            renewed_at: l.renewed_at,
            ttl_ms: l.ttl_ms,
            generation: l.generation,
        })
        .collect();
    // One silent for longer than a lease lives is gone (killed, or cut off).
    let ttl = leases
        .iter()
        .map(|l| l.ttl_ms)
        .max()
        .unwrap_or(lease::DEFAULT_TTL_MS);
    let controllers = ctl
        .store
        .controllers()
        .await?
        .into_iter()
        .map(|mut row| {
            let lag_ms = now - row.seen_at;
            let holds: Vec<String> = leases
                .iter()
                .filter(|l| l.live && l.holder_id == row.id)
                .map(|l| l.name.clone())
                .collect();
            if holds.is_empty() && lag_ms > ttl {
                row.state = "gone".into();
            }
            Member { row, lag_ms, holds }
        })
        .collect();
    Ok(Json(Cluster {
        controllers,
        leases,
        failovers: ctl.store.failovers(10).await?,
    }))
}

//! The controllers sharing this store, for staff: who serves and who stands
//! by, how long since each last said so, the store's lease and its last
//! failovers.

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::routes::Ctl;
use crate::store::cluster::ControllerRow;
use crate::store::lease::{self, DEFAULT_TTL_MS, Failover};
use crate::store::now_ms;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

/// The store's controllers, lease and failovers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cluster {
    pub controllers: Vec<Member>,
    /// The live holder of the store's lease; none between a holder's end and
    /// its successor's start.
    pub lease: Option<Lease>,
    /// The last ten failovers, newest first.
    pub failovers: Vec<Failover>,
}

/// A controller and its lag.
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    #[serde(flatten)]
    pub row: ControllerRow,
    /// Milliseconds since it last said it was there (its state `gone` once
    /// that is longer than the lease lives).
    pub lag_ms: i64,
    /// It holds the store's lease.
    pub holder: bool,
}

/// The store's lease as it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct Lease {
    /// `pirack serve (pid 1234 on fs1, since ...)`.
    pub holder: String,
    pub host: String,
    pub pid: i64,
    pub since: i64,
    pub renewed_at: i64,
    pub ttl_ms: i64,
    /// Raised at each change of holder; the holder's writes are fenced by it.
    pub generation: i64,
}

/// Every controller on this store, the lease and the last failovers (staff).
#[utoipa::path(get, path = "/v1/cluster", tag = "cluster",
    responses((status = 200, body = Cluster), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn status(State(ctl): Ctl, caller: Caller) -> Result<Json<Cluster>, ApiError> {
    caller.admin()?;
    let now = now_ms();
    let lease = ctl.store.lease().await?;
    let holder = lease.as_ref().map(lease::Lease::holder_id);
    // One silent for longer than a lease lives is gone (killed, or cut off).
    let ttl = lease.as_ref().map_or(DEFAULT_TTL_MS, |l| l.ttl_ms);
    let controllers = ctl
        .store
        .controllers()
        .await?
        .into_iter()
        .map(|mut row| {
            let lag_ms = now - row.seen_at;
            let holder = holder.as_deref() == Some(row.id.as_str());
            if !holder && lag_ms > ttl {
                row.state = "gone".into();
            }
            Member {
                row,
                lag_ms,
                holder,
            }
        })
        .collect();
    Ok(Json(Cluster {
        controllers,
        lease: lease.map(|l| Lease {
            holder: l.to_string(),
            host: l.host,
            pid: l.pid,
            since: l.since,
            renewed_at: l.renewed_at,
            ttl_ms: l.ttl_ms,
            generation: l.generation,
        }),
        failovers: ctl.store.failovers(10).await?,
    }))
}

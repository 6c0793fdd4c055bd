//! Monitoring's records: alert routes kept through the API, alerts (one per
//! fault) with every delivery made for them, and maintenance windows.

use super::{Store, StoreError, now_ms, random_hex};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// A slot an alert covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Covered {
    pub key: String,
    pub position: String,
    pub owner: Option<String>,
    /// What failed on it.
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AlertRow {
    pub id: i64,
    /// `slot:KEY`, or a cause grouping its slots (`switch:NAME`).
    pub cause: String,
    pub summary: String,
    pub slots: Vec<Covered>,
    pub opened_at: i64,
    pub resolved_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub repeats: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteRow {
    pub id: String,
    /// `None`: the staff's.
    pub owner: Option<String>,
    pub uri: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeliveryRow {
    pub alert_id: i64,
    /// `site:N` for the inventory's routes, else the route's id.
    pub route: String,
    pub owner: Option<String>,
    /// fire, repeat or resolve.
    pub notice: String,
    /// sent, failed or limited.
    pub status: String,
    pub attempts: i64,
    pub detail: String,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WindowRow {
    pub id: String,
    /// `site`, `shelf:NAME`, `switch:NAME` or `slot:KEY`.
    pub scope: String,
    /// Set when a customer made it (for its own slot).
    pub owner: Option<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: String,
}

fn alert(r: &sqlx::any::AnyRow) -> Result<AlertRow, StoreError> {
    let slots: String = r.try_get("slots")?;
    Ok(AlertRow {
        id: r.try_get("id")?,
        cause: r.try_get("cause")?,
        summary: r.try_get("summary")?,
        slots: serde_json::from_str(&slots)
            .map_err(|e| StoreError::Invalid(format!("an alert's slots: {e}")))?,
        opened_at: r.try_get("opened_at")?,
        resolved_at: r.try_get("resolved_at")?,
        sent_at: r.try_get("sent_at")?,
        repeats: r.try_get("repeats")?,
    })
}

fn slots_json(slots: &[Covered]) -> Result<String, StoreError> {
    serde_json::to_string(slots).map_err(|e| StoreError::Invalid(format!("an alert's slots: {e}")))
}

/// An alert's columns, for `concat!` (queries stay static strings).
macro_rules! columns {
    () => {
        "id, cause, summary, slots, opened_at, resolved_at, sent_at, repeats"
    };
}

impl Store {
    /// Alerts not yet resolved.
    pub async fn open_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM alerts WHERE resolved_at IS NULL ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert).collect()
    }

    /// The latest `limit` alerts, newest first; `owner`'s only: those covering
    /// one of its slots (the others' slots left out).
    pub async fn alerts(
        &self,
        owner: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM alerts ORDER BY id DESC LIMIT $1"
        ))
        .bind(if owner.is_some() { limit * 20 } else { limit })
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let a = alert(r)?;
            match owner {
                None => out.push(a),
                Some(o) => {
                    if let Some(mine) = for_owner(&a, o) {
                        out.push(mine);
                    }
                }
            }
            if out.len() as i64 >= limit {
                break;
            }
        }
        Ok(out)
    }

    pub async fn alert(&self, id: i64) -> Result<Option<AlertRow>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", columns!(), " FROM alerts WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(alert).transpose()
    }

    /// Opens an alert; its id.
    pub async fn open_alert(
        &self,
        cause: &str,
        summary: &str,
        slots: &[Covered],
    ) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO alerts (cause, summary, slots, opened_at, repeats) \
             VALUES ($1, $2, $3, $4, 0) RETURNING id",
        )
        .bind(cause)
        .bind(summary)
        .bind(slots_json(slots)?)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        tx.commit().await?;
        Ok(id)
    }

    /// Changes what an open alert covers.
    pub async fn update_alert(
        &self,
        id: i64,
        summary: &str,
        slots: &[Covered],
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE alerts SET summary = $2, slots = $3 WHERE id = $1")
            .bind(id)
            .bind(summary)
            .bind(slots_json(slots)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that an alert was sent (`repeat`: again) at `at`.
    pub async fn alert_sent(&self, id: i64, at: i64, repeat: bool) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE alerts SET sent_at = $2, repeats = repeats + $3 WHERE id = $1")
            .bind(id)
            .bind(at)
            .bind(i64::from(repeat))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn resolve_alert(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE alerts SET resolved_at = $2 WHERE id = $1 AND resolved_at IS NULL")
            .bind(id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn record_delivery(&self, d: &DeliveryRow) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO deliveries (alert_id, route, owner, notice, status, attempts, detail, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(d.alert_id)
        .bind(&d.route)
        .bind(&d.owner)
        .bind(&d.notice)
        .bind(&d.status)
        .bind(d.attempts)
        .bind(&d.detail)
        .bind(d.at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An alert's deliveries, oldest first; `owner`'s only when given.
    pub async fn deliveries(
        &self,
        alert_id: i64,
        owner: Option<&str>,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT alert_id, route, owner, notice, status, attempts, detail, at FROM deliveries \
             WHERE alert_id = $1 AND ($2 IS NULL OR owner = $2) ORDER BY id",
        )
        .bind(alert_id)
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryRow {
                    alert_id: r.try_get("alert_id")?,
                    route: r.try_get("route")?,
                    owner: r.try_get("owner")?,
                    notice: r.try_get("notice")?,
                    status: r.try_get("status")?,
                    attempts: r.try_get("attempts")?,
                    detail: r.try_get("detail")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// Routes kept through the API: every one, or `owner`'s (`Some(None)`: the staff's).
    pub async fn alert_routes(&self) -> Result<Vec<RouteRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, owner, uri, created_at FROM alert_routes ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RouteRow {
                    id: r.try_get("id")?,
                    owner: r.try_get("owner")?,
                    uri: r.try_get("uri")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn add_alert_route(
        &self,
        owner: Option<&str>,
        uri: &str,
    ) -> Result<RouteRow, StoreError> {
        let row = RouteRow {
            id: format!(
                "rt-{}",
                random_hex(6).map_err(|e| StoreError::Invalid(e.to_string()))?
            ),
            owner: owner.map(str::to_string),
            uri: uri.into(),
            created_at: now_ms(),
        };
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO alert_routes (id, owner, uri, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&row.id)
        .bind(&row.owner)
        .bind(&row.uri)
        .bind(row.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Deletes route `id` if it is `owner`'s (any, for `None`); whether it was.
    pub async fn delete_alert_route(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done =
            sqlx::query("DELETE FROM alert_routes WHERE id = $1 AND ($2 IS NULL OR owner = $2)")
                .bind(id)
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(done > 0)
    }

    /// Windows that have not ended by `now`, earliest start first.
    pub async fn maintenance(&self, now: i64) -> Result<Vec<WindowRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, scope, owner, starts_at, ends_at, reason FROM maintenance \
             WHERE ends_at > $1 ORDER BY starts_at, id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WindowRow {
                    id: r.try_get("id")?,
                    scope: r.try_get("scope")?,
                    owner: r.try_get("owner")?,
                    starts_at: r.try_get("starts_at")?,
                    ends_at: r.try_get("ends_at")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    pub async fn add_maintenance(&self, w: &WindowRow) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO maintenance (id, scope, owner, starts_at, ends_at, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&w.id)
        .bind(&w.scope)
        .bind(&w.owner)
        .bind(w.starts_at)
        .bind(w.ends_at)
        .bind(&w.reason)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends window `id` now if it is `owner`'s (any, for `None`); whether it was.
    pub async fn end_maintenance(&self, id: &str, owner: Option<&str>) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE maintenance SET ends_at = $3 WHERE id = $1 AND ($2 IS NULL OR owner = $2) \
             AND ends_at > $3",
        )
        .bind(id)
        .bind(owner)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done > 0)
    }
}

/// `a` as `owner` may see it: only its own slots, `None` when it has none there.
pub fn for_owner(a: &AlertRow, owner: &str) -> Option<AlertRow> {
    let slots: Vec<Covered> = a
        .slots
        .iter()
        .filter(|s| s.owner.as_deref() == Some(owner))
        .cloned()
        .collect();
    (!slots.is_empty()).then(|| AlertRow { slots, ..a.clone() })
}

//! The controllers on this store: each says every few seconds that it is
//! there, its role, whether it serves or stands by, and where its API listens, so `pirack cluster status` and the API can show them with
//! their lag.

use super::{Store, StoreError, now_ms};
use sqlx::Row;

/// A controller as it last said.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ControllerRow {
    /// `host:pid`.
    pub id: String,
    pub host: String,
    pub pid: i64,
    /// `rack`, `region` or `all`.
    pub role: String,
    /// `serving` or `standby`.
    pub state: String,
    /// Where its API listens.
    pub api: String,
    pub started_at: i64,
    pub seen_at: i64,
}

impl Store {
    /// Records `c` as it is now (`seen_at` now), and forgets controllers
    /// silent for a day (killed ones never say goodbye).
    pub async fn controller_seen(&self, c: &ControllerRow) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM controllers WHERE seen_at < $1")
            .bind(now_ms() - 86_400_000)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO controllers (id, host, pid, role, state, api, started_at, seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET role = excluded.role, state = excluded.state, \
             api = excluded.api, seen_at = excluded.seen_at",
        )
        .bind(&c.id)
        .bind(&c.host)
        .bind(c.pid)
        .bind(&c.role)
        .bind(&c.state)
        .bind(&c.api)
        .bind(c.started_at)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes controller `id` (a clean stop).
    pub async fn controller_gone(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM controllers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every controller that said it was there, by id.
    pub async fn controllers(&self) -> Result<Vec<ControllerRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, host, pid, role, state, api, started_at, seen_at FROM controllers \
             ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ControllerRow {
                    id: r.try_get("id")?,
                    host: r.try_get("host")?,
                    pid: r.try_get("pid")?,
                    role: r.try_get("role")?,
                    state: r.try_get("state")?,
                    api: r.try_get("api")?,
                    started_at: r.try_get("started_at")?,
                    seen_at: r.try_get("seen_at")?,
                })
            })
            .collect()
    }
}

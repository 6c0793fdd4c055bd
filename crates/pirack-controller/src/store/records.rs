//! What was done to slots beyond their state: the power operations sent to their
//! ports, the images used, and the image each root was built from (and the one kept
//! for rollback).

use super::{Store, StoreError, now_ms};
use serde::Serialize;
use sqlx::Row;

/// One power operation on a slot's port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PowerOp {
    pub slot: String,
    pub action: String,
    pub cause: String,
    pub ok: bool,
    pub detail: String,
    pub started_at: i64,
    pub finished_at: i64,
}

impl Store {
    pub async fn record_power(&self, op: &PowerOp) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO power_ops (slot_key, action, cause, ok, detail, started_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&op.slot)
        .bind(&op.action)
        .bind(&op.cause)
        .bind(i64::from(op.ok))
        .bind(&op.detail)
        .bind(op.started_at)
        .bind(op.finished_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A slot's power operations, oldest first.
    pub async fn power_ops(&self, slot: &str) -> Result<Vec<PowerOp>, StoreError> {
        let rows = sqlx::query(
            "SELECT slot_key, action, cause, ok, detail, started_at, finished_at FROM power_ops \
             WHERE slot_key = $1 ORDER BY id",
        )
        .bind(slot)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PowerOp {
                    slot: r.try_get("slot_key")?,
                    action: r.try_get("action")?,
                    cause: r.try_get("cause")?,
                    ok: r.try_get::<i64, _>("ok")? != 0,
                    detail: r.try_get("detail")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                })
            })
            .collect()
    }

    /// Notes an image in use (its manifest as JSON), once.
    pub async fn record_image(
        &self,
        id: &str,
        name: &str,
        version: &str,
        manifest: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO images (id, name, version, manifest, imported_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(version)
        .bind(manifest)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The image ids the store knows.
    pub async fn images(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM images ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    /// A slot's root is now from `image`, the one before kept as `previous`.
    pub async fn record_root(
        &self,
        slot: &str,
        image: &str,
        previous: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO roots (slot_key, image, previous, built_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (slot_key) DO UPDATE SET image = excluded.image, previous = excluded.previous, \
             built_at = excluded.built_at",
        )
        .bind(slot)
        .bind(image)
        .bind(previous)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A slot's root record: (image, previous image).
    pub async fn root(&self, slot: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT image, previous FROM roots WHERE slot_key = $1")
                .bind(slot)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// A deleted root leaves no record.
    pub async fn forget_root(&self, slot: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM roots WHERE slot_key = $1")
            .bind(slot)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes events, ended operations and power records older than `before`
    /// (Unix ms); how many of each.
    pub async fn prune(&self, before: i64) -> Result<Pruned, StoreError> {
        let mut tx = self.write().await?;
        let events = sqlx::query("DELETE FROM events WHERE at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let operations =
            sqlx::query("DELETE FROM operations WHERE updated_at < $1 AND status <> 'running'")
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let power = sqlx::query("DELETE FROM power_ops WHERE finished_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(Pruned {
            events,
            operations,
            power,
        })
    }
}

/// What [`Store::prune`] deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    pub events: u64,
    pub operations: u64,
    pub power: u64,
}

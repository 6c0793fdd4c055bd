//! Zones granted to owners through the API (the inventory's `owners[].zones`
//! aside): each zone held by one owner.

use super::{Store, StoreError, now_ms};
use sqlx::Row;

impl Store {
    /// Every granted zone and its owner, by zone.
    pub async fn zone_grants(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT zone, owner FROM zone_grants ORDER BY zone")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("zone")?, r.try_get("owner")?)))
            .collect()
    }

    /// Grants `zone` to `owner`; the owner already holding it, if another does.
    pub async fn grant_zone(&self, zone: &str, owner: &str) -> Result<Option<String>, StoreError> {
        let mut tx = self.write().await?;
        let holder: Option<String> =
            sqlx::query_scalar("SELECT owner FROM zone_grants WHERE zone = $1")
                .bind(zone)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(h) = holder.filter(|h| h != owner) {
            return Ok(Some(h));
        }
        sqlx::query(
            "INSERT INTO zone_grants (zone, owner, granted_at) VALUES ($1, $2, $3) \
             ON CONFLICT (zone) DO NOTHING",
        )
        .bind(zone)
        .bind(owner)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(None)
    }

    /// Takes a granted zone back unless its owner still has names in it.
    pub async fn revoke_zone(&self, zone: &str) -> Result<Revoked, StoreError> {
        let mut tx = self.write().await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT owner FROM zone_grants WHERE zone = $1")
                .bind(zone)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(owner) = owner else {
            return Ok(Revoked::NotGranted);
        };
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM dns_names WHERE owner = $1")
            .bind(&owner)
            .fetch_all(&mut *tx)
            .await?;
        let inside: Vec<&String> = names
            .iter()
            .filter(|n| pirack_core::dns::names::in_zone(n, zone))
            .collect();
        if let Some(first) = inside.first() {
            return Ok(Revoked::Names(format!(
                "{owner} still has {} name(s) in {zone} ({first}): remove them first",
                inside.len()
            )));
        }
        sqlx::query("DELETE FROM zone_grants WHERE zone = $1")
            .bind(zone)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Revoked::Done)
    }
}

/// What [`Store::revoke_zone`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Revoked {
    Done,
    NotGranted,
    /// Names remain in the zone (which): nothing changed.
    Names(String),
}

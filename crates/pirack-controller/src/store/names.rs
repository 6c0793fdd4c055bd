//! Names customers manage in their own zones, and the records each should hold;
//! the DNS publisher writes them like the slots' names.

use super::{Store, StoreError, now_ms};
use pirack_core::dns::Record;
use serde::Serialize;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameRow {
    pub name: String,
    pub owner: String,
    pub records: Vec<Record>,
    pub updated_at: i64,
}

impl Store {
    /// Every name, or `owner`'s.
    pub async fn names(&self, owner: Option<&str>) -> Result<Vec<NameRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, owner, records, updated_at FROM dns_names \
             WHERE ($1 IS NULL OR owner = $1) ORDER BY name",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let records: String = r.try_get("records")?;
                Ok(NameRow {
                    name: r.try_get("name")?,
                    owner: r.try_get("owner")?,
                    records: serde_json::from_str(&records)
                        .map_err(|e| StoreError::Invalid(format!("records: {e}")))?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Sets `name`'s records for `owner`: the row written, or `None` (and nothing
    /// written) when the name is another owner's.
    pub async fn put_name(
        &self,
        name: &str,
        owner: &str,
        records: &[Record],
    ) -> Result<Option<NameRow>, StoreError> {
        let json = serde_json::to_string(records)
            .map_err(|e| StoreError::Invalid(format!("records: {e}")))?;
        let mut tx = self.write().await?;
        let holder: Option<String> =
            sqlx::query_scalar("SELECT owner FROM dns_names WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        if holder.as_deref().is_some_and(|h| h != owner) {
            return Ok(None);
        }
        let updated_at = now_ms();
        sqlx::query(
            "INSERT INTO dns_names (name, owner, records, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET records = $3, updated_at = $4",
        )
        .bind(name)
        .bind(owner)
        .bind(json)
        .bind(updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(NameRow {
            name: name.to_string(),
            owner: owner.to_string(),
            records: records.to_vec(),
            updated_at,
        }))
    }

    /// Deletes `name` if it is `owner`'s (any owner's when `None`); whether it was.
    pub async fn delete_name(&self, name: &str, owner: Option<&str>) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done =
            sqlx::query("DELETE FROM dns_names WHERE name = $1 AND ($2 IS NULL OR owner = $2)")
                .bind(name)
                .bind(owner)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}

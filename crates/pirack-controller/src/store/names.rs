//! Names customers manage in their own zones, and the records each should hold;
//! the DNS publisher writes them like the slots' names. An ANAME name also keeps
//! its target and what pirack last made of it; its records are the addresses
//! last resolved.

use super::{Store, StoreError, now_ms};
use pirack_core::dns::aname::Status;
use pirack_core::dns::{CNAME, Record};
use serde::Serialize;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameRow {
    pub name: String,
    pub owner: String,
    pub records: Vec<Record>,
    pub updated_at: i64,
    /// The name follows a target (ANAME).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aname: Option<Status>,
}

/// What [`Store::edit_name`] did.
#[derive(Debug)]
pub enum Edited {
    Row(Box<NameRow>),
    /// Nothing was left: the name is gone.
    Deleted,
    /// The name is another owner's: nothing changed.
    Theirs,
    /// The name follows a target: its records are pirack's to write.
    Aname,
    /// The result would hold too many records, or a CNAME beside others.
    TooMany,
}

fn json<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("{what}: {e}")))
}

impl Store {
    /// Every name, or `owner`'s.
    pub async fn names(&self, owner: Option<&str>) -> Result<Vec<NameRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, owner, records, updated_at, aname FROM dns_names \
             WHERE ($1 IS NULL OR owner = $1) ORDER BY name",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let records: String = r.try_get("records")?;
                let aname: Option<String> = r.try_get("aname")?;
                Ok(NameRow {
                    name: r.try_get("name")?,
                    owner: r.try_get("owner")?,
                    records: serde_json::from_str(&records)
                        .map_err(|e| StoreError::Invalid(format!("records: {e}")))?,
                    updated_at: r.try_get("updated_at")?,
                    aname: aname
                        .map(|a| serde_json::from_str(&a))
                        .transpose()
                        .map_err(|e| StoreError::Invalid(format!("aname: {e}")))?,
                })
            })
            .collect()
    }

    /// Sets `name`'s records (and, for an ANAME, its target's status) for
    /// `owner`: the row written, or `None` (and nothing written) when the name
    /// is another owner's.
    pub async fn put_name(
        &self,
        name: &str,
        owner: &str,
        records: &[Record],
        aname: Option<&Status>,
    ) -> Result<Option<NameRow>, StoreError> {
        let records_json = json("records", &records)?;
        let aname_json = aname.map(|a| json("aname", a)).transpose()?;
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
            "INSERT INTO dns_names (name, owner, records, updated_at, target, aname) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE \
             SET records = $3, updated_at = $4, target = $5, aname = $6",
        )
        .bind(name)
        .bind(owner)
        .bind(records_json)
        .bind(updated_at)
        .bind(aname.map(|a| a.target.clone()))
        .bind(aname_json)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(NameRow {
            name: name.to_string(),
            owner: owner.to_string(),
            records: records.to_vec(),
            updated_at,
            aname: aname.cloned(),
        }))
    }

    /// Adds records to `name` and removes others (matched by type and data) in
    /// one step, creating the name or deleting it when nothing is left.
    pub async fn edit_name(
        &self,
        name: &str,
        owner: &str,
        add: &[Record],
        remove: &[Record],
        max: usize,
    ) -> Result<Edited, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT owner, records, target FROM dns_names WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let mut records: Vec<Record> = Vec::new();
        if let Some(r) = row {
            let holder: String = r.try_get("owner")?;
            let target: Option<String> = r.try_get("target")?;
            if holder != owner {
                return Ok(Edited::Theirs);
            }
            if target.is_some() {
                return Ok(Edited::Aname);
            }
            let text: String = r.try_get("records")?;
            records = serde_json::from_str(&text)
                .map_err(|e| StoreError::Invalid(format!("records: {e}")))?;
        }
        records.retain(|r| !remove.iter().any(|x| x.data == r.data));
        for a in add {
            records.retain(|r| r.data != a.data);
            records.push(a.clone());
        }
        let cname = records.iter().any(|r| r.data.rtype() == CNAME);
        if records.len() > max || (cname && records.len() > 1) {
            return Ok(Edited::TooMany);
        }
        if records.is_empty() {
            sqlx::query("DELETE FROM dns_names WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Edited::Deleted);
        }
        let updated_at = now_ms();
        sqlx::query(
            "INSERT INTO dns_names (name, owner, records, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET records = $3, updated_at = $4",
        )
        .bind(name)
        .bind(owner)
        .bind(json("records", &records)?)
        .bind(updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Edited::Row(Box::new(NameRow {
            name: name.to_string(),
            owner: owner.to_string(),
            records,
            updated_at,
            aname: None,
        })))
    }

    /// Records a fresh resolution of an ANAME name: written only if the name
    /// still follows `status.target` (a customer may have changed it meanwhile);
    /// whether it was. The name counts as changed only when its records did.
    pub async fn refresh_aname(
        &self,
        name: &str,
        records: &[Record],
        status: &Status,
    ) -> Result<bool, StoreError> {
        let records_json = json("records", &records)?;
        let aname_json = json("aname", status)?;
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE dns_names SET aname = $2, \
             updated_at = CASE WHEN records = $1 THEN updated_at ELSE $3 END, records = $1 \
             WHERE name = $4 AND target = $5",
        )
        .bind(records_json)
        .bind(aname_json)
        .bind(now_ms())
        .bind(name)
        .bind(&status.target)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
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

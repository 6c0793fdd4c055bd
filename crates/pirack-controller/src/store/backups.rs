//! Each slot's backups as the controller last saw them at each target, and
//! each owner's repositories' last check: what the rack view, the API and the
//! freshness alerts read without asking restic.

use super::{Store, StoreError};
use serde::Serialize;
use sqlx::Row;

/// A slot's backups at one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BackupStatus {
    pub slot: String,
    pub target: String,
    /// Whose they are: a slot handed to another owner starts afresh.
    pub owner: Option<String>,
    pub last_ok_at: Option<i64>,
    pub last_snapshot: Option<String>,
    pub last_attempt_at: i64,
    /// Why the last try failed (restic's words); `None` when it worked.
    pub last_error: Option<String>,
    pub files: i64,
    pub data_added: i64,
}

/// How one try went: the snapshot, its files and the bytes it added; or why not.
pub type Tried<'a> = Result<(&'a str, u64, u64), &'a str>;

/// An owner's repository at a target: its last prune and check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RepoCheck {
    pub owner: String,
    pub target: String,
    pub checked_at: i64,
    pub check_error: Option<String>,
}

fn status(r: &sqlx::any::AnyRow) -> Result<BackupStatus, StoreError> {
    Ok(BackupStatus {
        slot: r.try_get("slot_key")?,
        target: r.try_get("target")?,
        owner: r.try_get("owner")?,
        last_ok_at: r.try_get("last_ok_at")?,
        last_snapshot: r.try_get("last_snapshot")?,
        last_attempt_at: r.try_get("last_attempt_at")?,
        last_error: r.try_get("last_error")?,
        files: r.try_get("files")?,
        data_added: r.try_get("data_added")?,
    })
}

const COLUMNS: &str = "slot_key, target, owner, last_ok_at, last_snapshot, last_attempt_at, \
                       last_error, files, data_added";

impl Store {
    /// Every slot's status at every target.
    pub async fn backup_statuses(&self) -> Result<Vec<BackupStatus>, StoreError> {
        let q = format!("SELECT {COLUMNS} FROM backup_status ORDER BY slot_key, target");
        let rows = sqlx::query(sqlx::AssertSqlSafe(q))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(status).collect()
    }

    /// Records a try of `slot`'s backup for `owner` at `target`; a failure
    /// keeps the last good one (of the same owner).
    pub async fn record_backup(
        &self,
        slot: &str,
        target: &str,
        owner: Option<&str>,
        at: i64,
        tried: Tried<'_>,
    ) -> Result<BackupStatus, StoreError> {
        let mut tx = self.write().await?;
        let q = format!("SELECT {COLUMNS} FROM backup_status WHERE slot_key = $1 AND target = $2");
        let old = match sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(slot)
            .bind(target)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => Some(status(&r)?).filter(|s| s.owner.as_deref() == owner),
            None => None,
        };
        let mut new = old.unwrap_or(BackupStatus {
            slot: slot.to_string(),
            target: target.to_string(),
            owner: owner.map(str::to_string),
            last_ok_at: None,
            last_snapshot: None,
            last_attempt_at: at,
            last_error: None,
            files: 0,
            data_added: 0,
        });
        new.last_attempt_at = at;
        match tried {
            Ok((snapshot, files, added)) => {
                new.last_ok_at = Some(at);
                new.last_snapshot = Some(snapshot.to_string());
                new.last_error = None;
                new.files = files as i64;
                new.data_added = added as i64;
            }
            Err(why) => new.last_error = Some(why.to_string()),
        }
        sqlx::query(
            "INSERT INTO backup_status (slot_key, target, owner, last_ok_at, last_snapshot, \
             last_attempt_at, last_error, files, data_added) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (slot_key, target) DO UPDATE SET owner = $3, last_ok_at = $4, \
             last_snapshot = $5, last_attempt_at = $6, last_error = $7, files = $8, data_added = $9",
        )
        .bind(&new.slot)
        .bind(&new.target)
        .bind(&new.owner)
        .bind(new.last_ok_at)
        .bind(&new.last_snapshot)
        .bind(new.last_attempt_at)
        .bind(&new.last_error)
        .bind(new.files)
        .bind(new.data_added)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Every repository's last check.
    pub async fn repo_checks(&self) -> Result<Vec<RepoCheck>, StoreError> {
        let rows = sqlx::query(
            "SELECT owner, target, checked_at, check_error FROM backup_repos ORDER BY owner, target",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RepoCheck {
                    owner: r.try_get("owner")?,
                    target: r.try_get("target")?,
                    checked_at: r.try_get("checked_at")?,
                    check_error: r.try_get("check_error")?,
                })
            })
            .collect()
    }

    pub async fn record_check(&self, c: &RepoCheck) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO backup_repos (owner, target, checked_at, check_error) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (owner, target) DO UPDATE SET checked_at = $3, check_error = $4",
        )
        .bind(&c.owner)
        .bind(&c.target)
        .bind(c.checked_at)
        .bind(&c.check_error)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Notes what operation `id` was asked, for a restart to ask again.
    pub async fn set_op_request(&self, id: &str, request: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE operations SET request = $1 WHERE id = $2")
            .bind(request)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn op_request(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT request FROM operations WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }
}

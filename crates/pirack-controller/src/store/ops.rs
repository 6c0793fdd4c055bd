//! Long operations (provision, reimage, power): the API answers at once with an id,
//! and the caller polls it until it ends.

use super::{Store, StoreError, now_ms};
use serde::Serialize;
use sqlx::Row;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OpStatus {
    Running,
    Succeeded,
    Failed,
}

impl OpStatus {
    fn as_str(self) -> &'static str {
        match self {
            OpStatus::Running => "running",
            OpStatus::Succeeded => "succeeded",
            OpStatus::Failed => "failed",
        }
    }
}

/// A long operation: poll `GET /v1/operations/{id}` until it is not `running`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Operation {
    pub id: String,
    pub kind: String,
    pub slot: Option<String>,
    pub owner: Option<String>,
    pub status: OpStatus,
    pub detail: String,
    /// Why it failed, as a stable code (`power_failed`, `root_failed`, `interrupted`, ...).
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// What the caller should know but did not stop the operation (an image not
    /// qualified on virtual Pis); in the answer to the request only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// An operation queued for the rack controller, with what it was asked.
#[derive(Debug, Clone)]
pub struct Queued {
    pub op: Operation,
    /// The request as JSON (the cause and actor it records, say).
    pub request: Option<String>,
}

impl Store {
    /// Records operation `id`, run by this controller.
    pub async fn start_op(
        &self,
        id: &str,
        kind: &str,
        slot: Option<&str>,
        owner: Option<&str>,
    ) -> Result<Operation, StoreError> {
        self.insert_op(id, kind, slot, owner, Some(&self.origin), None)
            .await
    }

    /// Records operation `id` for the rack controller to take ([`Store::take_op`])
    /// and run, with its `request` (JSON).
    pub async fn queue_op(
        &self,
        id: &str,
        kind: &str,
        slot: Option<&str>,
        owner: Option<&str>,
        request: &str,
    ) -> Result<Operation, StoreError> {
        self.insert_op(id, kind, slot, owner, None, Some(request))
            .await
    }

    async fn insert_op(
        &self,
        id: &str,
        kind: &str,
        slot: Option<&str>,
        owner: Option<&str>,
        runner: Option<&str>,
        request: Option<&str>,
    ) -> Result<Operation, StoreError> {
        let now = now_ms();
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO operations (id, kind, slot_key, owner, status, detail, created_at, \
             updated_at, runner, request) VALUES ($1, $2, $3, $4, 'running', '', $5, $5, $6, $7)",
        )
        .bind(id)
        .bind(kind)
        .bind(slot)
        .bind(owner)
        .bind(now)
        .bind(runner)
        .bind(request)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.op(id)
            .await?
            .ok_or_else(|| StoreError::Invalid(format!("operation {id} vanished")))
    }

    /// The operations queued and not yet taken, oldest first.
    pub async fn queued_ops(&self) -> Result<Vec<Queued>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, request FROM operations WHERE status = 'running' AND runner IS NULL \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let id: String = r.try_get("id")?;
            if let Some(op) = self.op(&id).await? {
                out.push(Queued {
                    op,
                    request: r.try_get("request")?,
                });
            }
        }
        Ok(out)
    }

    /// Takes queued operation `id` for this controller: false if another
    /// took it first (or it ended).
    pub async fn take_op(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE operations SET runner = $1, updated_at = $2 \
             WHERE id = $3 AND runner IS NULL AND status = 'running'",
        )
        .bind(&*self.origin)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends an operation (or notes progress while it runs), names its slot once
    /// known, and records a failure's code.
    pub async fn update_op(
        &self,
        id: &str,
        status: OpStatus,
        slot: Option<&str>,
        detail: &str,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE operations SET status = $1, detail = $2, updated_at = $3, slot_key = COALESCE($4, slot_key), \
             error = $5 WHERE id = $6",
        )
        .bind(status.as_str())
        .bind(detail)
        .bind(now_ms())
        .bind(slot)
        .bind(error)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn op(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        let r = sqlx::query(
            "SELECT id, kind, slot_key, owner, status, detail, error, created_at, updated_at FROM operations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = r else { return Ok(None) };
        let status: String = r.try_get("status")?;
        Ok(Some(Operation {
            id: r.try_get("id")?,
            kind: r.try_get("kind")?,
            slot: r.try_get("slot_key")?,
            owner: r.try_get("owner")?,
            status: match status.as_str() {
                "running" => OpStatus::Running,
                "succeeded" => OpStatus::Succeeded,
                "failed" => OpStatus::Failed,
                other => {
                    return Err(StoreError::Invalid(format!(
                        "operation with bad status `{other}`"
                    )));
                }
            },
            detail: r.try_get("detail")?,
            error: r.try_get("error")?,
            warnings: Vec::new(),
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        }))
    }

    /// Operations still marked running and taken by a controller (at start:
    /// those a stop cut short); not those still queued.
    pub async fn running_ops(&self) -> Result<Vec<Operation>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM operations WHERE status = 'running' AND runner IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.op(&id).await?);
        }
        Ok(out)
    }

    /// Fails operations a stop left running that will never end on their own
    /// (`interrupted`, those still running of them).
    pub async fn fail_interrupted_ops(&self, interrupted: &[String]) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let mut failed = 0;
        for id in interrupted {
            let done = sqlx::query(
                "UPDATE operations SET status = 'failed', detail = 'interrupted: the controller stopped', \
                 error = 'interrupted', updated_at = $1 WHERE id = $2 AND status = 'running'",
            )
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
            failed += done.rows_affected();
        }
        tx.commit().await?;
        Ok(failed)
    }
}

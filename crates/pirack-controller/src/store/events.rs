//! Events: every transition and observation, with time, slot, board and cause, in
//! the order written; read back in pages after an id (for the API and `--follow`).
//! Each belongs to the slot's tenant of its time: a customer reads the history of
//! their own use of a slot, never a previous tenant's.

use super::{Store, StoreError};
use serde::Serialize;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub at: i64,
    pub slot: Option<String>,
    pub board: Option<String>,
    pub kind: String,
    pub cause: String,
    pub detail: String,
    /// The slot's tenant when it happened.
    pub owner: Option<String>,
    /// The token that caused it, for staff.
    pub actor: Option<String>,
}

/// An event as stored, and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Event)]
pub struct EventRow {
    /// Increasing: page with `after`.
    pub id: i64,
    /// Unix ms.
    pub at: i64,
    pub slot: Option<String>,
    pub board: Option<String>,
    /// A lifecycle trigger (`dhcp_seen`, `power_on`, ...), `observed`, `unexpected`
    /// or `alert`.
    pub kind: String,
    pub cause: String,
    pub detail: String,
    /// The slot's tenant when it happened.
    pub owner: Option<String>,
    /// The token that caused it (`token ID (NAME)`); shown to admins only.
    pub actor: Option<String>,
}

/// Writes one event inside the caller's transaction.
pub async fn append(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    e: &NewEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (at, slot_key, board_serial, kind, cause, detail, owner, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(e.at)
    .bind(&e.slot)
    .bind(&e.board)
    .bind(&e.kind)
    .bind(&e.cause)
    .bind(&e.detail)
    .bind(&e.owner)
    .bind(&e.actor)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Records an observation that changes no state (a TFTP file, a refused board).
    pub async fn event(&self, e: &NewEvent) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        append(&mut tx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` events after id `after`, oldest first; only those of `slots`
    /// when given.
    pub async fn events(
        &self,
        after: i64,
        limit: i64,
        slots: Option<&[String]>,
    ) -> Result<Vec<EventRow>, StoreError> {
        self.events_of(after, limit, slots, None).await
    }

    /// As [`Store::events`], and only those that belonged to `owner` when given
    /// (what a customer reads).
    pub async fn events_of(
        &self,
        after: i64,
        limit: i64,
        slots: Option<&[String]>,
        owner: Option<&str>,
    ) -> Result<Vec<EventRow>, StoreError> {
        let mut sql = String::from(
            "SELECT id, at, slot_key, board_serial, kind, cause, detail, owner, actor FROM events \
             WHERE id > $1 AND ($3 IS NULL OR owner = $3)",
        );
        if let Some(mine) = slots {
            if mine.is_empty() {
                return Ok(Vec::new());
            }
            let marks: Vec<String> = (0..mine.len()).map(|i| format!("${}", i + 4)).collect();
            sql += &format!(" AND slot_key IN ({})", marks.join(", "));
        }
        sql += " ORDER BY id LIMIT $2";
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(limit.clamp(1, 1000))
            .bind(owner);
        for s in slots.unwrap_or_default() {
            q = q.bind(s);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(EventRow {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    slot: r.try_get("slot_key")?,
                    board: r.try_get("board_serial")?,
                    kind: r.try_get("kind")?,
                    cause: r.try_get("cause")?,
                    detail: r.try_get("detail")?,
                    owner: r.try_get("owner")?,
                    actor: r.try_get("actor")?,
                })
            })
            .collect()
    }
}

//! Events: every transition and observation, with time, slot, board and cause, in
//! the order written; read back in pages, newest first before an id (history) or
//! oldest first after one (for streams and `--follow`).
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

/// Where a page of events starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// Oldest first, ids above this one (following what happens).
    After(i64),
    /// Newest first, ids below this one (`i64::MAX`: the newest).
    Before(i64),
}

impl Page {
    fn id(self) -> i64 {
        match self {
            Page::After(id) | Page::Before(id) => id,
        }
    }
}

/// Writes one event inside the caller's transaction; the row to publish once
/// the transaction commits.
pub async fn append(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    e: &NewEvent,
) -> Result<EventRow, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO events (at, slot_key, board_serial, kind, cause, detail, owner, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(e.at)
    .bind(&e.slot)
    .bind(&e.board)
    .bind(&e.kind)
    .bind(&e.cause)
    .bind(&e.detail)
    .bind(&e.owner)
    .bind(&e.actor)
    .fetch_one(&mut **tx)
    .await?;
    Ok(EventRow {
        id,
        at: e.at,
        slot: e.slot.clone(),
        board: e.board.clone(),
        kind: e.kind.clone(),
        cause: e.cause.clone(),
        detail: e.detail.clone(),
        owner: e.owner.clone(),
        actor: e.actor.clone(),
    })
}

impl Store {
    /// Records an observation that changes no state (a TFTP file, a refused board).
    pub async fn event(&self, e: &NewEvent) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let mut tx = self.write().await?;
        let row = append(&mut tx, e).await?;
        tx.commit().await?;
        crate::metrics::global().store_op("event", started.elapsed());
        self.mirror.publish(row);
        Ok(())
    }

    /// The id of the newest event (0 when there is none).
    pub async fn last_event_id(&self) -> Result<i64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(id.unwrap_or(0))
    }

    /// Up to `limit` events after id `after`, oldest first; only those of `slots`
    /// when given.
    pub async fn events(
        &self,
        after: i64,
        limit: i64,
        slots: Option<&[String]>,
    ) -> Result<Vec<EventRow>, StoreError> {
        self.events_of(Page::After(after), limit, slots, None).await
    }

    /// A page of events (see [`Page`]), only those of `slots` when given and only
    /// those that belonged to `owner` when given (what a customer reads).
    pub async fn events_of(
        &self,
        page: Page,
        limit: i64,
        slots: Option<&[String]>,
        owner: Option<&str>,
    ) -> Result<Vec<EventRow>, StoreError> {
        let (cursor, order) = match page {
            Page::After(_) => ("id > $1", "ASC"),
            Page::Before(_) => ("id < $1", "DESC"),
        };
        let mut sql = format!(
            "SELECT id, at, slot_key, board_serial, kind, cause, detail, owner, actor FROM events \
             WHERE {cursor} AND ($3 IS NULL OR owner = $3)"
        );
        if let Some(mine) = slots {
            if mine.is_empty() {
                return Ok(Vec::new());
            }
            let marks: Vec<String> = (0..mine.len()).map(|i| format!("${}", i + 4)).collect();
            sql += &format!(" AND slot_key IN ({})", marks.join(", "));
        }
        sql += &format!(" ORDER BY id {order} LIMIT $2");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(page.id())
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

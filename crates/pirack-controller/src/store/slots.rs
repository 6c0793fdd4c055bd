//! Slots: one row per slot of the inventory, with its lifecycle state, owner, image
//! and board. A state change and its event are written in one transaction, and only
//! if the slot is still in the state the change was decided from.

use super::events::{self, NewEvent};
use super::{Store, StoreError, now_ms};
use pirack_core::inventory::Site;
use pirack_core::lifecycle::{self, State, Trigger};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotRow {
    pub key: String,
    pub position: String,
    pub state: State,
    pub owner: Option<String>,
    /// The owner the inventory pins the slot to: provisioned for it alone.
    pub pinned_owner: Option<String>,
    pub image: Option<String>,
    pub board: Option<String>,
    /// When the current state was entered (Unix ms).
    pub state_since: i64,
    /// Watchdog power cycles spent on the current boot.
    pub recoveries: i64,
    pub version: i64,
    /// False once the slot left the inventory (its row and history stay).
    pub in_inventory: bool,
}

const COLUMNS: &str = "slot_key, position, state, owner, pinned_owner, image, board_serial, state_since, recoveries, version, in_inventory";

/// The first slot `claim` may give owner `$1` (the one named `$2`, if not
/// empty): only the candidates are read, and the first will do, since every
/// provisioning of the site waits on the allocation lock while this reads.
static FIRST_FREE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let provisionable: Vec<String> = (lifecycle::state::ALL.iter())
        .filter(|s| lifecycle::next(**s, Trigger::Provision).is_ok())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!(
        "SELECT {COLUMNS} FROM slots WHERE in_inventory = 1 AND state IN ({}) \
         AND (owner IS NULL OR owner = $1) AND (pinned_owner IS NULL OR pinned_owner = $1) \
         AND ($2 = '' OR slot_key = $2 OR position = $2) ORDER BY position LIMIT 1",
        provisionable.join(", ")
    )
});

fn row(r: &AnyRow) -> Result<SlotRow, StoreError> {
    let state: String = r.try_get("state")?;
    Ok(SlotRow {
        key: r.try_get("slot_key")?,
        position: r.try_get("position")?,
        state: state.parse().map_err(StoreError::Invalid)?,
        owner: r.try_get("owner")?,
        pinned_owner: r.try_get("pinned_owner")?,
        image: r.try_get("image")?,
        board: r.try_get("board_serial")?,
        state_since: r.try_get("state_since")?,
        recoveries: r.try_get("recoveries")?,
        version: r.try_get("version")?,
        in_inventory: r.try_get::<i64, _>("in_inventory")? != 0,
    })
}

/// What a transition changes beside the state.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// `Some(None)` clears the owner.
    pub owner: Option<Option<String>>,
    pub image: Option<Option<String>>,
    pub board: Option<Option<String>>,
    /// Count one more watchdog recovery, or start counting again.
    pub recoveries: Option<i64>,
    /// Who asked for it (`token ID (NAME)`), recorded with its event for staff.
    pub actor: Option<String>,
}

impl Store {
    /// Adds the inventory's owners, its new slots (`empty`, or `registered` when
    /// the inventory names their board) and boards, refreshes positions, and marks
    /// slots that left it. A slot's board the store already holds (adopted, accepted) stays.
    pub async fn sync_inventory(&self, site: &Site) -> Result<(), StoreError> {
        for o in &site.owners {
            self.add_owner(&o.name, super::owners::Source::Inventory)
                .await?;
        }
        let mut tx = self.write().await?;
        let now = now_ms();
        sqlx::query("UPDATE slots SET in_inventory = 0")
            .execute(&mut *tx)
            .await?;
        for s in &site.slots {
            let key = s.key.to_string();
            let board = s.board.map(|b| b.serial.to_string());
            let state = if board.is_some() {
                State::Registered
            } else {
                State::Empty
            };
            let owner = s.owner.map(|o| site.owners[o].name.clone());
            sqlx::query(
                "INSERT INTO slots (slot_key, position, state, owner, pinned_owner, board_serial, state_since, in_inventory) \
                 VALUES ($1, $2, $3, $4, $4, $5, $6, 1) \
                 ON CONFLICT (slot_key) DO UPDATE SET position = excluded.position, in_inventory = 1, \
                 pinned_owner = excluded.pinned_owner, \
                 board_serial = COALESCE(slots.board_serial, excluded.board_serial)",
            )
            .bind(&key)
            .bind(&s.position)
            .bind(state.as_str())
            .bind(owner)
            .bind(board)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // The inventory's boards join those seen on the wire, with their MACs,
            // so the netboot services' table comes from the store alone.
            if let Some(b) = s.board {
                sqlx::query(
                    "INSERT INTO boards (serial, mac, model, slot_key, held, first_seen, last_seen) \
                     VALUES ($1, $2, $3, $4, 0, $5, $5) ON CONFLICT (serial) DO NOTHING",
                )
                .bind(b.serial.to_string())
                .bind(b.mac.to_string())
                .bind(b.model.as_str())
                .bind(&key)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        self.reload_slots().await
    }

    /// Loads every slot into the mirror (at open, and after an inventory sync).
    pub(super) async fn reload_slots(&self) -> Result<(), StoreError> {
        let q = format!("SELECT {COLUMNS} FROM slots");
        let rows = sqlx::query(sqlx::AssertSqlSafe(q))
            .fetch_all(&self.pool)
            .await?;
        self.mirror
            .load_slots(rows.iter().map(row).collect::<Result<_, _>>()?);
        Ok(())
    }

    /// Slot `key` as the store has it now (another controller may have
    /// written it since the mirror heard).
    pub async fn slot_fresh(&self, key: &str) -> Result<SlotRow, StoreError> {
        self.refresh_slot(key).await?;
        self.slot(key).await
    }

    /// Reads slot `key` again into the mirror (another controller wrote it).
    pub(super) async fn refresh_slot(&self, key: &str) -> Result<(), StoreError> {
        let q = format!("SELECT {COLUMNS} FROM slots WHERE slot_key = $1");
        let found = sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(r) = found {
            self.mirror.slot_changed(&row(&r)?);
        }
        Ok(())
    }

    /// A slot by key or position, as last committed (from the mirror).
    pub async fn slot(&self, key: &str) -> Result<SlotRow, StoreError> {
        self.mirror
            .slot(key)
            .ok_or_else(|| StoreError::NoSlot(key.to_string()))
    }

    /// Every slot still in the inventory, by position; only `owner`'s when given
    /// (from the mirror).
    pub async fn slots(&self, owner: Option<&str>) -> Result<Vec<SlotRow>, StoreError> {
        Ok(self.mirror.slots(owner))
    }

    /// Applies `trigger` to the slot: checks the lifecycle allows it, writes the new
    /// state, the `changes` and the event together. Refused with
    /// [`StoreError::Conflict`] if the slot changed since `seen` was read.
    pub async fn transition(
        &self,
        seen: &SlotRow,
        trigger: Trigger,
        cause: &str,
        changes: Changes,
    ) -> Result<SlotRow, StoreError> {
        let to = lifecycle::next(seen.state, trigger)?;
        let started = std::time::Instant::now();
        let mut tx = self.write().await?;
        let (row, event) = match transition_in(&mut tx, seen, to, trigger, cause, changes).await {
            Err(StoreError::Conflict(key)) => {
                // Another controller's write, maybe not yet followed: the
                // caller's next read sees it.
                drop(tx);
                self.refresh_slot(&seen.key).await?;
                return Err(StoreError::Conflict(key));
            }
            done => done?,
        };
        tx.commit().await?;
        crate::metrics::global().store_op("transition", started.elapsed());
        self.mirror.slot_changed(&row);
        self.mirror.publish(event);
        Ok(row)
    }

    /// Gives a customer one free slot (`empty`, `registered` or decommissioned, and
    /// neither another customer's nor pinned to one), or the named one if it is free, moving it to
    /// `building_root` with `image`. Chosen and taken under the allocation lock, so
    /// concurrent callers never get the same slot.
    pub async fn claim(
        &self,
        owner: &str,
        image: &str,
        wanted: Option<&str>,
    ) -> Result<SlotRow, StoreError> {
        let started = std::time::Instant::now();
        let mut tx = self.allocating().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(FIRST_FREE.as_str()))
            .bind(owner)
            .bind(wanted.unwrap_or_default())
            .fetch_all(&mut *tx)
            .await?;
        let mut free = None;
        for r in &rows {
            let s = row(r)?;
            if lifecycle::next(s.state, Trigger::Provision).is_ok()
                && s.owner.as_deref().is_none_or(|o| o == owner)
                && s.pinned_owner.as_deref().is_none_or(|o| o == owner)
                && wanted.is_none_or(|w| s.key == w || s.position == w)
            {
                free = Some(s);
                break;
            }
        }
        let Some(slot) = free else {
            return Err(StoreError::Invalid(match wanted {
                Some(w) => format!("slot {w} is not free"),
                None => "no free slot".into(),
            }));
        };
        let changes = Changes {
            owner: Some(Some(owner.to_string())),
            image: Some(Some(image.to_string())),
            recoveries: Some(0),
            ..Changes::default()
        };
        let cause = format!("provisioned for {owner}");
        let to = lifecycle::next(slot.state, Trigger::Provision)?;
        let (taken, event) =
            transition_in(&mut tx, &slot, to, Trigger::Provision, &cause, changes).await?;
        tx.commit().await?;
        crate::metrics::global().store_op("claim", started.elapsed());
        self.mirror.slot_changed(&taken);
        self.mirror.publish(event);
        Ok(taken)
    }
}

/// The write of a transition, inside the caller's transaction.
async fn transition_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    seen: &SlotRow,
    to: State,
    trigger: Trigger,
    cause: &str,
    changes: Changes,
) -> Result<(SlotRow, events::EventRow), StoreError> {
    let now = now_ms();
    let since = if to == seen.state {
        seen.state_since
    } else {
        now
    };
    let pick = |c: Option<Option<String>>, old: &Option<String>| c.unwrap_or_else(|| old.clone());
    let owner = pick(changes.owner, &seen.owner);
    let image = pick(changes.image, &seen.image);
    let board = pick(changes.board, &seen.board);
    let recoveries = changes.recoveries.unwrap_or(seen.recoveries);
    let done = sqlx::query(
        "UPDATE slots SET state = $1, state_since = $2, owner = $3, image = $4, board_serial = $5, \
         recoveries = $6, version = version + 1 WHERE slot_key = $7 AND version = $8",
    )
    .bind(to.as_str())
    .bind(since)
    .bind(&owner)
    .bind(&image)
    .bind(&board)
    .bind(recoveries)
    .bind(&seen.key)
    .bind(seen.version)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict(seen.key.clone()));
    }
    let detail = format!("{} -> {}", seen.state, to);
    let event = events::append(
        tx,
        &NewEvent {
            at: now,
            slot: Some(seen.key.clone()),
            board: board.clone(),
            kind: trigger.as_str().to_string(),
            cause: cause.to_string(),
            detail,
            // A decommission's event is the departing tenant's; a provision's the new one's.
            owner: owner.clone().or_else(|| seen.owner.clone()),
            actor: changes.actor,
        },
    )
    .await?;
    let row = SlotRow {
        state: to,
        state_since: since,
        owner,
        image,
        board,
        recoveries,
        version: seen.version + 1,
        ..seen.clone()
    };
    Ok((row, event))
}

//! Boards: each Pi seen on the network, the slot it was found in, and whether the
//! site's policy held it (a board swapped into a slot is learned from its serial).

use super::{Store, StoreError, now_ms};
use sqlx::Row;

/// A board as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardRow {
    /// Its serial, or its MAC while the serial is unknown (a 3B tells its serial
    /// only over TFTP).
    pub id: String,
    pub mac: String,
    pub slot: Option<String>,
    /// The site's policy held it: not served until staff accept it.
    pub held: bool,
}

/// Held boards kept per slot (the newest).
pub const HELD_PER_SLOT: i64 = 16;

impl Store {
    /// Records a board seen in `slot` (by serial when the boot ROM sent one, else by
    /// MAC); `held` when the site policy refused to serve it there.
    pub async fn saw_board(
        &self,
        serial: &str,
        mac: &str,
        model: &str,
        slot: &str,
        held: bool,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO boards (serial, mac, model, slot_key, held, first_seen, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (serial) DO UPDATE SET mac = excluded.mac, slot_key = excluded.slot_key, \
             held = excluded.held, last_seen = excluded.last_seen",
        )
        .bind(serial)
        .bind(mac)
        .bind(model)
        .bind(slot)
        .bind(i64::from(held))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Held boards are what a Pi's wire can add: the slot keeps its latest few.
        sqlx::query(
            "DELETE FROM boards WHERE slot_key = $1 AND held = 1 AND serial NOT IN \
             (SELECT serial FROM boards WHERE slot_key = $1 AND held = 1 ORDER BY last_seen DESC LIMIT $2)",
        )
        .bind(slot)
        .bind(HELD_PER_SLOT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The boards recorded in `slot`, newest first: (serial, mac, held).
    pub async fn boards_in(&self, slot: &str) -> Result<Vec<(String, String, bool)>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT serial, mac, held FROM boards WHERE slot_key = $1 ORDER BY last_seen DESC, serial",
        )
        .bind(slot)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(s, m, h)| (s, m, h != 0)).collect())
    }

    /// Every board recorded.
    pub async fn boards(&self) -> Result<Vec<BoardRow>, StoreError> {
        let rows = sqlx::query("SELECT serial, mac, slot_key, held FROM boards ORDER BY serial")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(BoardRow {
                    id: r.try_get("serial")?,
                    mac: r.try_get("mac")?,
                    slot: r.try_get("slot_key")?,
                    held: r.try_get::<i64, _>("held")? != 0,
                })
            })
            .collect()
    }

    /// Staff accepted a held board: it is served from now on.
    pub async fn board_accepted(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE boards SET held = 0 WHERE serial = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

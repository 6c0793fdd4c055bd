//! The address ledger in the store (it began as a YAML file beside the inventory;
//! `import_ledger` moves one in). Allocations are only ever added or released, never
//! changed, and unique columns make a double allocation impossible even for two
//! controllers sharing a PostgreSQL database.

use super::{Store, StoreError};
use pirack_core::plan::ledger::{Allocation, Ledger};
use sqlx::Row;

impl Store {
    pub async fn ledger(&self) -> Result<Ledger, StoreError> {
        let next: i64 = sqlx::query("SELECT value FROM counters WHERE name = 'next_fsid'")
            .fetch_one(&self.pool)
            .await?
            .try_get("value")?;
        let rows =
            sqlx::query("SELECT slot_key, position, vlan, storage, ipv6, fsid FROM allocations")
                .fetch_all(&self.pool)
                .await?;
        let bad = |what: &str, v: String| {
            StoreError::Invalid(format!("ledger row with bad {what} `{v}`"))
        };
        let mut ledger = Ledger {
            next_fsid: u32::try_from(next).map_err(|_| bad("next_fsid", next.to_string()))?,
            ..Ledger::default()
        };
        for r in rows {
            let key: String = r.try_get("slot_key")?;
            let storage: String = r.try_get("storage")?;
            let ipv6: String = r.try_get("ipv6")?;
            let vlan: i64 = r.try_get("vlan")?;
            let fsid: i64 = r.try_get("fsid")?;
            let alloc = Allocation {
                position: r.try_get("position")?,
                vlan: u16::try_from(vlan).map_err(|_| bad("vlan", vlan.to_string()))?,
                storage: storage
                    .parse()
                    .map_err(|_| bad("storage", storage.clone()))?,
                ipv6: ipv6.parse().map_err(|_| bad("ipv6", ipv6.clone()))?,
                fsid: u32::try_from(fsid).map_err(|_| bad("fsid", fsid.to_string()))?,
            };
            ledger.slots.insert(
                key.parse().map_err(|e: String| StoreError::Invalid(e))?,
                alloc,
            );
        }
        Ok(ledger)
    }

    /// Adds the allocations of `ledger` the store lacks and raises the fsid counter;
    /// an allocation the store holds differently is refused, not overwritten.
    pub async fn record_ledger(&self, ledger: &Ledger) -> Result<usize, StoreError> {
        let mut tx = self.allocating().await?;
        let mut added = 0;
        for (key, a) in &ledger.slots {
            let done = sqlx::query(
                "INSERT INTO allocations (slot_key, position, vlan, storage, ipv6, fsid) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (slot_key) DO NOTHING",
            )
            .bind(key.to_string())
            .bind(&a.position)
            .bind(i64::from(a.vlan))
            .bind(a.storage.to_string())
            .bind(a.ipv6.to_string())
            .bind(i64::from(a.fsid))
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                added += 1;
                continue;
            }
            let held = sqlx::query(
                "SELECT vlan, storage, ipv6, fsid FROM allocations WHERE slot_key = $1",
            )
            .bind(key.to_string())
            .fetch_one(&mut *tx)
            .await?;
            let same = held.try_get::<i64, _>("vlan")? == i64::from(a.vlan)
                && held.try_get::<String, _>("storage")? == a.storage.to_string()
                && held.try_get::<String, _>("ipv6")? == a.ipv6.to_string()
                && held.try_get::<i64, _>("fsid")? == i64::from(a.fsid);
            if !same {
                return Err(StoreError::Invalid(format!(
                    "slot {key}: the store already holds other addresses for it"
                )));
            }
        }
        sqlx::query("UPDATE counters SET value = $1 WHERE name = 'next_fsid' AND value < $1")
            .bind(i64::from(ledger.next_fsid))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Frees a slot's allocation (staff only: its addresses may then be reused; its
    /// fsid never is).
    pub async fn release(&self, key: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM allocations WHERE slot_key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}

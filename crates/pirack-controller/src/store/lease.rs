//! The controller's lease on its store: while a controller runs it owns the
//! store, and with it the site's roots, exports and ledger. It renews the lease
//! every few seconds; a second controller refuses to start while the lease is
//! live, and offline commands that would change what the controller owns refuse
//! too, naming the holder. A lease lapses when not renewed for [`TTL_MS`], or at
//! once when its holder was a process on this host that no longer runs (a killed
//! controller restarted).

use super::{Store, StoreError, now_ms};
use sqlx::Row;
use std::fmt;

/// How long a lease lives without renewal.
pub const TTL_MS: i64 = 15_000;
/// How often the holder renews it.
pub const RENEW_MS: u64 = 5_000;

/// Who holds (or wants) the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub host: String,
    pub pid: i64,
    /// What holds it (`pirack serve`).
    pub what: String,
    pub since: i64,
    pub renewed_at: i64,
}

impl Lease {
    /// This process, taking the lease now.
    pub fn mine(what: &str) -> Lease {
        let now = now_ms();
        Lease {
            host: this_host(),
            pid: i64::from(std::process::id()),
            what: what.to_string(),
            since: now,
            renewed_at: now,
        }
    }

    fn same_holder(&self, other: &Lease) -> bool {
        self.host == other.host && self.pid == other.pid
    }

    /// Whether it still holds: renewed within the TTL, and (on this host) its
    /// process still runs.
    fn live(&self, now: i64) -> bool {
        if now - self.renewed_at > TTL_MS {
            return false;
        }
        self.host != this_host() || process_runs(self.pid)
    }
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (pid {} on {}, since {})",
            self.what,
            self.pid,
            self.host,
            utc(self.since)
        )
    }
}

/// This machine's name, as the kernel has it.
fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether `pid` is a running process of the same program as this one (a reused
/// pid of another program does not count).
fn process_runs(pid: i64) -> bool {
    let comm = |p: &str| std::fs::read_to_string(format!("/proc/{p}/comm")).ok();
    match (comm(&pid.to_string()), comm("self")) {
        (Some(theirs), Some(ours)) => theirs == ours,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(ms: i64) -> String {
    let (year, month, day, h, m, sec) = civil(ms);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{sec:02} UTC")
}

/// Unix milliseconds as RFC 3339 (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
pub fn rfc3339(ms: i64) -> String {
    let (year, month, day, h, m, sec) = civil(ms);
    let milli = ms.rem_euclid(1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}.{milli:03}Z")
}

/// Year, month, day, hour, minute and second of Unix milliseconds, in UTC.
fn civil(ms: i64) -> (i64, i64, i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rest / 3600, rest % 3600 / 60, rest % 60)
}

fn lease_of(r: &sqlx::any::AnyRow) -> Result<Lease, StoreError> {
    Ok(Lease {
        host: r.try_get("host")?,
        pid: r.try_get("pid")?,
        what: r.try_get("what")?,
        since: r.try_get("since")?,
        renewed_at: r.try_get("renewed_at")?,
    })
}

impl Store {
    /// The live holder of the controller lease, if any.
    pub async fn lease(&self) -> Result<Option<Lease>, StoreError> {
        let row = sqlx::query(
            "SELECT host, pid, what, since, renewed_at FROM leases WHERE name = 'controller'",
        )
        .fetch_optional(&self.pool)
        .await?;
        let now = now_ms();
        Ok(match row {
            Some(r) => Some(lease_of(&r)?).filter(|l| l.live(now)),
            None => None,
        })
    }

    /// Takes the controller lease for `me`, unless another live holder has it.
    pub async fn take_lease(&self, me: &Lease) -> Result<(), StoreError> {
        let mut tx = self.allocating().await?;
        let held = sqlx::query(
            "SELECT host, pid, what, since, renewed_at FROM leases WHERE name = 'controller'",
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = held {
            let other = lease_of(&r)?;
            if !other.same_holder(me) && other.live(now_ms()) {
                return Err(StoreError::Held(Box::new(other)));
            }
        }
        sqlx::query(
            "INSERT INTO leases (name, host, pid, what, since, renewed_at) \
             VALUES ('controller', $1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, \
             what = excluded.what, since = excluded.since, renewed_at = excluded.renewed_at",
        )
        .bind(&me.host)
        .bind(me.pid)
        .bind(&me.what)
        .bind(me.since)
        .bind(me.renewed_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Renews `me`'s lease; false if it is no longer `me`'s (it lapsed and
    /// another took it): the holder must stop at once.
    pub async fn renew_lease(&self, me: &Lease) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE leases SET renewed_at = $1 WHERE name = 'controller' AND host = $2 AND pid = $3",
        )
        .bind(now_ms())
        .bind(&me.host)
        .bind(me.pid)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives `me`'s lease up (a clean stop): the next controller starts at once.
    pub async fn drop_lease(&self, me: &Lease) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM leases WHERE name = 'controller' AND host = $1 AND pid = $2")
            .bind(&me.host)
            .bind(me.pid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_milliseconds_read_as_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_223_669_000), "2026-12-02 15:01:09 UTC");
        assert_eq!(rfc3339(1_796_223_669_042), "2026-12-02T15:01:09.042Z");
    }

    #[test]
    fn a_lease_lapses_unrenewed_or_when_its_process_is_gone() {
        let mut l = Lease::mine("test");
        assert!(l.live(l.renewed_at + 1000));
        assert!(!l.live(l.renewed_at + TTL_MS + 1));
        l.pid = i64::from(i32::MAX);
        assert!(!l.live(l.renewed_at), "no such process on this host");
        l.host = "elsewhere".into();
        assert!(
            l.live(l.renewed_at),
            "another host's process is not ours to judge"
        );
    }
}

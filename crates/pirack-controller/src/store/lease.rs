//! Leases on the store: while a controller serves a fileserver's shelves it
//! holds the lease `rack:FILESERVER` ([`rack`]), and the region leader holds
//! [`REGION`] while it runs the singleton duties. A holder renews its lease
//! every third of its lifetime; a second rack controller refuses to start while
//! the lease is live, or (`--standby`) waits and takes over when it lapses;
//! offline commands that would change what the rack controller owns refuse
//! too, naming the holder. A lease lapses when not renewed within its lifetime
//! (`ttl_ms`, its holder's choice, [`DEFAULT_TTL_MS`] by default), or at once
//! when its holder was a process on this host that no longer runs (a killed
//! controller restarted).
//!
//! Fencing: each change of holder raises the lease's generation, and every write
//! of a holder checks first that the generation is still its own
//! ([`check_fence`]), so a holder that lost its lease (paused, or cut off from
//! the database past its lifetime) cannot write after its successor began. A
//! store's writes are fenced by its rack lease ([`Store::fence_by`]); a duty's
//! task by its own ([`under`]), and what it does outside the store by a
//! [`Fence`] held across it. A lease given up on a clean stop is kept, marked
//! released, so generations never go back; one taken from a holder that lapsed
//! is recorded as a failover. Leases are timed by the controllers' clocks: keep
//! them in step (NTP).

use super::{Backend, Store, StoreError, now_ms};
use sqlx::Row;
use std::fmt;

/// How long a lease lives without renewal, unless its holder says otherwise.
pub const DEFAULT_TTL_MS: i64 = 15_000;

/// The lease the region leader holds.
pub const REGION: &str = "region";

/// The lease of the rack controller serving `fileserver`'s shelves.
pub fn rack(fileserver: &str) -> String {
    format!("rack:{fileserver}")
}

/// The fileserver a rack lease is named for.
pub fn fileserver_of(lease: &str) -> Option<&str> {
    lease.strip_prefix("rack:")
}

tokio::task_local! {
    /// The lease of the duty this task runs, which its writes are fenced by.
    static DUTY: Lease;
}

/// Runs `work` as a duty held under `lease`: its writes to the store are
/// fenced by that lease rather than the store's (tasks it spawns are not).
pub async fn under<F: std::future::Future>(lease: Lease, work: F) -> F::Output {
    DUTY.scope(lease, work).await
}

/// Who holds (or wants) a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Which lease: [`REGION`] or [`rack`]`(FILESERVER)`.
    pub name: String,
    pub host: String,
    pub pid: i64,
    /// What holds it (`pirack serve`).
    pub what: String,
    pub since: i64,
    pub renewed_at: i64,
    /// How long it lives without renewal.
    pub ttl_ms: i64,
    /// Raised at each change of holder; 0 in a lease not yet taken.
    pub generation: i64,
}

impl Lease {
    /// This process, taking lease `name` now for `ttl_ms` at a time.
    pub fn mine(name: &str, what: &str, ttl_ms: i64) -> Lease {
        let now = now_ms();
        Lease {
            name: name.to_string(),
            host: this_host(),
            pid: i64::from(std::process::id()),
            what: what.to_string(),
            since: now,
            renewed_at: now,
            ttl_ms,
            generation: 0,
        }
    }

    /// Its holder as the store's list of controllers names it: `host:pid`.
    pub fn holder_id(&self) -> String {
        format!("{}:{}", self.host, self.pid)
    }

    /// This process as the store's list of controllers names it.
    pub fn my_id() -> String {
        Lease::mine("", "", 0).holder_id()
    }

    fn same_holder(&self, other: &Lease) -> bool {
        self.host == other.host && self.pid == other.pid
    }

    /// Whether it still holds: renewed within the TTL, and (on this host) its
    /// process still runs.
    pub fn live(&self, now: i64) -> bool {
        if self.renewed_at == 0 || now - self.renewed_at > self.ttl_ms {
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

const SELECT: &str = "SELECT name, host, pid, what, since, renewed_at, ttl_ms, generation \
     FROM leases WHERE name = $1";
const SELECT_FOR_UPDATE: &str = "SELECT name, host, pid, what, since, renewed_at, ttl_ms, \
     generation FROM leases WHERE name = $1 FOR UPDATE";
const SELECT_ALL: &str = "SELECT name, host, pid, what, since, renewed_at, ttl_ms, generation \
     FROM leases ORDER BY name";
const GENERATION: &str = "SELECT generation FROM leases WHERE name = $1 AND host = $2 AND pid = $3";
const GENERATION_FOR_SHARE: &str =
    "SELECT generation FROM leases WHERE name = $1 AND host = $2 AND pid = $3 FOR KEY SHARE";

fn lease_of(r: &sqlx::any::AnyRow) -> Result<Lease, StoreError> {
    Ok(Lease {
        name: r.try_get("name")?,
        host: r.try_get("host")?,
        pid: r.try_get("pid")?,
        what: r.try_get("what")?,
        since: r.try_get("since")?,
        renewed_at: r.try_get("renewed_at")?,
        ttl_ms: r.try_get("ttl_ms")?,
        generation: r.try_get("generation")?,
    })
}

/// Fails with [`StoreError::Fenced`] unless `f` is still its lease's holder and
/// generation; on PostgreSQL the row stays key-share-locked to the end of
/// `tx`, so a takeover (which locks it for update) waits for it while the
/// holder's renewals (which change no key) do not.
pub(super) async fn check_fence(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    f: &Lease,
) -> Result<(), StoreError> {
    let sql = match backend {
        Backend::Postgres => GENERATION_FOR_SHARE,
        Backend::Sqlite => GENERATION,
    };
    let row = sqlx::query(sql)
        .bind(&f.name)
        .bind(&f.host)
        .bind(f.pid)
        .fetch_optional(&mut **tx)
        .await?;
    let now: Option<i64> = row.map(|r| r.try_get("generation")).transpose()?;
    match now == Some(f.generation) {
        true => Ok(()),
        false => Err(StoreError::Fenced(f.generation)),
    }
}

/// A lease taken from a holder that lapsed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Failover {
    pub name: String,
    pub from_holder: String,
    pub to_holder: String,
    pub generation: i64,
    pub at: i64,
    /// How long the old holder had not renewed it.
    pub lapsed_ms: i64,
}

/// A lease's row held share-locked (on PostgreSQL) while its holder acts
/// outside the store (a DNS update, an alert sent, a port switched): a
/// takeover waits for the act to end, and no act starts once it happened.
pub struct Fence(Option<sqlx::Transaction<'static, sqlx::Any>>);

impl Fence {
    /// Ends it (dropping it does too).
    pub async fn release(self) {
        if let Some(tx) = self.0 {
            let _ = tx.rollback().await;
        }
    }
}

impl Store {
    /// The live holder of lease `name`, if any.
    pub async fn lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let row = sqlx::query(SELECT)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        let now = now_ms();
        Ok(match row {
            Some(r) => Some(lease_of(&r)?).filter(|l| l.live(now)),
            None => None,
        })
    }

    /// Every lease ever taken, live or not, by name.
    pub async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let rows = sqlx::query(SELECT_ALL).fetch_all(&self.pool).await?;
        rows.iter().map(lease_of).collect()
    }

    /// A transaction outside any fence: the leases' own writes, whose
    /// conditions on holder and generation are their fence.
    async fn begin_unfenced(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Takes lease `me.name` for `me`, unless another live holder has it.
    /// Returns the lease as taken (its generation raised if the holder changed).
    pub async fn take_lease(&self, me: &Lease) -> Result<Lease, StoreError> {
        let mut tx = self.begin_unfenced().await?;
        // The row first (so that two takers lock the same one), then locked.
        sqlx::query(
            "INSERT INTO leases (name, host, pid, what, since, renewed_at, ttl_ms, generation) \
             VALUES ($1, '', 0, '', 0, 0, 0, 0) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&me.name)
        .execute(&mut *tx)
        .await?;
        let sql = match self.backend {
            Backend::Postgres => SELECT_FOR_UPDATE,
            Backend::Sqlite => SELECT,
        };
        let held = sqlx::query(sql).bind(&me.name).fetch_one(&mut *tx).await?;
        let other = lease_of(&held)?;
        let now = now_ms();
        if !other.same_holder(me) && other.live(now) {
            return Err(StoreError::Held(Box::new(other)));
        }
        let mut taken = me.clone();
        taken.generation = match other.same_holder(me) {
            true => other.generation.max(1),
            false => other.generation + 1,
        };
        if !other.same_holder(me) && other.renewed_at != 0 {
            sqlx::query(
                "INSERT INTO failovers (name, from_holder, to_holder, generation, at, lapsed_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&me.name)
            .bind(other.to_string())
            .bind(taken.to_string())
            .bind(taken.generation)
            .bind(now)
            .bind(now - other.renewed_at)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE leases SET host = $1, pid = $2, what = $3, since = $4, renewed_at = $5, \
             ttl_ms = $6, generation = $7 WHERE name = $8",
        )
        .bind(&taken.host)
        .bind(taken.pid)
        .bind(&taken.what)
        .bind(taken.since)
        .bind(taken.renewed_at)
        .bind(taken.ttl_ms)
        .bind(taken.generation)
        .bind(&me.name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(taken)
    }

    /// From now on every write of this store is fenced by `lease` (a rack
    /// controller's), unless the writing task runs [`under`] another.
    pub fn fence_by(&self, lease: Lease) {
        *self.fence.lock().expect("not poisoned") = Some(lease);
    }

    /// The lease this store's writes are fenced by, if any.
    pub fn fenced_by(&self) -> Option<Lease> {
        self.fence.lock().expect("not poisoned").clone()
    }

    /// The lease the current write is fenced by: the task's duty's, else the
    /// store's.
    pub(super) fn fence_now(&self) -> Option<Lease> {
        DUTY.try_with(Lease::clone)
            .ok()
            .or_else(|| self.fenced_by())
    }

    /// The [`Store::fence`] of the lease the current write would be fenced
    /// by (none, and no fence, on a store without one).
    pub async fn fence_here(&self) -> Result<Fence, StoreError> {
        match self.fence_now() {
            Some(held) => self.fence(&held).await,
            None => Ok(Fence(None)),
        }
    }

    /// Checks that `lease` is still its holder's and holds it (locked on
    /// PostgreSQL) until the [`Fence`] is released: what the holder does
    /// meanwhile outside the store cannot overlap a successor's.
    pub async fn fence(&self, lease: &Lease) -> Result<Fence, StoreError> {
        let mut tx = self.pool.begin().await?;
        check_fence(&mut tx, self.backend, lease).await?;
        Ok(Fence((self.backend == Backend::Postgres).then_some(tx)))
    }

    /// Renews `me`'s lease; false if it is no longer `me`'s (it lapsed and
    /// another took it): the holder must stop its duty at once.
    pub async fn renew_lease(&self, me: &Lease) -> Result<bool, StoreError> {
        let mut tx = self.begin_unfenced().await?;
        let done = sqlx::query(
            "UPDATE leases SET renewed_at = $1 \
             WHERE name = $2 AND host = $3 AND pid = $4 AND generation = $5",
        )
        .bind(now_ms())
        .bind(&me.name)
        .bind(&me.host)
        .bind(me.pid)
        .bind(me.generation)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives `me`'s lease up (a clean stop): the next holder takes it at once.
    pub async fn drop_lease(&self, me: &Lease) -> Result<(), StoreError> {
        let mut tx = self.begin_unfenced().await?;
        sqlx::query(
            "UPDATE leases SET renewed_at = 0 \
             WHERE name = $1 AND host = $2 AND pid = $3 AND generation = $4",
        )
        .bind(&me.name)
        .bind(&me.host)
        .bind(me.pid)
        .bind(me.generation)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The last `limit` failovers, newest first.
    pub async fn failovers(&self, limit: i64) -> Result<Vec<Failover>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, from_holder, to_holder, generation, at, lapsed_ms FROM failovers \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Failover {
                    name: r.try_get("name")?,
                    from_holder: r.try_get("from_holder")?,
                    to_holder: r.try_get("to_holder")?,
                    generation: r.try_get("generation")?,
                    at: r.try_get("at")?,
                    lapsed_ms: r.try_get("lapsed_ms")?,
                })
            })
            .collect()
    }
}

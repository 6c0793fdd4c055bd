//! The state store: slots and their lifecycle, boards, the address ledger, images,
//! roots, power operations, events, API tokens, long operations and the
//! controller's lease. SQLite in one file by default; PostgreSQL through the same
//! code (sqlx's Any driver, runtime queries, 64-bit integers and text only).

pub mod alerts;
pub mod backups;
pub mod boards;
pub mod cluster;
pub mod events;
pub mod follow;
pub mod lease;
pub mod ledger;
pub mod mirror;
pub mod names;
pub mod ops;
pub mod owners;
pub mod proxy;
pub mod records;
pub mod slots;
pub mod tokens;
pub mod zones;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Executor, SqlSafeStr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL `{0}` is neither sqlite: nor postgres:")]
    Url(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("no slot `{0}`")]
    NoSlot(String),
    #[error(transparent)]
    Illegal(#[from] pirack_core::lifecycle::Illegal),
    /// Another writer changed the row first; the caller may read again and retry.
    #[error("slot {0} changed under us; try again")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// A live controller holds the store's lease.
    #[error("the store is owned by {0}")]
    Held(Box<lease::Lease>),
    /// This controller's lease went to another (generation `0` is no longer
    /// the lease's): it must write nothing more.
    #[error("fenced: this controller's lease (generation {0}) has passed to another")]
    Fenced(i64),
}

/// The store, cheap to clone (a pool and the mirror of what the API reads).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    mirror: std::sync::Arc<mirror::Mirror>,
    /// The lease this store's writes are fenced by, once set
    /// ([`Store::fence_by`]); a duty's own lease ([`lease::under`]) comes first.
    fence: std::sync::Arc<std::sync::Mutex<Option<lease::Lease>>>,
    /// This store's name on its PostgreSQL connections (`application_name`):
    /// what its own writes are told by, so that it skips them ([`follow`]).
    origin: std::sync::Arc<str>,
    /// Where it is, for the listener of other controllers' writes.
    url: std::sync::Arc<str>,
}

/// Milliseconds since the Unix epoch, the store's clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `bytes` random bytes from the kernel, as hex: token secrets and operation ids.
pub fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Makes a SQLite store's directory (owner-only) and file (0600) if missing,
/// whatever the umask and the directory's mode: the store holds token hashes
/// and every tenant's history. SQLite gives its WAL and shared-memory files the
/// database file's mode.
fn create_private(url: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let Some(path) = url
        .strip_prefix("sqlite://")
        .map(|p| p.split('?').next().unwrap_or(p))
        .filter(|p| !p.is_empty() && *p != ":memory:")
    else {
        return Ok(());
    };
    let path = std::path::Path::new(path);
    let io = |what: &str| {
        let what = format!("{what} {}", path.display());
        move |e: std::io::Error| StoreError::Invalid(format!("{what}: {e}"))
    };
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::create_dir_all(dir).map_err(io("making the directory of"))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("restricting the directory of"))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {
            // The umask cannot loosen it, but it could have narrowed it further.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(io("restricting"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io("creating")(e)),
    }
}

/// The schema's migrations, compiled in: one text per step, its integer and key
/// types spelt for the backend.
fn migrator(backend: Backend) -> Migrator {
    const STEPS: [(i64, &str, &str); 13] = [
        (1, "init", include_str!("schema/0001_init.sql")),
        (
            2,
            "operation errors",
            include_str!("schema/0002_operation_errors.sql"),
        ),
        (3, "leases", include_str!("schema/0003_leases.sql")),
        (4, "owners", include_str!("schema/0004_owners.sql")),
        (
            5,
            "event tenants",
            include_str!("schema/0005_event_tenants.sql"),
        ),
        (6, "dns names", include_str!("schema/0006_dns_names.sql")),
        (7, "aname", include_str!("schema/0007_aname.sql")),
        (
            8,
            "zone grants",
            include_str!("schema/0008_zone_grants.sql"),
        ),
        (9, "proxy", include_str!("schema/0009_proxy.sql")),
        (10, "monitor", include_str!("schema/0010_monitor.sql")),
        (11, "backups", include_str!("schema/0011_backups.sql")),
        (12, "failover", include_str!("schema/0012_failover.sql")),
        (13, "roles", include_str!("schema/0013_roles.sql")),
    ];
    // What only PostgreSQL has: the triggers that tell other controllers.
    const PG_ONLY: [(i64, &str); 1] = [(13, include_str!("schema/0013_roles_pg.sql"))];
    let (int, id) = match backend {
        Backend::Sqlite => ("INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        Backend::Postgres => ("BIGINT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    };
    Migrator::with_migrations(
        STEPS
            .into_iter()
            .map(|(version, name, sql)| {
                let mut sql = sql.replace("{int}", int).replace("{id}", id);
                if backend == Backend::Postgres {
                    PG_ONLY
                        .iter()
                        .filter(|(v, _)| *v == version)
                        .for_each(|(_, more)| sql.push_str(more));
                }
                Migration::new(
                    version,
                    name.into(),
                    MigrationType::Simple,
                    AssertSqlSafe(sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

impl Store {
    /// Opens (creating a SQLite file if need be) and migrates to the current schema.
    /// `sqlite:///var/lib/pirack/state.db` or `postgres://user:pw@host/db`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        if backend == Backend::Sqlite {
            create_private(url)?;
        }
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let origin: std::sync::Arc<str> = format!(
            "pirack-{}",
            random_hex(6)
                .map_err(|e| { StoreError::Invalid(format!("reading /dev/urandom: {e}")) })?
        )
        .into();
        let name = format!("SET application_name = '{origin}'");
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                let name = name.clone();
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Readers never wait for the writer; writers queue, not fail.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 30000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    } else {
                        // A controller stalled inside a transaction (paused, cut
                        // off) loses it, and the lease row it share-locked, so
                        // a standby can take over; pirack's own are short.
                        conn.execute("SET idle_in_transaction_session_timeout = '30s'")
                            .await?;
                        conn.execute(AssertSqlSafe(name)).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        migrator(backend).run(&pool).await?;
        let store = Store {
            pool,
            backend,
            mirror: std::sync::Arc::default(),
            fence: std::sync::Arc::default(),
            origin,
            url: url.into(),
        };
        store.reload_slots().await?;
        store.refresh_tokens().await?;
        Ok(store)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// What the API reads, in memory.
    pub fn mirror(&self) -> &mirror::Mirror {
        &self.mirror
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that writes. On SQLite it takes the write lock at once (a
    /// deferred one could fail to upgrade); PostgreSQL's row locks suffice.
    /// Once this store's controller holds the lease, every write first checks
    /// that it still does (the lease row share-locked on PostgreSQL, so a
    /// takeover waits for the writes under way and every later one sees it).
    pub async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        if let Some(f) = self.fence_now() {
            lease::check_fence(&mut tx, self.backend, &f).await?;
        }
        Ok(tx)
    }

    /// A writing transaction that hands out something only one may get (a slot, an
    /// address): such writers go one at a time, also across controllers sharing a
    /// PostgreSQL database, which serialises them on the allocation counter's row.
    pub async fn allocating(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let mut tx = self.write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT value FROM counters WHERE name = 'next_fsid' FOR UPDATE")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }
}

//! Offline commands that change what a running controller owns (the slots'
//! roots, the exports, the ledger, the ports' power) ask the store first: while a
//! controller holds the store's lease the store is the one truth, and such a
//! command refuses, naming the controller and what to use instead.

use anyhow::{Context, Result, bail};
use pirack_controller::store::Store;
use std::path::Path;

/// The store a controller would own.
#[derive(clap::Args, Clone)]
pub struct StoreArg {
    /// The controller's state store, checked for a running controller.
    #[arg(
        long,
        env = "PIRACK_DB",
        default_value = "sqlite:///var/lib/pirack/pirack.db"
    )]
    pub db: String,
}

impl StoreArg {
    /// Whether there is a store at all (a SQLite file not yet made is none).
    fn exists(&self) -> bool {
        match self.db.strip_prefix("sqlite://") {
            Some(rest) => Path::new(rest.split('?').next().unwrap_or(rest)).exists(),
            None => true,
        }
    }

    /// Runs `work` on the store, if there is one.
    pub fn with<T>(&self, work: impl AsyncFnOnce(&Store) -> Result<T>) -> Result<Option<T>> {
        if !self.exists() {
            return Ok(None);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let store = Store::open(&self.db)
                .await
                .with_context(|| format!("opening the store {}", self.db))?;
            let out = work(&store).await;
            store.pool().close().await;
            out.map(Some)
        })
    }

    /// Fails if a controller owns the store: `what` was refused, `instead` says
    /// how to do it through the controller.
    pub fn refuse_if_owned(&self, what: &str, instead: &str) -> Result<()> {
        let now = pirack_controller::store::now_ms();
        let held = self
            .with(async |store| Ok(store.leases().await?))?
            .into_iter()
            .flatten()
            .find(|l| l.live(now));
        if let Some(holder) = held {
            bail!(
                "{what}: refused while {holder} owns the store {}: {instead}, or stop it first",
                self.db
            );
        }
        Ok(())
    }
}

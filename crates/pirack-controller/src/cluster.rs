//! Roles, for several controllers on one PostgreSQL store. A rack controller
//! serves its fileserver's shelves (DHCP and TFTP, exports, root builds, power,
//! the watchdog, backups, which read the roots on its disk) while it holds the
//! lease `rack:FILESERVER`; a standby for the same fileserver takes over when
//! it lapses. Every controller serves the API and rack view; on a region
//! controller the operations it is asked are queued for the rack controller
//! ([`serve_queue`]), and what the others write reaches its mirror and event
//! streams ([`crate::store::follow`]). The region's singleton duties (DNS
//! publishing, ANAME refreshing, monitoring and its alerts, pruning) run on
//! one region controller at a time, the one holding the `region` lease
//! ([`lead`]), each fenced by it. `all`, the default, is both on one box.

use crate::Controller;
use crate::store::lease::{self, Lease};
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// What a controller does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Serves its fileserver's shelves.
    Rack,
    /// The region's duties, without shelves.
    Region,
    /// Both: one box.
    #[default]
    All,
}

impl Role {
    pub fn rack(self) -> bool {
        self != Role::Region
    }

    pub fn region(self) -> bool {
        self != Role::Rack
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Rack => "rack",
            Role::Region => "region",
            Role::All => "all",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "rack" => Ok(Role::Rack),
            "region" => Ok(Role::Region),
            "all" => Ok(Role::All),
            other => Err(format!("no role `{other}`: rack, region or all")),
        }
    }
}

impl Controller {
    /// The region lease's [`crate::store::lease::Fence`], held across an act
    /// outside the store (a DNS update, an alert sent): refused unless this
    /// controller leads the region.
    pub async fn region_fence(&self) -> Result<lease::Fence, StoreError> {
        let held = self.leader.lock().expect("not poisoned").clone();
        match held {
            Some(held) => self.store.fence(&held).await,
            None => Err(StoreError::Invalid(
                "this controller does not lead the region: the leader does that \
                 (pirack cluster status)"
                    .into(),
            )),
        }
    }
}

/// Renews `held` every third of its lifetime; returns when another took it,
/// or when it could not be renewed for two thirds of its lifetime (cut off
/// from the database): it gives up before the others may take it over, so a
/// holder cut off has stopped its duty when its successor starts. Its holder
/// must then stop the duty.
pub async fn hold(store: &Store, held: &Lease) {
    let ttl = Duration::from_millis(held.ttl_ms.max(3) as u64);
    let every = ttl / 3;
    let mut tick = tokio::time::interval(every);
    let mut renewed = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let left = (ttl * 2 / 3).saturating_sub(renewed.elapsed());
        match tokio::time::timeout(left, store.renew_lease(held)).await {
            Ok(Ok(true)) => renewed = tokio::time::Instant::now(),
            Ok(Ok(false)) => {
                tracing::error!("another controller took the lease {}", held.name);
                return;
            }
            Ok(Err(e)) => tracing::warn!("cannot renew the lease {}: {e}", held.name),
            Err(_) => tracing::warn!("renewing the lease {} took too long", held.name),
        }
        if renewed.elapsed() >= ttl * 2 / 3 {
            tracing::error!(
                "the lease {} was not renewed for {:?}, two thirds of its lifetime: giving it up",
                held.name,
                renewed.elapsed()
            );
            return;
        }
    }
}

/// Takes the `region` lease for this controller if no live one holds it.
pub async fn bid(ctl: &Controller, ttl: Duration) -> Option<Lease> {
    let me = Lease::mine(lease::REGION, "pirack serve", ttl.as_millis() as i64);
    match ctl.store.take_lease(&me).await {
        Ok(taken) => {
            tracing::info!("leading the region (generation {})", taken.generation);
            *ctl.leader.lock().expect("not poisoned") = Some(taken.clone());
            Some(taken)
        }
        Err(StoreError::Held(holder)) => {
            tracing::debug!("{holder} leads the region");
            None
        }
        Err(e) => {
            tracing::warn!("cannot reach the region's lease: {e}");
            None
        }
    }
}

/// Leads the region when it can (from `first`, a lease [`bid`] took):
/// bids every second while another live controller holds the lease, runs the
/// singleton duties under it while it holds it, and stops them the moment it
/// does not. `retention` bounds what pruning keeps.
pub async fn lead(ctl: Arc<Controller>, ttl: Duration, retention: Duration, first: Option<Lease>) {
    let mut taken = first;
    loop {
        if let Some(held) = taken.take() {
            let mut duties = singleton_duties(&ctl, &held, retention);
            tokio::select! {
                () = hold(&ctl.store, &held) => {}
                Some(ended) = duties.join_next() => {
                    tracing::error!("the region duty {} ended", ended.unwrap_or("?"));
                    let _ = ctl.store.drop_lease(&held).await;
                }
            }
            duties.shutdown().await;
            *ctl.leader.lock().expect("not poisoned") = None;
            tracing::error!("no longer leading the region: its duties stopped");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        taken = bid(&ctl, ttl).await;
    }
}

/// The duties only the region's leader runs, each fenced by its lease.
fn singleton_duties(
    ctl: &Arc<Controller>,
    held: &Lease,
    retention: Duration,
) -> JoinSet<&'static str> {
    let mut duties = JoinSet::new();
    let c = Arc::clone(ctl);
    duties.spawn(lease::under(held.clone(), async move {
        crate::run::prune(c, retention).await;
        "pruning"
    }));
    if ctl.site.monitor.is_some() {
        let c = Arc::clone(ctl);
        duties.spawn(lease::under(held.clone(), async move {
            crate::monitor::run(c).await;
            "monitoring"
        }));
    }
    if let Some(every) = ctl.dns.every() {
        let c = Arc::clone(ctl);
        duties.spawn(lease::under(held.clone(), async move {
            crate::dns::run(c, every).await;
            "DNS publishing"
        }));
        let c = Arc::clone(ctl);
        duties.spawn(lease::under(held.clone(), async move {
            crate::aname::run(c).await;
            "ANAME refreshing"
        }));
    }
    duties
}

/// Runs what region controllers queued for this rack controller: each new
/// operation wakes it, and it looks every few seconds too.
pub async fn serve_queue(ctl: Arc<Controller>) {
    loop {
        match ctl.store.queued_ops().await {
            Ok(queued) => {
                // Each fileserver's rack controller takes its own slots'.
                for q in queued.into_iter().filter(|q| ctl.runs(&q.op)) {
                    let id = q.op.id.clone();
                    if let Err(e) = ctl.run_queued(q).await {
                        tracing::warn!("queued operation {id}: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!("reading the queued operations: {e}"),
        }
        tokio::select! {
            () = ctl.queued.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(3)) => {}
        }
    }
}

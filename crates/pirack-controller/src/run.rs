//! The controller as one library entry: [`start`] opens the store and the
//! controller's state, then starts and keeps every task its role has (a rack
//! controller's DHCP and TFTP, lifecycle driver, observer, watchdog and
//! operations; a region controller's leadership bid; everyone's API and
//! following of the others' writes); [`Running::until`] serves until asked to
//! stop or a task fails, then stops them in order. `pirack serve`, the labs and
//! the tests all start a controller so.

use crate::api;
use crate::cluster::{self, Role};
use crate::power::Drivers;
use crate::store::cluster::ControllerRow;
use crate::store::{Store, StoreError, lease};
use crate::{Controller, ControllerError, Paths, exporter, netboot, observe, watchdog};
use pirack_core::inventory::Site;
use pirack_core::switch::Profiles;
use pirack_netboot::boots::Boots;
use pirack_netboot::events::Event;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// Everything a controller needs.
pub struct Config {
    pub site: Site,
    pub profiles: Profiles,
    /// The state store's URL (`sqlite://...` or `postgres://...`).
    pub db: String,
    pub paths: Paths,
    pub netboot: pirack_netboot::Settings,
    /// Where the API listens (port 0: any; [`Running::api`] tells).
    pub api: SocketAddr,
    /// The API's bounds on connections, timeouts and streams.
    pub limits: api::limits::Limits,
    /// Serve the API over TLS with this configuration ([`api::server::tls_config`]).
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// Power drivers for slots the PoE switches do not power, by slot kind.
    pub drivers: Drivers,
    /// What each slot boots: filled from the roots on disk at start and kept with
    /// them; shared with drivers that boot slots themselves (virtual ones).
    pub boots: Arc<Boots>,
    /// Print every netboot event as a JSON line on stdout (the log has them too).
    pub json_events: bool,
    /// How often the watchdog and the observer look at the slots.
    pub tick: Duration,
    /// How long events, ended operations and power records are kept.
    pub retention: Duration,
    /// Run the inventory's `proxy:` here.
    pub proxy: bool,
    /// How long the controller's lease on the store lives without renewal: how
    /// soon a standby takes over from a controller that died or lost the store.
    pub lease_ttl: Duration,
    /// Wait while another rack controller holds the shelves, and take over
    /// when its lease lapses (instead of refusing to start).
    pub standby: bool,
    /// What this controller does.
    pub role: Role,
    /// The fileserver whose shelves a rack controller serves (the one it runs
    /// on); needed only when the site has several.
    pub fileserver: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("opening the store {url}: {source}")]
    Store { url: String, source: StoreError },
    #[error(transparent)]
    Controller(#[from] ControllerError),
    #[error("resuming root builds: {0}")]
    Resume(#[from] crate::error::OpError),
    #[error(transparent)]
    Netboot(#[from] pirack_netboot::NetbootError),
    #[error("the proxy: {0}")]
    Proxy(#[from] pirack_proxy::ProxyError),
    #[error("API on {addr}: {source}")]
    Api {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the {0} task stopped")]
    TaskEnded(&'static str),
    #[error(
        "role {0} needs a PostgreSQL store that its peers share (SQLite serves one box: role all)"
    )]
    Role(&'static str),
    #[error("{0}")]
    Fileserver(String),
}

/// A started controller and the tasks it owns.
pub struct Running {
    pub ctl: Arc<Controller>,
    /// Where the API listens.
    pub api: SocketAddr,
    api_stop: oneshot::Sender<()>,
    api_task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Watchdog, observer, the leases' renewal and the region's duties: they
    /// start power actions and updates or vouch for them, so they stop first.
    /// Each task ends with its name.
    watchers: JoinSet<&'static str>,
    /// DHCP and TFTP, on their own thread (a rack controller's).
    netboot: Option<pirack_netboot::Thread>,
    /// The lifecycle driver and the event log, which follow the netboot services.
    followers: JoinSet<&'static str>,
}

/// Opens the store (a rack controller's lease taken, or refused while another
/// holds it) and the controller, resumes cut-short root builds and starts every
/// task.
pub async fn start(config: Config) -> Result<Running, RunError> {
    let err = |source| RunError::Store {
        url: config.db.clone(),
        source,
    };
    let store = open(&config).await?;
    if config.role.rack() {
        let taken = store.take_lease(&rack_lease(&config)?).await.map_err(err)?;
        store.fence_by(taken);
    }
    start_on(config, store).await
}

/// Opens the store, refusing a split role on SQLite.
async fn open(config: &Config) -> Result<Store, RunError> {
    let store = Store::open(&config.db)
        .await
        .map_err(|source| RunError::Store {
            url: config.db.clone(),
            source,
        })?;
    match (config.role, store.backend()) {
        (Role::Rack | Role::Region, crate::store::Backend::Sqlite) => {
            Err(RunError::Role(config.role.as_str()))
        }
        _ => Ok(store),
    }
}

/// This process as a taker of the rack lease of `config`'s fileserver: the
/// one named, or the site's only one.
fn rack_lease(config: &Config) -> Result<lease::Lease, RunError> {
    let all = &config.site.fileservers;
    let names = || {
        all.iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fs = match (&config.fileserver, all.as_slice()) {
        (None, [only]) => only,
        (None, _) => {
            return Err(RunError::Fileserver(format!(
                "site {} has several fileservers ({}): name the one this rack controller \
                 serves (--fileserver)",
                config.site.name,
                names()
            )));
        }
        (Some(name), _) => config.site.fileserver(name).ok_or_else(|| {
            RunError::Fileserver(format!(
                "site {} has no fileserver {name} (it has {})",
                config.site.name,
                names()
            ))
        })?,
    };
    let ttl = config.lease_ttl.as_millis() as i64;
    Ok(lease::Lease::mine(
        &lease::rack(&fs.name),
        "pirack serve",
        ttl,
    ))
}

/// [`start`] on a store fenced by its rack lease if the role has one.
async fn start_on(config: Config, store: Store) -> Result<Running, RunError> {
    let role = config.role;
    let ctl = Controller::open(
        role,
        config.site,
        &config.profiles,
        store,
        config.paths,
        config.drivers,
        config.boots,
        api::limits::Streams::new(config.limits.streams_per_token),
    )
    .await?;
    let ctl = Arc::new(ctl);
    let (mut followers, mut watchers) = (JoinSet::new(), JoinSet::new());
    // Subscribed here, before the netboot thread starts: a task's own
    // subscription could come after the first events (the interfaces found
    // missing at start) and miss them.
    let (c, events) = (Arc::clone(&ctl), ctl.bus.subscribe());
    followers.spawn(async move {
        log_events(c, events, config.json_events).await;
        "event log"
    });
    let (store, queued) = (ctl.store.clone(), Arc::clone(&ctl.queued));
    followers.spawn(async move {
        crate::store::follow::run(store, queued).await;
        "following the other controllers"
    });
    let me = registry_row(&ctl, "serving", &config.api.to_string());
    let c = Arc::clone(&ctl);
    watchers.spawn(async move {
        say_here(c, me).await;
        "registry"
    });
    let c = Arc::clone(&ctl);
    watchers.spawn(async move {
        refresh_tokens(c).await;
        "token refresh"
    });
    let c = Arc::clone(&ctl);
    watchers.spawn(async move {
        crate::proxy::run(c).await;
        "proxy routes"
    });
    if role.region() {
        let first = cluster::bid(&ctl, config.lease_ttl).await;
        let c = Arc::clone(&ctl);
        watchers.spawn(async move {
            cluster::lead(c, config.lease_ttl, config.retention, first).await;
            "region leadership"
        });
        if let (Some(p), true) = (&ctl.site.proxy, config.proxy) {
            crate::proxy::serve(&ctl, p, &mut watchers)?;
        }
    }
    let netboot = match role.rack() {
        true => {
            let held = ctl.held_plan();
            serve_shelves(&ctl, &held, &mut followers, &mut watchers, config.tick).await?;
            tracing::info!(
                "serving {} slot(s) of site {} (fileserver {}): DHCP port {}, TFTP port {}, \
                 bootcode.bin from {}",
                held.slots.len(),
                ctl.site.name,
                ctl.fileserver().unwrap_or("?"),
                config.netboot.dhcp.server_port,
                config.netboot.tftp.port,
                ctl.boots
                    .bootcode()
                    .map_or("nowhere yet".into(), |p| p.display().to_string())
            );
            let thread = pirack_netboot::Thread::spawn(
                &held,
                config.netboot,
                Arc::clone(&ctl.boards),
                Arc::clone(&ctl.boots),
                &ctl.bus,
            )
            .await?;
            Some(thread)
        }
        false => {
            tracing::info!(
                "region controller of site {}: {} slot(s), served by the rack controllers",
                ctl.site.name,
                ctl.plan.slots.len()
            );
            None
        }
    };
    let listener = tokio::net::TcpListener::bind(config.api)
        .await
        .map_err(|source| RunError::Api {
            addr: config.api,
            source,
        })?;
    let api = listener.local_addr().map_err(|source| RunError::Api {
        addr: config.api,
        source,
    })?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!("API on {scheme}://{api}");
    let (api_stop, stopped) = oneshot::channel::<()>();
    let limits = config.limits.fitted();
    let api_task = tokio::spawn(api::serve(
        listener,
        Arc::clone(&ctl),
        limits,
        config.tls,
        async {
            let _ = stopped.await;
        },
    ));
    Ok(Running {
        ctl,
        api,
        api_stop,
        api_task,
        watchers,
        netboot,
        followers,
    })
}

/// A rack controller's tasks, for the slots of its fileserver (`held`): root
/// builds a stop cut short resumed, the exporter, the lifecycle driver, the
/// observer and the watchdog, its lease kept, the operations queued for it,
/// and backups (they read the roots).
async fn serve_shelves(
    ctl: &Arc<Controller>,
    held: &pirack_core::plan::Plan,
    followers: &mut JoinSet<&'static str>,
    watchers: &mut JoinSet<&'static str>,
    tick: Duration,
) -> Result<(), RunError> {
    let resumed = ctl.resume().await?;
    if resumed > 0 {
        tracing::info!("resumed {resumed} root build(s) a stop cut short");
    }
    let queue = ctl.export_queue.lock().expect("not poisoned").take();
    if let Some(queue) = queue {
        let (site, plan) = (ctl.site.clone(), held.clone());
        followers.spawn(async move {
            exporter::serve(queue, site, plan).await;
            "exporter"
        });
    }
    let (c, events) = (Arc::clone(ctl), ctl.bus.subscribe());
    followers.spawn(async move {
        netboot::follow(c, events).await;
        "lifecycle driver"
    });
    let c = Arc::clone(ctl);
    watchers.spawn(async move {
        observe::run(c, tick).await;
        "observer"
    });
    let c = Arc::clone(ctl);
    watchers.spawn(async move {
        watchdog::run(c, tick).await;
        "watchdog"
    });
    let c = Arc::clone(ctl);
    watchers.spawn(async move {
        if let Some(held) = &c.lease {
            cluster::hold(&c.store, held).await;
            tracing::error!("this controller no longer holds its shelves: stopping");
        }
        "lease renewal"
    });
    let c = Arc::clone(ctl);
    watchers.spawn(async move {
        cluster::serve_queue(c).await;
        "operation queue"
    });
    let c = Arc::clone(ctl);
    watchers.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            c.summarise_held().await;
        }
    });
    if ctl.site.backup.is_some() {
        let c = Arc::clone(ctl);
        watchers.spawn(async move {
            crate::backup::schedule::run(c).await;
            "backups"
        });
    }
    Ok(())
}

/// [`start`] (after standing by, if the config says so), then
/// [`Running::until`] `shutdown`.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let running = match config.standby && config.role.rack() {
        true => {
            let store = tokio::select! {
                store = stand_by(&config) => store?,
                () = &mut shutdown => return Ok(()),
            };
            start_on(config, store).await?
        }
        false => start(config).await?,
    };
    running.until(shutdown).await
}

/// Opens the store and waits while another rack controller's lease on the
/// shelves is live (saying so in the store's list of controllers); returns
/// the store, fenced by the lease, once it is this controller's.
async fn stand_by(config: &Config) -> Result<Store, RunError> {
    let store = open(config).await?;
    let me = rack_lease(config)?;
    let row = ControllerRow {
        id: me.holder_id(),
        host: me.host.clone(),
        pid: me.pid,
        role: config.role.as_str().into(),
        state: "standby".into(),
        api: config.api.to_string(),
        started_at: me.since,
        seen_at: me.since,
    };
    let mut said = false;
    loop {
        match store.take_lease(&me).await {
            Ok(taken) => {
                if said {
                    tracing::warn!(
                        "the lease {} lapsed: taking over (generation {})",
                        taken.name,
                        taken.generation
                    );
                }
                store.fence_by(taken);
                return Ok(store);
            }
            Err(StoreError::Held(holder)) => {
                if !said {
                    tracing::info!(
                        "standing by: {holder} holds {}; taking over when its lease lapses",
                        me.name
                    );
                    said = true;
                }
                if let Err(e) = store.controller_seen(&row).await {
                    tracing::warn!("cannot say so in the store: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot reach the lease {}: {e}", me.name),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// This controller in the store's list of controllers.
fn registry_row(ctl: &Controller, state: &str, api: &str) -> ControllerRow {
    let me = lease::Lease::mine("", "", 0);
    ControllerRow {
        id: lease::Lease::my_id(),
        host: me.host,
        pid: me.pid,
        role: ctl.role.as_str().into(),
        state: state.into(),
        api: api.into(),
        started_at: me.since,
        seen_at: me.since,
    }
}

/// Says every few seconds that this controller is there (as `me`).
async fn say_here(ctl: Arc<Controller>, me: ControllerRow) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        if let Err(e) = ctl.store.controller_seen(&me).await {
            tracing::warn!("cannot say this controller is here: {e}");
        }
    }
}

impl Running {
    /// Serves until `shutdown` resolves or one of the tasks ends (none should),
    /// then stops everything in order.
    pub async fn until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
        let failed = tokio::select! {
            () = shutdown => None,
            done = &mut self.api_task => Some(match done {
                Ok(Err(source)) => RunError::Api { addr: self.api, source },
                _ => RunError::TaskEnded("API"),
            }),
            () = async {
                match &mut self.netboot {
                    Some(n) => n.ended().await,
                    None => std::future::pending().await,
                }
            } => Some(RunError::TaskEnded("netboot")),
            Some(done) = self.watchers.join_next() => Some(RunError::TaskEnded(done.unwrap_or("a watcher"))),
            Some(done) = self.followers.join_next() => Some(RunError::TaskEnded(done.unwrap_or("a follower"))),
        };
        self.stop().await;
        failed.map_or(Ok(()), Err)
    }

    /// Stops in order: DHCP and TFTP (a controller that lost its shelves
    /// must not answer a Pi its successor serves), the API (no new requests),
    /// the watchdog, the observer and the region's duties (no new power
    /// actions or updates), the operations under way (a cut-short root build
    /// is resumed at the next start), then what follows the netboot events;
    /// then whatever the power drivers started (virtual slots), and last the
    /// store, its leases given up for the next holders.
    pub async fn stop(mut self) {
        if let Some(netboot) = self.netboot {
            netboot.stop().await;
        }
        let _ = self.api_stop.send(());
        if tokio::time::timeout(Duration::from_secs(5), &mut self.api_task)
            .await
            .is_err()
        {
            self.api_task.abort();
        }
        self.watchers.shutdown().await;
        self.ctl.stop_operations().await;
        self.followers.shutdown().await;
        self.ctl.drivers.shutdown();
        let store = &self.ctl.store;
        if let Err(e) = bounded(store.controller_gone(&lease::Lease::my_id())).await {
            tracing::warn!("the store still lists this controller: {e}");
        }
        let leader = self.ctl.leader.lock().expect("not poisoned").take();
        for held in leader.iter().chain(&self.ctl.lease) {
            if let Err(e) = bounded(store.drop_lease(held)).await {
                tracing::warn!("the lease {} lapses (not given up): {e}", held.name);
            }
        }
        store.pool().close().await;
    }
}

/// A last word to the store, given up after two seconds: a store cut off must
/// not hold the stop (what is not said lapses).
async fn bounded(said: impl Future<Output = Result<(), StoreError>>) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(2), said).await {
        Ok(done) => done.map_err(|e| e.to_string()),
        Err(_) => Err("the store did not answer".into()),
    }
}

/// Reloads the live tokens every second: `pirack token revoke` writes the store
/// from another process, and the API checks tokens against its mirror.
async fn refresh_tokens(ctl: Arc<Controller>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Err(e) = ctl.store.refresh_tokens().await {
            tracing::warn!("cannot reload the tokens: {e}");
        }
    }
}

/// Deletes what is older than `retention`, at start and every hour.
pub(crate) async fn prune(ctl: Arc<Controller>, retention: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let before = crate::store::now_ms() - retention.as_millis() as i64;
        match ctl.store.prune(before).await {
            Ok(p) if p == Default::default() => {}
            Ok(p) => tracing::info!(
                "pruned what is older than {} days: {} events, {} operations, {} power records",
                retention.as_secs() / 86_400,
                p.events,
                p.operations,
                p.power
            ),
            Err(e) => tracing::warn!("cannot prune the store: {e}"),
        }
    }
}

/// Logs every netboot event (and prints it as JSON when asked).
async fn log_events(
    ctl: Arc<Controller>,
    mut events: pirack_netboot::events::Receiver,
    json: bool,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(record) => {
                if json {
                    println!("{}", serde_json::to_string(&*record).unwrap_or_default());
                }
                let slot = record.slot.as_deref().unwrap_or("-");
                match &record.event {
                    Event::TftpFailed { .. }
                    | Event::UnknownBoard { .. }
                    | Event::InterfaceDown { .. } => tracing::warn!(slot, "{}", record.event),
                    _ => tracing::info!(slot, "{}", record.event),
                }
            }
            Err(RecvError::Lagged(n)) => {
                ctl.metrics.lagged("event log", n);
                tracing::warn!("event log fell behind; {n} events not logged")
            }
            Err(RecvError::Closed) => return,
        }
    }
}

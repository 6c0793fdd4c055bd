//! pirack's netboot services: DHCP on every slot's storage interface and TFTP for
//! every slot's boot tree, for Pi 3 boot ROMs and firmware, with the board table
//! that says which board is whose and the event bus every observation goes to.
//! They know the plan, not the store: the controller feeds them boards and hears
//! their events.

pub mod boards;
pub mod boots;
pub mod dhcp;
pub mod events;
pub mod links;
pub mod netif;
pub mod tftp;
pub mod wires;

use crate::boards::Boards;
use crate::boots::Boots;
use crate::events::Bus;
use crate::wires::{Spoofs, Wires};
use pirack_core::inventory::Site;
use pirack_core::plan::Plan;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// What `serve` needs beyond the site and its plan.
#[derive(Debug, Clone)]
pub struct Settings {
    pub dhcp: dhcp::server::Config,
    pub tftp: tftp::Config,
}

impl Settings {
    /// The site's own settings, with the standard ports.
    pub fn from_site(site: &Site) -> Settings {
        let mut dhcp = dhcp::server::Config::default();
        dhcp.policy.rom_delay = Duration::from_millis(site.netboot.reply_delay_ms);
        dhcp.policy.serve_non_pi = site.netboot.serve_non_pi;
        Settings {
            dhcp,
            tftp: tftp::Config {
                port: 69,
                ..tftp::Config::default()
            },
        }
    }
}

/// What the DHCP and TFTP servers share: who is in which slot and what it boots,
/// where events go, which wire is whose, and what was dropped for coming in on the
/// wrong one.
pub struct Shared {
    pub boards: Arc<Boards>,
    pub boots: Arc<Boots>,
    pub bus: Bus,
    pub wires: Wires,
    pub spoofs: Spoofs,
}

impl Shared {
    pub fn new(boards: Arc<Boards>, boots: Arc<Boots>, bus: Bus) -> Shared {
        Shared {
            boards,
            boots,
            bus,
            wires: Wires::default(),
            spoofs: Spoofs::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetbootError {
    #[error("cannot bind the TFTP port {port}: {source}")]
    Tftp { port: u16, source: io::Error },
    #[error("cannot bind the DHCP port {port}: {source}")]
    Dhcp { port: u16, source: io::Error },
    #[error("cannot start the netboot thread: {source}")]
    Thread { source: io::Error },
}

/// Starts the netboot services on the current runtime: one watcher of the slots'
/// interfaces, DHCP and TFTP,
/// serving each slot the board `boards` knows in it what `boots` says it boots;
/// the tasks run until aborted.
/// Fails only if a port cannot be bound (both are this process's alone): a
/// missing slot interface is reported on the bus and looked for again while the
/// other slots are served.
pub fn start(
    plan: &Plan,
    settings: Settings,
    boards: Arc<Boards>,
    boots: Arc<Boots>,
    bus: &Bus,
) -> Result<JoinSet<()>, NetbootError> {
    let net = Arc::new(Shared::new(boards, boots, bus.clone()));
    let tftp_port = settings.tftp.port;
    let server = Arc::new(tftp::Server::new(
        &plan.slots,
        Arc::clone(&net),
        settings.tftp,
    ));
    let tftp = server.bind().map_err(|source| NetbootError::Tftp {
        port: tftp_port,
        source,
    })?;
    let dhcp = dhcp::server::bind(&settings.dhcp).map_err(|source| NetbootError::Dhcp {
        port: settings.dhcp.server_port,
        source,
    })?;
    let mut tasks = JoinSet::new();
    tasks.spawn(wires::keep(
        plan.slots.clone(),
        Arc::clone(&net),
        settings.dhcp.retry,
    ));
    tasks.spawn(async move {
        if let Err(e) = server.run(tftp).await {
            tracing::error!("TFTP server stopped: {e}");
        }
    });
    let (slots, cfg) = (plan.slots.clone(), Arc::new(settings.dhcp));
    tasks.spawn(async move {
        if let Err(e) = dhcp::server::run(dhcp, slots, net, cfg).await {
            tracing::error!("DHCP server stopped: {e}");
        }
    });
    Ok(tasks)
}

/// The netboot services on a thread and runtime of their own, so that nothing the
/// controller or its API does (a burst of requests, a slow store) delays a boot.
pub struct Thread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    ended: tokio::sync::oneshot::Receiver<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Thread {
    /// [`start`]s the services on a new thread; fails as [`start`] does.
    pub async fn spawn(
        plan: &Plan,
        settings: Settings,
        boards: Arc<Boards>,
        boots: Arc<Boots>,
        bus: &Bus,
    ) -> Result<Thread, NetbootError> {
        let (plan, bus) = (plan.clone(), bus.clone());
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ended_tx, ended) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("netboot".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(source) => {
                        let _ = ready_tx.send(Err(NetbootError::Thread { source }));
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut tasks = match start(&plan, settings, boards, boots, &bus) {
                        Ok(t) => t,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    tokio::select! {
                        _ = stopped => {}
                        _ = tasks.join_next() => {
                            let _ = ended_tx.send(());
                        }
                    }
                    tasks.shutdown().await;
                });
            })
            .map_err(|source| NetbootError::Thread { source })?;
        match ready.await {
            Ok(Ok(())) => Ok(Thread {
                stop: Some(stop),
                ended,
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(NetbootError::Thread {
                source: io::Error::other("the netboot thread died starting"),
            }),
        }
    }

    /// Resolves if a service stops on its own (none should).
    pub async fn ended(&mut self) {
        let _ = (&mut self.ended).await;
    }

    /// Stops the services and waits for their thread.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

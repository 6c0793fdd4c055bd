//! pirack's netboot services: DHCP on every slot's storage interface and TFTP for
//! every slot's boot tree, for Pi 3 boot ROMs and firmware, with the board table
//! that says which board is whose and the event bus every observation goes to.
//! They know the plan, not the store: the controller feeds them boards and hears
//! their events.

pub mod boards;
pub mod boots;
pub mod dhcp;
pub mod events;
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
}

/// Starts the netboot services: a watcher per slot interface, DHCP and TFTP,
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
    for slot in &plan.slots {
        tasks.spawn(wires::watch(
            slot.clone(),
            Arc::clone(&net),
            settings.dhcp.retry,
        ));
    }
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

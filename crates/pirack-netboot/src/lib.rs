//! pirack's netboot services: DHCP on every slot's storage interface and TFTP for
//! every slot's boot tree, for Pi 3 boot ROMs and firmware, with the board table
//! that says which board is whose and the event bus every observation goes to.
//! They know the plan, not the store: the controller feeds them boards and hears
//! their events.

pub mod boards;
pub mod dhcp;
pub mod events;
pub mod netif;
pub mod tftp;

use crate::boards::Boards;

use crate::events::Bus;
use crate::tftp::SlotTree;
use pirack_core::inventory::Site;
use pirack_core::plan::Plan;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// What `serve` needs beyond the site and its plan.
#[derive(Debug, Clone)]
pub struct Settings {
    pub boot_files: PathBuf,
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
            boot_files: PathBuf::from(&site.netboot.boot_files),
            dhcp,
            tftp: tftp::Config {
                port: 69,
                ..tftp::Config::default()
            },
        }
    }
}

/// Starts DHCP for every slot and the TFTP server, serving each slot the board
/// `boards` knows in it; the tasks run until aborted. Fails only if the TFTP port
/// cannot be bound: a missing slot interface is reported on the bus and retried
/// while the other slots are served.
pub fn start(
    site: &Site,
    plan: &Plan,
    settings: Settings,
    boards: Arc<Boards>,
    bus: &Bus,
) -> io::Result<JoinSet<()>> {
    let trees = plan
        .slots
        .iter()
        .map(|s| SlotTree::new(site, s, &settings.boot_files))
        .collect();
    let server = Arc::new(tftp::Server::new(
        trees,
        Arc::clone(&boards),
        bus.clone(),
        settings.tftp,
    ));
    let sock = server.bind()?;
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        if let Err(e) = server.run(sock).await {
            tracing::error!("TFTP server stopped: {e}");
        }
    });
    let dhcp_cfg = Arc::new(settings.dhcp);
    for slot in &plan.slots {
        tasks.spawn(dhcp::server::serve_slot(
            slot.clone(),
            Arc::clone(&boards),
            bus.clone(),
            Arc::clone(&dhcp_cfg),
        ));
    }
    Ok(tasks)
}

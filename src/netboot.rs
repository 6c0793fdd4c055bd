//! The netboot services together: DHCP on every slot's interface and TFTP for
//! every slot's tree, reporting to one event bus.

use crate::boards::Boards;
use crate::dhcp;
use crate::events::Bus;
use crate::inventory::Site;
use crate::plan::Plan;
use crate::tftp::{self, SlotTree};
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

/// Starts DHCP for every slot and the TFTP server; the tasks run until aborted.
/// Fails only if the TFTP port cannot be bound: a missing slot interface is
/// reported on the bus and retried while the other slots are served.
pub fn start(site: &Site, plan: &Plan, settings: Settings, bus: &Bus) -> io::Result<JoinSet<()>> {
    let boards = Arc::new(Boards::new(plan, site.unknown_board));
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

//! The address plan: pure functions from (inventory, ledger) to each slot's
//! addresses and to every rendered configuration file. Nothing here touches the
//! network or the disk except [`Ledger::load`]/[`Ledger::save`].

mod allocate;
pub mod ledger;
pub mod render;

pub use allocate::{PlanError, allocate};
pub use ledger::{Allocation, Ledger, LedgerError};

use crate::inventory::{Model, Site, Slot, SlotKey, SlotKind, hostname};
use ipnet::Ipv4Net;
use serde::Serialize;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Everything decided for one slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotPlan {
    pub key: SlotKey,
    pub position: String,
    pub shelf: String,
    pub hostname: String,
    pub fqdn: Option<String>,
    pub owner: Option<String>,
    pub board: Option<BoardPlan>,
    /// Untagged storage VLAN of the slot's port.
    pub vlan: u16,
    /// The fileserver serving the slot (its shelf's).
    pub fileserver: String,
    /// The fileserver's interface for that VLAN.
    pub interface: String,
    pub storage: Ipv4Net,
    pub fileserver_ip: Ipv4Addr,
    pub pi_ip: Ipv4Addr,
    /// Tagged public VLAN of the shelf.
    pub public_vlan: u16,
    pub ipv6: Ipv6Addr,
    pub ipv6_on_link: u8,
    pub ipv6_gateway: Ipv6Addr,
    /// The slot's NFS root on the fileserver.
    pub root: String,
    pub fsid: u32,
    #[serde(skip_serializing_if = "SlotKind::is_pi3")]
    pub kind: SlotKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardPlan {
    pub serial: String,
    pub mac: String,
    pub model: Model,
}

impl SlotPlan {
    pub fn netmask(&self) -> Ipv4Addr {
        self.storage.netmask()
    }
}

/// The plan of a whole site, slots in inventory order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub site: String,
    pub slots: Vec<SlotPlan>,
}

/// Allocates what is missing and works out every slot's addresses and names.
/// Returns the plan and the ledger it was made from (the input ledger plus any new
/// allocations); running it again on that ledger changes nothing.
pub fn plan(site: &Site, ledger: &Ledger) -> Result<(Plan, Ledger), PlanError> {
    let ledger = allocate(site, ledger)?;
    let slots = site
        .slots
        .iter()
        .map(|slot| slot_plan(site, slot, &ledger.slots[&slot.key]))
        .collect();
    Ok((
        Plan {
            site: site.name.clone(),
            slots,
        },
        ledger,
    ))
}

fn slot_plan(site: &Site, slot: &Slot, a: &Allocation) -> SlotPlan {
    let fs = site.fileserver_of(slot);
    let shelf = site.shelf_of(slot);
    let net = u32::from(a.storage.network());
    let fileserver_ip = Ipv4Addr::from(net + 1);
    let pi_ip = Ipv4Addr::from(net + 2);
    let host = hostname(&site.hostname, &site.name, &shelf.name, slot);
    let interface = fs.interface_name.render(|v| match v {
        "trunk" => fs.trunk_interface.clone(),
        _ => a.vlan.to_string(),
    });
    let root_dir = fs.root_name.render(|v| match v {
        "pi_ip" => pi_ip.to_string(),
        "slot" => slot.position.clone(),
        "switch" => slot.key.switch.clone(),
        "port" => slot.port().to_string(),
        _ => a.vlan.to_string(),
    });
    SlotPlan {
        key: slot.key.clone(),
        position: slot.position.clone(),
        shelf: shelf.name.clone(),
        fqdn: site
            .domain
            .as_ref()
            .map(|d| format!("{host}.{}", d.trim_end_matches('.'))),
        hostname: host,
        owner: slot.owner.map(|o| site.owners[o].name.clone()),
        board: slot.board.map(|b| BoardPlan {
            serial: b.serial.to_string(),
            mac: b.mac.to_string(),
            model: b.model,
        }),
        vlan: a.vlan,
        fileserver: fs.name.clone(),
        interface,
        storage: a.storage,
        fileserver_ip,
        pi_ip,
        public_vlan: shelf.public_vlan,
        ipv6: a.ipv6,
        ipv6_on_link: shelf.on_link,
        ipv6_gateway: shelf.gateway,
        kind: slot.kind,
        root: format!("{}/{root_dir}", fs.export_root),
        fsid: a.fsid,
    }
}

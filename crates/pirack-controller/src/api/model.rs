//! What the API sends and takes, with the schemas the OpenAPI document shows (events
//! and operations go out as the store keeps them).

use crate::Controller;
use crate::power::PowerAction;
use crate::store::slots::SlotRow;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A slot: a place for a Pi (switch port), its addresses and its lifecycle state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Slot {
    /// `switch/port`.
    pub key: String,
    /// Where it hangs, e.g. `A-07` (row A, seventh from the left).
    pub position: String,
    /// The shelf it is on (its switch's).
    pub shelf: Option<String>,
    /// Lifecycle state: empty, registered, building_root, ready, powering_on, dhcp,
    /// tftp, kernel_loaded, nfs_mounted, up, failed, reimaging, powered_off,
    /// decommissioned.
    pub state: String,
    /// When the state was entered (Unix ms).
    pub state_since: i64,
    pub owner: Option<String>,
    pub image: Option<String>,
    /// Serial of the board in the slot.
    pub board: Option<String>,
    /// Watchdog power cycles spent on the current boot.
    pub recoveries: i64,
    pub hostname: Option<String>,
    /// The Pi's address on its storage VLAN.
    pub storage_ip: Option<String>,
    /// The Pi's public address.
    pub ipv6: Option<String>,
    /// pi3 (a Pi 3 on a PoE port) or qemu-raspi3b (a virtual one, with a console log).
    pub kind: String,
}

impl Slot {
    pub fn new(ctl: &Controller, row: SlotRow) -> Slot {
        let plan = ctl.slot_plan(&row.key);
        Slot {
            hostname: plan.map(|p| p.hostname.clone()),
            storage_ip: plan.map(|p| p.pi_ip.to_string()),
            ipv6: plan.map(|p| p.ipv6.to_string()),
            kind: plan.map_or("pi3", |p| p.kind.as_str()).into(),
            shelf: plan.map(|p| p.shelf.clone()),
            key: row.key,
            position: row.position,
            state: row.state.to_string(),
            state_since: row.state_since,
            owner: row.owner,
            image: row.image,
            board: row.board,
            recoveries: row.recoveries,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    /// Image id, e.g. `ci-tiny-1`.
    pub image: String,
    /// The customer; admins must name one, a customer token is its own.
    pub owner: Option<String>,
    /// A particular free slot (position or key) instead of any.
    pub slot: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerRequest {
    #[schema(value_type = String, example = "cycle")]
    /// on, off or cycle.
    pub action: PowerAction,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReimageRequest {
    pub image: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Oldest first, only events with a larger id (to follow what happens).
    pub after: Option<i64>,
    /// Newest first, only events with a smaller id: pass the last id of a page
    /// to read the one before it. Without `after` or `before`: the newest.
    pub before: Option<i64>,
    /// At most this many (1..=1000, default 100).
    pub limit: Option<i64>,
    /// Only this slot's (position or key).
    pub slot: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub slots: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Whoami {
    /// The token's id.
    pub id: String,
    pub name: String,
    /// admin or customer.
    pub scope: String,
    /// The customer whose slots a customer token sees.
    pub owner: Option<String>,
}

/// A slot's PoE port as the switch reads it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Port {
    pub switch: String,
    pub port: u16,
    /// on or off.
    pub admin: String,
    /// RFC 3621 detection status: disabled, searching, delivering-power, fault, ...
    pub detection: String,
    /// Milliwatts drawn, where the switch reports it per port.
    pub draw_mw: Option<u64>,
}

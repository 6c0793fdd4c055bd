//! Which board is in which slot. The store keeps it (the inventory's boards,
//! boards adopted by site policy, boards staff accepted); the netboot services'
//! table is built from the store at start and kept in step with it, so an adopted
//! board is still the slot's after a restart and a held one boots once accepted.

use crate::Controller;
use crate::actions::By;
use crate::error::OpError;
use crate::store::boards::BoardRow;
use crate::store::slots::{Changes, SlotRow};
use crate::store::{Store, StoreError};
use pirack_core::inventory::{MacAddr, Serial, Site};
use pirack_core::lifecycle::Trigger;
use pirack_core::plan::Plan;
use pirack_netboot::boards::{Boards, Known};
use std::collections::HashMap;

/// The netboot services' board table, as the store has it.
pub async fn table(store: &Store, site: &Site, plan: &Plan) -> Result<Boards, StoreError> {
    let rows: HashMap<String, SlotRow> = store
        .slots(None)
        .await?
        .into_iter()
        .map(|r| (r.key.clone(), r))
        .collect();
    let boards: HashMap<String, BoardRow> = store
        .boards()
        .await?
        .into_iter()
        .map(|b| (b.id.clone(), b))
        .collect();
    let known = plan.slots.iter().map(|s| {
        let board = rows
            .get(&s.key.to_string())
            .and_then(|r| r.board.as_deref());
        let known = match board {
            Some(id) => known(id, boards.get(id)),
            None => Known::default(),
        };
        (s.position.clone(), known)
    });
    Ok(Boards::new(site.unknown_board, known))
}

/// A board by its store id (its serial, or its MAC while the serial is unknown)
/// and the MAC the store saw it with.
fn known(id: &str, row: Option<&BoardRow>) -> Known {
    Known {
        serial: id.parse::<Serial>().ok(),
        mac: row
            .and_then(|b| b.mac.parse::<MacAddr>().ok())
            .or_else(|| id.parse().ok()),
    }
}

/// A board the slot did not know, seen by the netboot services: recorded, and
/// when the site adopts it, the slot's board from now on (the customer keeps the
/// slot, its addresses and its root); when the site holds it, an alert until
/// staff accept it.
pub async fn seen(
    ctl: &Controller,
    slot: &SlotRow,
    mac: &str,
    serial: Option<&str>,
    adopted: bool,
) {
    let id = serial.unwrap_or(mac);
    // A board asking again (or a Pi making up MACs) is recorded once.
    if !ctl.quiet.new_board(&slot.key, id) {
        return;
    }
    if let Err(e) = ctl
        .store
        .saw_board(id, mac, "pi3", &slot.key, !adopted)
        .await
    {
        tracing::warn!("cannot record board {id}: {e}");
    }
    if adopted && slot.board.as_deref() != Some(id) {
        let changes = Changes {
            board: Some(Some(id.to_string())),
            ..Changes::default()
        };
        let cause = format!("board {id} ({mac}) adopted by site policy");
        if let Err(e) = ctl
            .apply(&slot.key, Trigger::BoardKnown, &cause, changes)
            .await
        {
            tracing::warn!("{}: {e}", slot.position);
        }
    } else if !adopted {
        let detail = format!(
            "board {id} ({mac}) in slot {} is held, not served; accept it with `pirack board accept {}`",
            slot.position, slot.position
        );
        ctl.note(slot, Some(id), "alert", "site policy: hold", &detail)
            .await;
    }
}

impl Controller {
    /// Staff confirm the board the site policy held in `slot`: it becomes the
    /// slot's board in the store and the netboot services serve it from now on.
    pub async fn accept_board(&self, slot: &SlotRow, by: &By) -> Result<SlotRow, OpError> {
        let (id, mac, _) = self
            .store
            .boards_in(&slot.key)
            .await?
            .into_iter()
            .find(|(_, _, held)| *held)
            .ok_or_else(|| OpError::NoHeldBoard(slot.position.clone()))?;
        let changes = Changes {
            board: Some(Some(id.clone())),
            actor: by.token.clone(),
            ..Changes::default()
        };
        let cause = format!("board {id} ({mac}) accepted by {}", by.name);
        let row = self
            .apply(&slot.key, Trigger::BoardKnown, &cause, changes)
            .await?;
        self.store.board_accepted(&id).await?;
        let row_of = BoardRow {
            id: id.clone(),
            mac,
            slot: Some(slot.key.clone()),
            held: false,
        };
        self.boards.set(&slot.position, known(&id, Some(&row_of)));
        Ok(row)
    }
}

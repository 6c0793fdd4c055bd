//! Drives the lifecycle from what the netboot services see: a DHCP request moves a
//! powered slot to `dhcp`, a boot file to `tftp`, the kernel to `kernel_loaded`.
//! Observations a state does not expect are kept as events, never forced.

use super::Controller;
use crate::events::{Event, Record};
use crate::inventory::Model;
use crate::lifecycle::{self, Trigger};
use crate::plan::render::slot::config_txt;
use crate::sim::pi::Config;
use crate::store::events::NewEvent;
use crate::store::now_ms;
use crate::store::slots::Changes;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Follows the event bus until it closes.
pub async fn run(ctl: Arc<Controller>) {
    let mut rx = ctl.bus.subscribe();
    // The file the firmware boots as the kernel, per slot (from its config.txt).
    let kernels: HashMap<String, String> = ctl
        .plan
        .slots
        .iter()
        .map(|s| {
            let model = s.board.as_ref().map_or(Model::Pi3B, |b| b.model);
            let kernel = Config::parse(&config_txt(&ctl.site, s), model).kernel;
            (s.position.clone(), kernel)
        })
        .collect();
    loop {
        match rx.recv().await {
            Ok(rec) => observe(&ctl, &kernels, &rec).await,
            Err(RecvError::Lagged(n)) => tracing::warn!("lifecycle driver missed {n} events"),
            Err(RecvError::Closed) => return,
        }
    }
}

async fn observe(ctl: &Controller, kernels: &HashMap<String, String>, rec: &Record) {
    let Some(position) = rec.slot.as_deref() else {
        return;
    };
    let (trigger, metric) = match &rec.event {
        Event::DhcpDiscover { .. } => (
            Some(Trigger::DhcpSeen),
            Some(("pirack_dhcp_packets_total", "discover")),
        ),
        Event::DhcpRequest { .. } => (
            Some(Trigger::DhcpSeen),
            Some(("pirack_dhcp_packets_total", "request")),
        ),
        Event::DhcpAck { .. } => (None, Some(("pirack_dhcp_packets_total", "ack"))),
        Event::DhcpOffer { .. } => (None, Some(("pirack_dhcp_packets_total", "offer"))),
        Event::TftpStarted { file, .. } => {
            let kernel = kernels
                .get(position)
                .is_some_and(|k| file.trim_start_matches('/').ends_with(k.as_str()));
            (
                Some(if kernel {
                    Trigger::KernelServed
                } else {
                    Trigger::TftpSeen
                }),
                None,
            )
        }
        Event::TftpFinished { .. } => (None, Some(("pirack_tftp_files_total", "done"))),
        Event::TftpProbed { .. } => (None, Some(("pirack_tftp_files_total", "probed"))),
        Event::TftpFailed { .. } => (None, Some(("pirack_tftp_files_total", "failed"))),
        Event::TftpRefused { .. } => (None, Some(("pirack_tftp_files_total", "refused"))),
        _ => (None, None),
    };
    if let Some((name, kind)) = metric {
        let label = if name == "pirack_dhcp_packets_total" {
            "kind"
        } else {
            "result"
        };
        ctl.metrics.count(name, &[(label, kind)]);
    }
    let Ok(slot) = ctl.store.slot(position).await else {
        return;
    };
    if let Event::UnknownBoard {
        mac,
        serial,
        adopted,
    } = &rec.event
    {
        swapped_board(ctl, &slot, mac, serial.as_deref(), *adopted).await;
    }
    let Some(trigger) = trigger else {
        // Boot files and refusals are kept as observations.
        if matches!(
            rec.event,
            Event::TftpFinished { .. }
                | Event::TftpFailed { .. }
                | Event::TftpRefused { .. }
                | Event::UnknownBoard { .. }
        ) {
            let e = NewEvent {
                at: now_ms(),
                slot: Some(slot.key.clone()),
                board: slot.board.clone(),
                kind: "observed".into(),
                cause: "netboot".into(),
                detail: rec.event.to_string(),
            };
            if let Err(err) = ctl.store.event(&e).await {
                tracing::warn!("cannot record event: {err}");
            }
        }
        return;
    };
    match lifecycle::next(slot.state, trigger) {
        Ok(to) if to == slot.state => {}
        Ok(_) => {
            let spent = (now_ms() - slot.state_since) as f64 / 1000.0;
            match ctl
                .apply(
                    &slot.key,
                    trigger,
                    &rec.event.to_string(),
                    Changes::default(),
                )
                .await
            {
                Ok(_) => ctl.metrics.stage(slot.state.as_str(), spent),
                Err(e) => tracing::warn!("{position}: {trigger}: {e}"),
            }
        }
        Err(illegal) => {
            let e = NewEvent {
                at: now_ms(),
                slot: Some(slot.key.clone()),
                board: slot.board.clone(),
                kind: "unexpected".into(),
                cause: rec.event.to_string(),
                detail: illegal.to_string(),
            };
            if let Err(err) = ctl.store.event(&e).await {
                tracing::warn!("cannot record event: {err}");
            }
        }
    }
}

/// A board the slot did not know: recorded, and when the site adopts it, the slot's
/// board from now on (the customer keeps the slot, its addresses and its root).
async fn swapped_board(
    ctl: &Controller,
    slot: &crate::store::slots::SlotRow,
    mac: &str,
    serial: Option<&str>,
    adopted: bool,
) {
    let id = serial.unwrap_or(mac);
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
        let alert = NewEvent {
            at: now_ms(),
            slot: Some(slot.key.clone()),
            board: Some(id.to_string()),
            kind: "alert".into(),
            cause: "site policy: hold".into(),
            detail: format!(
                "board {id} ({mac}) in slot {} is held, not served",
                slot.position
            ),
        };
        if let Err(e) = ctl.store.event(&alert).await {
            tracing::warn!("cannot record event: {e}");
        }
    }
}

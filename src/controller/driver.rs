//! Drives the lifecycle from what the netboot services see: a DHCP request moves a
//! powered slot to `dhcp`, a boot file to `tftp`, the kernel to `kernel_loaded`.
//! Observations a state does not expect are kept as events, never forced.

use super::Controller;
use crate::events::{Event, Record};
use crate::firmware::Config;
use crate::inventory::Model;
use crate::lifecycle::{self, Trigger};
use crate::plan::render::slot::config_txt;
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

/// The counter an event adds to: (metric, label, value).
fn counted(event: &Event) -> Option<(&'static str, &'static str, &'static str)> {
    const DHCP: &str = "pirack_dhcp_packets_total";
    const TFTP: &str = "pirack_tftp_files_total";
    Some(match event {
        Event::DhcpDiscover { .. } => (DHCP, "kind", "discover"),
        Event::DhcpRequest { .. } => (DHCP, "kind", "request"),
        Event::DhcpOffer { .. } => (DHCP, "kind", "offer"),
        Event::DhcpAck { .. } => (DHCP, "kind", "ack"),
        Event::TftpFinished { .. } => (TFTP, "result", "done"),
        Event::TftpProbed { .. } => (TFTP, "result", "probed"),
        Event::TftpFailed { .. } => (TFTP, "result", "failed"),
        Event::TftpRefused { .. } => (TFTP, "result", "refused"),
        _ => return None,
    })
}

async fn observe(ctl: &Controller, kernels: &HashMap<String, String>, rec: &Record) {
    if let Some((name, label, value)) = counted(&rec.event) {
        ctl.metrics.count(name, &[(label, value)]);
    }
    let Some(position) = rec.slot.as_deref() else {
        return;
    };
    let trigger = match &rec.event {
        Event::DhcpDiscover { .. } | Event::DhcpRequest { .. } => Some(Trigger::DhcpSeen),
        Event::TftpStarted { file, .. } => {
            let kernel = kernels
                .get(position)
                .is_some_and(|k| file.trim_start_matches('/').ends_with(k.as_str()));
            Some(if kernel {
                Trigger::KernelServed
            } else {
                Trigger::TftpSeen
            })
        }
        _ => None,
    };
    // Boot files and refusals are kept as observations; offers, acks and probes
    // are only counted, without a trip to the store.
    let kept = matches!(
        rec.event,
        Event::TftpFinished { .. } | Event::TftpFailed { .. } | Event::TftpRefused { .. }
    );
    let board = matches!(rec.event, Event::UnknownBoard { .. });
    if trigger.is_none() && !kept && !board {
        return;
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
        return swapped_board(ctl, &slot, mac, serial.as_deref(), *adopted).await;
    }
    let Some(trigger) = trigger else {
        let detail = rec.event.to_string();
        return ctl
            .note(
                &slot.key,
                slot.board.as_deref(),
                "observed",
                "netboot",
                &detail,
            )
            .await;
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
            let (cause, detail) = (rec.event.to_string(), illegal.to_string());
            ctl.note(
                &slot.key,
                slot.board.as_deref(),
                "unexpected",
                &cause,
                &detail,
            )
            .await
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
        let detail = format!(
            "board {id} ({mac}) in slot {} is held, not served",
            slot.position
        );
        ctl.note(&slot.key, Some(id), "alert", "site policy: hold", &detail)
            .await;
    }
}

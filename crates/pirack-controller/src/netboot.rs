//! The lifecycle driven by what the netboot services see: a DHCP request moves a
//! powered slot to `dhcp`, a boot file to `tftp`, the kernel to `kernel_loaded`; a
//! board the slot did not know is recorded (`boards`). Observations a state does
//! not expect are kept as events, never forced.

use crate::Controller;
use crate::store::now_ms;
use crate::store::slots::Changes;
use pirack_core::firmware::Config;
use pirack_core::inventory::Model;
use pirack_core::lifecycle::{self, Trigger};
use pirack_core::plan::render::slot::config_txt;
use pirack_netboot::events::{Event, Record};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Follows the event bus until it closes.
pub async fn follow(ctl: Arc<Controller>) {
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
        return crate::boards::seen(ctl, &slot, mac, serial.as_deref(), *adopted).await;
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

//! The lifecycle driven by what the netboot services see: a DHCP request moves a
//! powered slot to `dhcp`, a boot file to `tftp`, the kernel to `kernel_loaded`; a
//! board the slot did not know is recorded (`boards`). Observations a state does
//! not expect are kept as events, never forced.

use crate::store::now_ms;
use crate::store::slots::Changes;
use crate::{Controller, quiet};
use pirack_core::firmware::Config;
use pirack_core::inventory::Model;
use pirack_core::lifecycle::{self, Trigger};
use pirack_netboot::events::{Event, Record};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

/// How many of one slot's events may wait for its worker before more are
/// missed (a Pi's boot is a few dozen).
const SLOT_BACKLOG: usize = 256;

/// Trips to the store the lifecycle takes at once: half its connections on
/// PostgreSQL, so the API and the others keep theirs.
const AT_ONCE: usize = 8;

/// Follows the event bus until it closes. Each slot's events are applied in
/// order by a worker of its own: one slot's trip to the store (a few round
/// trips on PostgreSQL) never holds up another's, and the bus is read as fast
/// as it fills, so a storm of boots is not missed while the store is slow.
pub async fn follow(ctl: Arc<Controller>, mut rx: pirack_netboot::events::Receiver) {
    let mut slots: HashMap<String, mpsc::Sender<Arc<Record>>> = HashMap::new();
    let mut workers = JoinSet::new();
    let trips = Arc::new(Semaphore::new(AT_ONCE));
    loop {
        match rx.recv().await {
            Ok(rec) => {
                let Some(position) = rec.slot.clone() else {
                    // Counted and logged: no slot's to store.
                    apply(&ctl, &rec, &mut HashSet::new()).await;
                    continue;
                };
                let worker = slots.entry(position).or_insert_with(|| {
                    let (tx, rx) = mpsc::channel(SLOT_BACKLOG);
                    workers.spawn(slot_worker(Arc::clone(&ctl), rx, Arc::clone(&trips)));
                    tx
                });
                if worker.try_send(rec).is_err() {
                    ctl.metrics.lagged("lifecycle driver", 1);
                    tracing::warn!("lifecycle driver: a slot's backlog is full; an event missed");
                }
            }
            Err(RecvError::Lagged(n)) => {
                ctl.metrics.lagged("lifecycle driver", n);
                tracing::warn!("lifecycle driver missed {n} events")
            }
            Err(RecvError::Closed) => {
                drop(slots);
                while workers.join_next().await.is_some() {}
                return;
            }
        }
    }
}

/// Applies one slot's events in order, each under a permit of `trips`.
async fn slot_worker(
    ctl: Arc<Controller>,
    mut rx: mpsc::Receiver<Arc<Record>>,
    trips: Arc<Semaphore>,
) {
    // Wires already reported for each protocol: one alert each (whatever
    // addresses they go on to claim).
    let mut alerted = HashSet::new();
    while let Some(rec) = rx.recv().await {
        let Ok(_trip) = trips.acquire().await else {
            return;
        };
        apply(&ctl, &rec, &mut alerted).await;
    }
}

async fn apply(ctl: &Controller, rec: &Record, alerted: &mut HashSet<(String, String)>) {
    match &rec.event {
        Event::Spoofed {
            claimed,
            protocol,
            dropped,
            ..
        } => spoofed(ctl, rec, (*claimed, protocol), *dropped, alerted).await,
        _ => observe(ctl, rec).await,
    }
}

/// Datagrams dropped for claiming another slot's address on this slot's wire:
/// counted, and an alert on the slot they came from the first time it does so
/// with that protocol.
async fn spoofed(
    ctl: &Controller,
    rec: &Record,
    (claimed, protocol): (IpAddr, &str),
    dropped: u64,
    alerted: &mut HashSet<(String, String)>,
) {
    ctl.metrics
        .spoofed
        .get_or_create(&crate::metrics::ProtocolLabel {
            protocol: protocol.into(),
        })
        .inc_by(dropped);
    let Some(position) = rec.slot.as_deref() else {
        tracing::warn!("{}", rec.event);
        return;
    };
    if !alerted.insert((position.to_string(), protocol.to_string())) {
        return;
    }
    tracing::warn!(slot = position, "{}", rec.event);
    if let Ok(slot) = ctl.store.slot(position).await {
        let detail = format!(
            "the Pi in {position} sends {protocol} as {claimed}, an address not its own; dropped"
        );
        let cause = format!("isolation ({protocol})");
        ctl.note(&slot, slot.board.as_deref(), "alert", &cause, &detail)
            .await;
    }
}

/// Counts an event where it has a counter: DHCP packets by kind, TFTP
/// transfers by result.
fn count(m: &crate::metrics::Metrics, event: &Event) {
    use crate::metrics::{KindLabel, ResultLabel};
    let dhcp = |kind: &str| m.dhcp.get_or_create(&KindLabel { kind: kind.into() }).inc();
    let tftp = |result: &str| {
        m.tftp
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc()
    };
    match event {
        Event::DhcpDiscover { .. } => dhcp("discover"),
        Event::DhcpRequest { .. } => dhcp("request"),
        Event::DhcpOffer { .. } => dhcp("offer"),
        Event::DhcpAck { .. } => dhcp("ack"),
        Event::TftpFinished { .. } => tftp("done"),
        Event::TftpProbed { .. } => tftp("probed"),
        Event::TftpFailed { .. } => tftp("failed"),
        Event::TftpRefused { .. } => tftp("refused"),
        _ => return,
    };
}

/// The lifecycle step an event is: a DHCP request; a boot file started; the
/// kernel (`kernel`, the file the slot's config.txt boots) only once its transfer
/// completed — a Pi that stalls mid-kernel is still fetching, not booting Linux.
fn trigger(event: &Event, kernel: Option<&str>) -> Option<Trigger> {
    let is_kernel = |file: &str| kernel.is_some_and(|k| file.trim_start_matches('/').ends_with(k));
    match event {
        Event::DhcpDiscover { .. } | Event::DhcpRequest { .. } => Some(Trigger::DhcpSeen),
        Event::TftpStarted { .. } => Some(Trigger::TftpSeen),
        Event::TftpFinished { file, .. } if is_kernel(file) => Some(Trigger::KernelServed),
        _ => None,
    }
}

async fn observe(ctl: &Controller, rec: &Record) {
    count(ctl.metrics, &rec.event);
    let Some(position) = rec.slot.as_deref() else {
        return;
    };
    // The kernel of what the slot boots now, as its config.txt names it.
    let kernel = ctl.boots.get(position).map(|b| {
        let model = ctl
            .slot_plan(position)
            .and_then(|s| s.board.as_ref())
            .map_or(Model::Pi3B, |b| b.model);
        Config::parse(&String::from_utf8_lossy(&b.config), model).kernel
    });
    let trigger = trigger(&rec.event, kernel.as_deref());
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
        let kind = match rec.event {
            Event::TftpFinished { .. } => quiet::TFTP_FILES,
            _ => quiet::TFTP_REFUSALS,
        };
        if ctl.quiet.admit(&slot.key, kind, "", "observed", &detail) {
            ctl.record(&slot, slot.board.as_deref(), "observed", "netboot", &detail)
                .await;
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
            let (cause, detail) = (rec.event.to_string(), illegal.to_string());
            if ctl
                .quiet
                .admit(&slot.key, quiet::UNEXPECTED, "", "unexpected", &detail)
            {
                ctl.record(&slot, slot.board.as_deref(), "unexpected", &cause, &detail)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_slot_is_kernel_loaded_only_once_its_kernel_transfer_completed() {
        let peer = "10.46.189.2:49152".parse().unwrap();
        let file = "7285c0f2/kernel8.img".to_string();
        let started = Event::TftpStarted {
            peer,
            file: file.clone(),
            size: 8 << 20,
        };
        let failed = Event::TftpFailed {
            peer,
            file: file.clone(),
            bytes: 4 << 20,
            duration: Duration::from_secs(3),
            error: "timed out".into(),
        };
        let finished = Event::TftpFinished {
            peer,
            file,
            bytes: 8 << 20,
            duration: Duration::from_secs(2),
        };
        let k = Some("kernel8.img");
        assert_eq!(trigger(&started, k), Some(Trigger::TftpSeen));
        assert_eq!(trigger(&failed, k), None);
        assert_eq!(trigger(&finished, k), Some(Trigger::KernelServed));
        let other = Event::TftpFinished {
            peer,
            file: "7285c0f2/start.elf".into(),
            bytes: 1,
            duration: Duration::ZERO,
        };
        assert_eq!(trigger(&other, k), None);
    }
}

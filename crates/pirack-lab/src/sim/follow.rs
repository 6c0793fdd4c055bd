//! Simulated Pis that live on their switch port's power, as real ones do: each boots
//! when its PoE port reads on (asked of the switch over SNMP, with the inventory's
//! profile), dies the moment it reads off, and boots again at the next power-on,
//! all the way to Linux (NFS root mounted, public address answering). A Pi can be
//! told to hang after bootcode.bin for its first boots, for the watchdog to find.

use super::pi::{self, BootOptions, Linux};
use super::{Prepared, Report, SimError, lab::Lab};
use pirack_controller::switch::power::Fleet;
use pirack_core::inventory::Site;
use pirack_core::plan::Plan;
use pirack_core::switch::Profiles;
use pirack_core::switch::port::Admin;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the switch is asked about its ports.
const POWER_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Default)]
pub struct FollowOptions {
    /// Boots that hang after bootcode.bin, by position (the first N of that Pi).
    pub stalls: BTreeMap<String, u32>,
}

/// One boot of one Pi, as printed (a JSON line each).
#[derive(Debug, Serialize)]
pub struct BootLine {
    pub boot: u32,
    #[serde(flatten)]
    pub report: Report,
}

struct Pi {
    netns: String,
    board: pi::Board,
    expected: pi::Expected,
    linux: Linux,
    switch: String,
    port: u16,
    /// Set while the Pi has no power (or the run is stopping): it halts at once.
    halted: Arc<AtomicBool>,
}

/// Runs until `stop`, printing a line per boot; the network is removed on return.
pub fn follow(
    site: &Site,
    plan: &Plan,
    profiles: &Profiles,
    prepared: Prepared,
    controller_netns: Option<&str>,
    f: &FollowOptions,
    stop: &'static AtomicBool,
) -> Result<(), SimError> {
    let fleet = Fleet::new(site, profiles).map_err(|e| SimError::Power(e.to_string()))?;
    let Prepared { lab, pis, .. } = prepared;
    let mut all = Vec::new();
    for (netns, board, expected) in pis {
        let slot = plan
            .slots
            .iter()
            .find(|s| s.position == board.position)
            .ok_or_else(|| SimError::UnknownSlot(board.position.clone()))?;
        all.push(Arc::new(Pi {
            netns,
            linux: Linux {
                nfs_server: slot.fileserver_ip,
                public: slot.ipv6,
                reach_port: site.watchdog.reach_port,
            },
            switch: slot.key.switch.clone(),
            port: slot.key.port,
            board,
            expected,
            halted: Arc::new(AtomicBool::new(true)),
        }));
    }
    let watcher = {
        let pis = all.clone();
        // The switch is asked from the controller's side, where its management
        // network is.
        let netns = controller_netns.map(str::to_string);
        std::thread::spawn(move || {
            if let Some(ns) = netns
                && let Err(e) = crate::testbed::netns::enter(&ns)
            {
                tracing::error!("simulated power: entering {ns}: {e}");
                stop.store(true, Ordering::Relaxed);
            }
            watch_power(&fleet, &pis, stop)
        })
    };
    let threads: Vec<_> = all
        .iter()
        .map(|p| {
            let (p, stalls) = (
                Arc::clone(p),
                f.stalls.get(&p.board.position).copied().unwrap_or(0),
            );
            std::thread::spawn(move || live(&p, stalls, stop))
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let _ = watcher.join();
    drop::<Lab>(lab);
    Ok(())
}

/// Keeps every Pi's `halted` flag in step with its port (and with `stop`).
fn watch_power(fleet: &Fleet, pis: &[Arc<Pi>], stop: &AtomicBool) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("simulated power: {e}");
            stop.store(true, Ordering::Relaxed);
            return;
        }
    };
    let mut by_switch: BTreeMap<&str, Vec<&Arc<Pi>>> = BTreeMap::new();
    for p in pis {
        by_switch.entry(&p.switch).or_default().push(p);
    }
    let mut last_error = String::new();
    while !stop.load(Ordering::Relaxed) {
        for (name, group) in &by_switch {
            let ports: Vec<u16> = group.iter().map(|p| p.port).collect();
            let read = rt.block_on(async { fleet.get(name)?.status(&ports).await });
            match read {
                Ok(statuses) => {
                    for (p, s) in group.iter().zip(statuses) {
                        p.halted.store(s.admin != Admin::On, Ordering::Relaxed);
                    }
                }
                Err(e) if e.to_string() != last_error => {
                    last_error = e.to_string();
                    tracing::warn!("simulated power: {last_error}");
                }
                Err(_) => {}
            }
        }
        std::thread::sleep(POWER_POLL);
    }
    for p in pis {
        p.halted.store(true, Ordering::Relaxed);
    }
}

/// One Pi's life: wait for power, boot, run until the power goes, again.
fn live(p: &Pi, mut stalls: u32, stop: &AtomicBool) {
    if let Err(e) = crate::testbed::netns::enter(&p.netns) {
        tracing::error!("{}: entering {}: {e}", p.board.position, p.netns);
        return;
    }
    let mut boot = 0;
    while !stop.load(Ordering::Relaxed) {
        if p.halted.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        boot += 1;
        let opts = BootOptions {
            stall_after_bootcode: stalls > 0,
            linux: Some(p.linux.clone()),
        };
        stalls = stalls.saturating_sub(1);
        let (report, running) = pi::boot_with(&p.board, &p.expected, &p.halted, &opts);
        match serde_json::to_string(&BootLine { boot, report }) {
            Ok(line) => println!("{line}"),
            Err(e) => tracing::warn!("report: {e}"),
        }
        // Up, or hung as a Pi 3 hangs: either way only a power cut moves it on.
        while !p.halted.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(running);
    }
}

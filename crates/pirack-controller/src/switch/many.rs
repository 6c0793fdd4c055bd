//! Power operations over many ports at once (a shelf, a list of slots). Every port
//! of a run is locked for the whole run; switches work in parallel, each with its own
//! inrush budget. A cycle switches all its ports off together, drains once, then
//! switches them on in staggered batches.

use super::power::{Fleet, PowerError, SwitchControl};
use pirack_core::switch::port::{Admin, PortStatus};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// A port named by the slot it powers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRef {
    pub slot: String,
    pub switch: String,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    On,
    Off,
    Cycle,
    Status,
}

/// Overrides of the switches' power policies for one run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub drain: Option<Duration>,
    pub batch: Option<usize>,
    pub interval: Option<Duration>,
    /// Switch every port on at once.
    pub no_stagger: bool,
}

#[derive(Debug)]
pub struct Outcome {
    pub target: PortRef,
    pub result: Result<PortStatus, PowerError>,
}

/// Called as each port finishes, for progress displays.
pub type Progress = Arc<dyn Fn(&Outcome) + Send + Sync>;

/// Runs `action` on every target; outcomes come back in target order.
pub async fn run(
    fleet: &Fleet,
    targets: &[PortRef],
    action: Action,
    opts: &Options,
    progress: Progress,
) -> Vec<Outcome> {
    let mut per_switch: BTreeMap<&str, Vec<PortRef>> = BTreeMap::new();
    let mut outcomes = Vec::new();
    for t in targets {
        match fleet.get(&t.switch) {
            Ok(_) => per_switch.entry(&t.switch).or_default().push(t.clone()),
            Err(e) => outcomes.push(Outcome {
                target: t.clone(),
                result: Err(e),
            }),
        }
    }
    let mut tasks = JoinSet::new();
    for (name, mut ports) in per_switch {
        let sw = fleet.get(name).expect("checked above").clone();
        ports.sort_by_key(|t| t.port);
        ports.dedup_by_key(|t| t.port);
        let (opts, progress) = (opts.clone(), progress.clone());
        tasks.spawn(async move { on_switch(sw, ports, action, opts, progress).await });
    }
    while let Some(done) = tasks.join_next().await {
        outcomes.extend(done.expect("power task panicked"));
    }
    let order = |t: &PortRef| targets.iter().position(|x| x == t);
    outcomes.sort_by_key(|o| order(&o.target));
    outcomes
}

async fn on_switch(
    sw: Arc<SwitchControl>,
    targets: Vec<PortRef>,
    action: Action,
    opts: Options,
    progress: Progress,
) -> Vec<Outcome> {
    let mut done = Vec::new();
    let finish = |done: &mut Vec<Outcome>, o: Outcome| {
        progress(&o);
        done.push(o);
    };
    if action == Action::Status {
        let ports: Vec<u16> = targets.iter().map(|t| t.port).collect();
        match sw.status(&ports).await {
            Ok(statuses) => {
                for (t, s) in targets.into_iter().zip(statuses) {
                    finish(
                        &mut done,
                        Outcome {
                            target: t,
                            result: Ok(s),
                        },
                    );
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for t in targets {
                    let result = Err(PowerError::Failed(msg.clone()));
                    finish(&mut done, Outcome { target: t, result });
                }
            }
        }
        return done;
    }
    // Lock in port order, so two runs over overlapping ports cannot deadlock.
    let mut held = Vec::new();
    let mut live = Vec::new();
    for t in targets {
        match sw.lock_port(t.port).await {
            Ok(guard) => {
                held.push(guard);
                live.push(t);
            }
            Err(e) => finish(
                &mut done,
                Outcome {
                    target: t,
                    result: Err(e),
                },
            ),
        }
    }
    if matches!(action, Action::Off | Action::Cycle) {
        let mut off = Vec::new();
        for o in set_all(&sw, live, Admin::Off).await {
            match o.result {
                Ok(_) if action == Action::Cycle => off.push(o.target),
                _ => finish(&mut done, o),
            }
        }
        if off.is_empty() {
            return done;
        }
        tokio::time::sleep(
            opts.drain
                .unwrap_or(Duration::from_millis(sw.policy.drain_ms)),
        )
        .await;
        live = off;
    }
    if matches!(action, Action::On | Action::Cycle) {
        let batch = if opts.no_stagger {
            live.len().max(1)
        } else {
            opts.batch.unwrap_or(usize::from(sw.policy.batch)).max(1)
        };
        let interval = opts
            .interval
            .unwrap_or(Duration::from_millis(sw.policy.batch_interval_ms));
        let batches: Vec<Vec<PortRef>> = live.chunks(batch).map(<[_]>::to_vec).collect();
        let count = batches.len();
        for (i, group) in batches.into_iter().enumerate() {
            let started = Instant::now();
            for o in set_all(&sw, group, Admin::On).await {
                finish(&mut done, o);
            }
            if i + 1 < count {
                tokio::time::sleep(interval.saturating_sub(started.elapsed())).await;
            }
        }
    }
    drop(held);
    done
}

/// Sets every port concurrently (the switch's session still serialises the SNMP).
async fn set_all(sw: &Arc<SwitchControl>, targets: Vec<PortRef>, want: Admin) -> Vec<Outcome> {
    let mut tasks = JoinSet::new();
    for t in targets {
        let sw = sw.clone();
        tasks.spawn(async move {
            let result = sw.set_locked(t.port, want).await;
            Outcome { target: t, result }
        });
    }
    let mut out = Vec::new();
    while let Some(o) = tasks.join_next().await {
        out.push(o.expect("power task panicked"));
    }
    out.sort_by_key(|o| o.target.port);
    out
}

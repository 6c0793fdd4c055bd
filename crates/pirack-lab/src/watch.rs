//! The terminal's view of a demo: one line per Pi with its lifecycle stage, what
//! the watchdog does, each boot as the simulated Pi reports it, and a summary of
//! every Pi's time to `up`. On a terminal the lines are live progress bars; in a
//! log, each change is a line of its own.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Instant;

/// The boot stages in order: a bar's position.
const STAGES: [&str; 6] = [
    "powering_on",
    "dhcp",
    "tftp",
    "kernel_loaded",
    "nfs_mounted",
    "up",
];

struct Pi {
    bar: ProgressBar,
    state: String,
    recoveries: i64,
    boots: u32,
    /// The last boot's stage timings: as the controller saw its state change
    /// once it is up, else as the simulated Pi measured them.
    stages: String,
    /// Unix ms of the power-on, and of reaching `up`.
    powered_at: i64,
    up_after_ms: Option<i64>,
}

pub struct Watch {
    multi: MultiProgress,
    tty: bool,
    started: Instant,
    pis: BTreeMap<String, Pi>,
}

/// How many Pis are up and failed.
pub struct Tally {
    pub up: usize,
    pub failed: usize,
}

impl Watch {
    pub fn new(positions: &[String]) -> Watch {
        let tty = std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(match tty {
            true => ProgressDrawTarget::stderr(),
            false => ProgressDrawTarget::hidden(),
        });
        let style = ProgressStyle::with_template("{prefix:>6} [{bar:18.green}] {msg}")
            .expect("a valid template")
            .progress_chars("=> ");
        let pis = positions
            .iter()
            .map(|p| {
                let bar = multi.add(ProgressBar::new(STAGES.len() as u64));
                bar.set_style(style.clone());
                bar.set_prefix(p.clone());
                bar.set_message("powered off");
                let pi = Pi {
                    bar,
                    state: String::new(),
                    recoveries: 0,
                    boots: 0,
                    stages: String::new(),
                    powered_at: 0,
                    up_after_ms: None,
                };
                (p.clone(), pi)
            })
            .collect();
        Watch {
            multi,
            tty,
            started: Instant::now(),
            pis,
        }
    }

    /// A line above the bars (or on stdout without a terminal).
    pub fn say(&self, line: &str) {
        match self.tty {
            true => {
                let _ = self.multi.println(line);
            }
            false => println!("{:>6.1} s  {line}", self.started.elapsed().as_secs_f64()),
        }
    }

    /// Notes when each Pi was powered on (Unix ms).
    pub fn powered(&mut self, position: &str, at_ms: i64) {
        if let Some(pi) = self.pis.get_mut(position) {
            pi.powered_at = at_ms;
        }
    }

    /// Takes the API's slot list; says what changed.
    pub fn update(&mut self, slots: &Value) -> Tally {
        let mut lines = Vec::new();
        for s in slots.as_array().into_iter().flatten() {
            let Some(pi) = s["position"].as_str().and_then(|p| self.pis.get_mut(p)) else {
                continue;
            };
            let position = s["position"].as_str().unwrap_or_default();
            let state = s["state"].as_str().unwrap_or("?").to_string();
            let recoveries = s["recoveries"].as_i64().unwrap_or(0);
            if recoveries > pi.recoveries {
                lines.push(format!(
                    "{position}: stalled in {}; the watchdog power-cycled its port (recovery {recoveries})",
                    pi.state.replace('_', " ")
                ));
            }
            if state != pi.state {
                if state == "up" && pi.powered_at > 0 {
                    let since = s["state_since"].as_i64().unwrap_or(pi.powered_at);
                    pi.up_after_ms = Some(since - pi.powered_at);
                }
                if !self.tty {
                    lines.push(format!("{position}: {}", state.replace('_', " ")));
                }
                let at = STAGES
                    .iter()
                    .position(|st| *st == state)
                    .map_or(0, |i| i + 1);
                pi.bar.set_position(at as u64);
            }
            pi.state = state;
            pi.recoveries = recoveries;
            let extra = match (pi.recoveries, pi.up_after_ms) {
                (0, None) => String::new(),
                (r, None) => format!("  recoveries: {r}"),
                (r, Some(ms)) => format!("  up after {:.1} s, recoveries: {r}", ms as f64 / 1000.0),
            };
            pi.bar
                .set_message(format!("{}{extra}", pi.state.replace('_', " ")));
        }
        for l in lines {
            self.say(&l);
        }
        Tally {
            up: self.pis.values().filter(|p| p.state == "up").count(),
            failed: self.pis.values().filter(|p| p.state == "failed").count(),
        }
    }

    /// Takes one boot report line from the simulator.
    pub fn boot(&mut self, line: &Value) {
        let Some(pi) = line["position"].as_str().and_then(|p| self.pis.get_mut(p)) else {
            return;
        };
        pi.boots += 1;
        pi.stages = line["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|st| {
                format!(
                    "{} {:.2} s",
                    st[0].as_str().unwrap_or("?"),
                    st[1].as_f64().unwrap_or(0.0) / 1000.0
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let what = match line["error"].as_str() {
            None => format!(
                "booted in {:.1} s",
                line["total_ms"].as_f64().unwrap_or(0.0) / 1000.0
            ),
            Some(e) => e.to_string(),
        };
        let msg = format!(
            "{} boot {}: {what} ({} files, {:.1} MB over TFTP)",
            line["position"].as_str().unwrap_or("?"),
            line["boot"],
            line["files"],
            line["bytes"].as_f64().unwrap_or(0.0) / 1e6
        );
        self.say(&msg);
    }

    /// Takes the slot's last boot's stages from its events (newest first, as
    /// the API pages them): each stage's time is from entering it to leaving it.
    pub fn stages_seen(&mut self, position: &str, events: &Value) {
        if let (Some(pi), Some(stages)) = (self.pis.get_mut(position), stages_of(events)) {
            pi.stages = stages;
        }
    }

    /// The closing table: each Pi's time from power-on to `up`, its boots and
    /// recoveries, and its last boot's stages.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{:<6} {:>9} {:>5} {:>10}  LAST BOOT'S STAGES\n",
            "SLOT", "TO UP", "BOOTS", "RECOVERIES"
        );
        for (position, pi) in &self.pis {
            let up = pi
                .up_after_ms
                .map_or("-".to_string(), |ms| format!("{:.1} s", ms as f64 / 1000.0));
            out += &format!(
                "{position:<6} {up:>9} {:>5} {:>10}  {}\n",
                pi.boots, pi.recoveries, pi.stages
            );
        }
        out
    }

    /// Each Pi's state, for a failure report.
    pub fn states(&self) -> String {
        self.pis
            .iter()
            .map(|(p, pi)| format!("{p} {}", pi.state))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn finish(&self) {
        for pi in self.pis.values() {
            pi.bar.abandon();
        }
    }
}

/// A boot's stages from state-change events (newest first): from the last
/// `-> powering_on` to `-> up`, each stage's name and seconds; `None` until
/// such a boot is seen.
fn stages_of(events: &Value) -> Option<String> {
    let mut changes: Vec<(i64, &str)> = events
        .as_array()?
        .iter()
        .filter_map(|e| {
            let (_, to) = e["detail"].as_str()?.split_once(" -> ")?;
            Some((e["at"].as_i64()?, to))
        })
        .collect();
    changes.reverse();
    let start = changes.iter().rposition(|(_, to)| *to == "powering_on")?;
    let boot = &changes[start..];
    boot.last().filter(|(_, to)| *to == "up")?;
    Some(
        boot.windows(2)
            .map(|w| format!("{} {:.2} s", w[0].1, (w[1].0 - w[0].0) as f64 / 1000.0))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boots_stages_come_from_its_state_changes() {
        let ev = |at: i64, d: &str| serde_json::json!({ "at": at, "detail": d });
        // Newest first; an earlier boot that stalled, then a clean one.
        let events = Value::Array(vec![
            ev(9_000, "nfs_mounted -> up"),
            ev(8_100, "kernel_loaded -> nfs_mounted"),
            ev(8_000, "tftp -> kernel_loaded"),
            ev(5_000, "dhcp -> tftp"),
            ev(4_500, "powering_on -> dhcp"),
            ev(1_000, "tftp -> powering_on"),
            ev(500, "dhcp -> tftp"),
            ev(0, "powering_on -> dhcp"),
        ]);
        assert_eq!(
            stages_of(&events).unwrap(),
            "powering_on 3.50 s, dhcp 0.50 s, tftp 3.00 s, kernel_loaded 0.10 s, nfs_mounted 0.90 s"
        );
        assert_eq!(
            stages_of(&Value::Array(events.as_array().unwrap()[1..].to_vec())),
            None
        );
    }
}

//! `power` and `switch`: PoE power per slot, and pushing the port VLAN plan.

use super::client::Remote;
use super::inputs::{Inputs, load};
use anyhow::{Result, bail};
use pirack_controller::api::client::{ClientError, segment};
use pirack_controller::switch::many::{self, Action, Options, Outcome, PortRef};
use pirack_controller::switch::power::Fleet;
use pirack_controller::switch::vlan;
use pirack_core::inventory::Site;
use pirack_core::switch::drift;
use pirack_core::switch::port::SupplyStatus;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerVerb {
    /// Switch the slots' PoE ports on (staggered in batches).
    On,
    /// Switch the slots' PoE ports off.
    Off,
    /// Off, wait for the board to drain, on again.
    Cycle,
    /// Show admin state, detection status and power draw.
    Status,
}

/// Which slots a command acts on.
#[derive(clap::Args)]
pub struct Selection {
    /// Slots by position or switch/port (sw-a/7).
    pub slots: Vec<String>,
    /// Every slot of the inventory.
    #[arg(long, conflicts_with_all = ["slots", "shelf"])]
    pub all: bool,
    /// Every slot of one shelf.
    #[arg(long, conflicts_with = "slots")]
    pub shelf: Option<String>,
}

#[derive(clap::Args)]
pub struct PowerFlags {
    /// Time a cycled port stays off [default, and the least: the switch's
    /// power.drain_ms].
    #[arg(long)]
    pub drain_ms: Option<u64>,
    /// Ports switched on together [default: the switch's power.batch].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Pause between batches [default: the switch's power.batch_interval_ms].
    #[arg(long)]
    pub interval_ms: Option<u64>,
    /// Switch every port on at once.
    #[arg(long)]
    pub no_stagger: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

fn select(site: &Site, sel: &Selection) -> Result<Vec<PortRef>> {
    let port_ref = |s: &pirack_core::inventory::Slot| PortRef {
        slot: s.position.clone(),
        switch: s.key.switch.clone(),
        port: s.key.port,
    };
    if sel.all {
        return Ok(site.slots.iter().map(port_ref).collect());
    }
    if let Some(shelf) = &sel.shelf {
        let Some(index) = site.shelves.iter().position(|s| &s.name == shelf) else {
            bail!("no shelf `{shelf}` in the inventory");
        };
        return Ok(site
            .slots
            .iter()
            .filter(|s| site.switches[s.switch].shelf == index)
            .map(port_ref)
            .collect());
    }
    if sel.slots.is_empty() {
        bail!("name the slots (A-07 or sw-a/7), or give --all or --shelf");
    }
    sel.slots
        .iter()
        .map(|name| {
            site.slots
                .iter()
                .find(|s| &s.position == name || s.key.to_string() == *name)
                .map(port_ref)
                .ok_or_else(|| anyhow::anyhow!("no slot `{name}` in the inventory"))
        })
        .collect()
}

pub fn power(
    inputs: &Inputs,
    verb: PowerVerb,
    sel: &Selection,
    flags: &PowerFlags,
) -> Result<ExitCode> {
    let l = load(inputs)?;
    let targets = select(&l.site, sel)?;
    let fleet = Fleet::new(&l.site, &l.profiles)?;
    let action = match verb {
        PowerVerb::On => Action::On,
        PowerVerb::Off => Action::Off,
        PowerVerb::Cycle => Action::Cycle,
        PowerVerb::Status => Action::Status,
    };
    let opts = Options {
        drain: flags.drain_ms.map(Duration::from_millis),
        batch: flags.batch,
        interval: flags.interval_ms.map(Duration::from_millis),
        no_stagger: flags.no_stagger,
    };
    let bar = indicatif::ProgressBar::new(targets.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ports {elapsed}")
            .expect("valid template"),
    );
    if targets.len() < 2 || action == Action::Status {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_message(format!("{verb:?}").to_lowercase());
    let shown = bar.clone();
    let progress: many::Progress = Arc::new(move |_: &Outcome| shown.inc(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (outcomes, totals) = rt.block_on(async {
        let outcomes = many::run(&fleet, &targets, action, &opts, progress).await;
        let mut totals = Vec::new();
        if action == Action::Status {
            for sw in fleet.switches() {
                if targets.iter().any(|t| t.switch == sw.name) {
                    totals.push((sw.name.clone(), sw.supply().await));
                }
            }
        }
        (outcomes, totals)
    });
    bar.finish_and_clear();
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    if flags.json {
        let rows: Vec<serde_json::Value> = outcomes.iter().map(outcome_json).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&outcomes);
        for (switch, supply) in totals {
            // A switch that could not be read shows why in its ports' rows above.
            let Ok(supply) = supply else { continue };
            if let Some(state) = supply.status.filter(|s| *s != SupplyStatus::On) {
                println!("{switch}: the PSE is {state}");
            }
            if let Some(w) = supply.draw_w {
                println!("{switch}: the PSE draws {w} W in all");
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} port(s) failed", outcomes.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn outcome_json(o: &Outcome) -> serde_json::Value {
    let t = &o.target;
    match &o.result {
        Ok(s) => serde_json::json!({
            "slot": t.slot, "switch": t.switch, "port": t.port, "ok": true,
            "admin": s.admin, "detection": s.detection, "draw_mw": s.draw_mw,
        }),
        Err(e) => serde_json::json!({
            "slot": t.slot, "switch": t.switch, "port": t.port, "ok": false,
            "error": e.to_string(),
        }),
    }
}

fn print_table(outcomes: &[Outcome]) {
    println!(
        "{:<8} {:<12} {:<6} {:<17} {:>8}",
        "SLOT", "PORT", "ADMIN", "DETECTION", "DRAW"
    );
    for o in outcomes {
        let t = &o.target;
        let port = format!("{}/{}", t.switch, t.port);
        match &o.result {
            Ok(s) => {
                let draw = s
                    .draw_mw
                    .map(|mw| format!("{:.2} W", mw as f64 / 1000.0))
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<8} {:<12} {:<6} {:<17} {:>8}",
                    t.slot,
                    port,
                    s.admin.to_string(),
                    s.detection.to_string(),
                    draw
                );
            }
            Err(e) => println!("{:<8} {:<12} error: {e}", t.slot, port),
        }
    }
}

#[derive(clap::Subcommand)]
pub enum SwitchAction {
    /// Push the plan's port VLANs: read the switch, print the drift, write only what
    /// differs, read back.
    Apply {
        #[command(flatten)]
        inputs: Inputs,
        /// Only this switch [default: every switch].
        #[arg(long)]
        switch: Option<String>,
        /// Print the drift; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn switch(action: &SwitchAction) -> Result<ExitCode> {
    let SwitchAction::Apply {
        inputs,
        switch,
        dry_run,
    } = action;
    let l = load(inputs)?;
    let (plan, ledger) = pirack_core::plan::plan(&l.site, &l.ledger)?;
    if ledger != l.ledger {
        bail!(
            "ledger {} lacks allocations for some slots; run `pirack plan` first",
            l.ledger_path.display()
        );
    }
    let plans = pirack_core::plan::render::switch::plan_switches(&l.site, &plan);
    if let Some(name) = switch
        && !plans.iter().any(|p| &p.switch == name)
    {
        bail!("no switch `{name}` in the inventory");
    }
    let fleet = Fleet::new(&l.site, &l.profiles)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut failed = false;
    for sw_plan in plans
        .iter()
        .filter(|p| switch.as_ref().is_none_or(|s| *s == p.switch))
    {
        let sw = fleet.get(&sw_plan.switch)?;
        match rt.block_on(vlan::apply(sw, sw_plan, *dry_run)) {
            Ok(changes) if changes.is_empty() => {
                println!("switch {}: no drift", sw.name);
            }
            Ok(changes) => {
                println!("switch {}: {} change(s)", sw.name, changes.len());
                for c in &changes {
                    println!("  {}", drift::Shown(c, &sw.profile));
                }
                if *dry_run {
                    println!("switch {}: dry run, nothing written", sw.name);
                } else {
                    println!(
                        "switch {}: written and read back, no drift remains",
                        sw.name
                    );
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `power` through the controller's API: it checks the lifecycle, switches the
/// port, and records the slot's new state.
pub fn remote_power(
    remote: &Remote,
    verb: PowerVerb,
    sel: &Selection,
    json: bool,
) -> Result<ExitCode> {
    let c = remote.connect()?;
    if sel.shelf.is_some() {
        bail!("--shelf needs --inventory (the API addresses slots); name the slots or give --all");
    }
    let slots: Vec<String> = if sel.all {
        let all = c.call("GET", "/v1/slots", None)?;
        all.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["position"].as_str().map(str::to_string))
            .collect()
    } else if sel.slots.is_empty() {
        bail!("name the slots (A-07), or give --all");
    } else {
        sel.slots.clone()
    };
    let action = match verb {
        PowerVerb::On => "on",
        PowerVerb::Off => "off",
        PowerVerb::Cycle => "cycle",
        PowerVerb::Status => {
            let rows: Vec<serde_json::Value> = slots
                .iter()
                .map(|s| c.call("GET", &format!("/v1/slots/{}", segment(s)), None))
                .collect::<Result<_, _>>()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in rows {
                    println!(
                        "{:<8} {}",
                        r["position"].as_str().unwrap_or("-"),
                        r["state"].as_str().unwrap_or("-")
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let body = serde_json::json!({ "action": action });
    let started: Vec<(String, Result<serde_json::Value, ClientError>)> = slots
        .iter()
        .map(|s| {
            (
                s.clone(),
                c.call(
                    "POST",
                    &format!("/v1/slots/{}/power", segment(s)),
                    Some(&body),
                ),
            )
        })
        .collect();
    let mut failed = 0;
    for (slot, op) in started {
        match op.and_then(|op| c.wait(&op)) {
            Ok(done) if json => println!("{done}"),
            Ok(done) => println!("{slot:<8} {}", done["detail"].as_str().unwrap_or("")),
            Err(e) => {
                failed += 1;
                println!("{slot:<8} error: {e}");
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

//! `check`, `plan` and `ledger`: the inventory and its address plan.

use super::inputs::{Inputs, load};
use super::owner::StoreArg;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use pirack_controller::output;
use pirack_core::inventory::SlotKey;
use pirack_core::plan::{self, render};
use std::path::Path;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum LedgerAction {
    /// List every allocation, marking those of slots no longer in the inventory.
    Show(Inputs),
    /// Free the allocations of slots removed from the inventory, for reuse.
    Release {
        #[command(flatten)]
        inputs: Inputs,
        /// The controller's store: released there too (refused while it runs).
        #[command(flatten)]
        db: StoreArg,
        /// Slot keys as SWITCH/PORT.
        #[arg(required = true)]
        slots: Vec<SlotKey>,
    },
}

pub fn check(inputs: &Inputs) -> Result<ExitCode> {
    let l = load(inputs)?;
    let (plan, _) = plan::plan(&l.site, &l.ledger)
        .with_context(|| format!("planning against ledger {}", l.ledger_path.display()))?;
    let boards = plan.slots.iter().filter(|s| s.board.is_some()).count();
    println!(
        "{}: ok: site {}, {} switch(es), {} slot(s), {} board(s)",
        inputs.inventory.display(),
        l.site.name,
        l.site.switches.len(),
        plan.slots.len(),
        boards
    );
    Ok(ExitCode::SUCCESS)
}

pub fn plan_cmd(inputs: &Inputs, out: Option<&Path>, check: bool, json: bool) -> Result<ExitCode> {
    let l = load(inputs)?;
    let (plan, ledger) = plan::plan(&l.site, &l.ledger)
        .with_context(|| format!("planning against ledger {}", l.ledger_path.display()))?;
    let tree = render::render(&l.site, &plan, &l.profiles);
    if json {
        let doc = serde_json::json!({
            "plan": plan,
            "switches": render::switch::plan_switches(&l.site, &plan),
            "files": tree.keys().collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    let ledger_changed = ledger != l.ledger;
    if check {
        let dir = out.expect("clap requires --out with --check");
        let diff = output::diff_tree(dir, &tree)?;
        print!("{diff}");
        if ledger_changed {
            println!(
                "ledger {} lacks allocations the plan needs; run `pirack plan` without --check",
                l.ledger_path.display()
            );
        }
        if !diff.is_empty() || ledger_changed {
            return Ok(ExitCode::FAILURE);
        }
        eprintln!("{}: up to date ({} files)", dir.display(), tree.len());
        return Ok(ExitCode::SUCCESS);
    }
    if ledger_changed {
        output::save_ledger(&ledger, &l.ledger_path)?;
        let added = ledger.slots.len() - l.ledger.slots.len();
        eprintln!(
            "ledger {}: {added} new allocation(s)",
            l.ledger_path.display()
        );
    }
    if let Some(dir) = out {
        let r = output::write_tree(dir, &tree)?;
        eprintln!(
            "{}: {} slot(s); {} file(s) written, {} unchanged, {} removed",
            dir.display(),
            plan.slots.len(),
            r.written,
            r.unchanged,
            r.removed
        );
    } else if !json {
        bail!("nothing to do: give --out DIR, --json, or both");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn ledger_show(inputs: &Inputs) -> Result<ExitCode> {
    let l = load(inputs)?;
    println!(
        "# {} (next fsid {})",
        l.ledger_path.display(),
        l.ledger.next_fsid
    );
    println!(
        "{:<16} {:<10} {:>5} {:<18} {:<40} {:>5}  state",
        "slot", "position", "vlan", "storage", "ipv6", "fsid"
    );
    for (key, a) in &l.ledger.slots {
        let state = match l.site.slots.iter().any(|s| &s.key == key) {
            true => "active",
            false => "removed (reserved until released)",
        };
        println!(
            "{:<16} {:<10} {:>5} {:<18} {:<40} {:>5}  {state}",
            key.to_string(),
            a.position,
            a.vlan,
            a.storage.to_string(),
            a.ipv6.to_string(),
            a.fsid
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Releases in the YAML ledger and in the store (when there is one), so the two
/// stay one ledger.
pub fn ledger_release(inputs: &Inputs, db: &StoreArg, keys: &[SlotKey]) -> Result<ExitCode> {
    db.refuse_if_owned("pirack ledger release", "the controller allocates from it")?;
    let mut l = load(inputs)?;
    for key in keys {
        if let Some(slot) = l.site.slots.iter().find(|s| &s.key == key) {
            bail!(
                "slot {key} ({}) is still in {}: remove it from the inventory first",
                slot.position,
                inputs.inventory.display()
            );
        }
        match l.ledger.slots.remove(key) {
            Some(a) => println!(
                "released {key} ({}): VLAN {}, {}, {}",
                a.position, a.vlan, a.storage, a.ipv6
            ),
            None => bail!("{key} holds nothing in {}", l.ledger_path.display()),
        }
    }
    output::save_ledger(&l.ledger, &l.ledger_path)?;
    db.with(async |store| {
        for key in keys {
            store.release(&key.to_string()).await?;
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

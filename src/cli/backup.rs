//! `pirack backup`: the slots' roots backed up with restic to every target,
//! listed and restored, run on the fileserver (as root: the roots keep
//! their owners) against the inventory.

use super::inputs::{Inputs, load};
use super::owner::StoreArg;
use super::roots::export;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use pirack_controller::backup;
use pirack_core::plan::{self, SlotPlan};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum BackupAction {
    /// Back the slots' roots up now, to every target (or the one named).
    Run {
        /// Positions of the slots.
        #[arg(required = true)]
        slots: Vec<String>,
        /// Only this target [default: every one].
        #[arg(long)]
        target: Option<String>,
    },
    /// Forget the slot's snapshots beyond its retention, and prune.
    Forget {
        /// Position of the slot.
        slot: String,
        /// Only this target [default: every one].
        #[arg(long)]
        target: Option<String>,
    },
    /// Check the slot's owner's repositories (today's part of their data).
    Check {
        /// Position of a slot of the owner.
        slot: String,
        /// Only this target [default: every one].
        #[arg(long)]
        target: Option<String>,
    },
    /// A slot's backups at each target: its newest snapshot, how many, the
    /// repository's size, and what the controller last saw.
    Show {
        /// Position of the slot.
        slot: String,
        /// Only this target [default: every one].
        #[arg(long)]
        target: Option<String>,
    },
    /// A slot's snapshots at each target.
    List {
        /// Position of the slot.
        slot: String,
        /// Only this target [default: every one].
        #[arg(long)]
        target: Option<String>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build the slot's root from a snapshot and swap it in (the replaced
    /// root kept for `pirack root rollback`).
    Restore {
        /// Position of the slot.
        slot: String,
        /// A snapshot's id or short id [default: the newest].
        #[arg(long)]
        snapshot: Option<String>,
        /// The target to restore from [default: the first that has it].
        /// Only this target [default: every one].
        #[arg(long)]
        target: Option<String>,
        /// Confirms the Pi is off: needed to replace a root in service.
        #[arg(long)]
        powered_off: bool,
        /// Leave the NFS exports as they are.
        #[arg(long)]
        no_export: bool,
    },
}

pub fn backup(inputs: &Inputs, db: &StoreArg, action: BackupAction) -> Result<ExitCode> {
    if matches!(action, BackupAction::Restore { .. }) {
        db.refuse_if_owned(
            "pirack backup restore",
            "power the slot off through it and stop it",
        )?;
    }
    let l = load(inputs)?;
    let (plan, _) = plan::plan(&l.site, &l.ledger)?;
    // Each slot's owner: the store's (provisioned through the API), else the
    // inventory's; it chooses the repositories.
    let owners: std::collections::HashMap<String, Option<String>> = db
        .with(async |store| {
            Ok(store
                .slots(None)
                .await?
                .into_iter()
                .map(|r| (r.position, r.owner))
                .collect())
        })?
        .unwrap_or_default();
    let owner = |s: &SlotPlan| -> Option<String> {
        owners
            .get(&s.position)
            .cloned()
            .flatten()
            .or_else(|| s.owner.clone())
    };
    let slot = |position: &str| -> Result<&SlotPlan> {
        plan.slots
            .iter()
            .find(|s| s.position == position)
            .with_context(|| format!("no slot {position} in {}", inputs.inventory.display()))
    };
    match action {
        BackupAction::Run { slots, target } => {
            let only: Vec<&str> = target.iter().map(String::as_str).collect();
            let mut failed = 0;
            for position in &slots {
                let s = slot(position)?;
                let bar = indicatif::ProgressBar::new(100).with_style(
                    indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {percent}%")
                        .expect("valid template"),
                );
                let (taken, outcomes) =
                    backup::run(&l.site, s, owner(s).as_deref(), &only, &mut |t, st| {
                        bar.set_message(format!("{position} to {t}"));
                        bar.set_position((st.percent_done * 100.0) as u64);
                    })?;
                bar.finish_and_clear();
                for o in outcomes {
                    match o.result {
                        Ok(s) => println!(
                            "{position} to {}: snapshot {} ({}): {} files, {} new, {} changed, {} bytes added",
                            o.target,
                            &s.snapshot_id[..s.snapshot_id.len().min(8)],
                            taken.name(),
                            s.total_files_processed,
                            s.files_new,
                            s.files_changed,
                            s.data_added
                        ),
                        Err(e) => {
                            failed += 1;
                            eprintln!("{position} to {}: {e}", o.target);
                        }
                    }
                }
            }
            if failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        BackupAction::Forget {
            slot: position,
            target,
        } => {
            let s = slot(&position)?;
            let only: Vec<&str> = target.iter().map(String::as_str).collect();
            let done = backup::forget(&l.site, s, owner(s).as_deref(), &only, true)?;
            return Ok(report(&position, "retention applied", done));
        }
        BackupAction::Check {
            slot: position,
            target,
        } => {
            let s = slot(&position)?;
            let only: Vec<&str> = target.iter().map(String::as_str).collect();
            let done = backup::check(&l.site, owner(s).as_deref(), &only)?;
            return Ok(report(&position, "repository checked", done));
        }
        BackupAction::List {
            slot: position,
            target,
            json,
        } => {
            let s = slot(&position)?;
            let only: Vec<&str> = target.iter().map(String::as_str).collect();
            let mut failed = false;
            let mut all = Vec::new();
            for (t, listed) in backup::list(&l.site, s, owner(s).as_deref(), &only)? {
                match listed {
                    Ok(snaps) => all.extend(snaps.into_iter().map(|snap| (t.clone(), snap))),
                    Err(e) => {
                        failed = true;
                        eprintln!("{position} at {t}: {e}");
                    }
                }
            }
            if json {
                let rows: Vec<_> = all
                    .iter()
                    .map(|(t, s)| serde_json::json!({"target": t, "id": s.id, "short_id": s.short_id, "time": s.time}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for (t, s) in &all {
                    println!("{:<12} {:<10} {}", t, s.short_id, s.time);
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        BackupAction::Show {
            slot: position,
            target,
        } => {
            let s = slot(&position)?;
            let only: Vec<&str> = target.iter().map(String::as_str).collect();
            let seen = db
                .with(async |store| Ok(store.backup_statuses().await?))?
                .unwrap_or_default();
            let mut failed = false;
            for (t, shown) in backup::show(&l.site, s, owner(s).as_deref(), &only)? {
                match shown {
                    Ok((snaps, bytes)) => {
                        let newest = snaps.last().map_or("none".to_string(), |n| {
                            format!("{} at {}", n.short_id, n.time)
                        });
                        println!(
                            "{position} at {t}: {} snapshot(s), newest {newest}; the repository holds {bytes} bytes",
                            snaps.len()
                        );
                    }
                    Err(e) => {
                        failed = true;
                        eprintln!("{position} at {t}: {e}");
                    }
                }
                let last = seen
                    .iter()
                    .find(|b| b.slot == s.key.to_string() && b.target == t);
                if let Some(e) = last.and_then(|b| b.last_error.as_deref()) {
                    println!("{position} at {t}: the controller's last try failed: {e}");
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        BackupAction::Restore {
            slot: position,
            snapshot,
            target,
            powered_off,
            no_export,
        } => {
            let s = slot(&position)?;
            // Until pirack tracks power here, replacing a root in service needs the word.
            let in_service = std::path::Path::new(&s.root).exists();
            if in_service && !powered_off {
                bail!("{position}'s root is in service: power the Pi off and pass --powered-off");
            }
            let bar = indicatif::ProgressBar::new(100).with_style(
                indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {percent}% {elapsed}")
                    .expect("valid template"),
            );
            bar.set_message(format!("restoring {position}"));
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            let only: Vec<&str> = target.iter().map(String::as_str).collect();
            let done = backup::restore(
                &l.site,
                s,
                owner(s).as_deref(),
                snapshot.as_deref(),
                &only,
                false,
                &|target, share| {
                    bar.set_message(format!("restoring {position} from {target}"));
                    bar.set_position((share * 100.0) as u64);
                },
            );
            bar.finish_and_clear();
            let done = done?;
            println!(
                "{position}: {} now from snapshot {} of {} at {} (image {})",
                s.root, done.snapshot.short_id, done.snapshot.time, done.target, done.record.image
            );
            if !no_export {
                export(&l.site, &plan, &[s])?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A line per target; failure if any failed.
fn report(position: &str, what: &str, done: Vec<backup::Done>) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for (target, r) in done {
        match r {
            Ok(()) => println!("{position} at {target}: {what}"),
            Err(e) => {
                eprintln!("{position} at {target}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}

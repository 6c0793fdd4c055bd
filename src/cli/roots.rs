//! `image`, `root` and `exports`: images, the slots' NFS roots and their exports.

use super::inputs::{Inputs, load};
use super::owner::StoreArg;
use anyhow::{Context, Result};
use clap::Subcommand;
use pirack_core::plan;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ImageAction {
    /// Import a root (directory or tarball) and a boot-files directory as an image.
    Import {
        /// The image's name (its id is `name-version`).
        #[arg(long)]
        name: String,
        /// The image's version.
        #[arg(long)]
        version: String,
        /// The root filesystem: a directory or a tarball.
        #[arg(long)]
        root: PathBuf,
        /// The Pi 3 boot files: bootcode.bin, start.elf, the kernel, the DTBs.
        #[arg(long)]
        boot: PathBuf,
        /// The image's part of the kernel command line.
        #[arg(long, default_value = "console=ttyAMA0,115200 console=tty1")]
        cmdline: String,
    },
    /// List the images in the store.
    List,
    /// Print an image's manifest.
    Show {
        /// The image's id (`name-version`).
        id: String,
    },
    /// Boot an image on virtual Pi 3s as `pirack hil run` does, run the checks,
    /// and record the verdict on the image: the API shows it, and provisioning
    /// with an image that is not qualified warns. Needs root.
    Qualify {
        /// The image's id (`name-version`).
        id: String,
        #[command(flatten)]
        checks: pirack_lab::hil::run::Checks,
    },
    /// Check an image's files against its manifest.
    Verify {
        /// The image's id (`name-version`).
        id: String,
    },
    /// Remove an image that no slot's root comes from.
    Remove {
        #[command(flatten)]
        inputs: Inputs,
        /// The image's id (`name-version`).
        id: String,
    },
}

#[derive(Subcommand)]
pub enum RootAction {
    /// Build the slots' roots from an image (a reimage keeps the old root for rollback).
    Build {
        /// The image the roots are built from (`name-version`).
        #[arg(long)]
        image: String,
        /// Positions of the slots.
        #[arg(required = true)]
        slots: Vec<String>,
        /// Confirms the Pis are off: needed to replace a root in service.
        #[arg(long)]
        powered_off: bool,
    },
    /// Put a slot's previous root back in service.
    Rollback {
        /// Position of the slot.
        slot: String,
        /// Confirms the Pi is off: needed to swap a root in service.
        #[arg(long)]
        powered_off: bool,
    },
    /// Delete a slot's root and every kept one.
    Delete {
        /// Position of the slot.
        slot: String,
        /// Confirms the Pi is off: needed to delete a root in service.
        #[arg(long)]
        powered_off: bool,
    },
    /// List every slot's root.
    Show,
}

pub fn image(store: &Path, action: ImageAction) -> Result<ExitCode> {
    use pirack_controller::roots::{image, qualification};
    match action {
        ImageAction::Import {
            name,
            version,
            root,
            boot,
            cmdline,
        } => {
            let bar = indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_message("checksumming root");
            let what = image::Import {
                name,
                version,
                root,
                boot,
                cmdline,
            };
            let m = image::import(store, &what, &|done, total| {
                bar.set_length(total);
                bar.set_position(done);
            });
            bar.finish_and_clear();
            let m = m?;
            println!(
                "imported {} into {}: kernel {}, {} boot file(s)",
                m.id(),
                store.display(),
                m.kernel,
                m.checksums.boot.len()
            );
        }
        ImageAction::List => {
            for m in image::list(store)? {
                let verdict = match qualification::read(store, &m.id())? {
                    Some(q) if q.passed => "qualified",
                    Some(_) => "FAILED qualification",
                    None => "not qualified",
                };
                println!(
                    "{:<32} {:<8} kernel {:<14} root {}  {verdict}",
                    m.id(),
                    m.architecture,
                    m.kernel,
                    &m.checksums.root[..12]
                );
            }
        }
        ImageAction::Show { id } => {
            print!("{}", serde_yaml::to_string(&image::show(store, &id)?)?);
            match qualification::read(store, &id)? {
                Some(q) => print!(
                    "{}",
                    serde_yaml::to_string(&serde_json::json!({ "qualification": q }))?
                ),
                None => println!("qualification: none (`pirack image qualify {id}`)"),
            }
        }
        ImageAction::Qualify { id, checks } => {
            return pirack_lab::hil::run::qualify(store, &id, &checks);
        }
        ImageAction::Remove { inputs, id } => {
            let l = load(&inputs)?;
            let mut users = Vec::new();
            for fs in &l.site.fileservers {
                let root = Path::new(&fs.export_root);
                users.extend(pirack_controller::roots::slot_root::users(root, &id)?);
            }
            users.sort();
            users.dedup();
            image::remove(store, &id, &users)?;
            println!("removed {id}");
        }
        ImageAction::Verify { id } => {
            let bad = image::verify(store, &id)?;
            if !bad.is_empty() {
                eprintln!("{id}: changed since import: {}", bad.join(", "));
                return Ok(ExitCode::FAILURE);
            }
            println!("{id}: intact");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Exports every root; `swapped` are the slots whose roots were exchanged in place.
pub fn export(
    site: &pirack_core::inventory::Site,
    plan: &pirack_core::plan::Plan,
    swapped: &[&pirack_core::plan::SlotPlan],
) -> Result<()> {
    let a = pirack_controller::roots::exports::apply_after_swap(site, plan, swapped)?;
    println!(
        "exports: {} root(s) in {} ({:?})",
        a.roots,
        a.file.display(),
        a.backend
    );
    Ok(())
}

pub fn root(
    inputs: &Inputs,
    store: &Path,
    no_export: bool,
    db: &StoreArg,
    action: RootAction,
) -> Result<ExitCode> {
    use pirack_controller::roots::slot_root;
    if !matches!(action, RootAction::Show) {
        db.refuse_if_owned(
            "pirack root",
            "use its API (`pirack provision`, `reimage`, `rollback`, `decommission`)",
        )?;
    }
    let l = load(inputs)?;
    let (plan, _) = plan::plan(&l.site, &l.ledger)?;
    let slot = |position: &str| {
        plan.slots
            .iter()
            .find(|s| s.position == position)
            .with_context(|| format!("no slot {position} in {}", inputs.inventory.display()))
    };
    // Until pirack tracks power, changing a root in service needs the operator's word.
    let on = |s: &pirack_core::plan::SlotPlan, off: bool| -> Result<bool> {
        Ok(!off && slot_root::record(&l.site, s)?.is_some())
    };
    let mut swapped = Vec::new();
    match action {
        RootAction::Build {
            image,
            slots,
            powered_off,
        } => {
            let bar = indicatif::ProgressBar::new(slots.len() as u64).with_style(
                indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} roots")
                    .expect("valid template"),
            );
            for position in &slots {
                let s = slot(position)?;
                bar.set_message(format!("building {position}"));
                let rec = slot_root::build(&l.site, s, store, &image, on(s, powered_off)?)?;
                if !rec.previous.is_empty() {
                    swapped.push(s);
                }
                bar.suspend(|| {
                    println!("{position}: {} from {} ({})", s.root, rec.image, rec.method)
                });
                bar.inc(1);
            }
            bar.finish_and_clear();
        }
        RootAction::Rollback {
            slot: position,
            powered_off,
        } => {
            let s = slot(&position)?;
            let rec = slot_root::rollback(&l.site, s, on(s, powered_off)?)?;
            swapped.push(s);
            println!("{position}: back on {}", rec.image);
        }
        RootAction::Delete {
            slot: position,
            powered_off,
        } => {
            let s = slot(&position)?;
            slot_root::delete(&l.site, s, on(s, powered_off)?)?;
            println!("{position}: root deleted");
        }
        RootAction::Show => {
            for s in &plan.slots {
                match slot_root::record(&l.site, s)? {
                    Some(r) => println!(
                        "{:<8} {:<28} {:<24} {:<14} {} kept",
                        s.position,
                        s.root,
                        r.image,
                        r.method.to_string(),
                        r.previous.len()
                    ),
                    None => println!("{:<8} {:<28} -", s.position, s.root),
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
    }
    if !no_export {
        export(&l.site, &plan, &swapped)?;
    }
    Ok(ExitCode::SUCCESS)
}

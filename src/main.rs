//! The `pirack` command line. Everything it does lives in the library; this file
//! only parses arguments, loads inputs and prints results.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use pirack::events::Event;
use pirack::inventory::{self, InventoryError, Site, SlotKey};
use pirack::plan::{self, Ledger, render};
use pirack::switch::Profiles;
use pirack::{netboot, output};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Parser)]
#[command(
    name = "pirack",
    version,
    about = "Netboot and bare-metal Raspberry Pi cluster orchestrator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the inventory and what it refers to live.
#[derive(clap::Args)]
struct Inputs {
    /// Site inventory (YAML), e.g. hardware/example-8.yaml.
    #[arg(long, env = "PIRACK_INVENTORY")]
    inventory: PathBuf,
    /// Switch profile directory [default: the nearest switch-profiles/ in the
    /// inventory's directory or above it].
    #[arg(long, env = "PIRACK_PROFILES")]
    profiles: Option<PathBuf>,
    /// Address ledger [default: <inventory>.ledger.yaml beside the inventory].
    #[arg(long, env = "PIRACK_LEDGER")]
    ledger: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate an inventory (and its ledger); lists every problem with file:line:column.
    Check(Inputs),
    /// Print the JSON Schema of the inventory file format.
    Schema,
    /// Allocate addresses and render every configuration file.
    Plan {
        #[command(flatten)]
        inputs: Inputs,
        /// Directory to write the rendered files into (pirack owns it).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write nothing; exit 1 with a unified diff if --out or the ledger would change.
        #[arg(long, requires = "out")]
        check: bool,
        /// Print the plan as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Serve DHCP and TFTP to every slot of the inventory until SIGINT or SIGTERM.
    Serve {
        #[command(flatten)]
        inputs: Inputs,
        /// Boot files directory [default: the inventory's netboot.boot_files].
        #[arg(long)]
        boot_files: Option<PathBuf>,
        /// DHCP server port (clients are answered on port + 1).
        #[arg(long, default_value_t = 67)]
        dhcp_port: u16,
        #[arg(long, default_value_t = 69)]
        tftp_port: u16,
        /// Print every event as a JSON line on stdout (logs stay on stderr).
        #[arg(long)]
        json_events: bool,
    },
    /// Boot simulated Pi 3s (boot ROM, bootcode.bin, start.elf) against a running
    /// controller, each in its own network namespace; needs root.
    Sim {
        #[command(flatten)]
        inputs: Inputs,
        /// Positions to boot [default: every slot with a board].
        #[arg(long, value_delimiter = ',')]
        slots: Vec<String>,
        /// Network namespace the controller runs in [default: this one].
        #[arg(long)]
        controller_netns: Option<String>,
        /// The boot files the controller serves [default: the inventory's].
        #[arg(long)]
        boot_files: Option<PathBuf>,
        /// Seconds from power-on to the first DISCOVER (a real Pi 3: about 5).
        #[arg(long, default_value_t = 2.0)]
        power_on: f64,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Import, list, show and verify images.
    Image {
        /// The image store on the fileserver.
        #[arg(
            long,
            env = "PIRACK_IMAGE_STORE",
            global = true,
            default_value = "/var/lib/pirack/images"
        )]
        store: PathBuf,
        #[command(subcommand)]
        action: ImageAction,
    },
    /// Build, roll back, delete and list the slots' NFS roots.
    Root {
        #[command(flatten)]
        inputs: Inputs,
        /// The image store on the fileserver.
        #[arg(
            long,
            env = "PIRACK_IMAGE_STORE",
            default_value = "/var/lib/pirack/images"
        )]
        store: PathBuf,
        /// Leave the NFS exports as they are (by default they follow every change).
        #[arg(long)]
        no_export: bool,
        #[command(subcommand)]
        action: RootAction,
    },
    /// Export every slot root over NFS with the site's backend (kernel or ganesha).
    Exports(Inputs),
    /// Show or release address allocations.
    Ledger {
        #[command(subcommand)]
        action: LedgerAction,
    },
}

#[derive(Subcommand)]
enum ImageAction {
    /// Import a root (directory or tarball) and a boot-files directory as an image.
    Import {
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        boot: PathBuf,
        /// The image's part of the kernel command line.
        #[arg(long, default_value = "console=ttyAMA0,115200 console=tty1")]
        cmdline: String,
    },
    /// List the images in the store.
    List,
    /// Print an image's manifest.
    Show { id: String },
    /// Check an image's files against its manifest.
    Verify { id: String },
    /// Remove an image that no slot's root comes from.
    Remove {
        #[command(flatten)]
        inputs: Inputs,
        id: String,
    },
}

#[derive(Subcommand)]
enum RootAction {
    /// Build the slots' roots from an image (a reimage keeps the old root for rollback).
    Build {
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
        slot: String,
        #[arg(long)]
        powered_off: bool,
    },
    /// Delete a slot's root and every kept one.
    Delete {
        slot: String,
        #[arg(long)]
        powered_off: bool,
    },
    /// List every slot's root.
    Show,
}

#[derive(Subcommand)]
enum LedgerAction {
    /// List every allocation, marking those of slots no longer in the inventory.
    Show(Inputs),
    /// Free the allocations of slots removed from the inventory, for reuse.
    Release {
        #[command(flatten)]
        inputs: Inputs,
        /// Slot keys as SWITCH/PORT.
        #[arg(required = true)]
        slots: Vec<SlotKey>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // RUST_LOG when set and not empty, else info.
            tracing_subscriber::EnvFilter::builder()
                .with_default_directive(tracing::Level::INFO.into())
                .from_env_lossy(),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&inventory::json_schema())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(inputs) => check(&inputs),
        Command::Plan {
            inputs,
            out,
            check,
            json,
        } => plan_cmd(&inputs, out.as_deref(), check, json),
        Command::Serve {
            inputs,
            boot_files,
            dhcp_port,
            tftp_port,
            json_events,
        } => serve(&inputs, boot_files, dhcp_port, tftp_port, json_events),
        Command::Sim {
            inputs,
            slots,
            controller_netns,
            boot_files,
            power_on,
            json,
        } => sim(&inputs, slots, controller_netns, boot_files, power_on, json),
        Command::Image { store, action } => image(&store, action),
        Command::Root {
            inputs,
            store,
            no_export,
            action,
        } => root(&inputs, &store, no_export, action),
        Command::Exports(inputs) => {
            let l = match load(&inputs)? {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let (plan, _) = plan::plan(&l.site, &l.ledger)?;
            export(&l.site, &plan)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ledger { action } => match action {
            LedgerAction::Show(inputs) => ledger_show(&inputs),
            LedgerAction::Release { inputs, slots } => ledger_release(&inputs, &slots),
        },
    }
}

/// The loaded inputs, or the exit code after printing why they could not load.
struct Loaded {
    site: Site,
    profiles: Profiles,
    ledger: Ledger,
    ledger_path: PathBuf,
}

fn load(inputs: &Inputs) -> Result<Result<Loaded, ExitCode>> {
    let profiles_dir = match &inputs.profiles {
        Some(dir) => dir.clone(),
        None => find_profiles(&inputs.inventory)?,
    };
    let profiles = Profiles::load_dir(&profiles_dir)?;
    let site = match inventory::load(&inputs.inventory, &profiles.names()) {
        Ok(site) => site,
        Err(InventoryError::Invalid(problems)) => {
            eprintln!("{problems}");
            eprintln!(
                "{}: {} problem(s)",
                inputs.inventory.display(),
                problems.0.len()
            );
            return Ok(Err(ExitCode::FAILURE));
        }
        Err(e) => return Err(e.into()),
    };
    let ledger_path = inputs
        .ledger
        .clone()
        .unwrap_or_else(|| Ledger::path_for(&inputs.inventory));
    let ledger = Ledger::load(&ledger_path)?;
    Ok(Ok(Loaded {
        site,
        profiles,
        ledger,
        ledger_path,
    }))
}

/// The nearest `switch-profiles/` at or above the inventory's directory, the way
/// git finds `.git`: a site repository keeps profiles beside `hardware/`.
fn find_profiles(inventory: &Path) -> Result<PathBuf> {
    let start = std::path::absolute(inventory)?;
    start
        .ancestors()
        .skip(1)
        .map(|d| d.join("switch-profiles"))
        .find(|d| d.is_dir())
        .with_context(|| {
            format!(
                "no switch-profiles/ directory at or above {}; pass --profiles DIR",
                inventory.display()
            )
        })
}

fn check(inputs: &Inputs) -> Result<ExitCode> {
    let l = match load(inputs)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
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

fn plan_cmd(inputs: &Inputs, out: Option<&Path>, check: bool, json: bool) -> Result<ExitCode> {
    let l = match load(inputs)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
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
        ledger.save(&l.ledger_path)?;
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

fn serve(
    inputs: &Inputs,
    boot_files: Option<PathBuf>,
    dhcp_port: u16,
    tftp_port: u16,
    json: bool,
) -> Result<ExitCode> {
    let l = match load(inputs)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let (plan, ledger) = plan::plan(&l.site, &l.ledger)?;
    if ledger != l.ledger {
        bail!(
            "ledger {} lacks allocations for some slots; run `pirack plan` first",
            l.ledger_path.display()
        );
    }
    let mut settings = netboot::Settings::from_site(&l.site);
    if let Some(dir) = boot_files {
        settings.boot_files = dir;
    }
    settings.dhcp.server_port = dhcp_port;
    settings.dhcp.client_port = dhcp_port.wrapping_add(1);
    settings.tftp.port = tftp_port;
    // One thread: every transfer is a short wait for the next ACK, and a single
    // event loop serves a boot storm with less CPU than threads handing wakeups
    // to each other (measured by benches/boot_storm.rs).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let bus = pirack::events::Bus::default();
        let mut events = bus.subscribe();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(record) => {
                        if json {
                            println!("{}", serde_json::to_string(&*record).unwrap_or_default());
                        }
                        let slot = record.slot.as_deref().unwrap_or("-");
                        match &record.event {
                            Event::TftpFailed { .. } | Event::UnknownBoard { .. } | Event::InterfaceDown { .. } => {
                                tracing::warn!(slot, "{}", record.event)
                            }
                            _ => tracing::info!(slot, "{}", record.event),
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("event log fell behind; {n} events not logged")
                    }
                    Err(_) => break,
                }
            }
        });
        tracing::info!(
            "serving {} slot(s) of site {}: DHCP port {dhcp_port}, TFTP port {tftp_port}, boot files {}",
            plan.slots.len(),
            l.site.name,
            settings.boot_files.display()
        );
        let mut tasks = netboot::start(&l.site, &plan, settings, &bus)
            .with_context(|| format!("cannot bind TFTP port {tftp_port}"))?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        }
        tasks.abort_all();
        Ok(ExitCode::SUCCESS)
    })
}

/// Set by SIGINT or SIGTERM: simulated Pis stop, and their namespaces are removed.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn sim(
    inputs: &Inputs,
    only: Vec<String>,
    controller_netns: Option<String>,
    boot_files: Option<PathBuf>,
    power_on: f64,
    json: bool,
) -> Result<ExitCode> {
    let l = match load(inputs)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let (plan, _) = plan::plan(&l.site, &l.ledger)?;
    let handler = SigAction::new(
        SigHandler::Handler(on_stop_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &handler) }?;
    }
    let opts = pirack::sim::Options {
        controller_netns,
        boot_files: boot_files.unwrap_or_else(|| PathBuf::from(&l.site.netboot.boot_files)),
        only,
        prefix: format!("pirack-sim-{}", std::process::id()),
        power_on: std::time::Duration::from_secs_f64(power_on),
    };
    let reports = pirack::sim::run(&l.site, &plan, &opts, &STOP)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print_reports(&reports);
    }
    let failed = reports.iter().filter(|r| !r.ok).count();
    Ok(if failed == 0 && !reports.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_reports(reports: &[pirack::sim::Report]) {
    for r in reports {
        let stages: Vec<String> = r
            .stages
            .iter()
            .map(|(s, ms)| format!("{s} {ms}ms"))
            .collect();
        let verdict = match &r.error {
            None => "booted".to_string(),
            Some(e) => format!("FAILED: {e}"),
        };
        println!(
            "{:<8} {} {:>6}ms {:>3} files {:>9} bytes, {} DHCP tries: {}  [{}]",
            r.position,
            r.serial,
            r.total_ms,
            r.files,
            r.bytes,
            r.dhcp_tries,
            verdict,
            stages.join(", ")
        );
    }
    let ok = reports.iter().filter(|r| r.ok).count();
    println!("{ok} of {} Pi(s) booted", reports.len());
}

fn image(store: &Path, action: ImageAction) -> Result<ExitCode> {
    use pirack::roots::image;
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
                println!(
                    "{:<32} {:<8} kernel {:<14} root {}",
                    m.id(),
                    m.architecture,
                    m.kernel,
                    &m.checksums.root[..12]
                );
            }
        }
        ImageAction::Show { id } => print!("{}", serde_yaml::to_string(&image::show(store, &id)?)?),
        ImageAction::Remove { inputs, id } => {
            let l = match load(&inputs)? {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let users =
                pirack::roots::slot_root::users(Path::new(&l.site.fileserver.export_root), &id)?;
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

fn export(site: &pirack::inventory::Site, plan: &pirack::plan::Plan) -> Result<()> {
    let a = pirack::roots::exports::apply(site, plan)?;
    println!(
        "exports: {} root(s) in {} ({:?})",
        a.roots,
        a.file.display(),
        a.backend
    );
    Ok(())
}

fn root(inputs: &Inputs, store: &Path, no_export: bool, action: RootAction) -> Result<ExitCode> {
    use pirack::roots::slot_root;
    let l = match load(inputs)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let (plan, _) = plan::plan(&l.site, &l.ledger)?;
    let slot = |position: &str| {
        plan.slots
            .iter()
            .find(|s| s.position == position)
            .with_context(|| format!("no slot {position} in {}", inputs.inventory.display()))
    };
    // Until pirack tracks power, changing a root in service needs the operator's word.
    let on = |s: &pirack::plan::SlotPlan, off: bool| -> Result<bool> {
        Ok(!off && slot_root::record(&l.site, s)?.is_some())
    };
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
        export(&l.site, &plan)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn ledger_show(inputs: &Inputs) -> Result<ExitCode> {
    let l = match load(inputs)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
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

fn ledger_release(inputs: &Inputs, keys: &[SlotKey]) -> Result<ExitCode> {
    let mut l = match load(inputs)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
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
    l.ledger.save(&l.ledger_path)?;
    Ok(ExitCode::SUCCESS)
}

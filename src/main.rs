//! The `pirack` command line. Everything it does lives in the workspace's crates
//! (core, netboot, controller, lab); this file only parses arguments, loads inputs
//! and prints results.

mod cli;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cli::client::{self, BoardAction, OpArgs, Remote};
use cli::inputs::{Inputs, Reported, load};
use cli::netboot::{SimArgs, sim};
use cli::owner::StoreArg;
use cli::roots::{ImageAction, RootAction, export, image, root};
use cli::serve::{ServeArgs, serve};
use cli::site::{LedgerAction, check, ledger_release, ledger_show, plan_cmd};
use cli::switch::{PowerFlags, PowerVerb, Selection, SwitchAction, power, remote_power, switch};
use cli::tokens::{OwnerAction, TokenAction, owner, token};
use pirack_controller::api::client::segment;
use pirack_core::inventory;
use pirack_core::plan;
use pirack_lab::demo::{DemoArgs, demo};
use pirack_lab::hil::{HilArgs, hil};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

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

#[derive(Subcommand)]
enum Command {
    /// Print the shell's completions for pirack (`pirack completions bash >
    /// /etc/bash_completion.d/pirack`).
    Completions {
        /// The shell: bash, elvish, fish, powershell or zsh.
        shell: clap_complete::Shell,
    },
    /// Print pirack's manual page, as roff (`pirack manpage > pirack.1`), or
    /// write one page per command into a directory.
    Manpage {
        /// Write pirack.1 and a page per subcommand (pirack-serve.1, ...) here.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// A shelf of simulated Pis booting from a controller on this machine, in one
    /// command: builds the CI image, installs missing peers, boots every Pi to
    /// `up` (one recovered by the watchdog) and serves the rack view. Needs root.
    Demo(DemoArgs),
    /// Virtual Pi 3s (QEMU raspi3b) booting a real kernel from a controller on
    /// this machine, to `up` over DHCP, TFTP and NFS; checks each root is its own
    /// and a power cycle boots again. Exits non-zero, with the consoles, if a
    /// step fails (`pirack hil` alone: pirack's own self-test). `pirack hil run`
    /// boots your image instead and checks it. Needs root.
    #[command(args_conflicts_with_subcommands = true)]
    Hil {
        #[command(subcommand)]
        action: Option<HilAction>,
        #[command(flatten)]
        args: HilArgs,
    },
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
    /// Run the controller: the store, DHCP and TFTP for every slot, the slot
    /// lifecycle and the HTTP API, until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Boot simulated Pi 3s (boot ROM, bootcode.bin, start.elf) against a running
    /// controller, each in its own network namespace; needs root.
    Sim(SimArgs),
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
    /// Back the slots' roots up with restic, list and restore them.
    Backup {
        #[command(flatten)]
        inputs: Inputs,
        #[command(flatten)]
        db: StoreArg,
        #[command(subcommand)]
        action: cli::backup::BackupAction,
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
        #[command(flatten)]
        db: StoreArg,
        #[command(subcommand)]
        action: RootAction,
    },
    /// Export every slot root over NFS with the site's backend (kernel or ganesha).
    Exports {
        #[command(flatten)]
        inputs: Inputs,
        #[command(flatten)]
        db: StoreArg,
    },
    /// Switch slots' PoE power on, off, cycle it, or show it: straight at the
    /// switch with --inventory, else through the controller's API.
    Power {
        /// What to do with the ports.
        #[arg(value_enum)]
        verb: PowerVerb,
        /// Site inventory: talk to the switches directly (on the controller's host).
        #[arg(long, env = "PIRACK_INVENTORY")]
        inventory: Option<PathBuf>,
        /// Switch profile directory (with --inventory).
        #[arg(long, env = "PIRACK_PROFILES")]
        profiles: Option<PathBuf>,
        #[command(flatten)]
        selection: Selection,
        #[command(flatten)]
        flags: PowerFlags,
        #[command(flatten)]
        remote: Remote,
        /// With --inventory: the store a running controller would own.
        #[command(flatten)]
        db: StoreArg,
    },
    /// Boards in slots: accept one the site's policy held (through the API).
    Board {
        #[command(subcommand)]
        action: BoardAction,
    },
    /// The slots the API shows you, with their state.
    Slots {
        #[command(flatten)]
        remote: Remote,
        /// As the API's JSON (times as Unix milliseconds).
        #[arg(long)]
        json: bool,
    },
    /// One slot and its latest events.
    Show {
        /// Position (`A-07`) or key (`sw-a/7`).
        slot: String,
        #[command(flatten)]
        remote: Remote,
        /// As the API's JSON (times as Unix milliseconds).
        #[arg(long)]
        json: bool,
    },
    /// Give a customer a slot with a root from an image (through the API).
    Provision {
        /// The image the root is built from (`name-version`).
        #[arg(long)]
        image: String,
        /// The customer [default: the token's own].
        #[arg(long)]
        owner: Option<String>,
        /// A particular free slot.
        #[arg(long)]
        slot: Option<String>,
        #[command(flatten)]
        op: OpArgs,
    },
    /// Build a slot's root anew from an image (the slot must be off).
    Reimage {
        /// Position or key.
        slot: String,
        /// The image the new root is built from (`name-version`).
        #[arg(long)]
        image: String,
        #[command(flatten)]
        op: OpArgs,
    },
    /// Put back the root the last reimage replaced (the slot must be off).
    Rollback {
        /// Position or key.
        slot: String,
        #[command(flatten)]
        op: OpArgs,
    },
    /// End a hosted Pi: delete its root and free the slot (the slot must be off).
    Decommission {
        /// Position or key.
        slot: String,
        #[command(flatten)]
        op: OpArgs,
    },
    /// The controllers sharing the store (serving or standing by), the
    /// store's lease and the last failovers (staff).
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// Events, oldest first; --follow keeps printing new ones.
    Events {
        /// Only this slot's (position or key).
        #[arg(long)]
        slot: Option<String>,
        /// Keep printing new events as they happen (Ctrl-C stops).
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        remote: Remote,
        /// One JSON object per line (times as Unix milliseconds).
        #[arg(long)]
        json: bool,
    },
    /// Drive the switches' port VLANs.
    Switch {
        #[command(subcommand)]
        action: SwitchAction,
    },
    /// Add and list the customers the site knows (beyond the inventory's).
    Owner {
        /// The controller's state store.
        #[arg(
            long,
            env = "PIRACK_DB",
            global = true,
            default_value = "sqlite:///var/lib/pirack/pirack.db"
        )]
        db: String,
        #[command(subcommand)]
        action: OwnerAction,
    },
    /// Publish the slots' names in DNS (through the API; admins).
    Dns {
        #[command(subcommand)]
        action: cli::dns::DnsAction,
    },
    /// The dns-01 hook for ACME clients (lego's exec provider, dehydrated,
    /// certbot's manual hooks): sets and removes `_acme-challenge` TXT records
    /// through the API and waits for the servers. Also run as `pirack-acme-hook`.
    AcmeHook(cli::acme::AcmeHook),
    /// The IPv4→IPv6 proxy on a box of its own, following a controller's
    /// routes (`pirack serve` runs the inventory's `proxy:` itself).
    Proxy(cli::proxy::ProxyArgs),
    /// Show or set the PROXY protocol header (off, v1, v2) a slot's Pi is sent
    /// by the proxy, and the names routed to it.
    ProxyProtocol(cli::proxy::ProtocolArgs),
    /// Alerts, newest first, or one with its deliveries (yours: those of your
    /// slots).
    Alerts(cli::alerts::AlertsArgs),
    /// Where alerts go: list, add and remove routes (URIs).
    AlertRoute {
        #[command(subcommand)]
        action: cli::alerts::RouteAction,
    },
    /// Maintenance windows: no checks and no alerts in their scope.
    Maintenance {
        #[command(subcommand)]
        action: cli::alerts::WindowAction,
    },
    /// Your names in your DNS zones: list, set, remove (through the API).
    Name {
        #[command(subcommand)]
        action: cli::names::NameAction,
    },
    /// Make, list and revoke API tokens.
    Token {
        /// The controller's state store.
        #[arg(
            long,
            env = "PIRACK_DB",
            global = true,
            default_value = "sqlite:///var/lib/pirack/pirack.db"
        )]
        db: String,
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Show or release address allocations.
    Ledger {
        #[command(subcommand)]
        action: LedgerAction,
    },
}

#[derive(Subcommand)]
enum ClusterAction {
    /// Who serves and who stands by, their lag, the lease and the last failover.
    Status {
        #[command(flatten)]
        remote: Remote,
        /// The API's JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum HilAction {
    /// Boot your Pi 3 image on virtual Pis from a controller on this machine, run
    /// your checks on each, and judge: exit 0 only when every Pi reached `up` and
    /// every check passed. Needs root.
    Run(pirack_lab::hil::run::RunArgs),
}

/// Writes `cmd`'s page as `<name>.1` in `dir`, and one per subcommand, named
/// the way git names its commands' pages (`pirack-backup-run.1`).
fn man_pages(dir: &std::path::Path, cmd: clap::Command, name: String) -> Result<usize> {
    let mut pages = 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages += man_pages(dir, sub.clone(), format!("{name}-{}", sub.get_name()))?;
    }
    let path = dir.join(format!("{name}.1"));
    let mut file = std::fs::File::create(&path).with_context(|| path.display().to_string())?;
    clap_mangen::Man::new(cmd).title(name).render(&mut file)?;
    Ok(pages)
}

fn main() -> ExitCode {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            // RUST_LOG when set and not empty, else info.
            tracing_subscriber::EnvFilter::builder()
                .with_default_directive(tracing::Level::INFO.into())
                .from_env_lossy(),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // systemd names the journal stream it gave us; the journal stamps each line.
    match std::env::var_os("JOURNAL_STREAM") {
        Some(_) => logs.without_time().init(),
        None => logs.init(),
    }
    // Linked as `pirack-acme-hook`, it is the hook itself (lego's EXEC_PATH
    // takes a program, not a command line).
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let called = std::path::Path::new(args.first().map_or("".as_ref(), |a| a.as_os_str()))
        .file_name()
        .map(|n| n == "pirack-acme-hook")
        .unwrap_or(false);
    if called {
        args.insert(1, "acme-hook".into());
    }
    match run(Cli::parse_from(args)) {
        Ok(code) => code,
        Err(e) => {
            if e.downcast_ref::<Reported>().is_none() {
                eprintln!("error: {e:#}");
            }
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
        Command::Serve(args) => serve(&args),
        Command::Completions { shell } => {
            // Into a buffer: the generator panics on a closed pipe.
            let mut cli = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cli, "pirack", &mut out);
            std::io::Write::write_all(&mut std::io::stdout(), &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Manpage { dir } => {
            let cli = <Cli as clap::CommandFactory>::command();
            match dir {
                None => clap_mangen::Man::new(cli).render(&mut std::io::stdout())?,
                Some(dir) => {
                    std::fs::create_dir_all(&dir)?;
                    let pages = man_pages(&dir, cli, "pirack".into())?;
                    println!("{pages} pages in {}", dir.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => demo(&args),
        Command::Hil { action: None, args } => hil(&args),
        Command::Hil {
            action: Some(HilAction::Run(run)),
            ..
        } => pirack_lab::hil::run::run(&run),
        Command::Sim(args) => sim(&args),
        Command::Image { store, action } => image(&store, action),
        Command::Backup { inputs, db, action } => cli::backup::backup(&inputs, &db, action),
        Command::Root {
            inputs,
            store,
            no_export,
            db,
            action,
        } => root(&inputs, &store, no_export, &db, action),
        Command::Exports { inputs, db } => {
            db.refuse_if_owned("pirack exports", "the controller keeps the exports")?;
            let l = load(&inputs)?;
            let (plan, _) = plan::plan(&l.site, &l.ledger)?;
            export(&l.site, &plan, &[])?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Power {
            verb,
            inventory: Some(inventory),
            profiles,
            selection,
            flags,
            db,
            ..
        } => {
            if verb != PowerVerb::Status {
                db.refuse_if_owned(
                    "pirack power --inventory",
                    "switch power through it without --inventory (`pirack power on A-07`)",
                )?;
            }
            let inputs = Inputs {
                inventory,
                profiles,
                ledger: None,
            };
            power(&inputs, verb, &selection, &flags)
        }
        Command::Power {
            verb,
            inventory: None,
            selection,
            flags,
            remote,
            ..
        } => remote_power(&remote, verb, &selection, flags.json),
        Command::Board {
            action: BoardAction::Accept { slot, remote, json },
        } => client::accept_board(&remote, &slot, json),
        Command::Slots { remote, json } => client::slots(&remote, json),
        Command::Show { slot, remote, json } => client::show(&remote, &slot, json),
        Command::Provision {
            image,
            owner,
            slot,
            op,
        } => {
            let body = serde_json::json!({ "image": image, "owner": owner, "slot": slot });
            op.run(("POST", "/v1/slots"), Some(body))
        }
        Command::Reimage { slot, image, op } => {
            let body = serde_json::json!({ "image": image });
            op.run(
                ("POST", &format!("/v1/slots/{}/reimage", segment(&slot))),
                Some(body),
            )
        }
        Command::Rollback { slot, op } => op.run(
            ("POST", &format!("/v1/slots/{}/rollback", segment(&slot))),
            None,
        ),
        Command::Decommission { slot, op } => {
            op.run(("DELETE", &format!("/v1/slots/{}", segment(&slot))), None)
        }
        Command::Events {
            slot,
            follow,
            remote,
            json,
        } => client::events(&remote, slot.as_deref(), follow, json),
        Command::Cluster {
            action: ClusterAction::Status { remote, json },
        } => client::cluster(&remote, json),
        Command::Switch { action } => switch(&action),
        Command::Dns { action } => cli::dns::dns(&action),
        Command::Name { action } => cli::names::name(&action),
        Command::Alerts(args) => cli::alerts::alerts(&args),
        Command::AlertRoute { action } => cli::alerts::route(&action),
        Command::Maintenance { action } => cli::alerts::maintenance(&action),
        Command::AcmeHook(hook) => cli::acme::run(&hook),
        Command::Proxy(args) => cli::proxy::run(&args),
        Command::ProxyProtocol(args) => cli::proxy::protocol(&args),
        Command::Token { db, action } => token(&db, &action),
        Command::Owner { db, action } => owner(&db, &action),
        Command::Ledger { action } => match action {
            LedgerAction::Show(inputs) => ledger_show(&inputs),
            LedgerAction::Release { inputs, db, slots } => ledger_release(&inputs, &db, &slots),
        },
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every option and argument of every command says what it is for.
    #[test]
    fn every_option_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let builtin = matches!(a.get_id().as_str(), "help" | "version");
                if !builtin && a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "pirack", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:#?}");
    }
}

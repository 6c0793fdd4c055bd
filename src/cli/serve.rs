//! `serve`: the controller in one process: store, DHCP, TFTP, lifecycle, API.

use super::inputs::{Inputs, load};
use anyhow::{Context, Result};
use pirack::api;
use pirack::controller::{Controller, Paths, driver, observe, watchdog};
use pirack::events::Event;
use pirack::netboot;
use pirack::store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// The state store: `sqlite:///var/lib/pirack/pirack.db`, or
    /// `postgres://user:pw@host/db` for several controllers.
    #[arg(
        long,
        env = "PIRACK_DB",
        default_value = "sqlite:///var/lib/pirack/pirack.db"
    )]
    pub db: String,
    /// Address of the HTTP API.
    #[arg(long, env = "PIRACK_API", default_value = "127.0.0.1:8080")]
    pub api: SocketAddr,
    /// The image store on the fileserver.
    #[arg(
        long,
        env = "PIRACK_IMAGE_STORE",
        default_value = "/var/lib/pirack/images"
    )]
    pub images: PathBuf,
    /// Leave the NFS exports alone when roots change.
    #[arg(long)]
    pub no_export: bool,
    /// Boot files directory [default: the inventory's netboot.boot_files].
    #[arg(long)]
    pub boot_files: Option<PathBuf>,
    /// DHCP server port (clients are answered on port + 1).
    #[arg(long, default_value_t = 67)]
    pub dhcp_port: u16,
    #[arg(long, default_value_t = 69)]
    pub tftp_port: u16,
    /// Print every netboot event as a JSON line on stdout (logs stay on stderr).
    #[arg(long)]
    pub json_events: bool,
    /// Virtual slots (`kind: qemu-raspi3b`): their console logs and QEMU's files.
    #[arg(long, default_value = "/var/lib/pirack/hil")]
    pub hil_dir: PathBuf,
    /// Virtual slots: the prefix of their firmware namespaces (`PREFIX-<position>`).
    #[arg(long, default_value = "pirack-hil")]
    pub hil_netns_prefix: String,
    /// Virtual slots: the QEMU that boots them.
    #[arg(long, default_value = "qemu-system-aarch64")]
    pub qemu: PathBuf,
}

/// A SQLite store's directory is made if missing, owner-only.
pub fn prepare_sqlite(url: &str) -> Result<()> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .map(|p| p.split('?').next().unwrap_or(p))
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let owner_only = std::os::unix::fs::PermissionsExt::from_mode(0o700);
        std::fs::set_permissions(dir, owner_only)?;
    }
    Ok(())
}

pub fn serve(args: &ServeArgs) -> Result<ExitCode> {
    let l = load(&args.inputs)?;
    let mut settings = netboot::Settings::from_site(&l.site);
    if let Some(dir) = &args.boot_files {
        settings.boot_files = dir.clone();
    }
    settings.dhcp.server_port = args.dhcp_port;
    settings.dhcp.client_port = args.dhcp_port.wrapping_add(1);
    settings.tftp.port = args.tftp_port;
    prepare_sqlite(&args.db)?;
    // One thread: every transfer is a short wait for the next ACK, and a single
    // event loop serves a boot storm with less CPU than threads handing wakeups
    // to each other (measured by benches/boot_storm.rs).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = Store::open(&args.db)
            .await
            .with_context(|| format!("opening the store {}", args.db))?;
        let paths = Paths {
            images: args.images.clone(),
            ledger_yaml: Some(l.ledger_path.clone()),
            export: !args.no_export,
            hil: pirack::hil::qemu::Settings {
                dir: args.hil_dir.clone(),
                netns_prefix: args.hil_netns_prefix.clone(),
                boot_files: settings.boot_files.clone(),
                qemu: args.qemu.clone(),
            },
        };
        let ctl = Arc::new(Controller::open(l.site, &l.profiles, store, paths).await?);
        let resumed = ctl.resume().await?;
        if resumed > 0 {
            tracing::info!("resumed {resumed} root build(s) a stop cut short");
        }
        log_events(&ctl, args.json_events);
        tokio::spawn(driver::run(Arc::clone(&ctl)));
        tokio::spawn(observe::run(Arc::clone(&ctl), Duration::from_secs(1)));
        tokio::spawn(watchdog::run(Arc::clone(&ctl), Duration::from_secs(1)));
        tracing::info!(
            "serving {} slot(s) of site {}: DHCP port {}, TFTP port {}, boot files {}",
            ctl.plan.slots.len(),
            ctl.site.name,
            args.dhcp_port,
            args.tftp_port,
            settings.boot_files.display()
        );
        let mut tasks = netboot::start(&ctl.site, &ctl.plan, settings, &ctl.bus)
            .with_context(|| format!("cannot bind TFTP port {}", args.tftp_port))?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let api = tokio::spawn(api::serve(args.api, Arc::clone(&ctl), async {
            let _ = stop_rx.await;
        }));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            done = api => {
                done?.with_context(|| format!("API on {}", args.api))?;
            }
        }
        let _ = stop_tx.send(());
        tasks.abort_all();
        ctl.hil.all_off();
        ctl.store.pool().close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Logs every netboot event (and prints it as JSON when asked).
fn log_events(ctl: &Controller, json: bool) {
    let mut events = ctl.bus.subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(record) => {
                    if json {
                        println!("{}", serde_json::to_string(&*record).unwrap_or_default());
                    }
                    let slot = record.slot.as_deref().unwrap_or("-");
                    match &record.event {
                        Event::TftpFailed { .. }
                        | Event::UnknownBoard { .. }
                        | Event::InterfaceDown { .. } => {
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
}

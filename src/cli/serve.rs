//! `serve`: the controller in one process: store, DHCP, TFTP, lifecycle, API.
//! The virtual slots' QEMU driver comes from the lab crate: the controller itself
//! knows only the power drivers it is given.

use super::inputs::{Inputs, load};
use anyhow::{Context, Result};
use pirack_controller::Paths;
use pirack_controller::api::limits::Limits;
use pirack_controller::api::server::tls_config;
use pirack_controller::power::Drivers;
use pirack_core::inventory::SlotKind;
use pirack_lab::qemu::driver::{Qemu, Settings as QemuSettings};
use pirack_netboot::boots::Boots;
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
    /// Do not run the inventory's `proxy:` here (a stand-alone `pirack proxy`
    /// serves it).
    #[arg(long)]
    pub no_proxy: bool,
    /// The site's boot files, where bootcode.bin is served from first (else from
    /// the newest image) [default: the inventory's netboot.boot_files].
    #[arg(long)]
    pub boot_files: Option<PathBuf>,
    /// DHCP server port (clients are answered on port + 1).
    #[arg(long, default_value_t = 67)]
    pub dhcp_port: u16,
    /// TFTP server port.
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
    /// Serve the API and rack view over HTTPS with this PEM certificate chain
    /// (with --tls-key).
    #[arg(long, env = "PIRACK_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "PIRACK_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// API connections served at once (fitted under the file limit); beyond, 503.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// Seconds a client has to send a request head (and finish a TLS handshake);
    /// a kept-alive connection is closed after as long without a next request.
    #[arg(long, default_value_t = 10)]
    pub header_timeout_s: u64,
    /// Seconds an API connection may stay silent before it is closed.
    #[arg(long, default_value_t = 60)]
    pub idle_timeout_s: u64,
    /// Days events, ended operations and power records are kept.
    #[arg(long, default_value_t = 90)]
    pub retention_days: u64,
    /// Event streams one token may hold open (429 beyond).
    #[arg(long, default_value_t = 16)]
    pub streams_per_token: usize,
    /// How far below DHCP and TFTP the API and the controller's tasks are
    /// scheduled (a nice increment, 0-19): when the CPU is short, boots win.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub api_nice: i32,
    /// Seconds a lease (a rack controller's on its shelves, the region
    /// leader's) lives without renewal: how soon a standby takes over from a
    /// controller that died or lost the store.
    #[arg(
        long,
        env = "PIRACK_LEASE_S",
        default_value_t = 15,
        value_parser = clap::value_parser!(u64).range(3..=600)
    )]
    pub lease_s: u64,
    /// Stand by while another rack controller holds the shelves (on a
    /// PostgreSQL both use), and take over when its lease lapses, instead of
    /// refusing to start.
    #[arg(long, env = "PIRACK_STANDBY")]
    pub standby: bool,
    /// What this controller does: `rack` serves its fileserver's shelves
    /// (netboot, exports, power, root builds, backups); `region` serves the
    /// API and leads the region's singleton duties (DNS, monitoring, alerts)
    /// when it holds their lease; `all` both, on one box.
    #[arg(long, env = "PIRACK_ROLE", default_value = "all",
        value_parser = ["rack", "region", "all"])]
    pub role: String,
    /// The fileserver whose shelves this rack controller serves (the one it
    /// runs on): needed when the site has several (`fileservers:`).
    #[arg(long, env = "PIRACK_FILESERVER")]
    pub fileserver: Option<String>,
}

pub fn serve(args: &ServeArgs) -> Result<ExitCode> {
    let l = load(&args.inputs)?;
    let mut netboot = pirack_netboot::Settings::from_site(&l.site);
    netboot.dhcp.server_port = args.dhcp_port;
    netboot.dhcp.client_port = args.dhcp_port.wrapping_add(1);
    netboot.tftp.port = args.tftp_port;
    let boots = Arc::new(Boots::default());
    let qemu = Qemu::new(
        QemuSettings {
            dir: args.hil_dir.clone(),
            netns_prefix: args.hil_netns_prefix.clone(),
            qemu: args.qemu.clone(),
        },
        Arc::clone(&boots),
    );
    let config = pirack_controller::Config {
        paths: Paths {
            images: args.images.clone(),
            ledger_yaml: Some(l.ledger_path.clone()),
            export: !args.no_export,
            boot_files: args
                .boot_files
                .clone()
                .unwrap_or_else(|| PathBuf::from(&l.site.netboot.boot_files)),
        },
        site: l.site,
        profiles: l.profiles,
        db: args.db.clone(),
        netboot,
        api: args.api,
        limits: Limits {
            max_connections: args.max_connections,
            header_timeout: Duration::from_secs(args.header_timeout_s),
            idle_timeout: Duration::from_secs(args.idle_timeout_s),
            streams_per_token: args.streams_per_token,
        },
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
            _ => None,
        },
        drivers: Drivers::default().with(SlotKind::QemuRaspi3b, Arc::new(qemu)),
        boots,
        json_events: args.json_events,
        proxy: !args.no_proxy,
        tick: Duration::from_secs(1),
        retention: Duration::from_secs(args.retention_days * 86_400),
        lease_ttl: Duration::from_secs(args.lease_s),
        standby: args.standby,
        role: args.role.parse().map_err(anyhow::Error::msg)?,
        fileserver: args.fileserver.clone(),
    };
    // The API, the store and the controller's tasks on every core, at a lower
    // priority; DHCP and TFTP keep a thread and event loop of their own (see
    // pirack_netboot::Thread), started from this thread and so at its priority.
    let nice = behind(args.api_nice);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || {
            // SAFETY: setpriority has no memory effects; 0 is this thread (Linux
            // keeps a nice value per thread).
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
        })
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let stop = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            }
        };
        pirack_controller::run(config, stop)
            .await
            .context("the controller")?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The nice value `by` steps below this thread's (which the process started with).
fn behind(by: i32) -> i32 {
    // SAFETY: getpriority only reads, and cannot fail for the calling thread.
    let now = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    (now + by).min(19)
}

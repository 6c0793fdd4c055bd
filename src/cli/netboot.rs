//! `sim`: simulated Pis that boot from a running controller.

use super::inputs::{Inputs, load};
use anyhow::{Context, Result};
use pirack_core::plan;
use pirack_lab::signals::{STOP, catch_stop_signals};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct SimArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Positions to boot [default: every slot with a board].
    #[arg(long, value_delimiter = ',')]
    pub slots: Vec<String>,
    /// Network namespace the controller runs in [default: this one].
    #[arg(long)]
    pub controller_netns: Option<String>,
    /// The site's boot files the controller serves bootcode.bin from [default: the
    /// inventory's].
    #[arg(long)]
    pub boot_files: Option<PathBuf>,
    /// The image store the controller boots slots from.
    #[arg(
        long,
        env = "PIRACK_IMAGE_STORE",
        default_value = "/var/lib/pirack/images"
    )]
    pub images: PathBuf,
    /// The image the simulated slots boot (what they receive is checked against
    /// it) [default: none: only bootcode.bin].
    #[arg(long)]
    pub image: Option<String>,
    /// Seconds from power-on to the first DISCOVER (a real Pi 3: about 5).
    #[arg(long, default_value_t = 2.0)]
    pub power_on: f64,
    /// Print the reports as JSON.
    #[arg(long)]
    pub json: bool,
    /// Live on the switch's power until SIGINT: boot when the slot's PoE port is
    /// on, die when it goes off, through to Linux (NFS mount, public address);
    /// one JSON line per boot.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: POSITION[:N] hangs after bootcode.bin on its first N boots
    /// (default 1), as a Pi 3 sometimes does.
    #[arg(long, requires = "follow")]
    pub stall: Vec<String>,
}

pub fn sim(args: &SimArgs) -> Result<ExitCode> {
    let l = load(&args.inputs)?;
    let (plan, _) = plan::plan(&l.site, &l.ledger)?;
    catch_stop_signals()?;
    let opts = pirack_lab::sim::Options {
        controller_netns: args.controller_netns.clone(),
        boot_files: args
            .boot_files
            .clone()
            .unwrap_or_else(|| PathBuf::from(&l.site.netboot.boot_files)),
        images: args.images.clone(),
        image: args.image.clone(),
        only: args.slots.clone(),
        prefix: format!("pirack-sim-{}", std::process::id()),
        power_on: std::time::Duration::from_secs_f64(args.power_on),
    };
    if args.follow {
        let mut stalls = std::collections::BTreeMap::new();
        for s in &args.stall {
            let (pos, n) = s.split_once(':').unwrap_or((s, "1"));
            let n: u32 = n
                .parse()
                .with_context(|| format!("--stall {s}: N is not a number"))?;
            stalls.insert(pos.to_string(), n);
        }
        let prepared = pirack_lab::sim::prepare(&l.site, &plan, &opts)?;
        let f = pirack_lab::sim::follow::FollowOptions { stalls };
        let netns = args.controller_netns.as_deref();
        pirack_lab::sim::follow::follow(&l.site, &plan, &l.profiles, prepared, netns, &f, &STOP)?;
        return Ok(ExitCode::SUCCESS);
    }
    let reports = pirack_lab::sim::run(&l.site, &plan, &opts, &STOP)?;
    if args.json {
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

pub fn print_reports(reports: &[pirack_lab::sim::Report]) {
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

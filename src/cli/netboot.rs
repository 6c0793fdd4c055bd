//! `sim`: simulated Pis that boot from a running controller.

use super::inputs::{Inputs, load};
use anyhow::Result;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use pirack::plan;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by SIGINT or SIGTERM: simulated Pis stop, and their namespaces are removed.
pub static STOP: AtomicBool = AtomicBool::new(false);

pub extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

pub fn sim(
    inputs: &Inputs,
    only: Vec<String>,
    controller_netns: Option<String>,
    boot_files: Option<PathBuf>,
    power_on: f64,
    json: bool,
) -> Result<ExitCode> {
    let l = load(inputs)?;
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

pub fn print_reports(reports: &[pirack::sim::Report]) {
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

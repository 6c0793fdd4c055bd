//! `serve` and `sim`: the netboot services and the simulated Pis that boot from them.

use super::inputs::{Inputs, load};
use anyhow::{Context, Result, bail};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use pirack::events::Event;
use pirack::netboot;
use pirack::plan;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

pub fn serve(
    inputs: &Inputs,
    boot_files: Option<PathBuf>,
    dhcp_port: u16,
    tftp_port: u16,
    json: bool,
) -> Result<ExitCode> {
    let l = load(inputs)?;
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

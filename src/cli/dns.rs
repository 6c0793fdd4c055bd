//! `pirack dns`: the controller's DNS publisher, through the API: reconcile the
//! zones now (or only show their drift), or read the last reconciliation.

use super::client::Remote;
use anyhow::Result;
use pirack_core::text::printable;
use serde_json::Value;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum DnsAction {
    /// Read every zone by AXFR, print its drift from the published slots
    /// (missing, stale, held by another) and apply it.
    Sync {
        /// Print the drift without changing the zones.
        #[arg(long)]
        dry_run: bool,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// The last reconciliation the controller ran.
    Status {
        /// The report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// The zones names are kept in: the slots' own, and each owner's (from the
    /// inventory or granted); a customer sees its own.
    Zones {
        /// As JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Let an owner keep names in a zone the site's servers hold for it (the
    /// servers must let pirack's key update and transfer it).
    Grant {
        /// The zone (`example.com`).
        zone: String,
        /// The customer who may keep names in it.
        owner: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Take a granted zone back, once its owner has no names left in it.
    Revoke {
        /// The zone (`example.com`).
        zone: String,
        #[command(flatten)]
        remote: Remote,
    },
}

pub fn dns(action: &DnsAction) -> Result<ExitCode> {
    let zone_path = |z: &str| {
        format!(
            "/v1/dns/zones/{}",
            pirack_controller::api::client::segment(z)
        )
    };
    let (report, json) = match action {
        DnsAction::Zones { json, remote } => {
            let zones = remote.connect()?.call("GET", "/v1/dns/zones", None)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&zones)?);
            }
            for z in zones.as_array().into_iter().flatten().filter(|_| !json) {
                println!(
                    "{:<40} {:<12} {}",
                    printable(z["zone"].as_str().unwrap_or_default()),
                    printable(z["owner"].as_str().unwrap_or("-")),
                    z["source"].as_str().unwrap_or_default()
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        DnsAction::Grant {
            zone,
            owner,
            remote,
        } => {
            let body = serde_json::json!({ "owner": owner });
            remote
                .connect()?
                .call("PUT", &zone_path(zone), Some(&body))?;
            return Ok(ExitCode::SUCCESS);
        }
        DnsAction::Revoke { zone, remote } => {
            remote.connect()?.call("DELETE", &zone_path(zone), None)?;
            return Ok(ExitCode::SUCCESS);
        }
        DnsAction::Sync {
            dry_run,
            json,
            remote,
        } => {
            let body = serde_json::json!({ "dry_run": dry_run });
            (
                remote
                    .connect()?
                    .call("POST", "/v1/dns/sync", Some(&body))?,
                *json,
            )
        }
        DnsAction::Status { json, remote } => {
            (remote.connect()?.call("GET", "/v1/dns", None)?, *json)
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.is_null() {
        println!("no reconciliation yet");
    } else {
        print(&report);
    }
    let failed =
        report["zones"].as_array().into_iter().flatten().any(|z| {
            !z["error"].is_null() || z["failed"].as_array().is_some_and(|f| !f.is_empty())
        });
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print(report: &Value) {
    let t = |v: &Value| printable(v.as_str().unwrap_or_default());
    println!("server {}", t(&report["server"]));
    for z in report["zones"].as_array().into_iter().flatten() {
        let changes = z["changes"].as_array().cloned().unwrap_or_default();
        let count = |kind: &str| changes.iter().filter(|c| c["change"] == kind).count();
        println!(
            "zone {}: {} in sync, {} missing, {} stale, {} held by another; {} applied",
            t(&z["zone"]),
            z["in_sync"],
            count("create"),
            count("replace") + count("delete"),
            z["conflicts"].as_array().map_or(0, Vec::len),
            z["applied"]
        );
        if let Some(e) = z["error"].as_str() {
            println!("  error     {}", printable(e));
        }
        for c in &changes {
            let (kind, name, records) = match c["change"].as_str() {
                Some("create") => ("missing", &c["owned"]["name"], &c["owned"]["records"]),
                Some("replace") => ("stale", &c["owned"]["name"], &c["owned"]["records"]),
                _ => ("unwanted", &c["name"], &c["was"]),
            };
            println!("  {kind:<9} {} {}", t(name), records_text(records));
        }
        for c in z["conflicts"].as_array().into_iter().flatten() {
            println!(
                "  conflict  {} ({}: {})",
                t(&c["name"]),
                t(&c["reason"]),
                records_text(&c["found"])
            );
        }
        for f in z["failed"].as_array().into_iter().flatten() {
            println!("  failed    {} ({})", t(&f["name"]), t(&f["code"]));
        }
    }
}

pub(super) fn records_text(records: &Value) -> String {
    records
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let data = match &r["data"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            printable(&format!("{} {}", r["type"].as_str().unwrap_or("?"), data))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

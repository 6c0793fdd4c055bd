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
}

pub fn dns(action: &DnsAction) -> Result<ExitCode> {
    let (report, json) = match action {
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

fn records_text(records: &Value) -> String {
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

#[derive(clap::Subcommand)]
pub enum NameAction {
    /// The names you manage (every customer's, for an admin).
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Give a name in one of your zones one record, replacing what it held
    /// (`pirack name set _acme-challenge.www.example.com TXT TOKEN`).
    Set {
        name: String,
        /// A, AAAA, CNAME, MX, TXT, SRV or CAA.
        rtype: String,
        /// The data in zone-file form; a TXT's text as is.
        data: String,
        /// Seconds.
        #[arg(long, default_value_t = 300)]
        ttl: u32,
        /// The customer [admins only].
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove a name and its records.
    Rm {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

pub fn name(action: &NameAction) -> Result<ExitCode> {
    match action {
        NameAction::List { json, remote } => {
            let names = remote.connect()?.call("GET", "/v1/names", None)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&names)?);
                return Ok(ExitCode::SUCCESS);
            }
            for n in names.as_array().into_iter().flatten() {
                println!(
                    "{:<40} {:<12} {}",
                    printable(n["name"].as_str().unwrap_or_default()),
                    printable(n["owner"].as_str().unwrap_or_default()),
                    records_text(&n["records"])
                );
            }
        }
        NameAction::Set {
            name,
            rtype,
            data,
            ttl,
            owner,
            remote,
        } => {
            let mut body =
                serde_json::json!({ "records": [{ "type": rtype, "data": data, "ttl": ttl }] });
            if let Some(o) = owner {
                body["owner"] = o.clone().into();
            }
            let path = format!(
                "/v1/names/{}",
                pirack_controller::api::client::segment(name)
            );
            remote.connect()?.call("PUT", &path, Some(&body))?;
        }
        NameAction::Rm { name, remote } => {
            let path = format!(
                "/v1/names/{}",
                pirack_controller::api::client::segment(name)
            );
            remote.connect()?.call("DELETE", &path, None)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

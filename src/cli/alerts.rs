//! `pirack alerts`, `pirack alert-route` and `pirack maintenance`: monitoring
//! through the API, for staff and for customers with their own tokens.

use super::client::Remote;
use anyhow::Result;
use pirack_controller::api::client::segment;
use pirack_core::text::printable;
use serde_json::{Value, json};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct AlertsArgs {
    /// One alert, with every delivery made for it.
    id: Option<i64>,
    /// Only alerts not resolved.
    #[arg(long)]
    open: bool,
    /// As JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Subcommand)]
pub enum RouteAction {
    /// The routes alerts go to (yours; every one for an admin).
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Send alerts to a URI: `ntfy://host/topic`, `prowl:KEY`, `nma:KEY`,
    /// `pover://USER@TOKEN`, `gotify://host/TOKEN`, `json://host/path`,
    /// `mailto:someone@example.com`, `alertmanager://host:9093`.
    Add {
        /// Where alerts go (one of the forms above).
        uri: String,
        /// For this customer [admins; default: the staff's].
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Stop sending alerts to a route.
    Rm {
        /// The route's id (`pirack alert-route list`).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(clap::Subcommand)]
pub enum WindowAction {
    /// Windows not yet over (yours; every one for an admin).
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// No checks and no alerts in SCOPE for a while: `site`, `shelf:NAME`,
    /// `switch:NAME` (admins) or `slot:A-01`.
    Add {
        /// What the window covers (see above).
        scope: String,
        /// How long, in minutes.
        #[arg(long)]
        minutes: u64,
        /// Minutes from now until it starts.
        #[arg(long, default_value_t = 0)]
        starts_in: u64,
        /// Why, for whoever looks.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// End a window now.
    End {
        /// The window's id (`pirack maintenance list`).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

pub fn alerts(args: &AlertsArgs) -> Result<ExitCode> {
    let api = args.remote.connect()?;
    if let Some(id) = args.id {
        let a = api.call("GET", &format!("/v1/alerts/{id}"), None)?;
        if args.json {
            println!("{a:#}");
            return Ok(ExitCode::SUCCESS);
        }
        print_alert(&a);
        for s in a["slots"].as_array().into_iter().flatten() {
            println!("  {:<6} {}", text(&s["position"]), text(&s["why"]));
        }
        for d in a["deliveries"].as_array().into_iter().flatten() {
            println!(
                "  {} {:<8} {:<7} to {} ({} attempt(s)) {}",
                time(&d["at"]),
                text(&d["notice"]),
                text(&d["status"]),
                text(&d["route"]),
                d["attempts"],
                text(&d["detail"])
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let path = format!("/v1/alerts?open={}", args.open);
    list(api.call("GET", &path, None)?, args.json, print_alert)
}

/// A list as JSON, or a line per entry.
fn list(list: Value, json: bool, line: fn(&Value)) -> Result<ExitCode> {
    if json {
        println!("{list:#}");
    } else {
        list.as_array().into_iter().flatten().for_each(line);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_alert(a: &Value) {
    let state = match a["resolved_at"].as_i64() {
        Some(_) => format!("resolved {}", time(&a["resolved_at"])),
        None => "OPEN".into(),
    };
    println!(
        "{:>5} {} {:<24} {}",
        a["id"],
        time(&a["opened_at"]),
        state,
        text(&a["summary"])
    );
}

fn text(v: &Value) -> String {
    printable(v.as_str().unwrap_or("-"))
}

fn time(v: &Value) -> String {
    super::client::when(v)
}

pub fn route(action: &RouteAction) -> Result<ExitCode> {
    match action {
        RouteAction::List { json, remote } => {
            let routes = remote.connect()?.call("GET", "/v1/alert-routes", None)?;
            return list(routes, *json, print_route);
        }
        RouteAction::Add { uri, owner, remote } => {
            let body = json!({ "uri": uri, "owner": owner });
            let r = remote
                .connect()?
                .call("POST", "/v1/alert-routes", Some(&body))?;
            print_route(&r);
        }
        RouteAction::Rm { id, remote } => {
            remote
                .connect()?
                .call("DELETE", &format!("/v1/alert-routes/{}", segment(id)), None)?;
            println!("removed {}", printable(id));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_route(r: &Value) {
    println!(
        "{:<16} {:<13} {:<12} {}",
        text(&r["id"]),
        r["owner"].as_str().map_or("(staff)".into(), printable),
        text(&r["kind"]),
        text(&r["uri"])
    );
    for w in r["warnings"].as_array().into_iter().flatten() {
        println!("  warning: {}", text(w));
    }
}

pub fn maintenance(action: &WindowAction) -> Result<ExitCode> {
    match action {
        WindowAction::List { json, remote } => {
            let windows = remote.connect()?.call("GET", "/v1/maintenance", None)?;
            return list(windows, *json, print_window);
        }
        WindowAction::Add {
            scope,
            minutes,
            starts_in,
            reason,
            remote,
        } => {
            let body = json!({ "scope": scope, "minutes": minutes, "starts_in": starts_in, "reason": reason });
            let w = remote
                .connect()?
                .call("POST", "/v1/maintenance", Some(&body))?;
            print_window(&w);
        }
        WindowAction::End { id, remote } => {
            remote
                .connect()?
                .call("DELETE", &format!("/v1/maintenance/{}", segment(id)), None)?;
            println!("ended {}", printable(id));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_window(w: &Value) {
    println!(
        "{:<16} {:<16} {} to {} {}",
        text(&w["id"]),
        text(&w["scope"]),
        time(&w["starts_at"]),
        time(&w["ends_at"]),
        text(&w["reason"])
    );
}

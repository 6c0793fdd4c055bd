//! The CLI as a client of a running controller's API: `slots`, `show`, `provision`,
//! `reimage`, `rollback`, `decommission`, `events`, and `power` without an
//! inventory. The URL and token come from flags, the environment, or a config file
//! (`~/.config/pirack/client.yaml`: `url:` and `token:` or `token_file:`).

use anyhow::{Context, Result, bail};
use pirack_controller::api::client::{Client, segment};
use pirack_core::text::printable;
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct Remote {
    /// The controller's API [default: from the config file, else http://127.0.0.1:8080].
    #[arg(long, visible_alias = "api", env = "PIRACK_URL")]
    pub url: Option<String>,
    /// API token [default: from the config file].
    #[arg(long, env = "PIRACK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Client config file [default: ~/.config/pirack/client.yaml].
    #[arg(long, env = "PIRACK_CLIENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Trust only this CA (PEM) for an https:// URL [default: from the config
    /// file, else the web's roots].
    #[arg(long, env = "PIRACK_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    url: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
}

impl Remote {
    /// A client of the API these flags, the environment or the config file name.
    pub fn connect(&self) -> Result<Client> {
        let path = self.config.clone().or_else(|| {
            let base = std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
            Some(base.join("pirack/client.yaml"))
        });
        let file: ConfigFile = match &path {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                serde_yaml::from_str(&text).with_context(|| format!("{}", p.display()))?
            }
            Some(p) if self.config.is_some() => bail!("no client config {}", p.display()),
            _ => ConfigFile::default(),
        };
        let url = self
            .url
            .clone()
            .or(file.url)
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let token = match (&self.token, file.token, file.token_file) {
            (Some(t), _, _) => t.clone(),
            (None, Some(t), _) => t,
            (None, None, Some(f)) => std::fs::read_to_string(&f)
                .with_context(|| format!("reading token file {}", f.display()))?
                .trim()
                .to_string(),
            _ => bail!("no API token: give --token, PIRACK_TOKEN, or token in the client config"),
        };
        let ca = self.ca_file.clone().or(file.ca_file);
        Ok(Client::new(&url, token, ca.as_deref())?)
    }
}

/// A string of the API's answer as a terminal may show it: what came from a Pi's
/// wire is escaped already, and is again here.
fn s(v: &Value) -> String {
    v.as_str().map_or_else(|| "-".into(), printable)
}

pub fn slots(remote: &Remote, json: bool) -> Result<ExitCode> {
    let c = remote.connect()?;
    let slots = c.call("GET", "/v1/slots", None)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&slots)?);
        return Ok(ExitCode::SUCCESS);
    }
    let now = pirack_controller::store::now_ms();
    let rows: Vec<Vec<String>> = slots
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            let since = x["state_since"].as_i64().map_or("-".to_string(), |at| {
                pirack_core::text::ago(now - at)
                    .trim_end_matches(" ago")
                    .to_string()
            });
            vec![
                s(&x["position"]),
                s(&x["key"]),
                s(&x["state"]),
                since,
                s(&x["owner"]),
                s(&x["image"]),
                s(&x["board"]),
                x["recoveries"].to_string(),
            ]
        })
        .collect();
    let header = [
        "SLOT",
        "KEY",
        "STATE",
        "FOR",
        "OWNER",
        "IMAGE",
        "BOARD",
        "RECOVERIES",
    ];
    super::table::print(&header, &rows, &[4, 5, 6]);
    Ok(ExitCode::SUCCESS)
}

/// Unix milliseconds as UTC and how long ago: `2026-12-03 16:00:01 UTC (3 min ago)`.
pub fn when(v: &Value) -> String {
    match v.as_i64() {
        Some(ms) => format!(
            "{} ({})",
            pirack_controller::store::lease::utc(ms),
            pirack_core::text::ago(pirack_controller::store::now_ms() - ms)
        ),
        None => "-".into(),
    }
}

pub fn show(remote: &Remote, slot: &str, json: bool) -> Result<ExitCode> {
    let c = remote.connect()?;
    let x = c.call("GET", &format!("/v1/slots/{}", segment(slot)), None)?;
    // The newest first: the slot's latest history, however long its life.
    let events = c.call(
        "GET",
        &format!("/v1/events?slot={}&limit=20", segment(slot)),
        None,
    )?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"slot": x, "events": events}))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    for k in [
        "position",
        "key",
        "state",
        "owner",
        "image",
        "board",
        "hostname",
        "storage_ip",
        "ipv6",
    ] {
        println!("{k:<11} {}", s(&x[k]));
    }
    println!("{:<11} {}", "recoveries", x["recoveries"]);
    println!("{:<11} {}", "since", when(&x["state_since"]));
    let all = events.as_array().cloned().unwrap_or_default();
    println!("\nlast events:");
    for e in all.iter().rev() {
        println!(
            "  {} {:<14} {} ({})",
            when(&e["at"]),
            s(&e["kind"]),
            s(&e["detail"]),
            s(&e["cause"])
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts an operation and, unless `no_wait`, follows it to its end.
pub fn operate(
    remote: &Remote,
    (method, path): (&str, &str),
    body: Option<Value>,
    no_wait: bool,
    json: bool,
) -> Result<ExitCode> {
    let c = remote.connect()?;
    let op = c.call(method, path, body.as_ref())?;
    // Said at once (an image not qualified), before a wait of minutes.
    for w in op["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", s(w));
    }
    let done = if no_wait { op } else { c.wait(&op)? };
    if json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    } else {
        println!(
            "{} {} {}: {}",
            s(&done["id"]),
            s(&done["kind"]),
            s(&done["status"]),
            s(&done["detail"])
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn events(remote: &Remote, slot: Option<&str>, follow: bool, json: bool) -> Result<ExitCode> {
    let c = remote.connect()?;
    let mut after = 0i64;
    loop {
        let mut path = format!("/v1/events?after={after}&limit=500");
        if let Some(s) = slot {
            path += &format!("&slot={}", segment(s));
        }
        let page = c.call("GET", &path, None)?;
        let rows = page.as_array().cloned().unwrap_or_default();
        for e in &rows {
            after = after.max(e["id"].as_i64().unwrap_or(after));
            if json {
                println!("{e}");
            } else {
                let at = e["at"].as_i64().unwrap_or(0);
                println!(
                    "{} {:<8} {:<14} {} ({})",
                    pirack_controller::store::lease::rfc3339(at),
                    s(&e["slot"]),
                    s(&e["kind"]),
                    s(&e["detail"]),
                    s(&e["cause"])
                );
            }
        }
        if rows.len() < 500 {
            if !follow {
                return Ok(ExitCode::SUCCESS);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

#[derive(clap::Subcommand)]
pub enum BoardAction {
    /// Accept the board the site's policy held in a slot: it becomes the slot's
    /// board and boots (admins).
    Accept {
        /// Position or key.
        slot: String,
        #[command(flatten)]
        remote: Remote,
        /// As the API's JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn accept_board(remote: &Remote, slot: &str, json: bool) -> Result<ExitCode> {
    let c = remote.connect()?;
    let x = c.call(
        "POST",
        &format!("/v1/slots/{}/board/accept", segment(slot)),
        None,
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&x)?);
    } else {
        println!(
            "{}: board {} accepted; the slot is {}",
            s(&x["position"]),
            s(&x["board"]),
            s(&x["state"])
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What the commands that start an operation share.
#[derive(clap::Args)]
pub struct OpArgs {
    #[command(flatten)]
    pub remote: Remote,
    /// Print the operation at once instead of following it to its end.
    #[arg(long)]
    pub no_wait: bool,
    /// The operation as the API's JSON.
    #[arg(long)]
    pub json: bool,
}

impl OpArgs {
    pub fn run(&self, call: (&str, &str), body: Option<Value>) -> Result<ExitCode> {
        operate(&self.remote, call, body, self.no_wait, self.json)
    }
}

/// `pirack cluster status`: the controllers on the store, their roles, the leases and the
/// last failovers.
pub fn cluster(remote: &Remote, json: bool) -> Result<ExitCode> {
    let c = remote.connect()?;
    let status = c.call("GET", "/v1/cluster", None)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = status["controllers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let holds: Vec<String> = m["holds"].as_array().into_iter().flatten().map(s).collect();
            vec![
                s(&m["id"]),
                s(&m["role"]),
                s(&m["state"]),
                holds.join(", "),
                s(&m["api"]),
                format!("{:.1} s", m["lag_ms"].as_i64().unwrap_or(0) as f64 / 1000.0),
                when(&m["started_at"]),
            ]
        })
        .collect();
    super::table::print(
        &[
            "CONTROLLER",
            "ROLE",
            "STATE",
            "HOLDS",
            "API",
            "LAG",
            "STARTED",
        ],
        &rows,
        &[],
    );
    println!();
    for lease in status["leases"].as_array().into_iter().flatten() {
        let shelves: Vec<String> = lease["shelves"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        let of = match shelves.is_empty() {
            true => String::new(),
            false => format!(" (shelves {})", shelves.join(", ")),
        };
        match lease["live"].as_bool() {
            Some(true) => println!(
                "lease {}{of}: {}, generation {}, renewed {}, lives {:.0} s unrenewed",
                s(&lease["name"]),
                s(&lease["holder"]),
                lease["generation"],
                when(&lease["renewed_at"]),
                lease["ttl_ms"].as_i64().unwrap_or(0) as f64 / 1000.0
            ),
            _ => println!(
                "lease {}{of}: none live since generation {} (a standby takes over within a second)",
                s(&lease["name"]),
                lease["generation"]
            ),
        }
    }
    match status["failovers"].as_array().and_then(|f| f.first()) {
        None => println!("last failover: none"),
        Some(f) => println!(
            "last failover: {}: from {} to {} (generation {}, {:.1} s after its last renewal)",
            when(&f["at"]),
            s(&f["from_holder"]),
            s(&f["to_holder"]),
            f["generation"],
            f["lapsed_ms"].as_i64().unwrap_or(0) as f64 / 1000.0
        ),
    }
    Ok(ExitCode::SUCCESS)
}

//! `pirack name`: a customer's own names through the API: records set whole or
//! one at a time (an ACME client's dns-01 challenge), names that follow a
//! target's addresses (ANAME), and waiting until the site's authoritative
//! servers answer with a change.

use super::client::Remote;
use super::dns::records_text;
use anyhow::{Context, Result, bail};
use pirack_controller::api::client::segment;
use pirack_core::dns::Data;
use pirack_core::text::printable;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
    /// One name: its records, whether it is published, and for an ANAME its
    /// target, chain, last and next resolution, and why it is stale.
    Show {
        /// The fully qualified name (`www.example.com`).
        name: String,
        /// As JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Give a name in one of your zones one record, replacing what it held.
    Set {
        /// The fully qualified name (`www.example.com`).
        name: String,
        #[command(flatten)]
        record: RecordArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Add one record to a name, keeping the others
    /// (`pirack name add _acme-challenge.www.example.com TXT TOKEN --wait 120`).
    Add {
        /// The fully qualified name (`www.example.com`).
        name: String,
        #[command(flatten)]
        record: RecordArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Remove one record from a name (the name goes with its last record).
    Del {
        /// The fully qualified name (`www.example.com`).
        name: String,
        #[command(flatten)]
        record: RecordArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Make a name (a zone's apex too) follow a target's AAAA and A records
    /// (ANAME): typically your Pi's name.
    Aname {
        /// The fully qualified name (`www.example.com`).
        name: String,
        /// The host name followed.
        target: String,
        /// The most TTL the written records get, seconds.
        #[arg(long, default_value_t = 300)]
        ttl: u32,
        #[command(flatten)]
        common: Common,
    },
    /// Remove a name and its records.
    Rm {
        /// The fully qualified name (`www.example.com`).
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(clap::Args)]
pub struct RecordArgs {
    /// A, AAAA, CNAME, MX, TXT, SRV or CAA.
    rtype: String,
    /// The data in zone-file form; a TXT's text as is.
    data: String,
    /// Seconds.
    #[arg(long, default_value_t = 300)]
    ttl: u32,
}

#[derive(clap::Args)]
pub struct Common {
    /// The customer [admins only].
    #[arg(long)]
    owner: Option<String>,
    /// Wait up to this many seconds until every authoritative server answers
    /// with the change; fail if they do not.
    #[arg(long, value_name = "SECONDS")]
    wait: Option<u64>,
    #[command(flatten)]
    remote: Remote,
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
                    "{:<40} {:<12} {}{}",
                    printable(n["name"].as_str().unwrap_or_default()),
                    printable(n["owner"].as_str().unwrap_or_default()),
                    records_text(&n["records"]),
                    following(n)
                );
            }
        }
        NameAction::Show { name, json, remote } => {
            let n = remote.connect()?.call("GET", &path(name), None)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&n)?);
            } else {
                show(&n);
            }
        }
        NameAction::Set {
            name,
            record,
            common,
        } => {
            let body = json!({ "records": [record.json()] });
            let n = common.send("PUT", name, body)?;
            common.wait_for(name, &n, Some(record), true)?;
        }
        NameAction::Add {
            name,
            record,
            common,
        } => {
            let n = common.send("PATCH", name, json!({ "add": [record.json()] }))?;
            common.wait_for(name, &n, Some(record), true)?;
        }
        NameAction::Del {
            name,
            record,
            common,
        } => {
            let n = common.send("PATCH", name, json!({ "remove": [record.json()] }))?;
            common.wait_for(name, &n, Some(record), false)?;
        }
        NameAction::Aname {
            name,
            target,
            ttl,
            common,
        } => {
            let n = common.send(
                "PUT",
                name,
                json!({ "aname": { "target": target, "ttl": ttl } }),
            )?;
            show(&n);
            common.wait_for(name, &n, None, true)?;
        }
        NameAction::Rm { name, remote } => {
            remote.connect()?.call("DELETE", &path(name), None)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn path(name: &str) -> String {
    format!("/v1/names/{}", segment(name))
}

impl RecordArgs {
    fn json(&self) -> Value {
        json!({ "type": self.rtype, "data": self.data, "ttl": self.ttl })
    }
}

impl Common {
    fn send(&self, method: &str, name: &str, mut body: Value) -> Result<Value> {
        if let Some(o) = &self.owner {
            body["owner"] = o.clone().into();
        }
        Ok(self
            .remote
            .connect()?
            .call(method, &path(name), Some(&body))?)
    }

    /// With `--wait`: until the controller has published the name, then until
    /// each authoritative server answers with `record` (or without it when
    /// `present` is false; with the name's records for an ANAME).
    fn wait_for(
        &self,
        name: &str,
        sent: &Value,
        record: Option<&RecordArgs>,
        present: bool,
    ) -> Result<()> {
        let Some(secs) = self.wait else {
            return Ok(());
        };
        let deadline = Instant::now() + Duration::from_secs(secs);
        let api = self.remote.connect()?;
        let mut view = sent.clone();
        while view.get("deleted").is_none() && view["published"] != true {
            if Instant::now() > deadline {
                bail!("{name}: not published within {secs} s (see `pirack dns status`)");
            }
            std::thread::sleep(Duration::from_millis(250));
            view = match api.call("GET", &path(name), None) {
                Ok(v) => v,
                // Gone: the last record was removed.
                Err(_) if !present => break,
                Err(e) => return Err(e.into()),
            };
        }
        let servers: Vec<SocketAddr> = view["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str()?.parse().ok())
            .collect();
        let (rtype, want) = match record {
            Some(r) => {
                let rtype = pirack_core::dns::type_code(&r.rtype.to_ascii_uppercase())
                    .context("an unknown type")?;
                let data = pirack_dns::wire::parse(name, r.ttl, rtype, &r.data)?.data;
                (rtype, vec![data])
            }
            None => {
                let records: Vec<pirack_core::dns::Record> =
                    serde_json::from_value(view["records"].clone()).unwrap_or_default();
                let first = records
                    .first()
                    .map_or(pirack_core::dns::AAAA, |r| r.data.rtype());
                let want = records
                    .into_iter()
                    .filter(|r| r.data.rtype() == first)
                    .map(|r| r.data)
                    .collect();
                (first, want)
            }
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        for server in servers {
            loop {
                let answer = rt.block_on(answers(server, name, rtype));
                let holds = answer
                    .as_ref()
                    .is_ok_and(|got| want.iter().all(|w| got.contains(w) == present));
                if holds {
                    break;
                }
                if Instant::now() > deadline {
                    let why = answer.err().unwrap_or_else(|| "a different answer".into());
                    bail!("{name}: {server} does not answer as asked within {secs} s ({why})");
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        Ok(())
    }
}

/// The data `server` answers for `name`'s records of `rtype`.
async fn answers(server: SocketAddr, name: &str, rtype: u16) -> Result<Vec<Data>, String> {
    let fqdn = pirack_core::dns::names::absolute(name);
    let a = pirack_dns::resolve::query(server, &fqdn, rtype.into(), Duration::from_secs(2)).await?;
    Ok(a.message
        .answers
        .iter()
        .map(|r| pirack_dns::wire::from_wire(r).data)
        .collect())
}

/// An ANAME name's target and state, for a listing line.
fn following(n: &Value) -> String {
    let a = &n["aname"];
    if a.is_null() {
        return String::new();
    }
    let state = match a["error"].as_str() {
        Some(e) => format!("stale: {}", printable(e)),
        None => "fresh".into(),
    };
    format!(
        " (follows {}, {state})",
        printable(a["target"].as_str().unwrap_or_default())
    )
}

fn show(n: &Value) {
    let t = |v: &Value| printable(v.as_str().unwrap_or("-"));
    println!("name       {}", t(&n["name"]));
    println!("owner      {}", t(&n["owner"]));
    println!("records    {}", records_text(&n["records"]));
    println!("published  {}", n["published"]);
    let a = &n["aname"];
    if a.is_null() {
        return;
    }
    let when = |v: &Value| {
        v.as_i64()
            .and_then(|ms| u64::try_from(ms).ok())
            .map_or_else(
                || "-".to_string(),
                |ms| httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_millis(ms)),
            )
    };
    println!("follows    {} (ttl {})", t(&a["target"]), a["ttl"]);
    let chain: Vec<String> = a["chain"].as_array().into_iter().flatten().map(t).collect();
    println!("chain      {}", chain.join(" → "));
    if let Some(slot) = a["slot"].as_str() {
        println!("slot       {} (IPv4 through the proxy)", printable(slot));
    }
    println!("resolved   {}", when(&a["resolved_at"]));
    println!("checked    {}", when(&n["refresh"]["checked_at"]));
    println!("next       {}", when(&n["refresh"]["next_at"]));
    if let Some(e) = a["error"].as_str() {
        println!(
            "stale      since {}: {}",
            when(&a["stale_since"]),
            printable(e)
        );
    }
}

/// Adds (or with `present` false removes) a TXT record at `name` and waits up
/// to `wait` seconds until every authoritative server answers so.
pub(super) fn txt(
    remote: &Remote,
    name: &str,
    value: &str,
    present: bool,
    wait: u64,
) -> Result<()> {
    let common = Common {
        owner: None,
        wait: Some(wait),
        remote: remote.clone(),
    };
    let record = RecordArgs {
        rtype: "TXT".into(),
        data: value.into(),
        ttl: 60,
    };
    let edit = if present { "add" } else { "remove" };
    let sent = common.send("PATCH", name, json!({ edit: [record.json()] }))?;
    common.wait_for(name, &sent, Some(&record), present)
}

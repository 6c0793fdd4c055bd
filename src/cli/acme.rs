//! `pirack acme-hook`: the dns-01 hook for ACME clients, so a customer gets a
//! certificate for a name in its zones without touching its web server. It sets
//! and removes `_acme-challenge` TXT records through the API with the customer's
//! token, and waits until the site's authoritative servers answer before the
//! client asks the CA to look. One program for the usual clients' conventions:
//!
//! - lego's exec provider: `EXEC_PATH` runs it as `present|cleanup FQDN VALUE`
//!   (link the binary as `pirack-acme-hook` and point `EXEC_PATH` at the link);
//! - dehydrated's hook: `deploy_challenge|clean_challenge DOMAIN TOKEN VALUE`
//!   (repeated with `HOOK_CHAIN=yes`), its other calls ignored;
//! - certbot's manual hooks: `auth` and `cleanup`, the domain and value from
//!   `CERTBOT_DOMAIN` and `CERTBOT_VALIDATION`.

use super::client::Remote;
use anyhow::{Context, Result, bail};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct AcmeHook {
    /// present|cleanup (lego), deploy_challenge|clean_challenge (dehydrated),
    /// auth|cleanup (certbot).
    action: String,
    /// The client's arguments after the action.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
    /// Seconds to wait for the servers to answer with a new challenge.
    #[arg(long, env = "PIRACK_ACME_WAIT", default_value_t = 120)]
    wait: u64,
    #[command(flatten)]
    remote: Remote,
}

/// A challenge: its TXT record's name and value.
type Challenge = (String, String);

pub fn run(hook: &AcmeHook) -> Result<ExitCode> {
    let (present, challenges) = challenges(hook)?;
    for (name, value) in challenges {
        super::names::txt(&hook.remote, &name, &value, present, hook.wait)
            .with_context(|| format!("{} {name}", if present { "setting" } else { "removing" }))?;
        tracing::info!(
            "{name}: challenge {}",
            if present { "published" } else { "removed" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the challenges are to be set (or removed), and which.
fn challenges(hook: &AcmeHook) -> Result<(bool, Vec<Challenge>)> {
    let under = |domain: &str| format!("_acme-challenge.{}", domain.trim_start_matches("*."));
    let certbot = std::env::var("CERTBOT_DOMAIN").ok();
    match (hook.action.as_str(), hook.args.as_slice()) {
        ("present" | "cleanup", [fqdn, value]) => Ok((
            hook.action == "present",
            vec![(fqdn.trim_end_matches('.').to_string(), value.clone())],
        )),
        ("auth" | "cleanup", []) if certbot.is_some() => {
            let value = std::env::var("CERTBOT_VALIDATION")
                .context("certbot gave no CERTBOT_VALIDATION")?;
            let domain = certbot.unwrap_or_default();
            Ok((hook.action == "auth", vec![(under(&domain), value)]))
        }
        ("deploy_challenge" | "clean_challenge", args)
            if !args.is_empty() && args.len() % 3 == 0 =>
        {
            let all = args
                .chunks(3)
                .map(|c| (under(&c[0]), c[2].clone()))
                .collect();
            Ok((hook.action == "deploy_challenge", all))
        }
        // dehydrated's other hooks (deploy_cert, startup_hook, ...) are not ours.
        (action, _) if !matches!(action, "present" | "cleanup" | "auth") => {
            if matches!(action, "deploy_challenge" | "clean_challenge") {
                bail!(
                    "{action}: expected DOMAIN TOKEN_FILENAME TOKEN_VALUE, given {:?}",
                    hook.args
                );
            }
            Ok((false, Vec::new()))
        }
        (action, args) => bail!(
            "{action} {args:?}: expected `present|cleanup FQDN VALUE` (lego), or auth|cleanup \
             with CERTBOT_DOMAIN and CERTBOT_VALIDATION set (certbot)"
        ),
    }
}

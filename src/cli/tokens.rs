//! `token` and `owner`: API tokens, and the customers they may be made for, on the
//! controller's host.

use anyhow::{Result, bail};
use pirack_controller::store::Store;
use pirack_controller::store::owners::Source;
use pirack_controller::store::tokens::Scope;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum TokenAction {
    /// Make a token; it is printed once and only its hash is kept.
    Create {
        /// What the token is for, shown in listings and events.
        #[arg(long)]
        name: String,
        /// Everything, every slot.
        #[arg(long, conflicts_with = "owner", required_unless_present = "owner")]
        admin: bool,
        /// Only this customer's slots.
        #[arg(long)]
        owner: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke {
        /// The token's id (`pirack token list`).
        id: String,
    },
}

pub fn token(db: &str, action: &TokenAction) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = Store::open(db).await?;
        match action {
            TokenAction::Create { name, admin, owner } => {
                let scope = match (admin, owner) {
                    (true, _) => Scope::Admin,
                    (false, Some(o)) if store.has_owner(o).await? => Scope::Customer(o.clone()),
                    (false, Some(o)) => bail!(
                        "unknown owner `{o}`: add it to the inventory's owners (the controller \
                         records them when it starts) or with `pirack owner add {o}`"
                    ),
                    _ => bail!("give --admin or --owner NAME"),
                };
                let (row, token) = store.create_token(name, &scope).await?;
                eprintln!(
                    "token {} ({name}) made; keep it now, it is not shown again",
                    row.id
                );
                println!("{token}");
            }
            TokenAction::List => {
                println!(
                    "{:<14} {:<10} {:<12} {:<10} NAME",
                    "ID", "SCOPE", "OWNER", "STATE"
                );
                for t in store.tokens().await? {
                    let (scope, owner) = match &t.scope {
                        Scope::Admin => ("admin", "-"),
                        Scope::Customer(o) => ("customer", o.as_str()),
                    };
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "live"
                    };
                    println!(
                        "{:<14} {scope:<10} {owner:<12} {state:<10} {}",
                        t.id, t.name
                    );
                }
            }
            TokenAction::Revoke { id } => {
                if !store.revoke_token(id).await? {
                    bail!("no live token {id}");
                }
                eprintln!("token {id} revoked");
            }
        }
        store.pool().close().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(clap::Subcommand)]
pub enum OwnerAction {
    /// Add customers the site knows beyond the inventory's.
    Add {
        /// The customers' names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// List the customers the site knows.
    List,
}

pub fn owner(db: &str, action: &OwnerAction) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = Store::open(db).await?;
        match action {
            OwnerAction::Add { names } => {
                for n in names {
                    store.add_owner(n, Source::Staff).await?;
                }
            }
            OwnerAction::List => {
                for n in store.owners().await? {
                    println!("{n}");
                }
            }
        }
        store.pool().close().await;
        Ok(ExitCode::SUCCESS)
    })
}

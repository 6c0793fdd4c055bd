//! What most commands start from: the inventory, its profiles and its ledger.

use anyhow::{Context, Result};
use pirack_core::inventory::{self, InventoryError, Site};
use pirack_core::plan::Ledger;
use pirack_core::switch::Profiles;
use std::path::{Path, PathBuf};

/// Where the inventory and what it refers to live.
#[derive(clap::Args)]
pub struct Inputs {
    /// Site inventory (YAML), e.g. hardware/example-8.yaml.
    #[arg(long, env = "PIRACK_INVENTORY")]
    pub inventory: PathBuf,
    /// Switch profile directory [default: the nearest switch-profiles/ in the
    /// inventory's directory or above it].
    #[arg(long, env = "PIRACK_PROFILES")]
    pub profiles: Option<PathBuf>,
    /// Address ledger [default: <inventory>.ledger.yaml beside the inventory].
    #[arg(long, env = "PIRACK_LEDGER")]
    pub ledger: Option<PathBuf>,
}

/// The loaded inputs.
pub struct Loaded {
    pub site: Site,
    pub profiles: Profiles,
    pub ledger: Ledger,
    pub ledger_path: PathBuf,
}

/// An error already shown in full (an inventory's problem list): the CLI exits
/// non-zero without printing it again.
#[derive(Debug)]
pub struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("problems reported above")
    }
}

impl std::error::Error for Reported {}

pub fn load(inputs: &Inputs) -> Result<Loaded> {
    let profiles_dir = match &inputs.profiles {
        Some(dir) => dir.clone(),
        None => find_profiles(&inputs.inventory)?,
    };
    let profiles = Profiles::load_dir(&profiles_dir)?;
    let site = match inventory::load(&inputs.inventory, &profiles.names()) {
        Ok(site) => site,
        Err(InventoryError::Invalid(problems)) => {
            eprintln!("{problems}");
            eprintln!(
                "{}: {} problem(s)",
                inputs.inventory.display(),
                problems.0.len()
            );
            return Err(Reported.into());
        }
        Err(e) => return Err(e.into()),
    };
    let ledger_path = inputs
        .ledger
        .clone()
        .unwrap_or_else(|| Ledger::path_for(&inputs.inventory));
    let ledger = Ledger::load(&ledger_path)?;
    Ok(Loaded {
        site,
        profiles,
        ledger,
        ledger_path,
    })
}

/// The nearest `switch-profiles/` at or above the inventory's directory, the way
/// git finds `.git`: a site repository keeps profiles beside `hardware/`.
pub fn find_profiles(inventory: &Path) -> Result<PathBuf> {
    let start = std::path::absolute(inventory)?;
    start
        .ancestors()
        .skip(1)
        .map(|d| d.join("switch-profiles"))
        .find(|d| d.is_dir())
        .with_context(|| {
            format!(
                "no switch-profiles/ directory at or above {}; pass --profiles DIR",
                inventory.display()
            )
        })
}

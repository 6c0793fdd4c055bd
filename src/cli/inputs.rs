//! What most commands start from: the inventory, its profiles and its ledger.

use anyhow::{Context, Result};
use pirack_core::inventory::{self, InventoryError, Site};
use pirack_core::plan::Ledger;
use pirack_core::switch::Profiles;
use std::path::{Path, PathBuf};

/// Where the inventory and what it refers to live.
#[derive(clap::Args)]
pub struct Inputs {
    /// Site inventory (YAML), e.g. hardware/example-8.yaml; the installed
    /// package's is /etc/pirack/site.yaml.
    #[arg(long, env = "PIRACK_INVENTORY", default_value = PACKAGED_INVENTORY)]
    pub inventory: PathBuf,
    /// Switch profile directory [default: the nearest switch-profiles/ in the
    /// inventory's directory or above it, else the package's
    /// /usr/share/pirack/switch-profiles].
    #[arg(long, env = "PIRACK_PROFILES")]
    pub profiles: Option<PathBuf>,
    /// Address ledger [default: <inventory>.ledger.yaml beside the inventory;
    /// for the package's /etc/pirack/site.yaml, /var/lib/pirack/site.ledger.yaml].
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
        .unwrap_or_else(|| default_ledger(&inputs.inventory));
    let ledger = Ledger::load(&ledger_path)?;
    Ok(Loaded {
        site,
        profiles,
        ledger,
        ledger_path,
    })
}

/// The nearest `switch-profiles/` at or above the inventory's directory, the way
/// git finds `.git`: a site repository keeps profiles beside `hardware/`. An
/// installed package's site (/etc/pirack/site.yaml) falls back to the profiles
/// the package ships.
pub fn find_profiles(inventory: &Path) -> Result<PathBuf> {
    let start = std::path::absolute(inventory)?;
    start
        .ancestors()
        .skip(1)
        .map(|d| d.join("switch-profiles"))
        .chain([PathBuf::from(PACKAGED_PROFILES)])
        .find(|d| d.is_dir())
        .with_context(|| {
            format!(
                "no switch-profiles/ directory at or above {} nor in {PACKAGED_PROFILES}; \
                 pass --profiles DIR",
                inventory.display()
            )
        })
}

/// The ledger beside the inventory, except the package's: the service writes
/// its ledger and sees /etc read-only, so that one is state.
fn default_ledger(inventory: &Path) -> PathBuf {
    match std::path::absolute(inventory) {
        Ok(p) if p == Path::new(PACKAGED_INVENTORY) => PathBuf::from(PACKAGED_LEDGER),
        _ => Ledger::path_for(inventory),
    }
}

const PACKAGED_INVENTORY: &str = "/etc/pirack/site.yaml";
const PACKAGED_LEDGER: &str = "/var/lib/pirack/site.ledger.yaml";

/// Where the Debian package puts the switch profiles of this repository.
const PACKAGED_PROFILES: &str = "/usr/share/pirack/switch-profiles";

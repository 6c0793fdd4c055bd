//! What the checked `backup:` section says for each slot: its policy (the
//! site's, then its owner's, then its own changes), the repository its
//! owner has at each target, when its next backup is due, and restic's
//! retention and check arguments.
//!
//! One repository per owner per target: an owner's Pis, made from the same
//! images, share their data (restic deduplicates within a repository), and
//! no owner's key opens, or lock blocks, another's.

use super::model::{Override, Retention, Sftp};
use crate::inventory::model::SecretRef;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The checked `backup:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteBackup {
    pub keys: PathBuf,
    pub targets: Vec<Target>,
    pub window: Window,
    pub retention: Retention,
    pub fresh: Duration,
    pub space_warn_pct: u8,
    pub check_parts: u32,
    pub owners: BTreeMap<String, Checked>,
    pub slots: BTreeMap<String, Checked>,
}

/// An override with its schedule checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Checked {
    pub enabled: Option<bool>,
    pub window: Option<Window>,
    pub retention: Option<Retention>,
    pub fresh: Option<Duration>,
}

impl Checked {
    pub fn of(o: &Override, window: Option<Window>) -> Checked {
        Checked {
            enabled: o.enabled,
            window,
            retention: o.retention.clone(),
            fresh: o.fresh_h.map(|h| Duration::from_secs(u64::from(h) * 3_600)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub place: Place,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    Path(PathBuf),
    Sftp(Sftp),
    Rest {
        url: String,
        user: Option<String>,
        password: Option<SecretRef>,
    },
}

/// When a slot's backups run: every `every` from `start` after midnight UTC,
/// each slot at its own offset within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub every: Duration,
    pub start: Duration,
    pub window: Duration,
}

/// What applies to one slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub enabled: bool,
    pub window: Window,
    pub retention: Retention,
    pub fresh: Duration,
}

impl SiteBackup {
    /// The policy of the slot at `position` held by `owner`.
    pub fn policy(&self, owner: Option<&str>, position: &str) -> Policy {
        let mut p = Policy {
            enabled: true,
            window: self.window,
            retention: self.retention.clone(),
            fresh: self.fresh,
        };
        let layers = [
            owner.and_then(|o| self.owners.get(o)),
            self.slots.get(position),
        ];
        for o in layers.into_iter().flatten() {
            p.enabled = o.enabled.unwrap_or(p.enabled);
            p.window = o.window.unwrap_or(p.window);
            p.retention = o.retention.clone().unwrap_or(p.retention);
            p.fresh = o.fresh.unwrap_or(p.fresh);
        }
        p
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }
}

/// The name an owner's repositories go by; the site's own slots' are `_site`.
pub fn owner_dir(owner: Option<&str>) -> &str {
    owner.unwrap_or("_site")
}

/// An owner's repository at a target: restic's `-r` (without credentials)
/// and the key file pirack keeps for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub location: String,
    pub key: PathBuf,
}

pub fn repository(site: &SiteBackup, target: &Target, owner: Option<&str>) -> Repository {
    let dir = owner_dir(owner);
    let location = match &target.place {
        Place::Path(p) => p.join(dir).to_string_lossy().into_owned(),
        Place::Sftp(s) => format!(
            "sftp:{}@{}:{}/{dir}",
            s.user,
            s.host,
            s.path.trim_end_matches('/')
        ),
        Place::Rest { url, .. } => format!("rest:{}/{dir}/", url.trim_end_matches('/')),
    };
    Repository {
        location,
        key: site.keys.join(&target.name).join(format!("{dir}.key")),
    }
}

/// A slot's offset into the window, the same on every run and machine.
fn offset(key: &str, window: Duration) -> Duration {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let secs = window.as_secs().max(1);
    Duration::from_secs(h % secs)
}

/// The first time (Unix seconds) after `after` the slot `key`'s backup is due.
pub fn next_due(key: &str, w: &Window, after: i64) -> i64 {
    let every = w.every.as_secs().max(1) as i64;
    let first = (w.start + offset(key, w.window)).as_secs() as i64;
    let day = after - after.rem_euclid(86_400);
    // The slot's times are day + first + k × every; the next one after `after`.
    let k = (after - day - first).div_euclid(every) + 1;
    day + first + k * every
}

/// `restic forget` arguments that keep what `r` says (and with `prune`,
/// remove the rest's data).
pub fn forget_args(r: &Retention, prune: bool) -> Vec<String> {
    let mut args = vec![
        "--keep-daily".into(),
        r.daily.to_string(),
        "--keep-weekly".into(),
        r.weekly.to_string(),
        "--keep-monthly".into(),
        r.monthly.to_string(),
    ];
    if prune {
        args.push("--prune".into());
    }
    args
}

/// `restic check --read-data-subset` for day `day` (days since the epoch):
/// a different one of `parts` parts each day, so every part is read in turn.
pub fn check_subset(parts: u32, day: i64) -> String {
    let parts = parts.max(1);
    format!("{}/{parts}", day.rem_euclid(i64::from(parts)) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        Window {
            every: Duration::from_secs(86_400),
            start: Duration::from_secs(3_600),
            window: Duration::from_secs(4 * 3_600),
        }
    }

    #[test]
    fn each_slot_daily_in_the_window_at_its_own_time() {
        let w = window();
        let day = 20_000 * 86_400;
        let a = next_due("sw-a/1", &w, day);
        assert!((day + 3_600..day + 5 * 3_600).contains(&a), "{}", a - day);
        assert_eq!(next_due("sw-a/1", &w, a), a + 86_400);
        assert_eq!(next_due("sw-a/1", &w, a - 1), a);
        // A shelf spreads over the window.
        let mut times: Vec<i64> = (1..=96)
            .map(|p| next_due(&format!("sw-a/{p}"), &w, day))
            .collect();
        times.sort();
        times.dedup();
        assert!(times.len() > 90);
        assert!(times[times.len() - 1] - times[0] > 3 * 3_600);
    }

    #[test]
    fn repositories_per_owner_and_target() {
        let site = SiteBackup {
            keys: "/etc/pirack/backup-keys".into(),
            targets: vec![],
            window: window(),
            retention: Retention::default(),
            fresh: Duration::from_secs(3_600),
            space_warn_pct: 10,
            check_parts: 30,
            owners: BTreeMap::new(),
            slots: BTreeMap::new(),
        };
        let local = Target {
            name: "local".into(),
            place: Place::Path("/srv/backup".into()),
        };
        let r = repository(&site, &local, Some("acme"));
        assert_eq!(r.location, "/srv/backup/acme");
        assert_eq!(
            r.key,
            PathBuf::from("/etc/pirack/backup-keys/local/acme.key")
        );
        assert_eq!(
            repository(&site, &local, None).location,
            "/srv/backup/_site"
        );
        let rest = Target {
            name: "r".into(),
            place: Place::Rest {
                url: "https://b.example:8000/".into(),
                user: None,
                password: None,
            },
        };
        assert_eq!(
            repository(&site, &rest, Some("acme")).location,
            "rest:https://b.example:8000/acme/"
        );
        assert_eq!(check_subset(30, 0), "1/30");
        assert_eq!(check_subset(30, 59), "30/30");
    }
}

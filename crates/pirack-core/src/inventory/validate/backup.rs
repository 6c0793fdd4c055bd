//! Checks of the `backup:` section: absolute paths, one place per target
//! with unique names, sane schedules and retention, overrides for owners and
//! slots that exist.

use super::Checker;
use crate::backup::model::{self, Backup, Schedule};
use crate::backup::plan::{Checked, Place, SiteBackup, Target, Window};
use crate::inventory::Slot;
use crate::inventory::model::{Owner, SecretRef};
use std::path::{Path, PathBuf};
use std::time::Duration;

impl Checker<'_> {
    pub(super) fn backup(
        &mut self,
        b: &Backup,
        owners: &[Owner],
        slots: &[Slot],
    ) -> Option<SiteBackup> {
        let before = self.problems.len();
        let keys = self.absolute("backup.keys", &b.keys);
        if b.targets.is_empty() {
            self.problem("backup.targets", "at least one target is needed");
        }
        let mut targets = Vec::new();
        for (i, t) in b.targets.iter().enumerate() {
            if let Some(target) = self.target(&format!("backup.targets[{i}]"), t) {
                if targets.iter().any(|o: &Target| o.name == target.name) {
                    self.problem(
                        format!("backup.targets[{i}].name"),
                        format!("another target is called `{}`", t.name),
                    );
                }
                targets.push(target);
            }
        }
        let window = self.window("backup.schedule", &b.schedule);
        self.retention("backup.retention", &b.retention);
        for (field, value, range) in [
            ("backup.fresh_h", u64::from(b.fresh_h), 1..=24 * 366),
            ("backup.space_warn_pct", u64::from(b.space_warn_pct), 1..=99),
            ("backup.check_parts", u64::from(b.check_parts), 1..=1_000),
        ] {
            if !range.contains(&value) {
                self.problem(
                    field,
                    format!("{value} is outside {}..={}", range.start(), range.end()),
                );
            }
        }
        let mut checked = |kind: &str, name: &str, o: &model::Override, known: bool| {
            let at = format!("backup.{kind}.{name}");
            if !known {
                let what = if kind == "owners" {
                    "owner is called"
                } else {
                    "slot is at"
                };
                self.problem(at.clone(), format!("no {what} `{name}`"));
            }
            let window = o
                .schedule
                .as_ref()
                .and_then(|s| self.window(&format!("{at}.schedule"), s));
            if let Some(r) = &o.retention {
                self.retention(&format!("{at}.retention"), r);
            }
            if o.fresh_h == Some(0) {
                self.problem(format!("{at}.fresh_h"), "0 is outside 1..=8784");
            }
            (name.to_string(), Checked::of(o, window))
        };
        let owners_checked = b
            .owners
            .iter()
            .map(|(n, o)| checked("owners", n, o, owners.iter().any(|w| &w.name == n)))
            .collect();
        let slots_checked = b
            .slots
            .iter()
            .map(|(p, o)| checked("slots", p, o, slots.iter().any(|s| &s.position == p)))
            .collect();
        (self.problems.len() == before).then(|| SiteBackup {
            keys: keys.expect("checked"),
            targets,
            window: window.expect("checked"),
            retention: b.retention.clone(),
            fresh: Duration::from_secs(u64::from(b.fresh_h) * 3_600),
            space_warn_pct: b.space_warn_pct,
            check_parts: b.check_parts,
            owners: owners_checked,
            slots: slots_checked,
        })
    }

    fn absolute(&mut self, at: &str, path: &str) -> Option<PathBuf> {
        if Path::new(path).is_absolute() {
            Some(PathBuf::from(path))
        } else {
            self.problem(at, format!("`{path}` is not an absolute path"));
            None
        }
    }

    fn target(&mut self, at: &str, t: &model::Target) -> Option<Target> {
        let ok_name = !t.name.is_empty()
            && t.name.len() <= 32
            && t.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok_name {
            self.problem(
                format!("{at}.name"),
                format!("`{}` is not a name of letters, digits, `-` and `_`", t.name),
            );
        }
        let place = match (&t.path, &t.sftp, &t.rest) {
            (Some(p), None, None) => Place::Path(self.absolute(&format!("{at}.path"), p)?),
            (None, Some(s), None) => {
                if s.host.is_empty()
                    || s.host.contains([' ', '@', ':', '/']) && !s.host.starts_with('[')
                {
                    self.problem(
                        format!("{at}.sftp.host"),
                        format!("`{}` is not a host", s.host),
                    );
                }
                if s.user.is_empty() || s.user.contains([' ', '@', ':', '/']) {
                    self.problem(
                        format!("{at}.sftp.user"),
                        format!("`{}` is not a user name", s.user),
                    );
                }
                if !matches!(s.identity, SecretRef::File(_)) {
                    self.problem(
                        format!("{at}.sftp.identity"),
                        "ssh reads its key from a file: `{ file: /path }`",
                    );
                }
                self.absolute(&format!("{at}.sftp.path"), &s.path)?;
                self.absolute(&format!("{at}.sftp.known_hosts"), &s.known_hosts)?;
                Place::Sftp(s.clone())
            }
            (None, None, Some(r)) => {
                let url = r.url.trim_end_matches('/');
                if !(url.starts_with("https://") || url.starts_with("http://"))
                    || url.contains(['@', ' '])
                {
                    self.problem(
                        format!("{at}.rest.url"),
                        format!("`{}` is not an http(s) URL without credentials (give user and password)", r.url),
                    );
                }
                Place::Rest {
                    url: url.to_string(),
                    user: r.user.clone(),
                    password: r.password.clone(),
                }
            }
            _ => {
                self.problem(at, "exactly one of path, sftp or rest");
                return None;
            }
        };
        ok_name.then(|| Target {
            name: t.name.clone(),
            place,
        })
    }

    fn window(&mut self, at: &str, s: &Schedule) -> Option<Window> {
        let before = self.problems.len();
        let start = s
            .start
            .split_once(':')
            .and_then(|(h, m)| Some((h.parse::<u64>().ok()?, m.parse::<u64>().ok()?)))
            .filter(|(h, m)| *h < 24 && *m < 60 && s.start.len() == 5);
        if start.is_none() {
            self.problem(
                format!("{at}.start"),
                format!("`{}` is not a time HH:MM", s.start),
            );
        }
        // 36 s at least, a month at most.
        let least = 0.01;
        if !(least..=744.0).contains(&s.every_h) {
            self.problem(
                format!("{at}.every_h"),
                format!("{} is outside 0.01 (36 s)..=744", s.every_h),
            );
        }
        if !(s.window_h >= least && s.window_h <= s.every_h) {
            self.problem(
                format!("{at}.window_h"),
                format!(
                    "{} must be at least 0.01 (36 s) and at most every_h",
                    s.window_h
                ),
            );
        }
        let (h, m) = start?;
        (self.problems.len() == before).then(|| Window {
            every: Duration::from_secs((s.every_h * 3_600.0).round() as u64),
            start: Duration::from_secs(h * 3_600 + m * 60),
            window: Duration::from_secs((s.window_h * 3_600.0).round() as u64),
        })
    }

    fn retention(&mut self, at: &str, r: &model::Retention) {
        if r.daily + r.weekly + r.monthly == 0 {
            self.problem(at, "keeps nothing: at least one of daily, weekly, monthly");
        }
    }
}

//! Driving the restic binary (Debian's 0.14) for one owner's repository at
//! one target. Secrets never reach a command line: the repository's key is
//! a file, a REST password goes in the environment. restic 0.14 has no
//! distinct exit codes for "no repository" or "wrong key", so its stderr is
//! read for them. Blocking.

use super::BackupError;
use pirack_core::backup::model::Sftp;
use pirack_core::backup::plan::{Place, SiteBackup, Target, repository};
use pirack_core::backup::restic::{self, Line, Snapshot, Status, Summary};
use pirack_core::inventory::model::SecretRef;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One owner's repository at one target.
pub struct Repo {
    pub target: String,
    pub location: String,
    key: PathBuf,
    /// The location with its credentials, for the environment only.
    secret_location: String,
    options: Vec<String>,
    cache: PathBuf,
}

impl Repo {
    pub fn new(
        site: &SiteBackup,
        target: &Target,
        owner: Option<&str>,
        cache: &Path,
    ) -> Result<Repo, BackupError> {
        let r = repository(site, target, owner);
        let mut secret_location = r.location.clone();
        let mut options = Vec::new();
        match &target.place {
            Place::Path(_) => {}
            Place::Sftp(s) => {
                let login = ssh_login(s)
                    .map_err(|e| BackupError::Config(format!("target {}: {e}", target.name)))?;
                options.push("-o".into());
                options.push(format!(
                    "sftp.command=ssh -p {} {} -o ServerAliveInterval=15 -o ServerAliveCountMax=4 {}@{} -s sftp",
                    s.port,
                    login.join(" "),
                    s.user,
                    s.host
                ));
            }
            Place::Rest { user, password, .. } => {
                if let Some(user) = user {
                    let pass = match password {
                        Some(p) => String::from_utf8_lossy(&p.read().map_err(|e| {
                            BackupError::Config(format!("target {}: {e}", target.name))
                        })?)
                        .into_owned(),
                        None => String::new(),
                    };
                    secret_location =
                        secret_location.replacen("://", &format!("://{user}:{pass}@"), 1);
                }
            }
        }
        Ok(Repo {
            target: target.name.clone(),
            location: r.location,
            key: r.key,
            secret_location,
            options,
            cache: cache.to_path_buf(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = crate::roots::command("restic");
        c.args(&self.options)
            .args(args)
            .env("RESTIC_REPOSITORY", &self.secret_location)
            .env("RESTIC_PASSWORD_FILE", &self.key)
            .env("RESTIC_CACHE_DIR", &self.cache)
            .env_remove("RESTIC_PASSWORD")
            .env_remove("RESTIC_PASSWORD_COMMAND")
            .stdin(Stdio::null());
        c
    }

    /// Runs restic to the end; its stdout, or an error with what it said. A
    /// lock left by a restic that died (pirack killed mid-backup) is cleared
    /// with `unlock`, which removes only locks whose process is gone or that
    /// are half an hour old, and the command tried once more.
    fn run(&self, args: &[&str]) -> Result<String, BackupError> {
        let once = || -> Result<String, (bool, BackupError)> {
            let out = self
                .command(args)
                .output()
                .map_err(|e| (false, self.failed(format!("running restic: {e}"))))?;
            if out.status.success() {
                return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            let locked = String::from_utf8_lossy(&out.stderr).contains("already locked");
            Err((locked, self.failed(said(&out.stderr))))
        };
        match once() {
            Ok(out) => Ok(out),
            Err((true, _)) if args.first() != Some(&"unlock") => {
                self.run(&["unlock"])?;
                once().map_err(|(_, e)| e)
            }
            Err((_, e)) => Err(e),
        }
    }

    fn failed(&self, message: String) -> BackupError {
        BackupError::Restic {
            target: self.target.clone(),
            repository: self.location.clone(),
            message,
        }
    }

    /// Opens the repository, making it (and its key) the first time.
    pub fn ensure(&self) -> Result<(), BackupError> {
        let had_key = self.key.exists();
        super::keys::ensure(&self.key).map_err(|e| BackupError::Key {
            path: self.key.clone(),
            message: e.to_string(),
        })?;
        match self.run(&["cat", "config"]) {
            Ok(_) => Ok(()),
            Err(BackupError::Restic { message, .. })
                if !had_key || message.contains("Is there a repository") =>
            {
                if message.contains("wrong password") {
                    return Err(self.wrong_key());
                }
                self.run(&["init"]).map(drop)
            }
            Err(BackupError::Restic { message, .. }) if message.contains("wrong password") => {
                Err(self.wrong_key())
            }
            Err(e) => Err(e),
        }
    }

    fn wrong_key(&self) -> BackupError {
        self.failed(format!(
            "the key {} does not open this repository (wrong or replaced key)",
            self.key.display()
        ))
    }

    /// Backs `dir` up as snapshot of `host`, reporting progress; its summary.
    /// The repository is made (with its key) the first time: tried first,
    /// so a backup costs no extra round trip to the target.
    pub fn backup(
        &self,
        dir: &Path,
        host: &str,
        tags: &[String],
        progress: &mut dyn FnMut(&Status),
    ) -> Result<Summary, BackupError> {
        if self.key.exists() {
            match self.backup_once(dir, host, tags, progress) {
                Err(BackupError::Restic { message, .. }) if message.contains("wrong password") => {
                    return Err(self.wrong_key());
                }
                Err(BackupError::Restic { message, .. })
                    if message.contains("Is there a repository") => {}
                done => return done,
            }
        }
        self.ensure()?;
        self.backup_once(dir, host, tags, progress)
    }

    fn backup_once(
        &self,
        dir: &Path,
        host: &str,
        tags: &[String],
        progress: &mut dyn FnMut(&Status),
    ) -> Result<Summary, BackupError> {
        let dir_arg = dir.to_string_lossy();
        let mut args = vec!["backup", "--json", "--host", host, "--one-file-system"];
        for t in tags {
            args.push("--tag");
            args.push(t);
        }
        args.push(&dir_arg);
        let mut child = self
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.failed(format!("running restic: {e}")))?;
        let stderr = child.stderr.take().expect("piped");
        let errors = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut BufReader::new(stderr), &mut buf);
            buf
        });
        let mut summary = None;
        let mut unreadable = Vec::new();
        for l in BufReader::new(child.stdout.take().expect("piped")).lines() {
            let Ok(l) = l else { break };
            match restic::line(&l) {
                Line::Status(s) => progress(&s),
                Line::Summary(s) => summary = Some(s),
                Line::Error { item, message } => unreadable.push(format!("{item}: {message}")),
                Line::Other => {}
            }
        }
        let status = child
            .wait()
            .map_err(|e| self.failed(format!("waiting for restic: {e}")))?;
        let stderr = errors.join().unwrap_or_default();
        match (status.code(), summary) {
            (Some(0), Some(s)) => Ok(s),
            // 3: a snapshot was made, but some files could not be read.
            (Some(3), Some(_)) => Err(self.failed(format!(
                "some files could not be read: {}",
                unreadable.join("; ")
            ))),
            _ => Err(self.failed(said(&stderr))),
        }
    }

    /// The snapshots of `host` (every one with `None`), oldest first.
    pub fn snapshots(&self, host: Option<&str>) -> Result<Vec<Snapshot>, BackupError> {
        let mut args = vec!["snapshots", "--json"];
        if let Some(h) = host {
            args.extend(["--host", h]);
        }
        let out = self.run(&args)?;
        restic::snapshots(&out).map_err(|e| self.failed(format!("unreadable snapshot list: {e}")))
    }

    /// Restores snapshot `id` under `into` (its paths as they were backed
    /// up), telling `progress` the share written: restic 0.14 reports no
    /// progress of a restore, so the bytes under `into` are weighed against
    /// the snapshot's size every half second.
    pub fn restore(
        &self,
        id: &str,
        into: &Path,
        progress: &(dyn Fn(f64) + Sync),
    ) -> Result<(), BackupError> {
        let total = self
            .run(&["stats", "--json", "--mode", "restore-size", id])
            .ok()
            .and_then(|out| restic::stats(&out).ok())
            .unwrap_or(0);
        let into_arg = into.to_string_lossy();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut ticks = 0u32;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if total > 0 && ticks.is_multiple_of(5) {
                        progress((tree_bytes(into) as f64 / total as f64).min(1.0));
                    }
                    ticks += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            });
            let r = self.run(&["restore", id, "--target", &into_arg]).map(drop);
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            r
        })
    }

    /// `restic forget` with `keep` for `host`, then prune.
    pub fn forget(&self, host: &str, keep: &[String]) -> Result<(), BackupError> {
        let mut args = vec!["forget", "--host", host];
        args.extend(keep.iter().map(String::as_str));
        self.run(&args).map(drop)
    }

    /// The bytes the repository's data takes (`stats --mode raw-data`).
    pub fn size(&self) -> Result<u64, BackupError> {
        let out = self.run(&["stats", "--json", "--mode", "raw-data"])?;
        restic::stats(&out).map_err(|e| self.failed(format!("unreadable stats: {e}")))
    }

    /// `restic prune`: the data no snapshot uses removed.
    pub fn prune(&self) -> Result<(), BackupError> {
        self.run(&["prune"]).map(drop)
    }

    /// `restic check`, reading `subset` of the data (`n/N`).
    pub fn check(&self, subset: &str) -> Result<(), BackupError> {
        let arg = format!("--read-data-subset={subset}");
        self.run(&["check", &arg]).map(drop)
    }
}

/// How pirack logs in to an SFTP target, for `ssh` and `sftp` alike: its
/// key only, the pinned host key (never trusted on first use), no prompt,
/// and a bounded wait.
pub(super) fn ssh_login(s: &Sftp) -> Result<Vec<String>, &'static str> {
    let SecretRef::File(identity) = &s.identity else {
        return Err("the SFTP identity must be a file");
    };
    Ok([
        "-i",
        identity,
        "-o",
        &format!("UserKnownHostsFile={}", s.known_hosts),
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ConnectTimeout=15",
    ]
    .map(String::from)
    .to_vec())
}

/// The bytes of the regular files under `dir` (what cannot be read counts
/// nothing).
fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// What restic said on stderr, its last lines, printable.
fn said(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" / ");
    pirack_core::text::printable(if tail.is_empty() {
        "restic failed without a word"
    } else {
        &tail
    })
}

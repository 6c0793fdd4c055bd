//! Each slot's virtual boot tree: `bootcode.bin` at the root, and under the board's
//! serial directory the slot's boot files with `cmdline.txt` and `config.txt`
//! generated from the plan. A Pi is only ever served its own tree.

use crate::boards::{Boards, Verdict};
use pirack_core::inventory::{Serial, Site};
use pirack_core::plan::SlotPlan;
use pirack_core::plan::render::slot as rendered;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Why a request gets an error instead of a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("file not found")]
    NotFound,
    #[error("illegal file name: {0}")]
    BadName(&'static str),
    #[error("serial {serial} belongs to slot {owner}")]
    OtherSlot { serial: String, owner: String },
    #[error("board {0} is not this slot's and the site policy holds it")]
    Held(String),
    #[error("{0} is not a slot's Pi address")]
    UnknownClient(std::net::IpAddr),
}

/// Where a file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Generated for the slot (cmdline.txt, config.txt).
    Generated(Arc<[u8]>),
    /// A file of the slot's boot files.
    File(PathBuf),
}

/// Checks a requested name and splits it into components.
pub fn components(name: &str) -> Result<Vec<&str>, Refusal> {
    if name.is_empty() {
        return Err(Refusal::BadName("empty"));
    }
    if name.len() > super::wire::MAX_NAME {
        return Err(Refusal::BadName("too long"));
    }
    if name.starts_with('/') {
        return Err(Refusal::BadName("absolute path"));
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err(Refusal::BadName("control character or backslash"));
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(Refusal::BadName("empty, `.` or `..` component"));
    }
    Ok(parts)
}

/// One slot's tree.
#[derive(Debug)]
pub struct SlotTree {
    pub slot: SlotPlan,
    boot_dir: PathBuf,
    cmdline: Arc<[u8]>,
    config: Arc<[u8]>,
}

impl SlotTree {
    pub fn new(site: &Site, slot: &SlotPlan, boot_dir: &Path) -> SlotTree {
        SlotTree {
            slot: slot.clone(),
            boot_dir: boot_dir.to_path_buf(),
            cmdline: rendered::cmdline(site, slot).into_bytes().into(),
            config: rendered::config_txt(site, slot).into_bytes().into(),
        }
    }

    /// The directory the slot's boot files come from.
    pub fn boot_dir(&self) -> &Path {
        &self.boot_dir
    }

    /// Maps a request onto a source, checking the board through `boards`.
    pub fn resolve(&self, name: &str, boards: &Boards) -> Result<Source, Refusal> {
        let parts = components(name)?;
        let (first, rest) = parts.split_first().expect("at least one component");
        if rest.is_empty() {
            // Only bootcode.bin lives at the root; bootsig.bin is the ROM's probe
            // and is meant to fail.
            return match *first {
                "bootcode.bin" => Ok(Source::File(self.boot_dir.join(first))),
                _ => Err(Refusal::NotFound),
            };
        }
        let serial: Serial = first.parse().map_err(|_| Refusal::NotFound)?;
        match boards.check_serial(&self.slot.position, serial) {
            Verdict::Own | Verdict::Adopted => {}
            Verdict::Held => return Err(Refusal::Held(serial.to_string())),
            Verdict::OtherSlot(owner) => {
                return Err(Refusal::OtherSlot {
                    serial: serial.to_string(),
                    owner,
                });
            }
        }
        match rest {
            ["cmdline.txt"] => Ok(Source::Generated(self.cmdline.clone())),
            ["config.txt"] => Ok(Source::Generated(self.config.clone())),
            ["bootsig.bin"] => Err(Refusal::NotFound),
            _ => Ok(Source::File(
                rest.iter().fold(self.boot_dir.clone(), |p, c| p.join(c)),
            )),
        }
    }
}

/// Boot file contents, read once and shared by every transfer until the file
/// changes: a boot storm reads each file from disk once, not once per Pi.
#[derive(Debug, Default)]
pub struct FileCache {
    files: Mutex<HashMap<PathBuf, Cached>>,
}

/// A file's bytes and the modification time they were read at.
type Cached = (SystemTime, Arc<[u8]>);

impl FileCache {
    /// The file's bytes; only regular files are served (a symlink is followed
    /// only if it stays inside `root`).
    pub async fn get(&self, path: &Path, root: &Path) -> Result<Arc<[u8]>, Refusal> {
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|_| Refusal::NotFound)?;
        if !meta.is_file() {
            return Err(Refusal::NotFound);
        }
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if let Some((t, bytes)) = self.files.lock().expect("cache lock").get(path)
            && *t == mtime
            && bytes.len() as u64 == meta.len()
        {
            return Ok(bytes.clone());
        }
        let real = tokio::fs::canonicalize(path)
            .await
            .map_err(|_| Refusal::NotFound)?;
        let real_root = tokio::fs::canonicalize(root)
            .await
            .map_err(|_| Refusal::NotFound)?;
        if !real.starts_with(&real_root) {
            return Err(Refusal::BadName("links outside the boot files"));
        }
        let bytes: Arc<[u8]> = tokio::fs::read(&real)
            .await
            .map_err(|_| Refusal::NotFound)?
            .into();
        self.files
            .lock()
            .expect("cache lock")
            .insert(path.to_path_buf(), (mtime, bytes.clone()));
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(
            components("7285c0f2/start.elf").unwrap(),
            ["7285c0f2", "start.elf"]
        );
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            "a//b",
            "./a",
            "a\\b",
            "a\u{1}b",
            &"x".repeat(256),
        ] {
            assert!(components(bad).is_err(), "{bad:?}");
        }
    }
}

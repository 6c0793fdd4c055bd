//! A still image of a slot's root to back up while its Pi runs: a read-only
//! btrfs snapshot where the root is a subvolume, a reflink copy where the
//! filesystem shares extents, else the live tree itself (files changing
//! during the backup may then be caught half-written; the README says so).
//! Each is taken at a fixed path per slot, so restic finds the previous
//! backup of the same path and reads only what changed. Blocking.

use crate::roots::clone::{self, CloneError, Method};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Taken {
    Btrfs,
    Reflink,
    Live,
}

impl Taken {
    pub fn name(self) -> &'static str {
        match self {
            Taken::Btrfs => "read-only btrfs snapshot",
            Taken::Reflink => "reflink copy",
            Taken::Live => "live read",
        }
    }
}

/// The image, removed when dropped (the live tree is left alone).
pub struct Still {
    pub path: PathBuf,
    pub taken: Taken,
}

impl Drop for Still {
    fn drop(&mut self) {
        if self.taken != Taken::Live
            && let Err(e) = clone::remove_tree(&self.path)
        {
            tracing::warn!("backup: removing {}: {e}", self.path.display());
        }
    }
}

/// Takes a still image of `root` at `at` (replacing what a killed run left there).
pub fn take(root: &Path, at: &Path) -> Result<Still, CloneError> {
    clone::remove_tree(at)?;
    if let Some(dir) = at.parent() {
        std::fs::create_dir_all(dir).map_err(|source| CloneError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    if clone::is_subvolume(root) {
        let read_only = clone::run(
            crate::roots::command("btrfs")
                .args(["-q", "subvolume", "snapshot", "-r"])
                .arg(root)
                .arg(at),
        );
        match read_only {
            Ok(()) => {
                return Ok(Still {
                    path: at.to_path_buf(),
                    taken: Taken::Btrfs,
                });
            }
            Err(e) => tracing::warn!("backup: no snapshot of {}: {e}", root.display()),
        }
    }
    let parent = at.parent().unwrap_or(Path::new("/"));
    if clone::reflink_works(root, parent) {
        clone::clone_tree(root, at, Method::Reflink)?;
        return Ok(Still {
            path: at.to_path_buf(),
            taken: Taken::Reflink,
        });
    }
    Ok(Still {
        path: root.to_path_buf(),
        taken: Taken::Live,
    })
}

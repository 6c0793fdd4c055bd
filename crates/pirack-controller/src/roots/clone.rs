//! Copy-on-write copies of a root tree: a btrfs snapshot when the source is a
//! subvolume, a reflink copy (FICLONE) on btrfs or XFS, a full copy as the last
//! resort. The best method the filesystem offers is found by trying it, not by name.
//!
//! Every function here blocks (file system work and `btrfs`/`cp` processes): call
//! them from a blocking thread.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// statfs(2) magic of btrfs.
const BTRFS_MAGIC: i64 = 0x9123_683e;
/// The inode number of every btrfs subvolume's root directory.
const BTRFS_SUBVOLUME_INO: u64 = 256;
/// ioctl FICLONE: share all of one file's extents with another.
const FICLONE: libc::c_ulong = 0x4004_9409;

/// How a tree was copied.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// `btrfs subvolume snapshot`: constant time, no data written.
    Snapshot,
    /// Every file FICLONEd: metadata written, data shared.
    Reflink,
    /// Every byte written again.
    Copy,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Snapshot => "btrfs snapshot",
            Method::Reflink => "reflink copy",
            Method::Copy => "full copy",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CloneError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    #[error("{method} is not possible from {} into {}", from.display(), into.display())]
    Unsupported {
        method: Method,
        from: PathBuf,
        into: PathBuf,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CloneError + '_ {
    move |source| CloneError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn run(cmd: &mut Command) -> Result<(), CloneError> {
    let out = cmd.output().map_err(|e| CloneError::Command {
        command: format!("{cmd:?}"),
        status: "not started".into(),
        stderr: e.to_string(),
    })?;
    match out.status.success() {
        true => Ok(()),
        false => Err(CloneError::Command {
            command: format!("{cmd:?}"),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
    }
}

fn fs_type(path: &Path) -> io::Result<i64> {
    let s = nix::sys::statfs::statfs(path).map_err(io::Error::from)?;
    Ok(s.filesystem_type().0 as i64)
}

/// Whether `path` is the top of a btrfs subvolume (and so can be snapshotted).
pub fn is_subvolume(path: &Path) -> bool {
    fs_type(path).is_ok_and(|t| t == BTRFS_MAGIC)
        && std::fs::metadata(path).is_ok_and(|m| m.ino() == BTRFS_SUBVOLUME_INO)
}

/// Whether a file of `src` can share its extents with a new file in `into`:
/// FICLONE tried for real (it fails across filesystems and where unsupported).
pub fn reflink_works(src: &Path, into: &Path) -> bool {
    let Some(sample) = first_file(src) else {
        return false;
    };
    let probe = into.join(format!(".pirack-reflink-probe-{}", std::process::id()));
    let works = (|| -> io::Result<bool> {
        let from = File::open(&sample)?;
        let to = File::create(&probe)?;
        // SAFETY: FICLONE takes the source descriptor as its argument.
        Ok(unsafe { libc::ioctl(to.as_raw_fd(), FICLONE, from.as_raw_fd()) } == 0)
    })()
    .unwrap_or(false);
    let _ = std::fs::remove_file(&probe);
    works
}

/// Some regular file under `dir`, looked for breadth first.
fn first_file(dir: &Path) -> Option<PathBuf> {
    let mut queue = std::collections::VecDeque::from([dir.to_path_buf()]);
    while let Some(d) = queue.pop_front() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            match e.file_type() {
                Ok(t) if t.is_file() => return Some(e.path()),
                Ok(t) if t.is_dir() => queue.push_back(e.path()),
                _ => {}
            }
        }
    }
    None
}

/// The cheapest method that can copy `src` into a new directory under `into`.
pub fn best_method(src: &Path, into: &Path) -> Method {
    // Sharing extents shows both are on one filesystem that can share them.
    let shared = reflink_works(src, into);
    if shared && is_subvolume(src) && fs_type(into).is_ok_and(|t| t == BTRFS_MAGIC) {
        Method::Snapshot
    } else if shared {
        Method::Reflink
    } else {
        Method::Copy
    }
}

/// Copies the tree `src` to `dst`, which must not exist, keeping owners, modes,
/// times, links, special files and extended attributes. `dst` appears complete or
/// not at all: the copy is built beside it and renamed into place.
pub fn clone_tree(src: &Path, dst: &Path, method: Method) -> Result<(), CloneError> {
    if dst.exists() {
        return Err(CloneError::Exists(dst.to_path_buf()));
    }
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dst.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    remove_tree(&tmp)?;
    let built = match method {
        Method::Snapshot => {
            if !is_subvolume(src) {
                return Err(CloneError::Unsupported {
                    method,
                    from: src.to_path_buf(),
                    into: dst.to_path_buf(),
                });
            }
            run(super::command("btrfs")
                .args(["-q", "subvolume", "snapshot"])
                .arg(src)
                .arg(&tmp))
        }
        Method::Reflink | Method::Copy => {
            let reflink = if method == Method::Reflink {
                "--reflink=always"
            } else {
                "--reflink=never"
            };
            // -a keeps owners, modes, times, hard and symbolic links, devices and
            // xattrs (file capabilities included); -T copies src's contents as tmp.
            run(super::command("cp")
                .args(["-a", "-T", reflink])
                .arg(src)
                .arg(&tmp))
        }
    };
    if let Err(e) = built.and_then(|()| std::fs::rename(&tmp, dst).map_err(io_err(dst))) {
        let _ = remove_tree(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Removes a tree made by [`clone_tree`]: a subvolume is deleted as one, anything
/// else recursively. A missing tree is not an error.
///
/// Deleting a subvolume whole takes CAP_SYS_ADMIN or a filesystem mounted with
/// `user_subvol_rm_allowed`; without either (the packaged service has neither by
/// default) it is emptied file by file and its last `rmdir` removes it, which
/// Linux allows the owner-or-capable since 4.18.
pub fn remove_tree(path: &Path) -> Result<(), CloneError> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    if is_subvolume(path) {
        let whole = run(super::command("btrfs")
            .args(["-q", "subvolume", "delete"])
            .arg(path));
        if whole.is_ok() {
            return whole;
        }
        let _ = super::command("btrfs")
            .args(["-q", "property", "set", "-ts"])
            .arg(path)
            .args(["ro", "false"])
            .output();
    }
    std::fs::remove_dir_all(path).map_err(io_err(path))
}

//! A filesystem on a loop device (btrfs, XFS, ext4), for roots on the filesystem
//! kinds a fileserver has: made in `<dir>/fs.img`, mounted on `<dir>/mnt`, and
//! unmounted, detached and removed on drop.

use super::{Result, io_err, run};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct LoopFs {
    dir: PathBuf,
    device: String,
}

impl LoopFs {
    /// A `size`-byte filesystem made by `mkfs` (program and arguments; the device
    /// is appended), mounted under `dir`.
    pub fn new(dir: &Path, size: u64, mkfs: &[&str]) -> Result<LoopFs> {
        let mnt = dir.join("mnt");
        // Left mounted by an interrupted run?
        let _ = Command::new("umount")
            .arg(&mnt)
            .stderr(Stdio::null())
            .status();
        std::fs::create_dir_all(&mnt).map_err(io_err(format!("making {}", mnt.display())))?;
        let image = dir.join("fs.img");
        let _ = std::fs::remove_file(&image);
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(size))
            .map_err(io_err(format!("making {}", image.display())))?;
        let device = run(
            "losetup",
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(&image),
        )?
        .trim()
        .to_string();
        let fs = LoopFs {
            dir: dir.to_path_buf(),
            device,
        };
        run(
            &format!("{mkfs:?}"),
            Command::new(mkfs[0]).args(&mkfs[1..]).arg(&fs.device),
        )?;
        run(
            &format!("mount {}", fs.device),
            Command::new("mount").arg(&fs.device).arg(&mnt),
        )?;
        Ok(fs)
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("mnt")
    }

    /// Bytes in use, after everything written has reached the disk.
    pub fn used(&self) -> u64 {
        let _ = Command::new("sync").arg("-f").arg(self.path()).status();
        nix::sys::statvfs::statvfs(&self.path())
            .map_or(0, |s| (s.blocks() - s.blocks_free()) * s.fragment_size())
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.path()).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
        let _ = std::fs::remove_file(self.dir.join("fs.img"));
    }
}

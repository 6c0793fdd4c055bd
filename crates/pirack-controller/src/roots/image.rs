//! Images: an imported root tree and Pi 3 boot files with a manifest, kept in a
//! store on the fileserver and never changed after import. Roots are made from them.
//!
//! Store layout: `<store>/<name>-<version>/{manifest.yaml, boot/, root/}`; on btrfs
//! `root/` is a read-only subvolume, so each Pi's root can be a snapshot of it. An
//! import is built under a `.partial` name and renamed when complete, so a crash
//! never leaves an image that looks whole.
//!
//! Blocking (files, `tar`, `cp`, `btrfs`): call from a blocking thread.

use super::clone::{self, CloneError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What an image is and how to boot it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Where the root and the boot files were imported from.
    pub source: Sources,
    /// The image's part of the kernel command line (consoles and the like); pirack
    /// adds the root and network arguments per slot.
    pub cmdline: String,
    /// The kernel file, as config.txt's `kernel=` names it.
    pub kernel: String,
    /// The initramfs among the boot files, as config.txt's `initramfs` names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initramfs: Option<String>,
    /// The Pi 3 device trees among the boot files.
    pub device_trees: Vec<String>,
    /// sha256 of every boot file, and one over the whole root tree.
    pub checksums: Checksums,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    pub root: String,
    pub boot: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checksums {
    pub boot: BTreeMap<String, String>,
    /// Over every entry's path, type, mode, owner, size and content (or link target).
    pub root: String,
}

impl Manifest {
    /// The image's directory name in the store.
    pub fn id(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("not a Pi 3 boot directory, {}: missing {}", dir.display(), missing.join(", "))]
    BootFiles { dir: PathBuf, missing: Vec<String> },
    #[error("image {0} is already in the store")]
    Exists(String),
    #[error("no image {0} in the store")]
    Unknown(String),
    #[error("image {id} is in use by slot(s) {slots}")]
    InUse { id: String, slots: String },
    #[error("`{0}` is not a name or version: use letters, digits, `.`, `_`, `+`, `-`")]
    BadName(String),
    #[error("unpacking {}: {detail}", path.display())]
    Unpack { path: PathBuf, detail: String },
    #[error("{}: {detail}", path.display())]
    Manifest { path: PathBuf, detail: String },
    #[error(transparent)]
    Clone(#[from] CloneError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What to import.
#[derive(Debug, Clone)]
pub struct Import {
    pub name: String,
    pub version: String,
    /// A root directory, or a tarball `tar` can read.
    pub root: PathBuf,
    pub boot: PathBuf,
    pub cmdline: String,
}

/// Device trees a Pi 3 (B or B+) boots with: the Raspberry Pi kernel's and mainline's names.
const PI3_DTBS: &[&str] = &[
    "bcm2710-rpi-3-b.dtb",
    "bcm2710-rpi-3-b-plus.dtb",
    "bcm2837-rpi-3-b.dtb",
    "bcm2837-rpi-3-b-plus.dtb",
];
const KERNELS: &[&str] = &["kernel8.img", "kernel7.img", "vmlinuz", "Image"];
const INITRAMFS: &[&str] = &["initramfs8", "initramfs7", "initrd.img", "initramfs.img"];

/// What a boot directory boots: found by [`check_boot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    pub kernel: String,
    pub initramfs: Option<String>,
    pub device_trees: Vec<String>,
}

/// Checks a boot directory has what a Pi 3 needs; names the kernel, the
/// initramfs if there is one, and the device trees.
pub fn check_boot(dir: &Path) -> Result<BootFiles, ImageError> {
    let files = list_files(dir)?;
    let has = |f: &str| files.iter().any(|(p, _)| p == f);
    let top = |prefix: &str| {
        files
            .iter()
            .map(|(p, _)| p)
            .find(|p| !p.contains('/') && p.starts_with(prefix))
            .cloned()
    };
    let mut missing: Vec<String> = ["bootcode.bin", "start.elf", "fixup.dat"]
        .iter()
        .filter(|f| !has(f))
        .map(|f| f.to_string())
        .collect();
    let kernel = KERNELS
        .iter()
        .find(|k| has(k))
        .map(|k| k.to_string())
        .or_else(|| top("vmlinuz-"));
    let initramfs = INITRAMFS
        .iter()
        .find(|k| has(k))
        .map(|k| k.to_string())
        .or_else(|| top("initrd.img-"))
        .or_else(|| top("initramfs-"));
    if kernel.is_none() {
        missing.push(format!("a kernel ({} or vmlinuz-*)", KERNELS.join(", ")));
    }
    let dtbs: Vec<String> = files
        .iter()
        .map(|(p, _)| p)
        .filter(|p| PI3_DTBS.iter().any(|d| p.rsplit('/').next() == Some(d)))
        .cloned()
        .collect();
    if dtbs.is_empty() {
        missing.push(format!("a Pi 3 device tree ({})", PI3_DTBS.join(", ")));
    }
    match missing.is_empty() {
        true => Ok(BootFiles {
            kernel: kernel.expect("checked"),
            initramfs,
            device_trees: dtbs,
        }),
        false => Err(ImageError::BootFiles {
            dir: dir.to_path_buf(),
            missing,
        }),
    }
}

/// Regular files under `dir` (links to files followed) as (relative path, size),
/// sorted.
fn list_files(dir: &Path) -> Result<Vec<(String, u64)>, ImageError> {
    let mut out = Vec::new();
    for rel in crate::walk::files(dir).map_err(|e| io_err(&e.path)(e.source))? {
        let path = dir.join(&rel);
        let m = std::fs::metadata(&path).map_err(io_err(&path))?;
        if m.is_file() {
            out.push((rel, m.len()));
        }
    }
    Ok(out)
}

fn sha256_file(path: &Path, progress: &dyn Fn(u64)) -> Result<String, ImageError> {
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        progress(n as u64);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One digest over a whole tree: every entry's path, type, mode, owner, size and
/// content (or link target), in path order; `progress` hears of bytes hashed.
pub fn tree_digest(root: &Path, progress: &dyn Fn(u64)) -> Result<String, ImageError> {
    let mut h = Sha256::new();
    for rel in entries(root)? {
        let path = root.join(&rel);
        let m = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let content = if m.file_type().is_symlink() {
            std::fs::read_link(&path)
                .map_err(io_err(&path))?
                .to_string_lossy()
                .into_owned()
        } else if m.is_file() {
            sha256_file(&path, progress)?
        } else {
            String::new()
        };
        let line = format!(
            "{}\0{:o}\0{}:{}\0{}\0{content}\n",
            rel.display(),
            m.mode(),
            m.uid(),
            m.gid(),
            if m.is_file() { m.len() } else { 0 }
        );
        h.update(line.as_bytes());
    }
    Ok(hex(&h.finalize()))
}

fn check_name(s: &str) -> Result<(), ImageError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    match ok {
        true => Ok(()),
        false => Err(ImageError::BadName(s.to_string())),
    }
}

/// Imports an image into `store`; `progress(done, total)` follows the checksum
/// pass over the root (the long part for a large root).
pub fn import(
    store: &Path,
    what: &Import,
    progress: &dyn Fn(u64, u64),
) -> Result<Manifest, ImageError> {
    check_name(&what.name)?;
    check_name(&what.version)?;
    let files = check_boot(&what.boot)?;
    let id = format!("{}-{}", what.name, what.version);
    let final_dir = store.join(&id);
    if final_dir.exists() {
        return Err(ImageError::Exists(id));
    }
    std::fs::create_dir_all(store).map_err(io_err(store))?;
    clear_partials(store, &id);
    let partial = store.join(format!(".{id}.partial-{}", std::process::id()));
    let result = build(&partial, what, files, progress);
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = remove_partial(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &final_dir).map_err(io_err(&final_dir))?;
    Ok(manifest)
}

fn build(
    dir: &Path,
    what: &Import,
    files: BootFiles,
    progress: &dyn Fn(u64, u64),
) -> Result<Manifest, ImageError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    clone::clone_tree(
        &what.boot,
        &dir.join("boot"),
        clone::best_method(&what.boot, dir),
    )?;
    let root = dir.join("root");
    // On btrfs the root is its own subvolume, so slots' roots can be snapshots.
    let subvolume = super::command("btrfs")
        .args(["-q", "subvolume", "create"])
        .arg(&root)
        .output();
    if !subvolume.is_ok_and(|o| o.status.success()) {
        std::fs::create_dir(&root).map_err(io_err(&root))?;
    }
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))
        .map_err(io_err(&root))?;
    // The Pi's `/` is root's, whoever imports (an archive without `./` leaves it be).
    std::os::unix::fs::lchown(&root, Some(0), Some(0)).map_err(io_err(&root))?;
    let unpack = |cmd: &mut Command| -> Result<(), ImageError> {
        let out = cmd.output().map_err(io_err(&what.root))?;
        match out.status.success() {
            true => Ok(()),
            false => Err(ImageError::Unpack {
                path: what.root.clone(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            }),
        }
    };
    if what.root.is_dir() {
        let mut src = what.root.clone().into_os_string();
        src.push("/.");
        unpack(
            super::command("cp")
                .args(["-a", "--reflink=auto"])
                .arg(src)
                .arg(&root),
        )?;
    } else {
        // Owners kept even when pirack is not uid 0 (tar's default there is
        // to give every file to the user who unpacks).
        unpack(
            super::command("tar")
                .args([
                    "-x",
                    "-p",
                    "--same-owner",
                    "--numeric-owner",
                    "--xattrs",
                    "-f",
                ])
                .arg(&what.root)
                .arg("-C")
                .arg(&root),
        )?;
    }

    let mut boot = BTreeMap::new();
    for (rel, _) in list_files(&dir.join("boot"))? {
        boot.insert(
            rel.clone(),
            sha256_file(&dir.join("boot").join(&rel), &|_| {})?,
        );
    }
    let total: u64 = root_size(&root)?;
    let done = std::cell::Cell::new(0u64);
    let digest = tree_digest(&root, &|n| {
        done.set(done.get() + n);
        progress(done.get(), total);
    })?;
    let manifest = Manifest {
        name: what.name.clone(),
        version: what.version.clone(),
        architecture: "arm64".into(),
        source: Sources {
            root: what.root.display().to_string(),
            boot: what.boot.display().to_string(),
        },
        cmdline: what.cmdline.clone(),
        kernel: files.kernel,
        initramfs: files.initramfs,
        device_trees: files.device_trees,
        checksums: Checksums { boot, root: digest },
    };
    let path = dir.join("manifest.yaml");
    let text = serde_yaml::to_string(&manifest).expect("manifest serialises");
    std::fs::write(&path, text).map_err(io_err(&path))?;
    // Immutable from here: a read-only subvolume where the filesystem has them.
    let _ = super::command("btrfs")
        .args(["-q", "property", "set", "-ts"])
        .arg(&root)
        .args(["ro", "true"])
        .output();
    Ok(manifest)
}

/// Every entry under `root` (directories too), relative and sorted; names are kept
/// as bytes, whatever their encoding.
fn entries(root: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let mut entries = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for e in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            let rel = rel.join(e.file_name());
            if e.file_type().map_err(io_err(&e.path()))?.is_dir() {
                stack.push(rel.clone());
            }
            entries.push(rel);
        }
    }
    entries.sort();
    Ok(entries)
}

/// Bytes in the root's regular files. Links are not followed: an absolute link in
/// a root (`/etc/alternatives/editor -> /bin/nano`) names the Pi's file, not ours.
fn root_size(root: &Path) -> Result<u64, ImageError> {
    let mut total = 0;
    for rel in entries(root)? {
        let path = root.join(&rel);
        let m = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        if m.is_file() {
            total += m.len();
        }
    }
    Ok(total)
}

/// Half-made imports of `id` left by crashes: removed where possible (never
/// listed either way, and never in the way of a new import, which has its own).
fn clear_partials(store: &Path, id: &str) {
    let prefix = format!(".{id}.partial");
    let Ok(entries) = std::fs::read_dir(store) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix)
            && let Err(err) = remove_partial(&e.path())
        {
            tracing::warn!("leftover import {}: {err}", e.path().display());
        }
    }
}

/// Removes one half-made (or doomed) image directory.
fn remove_partial(dir: &Path) -> Result<(), ImageError> {
    let root = dir.join("root");
    if clone::is_subvolume(&root) {
        let _ = super::command("btrfs")
            .args(["-q", "property", "set", "-ts"])
            .arg(&root)
            .args(["ro", "false"])
            .output();
    }
    clone::remove_tree(&root)?;
    clone::remove_tree(dir)?;
    Ok(())
}

/// Every complete image in the store, by id.
pub fn list(store: &Path) -> Result<Vec<Manifest>, ImageError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(store) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(store)(e)),
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with('.')
            && e.path().join("manifest.yaml").is_file()
        {
            out.push(load(&e.path())?);
        }
    }
    out.sort_by_key(Manifest::id);
    Ok(out)
}

fn load(dir: &Path) -> Result<Manifest, ImageError> {
    let path = dir.join("manifest.yaml");
    let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
    serde_yaml::from_str(&text).map_err(|e| ImageError::Manifest {
        path,
        detail: e.to_string(),
    })
}

/// One image by id (`name-version`).
pub fn show(store: &Path, id: &str) -> Result<Manifest, ImageError> {
    check_name(id)?;
    let dir = store.join(id);
    if !dir.join("manifest.yaml").is_file() {
        return Err(ImageError::Unknown(id.to_string()));
    }
    load(&dir)
}

/// Checks an image against its manifest's checksums; returns the files that differ.
pub fn verify(store: &Path, id: &str) -> Result<Vec<String>, ImageError> {
    let m = show(store, id)?;
    let dir = store.join(id);
    let mut bad = Vec::new();
    for (rel, want) in &m.checksums.boot {
        let path = dir.join("boot").join(rel);
        if !path.is_file() || &sha256_file(&path, &|_| {})? != want {
            bad.push(format!("boot/{rel}"));
        }
    }
    if tree_digest(&dir.join("root"), &|_| {})? != m.checksums.root {
        bad.push("root/".into());
    }
    Ok(bad)
}

/// Removes an image no slot's root (current or kept) comes from.
pub fn remove(store: &Path, id: &str, users: &[String]) -> Result<(), ImageError> {
    show(store, id)?;
    if !users.is_empty() {
        return Err(ImageError::InUse {
            id: id.to_string(),
            slots: users.join(", "),
        });
    }
    let dir = store.join(id);
    // Renamed away first, so a crash half-way leaves no image that looks whole.
    let doomed = store.join(format!(".{id}.partial-{}", std::process::id()));
    std::fs::rename(&dir, &doomed).map_err(io_err(&dir))?;
    remove_partial(&doomed)
}

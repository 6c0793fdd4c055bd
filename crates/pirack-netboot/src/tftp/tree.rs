//! Each slot's virtual boot tree: `bootcode.bin` at the root, and under the board's
//! serial directory the boot files of the slot's image with `cmdline.txt` and
//! `config.txt` generated for it. A Pi is only ever served its own tree.

use crate::boards::{Boards, Verdict};
use crate::boots::Boots;
use pirack_core::inventory::Serial;
use pirack_core::plan::SlotPlan;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Why a request gets an error instead of a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("file not found")]
    NotFound,
    #[error("file not found: the slot has no root built, so nothing to boot")]
    NothingToBoot,
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

/// A request mapped onto what a slot's Pi gets: `bootcode.bin` at the root for any
/// slot; under the board's serial directory the slot's boot (`boots`: its
/// image's files and its generated cmdline.txt and config.txt), once `boards`
/// says the serial is the slot's.
pub fn resolve(
    slot: &SlotPlan,
    name: &str,
    boards: &Boards,
    boots: &Boots,
) -> Result<(Source, PathBuf), Refusal> {
    let parts = components(name)?;
    let (first, rest) = parts.split_first().expect("at least one component");
    if rest.is_empty() {
        // Only bootcode.bin lives at the root; bootsig.bin is the ROM's probe
        // and is meant to fail.
        return match (*first, boots.bootcode()) {
            ("bootcode.bin", Some(path)) => {
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                Ok((Source::File(path), dir))
            }
            _ => Err(Refusal::NotFound),
        };
    }
    let serial: Serial = first.parse().map_err(|_| Refusal::NotFound)?;
    match boards.check_serial(&slot.position, serial) {
        Verdict::Own | Verdict::Adopted => {}
        Verdict::Held => return Err(Refusal::Held(serial.to_string())),
        Verdict::OtherSlot(owner) => {
            return Err(Refusal::OtherSlot {
                serial: serial.to_string(),
                owner,
            });
        }
    }
    let boot = boots.get(&slot.position).ok_or(Refusal::NothingToBoot)?;
    let source = match rest {
        ["cmdline.txt"] => Source::Generated(boot.cmdline.clone()),
        ["config.txt"] => Source::Generated(boot.config.clone()),
        ["bootsig.bin"] => return Err(Refusal::NotFound),
        _ => Source::File(rest.iter().fold(boot.dir.clone(), |p, c| p.join(c))),
    };
    Ok((source, boot.dir.clone()))
}

/// Boot file contents, read once and shared by every transfer until the file
/// changes: a boot storm reads each file from disk once, not once per Pi. At most
/// `capacity` bytes are held; the least recently served files go first.
#[derive(Debug)]
pub struct FileCache {
    capacity: usize,
    files: Mutex<Files>,
}

#[derive(Debug, Default)]
struct Files {
    by_path: HashMap<PathBuf, Cached>,
    bytes: usize,
    /// Bumped on every use: the smallest is the least recently served.
    clock: u64,
}

/// A file's bytes, the modification time they were read at, and its last use.
#[derive(Debug)]
struct Cached {
    mtime: SystemTime,
    bytes: Arc<[u8]>,
    used: u64,
}

/// The cache's default bound: a few images' boot files.
pub const CACHE_BYTES: usize = 512 << 20;

impl Default for FileCache {
    fn default() -> FileCache {
        FileCache::new(CACHE_BYTES)
    }
}

impl FileCache {
    pub fn new(capacity: usize) -> FileCache {
        FileCache {
            capacity,
            files: Mutex::default(),
        }
    }

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
        {
            let mut files = self.files.lock().expect("cache lock");
            files.clock += 1;
            let now = files.clock;
            if let Some(c) = files.by_path.get_mut(path)
                && c.mtime == mtime
                && c.bytes.len() as u64 == meta.len()
            {
                c.used = now;
                return Ok(c.bytes.clone());
            }
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
        self.keep(path, mtime, &bytes);
        Ok(bytes)
    }

    /// Keeps `bytes` for `path`, making room by dropping the least recently
    /// served; a file larger than the whole cache is served, not kept.
    fn keep(&self, path: &Path, mtime: SystemTime, bytes: &Arc<[u8]>) {
        if bytes.len() > self.capacity {
            return;
        }
        let mut files = self.files.lock().expect("cache lock");
        if let Some(old) = files.by_path.remove(path) {
            files.bytes -= old.bytes.len();
        }
        while files.bytes + bytes.len() > self.capacity {
            let Some(oldest) = files
                .by_path
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(p, _)| p.clone())
            else {
                break;
            };
            if let Some(c) = files.by_path.remove(&oldest) {
                files.bytes -= c.bytes.len();
            }
        }
        files.clock += 1;
        let used = files.clock;
        files.bytes += bytes.len();
        files.by_path.insert(
            path.to_path_buf(),
            Cached {
                mtime,
                bytes: bytes.clone(),
                used,
            },
        );
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.files.lock().expect("cache lock").bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boards::Known;
    use crate::boots::SlotBoot;
    use pirack_core::inventory::BoardPolicy;
    use pirack_core::plan::{Ledger, Plan};

    fn example() -> Plan {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let profiles =
            pirack_core::switch::Profiles::load_dir(&repo.join("switch-profiles")).unwrap();
        let inventory = repo.join("hardware/example-8.yaml");
        let site = pirack_core::inventory::load(&inventory, &profiles.names()).unwrap();
        let ledger = Ledger::load(&Ledger::path_for(&inventory)).unwrap();
        pirack_core::plan::plan(&site, &ledger).unwrap().0
    }

    fn boot(image: &str, cmdline: &str) -> SlotBoot {
        SlotBoot {
            image: image.into(),
            dir: PathBuf::from(format!("/images/{image}/boot")),
            cmdline: cmdline.as_bytes().into(),
            config: format!("kernel={image}.img\n").as_bytes().into(),
        }
    }

    #[test]
    fn a_slot_gets_its_images_files_switched_with_its_root() {
        let plan = example();
        let a01 = &plan.slots[0];
        let boards = Boards::new(
            BoardPolicy::Hold,
            plan.slots
                .iter()
                .map(|s| (s.position.clone(), Known::planned(s))),
        );
        let boots = Boots::default();
        let get = |name: &str| resolve(a01, name, &boards, &boots).map(|(s, _)| s);
        // Before a root is built: no bootcode.bin anywhere, nothing under the serial.
        assert_eq!(get("bootcode.bin"), Err(Refusal::NotFound));
        assert_eq!(get("7285c0f2/start.elf"), Err(Refusal::NothingToBoot));
        boots.set_bootcode(Some("/site/boot/bootcode.bin".into()));
        assert_eq!(
            get("bootcode.bin"),
            Ok(Source::File("/site/boot/bootcode.bin".into()))
        );
        assert_eq!(get("7285c0f2/cmdline.txt"), Err(Refusal::NothingToBoot));

        boots.set("A-01", Some(boot("old-1", "old")));
        assert_eq!(
            get("7285c0f2/start.elf"),
            Ok(Source::File("/images/old-1/boot/start.elf".into()))
        );
        assert_eq!(
            get("7285c0f2/cmdline.txt"),
            Ok(Source::Generated(b"old".as_slice().into()))
        );
        assert_eq!(
            get("7285c0f2/overlays/x.dtbo"),
            Ok(Source::File("/images/old-1/boot/overlays/x.dtbo".into()))
        );
        // Another slot's serial, and A-02 (no image), get nothing of it.
        assert!(matches!(
            get("b66c4c16/start.elf"),
            Err(Refusal::OtherSlot { .. })
        ));
        assert_eq!(
            resolve(&plan.slots[1], "b66c4c16/start.elf", &boards, &boots).map(|(s, _)| s),
            Err(Refusal::NothingToBoot)
        );

        // Reimaged: the new image's files and lines, together.
        boots.set("A-01", Some(boot("new-2", "new")));
        assert_eq!(
            get("7285c0f2/kernel8.img"),
            Ok(Source::File("/images/new-2/boot/kernel8.img".into()))
        );
        assert_eq!(
            get("7285c0f2/config.txt"),
            Ok(Source::Generated(b"kernel=new-2.img\n".as_slice().into()))
        );
        // Decommissioned: nothing again.
        boots.set("A-01", None);
        assert_eq!(get("7285c0f2/kernel8.img"), Err(Refusal::NothingToBoot));
    }

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

    #[tokio::test]
    async fn the_file_cache_keeps_to_its_bound_dropping_the_least_recently_served() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "b", "c"] {
            std::fs::write(dir.path().join(name), vec![0u8; 400]).unwrap();
        }
        let cache = FileCache::new(1000);
        let root = dir.path();
        for n in ["a", "b", "a"] {
            cache.get(&root.join(n), root).await.unwrap();
        }
        assert_eq!(cache.held(), 800);
        cache.get(&root.join("c"), root).await.unwrap();
        assert_eq!(cache.held(), 800, "b, the least recently served, went");
        let files = cache.files.lock().unwrap();
        assert!(files.by_path.contains_key(&dir.path().join("a")));
        assert!(!files.by_path.contains_key(&dir.path().join("b")));
    }
}

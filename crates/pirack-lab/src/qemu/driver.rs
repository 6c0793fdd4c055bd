//! The power driver of virtual slots: power on plays the slot's firmware stage from
//! its namespace and then starts QEMU with what it fetched; power off kills both at
//! once, as a cut PoE port would. Every boot is appended to the slot's console log.

use super::{Loaded, firmware_netns, qemu_args, tap};
use crate::sim::pi::{self, Board};
use pirack_controller::power::{DriverError, PowerAction, PowerDriver, PowerFuture};
use pirack_core::plan::SlotPlan;
use pirack_core::switch::port::{Admin, Detection, PortStatus};
use pirack_netboot::boots::{Boots, SlotBoot};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HilError {
    #[error("slot {0} has no board: a virtual Pi needs a serial and a MAC")]
    NoBoard(String),
    #[error("slot {slot}: {what}: {source}")]
    Io {
        slot: String,
        what: String,
        source: std::io::Error,
    },
}

/// Where virtual slots keep their files, and what they boot from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Per slot: `<position>/console.log` and the files QEMU loads.
    pub dir: PathBuf,
    /// Prefix of the firmware namespaces ([`firmware_netns`]).
    pub netns_prefix: String,
    pub qemu: PathBuf,
}

/// One powered virtual slot.
struct Vm {
    /// Set on power-off: the firmware stage stops and QEMU is not started.
    halted: Arc<AtomicBool>,
    qemu: Arc<Mutex<Option<Child>>>,
}

/// How long a virtual slot stays off in a power cycle.
const DRAIN: Duration = Duration::from_millis(500);

/// The virtual slots' power, by slot key.
pub struct Qemu {
    settings: Settings,
    /// What each slot boots (the controller's): the firmware stage checks its
    /// downloads against it.
    boots: Arc<Boots>,
    vms: Mutex<HashMap<String, Vm>>,
}

fn io(slot: &str, what: &str) -> impl FnOnce(std::io::Error) -> HilError {
    let (slot, what) = (slot.to_string(), what.to_string());
    move |source| HilError::Io { slot, what, source }
}

impl Qemu {
    pub fn new(settings: Settings, boots: Arc<Boots>) -> Qemu {
        Qemu {
            settings,
            boots,
            vms: Mutex::default(),
        }
    }

    /// The slot's console log.
    pub fn console(&self, position: &str) -> PathBuf {
        self.settings.dir.join(position).join("console.log")
    }

    pub fn is_on(&self, key: &str) -> bool {
        self.vms.lock().expect("not poisoned").contains_key(key)
    }

    /// Powers the slot on (nothing if it is on): the firmware stage starts at
    /// once, in the background, and QEMU after it.
    pub fn on(&self, slot: &SlotPlan) -> Result<(), HilError> {
        let key = slot.key.to_string();
        let mut vms = self.vms.lock().expect("not poisoned");
        if vms.contains_key(&key) {
            return Ok(());
        }
        let board = Board::of(slot).ok_or_else(|| HilError::NoBoard(slot.position.clone()))?;
        let dir = self.settings.dir.join(&slot.position);
        std::fs::create_dir_all(&dir).map_err(io(&slot.position, "making its directory"))?;
        let vm = Vm {
            halted: Arc::default(),
            qemu: Arc::default(),
        };
        let boot = Boot {
            netns: firmware_netns(&self.settings.netns_prefix, &slot.position),
            tap: tap(slot.vlan),
            qemu_bin: self.settings.qemu.clone(),
            console: self.console(&slot.position),
            dir,
            board,
            boot: self.boots.get(&slot.position),
            bootcode: self.boots.bootcode(),
            halted: Arc::clone(&vm.halted),
            qemu: Arc::clone(&vm.qemu),
        };
        std::thread::spawn(move || {
            as_hardware();
            boot.run()
        });
        vms.insert(key, vm);
        Ok(())
    }

    /// Powers the slot off at once: the firmware stage stops, QEMU is killed.
    pub fn off(&self, key: &str) {
        let Some(vm) = self.vms.lock().expect("not poisoned").remove(key) else {
            return;
        };
        vm.halted.store(true, Ordering::Relaxed);
        if let Some(mut child) = vm.qemu.lock().expect("not poisoned").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A virtual slot's power, as a port reading.
    fn reading(&self, slot: &SlotPlan) -> PortStatus {
        let on = self.is_on(&slot.key.to_string());
        PortStatus {
            port: slot.key.port,
            admin: if on { Admin::On } else { Admin::Off },
            detection: if on {
                Detection::DeliveringPower
            } else {
                Detection::Disabled
            },
            draw_mw: None,
        }
    }

    /// Every virtual slot off (the controller is stopping).
    pub fn all_off(&self) {
        let keys: Vec<String> = self
            .vms
            .lock()
            .expect("not poisoned")
            .keys()
            .cloned()
            .collect();
        for k in keys {
            self.off(&k);
        }
    }
}

/// One power-on of one virtual slot.
struct Boot {
    netns: String,
    tap: String,
    qemu_bin: PathBuf,
    console: PathBuf,
    dir: PathBuf,
    board: Board,
    /// What the slot boots now, and the site's bootcode.bin.
    boot: Option<Arc<SlotBoot>>,
    bootcode: Option<PathBuf>,
    halted: Arc<AtomicBool>,
    qemu: Arc<Mutex<Option<Child>>>,
}

/// A console log grows by every boot; past this size it is rotated at the next
/// power-on (one older log kept, `<log>.1`).
const CONSOLE_BYTES: u64 = 4 << 20;

/// Moves `log` to `<log>.1` when it is over `max` bytes.
fn rotate(log: &Path, max: u64) {
    if std::fs::metadata(log).is_ok_and(|m| m.len() > max) {
        let mut old = log.as_os_str().to_owned();
        old.push(".1");
        if let Err(e) = std::fs::rename(log, &old) {
            tracing::warn!("cannot rotate {}: {e}", log.display());
        }
    }
}

impl Boot {
    fn say(&self, line: &str) {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.console)
            .and_then(|mut f| writeln!(f, "[pirack] {line}"));
    }

    fn run(self) {
        rotate(&self.console, CONSOLE_BYTES);
        self.say(&format!("power on: firmware stage from {}", self.netns));
        // What the firmware should receive, read here rather than on the
        // controller's event loop: the boot files are tens of megabytes.
        if let Some(b) = &self.boot {
            self.say(&format!("booting image {}", b.image));
        }
        let expected = match crate::sim::expected(self.boot.as_deref(), self.bootcode.as_deref()) {
            Ok(e) => e,
            Err(e) => {
                self.say(&format!("reading what the slot boots: {e}"));
                return;
            }
        };
        // The stage runs on a thread of its own inside the firmware namespace;
        // QEMU starts from this one, in the controller's (where its tap is).
        let (netns, board, halted) = (
            self.netns.clone(),
            self.board.clone(),
            Arc::clone(&self.halted),
        );
        let stage = std::thread::spawn(move || match crate::testbed::netns::enter(&netns) {
            Ok(()) => pi::firmware(&board, &expected, &halted),
            Err(e) => (
                pi::Report::failed(&board, format!("entering {netns}: {e}")),
                None,
            ),
        })
        .join();
        let (report, handover) = match stage {
            Ok(r) => r,
            Err(_) => {
                self.say("the firmware stage panicked");
                return;
            }
        };
        let Some(h) = handover else {
            // A real Pi hangs here; the watchdog power-cycles it.
            self.say(&format!(
                "firmware stage failed after {} ms: {}",
                report.total_ms,
                report.error.unwrap_or_default()
            ));
            return;
        };
        self.say(&format!(
            "firmware stage done in {} ms ({} files, {} bytes): {}",
            report.total_ms,
            report.files,
            report.bytes,
            report
                .stages
                .iter()
                .map(|(s, ms)| format!("{s} {ms} ms"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        // What start.elf hands over, as config.txt and cmdline.txt said: which
        // image's kernel a boot ran is on the console.
        self.say(&format!(
            "start.elf loads {} ({} bytes){}; command line: {}",
            h.config.kernel,
            h.kernel.len(),
            h.config
                .initramfs
                .as_deref()
                .map(|i| format!(" with initramfs {i}"))
                .unwrap_or_default(),
            h.cmdline
        ));
        if let Err(e) = self.start_qemu(&h) {
            self.say(&format!("QEMU did not start: {e}"));
        }
    }

    fn start_qemu(&self, h: &pi::Handover) -> std::io::Result<()> {
        let write = |name: &str, data: &[u8]| -> std::io::Result<PathBuf> {
            let path = self.dir.join(name);
            std::fs::write(&path, data)?;
            Ok(path)
        };
        let kernel = write("kernel", &h.kernel)?;
        let dtb = write("device-tree.dtb", &h.device_tree)?;
        let initrd = h
            .initramfs
            .as_ref()
            .map(|i| write("initramfs", i))
            .transpose()?;
        let loaded = Loaded {
            kernel: &kernel,
            device_tree: &dtb,
            initramfs: initrd.as_deref(),
            cmdline: &h.cmdline,
        };
        let args = qemu_args(
            &loaded,
            &self.board.mac.to_string(),
            &self.tap,
            &self.console,
        );
        let log = std::fs::File::create(self.dir.join("qemu.log"))?;
        // Under the lock power-off takes: a slot switched off meanwhile stays off.
        let mut slot = self.qemu.lock().expect("not poisoned");
        if self.halted.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.say(&format!(
            "starting {} {}",
            self.qemu_bin.display(),
            args.join(" ")
        ));
        let mut cmd = Command::new(&self.qemu_bin);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: prctl(2) is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                as_hardware();
                // The machine dies with this thread, which lives as long as it
                // runs: a controller killed outright leaves no QEMU behind.
                match libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
        *slot = Some(cmd.spawn()?);
        drop(slot);
        self.watch_qemu();
        Ok(())
    }

    /// Waits while QEMU runs, noting on the console how it ended unless the
    /// power was cut (then power-off has taken it).
    fn watch_qemu(&self) {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let mut slot = self.qemu.lock().expect("not poisoned");
            let Some(child) = slot.as_mut() else { return };
            if let Ok(Some(status)) = child.try_wait() {
                *slot = None;
                drop(slot);
                self.say(&format!(
                    "QEMU exited ({status}); the Pi is hung until power-cycled"
                ));
                return;
            }
        }
    }
}

/// A virtual slot's power is its QEMU: started (after the firmware stage) or
/// killed; reported as a port would be.
impl PowerDriver for Qemu {
    fn switch<'a>(&'a self, slot: &'a SlotPlan, action: PowerAction) -> PowerFuture<'a> {
        Box::pin(async move {
            if matches!(action, PowerAction::Off | PowerAction::Cycle) {
                self.off(&slot.key.to_string());
            }
            if action == PowerAction::Cycle {
                tokio::time::sleep(DRAIN).await;
            }
            if matches!(action, PowerAction::On | PowerAction::Cycle) {
                self.on(slot).map_err(|e| DriverError::Other(Box::new(e)))?;
            }
            Ok(self.reading(slot))
        })
    }

    fn read<'a>(&'a self, slot: &'a SlotPlan) -> PowerFuture<'a> {
        Box::pin(async move { Ok(self.reading(slot)) })
    }

    fn console(&self, slot: &SlotPlan) -> Option<PathBuf> {
        Some(self.console(&slot.position))
    }

    fn shutdown(&self) {
        self.all_off();
    }
}

/// A virtual Pi stands in for hardware, not for the controller's work: its
/// threads and QEMU leave the API's lower priority they were started from
/// (where the process may raise it back; as root it may).
fn as_hardware() {
    // SAFETY: setpriority is a plain system call (async-signal-safe); 0 is the
    // calling thread. Failing leaves the priority as it was.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_console_log_past_its_size_is_rotated_once() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("A-01.log");
        std::fs::write(&log, vec![b'x'; 100]).unwrap();
        rotate(&log, 200);
        assert!(log.exists(), "under the size: left alone");
        rotate(&log, 50);
        assert!(!log.exists());
        assert_eq!(
            std::fs::read(dir.path().join("A-01.log.1")).unwrap().len(),
            100
        );
    }
}

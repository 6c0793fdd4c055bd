//! One simulated Pi 3 booting, stage by stage, as the netboot notes §7.3 list:
//! ROM DHCP, ROM TFTP, bootcode.bin's DHCP, the firmware's file list, Linux's DHCP.
//! Runs blocking on a thread that has entered the Pi's network namespace.

use super::frames::{self, Asker};
use super::link::RawLink;
use super::tftp_client::{Client, Fetch};
use dhcproto::v4::{MessageType, OptionCode};
use pirack_core::firmware::Config;
use pirack_core::inventory::{MacAddr, Model, Serial};
use pirack_netboot::dhcp::pxe::{BOOT_MENU_TEXT, ROM_XID};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The board being simulated.
#[derive(Debug, Clone)]
pub struct Board {
    pub position: String,
    pub serial: Serial,
    pub mac: MacAddr,
    pub model: Model,
    /// Interface inside the Pi's namespace.
    pub interface: String,
}

impl Board {
    /// The board the plan puts in `slot`, seen from inside its namespace (`eth0`).
    pub fn of(slot: &pirack_core::plan::SlotPlan) -> Option<Board> {
        let b = slot.board.as_ref()?;
        Some(Board {
            position: slot.position.clone(),
            serial: b.serial.parse().ok()?,
            mac: b.mac.parse().ok()?,
            model: b.model,
            interface: "eth0".into(),
        })
    }
}

/// What the Pi should receive: every file by its name in the serial directory.
pub type Expected = Arc<BTreeMap<String, Arc<[u8]>>>;

/// How one Pi's boot went.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub position: String,
    pub serial: String,
    pub ok: bool,
    /// The stage that failed and why.
    pub error: Option<String>,
    /// Milliseconds per stage, in boot order.
    pub stages: Vec<(String, u64)>,
    pub total_ms: u64,
    pub files: usize,
    pub bytes: u64,
    pub dhcp_tries: u32,
}

impl Report {
    /// A Pi that could not even start.
    pub fn failed(board: &Board, error: String) -> Report {
        Report {
            position: board.position.clone(),
            serial: board.serial.to_string(),
            ok: false,
            error: Some(error),
            stages: Vec::new(),
            total_ms: 0,
            files: 0,
            bytes: 0,
            dhcp_tries: 0,
        }
    }
}

/// ROM DHCP: five tries, five seconds apart (notes Q1).
const ROM_TRIES: u32 = 5;
const ROM_WAIT: Duration = Duration::from_secs(5);

/// What a boot does beyond the firmware's part.
#[derive(Debug, Clone, Default)]
pub struct BootOptions {
    /// Hang after bootcode.bin (as a Pi 3 sometimes does) until stopped.
    pub stall_after_bootcode: bool,
    /// Play Linux too: mount the root over NFS and answer on the public address.
    pub linux: Option<Linux>,
}

#[derive(Debug, Clone)]
pub struct Linux {
    pub nfs_server: Ipv4Addr,
    pub public: Ipv6Addr,
    pub reach_port: u16,
}

/// A booted Pi's Linux: its NFS connection and its listener, held while it runs;
/// dropped when its power goes.
pub struct Running {
    _nfs: TcpStream,
    off: Arc<AtomicBool>,
    listener: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.off.store(true, Ordering::Relaxed);
        if let Some(t) = self.listener.take() {
            let _ = t.join();
        }
    }
}

struct Boot<'a> {
    board: &'a Board,
    expected: &'a Expected,
    stop: &'a AtomicBool,
    link: RawLink,
    report: Report,
    clock: Instant,
    /// Every file fetched, by its name in the boot directory, when kept.
    kept: Option<BTreeMap<String, Arc<[u8]>>>,
    /// The boot server the ROM was offered.
    server: Ipv4Addr,
}

/// What start.elf hands the kernel: the files config.txt names, as fetched.
#[derive(Debug, Clone)]
pub struct Handover {
    pub config: Config,
    pub cmdline: String,
    pub kernel: Arc<[u8]>,
    pub device_tree: Arc<[u8]>,
    pub initramfs: Option<Arc<[u8]>>,
}

/// Boots `board`; never panics on a misbehaving server, it reports.
pub fn boot(board: &Board, expected: &Expected, stop: &AtomicBool) -> Report {
    boot_with(board, expected, stop, &BootOptions::default()).0
}

/// Boots `board` with `opts`; a Pi that reached Linux comes back running.
pub fn boot_with(
    board: &Board,
    expected: &Expected,
    stop: &AtomicBool,
    opts: &BootOptions,
) -> (Report, Option<Running>) {
    let (report, result) = with_boot(board, expected, stop, false, |b| b.run(opts));
    (report, result.flatten())
}

/// Plays the boot ROM, bootcode.bin and start.elf only, and hands over what
/// start.elf would load (for a real kernel under QEMU to take from there). The
/// Pi's address is taken off its link again: the kernel's own comes up next.
pub fn firmware(
    board: &Board,
    expected: &Expected,
    stop: &AtomicBool,
) -> (Report, Option<Handover>) {
    let (report, result) = with_boot(board, expected, stop, true, |b| {
        let (ip, mask) = b.loaders(&BootOptions::default())?;
        b.unconfigure(ip, mask)?;
        b.handover()
    });
    (report, result)
}

fn with_boot<T>(
    board: &Board,
    expected: &Expected,
    stop: &AtomicBool,
    keep: bool,
    run: impl FnOnce(&mut Boot) -> Result<T, String>,
) -> (Report, Option<T>) {
    let started = Instant::now();
    let link = match RawLink::open(&board.interface) {
        Ok(l) => l,
        Err(e) => {
            let why = format!("raw socket on {}: {e}", board.interface);
            return (Report::failed(board, why), None);
        }
    };
    let mut report = Report::failed(board, String::new());
    report.error = None;
    let mut b = Boot {
        board,
        expected,
        stop,
        link,
        report,
        clock: Instant::now(),
        kept: keep.then(BTreeMap::new),
        server: Ipv4Addr::UNSPECIFIED,
    };
    let result = run(&mut b);
    b.report.total_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(out) => {
            b.report.ok = true;
            (b.report, Some(out))
        }
        Err(e) => {
            b.report.error = Some(e);
            (b.report, None)
        }
    }
}

impl Boot<'_> {
    fn stage(&mut self, name: &str) {
        let ms = self.clock.elapsed().as_millis() as u64;
        self.report.stages.push((name.to_string(), ms));
        self.clock = Instant::now();
    }

    fn run(&mut self, opts: &BootOptions) -> Result<Option<Running>, String> {
        let (ip, _) = self.loaders(opts)?;
        let Some(linux) = &opts.linux else {
            self.linux_dhcp(ip, self.server)?;
            self.stage("linux_dhcp");
            return Ok(None);
        };
        let running = self.linux(ip, linux)?;
        Ok(Some(running))
    }

    /// The boot ROM, bootcode.bin and start.elf: the Pi's address and netmask.
    fn loaders(&mut self, opts: &BootOptions) -> Result<(Ipv4Addr, Ipv4Addr), String> {
        let (ip, server, mask) = self.loader_dhcp(Asker::Rom(self.board.model), ROM_TRIES)?;
        self.server = server;
        self.configure(ip, mask)?;
        self.stage("rom_dhcp");

        let rom_port = if self.board.model == Model::Pi3B {
            49152
        } else {
            49153
        };
        let mut tftp = Client::new(ip, server, rom_port);
        self.fetch(&mut tftp, "bootcode.bin", false)?;
        if let Fetch::Got(_) = self.request(&mut tftp, "bootsig.bin", false, false)? {
            return Err("bootsig.bin was served; the ROM's probe should fail".into());
        }
        self.stage("rom_tftp");
        if opts.stall_after_bootcode {
            while !self.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return Err("stalled after bootcode.bin (simulated), until power was cut".into());
        }

        let (ip2, server2, _) = self.loader_dhcp(Asker::Bootcode, ROM_TRIES)?;
        if (ip2, server2) != (ip, server) {
            return Err(format!(
                "bootcode.bin was offered {ip2} from {server2}, the ROM {ip} from {server}"
            ));
        }
        self.stage("bootcode_dhcp");

        self.firmware(&mut tftp)?;
        Ok((ip, mask))
    }

    /// The files start.elf loads, from those kept.
    fn handover(&mut self) -> Result<Handover, String> {
        let kept = self.kept.take().unwrap_or_default();
        let file = |name: &str| {
            kept.get(name)
                .cloned()
                .ok_or_else(|| format!("start.elf did not fetch {name}"))
        };
        let config = Config::parse(
            &String::from_utf8_lossy(&file("config.txt")?),
            self.board.model,
        );
        Ok(Handover {
            cmdline: String::from_utf8_lossy(&file("cmdline.txt")?)
                .trim()
                .to_string(),
            kernel: file(&config.kernel)?,
            device_tree: file(&config.device_tree)?,
            initramfs: config.initramfs.as_deref().map(file).transpose()?,
            config,
        })
    }

    /// The kernel mounts its root (an NFS client's TCP connection from the Pi's
    /// address, held open), then the root's services answer on the public address.
    fn linux(&mut self, ip: Ipv4Addr, l: &Linux) -> Result<Running, String> {
        let nfs = SocketAddr::new(
            l.nfs_server.into(),
            pirack_core::plan::render::exports::NFS_PORT,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let stream = loop {
            self.check_stop()?;
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .map_err(|e| format!("NFS socket: {e}"))?;
            sock.bind(&SocketAddr::new(ip.into(), 0).into())
                .map_err(|e| format!("NFS bind {ip}: {e}"))?;
            match sock.connect_timeout(&nfs.into(), Duration::from_secs(2)) {
                Ok(()) => break TcpStream::from(sock),
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("NFS mount from {nfs}: {e}"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        };
        self.stage("nfs_mount");
        let public = SocketAddr::new(l.public.into(), l.reach_port);
        let listener =
            std::net::TcpListener::bind(public).map_err(|e| format!("listen on {public}: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("listener: {e}"))?;
        let off = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&off);
        let accept = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = std::io::Write::write_all(&mut &conn, b"SSH-2.0-pirack-sim\r\n");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        self.stage("up");
        Ok(Running {
            _nfs: stream,
            off,
            listener: Some(accept),
        })
    }

    fn check_stop(&self) -> Result<(), String> {
        match self.stop.load(Ordering::Relaxed) {
            true => Err("stopped".into()),
            false => Ok(()),
        }
    }

    /// A loader's DHCP: DISCOVER (retransmitted unchanged), first usable OFFER, no
    /// REQUEST. Returns (address, TFTP server, netmask).
    fn loader_dhcp(
        &mut self,
        asker: Asker,
        tries: u32,
    ) -> Result<(Ipv4Addr, Ipv4Addr, Ipv4Addr), String> {
        let frame = frames::loader_discover(asker, self.board.mac, self.board.serial);
        let strict_3b = asker == Asker::Rom(Model::Pi3B);
        let mut last_problem = String::from("no OFFER");
        for _ in 0..tries {
            self.check_stop()?;
            self.report.dhcp_tries += 1;
            self.link
                .send(&frame)
                .map_err(|e| format!("send DISCOVER: {e}"))?;
            let got = self
                .link
                .recv_until(ROM_WAIT, self.stop, |f| {
                    let r = frames::parse_reply(f)?;
                    let mine = r.msg.xid() == ROM_XID
                        && r.msg.chaddr().get(..6) == Some(&self.board.mac.0[..]);
                    (mine && r.kind() == Some(MessageType::Offer)).then_some(r)
                })
                .map_err(|e| format!("receive: {e}"))?;
            let Some(offer) = got else { continue };
            match usable_offer(&offer, strict_3b) {
                Ok(found) => return Ok(found),
                Err(p) => last_problem = p,
            }
        }
        Err(format!(
            "{asker:?} DHCP failed after {tries} tries: {last_problem}"
        ))
    }

    fn configure(&self, ip: Ipv4Addr, mask: Ipv4Addr) -> Result<(), String> {
        self.address("replace", ip, mask)
    }

    fn unconfigure(&self, ip: Ipv4Addr, mask: Ipv4Addr) -> Result<(), String> {
        self.address("del", ip, mask)
    }

    fn address(&self, verb: &str, ip: Ipv4Addr, mask: Ipv4Addr) -> Result<(), String> {
        let prefix = u32::from(mask).count_ones();
        let out = Command::new("ip")
            .args([
                "addr",
                verb,
                &format!("{ip}/{prefix}"),
                "dev",
                &self.board.interface,
            ])
            .output()
            .map_err(|e| format!("ip: {e}"))?;
        match out.status.success() {
            true => Ok(()),
            false => Err(format!(
                "ip addr: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }

    fn request(
        &mut self,
        c: &mut Client,
        name: &str,
        tsize: bool,
        probe: bool,
    ) -> Result<Fetch, String> {
        self.check_stop()?;
        c.request(name, tsize, probe, self.stop)
            .map_err(|e| format!("TFTP {name}: {e}"))
    }

    /// Fetches a file that must exist and checks it against what was served.
    fn fetch(&mut self, c: &mut Client, name: &str, tsize: bool) -> Result<Vec<u8>, String> {
        let data = match self.request(c, name, tsize, false)? {
            Fetch::Got(d) => d,
            other => return Err(format!("TFTP {name}: {other:?}")),
        };
        let dir = format!("{}/", self.board.serial);
        match self.expected.get(name.strip_prefix(&dir).unwrap_or(name)) {
            Some(want) if **want == *data => {}
            Some(want) => {
                return Err(format!(
                    "{name}: received {} bytes that differ from the {} served",
                    data.len(),
                    want.len()
                ));
            }
            None => return Err(format!("{name}: received a file the test did not expect")),
        }
        if let Some(kept) = &mut self.kept {
            let dir = format!("{}/", self.board.serial);
            kept.insert(
                name.strip_prefix(&dir).unwrap_or(name).to_string(),
                data.clone().into(),
            );
        }
        self.report.files += 1;
        self.report.bytes += data.len() as u64;
        Ok(data)
    }

    /// The firmware's probe-then-fetch of a file that must exist.
    fn get(&mut self, c: &mut Client, dir: &str, name: &str) -> Result<Vec<u8>, String> {
        let path = format!("{dir}{name}");
        match self.request(c, &path, true, true)? {
            Fetch::Exists(_) => self.fetch(c, &path, true),
            other => Err(format!("TFTP {path}: {other:?}")),
        }
    }

    /// An optional file: asked for once, expected to be missing unless served.
    fn optional(&mut self, c: &mut Client, dir: &str, name: &str) -> Result<(), String> {
        let path = format!("{dir}{name}");
        match self.request(c, &path, true, true)? {
            Fetch::Exists(_) if self.expected.contains_key(name) => Ok(()),
            Fetch::Error(..) if !self.expected.contains_key(name) => Ok(()),
            other => Err(format!("optional {path}: unexpected {other:?}")),
        }
    }

    /// bootcode.bin and start.elf's requests, driven by the config.txt served.
    fn firmware(&mut self, c: &mut Client) -> Result<(), String> {
        let serial_dir = format!("{}/", self.board.serial);
        // The first request decides the directory: serial, or the root if that fails.
        let dir = match self.request(c, &format!("{serial_dir}start.elf"), true, true)? {
            Fetch::Exists(_) => serial_dir,
            _ => String::new(),
        };
        self.optional(c, &dir, "autoboot.txt")?;
        let config = self.get(c, &dir, "config.txt")?;
        self.optional(c, &dir, "recovery.elf")?;
        self.get(c, &dir, "start.elf")?;
        self.get(c, &dir, "fixup.dat")?;
        self.stage("bootcode_tftp");

        self.get(c, &dir, "config.txt")?;
        self.optional(c, &dir, "dt-blob.bin")?;
        self.optional(c, &dir, "bootcfg.txt")?;
        let cfg = Config::parse(&String::from_utf8_lossy(&config), self.board.model);
        self.get(c, &dir, &cfg.device_tree)?;
        self.optional(c, &dir, "overlays/overlay_map.dtb")?;
        for o in &cfg.overlays {
            self.optional(c, &dir, &format!("overlays/{o}.dtbo"))?;
        }
        self.get(c, &dir, "cmdline.txt")?;
        if let Some(initramfs) = &cfg.initramfs {
            self.get(c, &dir, initramfs)?;
        }
        self.get(c, &dir, &cfg.kernel)?;
        if cfg.arm64 {
            self.optional(c, &dir, "armstub8.bin")?;
        }
        self.stage("start_elf_tftp");
        Ok(())
    }

    /// The kernel's (or udhcpc's) DHCP: new xid, DISCOVER, OFFER, REQUEST, ACK.
    fn linux_dhcp(&mut self, ip: Ipv4Addr, server: Ipv4Addr) -> Result<(), String> {
        let xid = u32::from_be_bytes(self.board.serial.value().to_le_bytes()) ^ 0x5a5a_0001;
        let mac = self.board.mac;
        let discover = frames::frame(
            mac,
            &frames::bootp_request(
                mac,
                xid,
                &frames::linux_options(MessageType::Discover, None),
            ),
        );
        let request = frames::frame(
            mac,
            &frames::bootp_request(
                mac,
                xid,
                &frames::linux_options(MessageType::Request, Some((ip, server))),
            ),
        );
        for (frame, want) in [(discover, MessageType::Offer), (request, MessageType::Ack)] {
            let mut answer = None;
            for _ in 0..3 {
                self.check_stop()?;
                self.link.send(&frame).map_err(|e| format!("send: {e}"))?;
                answer = self
                    .link
                    .recv_until(Duration::from_secs(3), self.stop, |f| {
                        let r = frames::parse_reply(f)?;
                        (r.msg.xid() == xid).then_some(r)
                    })
                    .map_err(|e| format!("receive: {e}"))?;
                if answer.is_some() {
                    break;
                }
            }
            let r = answer.ok_or_else(|| format!("Linux DHCP: no answer to {want:?}'s request"))?;
            if r.kind() != Some(want) || r.msg.yiaddr() != ip {
                return Err(format!(
                    "Linux DHCP: wanted {want:?} for {ip}, got {:?} for {}",
                    r.kind(),
                    r.msg.yiaddr()
                ));
            }
        }
        Ok(())
    }
}

/// Checks an OFFER the way the ROM does: an address, and the boot menu in option 43
/// (padded for a 3B, whose ROM mis-measures the string) or a server in option 66;
/// a 3B refuses relayed replies. The TFTP server is the OFFER's IP source.
fn usable_offer(
    o: &frames::Reply,
    strict_3b: bool,
) -> Result<(Ipv4Addr, Ipv4Addr, Ipv4Addr), String> {
    let ip = o.msg.yiaddr();
    if ip.is_unspecified() {
        return Err("OFFER without an address".into());
    }
    if strict_3b && (o.msg.hops() != 0 || !o.msg.giaddr().is_unspecified()) {
        return Err("relayed OFFER (the 3B ROM drops it)".into());
    }
    let menu: &[u8] = if strict_3b {
        BOOT_MENU_TEXT
    } else {
        b"Raspberry Pi Boot"
    };
    let has_menu = o
        .bytes_opt(OptionCode::VendorExtensions)
        .is_some_and(|v| v.windows(menu.len()).any(|w| w == menu));
    let server = match o.bytes_opt(OptionCode::TFTPServerName) {
        Some(name) => std::str::from_utf8(name).ok().and_then(|s| s.parse().ok()),
        None if has_menu => Some(o.ip_src),
        None => None,
    };
    let server = server.ok_or("OFFER without the Raspberry Pi boot menu or a TFTP server")?;
    if o.server_id().is_some_and(|id| id != o.ip_src) || o.msg.siaddr() != o.ip_src {
        return Err(format!(
            "server identity differs: IP source {}, option 54 {:?}, siaddr {}",
            o.ip_src,
            o.server_id(),
            o.msg.siaddr()
        ));
    }
    let mask = o.netmask().unwrap_or(Ipv4Addr::new(255, 255, 255, 0));
    Ok((ip, server, mask))
}

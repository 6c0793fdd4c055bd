//! What every hardware-in-loop run stands on: the virtual shelf (each slot's
//! storage network and firmware namespace, NFS-Ganesha and the controller), and
//! the stage timings of a boot.

use crate::setup::{Controller, Lab, step};
use crate::testbed::nfs::Ganesha;
use anyhow::{Context, Result};
use pirack_controller::api::client::Client;
use pirack_core::plan::{Plan, SlotPlan};
use std::path::{Path, PathBuf};

/// A lab's virtual shelf, running.
pub(crate) struct Shelf {
    pub(crate) controller: Controller,
    /// The controller's plan (it plans from the same empty ledger).
    pub(crate) plan: Plan,
    pub(crate) positions: Vec<String>,
    /// `<position>/console.log` for each slot.
    pub(crate) consoles: PathBuf,
    /// The slots' networks and the NFS server, taken down when dropped.
    pub(crate) guards: (Ganesha, Firmware),
}

/// Plans the lab's site, wires each virtual slot, and starts NFS-Ganesha and the
/// controller (its API carried to loopback `port`).
pub(crate) fn shelf(lab: &Lab, port: u16) -> Result<Shelf> {
    let profiles = pirack_core::switch::Profiles::load_dir(&lab.profiles)?;
    let site = pirack_core::inventory::load(&lab.inventory, &profiles.names())?;
    let ledger =
        pirack_core::plan::Ledger::load(&pirack_core::plan::Ledger::path_for(&lab.inventory))?;
    let (plan, _) = pirack_core::plan::plan(&site, &ledger)?;
    let positions = lab.site.slots.iter().map(|(p, _)| p.clone()).collect();
    let prefix = format!("{}-fw", lab.ns.name());
    let firmware = step("making the virtual Pis' networks", || {
        network(lab.ns.name(), &prefix, &plan.slots)
    })?;
    let nfs = lab.nfs()?;
    let consoles = lab.run.join("hil");
    let controller = lab.controller(
        &[
            "--hil-dir",
            &consoles.display().to_string(),
            "--hil-netns-prefix",
            &prefix,
        ],
        port,
    )?;
    Ok(Shelf {
        controller,
        plan,
        positions,
        consoles,
        guards: (nfs, firmware),
    })
}

/// The firmware namespaces, deleted on drop (their veths go with them).
pub(crate) struct Firmware(Vec<String>);

impl Drop for Firmware {
    fn drop(&mut self) {
        let batch: String = self.0.iter().map(|n| format!("netns del {n}\n")).collect();
        let _ = crate::testbed::netns::ip_batch(None, &batch);
    }
}

/// Each virtual slot's storage network: a bridge with the fileserver's addresses
/// (and the shelf's IPv6 gateway, through which the controller reaches the Pi's
/// public address), QEMU's tap, and a veth to the firmware namespace, whose end
/// carries the board's MAC.
fn network(ns: &str, prefix: &str, slots: &[SlotPlan]) -> Result<Firmware> {
    let fw = Firmware(
        slots
            .iter()
            .map(|s| crate::qemu::firmware_netns(prefix, &s.position))
            .collect(),
    );
    let spaces: String = fw.0.iter().map(|n| format!("netns add {n}\n")).collect();
    crate::testbed::netns::ip_batch(None, &spaces)?;
    let mut root = String::new();
    let mut ctl = String::new();
    for (s, fw_ns) in slots.iter().zip(&fw.0) {
        let mac = &s
            .board
            .as_ref()
            .context("a virtual slot needs a board")?
            .mac;
        let (br, tap, veth) = (
            &s.interface,
            crate::qemu::tap(s.vlan),
            format!("fw{}", s.vlan),
        );
        root += &format!(
            "link add {veth} netns {ns} type veth peer name eth0 netns {fw_ns} address {mac}\n"
        );
        ctl += &format!(
            "link add {br} type bridge\naddr add {}/{} dev {br}\naddr add {}/128 dev {br} nodad\n\
             link set {br} up\nroute add {}/128 dev {br}\ntuntap add {tap} mode tap\n\
             link set {tap} master {br}\nlink set {tap} up\nlink set {veth} master {br}\n\
             link set {veth} up\n",
            s.fileserver_ip,
            s.storage.prefix_len(),
            s.ipv6_gateway,
            s.ipv6,
        );
    }
    crate::testbed::netns::ip_batch(None, &root)?;
    crate::testbed::netns::ip_batch(Some(ns), &ctl)?;
    for n in &fw.0 {
        crate::testbed::netns::ip_batch(Some(n), "link set lo up\nlink set eth0 up\n")?;
    }
    Ok(fw)
}

/// The latest boot's stages from the slot's events: seconds from the power-on to
/// each first DHCP, TFTP, kernel, NFS mount and answer.
pub(crate) fn timings(api: &Client, position: &str) -> Result<String> {
    let events = api.call(
        "GET",
        &format!("/v1/events?slot={position}&limit=1000"),
        None,
    )?;
    // Newest first from the API; oldest first here.
    let mut events = events.as_array().cloned().unwrap_or_default();
    events.reverse();
    let start = events
        .iter()
        .rposition(|e| e["kind"] == "power_on" || e["kind"] == "recover")
        .context("no power-on among the slot's events")?;
    let t0 = events[start]["at"].as_i64().unwrap_or(0);
    let mut out = Vec::new();
    for kind in [
        "dhcp_seen",
        "tftp_seen",
        "kernel_served",
        "nfs_mounted",
        "reachable",
    ] {
        if let Some(e) = events[start..].iter().find(|e| e["kind"] == kind) {
            let s = (e["at"].as_i64().unwrap_or(t0) - t0) as f64 / 1000.0;
            out.push(format!("{kind} {s:.1} s"));
        }
    }
    Ok(out.join(", "))
}

/// A virtual Pi's console log since its last power-on (the driver's
/// `[pirack] power on` line), where the current boot's lines are.
pub(crate) fn last_boot(log: &Path) -> std::io::Result<String> {
    let text = std::fs::read(log)?;
    let text = String::from_utf8_lossy(&text);
    let from = text.rfind("[pirack] power on").unwrap_or(0);
    Ok(text[from..].to_string())
}

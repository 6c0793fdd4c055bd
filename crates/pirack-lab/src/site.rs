//! The demo's site, planned without side effects: a shipped example inventory cut to
//! the slots asked for and pointed at the demo's directory, its emulated switch and
//! its NFS server, with watchdog deadlines short enough to watch.

use anyhow::{Context, Result, bail};
use serde_yaml::{Mapping, Value};
use std::path::Path;

/// Where the demo keeps what the inventory points at.
pub struct Layout<'a> {
    pub export_root: &'a Path,
    pub boot_files: &'a Path,
    pub exports_file: &'a Path,
    pub ganesha_pid_file: &'a Path,
    /// The environment variable holding the switch's community.
    pub community_env: &'a str,
    /// Virtual Pi 3s under QEMU (`pirack hil`) instead of simulated ones.
    pub virtual_pis: bool,
    /// A public key every owner's Pis let in as root (`pirack hil run --exec`).
    pub ssh_key: Option<&'a str>,
}

/// The demo's inventory and what it boots.
#[derive(Debug)]
pub struct DemoSite {
    pub yaml: String,
    /// Each slot's position and the customer it is provisioned for.
    pub slots: Vec<(String, String)>,
    pub switch_port: u16,
    pub switch_ports: u16,
}

/// The shipped inventory that has `slots` slots: the 8-Pi example, or the
/// 96-Pi shelf for more.
pub fn example_for(slots: usize) -> Result<&'static str> {
    match slots {
        1..=8 => Ok("hardware/example-8.yaml"),
        9..=96 => Ok("hardware/shelf-96.yaml"),
        _ => bail!("--slots {slots}: between 1 and 96"),
    }
}

fn set(map: &mut Value, key: &str, value: impl Into<Value>) {
    if let Value::Mapping(m) = map {
        m.insert(key.into(), value.into());
    }
}

fn path(p: &Path) -> Value {
    Value::String(p.display().to_string())
}

/// Derives the demo's inventory from `example` (the text of `name`).
pub fn derive(name: &str, example: &str, slots: usize, l: &Layout) -> Result<DemoSite> {
    let mut site: Value = serde_yaml::from_str(example).with_context(|| name.to_string())?;
    set(&mut site["fileserver"], "export_root", path(l.export_root));
    set(&mut site["netboot"], "boot_files", path(l.boot_files));
    let switches = site["switches"]
        .as_sequence_mut()
        .with_context(|| format!("{name}: no switches"))?;
    let [switch] = switches.as_mut_slice() else {
        bail!(
            "{name}: the demo emulates one switch, not {}",
            switches.len()
        );
    };
    let mut snmp = Mapping::new();
    snmp.insert("version".into(), "v2c".into());
    let mut community = Mapping::new();
    community.insert("env".into(), l.community_env.into());
    snmp.insert("community".into(), community.into());
    set(switch, "snmp", snmp);
    set(switch, "address", "127.0.0.1");
    set(switch, "snmp_timeout_ms", 1000);
    set(switch, "snmp_retries", 2);
    let power: Value = serde_yaml::from_str(
        "{ drain_ms: 1000, readback_ms: 5000, batch: 8, batch_interval_ms: 500 }",
    )?;
    set(switch, "power", power);
    let switch_port = switch["snmp_port"].as_u64().unwrap_or(161) as u16;
    let switch_ports = switch["ports"]
        .as_u64()
        .with_context(|| format!("{name}: the switch has no ports count"))?
        as u16;

    let first_owner = site["owners"][0]["name"]
        .as_str()
        .with_context(|| format!("{name}: no owners"))?
        .to_string();
    let all = site["slots"]
        .as_sequence_mut()
        .with_context(|| format!("{name}: no slots"))?;
    if all.len() < slots {
        bail!("{name} has {} slots, not {slots}", all.len());
    }
    all.truncate(slots);
    let kept: Vec<(String, String)> = all
        .iter()
        .map(|s| {
            let owner = s["owner"].as_str().unwrap_or(&first_owner);
            (
                s["position"].as_str().unwrap_or_default().to_string(),
                owner.to_string(),
            )
        })
        .collect();
    if let Some(boards) = site["boards"].as_sequence_mut() {
        boards.retain(|b| {
            b["slot"]
                .as_str()
                .is_some_and(|s| kept.iter().any(|(p, _)| p == s))
        });
    }
    // The watchdog has to catch a stall within a demo's patience, and still
    // let a whole shelf pull its kernels at once (and QEMU, without KVM, boot
    // its kernel to an NFS mount).
    let kernel_s = match l.virtual_pis {
        // QEMU without KVM mounts its root about 20 s after the kernel arrives
        // with two guests on two cores; more guests share the cores.
        true => 45 + 15 * slots,
        false => 60,
    };
    let watchdog: Value = serde_yaml::from_str(&format!(
        "{{ powering_on_s: 30, dhcp_s: 30, tftp_s: {}, kernel_loaded_s: {kernel_s}, \
         nfs_mounted_s: {kernel_s}, max_recoveries: 3 }}",
        15 + slots
    ))?;
    if l.virtual_pis {
        for s in site["slots"].as_sequence_mut().into_iter().flatten() {
            set(s, "kind", "qemu-raspi3b");
        }
        // The PL011 is the console QEMU keeps (the HIL image's initramfs comes
        // with the image, in the config.txt rendered for it).
        set(&mut site["boot"], "console", "console=ttyAMA0,115200");
    }
    set(&mut site, "watchdog", watchdog);
    if let Some(key) = l.ssh_key {
        for o in site["owners"].as_sequence_mut().into_iter().flatten() {
            match o.get_mut("ssh_keys").and_then(Value::as_sequence_mut) {
                Some(keys) => keys.push(key.into()),
                None => set(o, "ssh_keys", vec![Value::from(key)]),
            }
        }
    }
    let mut exports = Mapping::new();
    exports.insert("backend".into(), "ganesha".into());
    exports.insert("file".into(), path(l.exports_file));
    exports.insert("ganesha_pid_file".into(), path(l.ganesha_pid_file));
    set(&mut site, "exports", exports);
    let yaml = format!(
        "# Made by `pirack demo` from {name}; remade on every run.\n{}",
        serde_yaml::to_string(&site)?
    );
    Ok(DemoSite {
        yaml,
        slots: kept,
        switch_port,
        switch_ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout<'static> {
        Layout {
            export_root: Path::new("/d/export"),
            boot_files: Path::new("/d/boot"),
            exports_file: Path::new("/d/nfs/exports.conf"),
            ganesha_pid_file: Path::new("/d/nfs/ganesha.pid"),
            community_env: "DEMO_COMMUNITY",
            virtual_pis: false,
            ssh_key: None,
        }
    }

    fn shipped(name: &str) -> String {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        std::fs::read_to_string(checkout.join(name)).unwrap()
    }

    #[test]
    fn cuts_the_example_to_the_slots_and_points_it_at_the_demo() {
        let name = example_for(3).unwrap();
        let d = derive(name, &shipped(name), 3, &layout()).unwrap();
        let positions: Vec<&str> = d.slots.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(positions, ["A-01", "A-02", "A-03"]);
        assert_eq!((d.switch_port, d.switch_ports), (16161, 10));
        let site: Value = serde_yaml::from_str(&d.yaml).unwrap();
        assert_eq!(site["boards"].as_sequence().unwrap().len(), 3);
        assert_eq!(site["fileserver"]["export_root"], "/d/export");
        assert_eq!(
            site["switches"][0]["snmp"]["community"]["env"],
            "DEMO_COMMUNITY"
        );
        assert_eq!(site["exports"]["backend"], "ganesha");
        assert_eq!(site["watchdog"]["tftp_s"], 18);
    }

    #[test]
    fn slots_without_an_owner_go_to_the_first_customer_and_the_shelf_serves_more() {
        let name = example_for(8).unwrap();
        let d = derive(name, &shipped(name), 8, &layout()).unwrap();
        assert_eq!(d.slots[6], ("A-07".to_string(), "acme".to_string()));
        let name = example_for(96).unwrap();
        let d = derive(name, &shipped(name), 96, &layout()).unwrap();
        assert_eq!(d.slots.len(), 96);
        let site: Value = serde_yaml::from_str(&d.yaml).unwrap();
        assert_eq!(site["switches"][0]["snmp"]["version"], "v2c");
        assert!(example_for(0).is_err() && example_for(97).is_err());
    }

    #[test]
    fn virtual_pis_boot_under_qemu_with_a_patient_watchdog() {
        let name = example_for(2).unwrap();
        let l = Layout {
            virtual_pis: true,
            ssh_key: Some("ssh-ed25519 AAAA hil"),
            ..layout()
        };
        let d = derive(name, &shipped(name), 2, &l).unwrap();
        let site: Value = serde_yaml::from_str(&d.yaml).unwrap();
        assert_eq!(site["slots"][1]["kind"], "qemu-raspi3b");
        for owner in site["owners"].as_sequence().unwrap() {
            let keys = owner["ssh_keys"].as_sequence().unwrap();
            assert_eq!(keys.last().unwrap(), "ssh-ed25519 AAAA hil", "{owner:?}");
        }
        assert_eq!(site["boot"]["console"], "console=ttyAMA0,115200");
        assert_eq!(site["watchdog"]["nfs_mounted_s"], 75);
    }
}

//! Virtual Pi 3 slots (`kind: qemu-raspi3b`) for hardware-in-loop runs. QEMU's
//! raspi3b has no boot ROM and no on-board NIC, so the slot's boot ROM, bootcode.bin
//! and start.elf are played from the slot's firmware namespace (DHCP and TFTP
//! against the controller itself, as the firmware does them), and QEMU boots what
//! start.elf fetched: the kernel, device tree, initramfs and command line, with a
//! usb-net NIC carrying the board's MAC on a tap joined to the slot's storage
//! network. Power is QEMU: on starts the firmware stage and then QEMU, off kills
//! both; each slot's serial console goes to its own log.
//!
//! The names below are the contract with whatever builds the network around the
//! controller (`pirack hil`): the QEMU driver finds the parts by them.

pub mod driver;

use std::path::Path;

/// The namespace a virtual slot's firmware stage runs in, with the board's MAC on
/// its `eth0`, linked to the slot's storage network.
pub fn firmware_netns(prefix: &str, position: &str) -> String {
    format!("{prefix}-{}", position.to_ascii_lowercase())
}

/// The tap QEMU's NIC uses, in the controller's namespace, joined to the slot's
/// storage network (under the 15-byte interface name limit for any VLAN).
pub fn tap(vlan: u16) -> String {
    format!("pirack-tap{vlan}")
}

/// Where start.elf's files were written for QEMU.
pub struct Loaded<'a> {
    pub kernel: &'a Path,
    pub device_tree: &'a Path,
    pub initramfs: Option<&'a Path>,
    pub cmdline: &'a str,
}

/// QEMU's arguments for a Pi 3 B booting `loaded`: the PL011 (the first serial
/// port, `console=ttyAMA0`) appended to `console`, the mini UART unused, no
/// display, and a usb-net NIC with the board's `mac` on `tap`.
pub fn qemu_args(loaded: &Loaded, mac: &str, tap: &str, console: &Path) -> Vec<String> {
    let mut args: Vec<String> = ["-M", "raspi3b", "-display", "none", "-no-reboot"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push("-kernel".into());
    args.push(loaded.kernel.display().to_string());
    args.push("-dtb".into());
    args.push(loaded.device_tree.display().to_string());
    if let Some(initrd) = loaded.initramfs {
        args.push("-initrd".into());
        args.push(initrd.display().to_string());
    }
    args.push("-append".into());
    args.push(loaded.cmdline.to_string());
    args.push("-chardev".into());
    args.push(format!(
        "file,id=console,path={},append=on",
        console.display()
    ));
    args.extend(["-serial", "chardev:console", "-serial", "null"].map(String::from));
    args.push("-netdev".into());
    args.push(format!("tap,id=net,ifname={tap},script=no,downscript=no"));
    args.push("-device".into());
    args.push(format!("usb-net,netdev=net,mac={mac}"));
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_gets_the_fetched_files_the_plans_cmdline_and_the_boards_mac() {
        let loaded = Loaded {
            kernel: Path::new("/r/kernel8.img"),
            device_tree: Path::new("/r/bcm2710-rpi-3-b.dtb"),
            initramfs: Some(Path::new("/r/initrd.img")),
            cmdline: "console=ttyAMA0,115200 root=/dev/nfs",
        };
        let args = qemu_args(
            &loaded,
            "b8:27:eb:85:c0:f2",
            &tap(17),
            Path::new("/r/console.log"),
        );
        let line = args.join(" ");
        assert!(line.starts_with("-M raspi3b "), "{line}");
        assert!(
            line.contains(
                "-kernel /r/kernel8.img -dtb /r/bcm2710-rpi-3-b.dtb -initrd /r/initrd.img"
            )
        );
        assert!(args.contains(&"console=ttyAMA0,115200 root=/dev/nfs".to_string()));
        assert!(line.contains("ifname=pirack-tap17,"));
        assert!(line.ends_with("usb-net,netdev=net,mac=b8:27:eb:85:c0:f2"));
        assert!(tap(4094).len() <= 15);
        assert_eq!(firmware_netns("pirack-hil-7", "V-01"), "pirack-hil-7-v-01");
    }
}

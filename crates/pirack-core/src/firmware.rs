//! What the Pi 3 firmware (start.elf) reads from config.txt to choose the files it
//! asks for: the simulator plays it, the controller recognises the kernel by it.

use crate::inventory::Model;
use std::collections::BTreeMap;

/// What start.elf reads from config.txt to choose its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub kernel: String,
    pub device_tree: String,
    pub initramfs: Option<String>,
    pub overlays: Vec<String>,
    pub arm64: bool,
}

impl Config {
    pub fn parse(text: &str, model: Model) -> Config {
        let mut kv: BTreeMap<&str, &str> = BTreeMap::new();
        let mut overlays = Vec::new();
        let mut initramfs = None;
        for line in text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
        {
            if let Some(rest) = line.strip_prefix("initramfs ") {
                initramfs = rest.split_whitespace().next().map(str::to_string);
            } else if let Some((k, v)) = line.split_once('=') {
                if k.trim() == "dtoverlay" {
                    overlays.push(v.split(',').next().unwrap_or("").trim().to_string());
                } else {
                    kv.insert(k.trim(), v.trim());
                }
            }
        }
        let arm64 = kv.get("arm_64bit").is_some_and(|v| *v == "1");
        let default_kernel = if arm64 { "kernel8.img" } else { "kernel7.img" };
        let default_dtb = match model {
            Model::Pi3B => "bcm2710-rpi-3-b.dtb",
            Model::Pi3BPlus => "bcm2710-rpi-3-b-plus.dtb",
        };
        Config {
            kernel: kv.get("kernel").unwrap_or(&default_kernel).to_string(),
            device_tree: kv.get("device_tree").unwrap_or(&default_dtb).to_string(),
            initramfs,
            overlays: overlays.into_iter().filter(|o| !o.is_empty()).collect(),
            arm64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_txt_drives_the_file_list() {
        let c = Config::parse(
            "# x\narm_64bit=1\nkernel=vmlinuz\ninitramfs initrd.img followkernel\ndtoverlay=vc4-kms-v3d,foo\n",
            Model::Pi3BPlus,
        );
        assert_eq!(c.kernel, "vmlinuz");
        assert_eq!(c.device_tree, "bcm2710-rpi-3-b-plus.dtb");
        assert_eq!(c.initramfs.as_deref(), Some("initrd.img"));
        assert_eq!(c.overlays, ["vc4-kms-v3d"]);
        assert!(c.arm64);
        assert_eq!(Config::parse("", Model::Pi3B).kernel, "kernel7.img");
    }
}

//! Per-slot files: the boot files the Pi fetches over TFTP and the files its NFS
//! root needs to come up as itself.

use super::{Tree, header};
use crate::inventory::Site;
use crate::plan::SlotPlan;

pub fn render(site: &Site, s: &SlotPlan, tree: &mut Tree) {
    let dir = format!("slots/{}", s.position);
    let who = format!("slot {} ({})", s.position, s.key);
    tree.insert(format!("{dir}/boot/cmdline.txt"), cmdline(site, s));
    tree.insert(format!("{dir}/boot/config.txt"), config_txt(site, s));
    tree.insert(
        format!("{dir}/root/etc/hostname"),
        format!("{}\n", s.hostname),
    );
    tree.insert(format!("{dir}/root/etc/hosts"), hosts(s, &who));
    tree.insert(format!("{dir}/root/etc/fstab"), fstab(s, &who));
    tree.insert(
        format!("{dir}/root/etc/network/interfaces.d/pirack"),
        interfaces(s, &who),
    );
}

/// The kernel command line: a static `ip=` (no third DHCP exchange) and the NFS root
/// over NFSv3/TCP, between the site's console and extra arguments.
pub fn cmdline(site: &Site, s: &SlotPlan) -> String {
    cmdline_for(site, s, "")
}

/// As [`cmdline`], for a slot booting an image whose own part of the command line
/// is `image_part`: the image's first, then the site's, which override it.
pub fn cmdline_for(site: &Site, s: &SlotPlan, image_part: &str) -> String {
    let own = format!(
        "root=/dev/nfs rootfstype=nfs ip={}::{}:{}::eth0:off nfsroot={}:{},vers=3,tcp",
        s.pi_ip,
        s.fileserver_ip,
        s.netmask(),
        s.fileserver_ip,
        s.root
    );
    let parts = [
        image_part,
        site.boot.console.as_str(),
        &own,
        &site.boot.kernel_args,
        "rootwait",
    ];
    let words: Vec<&str> = parts.iter().flat_map(|p| p.split_whitespace()).collect();
    words.join(" ") + "\n"
}

/// config.txt: the site's lines under a header naming the slot.
pub fn config_txt(site: &Site, s: &SlotPlan) -> String {
    config_txt_for(site, s, None)
}

/// The boot files of an image that config.txt names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageFiles<'a> {
    pub kernel: &'a str,
    pub initramfs: Option<&'a str>,
}

/// As [`config_txt`], for a slot booting an image: its `kernel=` and
/// `initramfs` first, then the site's lines, which override them.
pub fn config_txt_for(site: &Site, s: &SlotPlan, image: Option<ImageFiles>) -> String {
    let mut config = header(
        "#",
        &format!("config.txt of slot {} ({})", s.position, s.key),
    );
    if let Some(i) = image {
        config += &format!("kernel={}\n", i.kernel);
        if let Some(initramfs) = i.initramfs {
            config += &format!("initramfs {initramfs} followkernel\n");
        }
    }
    for line in &site.boot.config_txt {
        config += line;
        config.push('\n');
    }
    config
}

fn names(s: &SlotPlan) -> String {
    match &s.fqdn {
        Some(f) => format!("{f} {}", s.hostname),
        None => s.hostname.clone(),
    }
}

fn hosts(s: &SlotPlan, who: &str) -> String {
    format!(
        "{}127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n\n{}\t{}\n{}\t{}\n",
        header("#", &format!("/etc/hosts of {who}")),
        s.ipv6,
        names(s),
        s.fileserver_ip,
        s.fileserver
    )
}

fn fstab(s: &SlotPlan, who: &str) -> String {
    format!(
        "{}# The root is the NFS export the kernel mounted; nothing lives on an SD card.\nproc\t/proc\tproc\tdefaults\t0\t0\n{}:{}\t/\tnfs\trw,vers=3,tcp,nolock,noatime\t0\t0\ntmpfs\t/tmp\ttmpfs\tdefaults,nosuid,nodev\t0\t0\n",
        header("#", &format!("/etc/fstab of {who}")),
        s.fileserver_ip,
        s.root
    )
}

fn interfaces(s: &SlotPlan, who: &str) -> String {
    format!(
        "{}# Install as /etc/network/interfaces.d/pirack in the Pi's root.\n\
         # eth0 carries the NFS root: the kernel set it up from ip= and nothing may take it down.\n\
         iface eth0 inet manual\n\n\
         # Public VLAN {vlan}, tagged on the Pi's port.\n\
         auto eth0.{vlan}\niface eth0.{vlan} inet6 static\n    address {}/{}\n    gateway {}\n    vlan-raw-device eth0\n    accept_ra 0\n",
        header("#", &format!("Network of {who}")),
        s.ipv6,
        s.ipv6_on_link,
        s.ipv6_gateway,
        vlan = s.public_vlan,
    )
}

//! The fileserver's storage VLAN interfaces, for ifupdown and for systemd-networkd,
//! each with strict reverse-path filtering: a packet that claims a source address
//! another interface routes to (a Pi posing as another slot's) is dropped by the
//! kernel before pirack sees it.

use super::{Tree, header, per_fileserver};
use crate::inventory::{Fileserver, Site};
use crate::plan::Plan;

/// `fs`'s files, under `fileserver/` (`fileserver/<name>/` when the site has
/// several), for the slots it serves.
pub fn render(site: &Site, fs: &Fileserver, plan: &Plan, tree: &mut Tree) {
    let trunk = &fs.trunk_interface;
    let top = per_fileserver(site, "fileserver", fs);
    let slots = || plan.slots.iter().filter(|s| s.fileserver == fs.name);
    let mut ifupdown = header(
        "#",
        &format!("Storage VLAN interfaces of site {}", site.name),
    );
    ifupdown += "# Install as /etc/network/interfaces.d/pirack.\n";
    for s in slots() {
        ifupdown += &format!(
            "\n# slot {} ({}), VLAN {}\nauto {if}\niface {if} inet static\n    address {}\n    netmask {}\n    vlan-raw-device {trunk}\n    post-up sysctl -qw {}=1\n",
            s.position,
            s.key,
            s.vlan,
            s.fileserver_ip,
            s.netmask(),
            rp_filter(&s.interface),
            if = s.interface,
        );
    }
    tree.insert(format!("{top}/ifupdown/pirack"), ifupdown);

    // systemd applies sysctl.d to each interface as it appears, whichever of
    // ifupdown or systemd-networkd made it; an explicit key overrides the
    // distribution's loose `*` default.
    let mut sysctl = header(
        "#",
        &format!(
            "Strict reverse-path filtering on site {}'s storage VLANs",
            site.name
        ),
    );
    sysctl += "# Install in /etc/sysctl.d/.\n";
    for s in slots() {
        sysctl += &format!("{} = 1\n", rp_filter(&s.interface));
    }
    tree.insert(format!("{top}/sysctl.d/90-pirack-rp-filter.conf"), sysctl);

    let dir = format!("{top}/systemd-networkd");
    let mut trunk_net = header("#", &format!("Trunk {trunk} carrying the storage VLANs"));
    trunk_net += &format!(
        "# Install in /etc/systemd/network/; put any other settings for {trunk} in a\n# drop-in directory 10-pirack-{trunk}.network.d/.\n\n[Match]\nName={trunk}\n\n[Network]\n"
    );
    for s in slots() {
        trunk_net += &format!("VLAN={}\n", s.interface);
    }
    tree.insert(format!("{dir}/10-pirack-{trunk}.network"), trunk_net);
    for s in slots() {
        let what = format!("Storage VLAN {} of slot {} ({})", s.vlan, s.position, s.key);
        tree.insert(
            format!("{dir}/20-pirack-{}.netdev", s.interface),
            format!(
                "{}\n[NetDev]\nName={}\nKind=vlan\n\n[VLAN]\nId={}\n",
                header("#", &what),
                s.interface,
                s.vlan
            ),
        );
        tree.insert(
            format!("{dir}/20-pirack-{}.network", s.interface),
            format!(
                "{}\n[Match]\nName={}\n\n[Network]\nAddress={}/{}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nConfigureWithoutCarrier=yes\n\n[Link]\nRequiredForOnline=no\n",
                header("#", &what),
                s.interface,
                s.fileserver_ip,
                s.storage.prefix_len()
            ),
        );
    }
}

/// The interface's rp_filter key, its dots written as slashes (sysctl.d(5)).
fn rp_filter(interface: &str) -> String {
    format!("net.ipv4.conf.{}.rp_filter", interface.replace('.', "/"))
}

//! The fileserver's storage VLAN interfaces, for ifupdown and for systemd-networkd.

use super::{Tree, header};
use crate::inventory::Site;
use crate::plan::Plan;

pub fn render(site: &Site, plan: &Plan, tree: &mut Tree) {
    let trunk = &site.fileserver.trunk_interface;
    let mut ifupdown = header(
        "#",
        &format!("Storage VLAN interfaces of site {}", site.name),
    );
    ifupdown += "# Install as /etc/network/interfaces.d/pirack.\n";
    for s in &plan.slots {
        ifupdown += &format!(
            "\n# slot {} ({}), VLAN {}\nauto {if}\niface {if} inet static\n    address {}\n    netmask {}\n    vlan-raw-device {trunk}\n",
            s.position,
            s.key,
            s.vlan,
            s.fileserver_ip,
            s.netmask(),
            if = s.interface,
        );
    }
    tree.insert("fileserver/ifupdown/pirack".into(), ifupdown);

    let dir = "fileserver/systemd-networkd";
    let mut trunk_net = header("#", &format!("Trunk {trunk} carrying the storage VLANs"));
    trunk_net += &format!(
        "# Install in /etc/systemd/network/; put any other settings for {trunk} in a\n# drop-in directory 10-pirack-{trunk}.network.d/.\n\n[Match]\nName={trunk}\n\n[Network]\n"
    );
    for s in &plan.slots {
        trunk_net += &format!("VLAN={}\n", s.interface);
    }
    tree.insert(format!("{dir}/10-pirack-{trunk}.network"), trunk_net);
    for s in &plan.slots {
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

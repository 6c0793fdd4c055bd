//! The simulator's network: one namespace per Pi, joined by a veth pair to the
//! controller's side, where the end carries the slot's interface name and the
//! fileserver address (standing in for the switch port and its VLAN, which this
//! kernel cannot make). Everything made is removed when the lab is dropped.

use crate::testbed::TestbedError;
use crate::testbed::netns::ip_batch;

/// One Pi's link: its namespace, and the controller-side interface.
#[derive(Debug, Clone)]
pub struct PiLink {
    pub netns: String,
    pub controller_if: String,
    pub fileserver_cidr: String,
    pub mac: String,
    /// The Pi's public IPv6 address, reachable from the controller over the same
    /// link (standing in for the tagged public VLAN).
    pub public: String,
}

/// The controller's own address on the stand-in public network.
pub const CONTROLLER_PUBLIC: &str = "fd00:7069:7261:636b::1";

/// The namespaces and links made for a run; removed on drop.
pub struct Lab {
    namespaces: Vec<String>,
    controller_netns: Option<String>,
    controller_ifs: Vec<String>,
}

impl Lab {
    /// Makes every Pi's namespace and link. `controller_netns` is where the
    /// controller runs (`None`: this process's namespace).
    pub fn build(links: &[PiLink], controller_netns: Option<&str>) -> Result<Lab, TestbedError> {
        // Recorded first, so a failure half-way still cleans up what was made.
        let lab = Lab {
            namespaces: links.iter().map(|l| l.netns.clone()).collect(),
            controller_netns: controller_netns.map(str::to_string),
            controller_ifs: links.iter().map(|l| l.controller_if.clone()).collect(),
        };
        let create: String = links
            .iter()
            .map(|l| format!("netns add {}\n", l.netns))
            .collect();
        ip_batch(None, &create)?;
        let mut veths = String::new();
        for l in links {
            let ctl = controller_netns.map_or(String::new(), |n| format!(" netns {n}"));
            veths += &format!(
                "link add {}{ctl} type veth peer name eth0 netns {} address {}\n",
                l.controller_if, l.netns, l.mac
            );
        }
        ip_batch(None, &veths)?;
        let mut ctl = String::new();
        for l in links {
            ip_batch(
                Some(&l.netns),
                &format!(
                    "link set lo up\nlink set eth0 up\naddr add {}/128 dev eth0 nodad\n\
                     route add {CONTROLLER_PUBLIC}/128 dev eth0\n",
                    l.public
                ),
            )?;
            // The controller's public address sits on every link: Linux answers
            // neighbour solicitations only for the receiving interface's addresses.
            let i = &l.controller_if;
            ctl += &format!(
                "addr add {} dev {i}\naddr add {CONTROLLER_PUBLIC}/128 dev {i} nodad\n\
                 link set {i} up\nroute add {}/128 dev {i}\n",
                l.fileserver_cidr, l.public
            );
        }
        ip_batch(controller_netns, &ctl)?;
        Ok(lab)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The kernel removes a deleted namespace's veths lazily; delete the
        // controller's ends first so the names are free again at once.
        let links: String = self
            .controller_ifs
            .iter()
            .map(|i| format!("link del {i}\n"))
            .collect();
        let spaces: String = self
            .namespaces
            .iter()
            .map(|n| format!("netns del {n}\n"))
            .collect();
        for (ns, batch) in [(self.controller_netns.as_deref(), links), (None, spaces)] {
            if !batch.is_empty()
                && let Err(e) = ip_batch(ns, &batch)
            {
                tracing::warn!("cleaning up the simulator's network: {e}");
            }
        }
    }
}

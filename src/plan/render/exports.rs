//! NFS exports in the kernel's exports(5) form: each root to its own Pi only.

use super::header;
use crate::inventory::Site;
use crate::plan::Plan;

pub fn render(site: &Site, plan: &Plan) -> String {
    let mut out = header("#", &format!("NFS exports of site {}", site.name));
    out += "# One root per Pi, exported only to that Pi's storage address. The explicit\n";
    out += "# fsid keeps file handles stable whatever filesystem holds the root.\n";
    for s in &plan.slots {
        out += &format!(
            "{} {}(rw,sync,no_subtree_check,no_root_squash,fsid={})\n",
            s.root, s.pi_ip, s.fsid
        );
    }
    out
}

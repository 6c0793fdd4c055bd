//! NFS exports, for the kernel's nfsd (exports(5)) and for NFS-Ganesha: each root
//! to its own Pi's address only, read-write, root not squashed.

use super::header;
use crate::inventory::Site;
use crate::plan::SlotPlan;

/// The port NFS is served on, whichever server exports the roots.
pub const NFS_PORT: u16 = 2049;

/// exports(5) lines for `slots`, each with its explicit fsid.
pub fn kernel<'a>(site: &Site, slots: impl IntoIterator<Item = &'a SlotPlan>) -> String {
    let mut out = header("#", &format!("NFS exports of site {}", site.name));
    out += "# One root per Pi, exported only to that Pi's storage address. The explicit\n";
    out += "# fsid keeps file handles stable whatever filesystem holds the root.\n";
    for s in slots {
        out += &format!(
            "{} {}(rw,sync,no_subtree_check,no_root_squash,fsid={})\n",
            s.root, s.pi_ip, s.fsid
        );
    }
    out
}

/// A ganesha.conf for serving the slots' roots: NFSv3 and v4 on the standard ports
/// (the Pis' initramfs mounts with `port=2049,mountport=20048`), no lock or quota
/// services, no grace period, directory caching off (roots change behind ganesha's
/// back), and the EXPORT blocks pirack writes to `exports` included.
pub fn ganesha_server(exports: &std::path::Path) -> String {
    format!(
        "NFS_CORE_PARAM {{ Protocols = 3, 4; NFS_Port = 2049; MNT_Port = 20048; \
         Enable_NLM = false; Enable_RQUOTA = false; }}\nNFSV4 {{ Graceless = true; }}\n\
         MDCACHE {{ Dir_Chunk = 0; }}\n%include \"{}\"\n",
        exports.display()
    )
}

/// Ganesha EXPORT blocks for `slots`: NFSv3 over TCP (what the Pis mount), access
/// none by default and read-write for the slot's Pi alone.
pub fn ganesha<'a>(site: &Site, slots: impl IntoIterator<Item = &'a SlotPlan>) -> String {
    let mut out = header("#", &format!("NFS-Ganesha exports of site {}", site.name));
    out += "# %include this file from ganesha.conf; pirack sends SIGHUP after each change.\n";
    for s in slots {
        out += &format!(
            "\n# slot {} ({})\nEXPORT {{\n    Export_Id = {};\n    Path = \"{}\";\n    Pseudo = \"{}\";\n    Protocols = 3;\n    Transports = TCP;\n    Access_Type = None;\n    Squash = No_Root_Squash;\n    SecType = sys;\n    FSAL {{ Name = VFS; }}\n    CLIENT {{ Clients = {}; Access_Type = RW; }}\n}}\n",
            s.position, s.key, s.fsid, s.root, s.root, s.pi_ip
        );
    }
    out
}

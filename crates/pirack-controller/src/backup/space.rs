//! Each target's free space: `statvfs` of a path target (or of its nearest
//! existing parent, before the first repository), and for an SFTP target
//! the server's own figures through OpenSSH's `df` (`statvfs@openssh.com`),
//! logged in as restic is. restic's REST protocol does not say: a REST
//! target's space is the server's to watch. Blocking.

use pirack_core::backup::plan::{Place, SiteBackup};
use pirack_core::backup::space::{Space, sftp_df};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

/// Each path and SFTP target's space, or why it could not be read.
pub fn measure(b: &SiteBackup) -> Vec<(String, Result<Space, String>)> {
    b.targets
        .iter()
        .filter_map(|t| {
            let found = match &t.place {
                Place::Path(p) => local(p),
                Place::Sftp(s) => sftp(s),
                Place::Rest { .. } => return None,
            };
            Some((t.name.clone(), found))
        })
        .collect()
}

fn local(path: &Path) -> Result<Space, String> {
    let at = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let v = nix::sys::statvfs::statvfs(at).map_err(|e| format!("{}: {e}", at.display()))?;
    let unit = v.fragment_size();
    Ok(Space {
        total: v.blocks() * unit,
        free: v.blocks_available() * unit,
    })
}

fn sftp(s: &pirack_core::backup::model::Sftp) -> Result<Space, String> {
    let login = super::restic::ssh_login(s)?;
    let mut child = crate::roots::command("sftp")
        .args(["-b", "-", "-q", "-P", &s.port.to_string()])
        .args(&login)
        .arg(format!("{}@{}", s.user, s.host))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running sftp: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A path with a space or quote would not survive sftp's batch syntax.
        let path = s.path.replace(['"', '\n'], "");
        let _ = writeln!(stdin, "df \"{path}\"");
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for sftp: {e}"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let last = said.lines().rev().find(|l| !l.trim().is_empty());
        return Err(pirack_core::text::printable(
            last.unwrap_or("sftp failed without a word"),
        ));
    }
    sftp_df(&String::from_utf8_lossy(&out.stdout)).map_err(|e| e.to_string())
}

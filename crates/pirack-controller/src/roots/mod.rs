//! Per-Pi NFS roots on the fileserver. `image` keeps imported images; `clone`
//! makes a root from one as cheaply as the export filesystem allows; `customise`
//! makes it one slot's Pi; `slot_root` builds, swaps, rolls back and deletes a
//! slot's root; `exports` has the NFS server export the roots.

pub mod clone;
pub mod customise;
pub mod exports;
pub mod image;
pub mod qualification;
pub mod slot_root;

pub use clone::{CloneError, Method, best_method, clone_tree, remove_tree};
pub use customise::{CustomiseError, customise};

/// A command that dies with pirack: a `cp` or `ssh-keygen` left running by a
/// killed pirack would go on writing into a tree the next run is rebuilding.
pub(crate) fn command(program: &str) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(program);
    // SAFETY: prctl is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

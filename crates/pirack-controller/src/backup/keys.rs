//! The repositories' keys: made by pirack the first time a repository is
//! used (32 random bytes, hex), kept as `<keys>/<target>/<owner>.key`, mode
//! 0600 in a 0700 directory. Lose one and its repository cannot be read: the
//! README says to back the key directory up apart from the backups.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Makes `path` with a new key unless it exists; refuses one others can read.
pub fn ensure(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => Err(std::io::Error::other(format!(
            "{} is readable by others; chmod 600 it",
            path.display()
        ))),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = crate::store::random_hex(32)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            f.write_all(key.as_bytes())?;
            f.sync_all()
        }
        Err(e) => Err(e),
    }
}

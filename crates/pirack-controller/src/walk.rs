//! Walking a directory tree without following symbolic links out of it.

use std::io;
use std::path::{Path, PathBuf};

/// A directory entry that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}", path.display())]
pub struct WalkError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// Every entry below `dir` that is not a directory (files, symlinks, devices), as
/// sorted `/`-separated relative paths. Symlinks are listed, never walked into.
pub fn files(dir: &Path) -> Result<Vec<String>, WalkError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WalkError { path, source }
    };
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(err(&d))? {
            let entry = entry.map_err(err(&d))?;
            let path = entry.path();
            if entry.file_type().map_err(err(&path))?.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

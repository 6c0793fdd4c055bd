//! Writing what the plan renders: a tree of files into a directory (and comparing
//! one with it), and the ledger beside the inventory. The directory is pirack's
//! own: files the plan no longer has are removed, so a marker file guards against
//! pointing it at a directory that holds anything else.

use pirack_core::plan::Ledger;
use pirack_core::plan::render::Tree;
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

/// Marks a directory as pirack plan output.
pub const MARKER: &str = ".pirack-plan";
const MARKER_TEXT: &str =
    "This directory is written by `pirack plan`: edits here are overwritten.\n";

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{} is not empty and not a pirack plan directory (no {MARKER}); refusing to write into it", .0.display())]
    Foreign(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `ledger` to `path` atomically (temporary file, then rename), so a
/// crash never leaves half a ledger behind.
pub fn save_ledger(ledger: &Ledger, path: &Path) -> Result<(), OutputError> {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, ledger.to_yaml()).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// What a write changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
}

/// Every file under `dir` as relative `/`-separated paths, marker excluded; a
/// symlink is a file here, never walked into (so never emptied by a prune).
fn existing_files(dir: &Path) -> Result<BTreeSet<String>, OutputError> {
    if !dir.exists() {
        return Ok(BTreeSet::new());
    }
    let files = crate::walk::files(dir).map_err(|e| OutputError::Io {
        path: e.path,
        source: e.source,
    })?;
    Ok(files.into_iter().filter(|f| f != MARKER).collect())
}

/// Makes `dir` hold exactly `tree`, rewriting only files whose content differs.
pub fn write_tree(dir: &Path, tree: &Tree) -> Result<WriteReport, OutputError> {
    let existing = existing_files(dir)?;
    let marker = dir.join(MARKER);
    let empty = std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none());
    if !empty && !marker.exists() {
        return Err(OutputError::Foreign(dir.to_path_buf()));
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    std::fs::write(&marker, MARKER_TEXT).map_err(io_err(&marker))?;
    let mut report = WriteReport::default();
    for (rel, content) in tree {
        let path = dir.join(rel);
        if std::fs::read(&path).is_ok_and(|old| old == content.as_bytes()) {
            report.unchanged += 1;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        std::fs::write(&path, content).map_err(io_err(&path))?;
        report.written += 1;
    }
    for rel in existing.iter().filter(|r| !tree.contains_key(*r)) {
        let path = dir.join(rel);
        std::fs::remove_file(&path).map_err(io_err(&path))?;
        report.removed += 1;
        // Drop directories the removal emptied, up to the output root.
        let mut parent = path.parent();
        while let Some(p) = parent.filter(|p| *p != dir) {
            if std::fs::remove_dir(p).is_err() {
                break;
            }
            parent = p.parent();
        }
    }
    Ok(report)
}

/// Unified diffs from what `dir` holds to what `tree` would write; empty when equal.
pub fn diff_tree(dir: &Path, tree: &Tree) -> Result<String, OutputError> {
    let existing = existing_files(dir)?;
    let mut out = String::new();
    let paths: BTreeSet<&String> = existing.iter().chain(tree.keys()).collect();
    for rel in paths {
        let path = dir.join(rel);
        let old = match existing.contains(rel) {
            true => Some(
                String::from_utf8_lossy(&std::fs::read(&path).map_err(io_err(&path))?).into_owned(),
            ),
            false => None,
        };
        let new = tree.get(rel);
        if old.as_ref() == new {
            continue;
        }
        let (a, b) = (
            old.as_ref()
                .map_or("/dev/null".into(), |_| format!("a/{rel}")),
            new.map_or("/dev/null".into(), |_| format!("b/{rel}")),
        );
        let diff = similar::TextDiff::from_lines(
            old.as_deref().unwrap_or(""),
            new.map_or("", |s| s.as_str()),
        );
        out += &diff
            .unified_diff()
            .context_radius(3)
            .header(&a, &b)
            .to_string();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_checks_and_prunes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let mut tree = Tree::new();
        tree.insert("a/x.txt".into(), "one\n".into());
        tree.insert("b/y.txt".into(), "two\n".into());
        assert_eq!(write_tree(&dir, &tree).unwrap().written, 2);
        assert_eq!(diff_tree(&dir, &tree).unwrap(), "");

        tree.insert("a/x.txt".into(), "uno\n".into());
        tree.remove("b/y.txt");
        let diff = diff_tree(&dir, &tree).unwrap();
        assert!(diff.contains("--- a/a/x.txt\n+++ b/a/x.txt\n"), "{diff}");
        assert!(diff.contains("-one\n+uno\n"), "{diff}");
        assert!(diff.contains("--- a/b/y.txt\n+++ /dev/null\n"), "{diff}");

        let report = write_tree(&dir, &tree).unwrap();
        assert_eq!(
            report,
            WriteReport {
                written: 1,
                unchanged: 0,
                removed: 1
            }
        );
        assert!(!dir.join("b").exists(), "emptied directory removed");
        assert_eq!(diff_tree(&dir, &tree).unwrap(), "");
    }

    #[test]
    fn never_follows_a_symlink_out_of_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        let dir = tmp.path().join("out");
        write_tree(&dir, &Tree::new()).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
        let report = write_tree(&dir, &Tree::new()).unwrap();
        assert_eq!(report.removed, 1, "the link itself is pruned");
        assert!(outside.join("keep").exists());
    }

    #[test]
    fn refuses_a_foreign_directory() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("precious"), "x").unwrap();
        let err = write_tree(tmp.path(), &Tree::new()).unwrap_err();
        assert!(matches!(err, OutputError::Foreign(_)));
        assert!(tmp.path().join("precious").exists());
    }
}

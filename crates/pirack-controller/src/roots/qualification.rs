//! An image's qualification: the verdict of `pirack image qualify`, which boots
//! the image on virtual Pi 3s and runs staff's checks on them. Kept beside the
//! image's manifest (`<store>/<id>/qualification.yaml`) and not in it, since an
//! image never changes after import while it may be qualified again; tied to
//! the root it judged by the root's checksum, so a verdict can never speak for
//! other contents.

use super::image::{self, ImageError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A qualification run's verdict on an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Qualification {
    /// Every virtual Pi reached `up` and passed every check.
    pub passed: bool,
    /// When the run ended, in ms since the Unix epoch.
    pub at: i64,
    /// `2 of 2 virtual Pis passed`.
    pub summary: String,
    /// Each boot and check on each Pi: `pass A-01 exec `uname -m``.
    pub checks: Vec<String>,
    /// The root checksum of the image it judged.
    pub root: String,
}

const FILE: &str = "qualification.yaml";

fn path(store: &Path, id: &str) -> PathBuf {
    store.join(id).join(FILE)
}

/// Records `q` as image `id`'s verdict, replacing any earlier one in one step
/// (a crash leaves the old verdict or the new, never half of one).
pub fn record(store: &Path, id: &str, q: &Qualification) -> Result<(), ImageError> {
    let m = image::show(store, id)?;
    if m.checksums.root != q.root {
        return Err(ImageError::Manifest {
            path: store.join(id).join("manifest.yaml"),
            detail: "the qualification judged another root than this image's".into(),
        });
    }
    let file = path(store, id);
    let tmp = file.with_extension(format!("yaml.{}.tmp", std::process::id()));
    let text = serde_yaml::to_string(q).expect("a qualification serialises");
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ImageError::Io { path: p, source }
    };
    std::fs::write(&tmp, text).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &file).map_err(io(&file))
}

/// Image `id`'s verdict, if it was ever qualified (and the verdict is about its
/// root as it is).
pub fn read(store: &Path, id: &str) -> Result<Option<Qualification>, ImageError> {
    let m = image::show(store, id)?;
    let file = path(store, id);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ImageError::Io { path: file, source }),
    };
    let q: Qualification = serde_yaml::from_str(&text).map_err(|e| ImageError::Manifest {
        path: file,
        detail: e.to_string(),
    })?;
    Ok((q.root == m.checksums.root).then_some(q))
}

/// Why provisioning with image `id` deserves a warning, if it does.
pub fn warning(store: &Path, id: &str) -> Option<String> {
    match read(store, id) {
        Ok(Some(q)) if q.passed => None,
        Ok(Some(q)) => Some(format!(
            "image {id} failed its qualification ({}); see `pirack image show {id}`",
            q.summary
        )),
        Ok(None) => Some(format!(
            "image {id} is not qualified: boot it on virtual Pis first (`pirack image qualify {id}`)"
        )),
        Err(e) => Some(format!("image {id}: its qualification cannot be read: {e}")),
    }
}

//! What each slot boots, kept with its root: the boot files of the image the root
//! came from (as the root's own record on disk says), with the slot's cmdline.txt
//! and config.txt rendered for that image; switched when a root build, reimage or
//! rollback puts a root in place, cleared when the root goes.

use crate::Controller;
use crate::error::OpError;
use crate::roots::{image, slot_root};
use crate::store::slots::Changes;
use pirack_core::inventory::Site;
use pirack_core::lifecycle::Trigger;
use pirack_core::plan::SlotPlan;
use pirack_core::plan::render::slot as rendered;
use pirack_netboot::boots::{Boots, SlotBoot};
use std::path::{Path, PathBuf};

/// The boot of `slot` from image `id` in the image store `images`.
pub fn of(
    site: &Site,
    slot: &SlotPlan,
    images: &Path,
    id: &str,
) -> Result<SlotBoot, image::ImageError> {
    let m = image::show(images, id)?;
    Ok(SlotBoot {
        image: id.to_string(),
        dir: images.join(id).join("boot"),
        cmdline: rendered::cmdline_for(site, slot, &m.cmdline)
            .into_bytes()
            .into(),
        config: rendered::config_txt_for(
            site,
            slot,
            Some(rendered::ImageFiles {
                kernel: &m.kernel,
                initramfs: m.initramfs.as_deref(),
            }),
        )
        .into_bytes()
        .into(),
    })
}

/// Where `bootcode.bin` comes from: the site's boot files, else the image
/// imported last.
pub fn bootcode(site_boot: &Path, images: &Path) -> Option<PathBuf> {
    let site = site_boot.join("bootcode.bin");
    if site.is_file() {
        return Some(site);
    }
    let ids = image::list(images).ok()?;
    ids.iter()
        .map(|m| images.join(m.id()).join("boot/bootcode.bin"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
}

/// Sets every slot's boot as the roots on disk are now.
pub fn fill(boots: &Boots, site: &Site, slots: &[SlotPlan], images: &Path, site_boot: &Path) {
    for s in slots {
        let built = match slot_root::record(site, s) {
            Ok(rec) => rec,
            Err(e) => {
                tracing::warn!("{}: its root's record: {e}", s.position);
                None
            }
        };
        if let Some(rec) = built {
            match of(site, s, images, &rec.image) {
                Ok(b) => boots.set(&s.position, Some(b)),
                Err(e) => tracing::warn!("{}: cannot boot image {}: {e}", s.position, rec.image),
            }
        }
    }
    boots.set_bootcode(bootcode(site_boot, images));
}

impl Controller {
    /// [`of`] for this controller's site and image store, off the async threads
    /// (it reads the image's manifest and lists its boot files).
    async fn boot_of(&self, slot: &SlotPlan, image: &str) -> Result<SlotBoot, image::ImageError> {
        let (site, slot, images, image) = (
            self.site.clone(),
            slot.clone(),
            self.paths.images.clone(),
            image.to_string(),
        );
        let store = images.clone();
        tokio::task::spawn_blocking(move || of(&site, &slot, &images, &image))
            .await
            .unwrap_or_else(|e| {
                Err(image::ImageError::Io {
                    path: store,
                    source: std::io::Error::other(e.to_string()),
                })
            })
    }

    /// Checks the slot can boot `image` before its root changes to it (a root is
    /// never put in place without its boot); if not, the slot is failed with an
    /// alert and the root left as it is.
    pub(crate) async fn boot_ready(
        &self,
        key: &str,
        slot: &SlotPlan,
        image: &str,
        what: &str,
    ) -> Result<(), OpError> {
        let Err(source) = self.boot_of(slot, image).await else {
            return Ok(());
        };
        let e = OpError::Image {
            id: image.to_string(),
            source,
        };
        let cause = format!("{what}: image {image} cannot be booted: {e}");
        if let Ok(row) = self
            .apply(key, Trigger::RootFailed, &cause, Changes::default())
            .await
        {
            self.note(&row, row.board.as_deref(), "alert", "boot", &cause)
                .await;
        }
        Err(e)
    }

    /// The slot boots `image` from now on (`None`: nothing but bootcode.bin).
    pub async fn boot_image(&self, slot: &SlotPlan, image: Option<&str>) -> Result<(), OpError> {
        let boot = match image {
            Some(id) => Some(
                self.boot_of(slot, id)
                    .await
                    .map_err(|source| OpError::Image {
                        id: id.to_string(),
                        source,
                    })?,
            ),
            None => None,
        };
        self.boots.set(&slot.position, boot);
        self.boots
            .set_bootcode(bootcode(&self.paths.boot_files, &self.paths.images));
        Ok(())
    }
}

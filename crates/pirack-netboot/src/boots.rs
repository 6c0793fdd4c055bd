//! What each slot boots: the boot files of the image its root came from, with
//! the slot's cmdline.txt and config.txt rendered for that image, switched as one
//! when the root is (so a Pi never gets one image's kernel for another's root).
//! A slot without an image is served nothing but `bootcode.bin`, which comes from
//! the site's boot files, else from the newest image.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// One slot's boot: an image's boot directory and the slot's generated files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotBoot {
    /// The image it is (for events and people).
    pub image: String,
    /// The image's boot directory: start.elf, fixup.dat, kernel, device trees.
    pub dir: PathBuf,
    pub cmdline: Arc<[u8]>,
    pub config: Arc<[u8]>,
}

/// Every slot's boot (by position) and the site's `bootcode.bin`.
#[derive(Debug, Default)]
pub struct Boots {
    slots: RwLock<HashMap<String, Arc<SlotBoot>>>,
    bootcode: RwLock<Option<PathBuf>>,
}

impl Boots {
    /// The slot's boot now, if it has an image.
    pub fn get(&self, position: &str) -> Option<Arc<SlotBoot>> {
        self.slots
            .read()
            .expect("not poisoned")
            .get(position)
            .cloned()
    }

    /// The slot boots `boot` from now on (`None`: nothing but bootcode.bin).
    pub fn set(&self, position: &str, boot: Option<SlotBoot>) {
        let mut slots = self.slots.write().expect("not poisoned");
        match boot {
            Some(b) => slots.insert(position.to_string(), Arc::new(b)),
            None => slots.remove(position),
        };
    }

    /// Where `bootcode.bin` is read from.
    pub fn bootcode(&self) -> Option<PathBuf> {
        self.bootcode.read().expect("not poisoned").clone()
    }

    pub fn set_bootcode(&self, path: Option<PathBuf>) {
        *self.bootcode.write().expect("not poisoned") = path;
    }
}

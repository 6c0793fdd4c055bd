//! Per-Pi NFS roots on the fileserver. `image` keeps imported images; `clone`
//! makes a root from one as cheaply as the export filesystem allows; `customise`
//! makes it one slot's Pi; `slot_root` builds, swaps, rolls back and deletes a
//! slot's root; `exports` has the NFS server export the roots.

pub mod clone;
pub mod customise;
pub mod exports;
pub mod image;
pub mod slot_root;

pub use clone::{CloneError, Method, best_method, clone_tree, remove_tree};
pub use customise::{CustomiseError, customise};

//! Per-Pi NFS roots on the fileserver. `image` keeps imported images; `clone`
//! makes a root from one as cheaply as the export filesystem allows; `customise`
//! makes it one slot's Pi.

pub mod clone;
pub mod customise;
pub mod image;

pub use clone::{CloneError, Method, best_method, clone_tree, remove_tree};
pub use customise::{CustomiseError, customise};

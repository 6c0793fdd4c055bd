//! Per-Pi NFS roots on the fileserver. `clone` makes a root from an image as
//! cheaply as the export filesystem allows; `customise` makes it one slot's Pi.

pub mod clone;
pub mod customise;

pub use clone::{CloneError, Method, best_method, clone_tree, remove_tree};
pub use customise::{CustomiseError, customise};

//! Per-Pi NFS roots on the fileserver. `clone` makes a root from an image as
//! cheaply as the export filesystem allows.

pub mod clone;

pub use clone::{CloneError, Method, best_method, clone_tree, remove_tree};

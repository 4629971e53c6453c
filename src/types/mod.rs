//! C type model (nodes, interning), per-target data model, and gcc-exact layout.
pub mod decls;
pub mod layout;
pub mod model;
pub mod target;

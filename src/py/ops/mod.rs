//! The FFI's operations, one job per file; `ffi.rs` exposes each as a thin method of the
//! `FFI` class. They sit above the cdata object, conversion and the type registry.

pub mod allocator;
pub mod cast;
pub mod declare;
pub mod fast;
pub mod memory;
pub mod new;
pub mod outofline;
pub mod owning;
pub mod string;
pub mod types;

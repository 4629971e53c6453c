//! Cranelift code generation: call trampolines and callback thunks.

pub mod execmem;
pub mod trampoline;

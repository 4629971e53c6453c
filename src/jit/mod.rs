//! Cranelift code generation: call trampolines and callback thunks.

pub mod execmem;
pub mod native_call;
pub mod stubs;
pub mod trampoline;

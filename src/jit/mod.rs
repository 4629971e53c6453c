//! Cranelift code generation: call trampolines and callback thunks.
pub mod native_call;
pub mod stubs;

//! Cranelift code generation: call trampolines and callback thunks.
pub mod callback_thunk;
pub mod entry_pool;
pub mod native_call;
pub mod stubs;

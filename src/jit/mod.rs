//! Cranelift code generation: call trampolines and callback thunks.
pub mod callback_thunk;
pub mod entry_pool;

//! Cranelift code generation: call trampolines and callback thunks.
// Every unsafe block says why it holds.
#![deny(clippy::undocumented_unsafe_blocks)]
pub mod builtins;
pub mod callback_thunk;
pub mod entry_pool;
pub mod error;
pub mod execmem;
pub mod generic_call;
pub mod generic_thunk;
pub mod isa;
pub mod native_call;
pub mod shape;
pub mod stubs;
pub mod trampoline;
pub mod trampoline_cache;

//! Cranelift code generation: call trampolines and callback thunks.

//! Callable C functions: builtin function objects whose C entry point is a JIT trampoline.
//!
//! Each C function becomes `PyCFunction_NewEx(&def, self)` where `self` is a small
//! `FuncObject` holding the callee address at a fixed offset (read by the shared
//! trampoline of the signature's shape), the signature, and what must stay alive (the
//! library, the FFI). Calls go straight from CPython's vectorcall into machine code;
//! the builtins are what that code calls for the cases it does not inline.
//!
//! One way down: `fnptr_cache` → `setup` → `variadic` → `generic` → `runtime` →
//! `helpers` → `glue` → `object`, `shape`, `layout`.
//! - `object`: the `self` object, its type, and what can be asked of a function object;
//! - `shape`: which Python objects each C type accepts inline (the trampoline shapes);
//! - `layout`: CPython object offsets for the running interpreter;
//! - `glue`: which converter an argument goes through, temporaries, the variadic part;
//! - `helpers`: the Rust implementations of the builtins generated code calls;
//! - `runtime`: their `extern "C"` wrappers (from the table in `jit::builtins`) and the
//!   `Runtime` trampolines are compiled against;
//! - `generic`: the generic call tier (plan-driven, nothing compiled per signature) and
//!   promotion of hot functions to their shape's trampoline;
//! - `variadic`: the per-call entry point of variadic functions;
//! - `setup`: creating function objects and their lazy set-up;
//! - `fnptr_cache`: calling function-pointer cdata through cached call sites.

use pyo3::prelude::*;

pub mod fnptr_cache;
mod generic;
pub mod glue;
mod helpers;
pub mod layout;
pub mod object;
mod runtime;
pub mod setup;
pub mod shape;
mod variadic;

pub use fnptr_cache::call_function_pointer;
pub use object::{
    function_address, lib_function_cdata, FuncInfo, FuncObject, LazyFunc, TypeResolver,
};
pub use setup::{
    make_deferred_function, make_function, make_lazy_function, DeferredSpec, FunctionSpec,
};
pub use shape::{arg_shape, check_signature, ret_shape};

/// What the call tiers hold and did: the tier policy, trampoline shapes compiled, bytes
/// of executable memory in use, functions promoted to compiled trampolines. With
/// `calls=True` also the calls made on the generic tiers (calls on compiled trampolines
/// are not counted: that would add work to the hot path); those change at every call,
/// which is why they are asked for separately.
#[pyfunction]
#[pyo3(signature = (calls = false))]
fn _jit_stats(py: Python<'_>, calls: bool) -> PyResult<Py<pyo3::types::PyDict>> {
    use super::tier::{TierStats, STATS};
    let d = pyo3::types::PyDict::new(py);
    d.set_item("tier", super::tier::mode().name())?;
    d.set_item("shapes", crate::jit::trampoline_cache::SHAPES.len())?;
    d.set_item("code_bytes", crate::jit::execmem::bytes_used())?;
    d.set_item("promotions", TierStats::get(&STATS.promotions))?;
    d.set_item("promote_after", generic::PROMOTE_AFTER)?;
    if calls {
        d.set_item("generic_calls", TierStats::get(&STATS.generic_calls))?;
    }
    for (name, n) in super::tier::callback_stats() {
        // Counted per call, like generic_calls: only when asked for.
        if calls || name != "generic_callbacks" {
            d.set_item(name, n)?;
        }
    }
    Ok(d.unbind())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    super::cdata::set_call_hook(fnptr_cache::call_cdata);
    super::cdata::set_lib_function_hook(object::function_address);
    m.add_function(wrap_pyfunction!(_jit_stats, m)?)?;
    Ok(())
}

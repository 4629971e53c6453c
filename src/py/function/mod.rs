//! Callable C functions: builtin function objects whose C entry point is a JIT trampoline.
//!
//! Each C function becomes `PyCFunction_NewEx(&def, self)` where `self` is a small
//! `FuncObject` holding the callee address at a fixed offset (read by the shared
//! trampoline of the signature's shape), the signature, and what must stay alive (the
//! library, the FFI). Calls go straight from CPython's vectorcall into machine code;
//! the builtins are what that code calls for the cases it does not inline.
//!
//! One way down: `fnptr_cache` → `setup` → `variadic` → `runtime` → `helpers` → `glue`
//! → `object`, `shape`, `layout`.
//! - `object`: the `self` object, its type, and what can be asked of a function object;
//! - `shape`: which Python objects each C type accepts inline (the trampoline shapes);
//! - `layout`: CPython object offsets for the running interpreter;
//! - `glue`: which converter an argument goes through, temporaries, the variadic part;
//! - `helpers`: the Rust implementations of the builtins generated code calls;
//! - `runtime`: their `extern "C"` wrappers (from the table in `jit::builtins`) and the
//!   `Runtime` trampolines are compiled against;
//! - `variadic`: the per-call entry point of variadic functions;
//! - `setup`: creating function objects and their lazy set-up;
//! - `fnptr_cache`: calling function-pointer cdata through cached call sites.

use pyo3::prelude::*;

pub mod fnptr_cache;
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

/// Number of compiled trampoline shapes and bytes of executable memory in use.
#[pyfunction]
fn _jit_stats(py: Python<'_>) -> PyResult<Py<pyo3::types::PyDict>> {
    let d = pyo3::types::PyDict::new(py);
    d.set_item("shapes", crate::jit::trampoline_cache::SHAPES.len())?;
    d.set_item("code_bytes", crate::jit::execmem::bytes_used())?;
    Ok(d.unbind())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    super::cdata::set_call_hook(fnptr_cache::call_cdata);
    m.add_function(wrap_pyfunction!(_jit_stats, m)?)?;
    Ok(())
}

//! jitffi: cffi's API, calling C through Cranelift-compiled trampolines.
//! Pipeline: cdef (pest) → types (model, layout) → abi (lowering plans) → jit (codegen)
//! → py (Python objects, conversions). See ARCHITECTURE.md.

// pest_derive without its `std` feature (no per-call stack probing; see src/cdef/parser.rs)
// generates code that names `::alloc`.
extern crate alloc;

pub mod abi;
pub mod cdef;
pub mod dlfcn;
pub mod jit;
pub mod ool;
pub mod py;
pub mod types;

use pyo3::prelude::*;

#[pymodule]
fn _jitffi(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // The cffi API version emulated (as `jitffi.__version__`), not the package's version.
    m.add("__version__", "2.0.0")?;
    py::register(m)
}

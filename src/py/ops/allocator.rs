//! `ffi.new_allocator`: an object called like `ffi.new` that gets its memory from
//! Python functions.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use super::new::{new_cdata, AllocFns};
use super::types::resolve_ctype;
use crate::py::cdata::CData;
use crate::py::state::FfiRef;

/// The allocator object `ffi.new_allocator(...)` returns: call it like `ffi.new`.
#[pyclass(module = "jitffi._jitffi", name = "Allocator", frozen)]
pub struct Allocator {
    ffi: FfiRef,
    fns: AllocFns,
}

#[pymethods]
impl Allocator {
    #[pyo3(signature = (cdecl, init=None))]
    fn __call__(
        &self,
        py: Python<'_>,
        cdecl: &Bound<'_, PyAny>,
        init: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<CData>> {
        let ct = resolve_ctype(&self.ffi, cdecl)?;
        new_cdata(py, &ct, init, Some(&self.fns))
    }
}

/// `ffi.new_allocator(alloc, free, should_clear_after_alloc)`.
pub fn new_allocator(
    py: Python<'_>,
    shared: &FfiRef,
    alloc: Option<Py<PyAny>>,
    free: Option<Py<PyAny>>,
    clear: bool,
) -> PyResult<Allocator> {
    let alloc = alloc.filter(|a| !a.is_none(py));
    let free = free.filter(|f| !f.is_none(py));
    if alloc.is_none() && free.is_some() {
        return Err(PyTypeError::new_err("cannot pass 'free' without 'alloc'"));
    }
    Ok(Allocator {
        ffi: shared.clone(),
        fns: AllocFns { alloc, free, clear },
    })
}

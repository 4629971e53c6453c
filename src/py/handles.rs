//! The registry behind `ffi.new_handle` / `ffi.from_handle`: a unique address (a token)
//! per handle, mapped back to its Python object.

use std::collections::HashMap;

use pyo3::prelude::*;

use super::gil::GilCell;

static HANDLES: GilCell<Option<HashMap<usize, Py<PyAny>>>> = GilCell::new(None);

/// Keeps `obj` under a fresh token: the address of a 1-byte allocation, so it is unique
/// while the handle lives and never a valid pointer to anything else.
pub fn register(py: Python<'_>, obj: Py<PyAny>) -> PyResult<usize> {
    // SAFETY: the GIL is held (`py`), as `PyMem_Calloc` requires.
    let token = unsafe { pyo3::ffi::PyMem_Calloc(1, 1) } as usize;
    if token == 0 {
        return Err(pyo3::exceptions::PyMemoryError::new_err(
            "cannot allocate 1 bytes",
        ));
    }
    HANDLES.with_mut(py, |h| {
        h.get_or_insert_with(HashMap::new).insert(token, obj)
    });
    Ok(token)
}

/// The object kept under `token`, if it is a live handle.
pub fn lookup(py: Python<'_>, token: usize) -> Option<Py<PyAny>> {
    HANDLES.with(py, |h| {
        h.as_ref()
            .and_then(|m| m.get(&token))
            .map(|o| o.clone_ref(py))
    })
}

/// Ends the handle `token` (from `register`): frees the token and gives the object back
/// (for the caller to drop once nothing is borrowed).
pub fn unregister(py: Python<'_>, token: usize) -> Option<Py<PyAny>> {
    let obj = HANDLES.with_mut(py, |h| h.as_mut().and_then(|m| m.remove(&token)));
    // SAFETY: `token` came from `PyMem_Calloc` in `register` and is freed once (its cdata
    // releases it once); the GIL is held.
    unsafe { pyo3::ffi::PyMem_Free(token as *mut std::ffi::c_void) };
    obj
}

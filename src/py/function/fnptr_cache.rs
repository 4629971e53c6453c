//! Calls of function-pointer cdata: the same trampolines, with a function object per
//! (type, address) as the call site, cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::types::model::TypeRef;

use super::super::cdata::CData;
use super::object::{CallContext, FuncObject};
use super::setup::{make_function, FunctionSpec};

/// Cached call sites before the cache is emptied (bounds memory for programs calling
/// ever new addresses).
const MAX_SITES: usize = 4096;

struct CallSite {
    obj: Py<PyAny>,
}

/// Calls the C function at `address` of function-pointer type `fn_type`.
pub fn call_function_pointer(
    py: Python<'_>,
    fn_type: &TypeRef,
    address: usize,
    ctx: &CallContext,
    args: &[Bound<'_, PyAny>],
) -> PyResult<Py<PyAny>> {
    // One call-site object per (type, address): functions pointers obtained from C are
    // usually called again and again; entries keep their type alive so keys stay unique.
    static SITES: Mutex<Option<HashMap<(usize, usize), CallSite>>> = Mutex::new(None);
    let key = (Arc::as_ptr(fn_type) as usize, address);
    let obj = {
        let mut g = SITES.lock().unwrap_or_else(|e| e.into_inner());
        let map = g.get_or_insert_with(HashMap::new);
        if let Some(site) = map.get(&key) {
            site.obj.clone_ref(py)
        } else {
            drop(g);
            let spec = FunctionSpec {
                name: &fn_type.cname(),
                fn_type,
                address,
                release_gil: true,
                keepalive: Vec::new(),
                library: None,
                ctx: ctx.clone(),
            };
            let func = make_function(py, spec)?;
            let mut g = SITES.lock().unwrap_or_else(|e| e.into_inner());
            let map = g.get_or_insert_with(HashMap::new);
            if map.len() > MAX_SITES {
                map.clear();
            }
            map.insert(
                key,
                CallSite {
                    obj: func.clone_ref(py),
                },
            );
            func
        }
    };
    let mut argv: Vec<*mut ffi::PyObject> = args.iter().map(|a| a.as_ptr()).collect();
    // SAFETY: `obj` is a built function of ours (made by `make_function`), alive while
    // held here; `argv` holds `args`' live objects for the call.
    unsafe {
        let self_ = ffi::PyCFunction_GetSelf(obj.as_ptr());
        // Read the entry point at each call: it changes once, after lazy compilation.
        let entry = (*(self_ as *mut FuncObject)).def.ml_meth.PyCFunctionFast;
        let r = entry(self_, argv.as_mut_ptr(), argv.len() as ffi::Py_ssize_t);
        Bound::from_owned_ptr_or_err(py, r).map(|b| b.unbind())
    }
}

/// Calls a function-pointer cdata (installed as the CData call hook).
pub(super) fn call_cdata<'py>(
    cd: &Bound<'py, CData>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Py<PyAny>> {
    if kwargs.is_some_and(|k| !k.is_empty()) {
        return Err(PyTypeError::new_err(
            "C functions take no keyword arguments",
        ));
    }
    let py = cd.py();
    let c = cd.get();
    if c.addr == 0 {
        return Err(PyRuntimeError::new_err(format!(
            "cannot call NULL function pointer '{}'",
            c.ty().cname()
        )));
    }
    let ffi = c.ctype.get().ffi.clone();
    let argv: Vec<Bound<'py, PyAny>> = args.iter().collect();
    call_function_pointer(py, c.ty(), c.addr, &ffi, &argv)
}

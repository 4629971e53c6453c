//! The entry point of variadic functions: the shape depends on the types of the cdata
//! passed in the variadic part, so it is looked up (compiled once) per call.

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;

use crate::jit::trampoline::{ArgShape, Shape};
use crate::types::model::{CallConv, FuncSig};
use crate::types::target::Target;

use super::glue;
use super::object::{info_of, FuncInfo, Trampoline};
use super::runtime::compile_shape;
use super::shape::{lowering_error, scalar_type};

/// Entries kept per function (the oldest is dropped).
const CACHE_ENTRIES: usize = 32;

pub(super) unsafe extern "C" fn jf_variadic_call(
    this: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls the entry point with the GIL held, `this` the built
    // function's `self`, `args` its `nargs` live arguments.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: as above.
    let info = unsafe { info_of(this) };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        trampoline_for(py, info, args, nargs)
    }));
    let tramp = match r {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            super::helpers::raise(e);
            return std::ptr::null_mut();
        }
        Err(payload) => {
            super::helpers::raise_panic(payload);
            return std::ptr::null_mut();
        }
    };
    // SAFETY: the trampoline of exactly these argument types; NULL comes back with the
    // exception set.
    unsafe { tramp(this, args, nargs) }
}

fn trampoline_for(
    py: Python<'_>,
    info: &FuncInfo,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> PyResult<Trampoline> {
    let nfixed = info.args.len();
    let n = nargs as usize;
    if n < nfixed {
        return Err(PyTypeError::new_err(format!(
            "'{}' expects at least {} arguments, got {}",
            info.display_name(),
            nfixed,
            n
        )));
    }
    let mut kinds = Vec::with_capacity(n - nfixed);
    for i in nfixed..n {
        // SAFETY: `i < nargs`, the arguments are live for the call.
        let obj = unsafe { Bound::from_borrowed_ptr(py, *args.add(i)) };
        kinds.push(glue::vararg_scalar(py, &info.ctx, i, &obj)?);
    }
    let cached = info
        .vararg_cache
        .borrow()
        .iter()
        .find(|(k, _)| *k == kinds)
        .map(|(_, t)| *t);
    if let Some(t) = cached {
        return Ok(t);
    }
    let mut shapes = info.fixed_shapes.clone();
    let mut types = info.args.clone();
    for &scalar in &kinds {
        shapes.push(ArgShape::vararg(scalar));
        types.push(scalar_type(scalar));
    }
    let full = FuncSig {
        args: types,
        result: info.result.clone(),
        variadic: true,
        abi: CallConv::Default,
    };
    let plan = crate::abi::lower(&full, &Target::host()).map_err(lowering_error)?;
    let shape = Shape {
        args: shapes,
        ret: info.ret_shape,
        release_gil: info.release_gil,
        plan,
    };
    let t = compile_shape(&shape)?;
    let mut cache = info.vararg_cache.borrow_mut();
    if cache.len() >= CACHE_ENTRIES {
        cache.remove(0);
    }
    cache.push((kinds, t));
    Ok(t)
}

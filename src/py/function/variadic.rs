//! The entry point of variadic functions: the shape depends on the types of the cdata
//! passed in the variadic part, so it is looked up per call; each call shape has its own
//! tier (generic first, promoted when hot: `generic::call_variadic`).

use std::cell::Cell;
use std::rc::Rc;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;

use crate::jit::trampoline::{ArgShape, Shape};
use crate::types::model::{CallConv, FuncSig};
use crate::types::target::Target;

use super::generic;
use super::glue;
use super::object::{info_of, FuncInfo, VarShape};
use super::shape::{lowering_error, scalar_type};

/// Call shapes kept per function (the oldest is dropped).
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
        let vs = shape_for(py, info, args, nargs)?;
        // SAFETY: `vs` is the shape of exactly these arguments.
        unsafe { generic::call_variadic(py, this, info, &vs, args, nargs) }
    }));
    generic::finish(r, this, args, nargs)
}

/// The call shape of these arguments (the plan lowered once per distinct list of
/// promoted variadic types, kept per function); raises cffi's errors about the
/// variadic part.
fn shape_for(
    py: Python<'_>,
    info: &FuncInfo,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> PyResult<Rc<VarShape>> {
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
        .map(|(_, t)| t.clone());
    if let Some(t) = cached {
        return Ok(t);
    }
    let mut shapes = info.fixed_shape_list().to_vec();
    let mut types = info.args.to_vec();
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
    let vs = Rc::new(VarShape {
        shape: Shape {
            args: shapes,
            ret: info.ret_shape,
            release_gil: info.release_gil,
            plan,
        },
        calls: Cell::new(0),
        tramp: Cell::new(None),
    });
    let mut cache = info.vararg_cache.borrow_mut();
    if cache.len() >= CACHE_ENTRIES {
        cache.remove(0);
    }
    cache.push((kinds, vs.clone()));
    Ok(vs)
}

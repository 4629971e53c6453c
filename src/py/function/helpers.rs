//! The Rust implementations of the builtins generated code calls (the table in
//! `jit::builtins`; the panic-catching `extern "C"` wrappers around these are generated in
//! `runtime.rs`). `this` is always the `self` object of a built function.

use std::ffi::{c_int, c_void};

use pyo3::exceptions::{PySystemError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::jit::trampoline;
use crate::types::model::{Kind, TypeRef};

use super::super::cdata::CData;
use super::super::convert;
use super::glue;
use super::object::{info_of, FuncInfo};

// The C functions of the table, under the table's names.
pub use ffi::PyBool_FromLong as bool_from_long;
pub use ffi::PyFloat_FromDouble as float_from_double;
pub use ffi::PyLong_FromLongLong as long_from_i64;
pub use ffi::PyLong_FromUnsignedLongLong as long_from_u64;
pub use libc::memcpy;

/// A helper's Python error: set, for the generated code to return NULL with it.
pub fn raise(e: PyErr) {
    // SAFETY: every `raise` builtin runs with the GIL held.
    let py = unsafe { Python::assume_attached() };
    e.restore(py);
    // References dropped by the failed conversion while not attached were deferred:
    // attaching releases them now.
    Python::attach(|_| ());
}

/// A helper panicked: the internal error is set instead.
pub fn raise_panic(payload: Box<dyn std::any::Any + Send>) {
    raise(super::super::errors::internal_error(payload));
}

pub unsafe fn arity_error(this: *mut ffi::PyObject, nargs: isize) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: `this` is a built function (table contract).
    let info = unsafe { info_of(this) };
    Err(PyTypeError::new_err(format!(
        "'{}' expects {} arguments, got {}",
        info.display_name(),
        info.args.len(),
        nargs
    )))
}

pub unsafe fn convert_arg(
    this: *mut ffi::PyObject,
    index: usize,
    obj: *mut ffi::PyObject,
    dst: *mut u8,
    temp: *mut *mut c_void,
) -> PyResult<c_int> {
    // SAFETY: GIL held; `this` is a built function, `obj` its live argument `index`,
    // `dst` its cell, `temp` null or its temporary slot (table contract).
    let py = unsafe { Python::assume_attached() };
    // SAFETY: `this` is a built function (table contract).
    let info = unsafe { info_of(this) };
    // SAFETY: `obj` is a live argument of the call (table contract).
    let obj = unsafe { Bound::from_borrowed_ptr(py, obj) };
    let ty = &info.args[index];
    // SAFETY: `dst` is the argument's cell (table contract).
    let keep = unsafe { glue::write_argument(py, &info.ctx, ty, &obj, dst)? };
    remember_pointer_ctype(py, info, index, ty, &obj);
    if let Some(k) = keep {
        if temp.is_null() {
            // Cannot happen: shapes mark every argument that may need a temporary.
            return Err(PySystemError::new_err("argument temporary without a slot"));
        }
        // SAFETY: `temp` is the argument's slot, released after the call.
        unsafe { *temp = k.into_raw() };
    }
    Ok(0)
}

/// After the converter accepted a pointer cdata for a `T *` parameter, lets the
/// trampoline accept cdata of that ctype inline next time. Exact: the decision depends
/// only on the two types; the value passed is a pointer cdata's address, or an array's
/// data address (taken by `array_data`, which keeps the check that the array's memory
/// was not released).
pub(super) fn remember_pointer_ctype(
    py: Python<'_>,
    info: &FuncInfo,
    index: usize,
    ty: &TypeRef,
    obj: &Bound<'_, PyAny>,
) {
    if !matches!(ty.kind, Kind::Pointer(_)) {
        return;
    }
    let Ok(cd) = obj.cast::<CData>() else { return };
    let c = cd.get();
    let which = match c.ty().kind {
        Kind::Pointer(_) | Kind::FuncPtr(_) => 0,
        Kind::Array(..) => 1,
        _ => return,
    };
    // Not compiled yet: the trampolines' tables do not exist, nothing to remember.
    let Some(t) = info.tables.get() else { return };
    let Some(slot) = t.ptrs.get(3 * index + 1 + which) else {
        return;
    };
    let ct = c.ctype.clone_ref(py);
    slot.set(ct.as_ptr() as usize);
    if let Some(r) = t.ic_refs.borrow_mut().get_mut(2 * index + which) {
        *r = Some(ct);
    }
}

/// An array cdata (of a ctype the converter accepted before for this parameter): its
/// data address into `dst`.
pub unsafe fn array_data(obj: *mut ffi::PyObject, dst: *mut u8) -> PyResult<c_int> {
    // SAFETY: GIL held, `obj` a live argument, `dst` its cell (table contract).
    let py = unsafe { Python::assume_attached() };
    // SAFETY: `obj` is a live argument of the call (table contract).
    let obj = unsafe { Bound::from_borrowed_ptr(py, obj) };
    let cd = obj
        .cast::<CData>()
        .map_err(|_| PySystemError::new_err("array cache: not a cdata"))?;
    let addr = cd.get().data_addr(py)?;
    // SAFETY: `dst` is a cell of at least pointer size.
    unsafe { convert::store_ptr(dst, addr) };
    Ok(0)
}

/// An exact list of exact ints, all in range for the item type and fitting
/// `trampoline::LIST_BUF` bytes: written into `buf` (1). Anything else: 0, with nothing
/// raised (the general converter then handles it and raises cffi's errors).
pub unsafe fn small_int_list(
    obj: *mut ffi::PyObject,
    buf: *mut u8,
    size: usize,
    signed: usize,
) -> c_int {
    // SAFETY: GIL held, `obj` a live object, `buf` `LIST_BUF` writable bytes (table
    // contract); list items are borrowed while no Python code runs.
    unsafe {
        if ffi::PyList_CheckExact(obj) == 0 {
            return 0;
        }
        let n = ffi::PyList_GET_SIZE(obj) as usize;
        if n * size > trampoline::LIST_BUF {
            return 0;
        }
        let (lo, hi) = glue::int_range(size, signed != 0);
        for i in 0..n {
            let o = ffi::PyList_GET_ITEM(obj, i as ffi::Py_ssize_t);
            if ffi::PyLong_CheckExact(o) == 0 {
                return 0;
            }
            let v = match super::layout::small_int(o) {
                Some(v) => v,
                None => {
                    let mut overflow = 0;
                    let v = ffi::PyLong_AsLongLongAndOverflow(o, &mut overflow);
                    if v == -1 && !ffi::PyErr_Occurred().is_null() {
                        ffi::PyErr_Clear();
                        return 0;
                    }
                    if overflow != 0 {
                        return 0;
                    }
                    v as i128
                }
            };
            if v < lo || v > hi {
                return 0;
            }
            convert::store_u64(buf.add(i * size), size, v as u64);
        }
        1
    }
}

pub unsafe fn convert_vararg(
    this: *mut ffi::PyObject,
    index: usize,
    obj: *mut ffi::PyObject,
    dst: *mut u8,
) -> PyResult<c_int> {
    // SAFETY: as for `convert_arg`.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: `this` is a built function (table contract).
    let info = unsafe { info_of(this) };
    // SAFETY: `obj` is a live argument of the call (table contract).
    let obj = unsafe { Bound::from_borrowed_ptr(py, obj) };
    // SAFETY: `dst` is the argument's cell (table contract).
    unsafe { glue::write_vararg(py, &info.ctx, index, &obj, dst)? };
    Ok(0)
}

pub unsafe fn box_result(this: *mut ffi::PyObject, ret: *const u8) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: GIL held; `this` a built function, `ret` its result buffer (table contract).
    let py = unsafe { Python::assume_attached() };
    // SAFETY: `this` is a built function (table contract).
    let info = unsafe { info_of(this) };
    // SAFETY: `ret` holds the C result of the function's result type.
    Ok(unsafe { glue::read_result(py, &info.ctx, &info.result, ret)? }.into_ptr())
}

/// Drops the temporaries of one pointer argument (after the call, GIL held).
pub unsafe fn release_temp(keep: *mut c_void) {
    // A plain temporary buffer after a successful call: no Python object to release.
    // (On the error path the attach below also releases the references that the failed
    // conversion dropped while not attached.)
    // SAFETY: GIL held; `keep` came from `Temp::into_raw` and is released once.
    if keep as usize & 1 == 1 && unsafe { ffi::PyErr_Occurred() }.is_null() {
        // SAFETY: `keep` came from `Temp::into_raw` and is released once.
        drop(unsafe { glue::Temp::from_raw(keep) });
        return;
    }
    // Attached, so the `Py` references the temporaries hold are released now (raw slots
    // are not pyo3-attached: drops there would be deferred without bound).
    // SAFETY: as above.
    Python::attach(|_| drop(unsafe { glue::Temp::from_raw(keep) }));
}

pub unsafe fn box_none() -> *mut ffi::PyObject {
    // SAFETY: GIL held (table contract).
    unsafe {
        let none = ffi::Py_None();
        ffi::Py_IncRef(none);
        none
    }
}

/// Releases the GIL and puts the calling thread's saved errno in place for the callee.
pub unsafe fn release() -> *mut ffi::PyThreadState {
    // SAFETY: called with the GIL held, paired with `reacquire` (table contract).
    let ts = unsafe { ffi::PyEval_SaveThread() };
    super::super::errno::restore_errno();
    ts
}

/// Saves the callee's errno and takes the GIL back.
pub unsafe fn reacquire(ts: *mut ffi::PyThreadState) {
    super::super::errno::save_errno();
    // SAFETY: `ts` is what `release` returned on this thread.
    unsafe { ffi::PyEval_RestoreThread(ts) };
}

//! Entered from C: the dispatcher every thunk calls, which takes the GIL, converts the
//! arguments (read like struct fields; structs as owned copies, since the argument
//! buffer dies with the C call), calls Python, and writes the result like a field is
//! written. Errors never propagate into C: they are reported through
//! `sys.unraisablehook` exactly as cffi words them, and the `error` value is returned.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::types::model::TypeRef;

use super::super::convert;
use super::super::errno;
use super::super::state::FfiRef;
use super::core::{CallbackCore, Fast};

extern "C" {
    // CPython 3.8–3.12: reports the current exception through sys.unraisablehook with
    // err_msg "Exception ignored <err_msg>" (what cffi 2.0 uses for callbacks).
    fn _PyErr_WriteUnraisableMsg(err_msg: *const libc::c_char, obj: *mut ffi::PyObject);
}

/// Entered from every compiled thunk. Must not unwind and must not let a Python error
/// escape.
///
/// # Safety
/// `closure` is a live `CallbackCore` (its entry slot was taken from it), `args` the
/// thunk's argument buffer laid out per the core's shape, `result` room for the result.
pub(super) unsafe extern "C" fn dispatch(closure: *const (), args: *mut u8, result: *mut u8) {
    // SAFETY: the same contract.
    unsafe { dispatch_with(closure, args, result, |_, _| {}) }
}

/// `dispatch`, running `hook` first once the GIL is held and the call is counted in
/// flight (the generic tier's promotion; nothing for the compiled thunks).
///
/// # Safety
/// `dispatch`'s contract.
#[inline(always)]
pub(super) unsafe fn dispatch_with<H: FnOnce(Python<'_>, &CallbackCore)>(
    closure: *const (),
    args: *mut u8,
    result: *mut u8,
    hook: H,
) {
    // Works from threads Python never saw, from threads that released the GIL in a
    // jitffi call, and nested inside another callback.
    // Already holding the GIL (a call that kept it, or a callback nested in Python code
    // on this thread): this thread's own thread state is the attached one, and nothing
    // needs taking. (Three calls of `dispatch_held` rather than an optional guard: the
    // cheaper branches.)
    // `ffi.errno` inside the callback is C's errno at its entry, and C sees the value
    // it has when the callback returns (what cffi does): nothing the interpreter does
    // meanwhile (taking the GIL included) leaks into C's errno.
    let errno_at_entry = errno::save_errno();
    // SAFETY: both calls are valid on any thread at any time.
    let (own, attached) = unsafe {
        (
            ffi::PyGILState_GetThisThreadState(),
            ffi::compat::PyThreadState_GetUnchecked(),
        )
    };
    // SAFETY: the GIL is held by this thread for `dispatch_held` (taken here if not);
    // the rest is the caller's contract.
    unsafe {
        if !own.is_null() && attached == own {
            dispatch_held(closure, args, result, hook);
        } else if !own.is_null() && attached.is_null() {
            // A thread Python knows that released the GIL (a jitffi call, or any
            // Py_BEGIN_ALLOW_THREADS): PyGILState_Ensure would find this same thread
            // state and attach it; attaching it directly skips its second lookup and its
            // counter, which only matters for the thread states Ensure itself creates.
            ffi::PyEval_RestoreThread(own);
            dispatch_held(closure, args, result, hook);
            ffi::PyEval_SaveThread();
        } else {
            // A thread Python never saw (Ensure creates its thread state, Release
            // deletes it), or another interpreter's thread state attached.
            let gil = ffi::PyGILState_Ensure();
            dispatch_held(closure, args, result, hook);
            ffi::PyGILState_Release(gil);
        }
    }
    // SAFETY: taken on this thread above.
    unsafe { errno::restore_errno_at(errno_at_entry) };
}

/// `dispatch` once the GIL is held.
#[inline(never)]
unsafe fn dispatch_held<H: FnOnce(Python<'_>, &CallbackCore)>(
    closure: *const (),
    args: *mut u8,
    result: *mut u8,
    hook: H,
) {
    // SAFETY: `dispatch`'s contract; the core stays alive while `in_flight` counts this
    // call (its handle then leaves freeing it to the last call, below).
    let core = unsafe { &*(closure as *const CallbackCore) };
    // SAFETY: `dispatch` holds the GIL for this call.
    let py = unsafe { Python::assume_attached() };
    // A strong reference for the duration of the call: `def_extern` may rebind meanwhile.
    // (A Bound, not a Py: its drop decrefs at once; pyo3 does not know this thread holds
    // the GIL and would defer a Py's decref to its pool.)
    let callable = core.binding.with(py, |b| {
        b.in_flight += 1;
        b.callable.as_ref().map(|c| c.bind(py).clone())
    });
    // SAFETY: `dispatch`'s contract.
    let outcome = catch_unwind(AssertUnwindSafe(|| unsafe {
        hook(py, core);
        invoke(py, core, callable, args, result)
    }));
    if let Err(payload) = outcome {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `result` has room for the result (contract).
            unsafe { put_error_result(py, core, result) };
            super::super::errors::internal_error(payload).restore(py);
            write_unraisable_msg(py, "from cffi callback (Rust panic)");
        }));
    }
    let last = core.binding.with(py, |b| {
        b.in_flight -= 1;
        b.orphaned && b.in_flight == 0
    });
    if last {
        // The cdata went away during the call (see `CallbackHandle`): the core was
        // leaked to this last call, which frees it.
        // SAFETY: the box the handle gave up; no other call is inside it.
        drop(unsafe { Box::from_raw(closure as *mut CallbackCore) });
    }
}

/// # Safety
/// `result` has room for the callback's result.
unsafe fn put_error_result(py: Python<'_>, core: &CallbackCore, result: *mut u8) {
    core.binding.with(py, |b| {
        let e = &b.error_result;
        // SAFETY: the error bytes have the result's size.
        unsafe { ptr::copy_nonoverlapping(e.as_ptr(), result, e.len()) };
    });
}

/// Calls the Python function for one C call; every failure ends in the error result.
///
/// # Safety
/// `dispatch`'s contract, with the GIL held; `callable` is what the binding calls now.
unsafe fn invoke(
    py: Python<'_>,
    core: &CallbackCore,
    callable: Option<Bound<'_, PyAny>>,
    args: *mut u8,
    result: *mut u8,
) {
    let callable = match callable {
        Some(c) => c,
        None => {
            // SAFETY: `dispatch`'s contract.
            unsafe { put_error_result(py, core, result) };
            let name = core.extern_name.as_deref().unwrap_or("?");
            PyRuntimeError::new_err(format!(
                "extern \"Python\": function {name}() called, but @ffi.def_extern() was not called"
            ))
            .restore(py);
            write_unraisable_msg(py, &format!("from extern \"Python\" function {name}()"));
            return;
        }
    };
    const INLINE: usize = 8;
    let shape = &*core.shape;
    let n = shape.args.len();
    // Slot 0 is scratch for PY_VECTORCALL_ARGUMENTS_OFFSET.
    let mut inline: [*mut ffi::PyObject; INLINE + 1] = [ptr::null_mut(); INLINE + 1];
    let mut heap: Vec<*mut ffi::PyObject> = Vec::new();
    let argv: &mut [*mut ffi::PyObject] = if n <= INLINE {
        &mut inline[..n + 1]
    } else {
        heap.resize(n + 1, ptr::null_mut());
        &mut heap[..]
    };
    let mut converted = 0;
    let mut failed = false;
    for (i, (off, ty, fast)) in shape.args.iter().enumerate() {
        match read_arg(py, &core.ffi, ty, *fast, args.add(*off)) {
            Ok(obj) => {
                argv[i + 1] = obj.into_ptr();
                converted += 1;
            }
            Err(e) => {
                e.restore(py);
                failed = true;
                break;
            }
        }
    }
    let ret = if failed {
        ptr::null_mut()
    } else {
        ffi::PyObject_Vectorcall(
            callable.as_ptr(),
            argv.as_ptr().add(1),
            n | ffi::PY_VECTORCALL_ARGUMENTS_OFFSET,
            ptr::null_mut(),
        )
    };
    for a in &argv[1..=converted] {
        ffi::Py_DECREF(*a);
    }
    if ret.is_null() {
        fail(py, core, &callable, result, "");
        return;
    }
    let ret = Bound::from_owned_ptr(py, ret);
    let written = match &shape.result {
        Some(rt) => write_result(py, &core.ffi, rt, shape.result_fast, result, &ret),
        None if ret.is_none() => Ok(()),
        None => Err(PyTypeError::new_err(
            "callback with the return type 'void' must return None",
        )),
    };
    if let Err(e) = written {
        e.restore(py);
        fail(
            py,
            core,
            &callable,
            result,
            ", trying to convert the result back to C",
        );
    }
}

/// The current Python exception made the callback fail: give `onerror` a chance to
/// supply the result, else report it and return the `error` value.
///
/// # Safety
/// `result` has room for the callback's result; the GIL is held.
unsafe fn fail(
    py: Python<'_>,
    core: &CallbackCore,
    callable: &Bound<'_, PyAny>,
    result: *mut u8,
    extra: &str,
) {
    // SAFETY: per the contract.
    unsafe { put_error_result(py, core, result) };
    let onerror = core
        .binding
        .with(py, |b| b.onerror.as_ref().map(|o| o.bind(py).clone()));
    let Some(onerror) = onerror else {
        report_unraisable(py, callable, extra);
        return;
    };
    let err = PyErr::fetch(py);
    let exc_type = err.get_type(py);
    let value = err.value(py).clone();
    let tb = err
        .traceback(py)
        .map(|t| t.into_any())
        .unwrap_or_else(|| py.None().into_bound(py));
    let second = match onerror.call1((exc_type, value, tb)) {
        Ok(r) if r.is_none() => None,
        Ok(r) => match &core.shape.result {
            // SAFETY: `result` has room for the result type (contract).
            Some(rt) => unsafe { write_value(py, &core.ffi, rt, result, &r) }.err(),
            None => None,
        },
        Err(e2) => Some(e2),
    };
    if let Some(e2) = second {
        // SAFETY: per the contract.
        unsafe { put_error_result(py, core, result) };
        err.restore(py);
        report_unraisable(py, callable, extra);
        e2.restore(py);
        write_unraisable_msg(py, "during handling of the above exception by 'onerror'");
    }
}

/// Reports the current exception as cffi does: "Exception ignored from cffi callback
/// <repr of the callable><extra>".
fn report_unraisable(py: Python<'_>, callable: &Bound<'_, PyAny>, extra: &str) {
    let name = callable
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<callable>".to_string());
    write_unraisable_msg(py, &format!("from cffi callback {name}{extra}"));
}

fn write_unraisable_msg(py: Python<'_>, msg: &str) {
    let msg = std::ffi::CString::new(msg.replace('\0', "?")).unwrap_or_default();
    let _ = py;
    // SAFETY: the GIL is held and an exception is set.
    unsafe { _PyErr_WriteUnraisableMsg(msg.as_ptr(), ptr::null_mut()) };
}

unsafe fn read_value(
    py: Python<'_>,
    ffi: &FfiRef,
    ty: &TypeRef,
    p: *const u8,
) -> PyResult<Py<PyAny>> {
    convert::new_owned_copy(py, ffi, ty, p)
}

#[inline]
unsafe fn read_arg(
    py: Python<'_>,
    ffi: &FfiRef,
    ty: &TypeRef,
    fast: Fast,
    p: *const u8,
) -> PyResult<Py<PyAny>> {
    match fast {
        Fast::Int(i) if i.signed => convert::i64_to_py(py, convert::load_i64(p, i.size)),
        Fast::Int(i) => convert::u64_to_py(py, convert::load_u64(p, i.size)),
        Fast::Float(size) => convert::f64_to_py(py, convert::load_f64(p, size)),
        Fast::Generic => read_value(py, ffi, ty, p),
    }
}

#[inline]
unsafe fn write_result(
    py: Python<'_>,
    ffi: &FfiRef,
    ty: &TypeRef,
    fast: Fast,
    p: *mut u8,
    v: &Bound<'_, PyAny>,
) -> PyResult<()> {
    match fast {
        Fast::Int(i) if ffi::PyLong_CheckExact(v.as_ptr()) != 0 => {
            if let Ok(bits) = convert::py_to_int_bits(v, &i, "") {
                convert::store_u64(p, i.size, bits);
                return Ok(());
            }
        }
        Fast::Float(size) if ffi::PyFloat_CheckExact(v.as_ptr()) != 0 => {
            convert::store_f64(p, size, ffi::PyFloat_AS_DOUBLE(v.as_ptr()));
            return Ok(());
        }
        _ => {}
    }
    write_value(py, ffi, ty, p, v)
}

unsafe fn write_value(
    py: Python<'_>,
    ffi: &FfiRef,
    ty: &TypeRef,
    p: *mut u8,
    v: &Bound<'_, PyAny>,
) -> PyResult<()> {
    convert::write_value(py, ffi, ty, v, p)
}

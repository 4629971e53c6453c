//! METH_FASTCALL entry points for the hottest FFI methods (`new`, `cast`, `string`). The
//! common call shape (positional args, a type string already in the per-FFI cache) is
//! handled directly; anything else goes to the pyo3-generated method (kept as the
//! fallback), so behaviour and error messages are identical.

use std::ffi::CStr;
use std::sync::OnceLock;

use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;

use super::cast::cast_value;
use super::new::new_cdata;
use super::string::string_of;
use crate::py::cdata::CData;
use crate::py::ctype::CType;
use crate::py::rawtype::slot;
use crate::py::state::FFI;

struct FastFallbacks {
    new: Py<PyAny>,
    cast: Py<PyAny>,
    string: Py<PyAny>,
}

static FAST_FALLBACKS: OnceLock<FastFallbacks> = OnceLock::new();

/// Calls the pyo3 method `f` with the same arguments (`slf` first).
///
/// # Safety
/// The arguments are those CPython passed to a METH_FASTCALL|METH_KEYWORDS method; the
/// GIL is held.
unsafe fn call_fallback(
    f: &Py<PyAny>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let nkw = if kwnames.is_null() {
        0
    } else {
        ffi::PyTuple_GET_SIZE(kwnames)
    };
    let mut v: Vec<*mut ffi::PyObject> = Vec::with_capacity((nargs + nkw + 1) as usize);
    v.push(slf);
    for i in 0..(nargs + nkw) {
        v.push(*args.add(i as usize));
    }
    ffi::PyObject_Vectorcall(f.as_ptr(), v.as_ptr(), (nargs + 1) as usize, kwnames)
}

/// The fallbacks, or the error of a module not initialized.
fn fallbacks() -> PyResult<&'static FastFallbacks> {
    FAST_FALLBACKS
        .get()
        .ok_or_else(|| PyRuntimeError::new_err("jitffi not initialized"))
}

/// The cached CType for a type-string argument, without parsing (None on a miss).
///
/// # Safety
/// `slf` is an FFI object and `cdecl` a live object; the GIL is held.
#[inline]
unsafe fn cached_ctype<'py>(
    py: Python<'py>,
    slf: *mut ffi::PyObject,
    cdecl: *mut ffi::PyObject,
) -> Option<Bound<'py, CType>> {
    if ffi::PyUnicode_CheckExact(cdecl) == 0 {
        return None;
    }
    let me = Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<FFI>();
    let shared = &me.get().shared;
    // Same string object as last time (it is held, so the address cannot be reused).
    let (last_key, last_ct) = shared.last_type.get(py);
    if last_key == cdecl as usize {
        return Some(
            Bound::from_borrowed_ptr(py, last_ct as *mut ffi::PyObject)
                .cast_into_unchecked::<CType>(),
        );
    }
    let hit = ffi::PyDict_GetItemWithError(shared.type_cache.as_ptr(), cdecl);
    if hit.is_null() {
        ffi::PyErr_Clear();
        return None;
    }
    let ct = Bound::from_borrowed_ptr(py, hit).cast_into_unchecked::<CType>();
    shared.remember_last_type(py, cdecl, hit);
    Some(ct)
}

unsafe extern "C" fn fast_new(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    slot(std::ptr::null_mut(), |py| {
        if kwnames.is_null() && (nargs == 1 || nargs == 2) {
            if let Some(ct) = cached_ctype(py, slf, *args) {
                let init = if nargs == 2 {
                    Some(Bound::from_borrowed_ptr(py, *args.add(1)))
                } else {
                    None
                };
                return new_cdata(py, &ct, init.as_ref(), None).map(|c| c.into_ptr());
            }
        }
        Ok(call_fallback(&fallbacks()?.new, slf, args, nargs, kwnames))
    })
}

unsafe extern "C" fn fast_cast(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    slot(std::ptr::null_mut(), |py| {
        if kwnames.is_null() && nargs == 2 {
            if let Some(ct) = cached_ctype(py, slf, *args) {
                let v = Bound::from_borrowed_ptr(py, *args.add(1));
                return cast_value(py, &ct, &v).map(|c| c.into_ptr());
            }
        }
        Ok(call_fallback(&fallbacks()?.cast, slf, args, nargs, kwnames))
    })
}

unsafe extern "C" fn fast_string(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    slot(std::ptr::null_mut(), |py| {
        if kwnames.is_null() && nargs == 1 {
            let v = Bound::from_borrowed_ptr(py, *args);
            if v.is_instance_of::<CData>() {
                return string_of(py, &v, -1).map(|o| o.into_ptr());
            }
        }
        Ok(call_fallback(
            &fallbacks()?.string,
            slf,
            args,
            nargs,
            kwnames,
        ))
    })
}

/// Replaces `FFI.new`, `FFI.cast` and `FFI.string` by the fast entry points above (the
/// pyo3 methods stay reachable as their fallbacks). Called once at module init.
pub fn install(py: Python<'_>) -> PyResult<()> {
    let tp = py.get_type::<FFI>();
    let fallbacks = FastFallbacks {
        new: tp.getattr("new")?.unbind(),
        cast: tp.getattr("cast")?.unbind(),
        string: tp.getattr("string")?.unbind(),
    };
    if FAST_FALLBACKS.set(fallbacks).is_err() {
        return Ok(());
    }
    let entries: [(&'static CStr, ffi::PyCFunctionFastWithKeywords); 3] = [
        (c"new", fast_new),
        (c"cast", fast_cast),
        (c"string", fast_string),
    ];
    for (name, f) in entries {
        // The fast method keeps the documented one's docstring.
        let doc: Option<String> = tp
            .getattr(name.to_str().unwrap_or(""))?
            .getattr("__doc__")?
            .extract()?;
        let doc = doc.and_then(|d| std::ffi::CString::new(d).ok());
        let doc = doc.map_or(std::ptr::null(), |d| {
            Box::leak(d.into_boxed_c_str()).as_ptr()
        });
        // the method table of a type lives as long as the type: for the process
        let def = Box::leak(Box::new(ffi::PyMethodDef {
            ml_name: name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunctionFastWithKeywords: f,
            },
            ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
            ml_doc: doc,
        }));
        // SAFETY: module init with the GIL held: `tpp` is the live FFI type, `def` lives
        // for the process, and the descriptor replaces pyo3's in the type's own dict
        // (followed by `PyType_Modified` so CPython's caches see it).
        unsafe {
            let tpp = tp.as_type_ptr();
            let descr = Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewMethod(tpp, def))?;
            if ffi::PyDict_SetItemString((*tpp).tp_dict, name.as_ptr(), descr.as_ptr()) != 0 {
                return Err(PyErr::fetch(py));
            }
            ffi::PyType_Modified(tpp);
        }
    }
    Ok(())
}

//! `ffi.from_buffer` and `ffi.memmove`: C memory and Python buffer objects.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::types::{resolve_ctype, size_or_err};
use crate::py::cdata::{invalid_addr, BufferView, CData, Owner};
use crate::py::state::FfiRef;
use crate::types::model::Kind;

/// The buffer of `obj` (locked until released), its address and length.
fn buffer_ptr(
    obj: &Bound<'_, PyAny>,
    writable: bool,
) -> PyResult<(Box<ffi::Py_buffer>, usize, usize)> {
    // SAFETY: an all-zero `Py_buffer` is the empty state `PyObject_GetBuffer` fills.
    let mut view: Box<ffi::Py_buffer> = Box::new(unsafe { std::mem::zeroed() });
    let flags = if writable {
        ffi::PyBUF_WRITABLE
    } else {
        ffi::PyBUF_SIMPLE
    };
    // SAFETY: `obj` is a live object, `view` valid for writing; the GIL is held.
    let rc = unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), &mut *view, flags) };
    if rc != 0 {
        return Err(PyErr::fetch(obj.py()));
    }
    let (p, n) = (view.buf as usize, view.len as usize);
    Ok((view, p, n))
}

/// Gives back a buffer `buffer_ptr` locked (once: the caller drops the view next).
fn release_view(view: &mut ffi::Py_buffer) {
    // SAFETY: the view was filled by `PyObject_GetBuffer` and is released once (above);
    // the GIL is held by every caller (they hold a `Bound`).
    unsafe { ffi::PyBuffer_Release(view) };
}

/// `ffi.from_buffer(cdecl, python_buffer, require_writable)`.
pub fn from_buffer(
    py: Python<'_>,
    shared: &FfiRef,
    cdecl: &Bound<'_, PyAny>,
    python_buffer: Option<&Bound<'_, PyAny>>,
    require_writable: bool,
) -> PyResult<Py<CData>> {
    let (ct, obj) = match python_buffer {
        Some(b) => (resolve_ctype(shared, cdecl)?, b.clone()),
        None => (
            shared.parse_ctype(&PyString::new(py, "char[]"))?,
            cdecl.clone(),
        ),
    };
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "from_buffer() cannot return the address of a unicode object",
        ));
    }
    let c = ct.get();
    let type_name = obj.get_type().name()?.to_string();
    let (mut view, addr, len) = buffer_ptr(&obj, require_writable)?;
    let length = match &c.ty.kind {
        Kind::Array(item, n) => {
            let isz = size_or_err(item)?.max(1);
            match n {
                Some(n) => {
                    if n.saturating_mul(isz) > len {
                        release_view(&mut view);
                        return Err(PyValueError::new_err(format!(
                            "buffer is too small ({len} bytes) for '{}' ({} bytes)",
                            c.ty.cname(),
                            n.saturating_mul(isz)
                        )));
                    }
                    *n
                }
                None => len / isz,
            }
        }
        Kind::Pointer(_) => 0,
        _ => {
            release_view(&mut view);
            return Err(PyTypeError::new_err(format!(
                "expected a pointer or array ctype, got '{}'",
                c.ty.cname()
            )));
        }
    };
    CData::new_owning(
        py,
        ct.clone().unbind(),
        addr,
        length,
        len,
        Owner::Buffer {
            view: BufferView(view),
            type_name: type_name.into(),
        },
    )
}

/// `ffi.memmove(dest, src, n)`.
pub fn memmove(
    py: Python<'_>,
    dest: &Bound<'_, PyAny>,
    src: &Bound<'_, PyAny>,
    n: isize,
) -> PyResult<()> {
    if n < 0 {
        return Err(PyValueError::new_err("negative size"));
    }
    let mut views = Vec::new();
    let mut addr_of = |o: &Bound<'_, PyAny>, writable: bool| -> PyResult<usize> {
        if let Ok(cd) = o.cast::<CData>() {
            let c = cd.get();
            return match &c.ty().kind {
                Kind::Pointer(_) | Kind::Array(..) => {
                    let a = c.data_addr(py)?;
                    if invalid_addr(a) && n > 0 {
                        return Err(PyRuntimeError::new_err(format!(
                            "cannot use memmove() on {}",
                            c.repr_string(py)?
                        )));
                    }
                    Ok(a)
                }
                _ => Err(PyTypeError::new_err(format!(
                    "expected a pointer or array cdata, got cdata '{}'",
                    c.ty().cname()
                ))),
            };
        }
        let (v, a, _) = buffer_ptr(o, writable)?;
        views.push(v);
        Ok(a)
    };
    let d = addr_of(dest, true);
    let s = addr_of(src, false);
    let r = match (d, s) {
        (Ok(d), Ok(s)) => {
            if n > 0 {
                // SAFETY: both addresses were checked against invalid addresses (cdata) or
                // come from locked buffers; `n` bytes at each are what the caller asks for,
                // which cffi trusts; `copy` allows overlap.
                unsafe { std::ptr::copy(s as *const u8, d as *mut u8, n as usize) };
            }
            Ok(())
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    for mut v in views {
        release_view(&mut v);
    }
    r
}

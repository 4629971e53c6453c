//! Scalars: boxing C values as Python objects, and Python objects as C scalars with
//! cffi's rules (range-checked integers, `_Bool` only 0/1, `char` from bytes of length 1,
//! wide chars from str). No allocation beyond the Python result object: callable from
//! `extern "C"` helpers holding the GIL.

use std::ffi::c_int;

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::py::cdata::CData;
use crate::py::mem::load_u64;
use crate::types::model::{Kind, PrimClass, PrimInfo};

// Boxers (C value → Python object).

#[inline]
pub fn i64_to_py(py: Python<'_>, v: i64) -> PyResult<Py<PyAny>> {
    // SAFETY: the GIL is held (`py`); a null result is turned into the raised error.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromLongLong(v)).map(Bound::unbind) }
}

#[inline]
pub fn u64_to_py(py: Python<'_>, v: u64) -> PyResult<Py<PyAny>> {
    // SAFETY: the GIL is held (`py`); a null result is turned into the raised error.
    unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromUnsignedLongLong(v)).map(Bound::unbind)
    }
}

#[inline]
pub fn f64_to_py(py: Python<'_>, v: f64) -> PyResult<Py<PyAny>> {
    // SAFETY: the GIL is held (`py`); a null result is turned into the raised error.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyFloat_FromDouble(v)).map(Bound::unbind) }
}

#[inline]
pub fn bool_to_py(py: Python<'_>, v: bool) -> Py<PyAny> {
    pyo3::types::PyBool::new(py, v)
        .to_owned()
        .into_any()
        .unbind()
}

/// `char` → bytes of length 1.
#[inline]
pub fn char_to_py(py: Python<'_>, v: u8) -> PyResult<Py<PyAny>> {
    // SAFETY: `v` lives for the call, which copies its one byte; the GIL is held (`py`).
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyBytes_FromStringAndSize(&v as *const u8 as *const _, 1),
        )
        .map(Bound::unbind)
    }
}

/// wchar_t/char16_t/char32_t code unit → str of length 1.
pub fn wchar_to_py(py: Python<'_>, v: u32) -> PyResult<Py<PyAny>> {
    if v > 0x10FFFF {
        return Err(PyValueError::new_err(format!(
            "character U+{v:x} is out of range"
        )));
    }
    // SAFETY: `v` is a valid code point (checked above); the GIL is held (`py`).
    unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyUnicode_FromOrdinal(v as c_int)).map(Bound::unbind)
    }
}

pub fn complex_to_py(py: Python<'_>, re: f64, im: f64) -> PyResult<Py<PyAny>> {
    // SAFETY: the GIL is held (`py`); a null result is turned into the raised error.
    unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyComplex_FromDoubles(re, im)).map(Bound::unbind)
    }
}

// Scalar converters (Python object → C value).

/// A Python integer, widened: fits i128 (covers both i64 and u64 ranges) or is "big".
pub(super) enum IntVal {
    Small(i128),
    BigPos,
    BigNeg,
}

pub(super) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Reads an int from a Python int, an integer-like primitive cdata, or an `__index__`
/// object; floats and everything else → TypeError "an integer is required".
pub(super) fn int_value(obj: &Bound<'_, PyAny>) -> PyResult<IntVal> {
    // SAFETY: `p` is a live object (borrowed from `obj`), the GIL is held (`obj.py()`);
    // `PyNumber_Index` gives a new reference or null.
    unsafe {
        let p = obj.as_ptr();
        if ffi::PyLong_Check(p) != 0 {
            return long_value(obj.py(), p);
        }
        if let Ok(cd) = obj.cast::<CData>() {
            if let Some(v) = cd.get().int_value() {
                return Ok(IntVal::Small(v));
            }
            return Err(PyTypeError::new_err("an integer is required"));
        }
        if ffi::PyFloat_Check(p) == 0 && ffi::PyIndex_Check(p) != 0 {
            let idx = Bound::from_owned_ptr_or_err(obj.py(), ffi::PyNumber_Index(p))?;
            return long_value(obj.py(), idx.as_ptr());
        }
    }
    Err(PyTypeError::new_err("an integer is required"))
}

/// The value of int object `p` (the GIL held).
unsafe fn long_value(py: Python<'_>, p: *mut ffi::PyObject) -> PyResult<IntVal> {
    let mut overflow: c_int = 0;
    let v = ffi::PyLong_AsLongLongAndOverflow(p, &mut overflow);
    if overflow == 0 {
        if v == -1 {
            if let Some(e) = PyErr::take(py) {
                return Err(e);
            }
        }
        return Ok(IntVal::Small(v as i128));
    }
    if overflow < 0 {
        return Ok(IntVal::BigNeg);
    }
    let u = ffi::PyLong_AsUnsignedLongLong(p);
    if u == u64::MAX && PyErr::take(py).is_some() {
        return Ok(IntVal::BigPos);
    }
    Ok(IntVal::Small(u as i128))
}

fn does_not_fit(obj: &Bound<'_, PyAny>, ctype_name: &str) -> PyErr {
    let s = obj.str().map(|s| s.to_string()).unwrap_or_default();
    PyOverflowError::new_err(format!("integer {s} does not fit '{ctype_name}'"))
}

/// A signed C integer of `info.size` bytes, range-checked (OverflowError like cffi).
#[inline]
pub fn py_to_i64(obj: &Bound<'_, PyAny>, info: &PrimInfo, ctype_name: &str) -> PyResult<i64> {
    py_to_i64_named(obj, info, &|| ctype_name.to_string())
}

/// An unsigned C integer of `info.size` bytes, range-checked.
#[inline]
pub fn py_to_u64(obj: &Bound<'_, PyAny>, info: &PrimInfo, ctype_name: &str) -> PyResult<u64> {
    py_to_u64_named(obj, info, &|| ctype_name.to_string())
}

/// `py_to_i64` with the type name computed only for the error message.
#[inline]
pub fn py_to_i64_named(
    obj: &Bound<'_, PyAny>,
    info: &PrimInfo,
    ctype_name: &dyn Fn() -> String,
) -> PyResult<i64> {
    // fast path: an exact small int
    // SAFETY: `p` is a live object (borrowed from `obj`) and the GIL is held; errors are checked
    // with `PyErr_Occurred`.
    unsafe {
        let p = obj.as_ptr();
        if ffi::PyLong_CheckExact(p) != 0 {
            let mut overflow: c_int = 0;
            let v = ffi::PyLong_AsLongLongAndOverflow(p, &mut overflow);
            if overflow == 0 && (v != -1 || ffi::PyErr_Occurred().is_null()) {
                let bits = info.size * 8;
                if bits >= 64 || (v >= -(1i64 << (bits - 1)) && v < (1i64 << (bits - 1))) {
                    return Ok(v);
                }
            }
        }
    }
    let v = match int_value(obj)? {
        IntVal::Small(v) => v,
        _ => return Err(PyOverflowError::new_err("int too big to convert")),
    };
    if v < i64::MIN as i128 || v > i64::MAX as i128 {
        return Err(PyOverflowError::new_err("int too big to convert"));
    }
    let bits = info.size * 8;
    if bits < 64 {
        let lim = 1i128 << (bits - 1);
        if v < -lim || v >= lim {
            return Err(does_not_fit(obj, &ctype_name()));
        }
    }
    Ok(v as i64)
}

/// `py_to_u64` with the type name computed only for the error message.
#[inline]
pub fn py_to_u64_named(
    obj: &Bound<'_, PyAny>,
    info: &PrimInfo,
    ctype_name: &dyn Fn() -> String,
) -> PyResult<u64> {
    let v = match int_value(obj)? {
        IntVal::Small(v) => v,
        IntVal::BigNeg => {
            return Err(PyOverflowError::new_err(
                "can't convert negative number to unsigned",
            ))
        }
        IntVal::BigPos => return Err(PyOverflowError::new_err("int too big to convert")),
    };
    if v < 0 {
        return Err(PyOverflowError::new_err(
            "can't convert negative number to unsigned",
        ));
    }
    if v > u64::MAX as i128 {
        return Err(PyOverflowError::new_err("int too big to convert"));
    }
    let bits = info.size * 8;
    if bits < 64 && v >= (1i128 << bits) {
        return Err(does_not_fit(obj, &ctype_name()));
    }
    Ok(v as u64)
}

/// Any integer type (signed or unsigned per `info`), as the raw bits to store.
#[inline]
pub fn py_to_int_bits(obj: &Bound<'_, PyAny>, info: &PrimInfo, ctype_name: &str) -> PyResult<u64> {
    if info.signed && info.class != PrimClass::Char {
        py_to_i64(obj, info, ctype_name).map(|v| v as u64)
    } else {
        py_to_u64(obj, info, ctype_name)
    }
}

/// float/double: anything `float()` accepts (incl. long double cdata via `__float__`).
#[inline]
pub fn py_to_f64(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    // SAFETY: `p` is a live object (borrowed from `obj`) and the GIL is held; a -1 result is
    // checked for an error.
    unsafe {
        let p = obj.as_ptr();
        if ffi::PyFloat_CheckExact(p) != 0 {
            return Ok(ffi::PyFloat_AS_DOUBLE(p));
        }
        let v = ffi::PyFloat_AsDouble(p);
        if v == -1.0 {
            if let Some(e) = PyErr::take(obj.py()) {
                return Err(e);
            }
        }
        Ok(v)
    }
}

/// `_Bool`: 0/1/False/True (or a cdata holding one); other ints → OverflowError.
pub fn py_to_bool(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    match int_value(obj)? {
        IntVal::Small(0) => Ok(false),
        IntVal::Small(1) => Ok(true),
        IntVal::Small(v) if v < 0 => Err(PyOverflowError::new_err(
            "can't convert negative number to unsigned",
        )),
        IntVal::BigNeg => Err(PyOverflowError::new_err(
            "can't convert negative number to unsigned",
        )),
        IntVal::BigPos => Err(PyOverflowError::new_err("int too big to convert")),
        _ => Err(does_not_fit(obj, "_Bool")),
    }
}

/// `char`: bytes of length 1 or a char cdata.
pub fn py_to_char(obj: &Bound<'_, PyAny>, ctype_name: &str) -> PyResult<u8> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        let s = b.as_bytes();
        if s.len() == 1 {
            return Ok(s[0]);
        }
    } else if let Ok(cd) = obj.cast::<CData>() {
        let cd = cd.get();
        if let Kind::Prim(info) = &cd.ty().kind {
            if info.class == PrimClass::Char {
                return Ok(cd.value_bytes()[0]);
            }
        }
        return Err(PyTypeError::new_err(format!(
            "initializer for ctype '{ctype_name}' must be a bytes of length 1, not cdata '{}'",
            cd.ty().cname()
        )));
    }
    Err(PyTypeError::new_err(format!(
        "initializer for ctype '{ctype_name}' must be a bytes of length 1, not {}",
        type_name(obj)
    )))
}

/// wchar_t / char16_t / char32_t: str of length 1 (a surrogate pair counts as one character
/// for char32_t/wchar_t), or a wide-char cdata.
pub fn py_to_wchar(obj: &Bound<'_, PyAny>, info: &PrimInfo, ctype_name: &str) -> PyResult<u32> {
    if let Ok(s) = obj.cast::<PyString>() {
        // SAFETY: `s` is a str object and the GIL is held.
        let n = unsafe { ffi::PyUnicode_GetLength(s.as_ptr()) };
        if n == 1 {
            // SAFETY: index 0 of a str of length 1.
            let c = unsafe { ffi::PyUnicode_ReadChar(s.as_ptr(), 0) };
            if info.size == 2 && c > 0xFFFF {
                return Err(PyTypeError::new_err(format!(
                    "initializer for ctype '{ctype_name}' must be a unicode string of length 1, not larger-than-0xFFFF character"
                )));
            }
            return Ok(c);
        }
        if n == 2 && info.size == 4 {
            // SAFETY: indexes 0 and 1 of a str of length 2.
            let (a, b) = unsafe {
                (
                    ffi::PyUnicode_ReadChar(s.as_ptr(), 0),
                    ffi::PyUnicode_ReadChar(s.as_ptr(), 1),
                )
            };
            if (0xD800..0xDC00).contains(&a) && (0xDC00..0xE000).contains(&b) {
                return Ok(0x10000 + ((a - 0xD800) << 10) + (b - 0xDC00));
            }
        }
        return Err(PyTypeError::new_err(format!(
            "initializer for ctype '{ctype_name}' must be a unicode string of length 1, not unicode string of length {n}"
        )));
    }
    if let Ok(cd) = obj.cast::<CData>() {
        let cd = cd.get();
        if let Kind::Prim(pi) = &cd.ty().kind {
            if pi.class == PrimClass::WideChar {
                // SAFETY: the value bytes of a cdata are 16 bytes, `pi.size` at most 4 for wide
                // chars.
                return Ok(unsafe { load_u64(cd.value_bytes().as_ptr(), pi.size) } as u32);
            }
        }
    }
    Err(PyTypeError::new_err(format!(
        "initializer for ctype '{ctype_name}' must be a unicode string of length 1, not {}",
        type_name(obj)
    )))
}

/// float/double _Complex: anything `complex()` accepts.
pub fn py_to_complex(obj: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    // SAFETY: `obj` is a live object and the GIL is held; a -1.0 result is checked for an error.
    unsafe {
        let c = ffi::PyComplex_AsCComplex(obj.as_ptr());
        if c.real == -1.0 {
            if let Some(e) = PyErr::take(obj.py()) {
                return Err(e);
            }
        }
        Ok((c.real, c.imag))
    }
}

/// "int", or "cdata 'int *'" for cdata (as in cffi's messages).
pub fn describe(obj: &Bound<'_, PyAny>) -> String {
    match obj.cast::<CData>() {
        Ok(cd) => format!("cdata '{}'", cd.get().ty().cname()),
        Err(_) => type_name(obj),
    }
}

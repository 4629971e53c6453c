//! THE Python ↔ C value conversion layer, shared by cdata (fields, items, `new`), calls
//! (arguments, results) and callbacks (arguments, results). cffi's rules (spec A8):
//! range-checked integers, `None` is not NULL, `_Bool` only 0/1, `char` from bytes of
//! length 1, wide chars from str, structs from list/tuple/dict/cdata, arrays from
//! list/tuple/bytes/str, pointers from compatible cdata.
//!
//! Layers, from the bottom:
//! - scalar converters (`py_to_i64`, `py_to_u64`, `py_to_f64`, `py_to_bool`, `py_to_char`,
//!   `py_to_wchar`, `py_to_complex`) and boxers (`i64_to_py`, ...): no allocation beyond the
//!   Python result object, callable from `extern "C"` helpers holding the GIL;
//! - `load_*`/`store_*`: raw unaligned memory access (packed fields are unaligned);
//! - `read_value`/`write_value`: a value of any C type at an address;
//! - call-argument helpers: `py_to_pointer_arg` with a `KeepAlive` for temporaries,
//!   `cdata_from_pointer` and `new_owned_copy` for results.
//!
//! Every function returning `PyResult` raises a Python exception for bad input; none panics.

use std::ffi::c_int;

use pyo3::exceptions::{PyIndexError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::cdata::{CData, Keeper};
use super::ctype::CType;
use super::longdouble;
use super::state::FfiRef;
use crate::types::model::{Kind, Prim, PrimClass, PrimInfo, RecordLayout, TypeRef};

// ---------------------------------------------------------------------------------------
// Raw memory access (always unaligned: packed structs put fields anywhere).

#[inline]
pub unsafe fn load_u64(src: *const u8, size: usize) -> u64 {
    match size {
        1 => *src as u64,
        2 => (src as *const u16).read_unaligned() as u64,
        4 => (src as *const u32).read_unaligned() as u64,
        _ => (src as *const u64).read_unaligned(),
    }
}

#[inline]
pub unsafe fn load_i64(src: *const u8, size: usize) -> i64 {
    match size {
        1 => *(src as *const i8) as i64,
        2 => (src as *const i16).read_unaligned() as i64,
        4 => (src as *const i32).read_unaligned() as i64,
        _ => (src as *const i64).read_unaligned(),
    }
}

#[inline]
pub unsafe fn store_u64(dst: *mut u8, size: usize, v: u64) {
    match size {
        1 => *dst = v as u8,
        2 => (dst as *mut u16).write_unaligned(v as u16),
        4 => (dst as *mut u32).write_unaligned(v as u32),
        _ => (dst as *mut u64).write_unaligned(v),
    }
}

#[inline]
pub unsafe fn load_f64(src: *const u8, size: usize) -> f64 {
    if size == 4 {
        (src as *const f32).read_unaligned() as f64
    } else {
        (src as *const f64).read_unaligned()
    }
}

#[inline]
pub unsafe fn store_f64(dst: *mut u8, size: usize, v: f64) {
    if size == 4 {
        (dst as *mut f32).write_unaligned(v as f32)
    } else {
        (dst as *mut f64).write_unaligned(v)
    }
}

#[inline]
pub unsafe fn load_ptr(src: *const u8) -> usize {
    (src as *const usize).read_unaligned()
}

#[inline]
pub unsafe fn store_ptr(dst: *mut u8, v: usize) {
    (dst as *mut usize).write_unaligned(v)
}

// ---------------------------------------------------------------------------------------
// Boxers (C value → Python object).

#[inline]
pub fn i64_to_py(py: Python<'_>, v: i64) -> PyResult<Py<PyAny>> {
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromLongLong(v)).map(Bound::unbind) }
}

#[inline]
pub fn u64_to_py(py: Python<'_>, v: u64) -> PyResult<Py<PyAny>> {
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromUnsignedLongLong(v)).map(Bound::unbind) }
}

#[inline]
pub fn f64_to_py(py: Python<'_>, v: f64) -> PyResult<Py<PyAny>> {
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyFloat_FromDouble(v)).map(Bound::unbind) }
}

#[inline]
pub fn bool_to_py(py: Python<'_>, v: bool) -> Py<PyAny> {
    pyo3::types::PyBool::new(py, v).to_owned().into_any().unbind()
}

/// `char` → bytes of length 1.
#[inline]
pub fn char_to_py(py: Python<'_>, v: u8) -> PyResult<Py<PyAny>> {
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyBytes_FromStringAndSize(&v as *const u8 as *const _, 1)).map(Bound::unbind) }
}

/// wchar_t/char16_t/char32_t code unit → str of length 1.
pub fn wchar_to_py(py: Python<'_>, v: u32) -> PyResult<Py<PyAny>> {
    if v > 0x10FFFF {
        return Err(PyValueError::new_err(format!("character U+{v:x} is out of range")));
    }
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyUnicode_FromOrdinal(v as c_int)).map(Bound::unbind) }
}

pub fn complex_to_py(py: Python<'_>, re: f64, im: f64) -> PyResult<Py<PyAny>> {
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyComplex_FromDoubles(re, im)).map(Bound::unbind) }
}

// ---------------------------------------------------------------------------------------
// Scalar converters (Python object → C value).

/// A Python integer, widened: fits i128 (covers both i64 and u64 ranges) or is "big".
enum IntVal {
    Small(i128),
    BigPos,
    BigNeg,
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// Reads an int from a Python int, an integer-like primitive cdata, or an `__index__`
/// object; floats and everything else → TypeError "an integer is required".
fn int_value(obj: &Bound<'_, PyAny>) -> PyResult<IntVal> {
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
pub fn py_to_i64_named(obj: &Bound<'_, PyAny>, info: &PrimInfo, ctype_name: &dyn Fn() -> String) -> PyResult<i64> {
    // fast path: an exact small int
    unsafe {
        let p = obj.as_ptr();
        if ffi::PyLong_CheckExact(p) != 0 {
            let mut overflow: c_int = 0;
            let v = ffi::PyLong_AsLongLongAndOverflow(p, &mut overflow);
            if overflow == 0 && !(v == -1 && !ffi::PyErr_Occurred().is_null()) {
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
pub fn py_to_u64_named(obj: &Bound<'_, PyAny>, info: &PrimInfo, ctype_name: &dyn Fn() -> String) -> PyResult<u64> {
    let v = match int_value(obj)? {
        IntVal::Small(v) => v,
        IntVal::BigNeg => return Err(PyOverflowError::new_err("can't convert negative number to unsigned")),
        IntVal::BigPos => return Err(PyOverflowError::new_err("int too big to convert")),
    };
    if v < 0 {
        return Err(PyOverflowError::new_err("can't convert negative number to unsigned"));
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
        IntVal::Small(v) if v < 0 => Err(PyOverflowError::new_err("can't convert negative number to unsigned")),
        IntVal::BigNeg => Err(PyOverflowError::new_err("can't convert negative number to unsigned")),
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
        let n = unsafe { ffi::PyUnicode_GetLength(s.as_ptr()) };
        if n == 1 {
            let c = unsafe { ffi::PyUnicode_ReadChar(s.as_ptr(), 0) };
            if info.size == 2 && c > 0xFFFF {
                return Err(PyTypeError::new_err(format!(
                    "initializer for ctype '{ctype_name}' must be a unicode string of length 1, not larger-than-0xFFFF character"
                )));
            }
            return Ok(c);
        }
        if n == 2 && info.size == 4 {
            let (a, b) = unsafe { (ffi::PyUnicode_ReadChar(s.as_ptr(), 0), ffi::PyUnicode_ReadChar(s.as_ptr(), 1)) };
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

// ---------------------------------------------------------------------------------------
// Primitives in memory.

/// Stores `obj` as primitive `info` at `dst` (unaligned).
///
/// # Safety
/// `dst` must be valid for `info.size` bytes.
pub unsafe fn write_prim(obj: &Bound<'_, PyAny>, ty: &TypeRef, info: &PrimInfo, dst: *mut u8) -> PyResult<()> {
    match info.class {
        PrimClass::SignedInt | PrimClass::UnsignedInt => {
            let name = || ty.cname();
            let bits = if info.signed {
                py_to_i64_named(obj, info, &name)? as u64
            } else {
                py_to_u64_named(obj, info, &name)?
            };
            store_u64(dst, info.size, bits);
        }
        PrimClass::Float => store_f64(dst, info.size, py_to_f64(obj)?),
        PrimClass::Bool => *dst = py_to_bool(obj)? as u8,
        PrimClass::Char => {
            *dst = match obj.cast::<PyBytes>() {
                Ok(b) if b.as_bytes().len() == 1 => b.as_bytes()[0],
                _ => py_to_char(obj, &ty.cname())?,
            }
        }
        PrimClass::WideChar => store_u64(dst, info.size, py_to_wchar(obj, info, &ty.cname())? as u64),
        PrimClass::Complex => {
            let (re, im) = py_to_complex(obj)?;
            let half = info.size / 2;
            store_f64(dst, half, re);
            store_f64(dst.add(half), half, im);
        }
        PrimClass::LongDouble => {
            let bytes = long_double_bytes(obj, ty)?;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, 16);
        }
    }
    Ok(())
}

/// 16 bytes of `long double` from a long double cdata (exact) or a Python number.
pub fn long_double_bytes(obj: &Bound<'_, PyAny>, ty: &TypeRef) -> PyResult<[u8; 16]> {
    if let Ok(cd) = obj.cast::<CData>() {
        let cd = cd.get();
        if let Kind::Prim(pi) = &cd.ty().kind {
            if pi.class == PrimClass::LongDouble {
                return Ok(*cd.value_bytes());
            }
        }
    }
    let v = py_to_f64(obj)?;
    let _ = ty;
    Ok(longdouble::from_f64(&crate::types::target::Target::host(), v))
}

/// Reads primitive `info` at `src` as a Python value (`long double` → a cdata, as cffi).
///
/// # Safety
/// `src` must be valid for `info.size` bytes.
#[inline]
pub unsafe fn read_prim(py: Python<'_>, ffi: &FfiRef, ty: &TypeRef, info: &PrimInfo, src: *const u8) -> PyResult<Py<PyAny>> {
    match info.class {
        PrimClass::SignedInt => i64_to_py(py, load_i64(src, info.size)),
        PrimClass::UnsignedInt => u64_to_py(py, load_u64(src, info.size)),
        PrimClass::Float => f64_to_py(py, load_f64(src, info.size)),
        PrimClass::Bool => Ok(bool_to_py(py, *src != 0)),
        PrimClass::Char => char_to_py(py, *src),
        PrimClass::WideChar => wchar_to_py(py, load_u64(src, info.size) as u32),
        PrimClass::Complex => {
            let half = info.size / 2;
            complex_to_py(py, load_f64(src, half), load_f64(src.add(half), half))
        }
        PrimClass::LongDouble => {
            let ct = ffi.ctype_of(py, ty);
            let mut v = [0u8; 16];
            std::ptr::copy_nonoverlapping(src, v.as_mut_ptr(), 16);
            Ok(CData::new_value(py, ct, &v)?.into_any())
        }
    }
}

// ---------------------------------------------------------------------------------------
// Values of any type.

/// Reads a value of type `ty` at `src`, like reading a struct field: primitives → Python
/// values, enums → int, pointers → (non-owning) pointer cdata, structs/unions/arrays →
/// non-owning cdata views of the memory.
///
/// # Safety
/// `src` must be valid for `ty`'s size.
pub unsafe fn read_value(py: Python<'_>, ffi: &FfiRef, ty: &TypeRef, src: *const u8) -> PyResult<Py<PyAny>> {
    match &ty.kind {
        Kind::Prim(info) => read_prim(py, ffi, ty, info, src),
        _ => {
            let ct = ffi.ctype_of(py, ty);
            read_with_ctype(py, ct.bind(py).get(), &ct, src, None)
        }
    }
}

/// `read_value` when the caller already has the CType; `keeper` is what views must keep
/// alive (the owning cdata of the memory, if any).
///
/// # Safety
/// `src` must be valid for the type's size.
#[inline]
pub unsafe fn read_with_ctype(
    py: Python<'_>,
    ct: &CType,
    ct_obj: &Py<CType>,
    src: *const u8,
    keeper: Option<Keeper>,
) -> PyResult<Py<PyAny>> {
    match &ct.ty.kind {
        Kind::Prim(info) => read_prim(py, &ct.ffi, &ct.ty, info, src),
        Kind::Enum(e) => {
            let info = e.underlying_info();
            if info.signed {
                i64_to_py(py, load_i64(src, info.size))
            } else {
                u64_to_py(py, load_u64(src, info.size))
            }
        }
        Kind::Pointer(_) | Kind::FuncPtr(_) => Ok(CData::new_pointer(py, ct_obj.clone_ref(py), load_ptr(src))?.into_any()),
        Kind::Record(_) => Ok(CData::new_view(py, ct_obj.clone_ref(py), src as usize, 0, keeper, 0)?.into_any()),
        Kind::Array(_, Some(n)) => Ok(CData::new_view(py, ct_obj.clone_ref(py), src as usize, *n, keeper, 0)?.into_any()),
        Kind::Array(_, None) => Err(PyTypeError::new_err(format!("cannot read a value of type '{}'", ct.ty.cname()))),
        Kind::Void => Err(PyTypeError::new_err("cannot read a value of type 'void'")),
    }
}

/// Stores `obj` as a value of type `ty` at `dst` with cffi's rules (struct field / array
/// item assignment): primitives range-checked, pointers from compatible cdata or NULL,
/// structs from list/tuple/dict/same-type cdata (copied), arrays from list/tuple (and
/// bytes for char arrays, str for wide-char arrays, same-type array cdata).
///
/// # Safety
/// `dst` must be valid for `ty`'s size.
pub unsafe fn write_value(py: Python<'_>, ffi: &FfiRef, ty: &TypeRef, obj: &Bound<'_, PyAny>, dst: *mut u8) -> PyResult<()> {
    let _ = (py, ffi);
    write_sized(ty, obj, dst, usize::MAX)
}

/// `write_value` with the number of bytes available at `dst` (bounds a flexible array
/// member or an open array's items).
pub(crate) unsafe fn write_sized(ty: &TypeRef, obj: &Bound<'_, PyAny>, dst: *mut u8, avail: usize) -> PyResult<()> {
    match &ty.kind {
        Kind::Prim(info) => write_prim(obj, ty, info, dst),
        Kind::Enum(e) => {
            let info = e.underlying_info();
            let name = || ty.cname();
            let bits = if info.signed { py_to_i64_named(obj, &info, &name)? as u64 } else { py_to_u64_named(obj, &info, &name)? };
            store_u64(dst, info.size, bits);
            Ok(())
        }
        Kind::Pointer(_) | Kind::FuncPtr(_) => {
            let p = pointer_from_cdata(ty, obj)?;
            store_ptr(dst, p);
            Ok(())
        }
        Kind::Array(item, len) => {
            let isz = item.size().unwrap_or(0);
            let n = match len {
                Some(n) => *n,
                None if isz > 0 => avail / isz,
                None => 0,
            };
            write_array(ty, item, n, obj, dst)
        }
        Kind::Record(_) => write_record(ty, obj, dst, avail),
        Kind::Void => Err(PyTypeError::new_err("cannot store a value of type 'void'")),
    }
}

fn is_char_item(item: &TypeRef) -> bool {
    matches!(&item.kind, Kind::Prim(pi) if pi.class == PrimClass::Char)
}

fn wide_item(item: &TypeRef) -> Option<PrimInfo> {
    match &item.kind {
        Kind::Prim(pi) if pi.class == PrimClass::WideChar => Some(*pi),
        _ => None,
    }
}

/// Encodes a str as wide-char code units of `size` bytes (UTF-16 with surrogates for 2).
pub fn encode_wide(s: &Bound<'_, PyString>, size: usize) -> PyResult<Vec<u32>> {
    let n = unsafe { ffi::PyUnicode_GetLength(s.as_ptr()) };
    let mut out = Vec::with_capacity(n as usize + 1);
    for i in 0..n {
        let c = unsafe { ffi::PyUnicode_ReadChar(s.as_ptr(), i) };
        if size == 2 && c > 0xFFFF {
            let c = c - 0x10000;
            out.push(0xD800 + (c >> 10));
            out.push(0xDC00 + (c & 0x3FF));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Decodes wide-char code units (joining UTF-16 surrogate pairs for 2-byte units).
pub fn decode_wide(py: Python<'_>, units: &[u32], size: usize) -> PyResult<Py<PyAny>> {
    let mut s = String::with_capacity(units.len());
    let mut i = 0;
    let mut cps: Vec<u32> = Vec::with_capacity(units.len());
    while i < units.len() {
        let u = units[i];
        if size == 2 && (0xD800..0xDC00).contains(&u) && i + 1 < units.len() && (0xDC00..0xE000).contains(&units[i + 1]) {
            cps.push(0x10000 + ((u - 0xD800) << 10) + (units[i + 1] - 0xDC00));
            i += 2;
        } else {
            cps.push(u);
            i += 1;
        }
    }
    for &c in &cps {
        if c > 0x10FFFF {
            return Err(PyValueError::new_err(format!("character U+{c:x} is out of range")));
        }
    }
    // Lone surrogates are valid in Python str but not in Rust String: build via ffi.
    if cps.iter().all(|&c| char::from_u32(c).is_some()) {
        for &c in &cps {
            s.push(char::from_u32(c).unwrap_or('\u{fffd}'));
        }
        return Ok(PyString::new(py, &s).into_any().unbind());
    }
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyUnicode_FromKindAndData(ffi::PyUnicode_4BYTE_KIND as c_int, cps.as_ptr() as *const _, cps.len() as ffi::Py_ssize_t),
        )
        .map(Bound::unbind)
    }
}

/// Writes an array of `n` items (`arr_ty` is used in messages) from a list/tuple, bytes
/// (char / _Bool items), str (wide-char items) or a cdata array with the same item type.
pub(crate) unsafe fn write_array(arr_ty: &TypeRef, item: &TypeRef, n: usize, obj: &Bound<'_, PyAny>, dst: *mut u8) -> PyResult<()> {
    let isz = item.size().unwrap_or(0);
    if let Ok(l) = obj.cast::<PyList>() {
        if l.len() > n {
            return Err(PyIndexError::new_err(format!("too many initializers for '{}' (got {})", arr_ty.cname(), l.len())));
        }
        for (i, x) in l.iter().enumerate() {
            write_sized(item, &x, dst.add(i * isz), isz)?;
        }
        return Ok(());
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        if t.len() > n {
            return Err(PyIndexError::new_err(format!("too many initializers for '{}' (got {})", arr_ty.cname(), t.len())));
        }
        for (i, x) in t.iter().enumerate() {
            write_sized(item, &x, dst.add(i * isz), isz)?;
        }
        return Ok(());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        let is_bool = matches!(&item.kind, Kind::Prim(pi) if pi.class == PrimClass::Bool);
        if is_char_item(item) || is_bool {
            let s = b.as_bytes();
            if s.len() > n {
                return Err(PyIndexError::new_err(format!(
                    "initializer bytes is too long for '{}' (got {} characters)",
                    arr_ty.cname(),
                    s.len()
                )));
            }
            if is_bool && s.iter().any(|&c| c > 1) {
                return Err(PyValueError::new_err("an array of _Bool can only contain \\x00 or \\x01"));
            }
            std::ptr::copy_nonoverlapping(s.as_ptr(), dst, s.len());
            if s.len() < n {
                *dst.add(s.len()) = 0;
            }
            return Ok(());
        }
    }
    if let Ok(s) = obj.cast::<PyString>() {
        if let Some(wi) = wide_item(item) {
            let units = encode_wide(s, wi.size)?;
            if units.len() > n {
                return Err(PyIndexError::new_err(format!(
                    "initializer unicode is too long for '{}' (got {} characters)",
                    arr_ty.cname(),
                    units.len()
                )));
            }
            for (i, &u) in units.iter().enumerate() {
                store_u64(dst.add(i * wi.size), wi.size, u as u64);
            }
            if units.len() < n {
                store_u64(dst.add(units.len() * wi.size), wi.size, 0);
            }
            return Ok(());
        }
    }
    if let Ok(cd) = obj.cast::<CData>() {
        let c = cd.get();
        if let Kind::Array(src_item, _) = &c.ty().kind {
            if same_type(src_item, item) && c.length <= n {
                let src = c.data_addr(obj.py())?;
                std::ptr::copy(src as *const u8, dst, c.length * isz);
                return Ok(());
            }
        }
    }
    Err(array_init_type_error(arr_ty, item, obj))
}

/// TypeError for an array initializer of the wrong kind.
pub fn array_init_type_error(arr_ty: &TypeRef, item: &TypeRef, obj: &Bound<'_, PyAny>) -> PyErr {
    let what = if is_char_item(item) {
        "a bytes or list or tuple"
    } else if wide_item(item).is_some() {
        "a unicode or list or tuple"
    } else {
        "a list or tuple"
    };
    PyTypeError::new_err(format!("initializer for ctype '{}' must be {what}, not {}", arr_ty.cname(), describe(obj)))
}

/// "int", or "cdata 'int *'" for cdata (as in cffi's messages).
pub fn describe(obj: &Bound<'_, PyAny>) -> String {
    match obj.cast::<CData>() {
        Ok(cd) => format!("cdata '{}'", cd.get().ty().cname()),
        Err(_) => type_name(obj),
    }
}

/// Struct/union from list/tuple (positional), dict (by name) or a same-type cdata (copy).
unsafe fn write_record(ty: &TypeRef, obj: &Bound<'_, PyAny>, dst: *mut u8, avail: usize) -> PyResult<()> {
    let Some(layout) = ty.record_layout() else {
        return Err(PyTypeError::new_err(format!("'{}' is opaque or has an unknown layout", ty.cname())));
    };
    if layout.partial {
        return Err(super::errors::VerificationMissing::new_err(format!(
            "'{}' has ... in its declaration: its layout is only known to a C compiler",
            ty.cname()
        )));
    }
    let is_union = matches!(&ty.kind, Kind::Record(r) if r.is_union);
    if let Ok(cd) = obj.cast::<CData>() {
        let c = cd.get();
        if same_type(c.ty(), ty) {
            let src = c.data_addr(obj.py())?;
            std::ptr::copy(src as *const u8, dst, layout.size);
            return Ok(());
        }
    }
    let items: Option<Vec<Bound<'_, PyAny>>> = if let Ok(l) = obj.cast::<PyList>() {
        Some(l.iter().collect())
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        Some(t.iter().collect())
    } else {
        None
    };
    if let Some(items) = items {
        let max = if is_union { 1 } else { layout.fields.len() };
        if items.len() > max {
            return Err(PyValueError::new_err(format!("too many initializers for '{}' (got {})", ty.cname(), items.len())));
        }
        for (f, x) in layout.fields.iter().zip(items.iter()) {
            write_field(layout, f, x, dst, avail)?;
        }
        return Ok(());
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        for (k, v) in d.iter() {
            let name: String = match k.cast::<PyString>() {
                Ok(s) => s.to_str()?.to_string(),
                Err(_) => return Err(PyTypeError::new_err("struct initializer dict keys must be str")),
            };
            let Some(f) = layout.fields.iter().find(|f| f.name == name) else {
                return Err(pyo3::exceptions::PyKeyError::new_err(name));
            };
            write_field(layout, f, &v, dst, avail)?;
        }
        return Ok(());
    }
    Err(PyTypeError::new_err(format!(
        "initializer for ctype '{}' must be a list or tuple or dict or struct-cdata, not {}",
        ty.cname(),
        describe(obj)
    )))
}

/// Writes one field (bitfields range-checked against their width).
pub(crate) unsafe fn write_field(
    layout: &RecordLayout,
    f: &crate::types::model::Field,
    obj: &Bound<'_, PyAny>,
    base: *mut u8,
    avail: usize,
) -> PyResult<()> {
    let _ = layout;
    if f.bitsize >= 0 {
        return write_bitfield(&f.ty, f.bitshift, f.bitsize, obj, base.add(f.offset));
    }
    let room = avail.saturating_sub(f.offset);
    if let Kind::Array(item, None) = &f.ty.kind {
        // flexible array member: only as many items as were allocated; an int initializer
        // only gave `new` the length
        if unsafe { ffi::PyLong_Check(obj.as_ptr()) } != 0 {
            return Ok(());
        }
        let isz = item.size().unwrap_or(1).max(1);
        return write_array(&f.ty, item, room / isz, obj, base.add(f.offset));
    }
    write_sized(&f.ty, obj, base.add(f.offset), room)
}

fn bitfield_info(ty: &TypeRef) -> PyResult<PrimInfo> {
    match &ty.kind {
        Kind::Prim(pi) => Ok(*pi),
        Kind::Enum(e) => Ok(e.underlying_info()),
        _ => Err(PyTypeError::new_err(format!("bitfield of non-integer type '{}'", ty.cname()))),
    }
}

/// Stores a bitfield; the storage unit at `unit` has the field type's size.
pub(crate) unsafe fn write_bitfield(ty: &TypeRef, shift: i32, bits: i32, obj: &Bound<'_, PyAny>, unit: *mut u8) -> PyResult<()> {
    let info = bitfield_info(ty)?;
    let signed = info.signed && info.class != PrimClass::Bool;
    let v: i128 = match int_value(obj)? {
        IntVal::Small(v) => v,
        _ => i128::MAX,
    };
    let (lo, hi) = if signed && bits > 0 {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    if v < lo || v > hi {
        let s = obj.str().map(|s| s.to_string()).unwrap_or_default();
        return Err(PyOverflowError::new_err(format!(
            "value {s} outside the range allowed by the bit field width: {lo} <= x <= {hi}"
        )));
    }
    let (raw_off, nbytes) = bit_span(shift, bits);
    let p = unit.add(raw_off);
    let local_shift = shift - (raw_off as i32) * 8;
    let mut word = load_u64_n(p, nbytes);
    let mask: u128 = ((1u128 << bits) - 1) << local_shift;
    let w = ((word as u128 & !mask) | (((v as u128) << local_shift) & mask)) as u64;
    word = w;
    store_u64_n(p, nbytes, word);
    Ok(())
}

/// The bytes a bitfield occupies: (byte offset from the unit, number of bytes ≤ 8).
fn bit_span(shift: i32, bits: i32) -> (usize, usize) {
    let first = (shift / 8) as usize;
    let last = ((shift + bits.max(1) - 1) / 8) as usize;
    (first, last - first + 1)
}

unsafe fn load_u64_n(p: *const u8, n: usize) -> u64 {
    let mut b = [0u8; 8];
    std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), n.min(8));
    u64::from_le_bytes(b)
}

unsafe fn store_u64_n(p: *mut u8, n: usize, v: u64) {
    let b = v.to_le_bytes();
    std::ptr::copy_nonoverlapping(b.as_ptr(), p, n.min(8));
}

/// Reads a bitfield with sign extension for signed types.
pub(crate) unsafe fn read_bitfield(py: Python<'_>, ty: &TypeRef, shift: i32, bits: i32, unit: *const u8) -> PyResult<Py<PyAny>> {
    let info = bitfield_info(ty)?;
    let (raw_off, nbytes) = bit_span(shift, bits);
    let local_shift = shift - (raw_off as i32) * 8;
    let word = load_u64_n(unit.add(raw_off), nbytes) as u128;
    let raw = (word >> local_shift) & ((1u128 << bits) - 1);
    if info.class == PrimClass::Bool {
        return Ok(bool_to_py(py, raw != 0));
    }
    if info.signed && bits > 0 && raw >> (bits - 1) & 1 == 1 {
        let v = raw as i128 - (1i128 << bits);
        i64_to_py(py, v as i64)
    } else {
        u64_to_py(py, raw as u64)
    }
}

// ---------------------------------------------------------------------------------------
// Pointers.

/// Same C type (the same node, or the same spelling when coming from another FFI).
pub fn same_type(a: &TypeRef, b: &TypeRef) -> bool {
    std::sync::Arc::ptr_eq(a, b) || a.cname_template == b.cname_template
}

fn is_void(t: &TypeRef) -> bool {
    matches!(t.kind, Kind::Void)
}

/// The address a pointer-typed slot of type `target` gets from `obj`: a cdata pointer of
/// the same/compatible type, an array of the item type, NULL; `void *` accepts any
/// pointer/array and is accepted by any pointer. `None` and ints are rejected (None is not
/// NULL).
pub fn pointer_from_cdata(target: &TypeRef, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let Ok(cd) = obj.cast::<CData>() else {
        return Err(PyTypeError::new_err(format!(
            "initializer for ctype '{}' must be a cdata pointer, not {}",
            target.cname(),
            type_name(obj)
        )));
    };
    let c = cd.get();
    let src = c.ty();
    let (src_item, addr) = match &src.kind {
        Kind::Pointer(i) => (Some(i), c.addr),
        Kind::FuncPtr(_) => (None, c.addr),
        Kind::Array(i, _) => (Some(i), c.data_addr(obj.py())?),
        _ => {
            return Err(PyTypeError::new_err(format!(
                "initializer for ctype '{}' must be a pointer to same type, not cdata '{}'",
                target.cname(),
                src.cname()
            )))
        }
    };
    if std::sync::Arc::ptr_eq(target, src) {
        return Ok(addr);
    }
    let target_item = match &target.kind {
        Kind::Pointer(i) => Some(i),
        _ => None,
    };
    if let Some(ti) = target_item {
        if is_void(ti) {
            return Ok(addr);
        }
    }
    if let Some(si) = src_item {
        if is_void(si) && matches!(src.kind, Kind::Pointer(_)) {
            return Ok(addr);
        }
    }
    if same_type(target, src) {
        return Ok(addr);
    }
    if let (Some(ti), Some(si)) = (target_item, src_item) {
        if same_type(ti, si) {
            return Ok(addr);
        }
        if is_char_item(si) {
            return Err(PyTypeError::new_err(format!(
                "implicit cast from '{}' to a different pointer type: (check that the types are as you expect; use an explicit ffi.cast() if they are correct)",
                src.cname()
            )));
        }
        if is_char_item(ti) {
            return Err(PyTypeError::new_err(format!(
                "implicit cast to '{}' from a different pointer type.(check that the types are as you expect; use an explicit ffi.cast() if they are correct)",
                target.cname()
            )));
        }
    }
    Err(PyTypeError::new_err(format!(
        "initializer for ctype '{}' must be a pointer to same type, not cdata '{}'",
        target.cname(),
        src.cname()
    )))
}

/// Temporaries created while converting call arguments (arrays built from lists, encoded
/// wide strings, referenced bytes objects). Keep it alive until the C call returns.
#[derive(Default)]
pub struct KeepAlive {
    buffers: Vec<Vec<u64>>,
    objects: Vec<Py<PyAny>>,
}

impl KeepAlive {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn clear(&mut self) {
        self.buffers.clear();
        self.objects.clear();
    }
    /// A zeroed 8-byte-aligned temporary of `size` bytes, alive as long as `self`.
    pub fn alloc(&mut self, size: usize) -> *mut u8 {
        let v = vec![0u64; size.div_ceil(8).max(1)];
        self.buffers.push(v);
        self.buffers.last_mut().map(|v| v.as_mut_ptr() as *mut u8).unwrap_or(std::ptr::null_mut())
    }
    pub fn keep(&mut self, obj: Py<PyAny>) {
        self.objects.push(obj);
    }
}

/// Converts a call argument for a parameter of pointer type `ty` (`T *` or function
/// pointer) to the raw pointer: cdata pointers/arrays/NULL as `pointer_from_cdata`;
/// `bytes` for `char *`-like params (no copy: C must not write into it); a list/tuple as a
/// temporary array of T (`[[...]]`/`[{...}]` for struct pointers); `str` for wchar_t/
/// char16_t/char32_t pointers (temporary NUL-terminated copy). Temporaries live in `keep`.
///
/// # Safety
/// The returned pointer is only valid while `keep` and `obj` are alive.
pub unsafe fn py_to_pointer_arg(py: Python<'_>, ffi: &FfiRef, ty: &TypeRef, obj: &Bound<'_, PyAny>, keep: &mut KeepAlive) -> PyResult<usize> {
    let _ = ffi;
    if obj.is_instance_of::<CData>() {
        return pointer_from_cdata(ty, obj);
    }
    let item = match &ty.kind {
        Kind::Pointer(i) => i,
        _ => return pointer_from_cdata(ty, obj),
    };
    if let Ok(b) = obj.cast::<PyBytes>() {
        let ok = matches!(&item.kind, Kind::Prim(pi) if pi.size == 1 && matches!(pi.class, PrimClass::Char | PrimClass::SignedInt | PrimClass::UnsignedInt | PrimClass::Bool))
            || is_void(item);
        if ok {
            keep.keep(b.clone().into_any().unbind());
            return Ok(b.as_bytes().as_ptr() as usize);
        }
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        if let Some(isz) = item.size() {
            let n = obj.len()?;
            let mem = keep.alloc(isz * n);
            write_array(ty, item, n, obj, mem)?;
            return Ok(mem as usize);
        }
    }
    if let Ok(s) = obj.cast::<PyString>() {
        if let Some(wi) = wide_item(item) {
            let units = encode_wide(s, wi.size)?;
            let mem = keep.alloc(wi.size * (units.len() + 1));
            for (i, &u) in units.iter().enumerate() {
                store_u64(mem.add(i * wi.size), wi.size, u as u64);
            }
            return Ok(mem as usize);
        }
    }
    let _ = py;
    pointer_from_cdata(ty, obj)
}

/// A non-owning pointer cdata of type `ty` (pointer or function pointer) with value `addr`
/// (what a call returning a pointer gives).
pub fn cdata_from_pointer(py: Python<'_>, ffi: &FfiRef, ty: &TypeRef, addr: usize) -> PyResult<Py<PyAny>> {
    let ct = ffi.ctype_of(py, ty);
    Ok(CData::new_pointer(py, ct, addr)?.into_any())
}

/// An owning cdata holding a copy of the struct/union value at `src` (by-value results and
/// callback arguments). For other types, same as `read_value`.
///
/// # Safety
/// `src` must be valid for `ty`'s size.
pub unsafe fn new_owned_copy(py: Python<'_>, ffi: &FfiRef, ty: &TypeRef, src: *const u8) -> PyResult<Py<PyAny>> {
    match &ty.kind {
        Kind::Record(_) => {
            let size = ty.size().ok_or_else(|| PyTypeError::new_err(format!("'{}' has an unknown size", ty.cname())))?;
            let ct = ffi.ctype_of(py, ty);
            let cd = CData::new_owned_struct(py, ct, size)?;
            let dst = cd.get().addr as *mut u8;
            std::ptr::copy_nonoverlapping(src, dst, size);
            Ok(cd.into_any())
        }
        _ => read_value(py, ffi, ty, src),
    }
}

/// `Prim` of a primitive type, if it is one.
pub fn prim_of(ty: &TypeRef) -> Option<Prim> {
    match &ty.kind {
        Kind::Prim(pi) => Some(pi.prim),
        _ => None,
    }
}

//! Values of any C type at an address: reading them as Python values or cdata views, and
//! storing Python objects with cffi's rules (struct field / array item assignment).

use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::bitfield::write_bitfield;
use super::chars::{encode_wide, is_byte_item, is_char_item, wide_item};
use super::pointer::{pointer_from_cdata, same_type};
use super::prim::{read_prim, write_prim};
use super::scalar::{describe, i64_to_py, py_to_i64_named, py_to_u64_named, u64_to_py};
use crate::py::cdata::{invalid_addr, null_err, CData, Keeper};
use crate::py::ctype::CType;
use crate::py::errors::VerificationMissing;
use crate::py::mem::{load_i64, load_ptr, load_u64, store_ptr, store_u64};
use crate::py::state::FfiRef;
use crate::types::model::{Kind, PrimClass, RecordLayout, TypeRef};

/// Reads a value of type `ty` at `src`, like reading a struct field: primitives → Python
/// values, enums → int, pointers → (non-owning) pointer cdata, structs/unions/arrays →
/// non-owning cdata views of the memory.
///
/// # Safety
/// `src` must be valid for `ty`'s size.
pub unsafe fn read_value(
    py: Python<'_>,
    ffi: &FfiRef,
    ty: &TypeRef,
    src: *const u8,
) -> PyResult<Py<PyAny>> {
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
        Kind::Pointer(_) | Kind::FuncPtr(_) => {
            Ok(CData::new_pointer(py, ct_obj.clone_ref(py), load_ptr(src))?.into_any())
        }
        Kind::Record(_) => {
            Ok(CData::new_view(py, ct_obj.clone_ref(py), src as usize, 0, keeper, 0)?.into_any())
        }
        Kind::Array(_, Some(n)) => {
            Ok(CData::new_view(py, ct_obj.clone_ref(py), src as usize, *n, keeper, 0)?.into_any())
        }
        Kind::Array(_, None) => Err(PyTypeError::new_err(format!(
            "cannot read a value of type '{}'",
            ct.ty.cname()
        ))),
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
pub unsafe fn write_value(
    py: Python<'_>,
    ffi: &FfiRef,
    ty: &TypeRef,
    obj: &Bound<'_, PyAny>,
    dst: *mut u8,
) -> PyResult<()> {
    let _ = (py, ffi);
    write_sized(ty, obj, dst, usize::MAX)
}

/// `write_value` with the number of bytes available at `dst` (bounds a flexible array
/// member or an open array's items).
///
/// # Safety
/// `dst` must be valid for `avail` bytes, or for `ty`'s size when that is smaller.
pub unsafe fn write_sized(
    ty: &TypeRef,
    obj: &Bound<'_, PyAny>,
    dst: *mut u8,
    avail: usize,
) -> PyResult<()> {
    match &ty.kind {
        Kind::Prim(info) => write_prim(obj, ty, info, dst),
        Kind::Enum(e) => {
            let info = e.underlying_info();
            let name = || ty.cname();
            let bits = if info.signed {
                py_to_i64_named(obj, &info, &name)? as u64
            } else {
                py_to_u64_named(obj, &info, &name)?
            };
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

/// Writes an array of `n` items (`arr_ty` is used in messages) from a list/tuple, bytes
/// (char / _Bool items), str (wide-char items) or a cdata array of the same type.
///
/// # Safety
/// `dst` must be valid for `n` items.
pub unsafe fn write_array(
    arr_ty: &TypeRef,
    item: &TypeRef,
    n: usize,
    obj: &Bound<'_, PyAny>,
    dst: *mut u8,
) -> PyResult<()> {
    let isz = item.size().unwrap_or(0);
    if let Ok(l) = obj.cast::<PyList>() {
        if l.len() > n {
            return Err(PyIndexError::new_err(format!(
                "too many initializers for '{}' (got {})",
                arr_ty.cname(),
                l.len()
            )));
        }
        for (i, x) in l.iter().enumerate() {
            write_sized(item, &x, dst.add(i * isz), isz)?;
        }
        return Ok(());
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        if t.len() > n {
            return Err(PyIndexError::new_err(format!(
                "too many initializers for '{}' (got {})",
                arr_ty.cname(),
                t.len()
            )));
        }
        for (i, x) in t.iter().enumerate() {
            write_sized(item, &x, dst.add(i * isz), isz)?;
        }
        return Ok(());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        let is_bool = matches!(&item.kind, Kind::Prim(pi) if pi.class == PrimClass::Bool);
        if is_byte_item(item) {
            let s = b.as_bytes();
            if s.len() > n {
                return Err(PyIndexError::new_err(format!(
                    "initializer bytes is too long for '{}' (got {} characters)",
                    arr_ty.cname(),
                    s.len()
                )));
            }
            if is_bool && s.iter().any(|&c| c > 1) {
                return Err(PyValueError::new_err(
                    "an array of _Bool can only contain \\x00 or \\x01",
                ));
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
            // Only an array of the very same type (length included), as in cffi.
            if same_type(src_item, item) && c.length == n {
                let src = c.data_addr(obj.py())?;
                if invalid_addr(src) {
                    return Err(null_err(&c.ty().cname()));
                }
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
    PyTypeError::new_err(format!(
        "initializer for ctype '{}' must be {what}, not {}",
        arr_ty.cname(),
        describe(obj)
    ))
}

/// Struct/union from list/tuple (positional), dict (by name) or a same-type cdata (copy).
///
/// # Safety
/// `dst` must be valid for the record's size (or `avail` bytes, if larger).
unsafe fn write_record(
    ty: &TypeRef,
    obj: &Bound<'_, PyAny>,
    dst: *mut u8,
    avail: usize,
) -> PyResult<()> {
    let Some(layout) = ty.record_layout() else {
        return Err(PyTypeError::new_err(format!(
            "'{}' is opaque or has an unknown layout",
            ty.cname()
        )));
    };
    if layout.partial {
        return Err(VerificationMissing::new_err(format!(
            "'{}' has ... in its declaration: its layout is only known to a C compiler",
            ty.cname()
        )));
    }
    if let Ok(cd) = obj.cast::<CData>() {
        let c = cd.get();
        if same_type(c.ty(), ty) {
            let src = c.data_addr(obj.py())?;
            if invalid_addr(src) {
                return Err(null_err(&c.ty().cname()));
            }
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
        // A list fills the fields in order, skipping those of union members after the
        // first (as cffi).
        let positional = layout
            .fields
            .iter()
            .filter(|f| f.flags & crate::types::model::IGNORE_IN_CTOR == 0);
        if items.len() > positional.clone().count() {
            return Err(PyValueError::new_err(format!(
                "too many initializers for '{}' (got {})",
                ty.cname(),
                items.len()
            )));
        }
        for (f, x) in positional.zip(items.iter()) {
            write_field(layout, f, x, dst, avail)?;
        }
        return Ok(());
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        for (k, v) in d.iter() {
            let name: String = match k.cast::<PyString>() {
                Ok(s) => s.to_str()?.to_string(),
                Err(_) => {
                    return Err(PyTypeError::new_err(
                        "struct initializer dict keys must be str",
                    ))
                }
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
///
/// # Safety
/// `base` must be valid for the record's size (or `avail` bytes, if larger).
pub unsafe fn write_field(
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
        // SAFETY: `obj` is a live object and the GIL is held.
        if unsafe { ffi::PyLong_Check(obj.as_ptr()) } != 0 {
            return Ok(());
        }
        let isz = item.size().unwrap_or(1).max(1);
        return write_array(&f.ty, item, room / isz, obj, base.add(f.offset));
    }
    write_sized(&f.ty, obj, base.add(f.offset), room)
}

//! Primitive C values in memory: storing a Python object as one, reading one as a
//! Python object (`long double` as a cdata, as cffi).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::scalar::{
    bool_to_py, char_to_py, complex_to_py, f64_to_py, i64_to_py, py_to_bool, py_to_char,
    py_to_complex, py_to_f64, py_to_i64_named, py_to_u64_named, py_to_wchar, u64_to_py,
    wchar_to_py,
};
use crate::py::cdata::CData;
use crate::py::longdouble;
use crate::py::mem::{load_f64, load_i64, load_u64, store_f64, store_u64};
use crate::py::state::FfiRef;
use crate::types::model::{Kind, PrimClass, PrimInfo, TypeRef};

/// Stores `obj` as primitive `info` at `dst` (unaligned).
///
/// # Safety
/// `dst` must be valid for `info.size` bytes.
pub unsafe fn write_prim(
    obj: &Bound<'_, PyAny>,
    ty: &TypeRef,
    info: &PrimInfo,
    dst: *mut u8,
) -> PyResult<()> {
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
        PrimClass::WideChar => {
            store_u64(dst, info.size, py_to_wchar(obj, info, &ty.cname())? as u64)
        }
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
    Ok(longdouble::from_f64(
        &crate::types::target::Target::host(),
        v,
    ))
}

/// Reads primitive `info` at `src` as a Python value (`long double` → a cdata, as cffi).
///
/// # Safety
/// `src` must be valid for `info.size` bytes.
#[inline]
pub unsafe fn read_prim(
    py: Python<'_>,
    ffi: &FfiRef,
    ty: &TypeRef,
    info: &PrimInfo,
    src: *const u8,
) -> PyResult<Py<PyAny>> {
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

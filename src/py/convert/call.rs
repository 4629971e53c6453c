//! What calls and callbacks convert beyond plain values: pointer arguments (with the
//! temporaries they need kept alive until the call returns) and results.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::chars::{encode_wide, wide_item};
use super::pointer::{is_void, pointer_from_cdata};
use super::value::{read_value, write_array};
use crate::py::cdata::CData;
use crate::py::mem::store_u64;
use crate::py::state::FfiRef;
use crate::types::model::{Kind, Prim, PrimClass, TypeRef};

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
        self.buffers
            .last_mut()
            .map(|v| v.as_mut_ptr() as *mut u8)
            .unwrap_or(std::ptr::null_mut())
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
pub unsafe fn py_to_pointer_arg(
    py: Python<'_>,
    ffi: &FfiRef,
    ty: &TypeRef,
    obj: &Bound<'_, PyAny>,
    keep: &mut KeepAlive,
) -> PyResult<usize> {
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
    if let Some((fp, owner)) = super::file::file_argument(py, ffi, item, obj)? {
        keep.keep(owner);
        return Ok(fp);
    }
    pointer_from_cdata(ty, obj)
}

/// A non-owning pointer cdata of type `ty` (pointer or function pointer) with value `addr`
/// (what a call returning a pointer gives).
pub fn cdata_from_pointer(
    py: Python<'_>,
    ffi: &FfiRef,
    ty: &TypeRef,
    addr: usize,
) -> PyResult<Py<PyAny>> {
    let ct = ffi.ctype_of(py, ty);
    Ok(CData::new_pointer(py, ct, addr)?.into_any())
}

/// An owning cdata holding a copy of the struct/union value at `src` (by-value results and
/// callback arguments). For other types, same as `read_value`.
///
/// # Safety
/// `src` must be valid for `ty`'s size.
pub unsafe fn new_owned_copy(
    py: Python<'_>,
    ffi: &FfiRef,
    ty: &TypeRef,
    src: *const u8,
) -> PyResult<Py<PyAny>> {
    match &ty.kind {
        Kind::Record(_) => {
            let size = ty.size().ok_or_else(|| {
                PyTypeError::new_err(format!("'{}' has an unknown size", ty.cname()))
            })?;
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

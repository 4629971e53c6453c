//! Type lookups: resolving a `cdecl` argument, `typeof`, `sizeof`, `alignof`, `offsetof`,
//! `getctype`, and the argument checks the other operations share.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::py::cdata::{CData, F_OWNING_VIEW};
use crate::py::convert;
use crate::py::ctype::CType;
use crate::py::errors::VerificationMissing;
use crate::py::state::FfiRef;
use crate::types::model::{Kind, TypeRef};

/// Resolves a `cdecl` argument: a type string (cached per FFI) or a CType.
pub fn resolve_ctype<'py>(shared: &FfiRef, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, CType>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return shared.parse_ctype(s);
    }
    if let Ok(ct) = obj.cast::<CType>() {
        return Ok(ct.clone());
    }
    Err(PyTypeError::new_err(format!(
        "expected a cdecl string or a ctype object, got {}",
        convert::describe(obj)
    )))
}

/// Why a struct or union has no layout, when its body was refused by layout rules (a
/// bit field wider than its type): cffi's TypeError at the type's first use.
pub fn layout_error(ty: &TypeRef) -> Option<PyErr> {
    match &ty.kind {
        Kind::Record(r) => match r.layout.get() {
            Some(Err(msg)) => Some(PyTypeError::new_err(msg.clone())),
            _ => None,
        },
        _ => None,
    }
}

pub fn size_or_err(ty: &TypeRef) -> PyResult<usize> {
    if let Some(s) = ty.size() {
        return Ok(s);
    }
    if let Some(e) = layout_error(ty) {
        return Err(e);
    }
    if let Some(l) = ty.record_layout() {
        if l.partial {
            return Err(VerificationMissing::new_err(format!(
                "'{}' has ... in its declaration: its layout is only known to a C compiler",
                ty.cname()
            )));
        }
    }
    Err(PyValueError::new_err(format!(
        "ctype '{}' is of unknown size",
        ty.cname()
    )))
}

/// The argument as a cdata, or the TypeError cffi raises.
pub fn as_cdata<'a, 'py>(obj: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, CData>> {
    obj.cast::<CData>().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a 'cdata' object, got {}",
            convert::describe(obj)
        ))
    })
}

/// Which field/index path `offsetof`/`addressof` follow: (final type, byte offset).
pub fn walk_path(
    py: Python<'_>,
    start: &TypeRef,
    path: &Bound<'_, PyTuple>,
    allow_ptr_first: bool,
) -> PyResult<(TypeRef, usize)> {
    let _ = py;
    let mut ty = start.clone();
    let mut off = 0usize;
    for (i, step) in path.iter().enumerate() {
        if let Ok(name) = step.cast::<PyString>() {
            let mut rec = ty.clone();
            if i == 0 && allow_ptr_first {
                if let Kind::Pointer(item) = &ty.kind {
                    if matches!(item.kind, Kind::Record(_)) {
                        rec = item.clone();
                    }
                }
            }
            let Kind::Record(_) = &rec.kind else {
                return Err(PyTypeError::new_err(format!(
                    "expected a struct or union ctype, got '{}'",
                    rec.cname()
                )));
            };
            let Some(layout) = rec.record_layout() else {
                return Err(PyTypeError::new_err(format!(
                    "struct or union '{}' is opaque",
                    rec.cname()
                )));
            };
            let name = name.to_str()?;
            let Some(f) = layout.fields.iter().find(|f| f.name == name) else {
                return Err(pyo3::exceptions::PyKeyError::new_err(name.to_string()));
            };
            if f.bitsize >= 0 {
                return Err(PyTypeError::new_err("not supported for bitfields"));
            }
            off += f.offset;
            ty = f.ty.clone();
        } else {
            let idx: isize = step.extract().map_err(|_| {
                PyTypeError::new_err("expected a field name (str) or an index (int)")
            })?;
            let item = match &ty.kind {
                Kind::Array(item, _) => item.clone(),
                Kind::Pointer(item) if i == 0 => item.clone(),
                _ => {
                    return Err(PyTypeError::new_err(format!(
                        "expected an array or pointer ctype, got '{}'",
                        ty.cname()
                    )))
                }
            };
            let isz = size_or_err(&item)?;
            off = (off as isize).wrapping_add(idx.wrapping_mul(isz as isize)) as usize;
            ty = item;
        }
    }
    Ok((ty, off))
}

/// `ffi.typeof(cdecl)`.
pub fn typeof_<'py>(shared: &FfiRef, cdecl: &Bound<'py, PyAny>) -> PyResult<Bound<'py, CType>> {
    if let Ok(cd) = cdecl.cast::<CData>() {
        return Ok(cd.get().ctype.bind(cdecl.py()).clone());
    }
    if cdecl.is_instance_of::<PyString>() {
        return resolve_ctype(shared, cdecl);
    }
    if let Ok(ct) = cdecl.cast::<CType>() {
        return Ok(ct.clone());
    }
    // A function taken from a lib: cffi's ABI mode gives a function-pointer cdata.
    if let Some((_, fn_type)) = crate::py::function::function_address(cdecl) {
        return Ok(shared.ctype_of(cdecl.py(), &fn_type).into_bound(cdecl.py()));
    }
    Err(PyTypeError::new_err(format!(
        "{}",
        cdecl.get_type().repr()?
    )))
}

/// `ffi.sizeof(obj)`.
pub fn sizeof(py: Python<'_>, shared: &FfiRef, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    if let Ok(cd) = obj.cast::<CData>() {
        let c = cd.get();
        return match &c.ty().kind {
            Kind::Array(item, _) => Ok(c.length * item.size().unwrap_or(0)),
            Kind::Record(_) => {
                let base = size_or_err(c.ty())?;
                let vs = if c.alloc_size > 0 {
                    c.alloc_size
                } else if let Some(k) = c.viewed_owner(py) {
                    if c.flags() & F_OWNING_VIEW != 0 {
                        k.get().alloc_size
                    } else {
                        0
                    }
                } else {
                    0
                };
                Ok(base.max(vs))
            }
            _ => size_or_err(c.ty()),
        };
    }
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<CType>() {
        let ct = resolve_ctype(shared, obj)?;
        return size_or_err(&ct.get().ty);
    }
    Err(PyTypeError::new_err("expected a 'cdata' or 'ctype' object"))
}

/// `ffi.alignof(obj)`.
pub fn alignof(shared: &FfiRef, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let ct = match obj.cast::<CData>() {
        Ok(cd) => cd.get().ctype.bind(obj.py()).clone(),
        Err(_) => resolve_ctype(shared, obj)?,
    };
    let ty = &ct.get().ty;
    ty.align().ok_or_else(|| {
        PyValueError::new_err(format!("ctype '{}' is of unknown alignment", ty.cname()))
    })
}

/// `ffi.offsetof(cdecl, *fields_or_indexes)`.
pub fn offsetof(
    py: Python<'_>,
    shared: &FfiRef,
    cdecl: &Bound<'_, PyAny>,
    fields_or_indexes: &Bound<'_, PyTuple>,
) -> PyResult<usize> {
    let ct = resolve_ctype(shared, cdecl)?;
    if fields_or_indexes.is_empty() {
        return Err(PyTypeError::new_err(
            "offsetof() expects at least 2 arguments",
        ));
    }
    Ok(walk_path(py, &ct.get().ty, fields_or_indexes, true)?.1)
}

/// `ffi.getctype(cdecl, replace_with)`.
pub fn getctype(shared: &FfiRef, cdecl: &Bound<'_, PyAny>, replace_with: &str) -> PyResult<String> {
    let ct = resolve_ctype(shared, cdecl)?;
    let ty = &ct.get().ty;
    let mut r = replace_with.trim().to_string();
    if r.starts_with('*') && ty.cname_template.contains("&[") {
        r = format!("({r})");
    } else if !r.is_empty() && !r.starts_with('[') && !r.starts_with('(') {
        r = format!(" {r}");
    }
    Ok(ty.cname_with(&r))
}

//! `ffi.string` and `ffi.unpack`: C data read out as bytes, str or a list.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

use super::types::{as_cdata, size_or_err};
use crate::py::cdata::{invalid_addr, CData};
use crate::py::convert::{self, decode_wide, load_u64};
use crate::types::model::{Kind, PrimClass, TypeRef};

fn char_like(item: &TypeRef) -> Option<(bool, usize)> {
    // (is_wide, unit size) for items ffi.string/unpack turn into bytes/str
    match &item.kind {
        Kind::Prim(pi) => match pi.class {
            PrimClass::Char => Some((false, 1)),
            PrimClass::SignedInt | PrimClass::UnsignedInt if pi.size == 1 => Some((false, 1)),
            PrimClass::WideChar => Some((true, pi.size)),
            _ => None,
        },
        _ => None,
    }
}

/// `ffi.string(cdata, maxlen)`.
pub fn string_of(py: Python<'_>, obj: &Bound<'_, PyAny>, maxlen: isize) -> PyResult<Py<PyAny>> {
    let cd = as_cdata(obj)?;
    let c = cd.get();
    let ty = c.ty();
    match &ty.kind {
        // SAFETY: the 16 value bytes of the cdata hold the character.
        Kind::Prim(pi) if matches!(pi.class, PrimClass::Char | PrimClass::WideChar) => unsafe {
            convert::read_prim(py, &c.ctype.get().ffi, ty, pi, c.value_bytes().as_ptr())
        },
        Kind::Enum(e) => {
            let v = c.int_value().unwrap_or(0);
            match e.items.iter().find(|(_, x)| *x == v) {
                Some((n, _)) => Ok(PyString::new(py, n).into_any().unbind()),
                None => Ok(PyString::new(py, &v.to_string()).into_any().unbind()),
            }
        }
        Kind::Pointer(item) | Kind::Array(item, _) => {
            let Some((wide, usz)) = char_like(item) else {
                return Err(PyTypeError::new_err(format!(
                    "string(): unexpected cdata '{}' argument",
                    ty.cname()
                )));
            };
            let base = c.data_addr(py)?;
            let is_array = matches!(ty.kind, Kind::Array(..));
            if invalid_addr(base) {
                return Err(PyRuntimeError::new_err(format!(
                    "cannot use string() on {}",
                    c.repr_string(py)?
                )));
            }
            // an owning pointer (from `new`) never reads past its allocation
            let mut limit = if is_array {
                c.length
            } else if c.alloc_size > 0 {
                c.alloc_size / usz
            } else {
                usize::MAX
            };
            if maxlen >= 0 {
                limit = limit.min(maxlen as usize);
            }
            let p = base as *const u8;
            let mut n = 0usize;
            // SAFETY: `base` was checked against invalid addresses; the scan stays within `limit`
            // items (an array's length, an owned block's size) or, for a plain pointer, up to the
            // NUL that C strings end with (cffi's contract with the caller).
            unsafe {
                if !wide {
                    let scan = if limit == usize::MAX {
                        libc::strlen(p as *const libc::c_char)
                    } else {
                        libc::strnlen(p as *const libc::c_char, limit)
                    };
                    n = scan;
                } else {
                    while n < limit && load_u64(p.add(n * usz), usz) != 0 {
                        n += 1;
                    }
                }
                if !wide {
                    Ok(PyBytes::new(py, std::slice::from_raw_parts(p, n))
                        .into_any()
                        .unbind())
                } else {
                    let units: Vec<u32> = (0..n)
                        .map(|i| load_u64(p.add(i * usz), usz) as u32)
                        .collect();
                    decode_wide(py, &units, usz)
                }
            }
        }
        _ => Err(PyTypeError::new_err(format!(
            "string(): unexpected cdata '{}' argument",
            ty.cname()
        ))),
    }
}

/// `ffi.unpack(cdata, length)`.
pub fn unpack_of(py: Python<'_>, obj: &Bound<'_, PyAny>, length: isize) -> PyResult<Py<PyAny>> {
    let cd = as_cdata(obj)?;
    let c = cd.get();
    let ty = c.ty();
    let item = match &ty.kind {
        Kind::Pointer(i) | Kind::Array(i, _) => i.clone(),
        _ => {
            return Err(PyTypeError::new_err(format!(
                "expected a pointer or array, got '{}'",
                ty.cname()
            )))
        }
    };
    if length < 0 {
        return Err(PyValueError::new_err("'length' cannot be negative"));
    }
    let n = length as usize;
    let base = c.data_addr(py)?;
    if base == 0 || (invalid_addr(base) && n > 0) {
        return Err(PyRuntimeError::new_err(format!(
            "cannot use unpack() on {}",
            c.repr_string(py)?
        )));
    }
    let p = base as *const u8;
    if let Some((wide, usz)) = char_like(&item) {
        if matches!(&item.kind, Kind::Prim(pi) if pi.class == PrimClass::Char) || wide {
            // SAFETY: `base` was checked against invalid addresses (for `n > 0`); the caller asks
            // for `n` items there, which cffi trusts.
            unsafe {
                if !wide {
                    return Ok(PyBytes::new(py, std::slice::from_raw_parts(p, n))
                        .into_any()
                        .unbind());
                }
                let units: Vec<u32> = (0..n)
                    .map(|i| load_u64(p.add(i * usz), usz) as u32)
                    .collect();
                return decode_wide(py, &units, usz);
            }
        }
    }
    let isz = size_or_err(&item)?;
    let ict = c.ctype.get().ffi.ctype_of(py, &item);
    let keeper = CData::keeper_for(cd);
    let out = PyList::empty(py);
    for i in 0..n {
        // SAFETY: item `i < n` of the range trusted above.
        let v = unsafe {
            convert::read_with_ctype(
                py,
                ict.get(),
                &ict,
                p.add(i * isz),
                keeper.as_ref().map(|k| k.clone_ref(py)),
            )?
        };
        out.append(v)?;
    }
    Ok(out.into_any().unbind())
}

//! Character items: which array/pointer items take bytes or str initializers, and str
//! as wide-char code units (UTF-16 with surrogate pairs for 2-byte units) and back.

use std::ffi::c_int;

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::types::model::{Kind, PrimClass, PrimInfo, TypeRef};

pub fn is_char_item(item: &TypeRef) -> bool {
    matches!(&item.kind, Kind::Prim(pi) if pi.class == PrimClass::Char)
}

/// Items a `bytes` initializer fills: char, signed/unsigned char, int8_t/uint8_t, _Bool.
pub fn is_byte_item(item: &TypeRef) -> bool {
    matches!(&item.kind, Kind::Prim(pi) if pi.size == 1 && matches!(pi.class, PrimClass::Char | PrimClass::SignedInt | PrimClass::UnsignedInt | PrimClass::Bool))
}

pub fn wide_item(item: &TypeRef) -> Option<PrimInfo> {
    match &item.kind {
        Kind::Prim(pi) if pi.class == PrimClass::WideChar => Some(*pi),
        _ => None,
    }
}

/// Encodes a str as wide-char code units of `size` bytes (UTF-16 with surrogates for 2).
pub fn encode_wide(s: &Bound<'_, PyString>, size: usize) -> PyResult<Vec<u32>> {
    // SAFETY: `s` is a str object and the GIL is held.
    let n = unsafe { ffi::PyUnicode_GetLength(s.as_ptr()) };
    let mut out = Vec::with_capacity(n as usize + 1);
    for i in 0..n {
        // SAFETY: `i` is below the length of `s`.
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
        if size == 2
            && (0xD800..0xDC00).contains(&u)
            && i + 1 < units.len()
            && (0xDC00..0xE000).contains(&units[i + 1])
        {
            cps.push(0x10000 + ((u - 0xD800) << 10) + (units[i + 1] - 0xDC00));
            i += 2;
        } else {
            cps.push(u);
            i += 1;
        }
    }
    for &c in &cps {
        if c > 0x10FFFF {
            return Err(PyValueError::new_err(format!(
                "character U+{c:x} is out of range"
            )));
        }
    }
    // Lone surrogates are valid in Python str but not in Rust String: build via ffi.
    if cps.iter().all(|&c| char::from_u32(c).is_some()) {
        for &c in &cps {
            s.push(char::from_u32(c).unwrap_or('\u{fffd}'));
        }
        return Ok(PyString::new(py, &s).into_any().unbind());
    }
    // SAFETY: `cps` holds `len` UCS-4 code points (all at most U+10FFFF, checked above) for the
    // call, which copies them; the GIL is held (`py`).
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyUnicode_FromKindAndData(
                ffi::PyUnicode_4BYTE_KIND as c_int,
                cps.as_ptr() as *const _,
                cps.len() as ffi::Py_ssize_t,
            ),
        )
        .map(Bound::unbind)
    }
}

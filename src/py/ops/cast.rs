//! `ffi.cast(ctype, value)`: a value converted to a primitive, or an address
//! reinterpreted as a pointer/array, with C's cast rules (integers truncated).

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::py::cdata::CData;
use crate::py::convert;
use crate::py::ctype::CType;
use crate::py::longdouble;
use crate::types::model::{Kind, PrimClass};

/// `ffi.cast(ct, value)`.
pub fn cast_value(
    py: Python<'_>,
    ct: &Bound<'_, CType>,
    value: &Bound<'_, PyAny>,
) -> PyResult<Py<CData>> {
    // A function taken from a lib is, for cffi's ABI mode, a function-pointer cdata.
    if let Some(fp) = crate::py::function::lib_function_cdata(py, value)? {
        return cast_value(py, ct, fp.bind(py));
    }
    let c = ct.get();
    let ty = &c.ty;
    let int_src = |v: &Bound<'_, PyAny>| -> PyResult<u64> {
        // SAFETY: `p` is a live object and the GIL is held; an all-ones result is checked for an
        // error.
        unsafe {
            let p = v.as_ptr();
            if ffi::PyLong_Check(p) != 0 {
                let r = ffi::PyLong_AsUnsignedLongLongMask(p);
                if r == u64::MAX {
                    if let Some(e) = PyErr::take(py) {
                        return Err(e);
                    }
                }
                return Ok(r);
            }
        }
        if let Ok(cd) = v.cast::<CData>() {
            if let Some(x) = cd.get().cast_int_source() {
                return Ok(x as u64);
            }
        }
        if let Ok(b) = v.cast::<PyBytes>() {
            if b.as_bytes().len() == 1 {
                return Ok(b.as_bytes()[0] as u64);
            }
        }
        if let Ok(s) = v.cast::<PyString>() {
            // SAFETY: `s` is a str object and the GIL is held.
            let n = unsafe { ffi::PyUnicode_GetLength(s.as_ptr()) };
            if n == 1 {
                // SAFETY: index 0 of a str of length 1.
                return Ok(unsafe { ffi::PyUnicode_ReadChar(s.as_ptr(), 0) } as u64);
            }
        }
        // SAFETY: `v` is a live object and the GIL is held.
        if unsafe { ffi::PyFloat_Check(v.as_ptr()) } != 0 {
            let f: f64 = v.extract()?;
            return Ok(if f < 0.0 { (f as i64) as u64 } else { f as u64 });
        }
        if v.hasattr("__index__")? {
            let i = v.call_method0("__index__")?;
            // SAFETY: `i` is the int `__index__` returned (alive for the call), the GIL is held.
            let r = unsafe { ffi::PyLong_AsUnsignedLongLongMask(i.as_ptr()) };
            return Ok(r);
        }
        Err(PyTypeError::new_err("an integer is required"))
    };
    match &ty.kind {
        Kind::Prim(pi) => {
            let mut bytes = [0u8; 16];
            let dst = bytes.as_mut_ptr();
            match pi.class {
                PrimClass::SignedInt
                | PrimClass::UnsignedInt
                | PrimClass::Char
                // SAFETY: `dst` is the 16-byte value buffer; primitive sizes are at most 16.
                | PrimClass::WideChar => unsafe {
                    convert::store_u64(dst, pi.size, int_src(value)?)
                },
                PrimClass::Bool => {
                    let nz = if let Ok(f) = value.cast::<pyo3::types::PyFloat>() {
                        f.value() != 0.0
                    // SAFETY: `value` is a live object and the GIL is held.
                    } else if unsafe { ffi::PyLong_Check(value.as_ptr()) } != 0 {
                        value.is_truthy()?
                    } else {
                        int_src(value)? != 0
                    };
                    bytes[0] = nz as u8;
                }
                PrimClass::Float => {
                    let f = cast_float_source(value)?;
                    // SAFETY: `dst` is the 16-byte value buffer; floats take at most 8.
                    unsafe { convert::store_f64(dst, pi.size, f) }
                }
                PrimClass::LongDouble => {
                    bytes = if let Ok(cd) = value.cast::<CData>().map(|c| c.get()) {
                        if matches!(&cd.ty().kind, Kind::Prim(p) if p.class == PrimClass::LongDouble)
                        {
                            *cd.value_bytes()
                        } else {
                            longdouble::from_f64(&c.ffi.target, cast_float_source(value)?)
                        }
                    } else {
                        longdouble::from_f64(&c.ffi.target, cast_float_source(value)?)
                    };
                }
                PrimClass::Complex => {
                    let (re, im) = if let Ok(cd) = value.cast::<CData>() {
                        match cd.get().float_value() {
                            Some(f) => (f, 0.0),
                            None => match cd.get().int_value() {
                                Some(i) => (i as f64, 0.0),
                                None => convert::py_to_complex(value)?,
                            },
                        }
                    } else {
                        convert::py_to_complex(value)?
                    };
                    let h = pi.size / 2;
                    // SAFETY: both halves of a complex value (at most 16 bytes) fit the 16-byte
                    // value buffer.
                    unsafe {
                        convert::store_f64(dst, h, re);
                        convert::store_f64(dst.add(h), h, im);
                    }
                }
            }
            CData::new_value(py, ct.clone().unbind(), &bytes)
        }
        Kind::Enum(e) => {
            let pi = e.underlying_info();
            let mut bytes = [0u8; 16];
            // SAFETY: enum sizes are at most 8 and the buffer holds 16 bytes.
            unsafe { convert::store_u64(bytes.as_mut_ptr(), pi.size, int_src(value)?) };
            CData::new_value(py, ct.clone().unbind(), &bytes)
        }
        Kind::Pointer(_) | Kind::FuncPtr(_) => {
            let addr = if let Ok(cd) = value.cast::<CData>() {
                let c2 = cd.get();
                match &c2.ty().kind {
                    Kind::Array(..) | Kind::Record(_) => c2.data_addr(py)?,
                    _ => match c2.cast_int_source() {
                        Some(v) => v as u64 as usize,
                        None => {
                            return Err(PyTypeError::new_err(format!(
                                "cannot cast {} to '{}'",
                                convert::describe(value),
                                ty.cname()
                            )))
                        }
                    },
                }
            // SAFETY: `value` is a live object and the GIL is held.
            } else if unsafe { ffi::PyFloat_Check(value.as_ptr()) } != 0 {
                let f: f64 = value.extract()?;
                f as i64 as usize
            } else {
                int_src(value)? as usize
            };
            Ok(CData::new_pointer(py, ct.clone().unbind(), addr)?)
        }
        Kind::Array(_, len) => {
            let addr = if let Ok(cd) = value.cast::<CData>() {
                let c2 = cd.get();
                match &c2.ty().kind {
                    Kind::Array(..) => c2.data_addr(py)?,
                    Kind::Pointer(_) | Kind::FuncPtr(_) => c2.addr,
                    _ => {
                        return Err(PyTypeError::new_err(format!(
                            "cannot cast {} to '{}'",
                            convert::describe(value),
                            ty.cname()
                        )))
                    }
                }
            } else {
                int_src(value)? as usize
            };
            CData::new_view(py, ct.clone().unbind(), addr, len.unwrap_or(0), None, 0)
        }
        _ => Err(PyTypeError::new_err(format!(
            "cannot cast to ctype '{}'",
            ty.cname()
        ))),
    }
}

fn cast_float_source(v: &Bound<'_, PyAny>) -> PyResult<f64> {
    if let Ok(cd) = v.cast::<CData>() {
        let c = cd.get();
        if let Some(f) = c.float_value() {
            return Ok(f);
        }
        if let Some(i) = c.int_value() {
            return Ok(i as f64);
        }
        return Err(PyTypeError::new_err(format!(
            "cannot cast {} to a float type",
            convert::describe(v)
        )));
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        if b.as_bytes().len() == 1 {
            return Ok(b.as_bytes()[0] as f64);
        }
    }
    convert::py_to_f64(v)
}

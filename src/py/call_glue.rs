//! Glue between call trampolines and the Python<->C conversion layer (src/py/convert.rs):
//! argument writing with temporaries, variadic-part rules, result boxing.

use pyo3::exceptions::{PyNotImplementedError, PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat};

use crate::jit::trampoline::Scalar;
use crate::types::model::{Kind, PrimClass, TypeRef};

/// Per-callable state the conversions need (the owning FFI).
#[derive(Clone, Default)]
pub struct CallContext {}

unsafe fn write_int(dst: *mut u8, size: usize, v: i128) {
    unsafe {
        match size {
            1 => *(dst as *mut u8) = v as u8,
            2 => (dst as *mut u16).write_unaligned(v as u16),
            4 => (dst as *mut u32).write_unaligned(v as u32),
            _ => (dst as *mut u64).write_unaligned(v as u64),
        }
    }
}

fn int_arg(obj: &Bound<'_, PyAny>, ty: &TypeRef, size: usize, signed: bool) -> PyResult<i128> {
    if obj.is_instance_of::<PyFloat>() {
        return Err(PyTypeError::new_err("an integer is required"));
    }
    let v: i128 = match obj.extract::<i128>() {
        Ok(v) => v,
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => i128::MAX,
        Err(e) => return Err(e),
    };
    let bits = 8 * size as u32;
    let (lo, hi) = if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    if v < lo || v > hi {
        return Err(PyOverflowError::new_err(format!(
            "integer {} does not fit '{}'",
            obj.str()?,
            ty.cname()
        )));
    }
    Ok(v)
}

/// Writes argument `index` of C type `ty` into `dst`; returns an object to release after
/// the call when the conversion made a temporary.
pub fn write_argument(
    _py: Python<'_>,
    _ctx: &CallContext,
    ty: &TypeRef,
    _index: usize,
    obj: &Bound<'_, PyAny>,
    dst: *mut u8,
) -> PyResult<Option<Py<PyAny>>> {
    match &ty.kind {
        Kind::Prim(p) => match p.class {
            PrimClass::SignedInt | PrimClass::UnsignedInt => {
                let v = int_arg(obj, ty, p.size, p.signed)?;
                unsafe { write_int(dst, p.size, v) };
            }
            PrimClass::Bool => {
                let v = int_arg(obj, ty, 1, false)?;
                if v > 1 {
                    return Err(PyOverflowError::new_err(format!(
                        "integer {} does not fit '_Bool'",
                        obj.str()?
                    )));
                }
                unsafe { write_int(dst, 1, v) };
            }
            PrimClass::Char => {
                let b = obj.cast::<PyBytes>().ok().filter(|b| b.as_bytes().len() == 1).ok_or_else(|| {
                    PyTypeError::new_err(format!(
                        "initializer for ctype 'char' must be a bytes of length 1, not {}",
                        obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                    ))
                })?;
                unsafe { *dst = b.as_bytes()[0] };
            }
            PrimClass::Float => {
                let d: f64 = obj.extract()?;
                unsafe {
                    if p.size == 4 {
                        (dst as *mut f32).write_unaligned(d as f32)
                    } else {
                        (dst as *mut f64).write_unaligned(d)
                    }
                }
            }
            _ => return Err(PyNotImplementedError::new_err(format!("argument of type '{}'", ty.cname()))),
        },
        Kind::Enum(e) => {
            let u = e.underlying_info();
            let v = int_arg(obj, ty, u.size, u.signed)?;
            unsafe { write_int(dst, u.size, v) };
        }
        _ => return Err(PyNotImplementedError::new_err(format!("argument of type '{}'", ty.cname()))),
    }
    Ok(None)
}

/// The register class of an argument in the variadic part, after C's default argument
/// promotions; the argument must be a cdata (cffi's rule).
pub fn vararg_scalar(_py: Python<'_>, _ctx: &CallContext, index: usize, obj: &Bound<'_, PyAny>) -> PyResult<Scalar> {
    Err(PyTypeError::new_err(format!(
        "argument {} passed in the variadic part needs to be a cdata object (got {})",
        index + 1,
        obj.get_type().name()?
    )))
}

pub fn write_vararg(_py: Python<'_>, _ctx: &CallContext, index: usize, obj: &Bound<'_, PyAny>, _dst: *mut u8) -> PyResult<()> {
    Err(PyTypeError::new_err(format!(
        "argument {} passed in the variadic part needs to be a cdata object (got {})",
        index + 1,
        obj.get_type().name()?
    )))
}

pub fn read_result(py: Python<'_>, _ctx: &CallContext, ty: &TypeRef, src: *const u8) -> PyResult<Py<PyAny>> {
    match &ty.kind {
        Kind::Prim(p) if p.class == PrimClass::Char => {
            Ok(PyBytes::new(py, &[unsafe { *src }]).into_any().unbind())
        }
        Kind::Prim(p) if p.class == PrimClass::Bool => {
            Ok(PyBool::new(py, unsafe { *src } != 0).to_owned().into_any().unbind())
        }
        _ => Err(PyNotImplementedError::new_err(format!("result of type '{}'", ty.cname()))),
    }
}

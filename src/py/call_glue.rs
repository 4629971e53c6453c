//! Glue between call trampolines and THE conversion layer (`super::convert`): which
//! converter an argument of a given C type goes through, the temporaries of pointer
//! arguments, cffi's rules for the variadic part, and result boxing. No conversion rule
//! lives here; this only dispatches.

use pyo3::exceptions::{PyNotImplementedError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::cdata::CData;
pub use super::convert::KeepAlive;
use super::convert;
use super::state::FfiRef;
use crate::jit::trampoline::Scalar;
use crate::types::model::{Kind, PrimClass, TypeRef};

/// Per-callable state the conversions need: the FFI owning the types.
pub type CallContext = FfiRef;

/// Writes argument `index` (C type `ty`) from `obj` into `dst`. Returns the temporaries
/// (boxed) to drop after the call, if the conversion made any.
pub fn write_argument(
    py: Python<'_>,
    ctx: &CallContext,
    ty: &TypeRef,
    obj: &Bound<'_, PyAny>,
    dst: *mut u8,
) -> PyResult<Option<Box<KeepAlive>>> {
    match &ty.kind {
        Kind::Pointer(item) => {
            // The argument vector holds `obj` for the whole call, so a cdata or a bytes
            // object needs no extra reference.
            if obj.is_instance_of::<CData>() {
                let p = convert::pointer_from_cdata(ty, obj)?;
                unsafe { convert::store_ptr(dst, p) };
                return Ok(None);
            }
            if let Ok(b) = obj.cast::<PyBytes>() {
                if matches!(&item.kind, Kind::Prim(p) if p.size == 1 && p.class != PrimClass::Bool)
                    || matches!(item.kind, Kind::Void)
                {
                    unsafe { convert::store_ptr(dst, b.as_bytes().as_ptr() as usize) };
                    return Ok(None);
                }
            }
            let mut keep = Box::new(KeepAlive::new());
            let p = match numbers_to_array(item, obj, &mut keep)? {
                Some(p) => p,
                None => unsafe { convert::py_to_pointer_arg(py, ctx, ty, obj, &mut keep)? },
            };
            unsafe { convert::store_ptr(dst, p) };
            Ok(Some(keep))
        }
        Kind::FuncPtr(_) if !obj.is_instance_of::<CData>() => {
            // A function taken from a lib (a builtin function object, not a cdata) passed
            // where a function pointer is expected: its C address, if the types agree.
            match super::function::function_address(obj) {
                Some((addr, fty)) if convert::same_type(&fty, ty) => {
                    unsafe { convert::store_ptr(dst, addr) };
                    Ok(None)
                }
                Some((_, fty)) => Err(PyTypeError::new_err(format!(
                    "initializer for ctype '{}' must be a pointer to same type, not function '{}'",
                    ty.cname(),
                    fty.cname()
                ))),
                None => {
                    let mut keep = Box::new(KeepAlive::new());
                    let p = unsafe { convert::py_to_pointer_arg(py, ctx, ty, obj, &mut keep)? };
                    unsafe { convert::store_ptr(dst, p) };
                    Ok(Some(keep))
                }
            }
        }
        Kind::FuncPtr(_) | Kind::Array(..) => {
            let mut keep = Box::new(KeepAlive::new());
            let p = unsafe { convert::py_to_pointer_arg(py, ctx, ty, obj, &mut keep)? };
            unsafe { convert::store_ptr(dst, p) };
            Ok(Some(keep))
        }
        Kind::Record(_) => write_record_argument(py, ctx, ty, obj, dst),
        _ => {
            unsafe { convert::write_value(py, ctx, ty, obj, dst)? };
            Ok(None)
        }
    }
}

/// A list/tuple passed for a pointer to integers or floating-point numbers: the temporary
/// array is filled through the scalar converters directly (the general array writer
/// re-dispatches on the item type for every element). `None`: not this case.
fn numbers_to_array(item: &TypeRef, obj: &Bound<'_, PyAny>, keep: &mut KeepAlive) -> PyResult<Option<usize>> {
    let Kind::Prim(info) = &item.kind else { return Ok(None) };
    let kind = match info.class {
        PrimClass::SignedInt | PrimClass::UnsignedInt | PrimClass::Float => info.class,
        _ => return Ok(None),
    };
    let seq: Vec<Bound<'_, PyAny>> = if let Ok(l) = obj.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Ok(None);
    };
    let size = info.size;
    let mem = keep.alloc(size * seq.len());
    let name = item.cname();
    for (i, x) in seq.iter().enumerate() {
        unsafe {
            let d = mem.add(i * size);
            match kind {
                PrimClass::SignedInt => convert::store_u64(d, size, convert::py_to_i64(x, info, &name)? as u64),
                PrimClass::UnsignedInt => convert::store_u64(d, size, convert::py_to_u64(x, info, &name)?),
                _ => convert::store_f64(d, size, convert::py_to_f64(x)?),
            }
        }
    }
    Ok(Some(mem as usize))
}

/// A struct/union argument passed by value (`ty` is a record type), written to `dst`.
#[inline(never)]
pub fn write_record_argument(
    py: Python<'_>,
    ctx: &CallContext,
    ty: &TypeRef,
    obj: &Bound<'_, PyAny>,
    dst: *mut u8,
) -> PyResult<Option<Box<KeepAlive>>> {
    match obj.cast::<CData>() {
        // From a cdata of the very same type: a plain copy.
        Ok(cd) if std::sync::Arc::ptr_eq(cd.get().ty(), ty) => {
            if let Kind::Record(r) = &ty.kind {
                if let Some(Ok(l)) = r.layout.get() {
                    let src = cd.get().data_addr(py)?;
                    unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst, l.size) };
                    return Ok(None);
                }
            }
        }
        Ok(_) => {}
        // The cell is stack memory of the trampoline: fields (and padding) a list or dict
        // leaves out must read as zero, as in `ffi.new`.
        Err(_) => {
            if let Some(size) = ty.size() {
                unsafe { std::ptr::write_bytes(dst, 0, size) };
            }
        }
    }
    unsafe { convert::write_value(py, ctx, ty, obj, dst)? };
    Ok(None)
}

fn not_cdata(index: usize, obj: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "argument {} passed in the variadic part needs to be a cdata object (got {})",
        index + 1,
        obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    ))
}

/// The register class of an argument of the variadic part after C's default argument
/// promotions (small integers → int, float → double). cffi accepts only cdata there.
pub fn vararg_scalar(_py: Python<'_>, _ctx: &CallContext, index: usize, obj: &Bound<'_, PyAny>) -> PyResult<Scalar> {
    let cd = obj.cast::<CData>().map_err(|_| not_cdata(index, obj))?;
    let ty = cd.get().ty().clone();
    let int = |size: usize, signed: bool| {
        if size < 4 {
            Scalar::Int { size: 4, signed: true }
        } else {
            Scalar::Int { size: size as u8, signed }
        }
    };
    Ok(match &ty.kind {
        Kind::Prim(p) => match p.class {
            PrimClass::Float => Scalar::F64,
            PrimClass::LongDouble | PrimClass::Complex => {
                return Err(PyNotImplementedError::new_err(format!(
                    "cdata '{}' in the variadic part is not supported",
                    ty.cname()
                )))
            }
            _ => int(p.size, p.signed),
        },
        Kind::Enum(e) => {
            let u = e.underlying_info();
            int(u.size, u.signed)
        }
        Kind::Pointer(_) | Kind::Array(..) | Kind::FuncPtr(_) => Scalar::Int { size: 8, signed: false },
        _ => {
            return Err(PyNotImplementedError::new_err(format!(
                "cdata '{}' passed by value in the variadic part is not supported",
                ty.cname()
            )))
        }
    })
}

/// Writes a variadic-part cdata argument, promoted as `vararg_scalar` said.
pub fn write_vararg(py: Python<'_>, _ctx: &CallContext, index: usize, obj: &Bound<'_, PyAny>, dst: *mut u8) -> PyResult<()> {
    let cd = obj.cast::<CData>().map_err(|_| not_cdata(index, obj))?;
    let c = cd.get();
    let ty = c.ty().clone();
    unsafe {
        match &ty.kind {
            Kind::Pointer(_) | Kind::FuncPtr(_) => convert::store_ptr(dst, c.addr),
            Kind::Array(..) => convert::store_ptr(dst, c.data_addr(py)?),
            Kind::Prim(p) if p.class == PrimClass::Float => {
                let src = c.data_addr(py)? as *const u8;
                convert::store_f64(dst, 8, convert::load_f64(src, p.size));
            }
            Kind::Prim(p) => {
                let src = c.data_addr(py)? as *const u8;
                let v = if p.signed { convert::load_i64(src, p.size) as u64 } else { convert::load_u64(src, p.size) };
                convert::store_u64(dst, 8, v);
            }
            Kind::Enum(e) => {
                let u = e.underlying_info();
                let src = c.data_addr(py)? as *const u8;
                let v = if u.signed { convert::load_i64(src, u.size) as u64 } else { convert::load_u64(src, u.size) };
                convert::store_u64(dst, 8, v);
            }
            _ => return Err(PyNotImplementedError::new_err(format!("cdata '{}' in the variadic part", ty.cname()))),
        }
    }
    Ok(())
}

/// Boxes a result the trampoline does not box inline (char, wide chars, pointers).
pub fn read_result(py: Python<'_>, ctx: &CallContext, ty: &TypeRef, src: *const u8) -> PyResult<Py<PyAny>> {
    match &ty.kind {
        Kind::Pointer(_) | Kind::FuncPtr(_) => {
            convert::cdata_from_pointer(py, ctx, ty, unsafe { convert::load_ptr(src) })
        }
        _ => unsafe { convert::new_owned_copy(py, ctx, ty, src) },
    }
}

//! Pointer values: which cdata a pointer-typed slot accepts, and the address it gets.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use super::chars::is_char_item;
use super::scalar::type_name;
use crate::py::cdata::CData;
use crate::types::model::{Kind, TypeRef};

/// Same C type (the same node, or the same spelling when coming from another FFI).
pub fn same_type(a: &TypeRef, b: &TypeRef) -> bool {
    std::sync::Arc::ptr_eq(a, b) || a.cname_template == b.cname_template
}

pub fn is_void(t: &TypeRef) -> bool {
    matches!(t.kind, Kind::Void)
}

/// The address a pointer-typed slot of type `target` gets from `obj`: a cdata pointer of
/// the same/compatible type, an array of the item type, NULL; `void *` accepts any
/// pointer/array and is accepted by any pointer. `None` and ints are rejected (None is not
/// NULL).
pub fn pointer_from_cdata(target: &TypeRef, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let lib_fn;
    let (src, src_item, addr) = match obj.cast::<CData>() {
        Ok(cd) => {
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
            (src, src_item, addr)
        }
        // A function taken from a lib stands for its function-pointer cdata.
        Err(_) => match super::super::cdata::lib_function_address(obj) {
            Some((addr, fty)) => {
                lib_fn = fty;
                (&lib_fn, None, addr)
            }
            None => {
                return Err(PyTypeError::new_err(format!(
                    "initializer for ctype '{}' must be a cdata pointer, not {}",
                    target.cname(),
                    type_name(obj)
                )))
            }
        },
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

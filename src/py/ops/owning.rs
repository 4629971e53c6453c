//! Ownership operations: `ffi.gc`, `ffi.addressof`, `ffi.new_handle` /
//! `ffi.from_handle`, `ffi.release`.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::types::{as_cdata, walk_path};
use crate::py::cdata::{CData, Owner};
use crate::py::convert;
use crate::py::handles;
use crate::py::state::FfiRef;
use crate::types::model::{Kind, Prim};

/// `ffi.gc(cdata, destructor)`.
pub fn gc(
    py: Python<'_>,
    cdata: &Bound<'_, PyAny>,
    destructor: &Bound<'_, PyAny>,
) -> PyResult<Py<PyAny>> {
    let cd = as_cdata(cdata)?;
    let c = cd.get();
    if destructor.is_none() {
        if c.detach_destructor(py)? {
            // cffi 2.0 returns None here (not the cdata).
            return Ok(py.None());
        }
        return Err(PyTypeError::new_err(
            "Can remove destructor only on a object previously returned by ffi.gc()",
        ));
    }
    let owner = Owner::Gc {
        orig: cdata.clone().unbind(),
        destructor: Some(destructor.clone().unbind()),
    };
    Ok(CData::new_owning(py, c.ctype.clone_ref(py), c.addr, c.length, 0, owner)?.into_any())
}

/// `ffi.addressof(cdata, *fields_or_indexes)` and `ffi.addressof(lib, name)`.
pub fn addressof(
    py: Python<'_>,
    shared: &FfiRef,
    cdata: &Bound<'_, PyAny>,
    fields_or_indexes: &Bound<'_, PyTuple>,
) -> PyResult<Py<PyAny>> {
    let Ok(cd) = cdata.cast::<CData>() else {
        if let Some(lib) = crate::py::lib_object::lib_state(cdata) {
            let name: String = match fields_or_indexes.len() {
                1 => fields_or_indexes.get_item(0)?.extract()?,
                n => {
                    return Err(PyTypeError::new_err(format!(
                        "addressof(lib, name) takes one name, got {n}"
                    )))
                }
            };
            return crate::py::lib_object::addressof_lib(py, &lib, &name);
        }
        return Err(PyTypeError::new_err(format!(
            "expected a cdata struct/union/array object, got {}",
            convert::describe(cdata)
        )));
    };
    let c = cd.get();
    // A pointer needs a path (as in cffi): a field of the struct it points to, or an
    // index (pointer arithmetic), then the rest of the path from there.
    let is_ptr = matches!(c.ty().kind, Kind::Pointer(_));
    if !(is_ptr || matches!(c.ty().kind, Kind::Record(_) | Kind::Array(..)))
        || (is_ptr && fields_or_indexes.is_empty())
    {
        return Err(PyTypeError::new_err("addressof(pointer)"));
    }
    let base = c.data_addr(py)?;
    let (ty, off) = walk_path(py, c.ty(), fields_or_indexes, is_ptr)?;
    let pty = shared.pointer_to(&ty);
    let pct = shared.ctype_of(py, &pty);
    let owner = match CData::keeper_for(cd) {
        Some(k) => Owner::View(k),
        None => Owner::None,
    };
    Ok(CData::new_owning(py, pct, base + off, 0, 0, owner)?.into_any())
}

/// `ffi.new_handle(x)`: a `void *` cdata whose address maps back to `x`.
pub fn new_handle(py: Python<'_>, shared: &FfiRef, x: Py<PyAny>) -> PyResult<Py<CData>> {
    let t = shared.void_ptr_type();
    let ct = shared.ctype_of(py, &t);
    let token = handles::register(py, x)?;
    CData::new_owning(py, ct, token, 0, 0, Owner::Handle)
}

/// `ffi.from_handle(x)`.
pub fn from_handle(py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let cd = x
        .cast::<CData>()
        .map_err(|_| PyTypeError::new_err("expected a 'cdata' object"))?;
    let c = cd.get();
    // As cffi: only `void *` and `char *` (the pointers it casts anything to) can be
    // what new_handle() gave.
    let casts_anything = match &c.ty().kind {
        Kind::Pointer(item) => match &item.kind {
            Kind::Void => true,
            Kind::Prim(p) => p.prim == Prim::Char,
            _ => false,
        },
        _ => false,
    };
    if !casts_anything {
        return Err(PyTypeError::new_err(format!(
            "expected a 'cdata' object with a 'void *' out of new_handle(), got '{}'",
            c.ty().cname()
        )));
    }
    let addr = c.addr;
    if addr == 0 {
        return Err(PyRuntimeError::new_err(
            "cannot use from_handle() on NULL pointer",
        ));
    }
    handles::lookup(py, addr).ok_or_else(|| {
        PyRuntimeError::new_err(format!(
            "from_handle(): 0x{addr:x} is not a live handle from ffi.new_handle()"
        ))
    })
}

/// `ffi.release(x)`.
pub fn release(py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
    let cd = as_cdata(x)?;
    let c = cd.get();
    if !c.owns_memory(py) && !c.is_handle(py) && !c.is_released(py) {
        return Err(PyValueError::new_err(
            "only 'cdata' object from ffi.new(), ffi.gc(), ffi.from_buffer() or ffi.new_allocator()() can be used with the 'with' keyword or ffi.release()",
        ));
    }
    c.release_now(py)
}

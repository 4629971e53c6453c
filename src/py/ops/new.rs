//! `ffi.new` (and allocator calls): how much memory a type and initializer need,
//! allocating it as an owning cdata, and initializing it.

use pyo3::exceptions::{PyMemoryError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::types::{layout_error, size_or_err};
use crate::py::cdata::{CData, Owner};
use crate::py::convert::{self, encode_wide, write_array, write_sized};
use crate::py::ctype::CType;
use crate::py::errors::VerificationMissing;
use crate::types::model::{Kind, PrimClass, TypeRef};

/// The functions of a `new_allocator` allocator: `alloc(size)` gives the memory,
/// `free(result)` (if any) takes it back on release; `clear` zeroes what `alloc` gave.
pub struct AllocFns {
    pub alloc: Option<Py<PyAny>>,
    pub free: Option<Py<PyAny>>,
    pub clear: bool,
}

/// Bytes and item count of `new(ct, init)`.
/// The bytes a record initialized from `init` needs when its last field is a flexible
/// array, directly or at the end of a last struct field (cffi sizes both from the
/// initializer): `None` when the initializer does not give that field.
fn flexible_need(
    l: &crate::types::model::RecordLayout,
    init: &Bound<'_, PyAny>,
    base: usize,
) -> PyResult<Option<usize>> {
    let Some(f) = l.fields.last() else {
        return Ok(None);
    };
    let nested = match &f.ty.kind {
        Kind::Array(_, None) if l.has_flexible_array => None,
        Kind::Record(_) => match f.ty.record_layout() {
            Some(inner) => Some(inner),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    // A list fills the fields a positional initializer reaches (`IGNORE_IN_CTOR`).
    let positional = l
        .fields
        .iter()
        .filter(|f| f.flags & crate::types::model::IGNORE_IN_CTOR == 0)
        .count();
    if positional == 0 {
        return Ok(None);
    }
    let v = if let Ok(list) = init.cast::<PyList>() {
        (list.len() == positional)
            .then(|| list.get_item(positional - 1))
            .transpose()?
    } else if let Ok(t) = init.cast::<PyTuple>() {
        (t.len() == positional)
            .then(|| t.get_item(positional - 1))
            .transpose()?
    } else if let Ok(d) = init.cast::<PyDict>() {
        d.get_item(&f.name)?
    } else {
        None
    };
    let Some(v) = v else {
        return Ok(None);
    };
    if let Some(inner) = nested {
        return flexible_need(inner, &v, base + f.offset);
    }
    let Kind::Array(fi, None) = &f.ty.kind else {
        return Ok(None);
    };
    let n = array_len_from_init(&f.ty, fi, &v)?;
    n.checked_mul(fi.size().unwrap_or(1))
        .and_then(|b| b.checked_add(base + f.offset))
        .filter(|b| *b <= isize::MAX as usize)
        .map(Some)
        .ok_or_else(|| PyOverflowError::new_err("array size would overflow a Py_ssize_t"))
}

fn new_size(ct: &CType, init: Option<&Bound<'_, PyAny>>) -> PyResult<(usize, usize)> {
    let ty = &ct.ty;
    match &ty.kind {
        Kind::Pointer(item) => {
            let Some(isz) = item.size() else {
                if let Some(e) = layout_error(item) {
                    return Err(e);
                }
                if let Some(l) = item.record_layout() {
                    if l.partial {
                        return Err(VerificationMissing::new_err(format!(
                            "'{}' has ... in its declaration",
                            item.cname()
                        )));
                    }
                }
                return Err(PyTypeError::new_err(format!(
                    "cannot instantiate ctype '{}' of unknown size",
                    item.cname()
                )));
            };
            let mut size = isz;
            if let (Some(l), Some(init)) = (item.record_layout(), init) {
                if let Some(need) = flexible_need(l, init, 0)? {
                    size = size.max(need);
                }
            }
            Ok((size, 0))
        }
        Kind::Array(item, len) => {
            let isz = size_or_err(item)?;
            let n = match len {
                Some(n) => *n,
                None => match init {
                    Some(i) => array_len_from_init(ty, item, i)?,
                    None => {
                        return Err(PyTypeError::new_err(
                            "expected new array length or list/tuple/str, not NoneType",
                        ))
                    }
                },
            };
            let size = n
                .checked_mul(isz)
                .filter(|b| *b <= isize::MAX as usize)
                .ok_or_else(|| {
                    PyOverflowError::new_err("array size would overflow a Py_ssize_t")
                })?;
            Ok((size, n))
        }
        _ => Err(PyTypeError::new_err(format!(
            "expected a pointer or array ctype, got '{}'",
            ty.cname()
        ))),
    }
}

/// Length of a `T[]` created from `init`: an int, a list/tuple, bytes (+1 for the NUL of a
/// char array) or str (+1, in code units, for wide-char arrays).
fn array_len_from_init(
    arr_ty: &TypeRef,
    item: &TypeRef,
    init: &Bound<'_, PyAny>,
) -> PyResult<usize> {
    // SAFETY: `init` is a live object and the GIL is held.
    if unsafe { ffi::PyLong_Check(init.as_ptr()) } != 0 {
        let n: i64 = init.extract()?;
        if n < 0 {
            return Err(PyValueError::new_err("negative array length"));
        }
        return Ok(n as usize);
    }
    if let Ok(l) = init.cast::<PyList>() {
        return Ok(l.len());
    }
    if let Ok(t) = init.cast::<PyTuple>() {
        return Ok(t.len());
    }
    let (is_char, wide) = match &item.kind {
        Kind::Prim(pi) => (
            convert::is_byte_item(item),
            if pi.class == PrimClass::WideChar {
                Some(pi.size)
            } else {
                None
            },
        ),
        _ => (false, None),
    };
    if let Ok(b) = init.cast::<PyBytes>() {
        if is_char {
            return Ok(b.as_bytes().len() + 1);
        }
    }
    if let Ok(s) = init.cast::<PyString>() {
        if let Some(sz) = wide {
            return Ok(encode_wide(s, sz)?.len() + 1);
        }
    }
    if init.is_instance_of::<PyString>() || init.is_instance_of::<PyBytes>() {
        return Err(convert::array_init_type_error(arr_ty, item, init));
    }
    Err(PyTypeError::new_err(format!(
        "expected new array length or list/tuple/str, not {}",
        convert::describe(init)
    )))
}

/// `ffi.new` and allocator calls: allocate, wrap in an owning cdata (so an initializer
/// error frees the memory through the cdata's release), then initialize.
pub fn new_cdata(
    py: Python<'_>,
    ct: &Bound<'_, CType>,
    init: Option<&Bound<'_, PyAny>>,
    alloc: Option<&AllocFns>,
) -> PyResult<Py<CData>> {
    let c = ct.get();
    let init = init.filter(|i| !i.is_none());
    // `new("T[]", n)` with a plain int: zeroed memory, nothing to initialize.
    if let (Kind::Array(item, None), Some(i), None) = (&c.ty.kind, init, alloc) {
        // SAFETY: `i` is a live object and the GIL is held; `PyLong_AsSsize_t` is only
        // given an int.
        if unsafe { ffi::PyLong_CheckExact(i.as_ptr()) } != 0 {
            // SAFETY: as above.
            let n = unsafe { ffi::PyLong_AsSsize_t(i.as_ptr()) };
            if n >= 0 {
                if let Some(size) = item
                    .size()
                    .and_then(|isz| isz.checked_mul(n as usize))
                    .filter(|b| *b <= isize::MAX as usize)
                {
                    return CData::new_owned_zeroed(py, ct.clone().unbind(), size, n as usize);
                }
            } else if n == -1 {
                // SAFETY: the GIL is held. The generic path below raises the right error.
                unsafe { ffi::PyErr_Clear() };
            }
        }
    }
    let (size, length) = match c.fixed_new_size() {
        Some(v) => v,
        None => new_size(c, init)?,
    };
    let cd = match alloc {
        Some(a) if a.alloc.is_some() => {
            let f = a
                .alloc
                .as_ref()
                .map(|f| f.bind(py))
                .ok_or_else(|| PyTypeError::new_err("no alloc"))?;
            let res = f.call1((size,))?;
            let addr = match res.cast::<CData>() {
                Ok(cd) => match cd.get().ty().kind {
                    Kind::Pointer(_) | Kind::Array(..) => cd.get().addr,
                    _ => {
                        return Err(PyTypeError::new_err(format!(
                            "alloc() must return a cdata pointer, not '{}'",
                            cd.get().ty().cname()
                        )))
                    }
                },
                Err(_) => {
                    return Err(PyTypeError::new_err(format!(
                        "alloc() must return a cdata object (got {})",
                        res.get_type().name()?
                    )))
                }
            };
            if addr == 0 {
                return Err(PyMemoryError::new_err("alloc() returned NULL"));
            }
            if a.clear {
                // SAFETY: `alloc` returned a non-NULL pointer to (at least) `size` bytes,
                // its contract with `new_allocator`.
                unsafe { std::ptr::write_bytes(addr as *mut u8, 0, size) };
            }
            let owner = Owner::Allocator {
                free: a.free.as_ref().map(|f| f.clone_ref(py)),
                alloc_result: res.unbind(),
            };
            CData::new_owning(py, ct.clone().unbind(), addr, length, size, owner)?
        }
        Some(a) if !a.clear => CData::new_owned_uncleared(py, ct.clone().unbind(), size, length)?,
        _ => CData::new_owned_zeroed(py, ct.clone().unbind(), size, length)?,
    };
    let addr = cd.get().addr;
    if let Some(init) = init {
        let mem = addr as *mut u8;
        // SAFETY: `mem` holds `size` bytes (`length` items for arrays) just allocated for
        // this type and initializer.
        let r = unsafe {
            match &c.ty.kind {
                Kind::Pointer(item) => write_sized(item, init, mem, size),
                Kind::Array(item, _) => {
                    if ffi::PyLong_Check(init.as_ptr()) != 0
                        && matches!(c.ty.kind, Kind::Array(_, None))
                    {
                        Ok(())
                    } else {
                        write_array(&c.ty, item, length, init, mem)
                    }
                }
                _ => Ok(()),
            }
        };
        if let Err(e) = r {
            // frees now (the cdata is dropped right after too, but be explicit)
            cd.get().release_now(py)?;
            return Err(e);
        }
    }
    Ok(cd)
}

//! Raw slots of the CData type: attribute and item access go straight from the CPython slot
//! to the field table / item address, without pyo3's generic method trampoline. Anything
//! not handled here (methods, slices, deletion, errors' slow paths) falls back to the
//! pyo3-generated slot saved at install time.
//!
//! CPython calls each slot with the GIL held and `slf` a live CData object (they are
//! installed on the CData type only, which is final), other arguments live objects (or
//! null where the slot's contract says so): what the unsafe helpers below require.

use std::os::raw::c_int;
use std::sync::OnceLock;

use pyo3::exceptions::{PyAttributeError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;

use super::cdata::CData;
use super::convert::{write_prim, write_sized};
use super::ctype::CField;
use super::rawtype::slot;
use crate::types::model::Kind;

struct OrigSlots {
    getattro: Option<ffi::getattrofunc>,
    setattro: Option<ffi::setattrofunc>,
    subscript: Option<ffi::binaryfunc>,
    ass_subscript: Option<ffi::objobjargproc>,
}

static ORIG: OnceLock<OrigSlots> = OnceLock::new();

/// `slf` as the cdata it is (these slots are installed on the CData type only).
///
/// # Safety
/// `slf` is a live CData object; the GIL is held.
#[inline(always)]
unsafe fn this<'py>(py: Python<'py>, slf: *mut ffi::PyObject) -> Bound<'py, CData> {
    Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<CData>()
}

/// The small int `key` (an exact int that fits `isize`), or None (error state cleared).
///
/// # Safety
/// `key` is a live object; the GIL is held.
#[inline(always)]
unsafe fn small_index(key: *mut ffi::PyObject) -> Option<isize> {
    if ffi::PyLong_CheckExact(key) == 0 {
        return None;
    }
    let i = ffi::PyLong_AsSsize_t(key);
    if i == -1 && !ffi::PyErr_Occurred().is_null() {
        ffi::PyErr_Clear();
        return None;
    }
    Some(i)
}

unsafe extern "C" fn fast_getattro(
    slf: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    slot(std::ptr::null_mut(), |py| {
        let b = this(py, slf);
        let me = b.get();
        if let Some((rec, through_ptr)) = me.record_target(py) {
            if let Some(table) = rec.field_table(py) {
                let p = table.find(name);
                if !p.is_null() {
                    let f = Bound::from_borrowed_ptr(py, p).cast_into_unchecked::<CField>();
                    return CData::read_field(&b, through_ptr, f.get()).map(|v| v.into_ptr());
                }
            }
        }
        match ORIG.get().and_then(|o| o.getattro) {
            Some(g) => Ok(g(slf, name)),
            None => Ok(ffi::PyObject_GenericGetAttr(slf, name)),
        }
    })
}

unsafe extern "C" fn fast_setattro(
    slf: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
) -> c_int {
    slot(-1, |py| {
        if !value.is_null() {
            let b = this(py, slf);
            let me = b.get();
            if let Some((rec, through_ptr)) = me.record_target(py) {
                if let Some(table) = rec.field_table(py) {
                    let p = table.find(name);
                    if !p.is_null() {
                        let f = Bound::from_borrowed_ptr(py, p).cast_into_unchecked::<CField>();
                        let v = Bound::from_borrowed_ptr(py, value);
                        return CData::write_field(&b, through_ptr, f.get(), &v).map(|_| 0);
                    }
                }
            }
        }
        match ORIG.get().and_then(|o| o.setattro) {
            Some(s) => Ok(s(slf, name, value)),
            None => Err(PyAttributeError::new_err("cannot set attribute")),
        }
    })
}

unsafe extern "C" fn fast_subscript(
    slf: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    slot(std::ptr::null_mut(), |py| {
        if let Some(i) = small_index(key) {
            return CData::read_item(&this(py, slf), i).map(|v| v.into_ptr());
        }
        match ORIG.get().and_then(|o| o.subscript) {
            Some(s) => Ok(s(slf, key)),
            None => Err(PyTypeError::new_err("cdata cannot be indexed")),
        }
    })
}

unsafe extern "C" fn fast_ass_subscript(
    slf: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
) -> c_int {
    slot(-1, |py| {
        if !value.is_null() {
            if let Some(i) = small_index(key) {
                let b = this(py, slf);
                let me = b.get();
                let v = Bound::from_borrowed_ptr(py, value);
                if let Some((addr, ty, pi)) = me.prim_item_addr(py, i)? {
                    write_prim(&v, ty, pi, addr as *mut u8)?;
                    return Ok(0);
                }
                let (addr, ict) = me.item_addr(py, i)?;
                let ic = ict.get();
                if let Kind::Prim(pi) = &ic.ty.kind {
                    write_prim(&v, &ic.ty, pi, addr as *mut u8)?;
                } else {
                    write_sized(&ic.ty, &v, addr as *mut u8, ic.ty.size().unwrap_or(0))?;
                }
                return Ok(0);
            }
        }
        match ORIG.get().and_then(|o| o.ass_subscript) {
            Some(s) => Ok(s(slf, key, value)),
            None => Err(PyTypeError::new_err("cdata items cannot be assigned")),
        }
    })
}

/// Installs the fast attribute/item slots on the CData type and switches it to raw mode
/// (once, at module init, before any cdata exists).
pub fn install(py: Python<'_>) {
    let tp = py.get_type::<CData>();
    let tp = tp.as_type_ptr();
    // SAFETY: module init with the GIL held: the type object is live and not in use by
    // any other thread; the slots saved are pyo3's, kept as the fallbacks.
    unsafe {
        let m = (*tp).tp_as_mapping;
        if m.is_null() {
            return;
        }
        let orig = OrigSlots {
            getattro: (*tp).tp_getattro,
            setattro: (*tp).tp_setattro,
            subscript: (*m).mp_subscript,
            ass_subscript: (*m).mp_ass_subscript,
        };
        if ORIG.set(orig).is_err() {
            return;
        }
        (*tp).tp_getattro = Some(fast_getattro);
        (*tp).tp_setattro = Some(fast_setattro);
        (*m).mp_subscript = Some(fast_subscript);
        (*m).mp_ass_subscript = Some(fast_ass_subscript);
    }
    super::cdata_alloc::install_raw(py);
    // SAFETY: as above; tells CPython the type's slots changed.
    unsafe { ffi::PyType_Modified(tp) };
}

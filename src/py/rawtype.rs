//! Python types whose objects jitffi builds and frees itself, and the bodies of the raw C
//! slots such types get.
//!
//! pyo3's generic initializer and `tp_dealloc`, and the GC header and tracking every
//! pyclass gets, cost more than the rest of a small `ffi.new` or `ffi.cast`. A pyclass
//! without `__traverse__` (the collector finds nothing through its objects anyway) is
//! made a plain, non-GC type by [`RawType::install`] at module init, before any of its
//! objects exists; its objects are then built by [`RawType::alloc`] + [`RawType::init`]
//! and torn down by the type's own dealloc ([`RawType::value_ptr`], [`RawType::free`]).
//! The offset of the Rust value inside the object is measured on one object pyo3 builds
//! (pyo3 does not publish it), so no layout is assumed; the only other slot pyo3 keeps in
//! such objects is the weakref list, found through `tp_weaklistoffset`.
//!
//! Types with no pyclass behind them (a `#[repr(C)]` struct starting with `PyObject`) are
//! made by [`new_spec_type`].
//!
//! Every raw slot runs its Rust body through [`slot`] (or [`drop_attached`] for drops in a
//! dealloc): errors become the Python exception, panics `InternalError`, so no unwind
//! crosses into CPython's frames.
use std::ffi::{c_int, c_void, CStr};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::PyClass;

use super::errors::{finish_slot, internal_error};

/// Where a raw type's objects keep their parts.
pub struct RawType<T> {
    tp: *mut ffi::PyTypeObject,
    /// Offset of the `T` value in the object.
    value_off: usize,
    /// Offset of the weakref list pointer (0: none).
    weak_off: usize,
    /// Size of the fixed part of an object.
    basic: usize,
    _value: PhantomData<fn() -> T>,
}

// SAFETY: the type object is kept alive by the module for the life of the process, and
// it is only used with the GIL held; the rest is plain numbers.
unsafe impl<T> Send for RawType<T> {}
// SAFETY: as for `Send`: shared use only reads the numbers and the type pointer.
unsafe impl<T> Sync for RawType<T> {}

impl<T: PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync> RawType<T> {
    /// Switches `T`'s type to raw mode: measures where pyo3 puts the value on an object
    /// built from `probe` (and freed again by pyo3's own dealloc), then makes the type
    /// non-GC with `dealloc` as its `tp_dealloc`. None (and the type left as pyo3 made it)
    /// when the layout is not the expected one.
    ///
    /// # Safety
    /// No object of `T` built by pyo3 may exist other than `probe` (it would be freed by
    /// `dealloc`); `T` has no `__traverse__` (the collector never sees through its
    /// objects); `dealloc` must tear objects down with this `RawType`.
    pub unsafe fn install(py: Python<'_>, probe: T, dealloc: ffi::destructor) -> Option<Self>
    where
        T: Into<pyo3::PyClassInitializer<T>>,
    {
        let tp = py.get_type::<T>().as_type_ptr();
        let probe = Py::new(py, probe).ok()?;
        let o = probe.as_ptr();
        let value_off = (probe.get() as *const T as usize).wrapping_sub(o as usize);
        // SAFETY: `o` is a live object (held by `probe`), and `tp` a live type object.
        let (probe_tp, basic, itemsize, weak_off) = unsafe {
            (
                ffi::Py_TYPE(o),
                (*tp).tp_basicsize as usize,
                (*tp).tp_itemsize,
                (*tp).tp_weaklistoffset,
            )
        };
        drop(probe); // pyo3's dealloc, still installed
        if probe_tp != tp || itemsize != 0 || value_off + std::mem::size_of::<T>() > basic {
            return None;
        }
        if weak_off < 0 || weak_off as usize + std::mem::size_of::<*mut ffi::PyObject>() > basic {
            return None;
        }
        // SAFETY: module init, GIL held, no object of the type alive (the caller's
        // promise): changing how objects are allocated and freed affects no existing one.
        unsafe {
            (*tp).tp_flags &= !ffi::Py_TPFLAGS_HAVE_GC;
            (*tp).tp_traverse = None;
            (*tp).tp_clear = None;
            (*tp).tp_alloc = Some(ffi::PyType_GenericAlloc);
            (*tp).tp_free = Some(ffi::PyObject_Free);
            (*tp).tp_dealloc = Some(dealloc);
            ffi::PyType_Modified(tp);
        }
        Some(RawType {
            tp,
            value_off,
            weak_off: weak_off as usize,
            basic,
            _value: PhantomData,
        })
    }
}

impl<T> RawType<T> {
    /// Size of the fixed part of an object: what `alloc` needs at least.
    #[inline]
    pub fn basic_size(&self) -> usize {
        self.basic
    }

    /// Size of the fixed part of an object (where extra bytes given to `alloc` start,
    /// rounded up to 16).
    #[inline]
    pub fn inline_offset(&self) -> usize {
        (self.basic + 15) & !15
    }

    /// Memory for one object of `size` bytes (at least the fixed part), its weakref list
    /// empty; null when out of memory. The object is not initialized: `init` comes next.
    ///
    /// # Safety
    /// The GIL is held; `size >= basic`.
    #[inline(always)]
    pub unsafe fn alloc(&self, size: usize) -> *mut u8 {
        // SAFETY: the GIL is held (caller), as pymalloc requires.
        let obj = unsafe { ffi::PyObject_Malloc(size) } as *mut u8;
        if !obj.is_null() && self.weak_off != 0 {
            // SAFETY: the weakref list pointer lies inside the fixed part (checked at install).
            unsafe { *(obj.add(self.weak_off) as *mut *mut ffi::PyObject) = std::ptr::null_mut() };
        }
        obj
    }

    /// Makes `obj` (from `alloc`) an object of the type holding `value`: a new reference.
    ///
    /// # Safety
    /// `obj` comes from `alloc` and was not initialized yet; the GIL is held.
    #[inline(always)]
    pub unsafe fn init(&self, obj: *mut u8, value: T) -> *mut ffi::PyObject {
        // SAFETY: `obj` is fresh memory of at least the fixed part (caller), where the
        // object header and the value (measured at install) fit; `PyObject_Init` takes the
        // reference to the type that `free` gives back.
        unsafe {
            ffi::PyObject_Init(obj as *mut ffi::PyObject, self.tp);
            std::ptr::write(obj.add(self.value_off) as *mut T, value);
        }
        obj as *mut ffi::PyObject
    }

    /// The value inside an object of the type.
    ///
    /// # Safety
    /// `obj` is an object of this type built by `init`.
    #[inline(always)]
    pub unsafe fn value_ptr(&self, obj: *mut ffi::PyObject) -> *mut T {
        // SAFETY: the value lies at the measured offset inside the object (caller).
        unsafe { (obj as *mut u8).add(self.value_off) as *mut T }
    }

    /// Clears the weak references to `obj` (first step of a dealloc).
    ///
    /// # Safety
    /// `obj` is an object of this type being deallocated; the GIL is held.
    #[inline(always)]
    pub unsafe fn clear_weakrefs(&self, obj: *mut ffi::PyObject) {
        // SAFETY: the weakref list pointer lies inside the object (checked at install);
        // `PyObject_ClearWeakRefs` is what a dealloc calls when that list is not empty.
        unsafe {
            if self.weak_off != 0
                && !(*((obj as *mut u8).add(self.weak_off) as *mut *mut ffi::PyObject)).is_null()
            {
                ffi::PyObject_ClearWeakRefs(obj);
            }
        }
    }

    /// Frees the memory of `obj` and drops its reference to the type (last step of a
    /// dealloc; the value must have been dropped or moved out).
    ///
    /// # Safety
    /// `obj` is an object of this type whose refcount reached zero; the GIL is held.
    #[inline(always)]
    pub unsafe fn free(&self, obj: *mut ffi::PyObject) {
        // SAFETY: the memory came from `PyObject_Malloc` (`alloc`), and `init` took the
        // type reference released here; nothing uses `obj` afterwards (caller).
        unsafe {
            let tp = ffi::Py_TYPE(obj);
            ffi::PyObject_Free(obj as *mut c_void);
            ffi::Py_DECREF(tp as *mut ffi::PyObject);
        }
    }
}

/// Runs the Rust body of a raw C slot: its value, or `fail` with the Python exception set
/// when it fails or panics (a panic becomes `InternalError`).
///
/// # Safety
/// Called by CPython on a thread holding the GIL (as every slot is).
#[inline(always)]
pub unsafe fn slot<R>(fail: R, body: impl FnOnce(Python<'_>) -> PyResult<R>) -> R {
    // SAFETY: CPython calls slots with the GIL held (caller).
    let py = unsafe { Python::assume_attached() };
    finish_slot(py, catch_unwind(AssertUnwindSafe(|| body(py))), fail)
}

/// Drops the value at `value` from a raw dealloc, in pyo3's attached state (dropping `Py`
/// values outside of it is deferred) and with panics caught: a panic is reported as an
/// unraisable `InternalError` (a dealloc cannot raise).
///
/// # Safety
/// `value` points to a live value that nothing uses afterwards; the GIL is held.
pub unsafe fn drop_attached<T>(value: *mut T) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the value is live and dropped exactly once here (caller).
        Python::attach(|_| unsafe { std::ptr::drop_in_place(value) })
    }));
    if let Err(payload) = r {
        // SAFETY: the GIL is held (caller).
        let py = unsafe { Python::assume_attached() };
        internal_error(payload).write_unraisable(py, None);
    }
}

/// A heap type made from a C-level spec, for objects defined by a `#[repr(C)]` struct
/// that starts with `ffi::PyObject` (no pyclass behind them). `slots` are
/// `(Py_tp_*, function)` pairs; the type lives for the process.
pub fn new_spec_type(
    py: Python<'_>,
    name: &'static CStr,
    basicsize: usize,
    flags: u64,
    slots: &[(c_int, *mut c_void)],
) -> PyResult<*mut ffi::PyTypeObject> {
    let mut table: Vec<ffi::PyType_Slot> = slots
        .iter()
        .map(|&(slot, pfunc)| ffi::PyType_Slot { slot, pfunc })
        .collect();
    table.push(ffi::PyType_Slot {
        slot: 0,
        pfunc: std::ptr::null_mut(),
    });
    // Kept for the process like the type: no need to know which parts CPython copies.
    let table = Box::leak(table.into_boxed_slice());
    let mut spec = ffi::PyType_Spec {
        name: name.as_ptr(),
        basicsize: basicsize as c_int,
        itemsize: 0,
        flags: flags as _,
        slots: table.as_mut_ptr(),
    };
    // SAFETY: the spec is valid for the call, and what it points to (name, slot table)
    // for the process; the GIL is held (`py`).
    let t = unsafe { ffi::PyType_FromSpec(&mut spec) };
    if t.is_null() {
        return Err(PyErr::fetch(py));
    }
    Ok(t as *mut ffi::PyTypeObject)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::py::errors::InternalError;

    #[test]
    fn slot_sets_the_error_or_internal_error_and_returns_fail() {
        Python::initialize();
        Python::attach(|py| {
            // SAFETY: the GIL is held (attached).
            let ok = unsafe { slot(-1, |_| Ok(7)) };
            assert_eq!(ok, 7);
            // SAFETY: as above.
            let r = unsafe { slot(-1, |_| Err(pyo3::exceptions::PyValueError::new_err("bad"))) };
            assert_eq!(r, -1);
            assert!(PyErr::take(py)
                .is_some_and(|e| e.is_instance_of::<pyo3::exceptions::PyValueError>(py)));
            // SAFETY: as above.
            let r = unsafe { slot(-1, |_| -> PyResult<i32> { panic!("in a slot") }) };
            assert_eq!(r, -1);
            let e = PyErr::take(py).expect("an exception is set");
            assert!(e.is_instance_of::<InternalError>(py));
            assert_eq!(e.value(py).to_string(), "jitffi internal error: in a slot");
        });
    }
}

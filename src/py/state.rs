//! The per-FFI shared state that cdata, ctypes, calls and callbacks hold on to.
//!
//! `FfiRef = Arc<FfiShared>` is THE handle to an FFI's types: the cdef namespace (type
//! interner) and the one-`CType`-object-per-`TypeNode` cache. Every `CType` holds an
//! `FfiRef`, so any cdata can reach its FFI's state without going through the Python `FFI`
//! object (`CType::ffi`). The calls/callbacks code keeps an `FfiRef` too.

use std::sync::{Arc, Mutex, OnceLock};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::ctype::CType;
use super::errors::cdef_err;
use super::gil::GilCell;
use crate::cdef::Namespace;
use crate::types::model::{Prim, TypeRef};
use crate::types::target::Target;

pub type FfiRef = Arc<FfiShared>;

pub struct FfiShared {
    /// The declarations and the type interner. Locked only on slow paths (cdef, parsing a
    /// type string not seen before).
    pub ns: Mutex<Namespace>,
    pub target: Target,
    /// `TypeNode::id` → its Python `CType` (created on first use).
    ctypes: GilCell<Vec<Option<Py<CType>>>>,
    /// Type string → CType, so `ffi.new("struct pt *")` parses once per FFI.
    pub type_cache: Py<PyDict>,
    /// The (type string, CType) pair the fast `new`/`cast` entry points resolved last, as
    /// object addresses holding strong references taken by hand (those raw entry points
    /// are not pyo3-attached, where dropping a `Py` is deferred): repeated calls with the
    /// same string constant skip the dict lookup. Released by `forget_last_type`.
    pub last_type: GilCell<(usize, usize)>,
}

impl FfiShared {
    pub fn new(py: Python<'_>) -> FfiRef {
        let target = Target::host();
        Arc::new(FfiShared {
            ns: Mutex::new(Namespace::new(target)),
            target,
            ctypes: GilCell::new(Vec::new()),
            type_cache: PyDict::new(py).unbind(),
            last_type: GilCell::new((0, 0)),
        })
    }

    pub fn lock_ns(&self) -> std::sync::MutexGuard<'_, Namespace> {
        self.ns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The one CType object of `ty` in this FFI.
    pub fn ctype_of(self: &Arc<Self>, py: Python<'_>, ty: &TypeRef) -> Py<CType> {
        let idx = ty.id as usize;
        {
            let v = self.ctypes.get(py);
            if let Some(Some(ct)) = v.get(idx) {
                return ct.clone_ref(py);
            }
        }
        let ct = Py::new(py, CType::new(ty.clone(), self.clone())).expect("allocating a CType");
        let v = self.ctypes.get(py);
        if v.len() <= idx {
            v.resize_with(idx + 1, || None);
        }
        if let Some(existing) = &v[idx] {
            return existing.clone_ref(py);
        }
        v[idx] = Some(ct.clone_ref(py));
        ct
    }

    /// Parses a C type string (cached per string).
    pub fn parse_ctype<'py>(self: &Arc<Self>, text: &Bound<'py, PyString>) -> PyResult<Bound<'py, CType>> {
        let py = text.py();
        let cache = self.type_cache.bind(py);
        if let Some(hit) = cache.get_item(text)? {
            // SAFETY: only CType objects are stored in this dict.
            return Ok(unsafe { hit.cast_into_unchecked::<CType>() });
        }
        let s = text.to_str()?;
        let ty = {
            let mut ns = self.lock_ns();
            ns.parse_type(s).map_err(cdef_err)?
        };
        let ct = self.ctype_of(py, &ty).into_bound(py);
        cache.set_item(text, &ct)?;
        Ok(ct)
    }

    /// Interned node for a built-in primitive type.
    pub fn prim_type(&self, p: Prim) -> TypeRef {
        self.lock_ns().table.prim(p)
    }

    pub fn void_ptr_type(&self) -> TypeRef {
        let mut ns = self.lock_ns();
        let v = ns.table.void();
        ns.table.pointer(&v)
    }

    pub fn pointer_to(&self, item: &TypeRef) -> TypeRef {
        self.lock_ns().table.pointer(item)
    }

    pub fn array_of(&self, item: &TypeRef, len: Option<usize>) -> TypeRef {
        self.lock_ns().table.array(item, len)
    }

    /// Drops the per-FFI caches (CType objects and the type-string dict) when the FFI
    /// object dies: they hold this state alive in a reference cycle (CType → FfiShared →
    /// cache → CType). cdata still alive keep their own CType and this state.
    pub fn clear_caches(&self, py: Python<'_>) {
        let old = std::mem::take(self.ctypes.get(py));
        self.type_cache.bind(py).clear();
        self.forget_last_type(py);
        drop(old);
    }

    pub fn clear_type_cache(&self, py: Python<'_>) {
        self.type_cache.bind(py).clear();
        self.forget_last_type(py);
    }

    /// Remembers `(key, ct)` as the last resolved type string (taking references).
    ///
    /// # Safety
    /// Both are valid objects (`key` an exact str, `ct` a CType); the GIL is held.
    pub unsafe fn remember_last_type(&self, py: Python<'_>, key: *mut pyo3::ffi::PyObject, ct: *mut pyo3::ffi::PyObject) {
        unsafe {
            pyo3::ffi::Py_INCREF(key);
            pyo3::ffi::Py_INCREF(ct);
        }
        let old = std::mem::replace(self.last_type.get(py), (key as usize, ct as usize));
        Self::release_pair(old);
    }

    pub fn forget_last_type(&self, py: Python<'_>) {
        let old = std::mem::replace(self.last_type.get(py), (0, 0));
        Self::release_pair(old);
    }

    fn release_pair((key, ct): (usize, usize)) {
        if key != 0 {
            // SAFETY: references taken by `remember_last_type`, GIL held by the callers.
            unsafe {
                pyo3::ffi::Py_DECREF(key as *mut pyo3::ffi::PyObject);
                pyo3::ffi::Py_DECREF(ct as *mut pyo3::ffi::PyObject);
            }
        }
    }
}

/// A process-wide FFI state for objects that exist without a user FFI (`FFI.NULL`).
pub fn builtin(py: Python<'_>) -> &'static FfiRef {
    static B: OnceLock<FfiRef> = OnceLock::new();
    B.get_or_init(|| FfiShared::new(py))
}

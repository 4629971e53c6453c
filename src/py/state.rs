//! The per-FFI shared state that cdata, ctypes, calls and callbacks hold on to, and the
//! `FFI` object (its methods: `ffi.rs`, the facade).
//!
//! `FfiRef = Arc<FfiShared>` is THE handle to an FFI's types: the cdef namespace (type
//! interner) and the one-`CType`-object-per-`TypeNode` cache. Every `CType` holds an
//! `FfiRef`, so any cdata can reach its FFI's state without going through the Python `FFI`
//! object (`CType::ffi`). The calls/callbacks code keeps an `FfiRef` too.
//!
//! This module sits below `ctype.rs`: it keeps the CType objects as plain Python objects,
//! and `ctype.rs` (`FfiShared::ctype_of`, `FfiShared::parse_ctype`) is what stores and
//! reads them as CTypes.

use std::sync::{Arc, Mutex, OnceLock};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::types::{PyWeakrefMethods, PyWeakrefReference};

use super::gil::{GilCell, GilCopy};
use crate::cdef::Namespace;
use crate::types::model::{Prim, TypeRef};
use crate::types::target::Target;

pub type FfiRef = Arc<FfiShared>;

pub struct FfiShared {
    /// The declarations and the type interner. Locked only on slow paths (cdef, parsing a
    /// type string not seen before).
    pub ns: Mutex<Namespace>,
    pub target: Target,
    /// `TypeNode::id` → its Python `CType` (created on first use). Written only by
    /// `ctype.rs`, and only with CType objects (weak references to them if
    /// `weak_types`).
    type_objects: GilCell<Vec<Option<Py<PyAny>>>>,
    /// The shared state's types are held weakly: the CTypes every FFI shares live as long
    /// as something uses them (as cffi's unique-type cache), not for the process.
    weak_types: bool,
    /// CTypes of the shared state that live for the process (generated code knows their
    /// address).
    pinned: GilCell<Vec<Py<PyAny>>>,
    /// Type string → CType, so `ffi.new("struct pt *")` parses once per FFI. Written only
    /// by `FfiShared::parse_ctype`, and only with CType values.
    pub type_cache: Py<PyDict>,
    /// The (type string, CType) pair the fast `new`/`cast` entry points resolved last, as
    /// object addresses holding strong references taken by hand (those raw entry points
    /// are not pyo3-attached, where dropping a `Py` is deferred): repeated calls with the
    /// same string constant skip the dict lookup. Released by `forget_last_type`.
    pub last_type: GilCopy<(usize, usize)>,
    /// The out-of-line module whose declarations this FFI makes on first use (set once,
    /// by `_cffi_backend.FFI(...)`; `crate::ool::lazy`).
    pub ool: OnceLock<crate::ool::Include>,
}

impl FfiShared {
    pub fn new(py: Python<'_>) -> FfiRef {
        Self::with_type_holding(py, false)
    }

    fn with_type_holding(py: Python<'_>, weak_types: bool) -> FfiRef {
        let target = Target::host();
        Arc::new(FfiShared {
            ns: Mutex::new(Namespace::new(target)),
            target,
            type_objects: GilCell::new(Vec::new()),
            weak_types,
            pinned: GilCell::new(Vec::new()),
            type_cache: PyDict::new(py).unbind(),
            last_type: GilCopy::new((0, 0)),
            ool: OnceLock::new(),
        })
    }

    pub fn lock_ns(&self) -> std::sync::MutexGuard<'_, Namespace> {
        self.ns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The object kept for type node `id` (a CType: see `ctype_of`).
    #[inline]
    pub(super) fn type_object(&self, py: Python<'_>, id: usize) -> Option<Py<PyAny>> {
        let o = self.type_objects.with(py, |v| {
            v.get(id).and_then(|o| o.as_ref().map(|o| o.clone_ref(py)))
        })?;
        if !self.weak_types {
            return Some(o);
        }
        // SAFETY: in this mode only weak references are stored (`keep_type_object`).
        let w = unsafe { o.bind(py).cast_unchecked::<PyWeakrefReference>() };
        w.upgrade().map(Bound::unbind)
    }

    /// Whether this state holds its CTypes weakly (the shared state).
    pub(super) fn holds_types_weakly(&self) -> bool {
        self.weak_types
    }

    /// Keeps `obj` (a CType of this state) for the life of the process.
    pub fn pin(&self, py: Python<'_>, obj: Py<PyAny>) {
        self.pinned.with_mut(py, |v| v.push(obj));
    }

    /// Keeps `obj` for type node `id` unless one is kept already; returns the one kept.
    pub(super) fn keep_type_object(&self, py: Python<'_>, id: usize, obj: Py<PyAny>) -> Py<PyAny> {
        if self.weak_types {
            if let Some(alive) = self.type_object(py, id) {
                return alive;
            }
            let Ok(w) = PyWeakrefReference::new(obj.bind(py)) else {
                // (CType supports weak references: only memory exhaustion gets here)
                return obj;
            };
            let old = self.type_objects.with_mut(py, |v| {
                if v.len() <= id {
                    v.resize_with(id + 1, || None);
                }
                v[id].replace(w.into_any().unbind())
            });
            drop(old); // a dead weak reference, dropped after the borrow
            return obj;
        }
        let (kept, unused) = self.type_objects.with_mut(py, |v| {
            if v.len() <= id {
                v.resize_with(id + 1, || None);
            }
            match &v[id] {
                Some(existing) => (existing.clone_ref(py), Some(obj)),
                None => {
                    v[id] = Some(obj.clone_ref(py));
                    (obj, None)
                }
            }
        });
        drop(unused); // its dealloc runs after the borrow
        kept
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
        // taken out first: dropping CTypes runs deallocs, which must not find it borrowed
        let old = self.type_objects.with_mut(py, std::mem::take);
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
    pub unsafe fn remember_last_type(
        &self,
        py: Python<'_>,
        key: *mut pyo3::ffi::PyObject,
        ct: *mut pyo3::ffi::PyObject,
    ) {
        // SAFETY: both are valid objects and the GIL is held (caller).
        unsafe {
            pyo3::ffi::Py_INCREF(key);
            pyo3::ffi::Py_INCREF(ct);
        }
        let old = self.last_type.replace(py, (key as usize, ct as usize));
        Self::release_pair(old);
    }

    pub fn forget_last_type(&self, py: Python<'_>) {
        let old = self.last_type.replace(py, (0, 0));
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

/// A process-wide FFI state for objects that exist without a user FFI (`FFI.NULL`), and
/// for the types every FFI shares (those that depend on no declaration, `ctype.rs`),
/// which it holds weakly.
pub fn builtin(py: Python<'_>) -> &'static FfiRef {
    static B: OnceLock<FfiRef> = OnceLock::new();
    B.get_or_init(|| FfiShared::with_type_holding(py, true))
}

/// The `FFI` object: the Python handle on one `FfiShared`. `jitffi.FFI` (Python)
/// subclasses it for the slow paths written in Python; its methods are in `ffi.rs`.
#[pyclass(module = "jitffi._jitffi", name = "FFI", subclass, frozen)]
pub struct FFI {
    pub shared: FfiRef,
}

impl FFI {
    /// The FFI state (for the calls/callbacks code).
    pub fn shared(&self) -> &FfiRef {
        &self.shared
    }
}

impl Drop for FFI {
    fn drop(&mut self) {
        // SAFETY: pyclass objects are dropped from tp_dealloc, with the GIL held.
        let py = unsafe { Python::assume_attached() };
        self.shared.clear_caches(py);
    }
}

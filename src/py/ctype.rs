//! `CType` (what `ffi.typeof` returns) and `CField`, plus the per-record field table that
//! cdata attribute access goes through, and the per-FFI lookup of CType objects
//! (`FfiShared::ctype_of`, `FfiShared::parse_ctype`).

use std::sync::{Arc, OnceLock};

use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use super::errors::{cdef_err, FFIError};
use super::state::{FfiRef, FfiShared};
use crate::types::model::{Kind, TypeRef};

/// `FFI_DEFAULT_ABI` as `_cffi_backend` reports it on Linux: libffi's number of the C
/// convention, FFI_UNIX64 on x86_64 and FFI_SYSV on aarch64.
pub const FFI_DEFAULT_ABI: i32 = if cfg!(target_arch = "aarch64") { 1 } else { 2 };

#[pyclass(module = "jitffi._jitffi", name = "CType", frozen, weakref)]
pub struct CType {
    pub ty: TypeRef,
    pub ffi: FfiRef,
    item: OnceLock<Py<CType>>,
    fields: OnceLock<Arc<FieldTable>>,
    /// `T *` for an array `T[n]` (what it decays to) — pointer arithmetic results.
    decay: OnceLock<Py<CType>>,
    /// `T[]` for `T *` / `T[n]` — slice results.
    open_array: OnceLock<Py<CType>>,
    /// `ffi.new(this)`'s (bytes, items) when it does not depend on the initializer
    /// (pointer to a complete type without flexible array member, or `T[n]`); set once the
    /// item type is complete.
    fixed_new: OnceLock<(usize, usize)>,
}

/// The fields of a complete struct/union, built once per record type: `by_name` maps the
/// field name (a Python str, so lookups reuse its cached hash) to its `CField`.
pub struct FieldTable {
    pub by_name: Py<PyDict>,
    pub list: Vec<Py<CField>>,
    /// (interned name object, field) pairs: attribute names in Python source are the same
    /// interned str objects, so a pointer scan finds most fields without hashing.
    pub interned: Vec<(usize, usize)>,
}

impl FieldTable {
    /// The CField named `name` (a borrowed pointer into `list`), or null.
    ///
    /// # Safety
    /// `name` is a live object; the GIL is held.
    #[inline]
    pub unsafe fn find(&self, name: *mut pyo3::ffi::PyObject) -> *mut pyo3::ffi::PyObject {
        for &(n, f) in &self.interned {
            if n == name as usize {
                return f as *mut pyo3::ffi::PyObject;
            }
        }
        // SAFETY: `by_name` is a live dict and `name` a live object, the GIL is held (both
        // the caller's promise).
        unsafe {
            let p = pyo3::ffi::PyDict_GetItemWithError(self.by_name.as_ptr(), name);
            if p.is_null() {
                pyo3::ffi::PyErr_Clear();
            }
            p
        }
    }
}

#[pyclass(module = "jitffi._jitffi", name = "CField", frozen)]
pub struct CField {
    pub name: String,
    pub ty: TypeRef,
    pub ctype: Py<CType>,
    pub offset: usize,
    pub bitshift: i32,
    pub bitsize: i32,
    pub flags: u32,
    /// Declared as a flexible array member (`T a[];`, last field).
    pub flexible: bool,
}

#[pymethods]
impl CField {
    #[getter]
    fn r#type(&self, py: Python<'_>) -> Py<CType> {
        self.ctype.clone_ref(py)
    }
    #[getter]
    fn offset(&self) -> usize {
        self.offset
    }
    #[getter]
    fn bitshift(&self) -> i32 {
        // cffi shows a flexible array member with -2 (its "empty array" marker)
        if self.flexible {
            -2
        } else {
            self.bitshift
        }
    }
    #[getter]
    fn bitsize(&self) -> i32 {
        self.bitsize
    }
    #[getter]
    fn flags(&self) -> u32 {
        self.flags
    }
    fn __repr__(&self) -> String {
        format!(
            "<CField '{}' of type '{}' at offset {}>",
            self.name,
            self.ty.cname(),
            self.offset
        )
    }
}

/// As cffi, when it first builds the type (once per FFI). A warning turned into an error
/// cannot be raised from where types are built: it is dropped.
fn warn_if_opaque_enum(py: Python<'_>, ty: &TypeRef) {
    if let Kind::Enum(e) = &ty.kind {
        if e.items.is_empty() {
            let msg = std::ffi::CString::new(format!(
                "'{}' has no values explicitly defined; guessing that it is equivalent to \
                 'unsigned int'",
                ty.cname()
            ))
            .unwrap_or_default();
            let cat = py.get_type::<pyo3::exceptions::PyUserWarning>();
            let _ = PyErr::warn(py, &cat, &msg, 1);
        }
    }
}

/// The shared state's node for `ty` if `ty` depends on no declaration (see
/// `TypeNode::canonical`), found once per node.
fn declaration_free_node(py: Python<'_>, ty: &TypeRef) -> Option<TypeRef> {
    if let Some(c) = ty.canonical.get() {
        return c.clone();
    }
    let free = match &ty.kind {
        Kind::Void | Kind::Prim(_) => true,
        Kind::Pointer(item) | Kind::Array(item, _) => declaration_free_node(py, item).is_some(),
        Kind::FuncPtr(sig) => sig
            .args
            .iter()
            .chain([&sig.result])
            .all(|t| declaration_free_node(py, t).is_some()),
        Kind::Record(_) | Kind::Enum(_) => false,
    };
    let node = free.then(|| super::state::builtin(py).lock_ns().own_node(ty));
    ty.canonical.get_or_init(|| node).clone()
}

impl FfiShared {
    /// The one CType object of `ty`: in this FFI, or, for a type that depends on no
    /// declaration, the one all FFIs share (`ffi1.typeof("int *") is ffi2.typeof("int*")`,
    /// as in cffi).
    pub fn ctype_of(self: &Arc<Self>, py: Python<'_>, ty: &TypeRef) -> Py<CType> {
        let id = ty.id as usize;
        let obj = match self.type_object(py, id) {
            Some(o) => o,
            None => {
                // Types of records shared with another FFI (`include`, out-of-line
                // `_includes`) are nodes of that FFI's table, whose ids mean other types
                // here: their CType is made for this table's node.
                let own = self.lock_ns().own_node(ty);
                if !Arc::ptr_eq(&own, ty) {
                    return self.ctype_of(py, &own);
                }
                let b = super::state::builtin(py);
                let ct = match declaration_free_node(py, ty) {
                    // Kept here too (strongly, until this FFI goes), so that the next
                    // lookup is this table's.
                    Some(shared) if !Arc::ptr_eq(self, b) => b.ctype_of(py, &shared),
                    _ => {
                        warn_if_opaque_enum(py, ty);
                        Py::new(py, CType::new(ty.clone(), self.clone()))
                            .expect("allocating a CType")
                    }
                };
                self.keep_type_object(py, id, ct.into_any())
            }
        };
        // SAFETY: this module is the only writer of the type objects, and it keeps only
        // CType objects there (above).
        let ct = unsafe { obj.into_bound(py).cast_into_unchecked::<CType>() };
        let kept = &ct.get().ty;
        // This node's CType, or the shared one of the same declaration-free type.
        if Arc::ptr_eq(kept, ty)
            || matches!(ty.canonical.get(), Some(Some(c)) if Arc::ptr_eq(c, kept))
        {
            if self.holds_types_weakly() {
                // A shared pointer or array type keeps its item type alive (as cffi's):
                // the item's CType stays the same object while the outer one lives.
                let _ = ct.get().item_ctype(py);
            }
            return ct.unbind();
        }
        // (the same id in another table, see above)
        let own = self.lock_ns().own_node(ty);
        self.ctype_of(py, &own)
    }

    /// Parses a C type string (cached per string).
    pub fn parse_ctype<'py>(
        self: &Arc<Self>,
        text: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, CType>> {
        let py = text.py();
        let cache = self.type_cache.bind(py);
        if let Some(hit) = cache.get_item(text)? {
            // SAFETY: only CType objects are stored in this dict (below).
            return Ok(unsafe { hit.cast_into_unchecked::<CType>() });
        }
        let s = text.to_str()?;
        let ty = {
            let mut ns = self.lock_ns();
            if let Some(m) = self.ool.get() {
                use crate::ool::lazy::{resolve_type_string, TypeStringError};
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    resolve_type_string(m, &mut ns, s)
                }))
                .map_err(super::errors::internal_error)?;
                match r {
                    Ok(ty) => ty,
                    Err(TypeStringError::Realize(e)) => return Err(super::errors::realize_err(e)),
                    Err(TypeStringError::Cffi1(d)) => return Err(FFIError::new_err(d.render(s))),
                    // Without cffi's wording, a parse error is still the compiled FFI's
                    // `ffi.error`; other kinds keep their exception.
                    Err(TypeStringError::Parse(e)) if e.kind == crate::cdef::ErrorKind::CDef => {
                        return Err(FFIError::new_err(e.message))
                    }
                    Err(TypeStringError::Parse(e)) => return Err(cdef_err(e)),
                }
            } else {
                ns.parse_type(s).map_err(cdef_err)?
            }
        };
        let ct = self.ctype_of(py, &ty).into_bound(py);
        cache.set_item(text, &ct)?;
        Ok(ct)
    }
}

impl CType {
    pub fn new(ty: TypeRef, ffi: FfiRef) -> CType {
        CType {
            ty,
            ffi,
            item: OnceLock::new(),
            fields: OnceLock::new(),
            decay: OnceLock::new(),
            open_array: OnceLock::new(),
            fixed_new: OnceLock::new(),
        }
    }

    pub fn cname(&self) -> String {
        self.ty.cname()
    }

    /// CType of the pointee / array item.
    pub fn item_ctype(&self, py: Python<'_>) -> Option<&Py<CType>> {
        if let Some(i) = self.item.get() {
            return Some(i);
        }
        let item = match &self.ty.kind {
            Kind::Pointer(t) | Kind::Array(t, _) => t.clone(),
            _ => return None,
        };
        let ct = self.ffi.ctype_of(py, &item);
        let _ = self.item.set(ct);
        self.item.get()
    }

    /// The field table of a complete struct/union (None while opaque).
    pub fn field_table(&self, py: Python<'_>) -> Option<&Arc<FieldTable>> {
        if let Some(t) = self.fields.get() {
            return Some(t);
        }
        let layout = self.ty.record_layout()?;
        let by_name = PyDict::new(py);
        let mut list = Vec::with_capacity(layout.fields.len());
        let mut interned = Vec::with_capacity(layout.fields.len());
        let nfields = layout.fields.len();
        for (i, f) in layout.fields.iter().enumerate() {
            let flexible = i + 1 == nfields
                && layout.has_flexible_array
                && matches!(f.ty.kind, Kind::Array(_, None));
            // (this FFI's node for the field type: the layout's may be another FFI's)
            let ctype = self.ffi.ctype_of(py, &f.ty);
            let ty = ctype.get().ty.clone();
            let cf = Py::new(
                py,
                CField {
                    name: f.name.clone(),
                    ty,
                    ctype,
                    offset: f.offset,
                    bitshift: f.bitshift,
                    bitsize: f.bitsize,
                    flags: f.flags,
                    flexible,
                },
            )
            .ok()?;
            let key = PyString::intern(py, &f.name);
            // the dict keeps both the interned key and the field alive
            interned.push((key.as_ptr() as usize, cf.as_ptr() as usize));
            let _ = by_name.set_item(key, cf.clone_ref(py));
            list.push(cf);
        }
        let _ = self.fields.set(Arc::new(FieldTable {
            by_name: by_name.unbind(),
            list,
            interned,
        }));
        self.fields.get()
    }

    /// (bytes, items) that `ffi.new` allocates for this type whatever the initializer, if
    /// that is fixed.
    #[inline]
    pub fn fixed_new_size(&self) -> Option<(usize, usize)> {
        if let Some(v) = self.fixed_new.get() {
            return Some(*v);
        }
        let v = match &self.ty.kind {
            Kind::Pointer(item) => {
                let size = item.size()?;
                if item
                    .record_layout()
                    .is_some_and(|l| l.ends_in_flexible_array())
                {
                    return None;
                }
                (size, 0)
            }
            Kind::Array(item, Some(n)) => (
                item.size()?
                    .checked_mul(*n)
                    .filter(|b| *b <= isize::MAX as usize)?,
                *n,
            ),
            _ => return None,
        };
        let _ = self.fixed_new.set(v);
        Some(v)
    }

    /// `T *` for `T[n]`/`T[]`; itself for pointers.
    pub fn decayed_ctype(&self, py: Python<'_>) -> Option<Py<CType>> {
        match &self.ty.kind {
            Kind::Array(item, _) => Some(
                self.decay
                    .get_or_init(|| {
                        let t = self.ffi.pointer_to(item);
                        self.ffi.ctype_of(py, &t)
                    })
                    .clone_ref(py),
            ),
            _ => None,
        }
    }

    /// `T[]` for `T *` and `T[n]`.
    pub fn open_array_ctype(&self, py: Python<'_>) -> Option<Py<CType>> {
        match &self.ty.kind {
            Kind::Array(item, _) | Kind::Pointer(item) => Some(
                self.open_array
                    .get_or_init(|| {
                        let t = self.ffi.array_of(item, None);
                        self.ffi.ctype_of(py, &t)
                    })
                    .clone_ref(py),
            ),
            _ => None,
        }
    }

    fn no_attr(&self, name: &str) -> PyErr {
        PyAttributeError::new_err(name.to_string())
    }
}

#[pymethods]
impl CType {
    #[getter]
    fn kind(&self) -> &'static str {
        self.ty.kind_name()
    }
    #[getter(cname)]
    fn get_cname(&self) -> String {
        self.ty.cname()
    }
    #[getter]
    fn item(&self, py: Python<'_>) -> PyResult<Py<CType>> {
        match self.item_ctype(py) {
            Some(i) => Ok(i.clone_ref(py)),
            None => Err(self.no_attr("item")),
        }
    }
    #[getter]
    fn length(&self) -> PyResult<Option<usize>> {
        match &self.ty.kind {
            Kind::Array(_, n) => Ok(*n),
            _ => Err(self.no_attr("length")),
        }
    }
    #[getter]
    fn fields(&self, py: Python<'_>) -> PyResult<Option<Py<PyList>>> {
        if !matches!(self.ty.kind, Kind::Record(_)) {
            return Err(self.no_attr("fields"));
        }
        let Some(t) = self.field_table(py) else {
            return Ok(None);
        };
        let items: Vec<Bound<'_, PyTuple>> = t
            .list
            .iter()
            .map(|f| {
                PyTuple::new(
                    py,
                    [
                        f.get().name.clone().into_pyobject(py).unwrap().into_any(),
                        f.clone_ref(py).into_bound(py).into_any(),
                    ],
                )
            })
            .collect::<PyResult<_>>()?;
        Ok(Some(PyList::new(py, items)?.unbind()))
    }
    #[getter]
    fn args(&self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        match &self.ty.kind {
            Kind::FuncPtr(sig) => {
                let v: Vec<Py<CType>> = sig.args.iter().map(|a| self.ffi.ctype_of(py, a)).collect();
                Ok(PyTuple::new(py, v)?.unbind())
            }
            _ => Err(self.no_attr("args")),
        }
    }
    #[getter]
    fn result(&self, py: Python<'_>) -> PyResult<Py<CType>> {
        match &self.ty.kind {
            Kind::FuncPtr(sig) => Ok(self.ffi.ctype_of(py, &sig.result)),
            _ => Err(self.no_attr("result")),
        }
    }
    #[getter]
    fn ellipsis(&self) -> PyResult<bool> {
        match &self.ty.kind {
            Kind::FuncPtr(sig) => Ok(sig.variadic),
            _ => Err(self.no_attr("ellipsis")),
        }
    }
    #[getter]
    fn abi(&self) -> PyResult<i32> {
        match &self.ty.kind {
            Kind::FuncPtr(_) => Ok(FFI_DEFAULT_ABI),
            _ => Err(self.no_attr("abi")),
        }
    }
    #[getter]
    fn elements(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        match &self.ty.kind {
            Kind::Enum(e) => {
                let d = PyDict::new(py);
                // first name wins for duplicate values, as in cffi
                for (name, v) in e.items.iter().rev() {
                    d.set_item(*v, name)?;
                }
                Ok(d.unbind())
            }
            _ => Err(self.no_attr("elements")),
        }
    }
    #[getter]
    fn relements(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        match &self.ty.kind {
            Kind::Enum(e) => {
                let d = PyDict::new(py);
                for (name, v) in e.items.iter().rev() {
                    d.set_item(name, *v)?;
                }
                Ok(d.unbind())
            }
            _ => Err(self.no_attr("relements")),
        }
    }

    /// An enum's enumerators in declaration order, as (name, value) pairs (what cffi's
    /// front end hands a foreign backend's `new_enum_type`).
    #[getter]
    fn _enumerators(&self) -> PyResult<Vec<(String, i128)>> {
        match &self.ty.kind {
            Kind::Enum(e) => Ok(e.items.clone()),
            _ => Err(self.no_attr("_enumerators")),
        }
    }
    fn __dir__(&self) -> Vec<&'static str> {
        let mut v = vec!["cname", "kind"];
        match &self.ty.kind {
            Kind::Pointer(_) => v.push("item"),
            Kind::Array(..) => v.extend(["item", "length"]),
            Kind::Record(_) => v.push("fields"),
            Kind::Enum(_) => v.extend(["elements", "relements"]),
            Kind::FuncPtr(_) => v.extend(["abi", "args", "ellipsis", "result"]),
            _ => {}
        }
        v.sort();
        v
    }
    fn __repr__(&self) -> String {
        format!("<ctype '{}'>", self.ty.cname())
    }
}

//! `CData`: a C value or a view of C memory, with cffi's semantics (spec A7).
//!
//! Layout of one cdata object (a frozen pyclass, final, weak-referenceable):
//! - `ctype`: its `CType` (which holds the interned `TypeNode` and the FFI state);
//! - `addr`: pointers/function pointers: the pointer value; arrays/structs/unions: the
//!   address of the data; primitives: unused (the value lives in `value`);
//! - `length`: number of items of an array cdata;
//! - `alloc_size`: bytes owned (repr "owning N bytes", `sizeof` of var-sized objects);
//! - `value`: 16 bytes holding a primitive's value (cast results, long double reads);
//! - `state` (GIL-guarded): the `Owner` (what to free/call/unlock on release, or which
//!   owning cdata a view keeps alive; `Owner::Released`, checked before any access, once
//!   released).
//!
//! The type is not GC-tracked and its objects are allocated/freed by hand ("raw mode" at
//! the end of this file); small `ffi.new` blocks live inside the object (`Owner::Inline`).
//!
//! Field access (`p.x`) goes to the record CType's field table: a dict from interned name
//! to `CField` (offset, bit position, field CType), built once per record type.

use std::collections::HashMap;
use std::sync::OnceLock;

use pyo3::exceptions::{PyAttributeError, PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyDict, PySlice, PyString, PyTuple};

use super::convert::{self, read_bitfield, read_with_ctype, write_bitfield, write_sized};
use super::ctype::{CField, CType};
use super::gil::GilCell;
use super::longdouble;
use crate::types::model::{Kind, PrimClass, TypeRef};

/// The owning cdata a view keeps alive.
pub type Keeper = Py<CData>;

/// What a cdata owns, and what releasing it does. Kept to 32 bytes (boxed strings) so a
/// cdata object is 112 bytes and `new("int[]", 100)` still fits one pymalloc block.
pub enum Owner {
    /// Plain non-owning value or view.
    None,
    /// A view into memory owned by another cdata, kept alive (and checked for release).
    View(Keeper),
    /// Memory from `cdata::calloc` (CPython's `PyMem_Calloc`: pymalloc for small blocks),
    /// freed with `PyMem_Free` (always with the GIL held).
    Malloc,
    /// Zeroed bytes allocated together with the object itself (after its fixed part), so
    /// a small `ffi.new` is one allocation; they go away with the object.
    Inline,
    /// Memory from a `new_allocator` alloc function; `free(alloc_result)` on release.
    Allocator { free: Option<Py<PyAny>>, alloc_result: Py<PyAny> },
    /// `ffi.gc(orig, destructor)`: calls `destructor(orig)` once.
    Gc { orig: Py<PyAny>, destructor: Option<Py<PyAny>> },
    /// `ffi.from_buffer`: the locked buffer of a Python object.
    Buffer { view: BufferView, type_name: Box<str> },
    /// `ffi.new_handle(obj)`: `addr` is a registry token mapping back to obj.
    Handle,
    /// Released (`ffi.release`, `with`): what it owned is gone; any access raises.
    Released,
    /// Owners defined elsewhere (callbacks): dropped on release; `repr` text for cffi's
    /// "<cdata 'T' calling ...>" style.
    Custom { payload: Box<dyn std::any::Any + Send + Sync>, repr: Box<String> },
}

/// A locked `Py_buffer` (released with the GIL held, by `release_now`).
pub struct BufferView(pub Box<ffi::Py_buffer>);
// SAFETY: only touched with the GIL held.
unsafe impl Send for BufferView {}
unsafe impl Sync for BufferView {}

pub struct CState {
    pub owner: Owner,
}

impl CState {
    #[inline]
    pub fn released(&self) -> bool {
        matches!(self.owner, Owner::Released)
    }
}

/// Slice results print as "sliced length N".
pub const F_SLICED: u32 = 1;
/// `p[0]` of `new("struct s *")`: prints as owning.
pub const F_OWNING_VIEW: u32 = 2;

#[pyclass(module = "jitffi._jitffi", name = "CData", frozen, weakref)]
pub struct CData {
    pub ctype: Py<CType>,
    pub addr: usize,
    pub length: usize,
    pub alloc_size: usize,
    pub flags: u32,
    value: [u64; 2],
    pub state: GilCell<CState>,
}

/// Calls function-pointer cdata; installed by the calls module (`set_call_hook`).
pub type CallHook = for<'py> fn(&Bound<'py, CData>, &Bound<'py, PyTuple>, Option<&Bound<'py, PyDict>>) -> PyResult<Py<PyAny>>;
static CALL_HOOK: OnceLock<CallHook> = OnceLock::new();

/// Lets the calls module make function-pointer cdata callable.
pub fn set_call_hook(h: CallHook) {
    let _ = CALL_HOOK.set(h);
}

/// The Python object a `Custom` owner calls (callbacks), for a lazily built
/// "<cdata 'T' calling obj>" (computing the repr at creation would cost more than the
/// creation itself); installed by the callbacks module.
pub type CustomTargetHook = fn(Python<'_>, &(dyn std::any::Any + Send + Sync)) -> Option<Py<PyAny>>;
static CUSTOM_TARGET_HOOK: OnceLock<CustomTargetHook> = OnceLock::new();

pub fn set_custom_target_hook(h: CustomTargetHook) {
    let _ = CUSTOM_TARGET_HOOK.set(h);
}

static HANDLES: GilCell<Option<HashMap<usize, Py<PyAny>>>> = GilCell::new(None);

fn released_err(cname: &str) -> PyErr {
    PyValueError::new_err(format!("cdata '{cname}' has been released (ffi.release() or 'with')"))
}

pub fn null_err(cname: &str) -> PyErr {
    PyRuntimeError::new_err(format!("cannot dereference a NULL or invalid pointer (cdata '{cname}')"))
}

/// Addresses in the first page are never mapped: dereferencing them is a NULL access.
pub const NULL_PAGE: usize = 4096;

/// Addresses no user-space mapping can have: the NULL page, and above the 48-bit user
/// address space of x86_64/aarch64 Linux (e.g. `cast("int *", -1)`). Dereferencing them
/// raises instead of crashing.
#[inline]
pub fn invalid_addr(a: usize) -> bool {
    !(NULL_PAGE..(1usize << 48)).contains(&a)
}

impl CData {
    fn build(ctype: Py<CType>, addr: usize, length: usize, alloc_size: usize, flags: u32, value: [u64; 2], owner: Owner) -> CData {
        CData { ctype, addr, length, alloc_size, flags, value, state: GilCell::new(CState { owner }) }
    }

    /// A primitive value cdata (`ffi.cast("int", 5)`, long double reads).
    pub fn new_value(py: Python<'_>, ct: Py<CType>, bytes: &[u8; 16]) -> PyResult<Py<CData>> {
        let mut v = [0u64; 2];
        v[0] = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
        v[1] = u64::from_le_bytes(bytes[8..].try_into().unwrap_or([0; 8]));
        alloc_cdata(py, Self::build(ct, 0, 0, 0, 0, v, Owner::None))
    }

    /// A non-owning pointer / function-pointer cdata.
    #[inline]
    pub fn new_pointer(py: Python<'_>, ct: Py<CType>, addr: usize) -> PyResult<Py<CData>> {
        alloc_cdata(py, Self::build(ct, addr, 0, 0, 0, [0; 2], Owner::None))
    }

    /// A non-owning view of an array (`length` items) or struct/union at `addr`.
    #[inline]
    pub fn new_view(py: Python<'_>, ct: Py<CType>, addr: usize, length: usize, keeper: Option<Keeper>, flags: u32) -> PyResult<Py<CData>> {
        let owner = match keeper {
            Some(k) => Owner::View(k),
            None => Owner::None,
        };
        alloc_cdata(py, Self::build(ct, addr, length, 0, flags, [0; 2], owner))
    }

    /// An owning cdata over memory that `owner` releases.
    pub fn new_owning(py: Python<'_>, ct: Py<CType>, addr: usize, length: usize, alloc_size: usize, owner: Owner) -> PyResult<Py<CData>> {
        alloc_cdata(py, Self::build(ct, addr, length, alloc_size, 0, [0; 2], owner))
    }

    /// An owning array/struct cdata over `size` zeroed bytes (`ffi.new`): inline in the
    /// object (one allocation) while the whole stays a pymalloc block, else a separate
    /// `calloc` block (which `ffi.release` gives back at once).
    #[inline]
    pub fn new_owned_zeroed(py: Python<'_>, ct: Py<CType>, size: usize, length: usize) -> PyResult<Py<CData>> {
        if size <= INLINE_MAX {
            if let Some(l) = RAW.get().filter(|l| l.inline_off + size <= INLINE_MAX) {
                return unsafe { alloc_inline(py, l, size, |addr| Self::build(ct, addr, length, size, 0, [0; 2], Owner::Inline)) };
            }
        }
        let mem = calloc(size)?;
        alloc_cdata(py, Self::build(ct, mem as usize, length, size, 0, [0; 2], Owner::Malloc))
    }

    /// An owning struct/union cdata with `size` zeroed bytes (by-value results).
    pub fn new_owned_struct(py: Python<'_>, ct: Py<CType>, size: usize) -> PyResult<Py<CData>> {
        Self::new_owned_zeroed(py, ct, size, 0)
    }

    #[inline]
    pub fn ty(&self) -> &TypeRef {
        &self.ctype.get().ty
    }

    #[inline]
    pub fn value_bytes(&self) -> &[u8; 16] {
        // SAFETY: [u64; 2] and [u8; 16] have the same size; u8 has no alignment needs.
        unsafe { &*(self.value.as_ptr() as *const [u8; 16]) }
    }

    pub fn is_released(&self, py: Python<'_>) -> bool {
        self.state.get(py).released()
    }

    /// Raises if this cdata (or the owner of the memory it views) was released.
    #[inline]
    pub fn check_alive(&self, py: Python<'_>) -> PyResult<()> {
        let st = self.state.get(py);
        if st.released() {
            return Err(released_err(&self.ty().cname()));
        }
        if let Owner::View(k) = &st.owner {
            if k.get().state.get(py).released() {
                return Err(released_err(&self.ty().cname()));
            }
        }
        Ok(())
    }

    /// Address of the data: arrays/structs → their memory, pointers → the pointee,
    /// primitives → the inline value. Raises after release.
    #[inline]
    pub fn data_addr(&self, py: Python<'_>) -> PyResult<usize> {
        self.check_alive(py)?;
        Ok(match &self.ty().kind {
            Kind::Prim(_) | Kind::Enum(_) => self.value.as_ptr() as usize,
            _ => self.addr,
        })
    }

    /// Owns its memory (freed/called/unlocked on release).
    pub fn owns_memory(&self, py: Python<'_>) -> bool {
        matches!(
            self.state.get(py).owner,
            Owner::Malloc | Owner::Inline | Owner::Allocator { .. } | Owner::Gc { .. } | Owner::Buffer { .. } | Owner::Custom { .. }
        )
    }

    /// What a view derived from `slf` should keep alive.
    #[inline]
    pub fn keeper_for(slf: &Bound<'_, CData>) -> Option<Keeper> {
        let me = slf.get();
        match &me.state.get(slf.py()).owner {
            Owner::None | Owner::Handle => None,
            Owner::View(k) => Some(k.clone_ref(slf.py())),
            _ => Some(slf.clone().unbind()),
        }
    }

    /// The integer value of an integer-like primitive cdata (ints, chars, bools, enums).
    pub fn int_value(&self) -> Option<i128> {
        let p = self.value.as_ptr() as *const u8;
        unsafe {
            match &self.ty().kind {
                Kind::Prim(pi) => match pi.class {
                    PrimClass::SignedInt => Some(convert::load_i64(p, pi.size) as i128),
                    PrimClass::UnsignedInt | PrimClass::Bool => Some(convert::load_u64(p, pi.size) as i128),
                    // as cffi: wchar_t by its C signedness (signed on x86_64), char16_t and
                    // char32_t unsigned; a char is its byte's value whatever C's `char` is
                    PrimClass::WideChar if pi.signed => Some(convert::load_i64(p, pi.size) as i128),
                    PrimClass::WideChar => Some(convert::load_u64(p, pi.size) as i128),
                    PrimClass::Char => Some(*p as i128),
                    _ => None,
                },
                Kind::Enum(e) => {
                    let pi = e.underlying_info();
                    Some(if pi.signed { convert::load_i64(p, pi.size) as i128 } else { convert::load_u64(p, pi.size) as i128 })
                }
                _ => None,
            }
        }
    }

    /// The float value of a float/double/long double primitive cdata.
    pub fn float_value(&self) -> Option<f64> {
        let p = self.value.as_ptr() as *const u8;
        match &self.ty().kind {
            Kind::Prim(pi) => match pi.class {
                PrimClass::Float => Some(unsafe { convert::load_f64(p, pi.size) }),
                PrimClass::LongDouble => Some(longdouble::to_f64(&self.ctype.get().ffi.target, self.value_bytes())),
                _ => None,
            },
            _ => None,
        }
    }

    /// A primitive cdata as the Python number used for comparisons and hashing.
    fn as_number(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if let Kind::Prim(pi) = &self.ty().kind {
            if matches!(pi.class, PrimClass::Char | PrimClass::WideChar) {
                let v = unsafe { convert::read_prim(py, &self.ctype.get().ffi, self.ty(), pi, self.value.as_ptr() as *const u8)? };
                return Ok(Some(v));
            }
        }
        if let Some(v) = self.int_value() {
            return Ok(Some(v.into_pyobject(py)?.into_any().unbind()));
        }
        if let Some(f) = self.float_value() {
            return Ok(Some(convert::f64_to_py(py, f)?));
        }
        if let Kind::Prim(pi) = &self.ty().kind {
            if pi.class == PrimClass::Complex {
                let p = self.value.as_ptr() as *const u8;
                let h = pi.size / 2;
                return Ok(Some(unsafe { convert::complex_to_py(py, convert::load_f64(p, h), convert::load_f64(p.add(h), h))? }));
            }
        }
        Ok(None)
    }

    fn is_primitive(&self) -> bool {
        matches!(self.ty().kind, Kind::Prim(_) | Kind::Enum(_))
    }

    /// Fast path of `item_addr` for arrays/pointers of primitives: (address, item type,
    /// its PrimInfo), or None when the items are not primitives.
    #[inline(always)]
    fn prim_item_addr<'a>(&'a self, py: Python<'_>, i: isize) -> PyResult<Option<(usize, &'a TypeRef, &'a crate::types::model::PrimInfo)>> {
        let ty = self.ty();
        let (item, is_array) = match &ty.kind {
            Kind::Array(item, _) => (item, true),
            Kind::Pointer(item) => (item, false),
            _ => return Ok(None),
        };
        let Kind::Prim(pi) = &item.kind else { return Ok(None) };
        self.check_alive(py)?;
        if is_array {
            if i < 0 || i as usize >= self.length || invalid_addr(self.addr) {
                return Ok(None); // item_addr raises the precise error
            }
            return Ok(Some((self.addr + i as usize * pi.size, item, pi)));
        }
        let a = self.addr.wrapping_add((i as usize).wrapping_mul(pi.size));
        if invalid_addr(self.addr) || invalid_addr(a) {
            return Ok(None);
        }
        Ok(Some((a, item, pi)))
    }

    /// Address and CType of item `i` (arrays bounds-checked, pointers NULL-checked).
    #[inline]
    fn item_addr<'a>(&'a self, py: Python<'_>, i: isize) -> PyResult<(usize, &'a Py<CType>)> {
        let ct = self.ctype.get();
        match &ct.ty.kind {
            Kind::Array(item, _) => {
                if i < 0 {
                    return Err(PyIndexError::new_err("negative index"));
                }
                if i as usize >= self.length {
                    return Err(PyIndexError::new_err(format!(
                        "index too large for cdata '{}' (expected {} < {})",
                        ct.ty.cname(),
                        i,
                        self.length
                    )));
                }
                self.check_alive(py)?;
                if invalid_addr(self.addr) {
                    return Err(null_err(&ct.ty.cname()));
                }
                let isz = item.size().unwrap_or(0);
                let ict = ct.item_ctype(py).ok_or_else(|| PyTypeError::new_err("array without item type"))?;
                Ok((self.addr + i as usize * isz, ict))
            }
            Kind::Pointer(item) => {
                self.check_alive(py)?;
                let isz = match item.size() {
                    Some(s) => s,
                    None => {
                        return Err(PyTypeError::new_err(format!(
                            "cdata of type '{}' cannot be indexed: items of unknown size",
                            ct.ty.cname()
                        )))
                    }
                };
                let a = self.addr.wrapping_add((i as usize).wrapping_mul(isz));
                if invalid_addr(self.addr) || invalid_addr(a) {
                    return Err(null_err(&ct.ty.cname()));
                }
                let ict = ct.item_ctype(py).ok_or_else(|| PyTypeError::new_err("pointer without item type"))?;
                Ok((a, ict))
            }
            _ => Err(PyTypeError::new_err(format!("cdata of type '{}' cannot be indexed", ct.ty.cname()))),
        }
    }

    /// The record CType and base address for `.field` access on a struct/union cdata or
    /// a pointer to one.
    #[inline]
    fn record_target<'a>(&'a self, py: Python<'_>) -> Option<(&'a CType, bool)> {
        let ct = self.ctype.get();
        match &ct.ty.kind {
            Kind::Record(_) => Some((ct, false)),
            Kind::Pointer(item) if matches!(item.kind, Kind::Record(_)) => ct.item_ctype(py).map(|i| (i.get(), true)),
            _ => None,
        }
    }

    #[inline]
    fn field_base(&self, py: Python<'_>, through_ptr: bool) -> PyResult<usize> {
        self.check_alive(py)?;
        let _ = through_ptr;
        if invalid_addr(self.addr) {
            return Err(null_err(&self.ty().cname()));
        }
        Ok(self.addr)
    }

    fn lookup_field<'py>(&self, py: Python<'py>, rec: &CType, name: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, CField>>> {
        let Some(table) = rec.field_table(py) else {
            return Err(PyAttributeError::new_err(format!(
                "cdata '{}' points to an opaque type: cannot read fields",
                self.ty().cname()
            )));
        };
        // Borrowed lookup: no exception on a miss, hash cached in the (interned) name.
        let p = table.find(name.as_ptr());
        if p.is_null() {
            return Ok(None);
        }
        Ok(Some(unsafe { Bound::from_borrowed_ptr(py, p).cast_into_unchecked::<CField>() }))
    }

    fn no_field(&self, name: &Bound<'_, PyAny>) -> PyErr {
        PyAttributeError::new_err(format!("cdata '{}' has no field '{}'", self.ty().cname(), name))
    }

    /// Bytes a var-sized struct object spans (from `new` with a flexible array member).
    fn var_size(&self, py: Python<'_>) -> usize {
        if self.alloc_size > 0 {
            return self.alloc_size;
        }
        if let Owner::View(k) = &self.state.get(py).owner {
            return k.get().alloc_size;
        }
        0
    }

    /// Releases what this cdata owns, once. `ffi.release`, `with`, and dealloc.
    pub fn release_now(&self, py: Python<'_>) -> PyResult<()> {
        let owner = {
            let st = self.state.get(py);
            match st.owner {
                Owner::None | Owner::View(_) | Owner::Released => return Ok(()),
                _ => {}
            }
            std::mem::replace(&mut st.owner, Owner::Released)
        };
        match owner {
            Owner::Malloc => unsafe { ffi::PyMem_Free(self.addr as *mut std::ffi::c_void) },
            Owner::Inline => {}
            Owner::Allocator { free, alloc_result } => {
                if let Some(f) = free {
                    f.call1(py, (alloc_result,))?;
                }
            }
            Owner::Gc { orig, destructor } => {
                if let Some(d) = destructor {
                    d.call1(py, (orig,))?;
                }
            }
            Owner::Buffer { mut view, .. } => unsafe { ffi::PyBuffer_Release(&mut *view.0) },
            Owner::Handle => {
                let obj = HANDLES.get(py).as_mut().and_then(|m| m.remove(&self.addr));
                unsafe { ffi::PyMem_Free(self.addr as *mut std::ffi::c_void) };
                drop(obj);
            }
            Owner::Custom { payload, .. } => drop(payload),
            Owner::None | Owner::View(_) | Owner::Released => {}
        }
        Ok(())
    }

    /// `ffi.gc(p, None)`: drop the destructor without calling it.
    pub fn detach_destructor(&self, py: Python<'_>) -> bool {
        if let Owner::Gc { destructor, .. } = &mut self.state.get(py).owner {
            *destructor = None;
            return true;
        }
        false
    }

    pub fn repr_string(&self, py: Python<'_>) -> PyResult<String> {
        let ty = self.ty();
        let cname = ty.cname();
        let st = self.state.get(py);
        let owning = |n: usize| format!("<cdata '{cname}' owning {n} bytes>");
        match &ty.kind {
            Kind::Prim(pi) => {
                let p = self.value.as_ptr() as *const u8;
                let text = match pi.class {
                    PrimClass::LongDouble => longdouble::format_e(self.float_value().unwrap_or(0.0)),
                    _ => {
                        let v = unsafe { convert::read_prim(py, &self.ctype.get().ffi, ty, pi, p)? };
                        v.bind(py).repr()?.to_string()
                    }
                };
                Ok(format!("<cdata '{cname}' {text}>"))
            }
            Kind::Enum(e) => {
                let v = self.int_value().unwrap_or(0);
                match e.items.iter().find(|(_, x)| *x == v) {
                    Some((n, _)) => Ok(format!("<cdata '{cname}' {v}: {n}>")),
                    None => Ok(format!("<cdata '{cname}' {v}>")),
                }
            }
            _ => {
                if st.released() {
                    return Ok(format!("<cdata '{cname}' released>"));
                }
                match &st.owner {
                    Owner::Malloc | Owner::Inline | Owner::Allocator { .. } => return Ok(owning(self.alloc_size)),
                    Owner::Buffer { type_name, .. } => {
                        if matches!(ty.kind, Kind::Pointer(_)) {
                            return Ok(format!("<cdata '{cname}' buffer from '{type_name}' object>"));
                        }
                        return Ok(format!("<cdata '{cname}' buffer len {} from '{type_name}' object>", self.length));
                    }
                    Owner::Handle => {
                        let obj = HANDLES.get(py).as_ref().and_then(|m| m.get(&self.addr)).map(|o| o.clone_ref(py));
                        let r = match obj {
                            Some(o) => o.bind(py).repr()?.to_string(),
                            None => "?".into(),
                        };
                        return Ok(format!("<cdata '{cname}' handle to {r}>"));
                    }
                    Owner::Custom { repr, payload } => {
                        if let Some(obj) = CUSTOM_TARGET_HOOK.get().filter(|_| repr.is_empty()).and_then(|h| h(py, &**payload)) {
                            return Ok(format!("<cdata '{cname}' calling {}>", obj.bind(py).repr()?));
                        }
                        return Ok(format!("<cdata '{cname}' {repr}>"));
                    }
                    _ => {}
                }
                if self.flags & F_OWNING_VIEW != 0 {
                    if let Owner::View(k) = &st.owner {
                        return Ok(owning(k.get().alloc_size));
                    }
                }
                if self.flags & F_SLICED != 0 {
                    return Ok(format!("<cdata '{cname}' sliced length {}>", self.length));
                }
                let shown = if matches!(ty.kind, Kind::Record(_)) { format!("{cname} &") } else { cname.clone() };
                if self.addr == 0 {
                    Ok(format!("<cdata '{shown}' NULL>"))
                } else {
                    Ok(format!("<cdata '{shown}' 0x{:x}>", self.addr))
                }
            }
        }
    }

    fn slice_bounds(&self, slice: &Bound<'_, PySlice>) -> PyResult<(usize, usize)> {
        let s = slice.as_ptr() as *mut ffi::PySliceObject;
        let (start, stop, step) = unsafe { ((*s).start, (*s).stop, (*s).step) };
        let py = slice.py();
        let none = unsafe { ffi::Py_None() };
        if step != none {
            return Err(PyIndexError::new_err("slice with step not supported"));
        }
        let get = |o: *mut ffi::PyObject, dflt: Option<usize>, what: &str| -> PyResult<isize> {
            if o == none {
                return match dflt {
                    Some(d) => Ok(d as isize),
                    None => Err(PyIndexError::new_err(format!("slice {what} must be specified"))),
                };
            }
            unsafe { Bound::from_borrowed_ptr(py, o) }.extract::<isize>()
        };
        let is_array = matches!(self.ty().kind, Kind::Array(..));
        let start = get(start, None, "start")?;
        let stop = get(stop, None, "stop")?;
        if start < 0 {
            return Err(PyIndexError::new_err("negative index"));
        }
        if start > stop {
            return Err(PyIndexError::new_err("slice start > stop"));
        }
        if is_array && stop as usize > self.length {
            return Err(PyIndexError::new_err(format!("index too large (expected {} <= {})", stop, self.length)));
        }
        Ok((start as usize, stop as usize))
    }

    fn get_slice(slf: &Bound<'_, CData>, slice: &Bound<'_, PySlice>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        let (a, b) = me.slice_bounds(slice)?;
        let ct = me.ctype.get();
        let item = match &ct.ty.kind {
            Kind::Array(i, _) | Kind::Pointer(i) => i.clone(),
            _ => return Err(PyTypeError::new_err(format!("cdata of type '{}' cannot be indexed", ct.ty.cname()))),
        };
        me.check_alive(py)?;
        if invalid_addr(me.addr) {
            return Err(null_err(&ct.ty.cname()));
        }
        let isz = item.size().ok_or_else(|| PyTypeError::new_err("items of unknown size"))?;
        let arr_ct = ct.open_array_ctype(py).ok_or_else(|| PyTypeError::new_err("cannot slice"))?;
        Ok(CData::new_view(py, arr_ct, me.addr.wrapping_add(a.wrapping_mul(isz)), b - a, CData::keeper_for(slf), F_SLICED)?.into_any())
    }

    fn set_slice(slf: &Bound<'_, CData>, slice: &Bound<'_, PySlice>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        let (a, b) = me.slice_bounds(slice)?;
        let ct = me.ctype.get();
        let item = match &ct.ty.kind {
            Kind::Array(i, _) | Kind::Pointer(i) => i.clone(),
            _ => return Err(PyTypeError::new_err(format!("cdata of type '{}' cannot be indexed", ct.ty.cname()))),
        };
        me.check_alive(py)?;
        if invalid_addr(me.addr) {
            return Err(null_err(&ct.ty.cname()));
        }
        let isz = item.size().ok_or_else(|| PyTypeError::new_err("items of unknown size"))?;
        let n = b - a;
        let dst = me.addr.wrapping_add(a.wrapping_mul(isz)) as *mut u8;
        if invalid_addr(dst as usize) {
            return Err(null_err(&ct.ty.cname()));
        }
        if let Ok(cd) = value.cast::<CData>() {
            let c = cd.get();
            if let Kind::Array(si, _) = &c.ty().kind {
                if convert::same_type(si, &item) {
                    if c.length != n {
                        return Err(PyValueError::new_err(format!("need {} values to unpack, got {}", n, c.length)));
                    }
                    let src = c.data_addr(py)?;
                    if invalid_addr(src) {
                        return Err(null_err(&c.ty().cname()));
                    }
                    unsafe { std::ptr::copy(src as *const u8, dst, n * isz) };
                    return Ok(());
                }
            }
        }
        if let Ok(bytes) = value.cast::<pyo3::types::PyBytes>() {
            if matches!(&item.kind, Kind::Prim(pi) if pi.class == PrimClass::Char) {
                let s = bytes.as_bytes();
                if s.len() != n {
                    return Err(PyValueError::new_err(format!("need {} values to unpack, got {}", n, s.len())));
                }
                unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), dst, n) };
                return Ok(());
            }
        }
        let items: Vec<Bound<'_, PyAny>> = value.try_iter()?.collect::<PyResult<_>>()?;
        if items.len() != n {
            return Err(PyValueError::new_err(format!("need {} values to unpack, got {}", n, items.len())));
        }
        for (i, x) in items.iter().enumerate() {
            unsafe { write_sized(&item, x, dst.add(i * isz), isz)? };
        }
        Ok(())
    }

    /// Pointer arithmetic: `self + n` items (arrays decay to pointers).
    fn ptr_add(slf: &Bound<'_, CData>, n: isize) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        let ct = me.ctype.get();
        let (item, res_ct) = match &ct.ty.kind {
            Kind::Pointer(i) => (i, me.ctype.clone_ref(py)),
            Kind::Array(i, _) => (i, ct.decayed_ctype(py).ok_or_else(|| PyTypeError::new_err("cannot decay"))?),
            _ => return Err(PyTypeError::new_err(format!("cannot add a cdata '{}' and a number", ct.ty.cname()))),
        };
        let isz = match (&item.kind, item.size()) {
            (Kind::Void, _) => 1,
            (_, Some(s)) => s,
            _ => return Err(PyTypeError::new_err(format!("ctype '{}' points to items of unknown size", ct.ty.cname()))),
        };
        me.check_alive(py)?;
        let a = me.addr.wrapping_add((n as usize).wrapping_mul(isz));
        let keep = CData::keeper_for(slf);
        Ok(alloc_cdata(py, Self::build(res_ct, a, 0, 0, 0, [0; 2], keep.map(Owner::View).unwrap_or(Owner::None)))?.into_any())
    }

    /// The `int` value a cast to an integer type reads from this cdata.
    pub fn cast_int_source(&self) -> Option<i128> {
        if let Some(v) = self.int_value() {
            return Some(v);
        }
        if let Some(f) = self.float_value() {
            return Some(f as i128);
        }
        match &self.ty().kind {
            Kind::Pointer(_) | Kind::FuncPtr(_) | Kind::Array(..) => Some(self.addr as i128),
            _ => None,
        }
    }
}

impl Drop for CData {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if matches!(st.owner, Owner::None | Owner::Inline | Owner::Released) {
            return;
        }
        if matches!(st.owner, Owner::Malloc) {
            st.owner = Owner::Released;
            // dealloc runs with the GIL held, as PyMem_Free requires
            unsafe { ffi::PyMem_Free(self.addr as *mut std::ffi::c_void) };
            return;
        }
        // SAFETY: pyclass objects are dropped from tp_dealloc, with the GIL held.
        let py = unsafe { Python::assume_attached() };
        if let Err(e) = self.release_now(py) {
            e.write_unraisable(py, None);
        }
    }
}

/// Allocates `size` zeroed bytes (at least 1 so each object is unique) with CPython's
/// allocator: pymalloc serves small blocks much faster than libc. Needs the GIL (every
/// caller has it: `py`-taking constructors) and is freed by `Owner::Malloc`'s release.
pub fn calloc(size: usize) -> PyResult<*mut u8> {
    let p = unsafe { ffi::PyMem_Calloc(1, size.max(1)) } as *mut u8;
    if p.is_null() {
        return Err(pyo3::exceptions::PyMemoryError::new_err(format!("cannot allocate {size} bytes")));
    }
    Ok(p)
}

/// Registers a handle for `obj`: a fresh unique address (a 1-byte allocation).
pub fn new_handle(py: Python<'_>, ct: Py<CType>, obj: Py<PyAny>) -> PyResult<Py<CData>> {
    let token = calloc(1)? as usize;
    HANDLES.get(py).get_or_insert_with(HashMap::new).insert(token, obj);
    CData::new_owning(py, ct, token, 0, 0, Owner::Handle)
}

/// The object behind a handle address.
pub fn from_handle(py: Python<'_>, addr: usize) -> PyResult<Py<PyAny>> {
    if addr == 0 {
        return Err(PyRuntimeError::new_err("cannot use from_handle() on NULL pointer"));
    }
    match HANDLES.get(py).as_ref().and_then(|m| m.get(&addr)) {
        Some(o) => Ok(o.clone_ref(py)),
        None => Err(PyRuntimeError::new_err(format!(
            "from_handle(): 0x{addr:x} is not a live handle from ffi.new_handle()"
        ))),
    }
}

#[pyclass(module = "jitffi._jitffi", name = "CDataIter", frozen)]
pub struct CDataIter {
    arr: Py<CData>,
    idx: GilCell<usize>,
}

#[pymethods]
impl CDataIter {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let arr = self.arr.bind(py);
        let me = arr.get();
        let i = *self.idx.get(py);
        if i >= me.length {
            return Ok(None);
        }
        *self.idx.get(py) = i + 1;
        CData::read_item(arr, i as isize).map(Some)
    }
}

impl CData {
    #[inline]
    pub fn read_item(slf: &Bound<'_, CData>, i: isize) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        if let Some((addr, ty, pi)) = me.prim_item_addr(py, i)? {
            if pi.class != PrimClass::LongDouble {
                return unsafe { convert::read_prim(py, &me.ctype.get().ffi, ty, pi, addr as *const u8) };
            }
        }
        let (addr, ict) = me.item_addr(py, i)?;
        let ic = ict.get();
        if let Kind::Prim(pi) = &ic.ty.kind {
            return unsafe { convert::read_prim(py, &ic.ffi, &ic.ty, pi, addr as *const u8) };
        }
        let keeper = if matches!(ic.ty.kind, Kind::Pointer(_) | Kind::FuncPtr(_) | Kind::Enum(_)) { None } else { CData::keeper_for(slf) };
        if matches!(ic.ty.kind, Kind::Record(_)) && matches!(me.ty().kind, Kind::Pointer(_)) && i == 0 && me.owns_memory(py) {
            return Ok(CData::new_view(py, ict.clone_ref(py), addr, 0, keeper, F_OWNING_VIEW)?.into_any());
        }
        unsafe { read_with_ctype(py, ic, ict, addr as *const u8, keeper) }
    }

    #[inline]
    fn read_field(slf: &Bound<'_, CData>, rec_through_ptr: bool, f: &CField) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        let base = me.field_base(py, rec_through_ptr)?;
        let addr = base + f.offset;
        let fct = f.ctype.get();
        if f.bitsize >= 0 {
            return unsafe { read_bitfield(py, &f.ty, f.bitshift, f.bitsize, addr as *const u8) };
        }
        if let Kind::Prim(pi) = &fct.ty.kind {
            return unsafe { convert::read_prim(py, &fct.ffi, &fct.ty, pi, addr as *const u8) };
        }
        if f.flexible {
            let Kind::Array(item, _) = &f.ty.kind else {
                return Err(PyTypeError::new_err("flexible array member without array type"));
            };
            let item = item.clone();
            let isz = item.size().unwrap_or(1).max(1);
            let vs = me.var_size(py);
            if vs > 0 && vs >= f.offset {
                let n = (vs - f.offset) / isz;
                return Ok(CData::new_view(py, f.ctype.clone_ref(py), addr, n, CData::keeper_for(slf), F_SLICED)?.into_any());
            }
            let pct = fct.ffi.ctype_of(py, &fct.ffi.pointer_to(&item));
            return Ok(CData::new_pointer(py, pct, addr)?.into_any());
        }
        let keeper = if matches!(fct.ty.kind, Kind::Pointer(_) | Kind::FuncPtr(_) | Kind::Enum(_)) { None } else { CData::keeper_for(slf) };
        unsafe { read_with_ctype(py, fct, &f.ctype, addr as *const u8, keeper) }
    }

    #[inline]
    fn write_field(slf: &Bound<'_, CData>, rec_through_ptr: bool, f: &CField, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        let base = me.field_base(py, rec_through_ptr)?;
        let addr = (base + f.offset) as *mut u8;
        if f.bitsize >= 0 {
            return unsafe { write_bitfield(&f.ty, f.bitshift, f.bitsize, value, addr) };
        }
        if let Kind::Prim(pi) = &f.ty.kind {
            return unsafe { convert::write_prim(value, &f.ty, pi, addr) };
        }
        let vs = me.var_size(py);
        let avail = if vs > f.offset { vs - f.offset } else { f.ty.size().unwrap_or(usize::MAX) };
        unsafe { write_sized(&f.ty, value, addr, avail) }
    }
}


#[pymethods]
impl CData {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        self.repr_string(py)
    }

    fn __getattribute__(slf: &Bound<'_, Self>, name: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        if let Some((rec, through_ptr)) = me.record_target(py) {
            if let Some(table) = rec.field_table(py) {
                let p = table.find(name.as_ptr());
                if !p.is_null() {
                    // SAFETY: the table only holds CField objects.
                    let f = unsafe { Bound::from_borrowed_ptr(py, p).cast_into_unchecked::<CField>() };
                    return CData::read_field(slf, through_ptr, f.get());
                }
            }
        }
        unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyObject_GenericGetAttr(slf.as_ptr(), name.as_ptr())) }.map(|b| b.unbind())
    }

    /// Called by pyo3 when `__getattribute__` raised AttributeError: cffi's message.
    fn __getattr__(slf: &Bound<'_, Self>, name: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        if let Some((rec, _)) = me.record_target(py) {
            if rec.field_table(py).is_none() {
                return Err(PyAttributeError::new_err(format!(
                    "cdata '{}' points to an opaque type: cannot read fields",
                    me.ty().cname()
                )));
            }
            return Err(me.no_field(name));
        }
        Err(PyAttributeError::new_err(format!("cdata '{}' has no attribute '{}'", me.ty().cname(), name)))
    }

    fn __setattr__(slf: &Bound<'_, Self>, name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        if let Some((rec, through_ptr)) = me.record_target(py) {
            if let Some(f) = me.lookup_field(py, rec, name)? {
                return CData::write_field(slf, through_ptr, f.get(), value);
            }
            return Err(me.no_field(name));
        }
        Err(PyAttributeError::new_err(format!("cdata '{}' has no attribute '{}'", me.ty().cname(), name)))
    }

    fn __delattr__(&self, name: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(PyAttributeError::new_err(format!("cannot delete attribute '{}' of cdata '{}'", name, self.ty().cname())))
    }

    fn __getitem__(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        unsafe {
            if ffi::PyLong_Check(key.as_ptr()) != 0 {
                let i = ffi::PyLong_AsSsize_t(key.as_ptr());
                if i == -1 {
                    if let Some(e) = PyErr::take(slf.py()) {
                        return Err(PyIndexError::new_err(e.value(slf.py()).to_string()));
                    }
                }
                return CData::read_item(slf, i);
            }
        }
        if let Ok(s) = key.cast::<PySlice>() {
            return CData::get_slice(slf, s);
        }
        let i: isize = key.extract()?;
        CData::read_item(slf, i)
    }

    fn __setitem__(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        if let Ok(s) = key.cast::<PySlice>() {
            return CData::set_slice(slf, s, value);
        }
        let i: isize = key.extract()?;
        let me = slf.get();
        let (addr, ict) = me.item_addr(py, i)?;
        let ic = ict.get();
        let isz = ic.ty.size().unwrap_or(0);
        unsafe { write_sized(&ic.ty, value, addr as *mut u8, isz) }
    }

    fn __delitem__(&self, _key: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(PyTypeError::new_err("cdata items cannot be deleted"))
    }

    fn __len__(&self) -> PyResult<usize> {
        match self.ty().kind {
            Kind::Array(..) => Ok(self.length),
            _ => Err(PyTypeError::new_err(format!("cdata of type '{}' has no len()", self.ty().cname()))),
        }
    }

    fn __iter__(slf: &Bound<'_, Self>) -> PyResult<Py<CDataIter>> {
        let me = slf.get();
        match me.ty().kind {
            Kind::Array(..) => Py::new(slf.py(), CDataIter { arr: slf.clone().unbind(), idx: GilCell::new(0) }),
            _ => Err(PyTypeError::new_err(format!("cdata '{}' does not support iteration", me.ty().cname()))),
        }
    }

    fn __bool__(&self) -> bool {
        if let Some(v) = self.int_value() {
            return v != 0;
        }
        if let Some(f) = self.float_value() {
            return f != 0.0;
        }
        match &self.ty().kind {
            Kind::Prim(pi) if pi.class == PrimClass::Complex => self.value != [0, 0],
            Kind::Pointer(_) | Kind::FuncPtr(_) => self.addr != 0,
            _ => true,
        }
    }

    fn __int__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(v) = self.int_value() {
            return Ok(v.into_pyobject(py)?.into_any().unbind());
        }
        if let Some(f) = self.float_value() {
            return unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromDouble(f)).map(Bound::unbind) };
        }
        Err(PyTypeError::new_err(format!("int() not supported on cdata '{}'", self.ty().cname())))
    }

    fn __float__(&self) -> PyResult<f64> {
        if let Some(f) = self.float_value() {
            return Ok(f);
        }
        Err(PyTypeError::new_err(format!("float() not supported on cdata '{}'", self.ty().cname())))
    }

    fn __complex__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Kind::Prim(pi) = &self.ty().kind {
            if pi.class == PrimClass::Complex {
                return Ok(self.as_number(py)?.unwrap_or_else(|| py.None()));
            }
        }
        if let Some(f) = self.float_value() {
            return convert::complex_to_py(py, f, 0.0);
        }
        Err(PyTypeError::new_err(format!("complex() not supported on cdata '{}'", self.ty().cname())))
    }

    fn __richcmp__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        if me.is_primitive() {
            let is_ld = |c: &CData| matches!(&c.ty().kind, Kind::Prim(pi) if pi.class == PrimClass::LongDouble);
            if is_ld(me) || other.cast::<CData>().map(|o| is_ld(o.get())).unwrap_or(false) {
                return Err(pyo3::exceptions::PyNotImplementedError::new_err("cannot use <cdata 'long double'> in a comparison"));
            }
            let Some(a) = me.as_number(py)? else { return Ok(py.NotImplemented()) };
            let b = match other.cast::<CData>() {
                Ok(o) => {
                    let o = o.get();
                    if !o.is_primitive() {
                        return Ok(py.NotImplemented());
                    }
                    match o.as_number(py)? {
                        Some(b) => b.into_bound(py),
                        None => return Ok(py.NotImplemented()),
                    }
                }
                Err(_) => other.clone(),
            };
            return Ok(a.bind(py).rich_compare(b, op)?.unbind());
        }
        let Ok(o) = other.cast::<CData>() else { return Ok(py.NotImplemented()) };
        let o = o.get();
        if o.is_primitive() {
            return Ok(py.NotImplemented());
        }
        let (a, b) = (me.addr, o.addr);
        let r = match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            CompareOp::Lt => a < b,
            CompareOp::Le => a <= b,
            CompareOp::Gt => a > b,
            CompareOp::Ge => a >= b,
        };
        Ok(convert::bool_to_py(py, r))
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        if self.is_primitive() {
            if let Some(n) = self.as_number(py)? {
                return n.bind(py).hash();
            }
        }
        self.addr.into_pyobject(py)?.hash()
    }

    fn __add__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if unsafe { ffi::PyLong_Check(other.as_ptr()) } == 0 {
            return Ok(slf.py().NotImplemented());
        }
        if slf.get().is_primitive() {
            return Err(PyTypeError::new_err(format!("cannot add a cdata '{}' and a number", slf.get().ty().cname())));
        }
        CData::ptr_add(slf, other.extract()?)
    }

    fn __radd__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        CData::__add__(slf, other)
    }

    fn __sub__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        if me.is_primitive() {
            return Ok(py.NotImplemented());
        }
        if unsafe { ffi::PyLong_Check(other.as_ptr()) } != 0 {
            let n: isize = other.extract()?;
            return CData::ptr_add(slf, n.checked_neg().ok_or_else(|| pyo3::exceptions::PyOverflowError::new_err("offset too large"))?);
        }
        let Ok(o) = other.cast::<CData>() else { return Ok(py.NotImplemented()) };
        let o = o.get();
        let item_of = |t: &TypeRef| match &t.kind {
            Kind::Pointer(i) | Kind::Array(i, _) => Some(i.clone()),
            _ => None,
        };
        match (item_of(me.ty()), item_of(o.ty())) {
            (Some(a), Some(b)) if convert::same_type(&a, &b) => {
                let isz = a.size().unwrap_or(1).max(1) as isize;
                let d = (me.addr as isize).wrapping_sub(o.addr as isize) / isz;
                Ok(d.into_pyobject(py)?.into_any().unbind())
            }
            _ => Err(PyTypeError::new_err(format!(
                "cannot subtract cdata '{}' and cdata '{}'",
                me.ty().cname(),
                o.ty().cname()
            ))),
        }
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(slf: &Bound<'_, Self>, args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Py<PyAny>> {
        let me = slf.get();
        if !matches!(me.ty().kind, Kind::FuncPtr(_)) {
            return Err(PyTypeError::new_err(format!("cdata '{}' is not callable", me.ty().cname())));
        }
        if invalid_addr(me.addr) {
            return Err(PyRuntimeError::new_err(format!(
                "cannot call NULL or invalid function pointer <cdata '{}' 0x{:x}>",
                me.ty().cname(),
                me.addr
            )));
        }
        match CALL_HOOK.get() {
            Some(h) => h(slf, args, kwargs),
            None => Err(pyo3::exceptions::PyNotImplementedError::new_err("calling C functions is not available in this build")),
        }
    }

    fn __dir__(&self, py: Python<'_>) -> Vec<String> {
        match self.record_target(py) {
            Some((rec, _)) => match rec.field_table(py) {
                Some(t) => t.list.iter().map(|f| f.get().name.clone()).collect(),
                None => vec![],
            },
            None => vec![],
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.release_now(py)?;
        Ok(false)
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err(format!("cannot pickle cdata '{}'", self.ty().cname())))
    }
}

/// Interns a Python str (used for field names so lookups hit the cached hash).
pub fn intern<'py>(py: Python<'py>, s: &str) -> Bound<'py, PyString> {
    PyString::intern(py, s)
}

// ---------------------------------------------------------------------------------------
// Fast slots: attribute and item access go straight from the CPython slot to the field
// table / item address, without pyo3's generic method trampoline. Anything not handled
// here (methods, slices, deletion, errors' slow paths) falls back to the pyo3-generated
// slot saved at install time.

struct OrigSlots {
    getattro: Option<ffi::getattrofunc>,
    setattro: Option<ffi::setattrofunc>,
    subscript: Option<ffi::binaryfunc>,
    ass_subscript: Option<ffi::objobjargproc>,
}

static ORIG: OnceLock<OrigSlots> = OnceLock::new();

#[inline(always)]
fn finish<T>(py: Python<'_>, r: std::thread::Result<PyResult<T>>, err: T) -> T {
    super::errors::finish_slot(py, r, err, "jitffi cdata access")
}

unsafe extern "C" fn fast_getattro(slf: *mut ffi::PyObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let py = Python::assume_attached();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> PyResult<*mut ffi::PyObject> {
        let b = Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<CData>();
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
    }));
    finish(py, r, std::ptr::null_mut())
}

unsafe extern "C" fn fast_setattro(slf: *mut ffi::PyObject, name: *mut ffi::PyObject, value: *mut ffi::PyObject) -> std::os::raw::c_int {
    let py = Python::assume_attached();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> PyResult<std::os::raw::c_int> {
        if !value.is_null() {
            let b = Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<CData>();
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
    }));
    finish(py, r, -1)
}

unsafe extern "C" fn fast_subscript(slf: *mut ffi::PyObject, key: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let py = Python::assume_attached();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> PyResult<*mut ffi::PyObject> {
        if ffi::PyLong_CheckExact(key) != 0 {
            let i = ffi::PyLong_AsSsize_t(key);
            if !(i == -1 && !ffi::PyErr_Occurred().is_null()) {
                let b = Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<CData>();
                return CData::read_item(&b, i).map(|v| v.into_ptr());
            }
            ffi::PyErr_Clear();
        }
        match ORIG.get().and_then(|o| o.subscript) {
            Some(s) => Ok(s(slf, key)),
            None => Err(PyTypeError::new_err("cdata cannot be indexed")),
        }
    }));
    finish(py, r, std::ptr::null_mut())
}

unsafe extern "C" fn fast_ass_subscript(slf: *mut ffi::PyObject, key: *mut ffi::PyObject, value: *mut ffi::PyObject) -> std::os::raw::c_int {
    let py = Python::assume_attached();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> PyResult<std::os::raw::c_int> {
        if !value.is_null() && ffi::PyLong_CheckExact(key) != 0 {
            let i = ffi::PyLong_AsSsize_t(key);
            if !(i == -1 && !ffi::PyErr_Occurred().is_null()) {
                let b = Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<CData>();
                let me = b.get();
                let v = Bound::from_borrowed_ptr(py, value);
                if let Some((addr, ty, pi)) = me.prim_item_addr(py, i)? {
                    convert::write_prim(&v, ty, pi, addr as *mut u8)?;
                    return Ok(0);
                }
                let (addr, ict) = me.item_addr(py, i)?;
                let ic = ict.get();
                if let Kind::Prim(pi) = &ic.ty.kind {
                    convert::write_prim(&v, &ic.ty, pi, addr as *mut u8)?;
                } else {
                    write_sized(&ic.ty, &v, addr as *mut u8, ic.ty.size().unwrap_or(0))?;
                }
                return Ok(0);
            }
            ffi::PyErr_Clear();
        }
        match ORIG.get().and_then(|o| o.ass_subscript) {
            Some(s) => Ok(s(slf, key, value)),
            None => Err(PyTypeError::new_err("cdata items cannot be assigned")),
        }
    }));
    finish(py, r, -1)
}

/// Installs the fast attribute/item slots on the CData type (once, at module init).
pub fn install_fast_slots(py: Python<'_>) {
    let tp = py.get_type::<CData>();
    let tp = tp.as_type_ptr();
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
        install_raw(py, tp);
        ffi::PyType_Modified(tp);
    }
}

// ---------------------------------------------------------------------------------------
// Raw object allocation and deallocation. pyo3's generic initializer and tp_dealloc, and
// the GC header/tracking every pyclass gets, cost more than the rest of a small `ffi.new`
// or `ffi.cast`. CData defines no `__traverse__`, so the collector never saw through a
// cdata anyway: the type is made a plain (non-GC) type at module init, before any instance
// exists, and objects are built and torn down here. The offset of the Rust value inside
// the object is measured on one object pyo3 builds (pyo3 does not publish it), so no
// layout is assumed; the only other slot pyo3 keeps in the object is the weakref list.

struct RawLayout {
    tp: *mut ffi::PyTypeObject,
    /// Offset of the `CData` value in the object.
    value_off: usize,
    /// Offset of the weakref list pointer (0: none).
    weak_off: usize,
    /// Size of the fixed part, rounded up to 16: where inline owned bytes start.
    inline_off: usize,
}
// SAFETY: the type pointer is kept alive by the module for the process and only used with
// the GIL held.
unsafe impl Send for RawLayout {}
unsafe impl Sync for RawLayout {}

static RAW: OnceLock<RawLayout> = OnceLock::new();
/// Set once a cdata was built by pyo3 before `install_raw` (then the raw mode stays off).
static PYO3_BUILT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Objects with inline owned bytes (`Owner::Inline`) stay within pymalloc's small-block
/// limit; beyond it, two pymalloc blocks beat one block from the system allocator, and big
/// blocks are given back at `ffi.release`.
const INLINE_MAX: usize = 512;

/// Creates a cdata object holding `cd`.
#[inline]
fn alloc_cdata(py: Python<'_>, cd: CData) -> PyResult<Py<CData>> {
    match RAW.get() {
        Some(l) => unsafe { alloc_inline(py, l, 0, |_| cd) },
        None => {
            PYO3_BUILT.store(true, std::sync::atomic::Ordering::Relaxed);
            Py::new(py, cd)
        }
    }
}

/// Allocates an object with `extra` zeroed bytes after its fixed part and moves into it
/// the value `make(address of those bytes)` returns.
///
/// # Safety
/// `l` is the layout of the (non-GC) CData type; the GIL is held.
#[inline(always)]
unsafe fn alloc_inline(py: Python<'_>, l: &RawLayout, extra: usize, make: impl FnOnce(usize) -> CData) -> PyResult<Py<CData>> {
    // Small blocks are zeroed with two stores rather than a memset call.
    let small = extra > 0 && extra <= 16;
    let obj = ffi::PyObject_Malloc(l.inline_off + if small { 16 } else { extra }) as *mut u8;
    if obj.is_null() {
        return Err(pyo3::exceptions::PyMemoryError::new_err(format!("cannot allocate {extra} bytes")));
    }
    if l.weak_off != 0 {
        *(obj.add(l.weak_off) as *mut *mut ffi::PyObject) = std::ptr::null_mut();
    }
    let data = obj.add(l.inline_off);
    if small {
        // inline_off is a multiple of 16 and PyObject_Malloc aligns to 16
        *(data as *mut [u64; 2]) = [0; 2];
    } else if extra > 0 {
        std::ptr::write_bytes(data, 0, extra);
    }
    let cd = make(data as usize);
    ffi::PyObject_Init(obj as *mut ffi::PyObject, l.tp);
    std::ptr::write(obj.add(l.value_off) as *mut CData, cd);
    Ok(Bound::from_owned_ptr(py, obj as *mut ffi::PyObject).cast_into_unchecked::<CData>().unbind())
}

/// tp_dealloc of CData in raw mode. Plain-memory owners (none, inline, PyMem block, view
/// of another cdata) are torn down without running Python code; the others (allocator free
/// functions, gc destructors, buffers, handles, callbacks) run `Drop` in pyo3's attached
/// state (their `Py` fields need it), with panics caught.
unsafe extern "C" fn cdata_dealloc(obj: *mut ffi::PyObject) {
    let Some(l) = RAW.get() else { return };
    let base = obj as *mut u8;
    let cd = base.add(l.value_off) as *mut CData;
    if l.weak_off != 0 && !(*(base.add(l.weak_off) as *mut *mut ffi::PyObject)).is_null() {
        ffi::PyObject_ClearWeakRefs(obj);
    }
    let (free_addr, keeper) = {
        let st = (*cd).state.get_mut();
        match &st.owner {
            Owner::None | Owner::Inline | Owner::Released => (0, std::ptr::null_mut()),
            Owner::Malloc => ((*cd).addr, std::ptr::null_mut()),
            Owner::View(k) => (0, k.as_ptr()),
            _ => (usize::MAX, std::ptr::null_mut()),
        }
    };
    let tp = ffi::Py_TYPE(obj);
    if free_addr == usize::MAX {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Python::attach(|_| std::ptr::drop_in_place(cd))));
        if r.is_err() {
            let py = Python::assume_attached();
            PyRuntimeError::new_err("internal error (Rust panic) releasing a cdata").write_unraisable(py, None);
        }
    } else {
        if free_addr != 0 {
            ffi::PyMem_Free(free_addr as *mut std::ffi::c_void);
        }
        // What is left of the value is plain data except these references, released by
        // hand below (dropping `Py` values needs pyo3's attached state, which raw slots
        // lack).
        let ctype = (*cd).ctype.as_ptr();
        ffi::PyObject_Free(obj as *mut std::ffi::c_void);
        ffi::Py_DECREF(tp as *mut ffi::PyObject);
        ffi::Py_DECREF(ctype);
        if !keeper.is_null() {
            ffi::Py_DECREF(keeper);
        }
        return;
    }
    ffi::PyObject_Free(obj as *mut std::ffi::c_void);
    ffi::Py_DECREF(tp as *mut ffi::PyObject);
}

/// Switches the CData type to raw mode (once, at module init, before any cdata exists):
/// measures the value offset on one pyo3-built object, then makes the type non-GC with
/// the raw dealloc.
fn install_raw(py: Python<'_>, tp: *mut ffi::PyTypeObject) {
    if RAW.get().is_some() || PYO3_BUILT.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let b = super::state::builtin(py);
    let t = b.void_ptr_type();
    let Ok(probe) = Py::new(py, CData::build(b.ctype_of(py, &t), 0, 0, 0, 0, [0; 2], Owner::None)) else { return };
    unsafe {
        let o = probe.as_ptr();
        let value_off = (probe.get() as *const CData as usize).wrapping_sub(o as usize);
        let probe_tp = ffi::Py_TYPE(o);
        drop(probe); // pyo3's dealloc, still installed
        let basic = (*tp).tp_basicsize as usize;
        if probe_tp != tp || (*tp).tp_itemsize != 0 || value_off + std::mem::size_of::<CData>() > basic {
            return;
        }
        let weak_off = (*tp).tp_weaklistoffset;
        if weak_off < 0 || weak_off as usize + 8 > basic {
            return;
        }
        if RAW.set(RawLayout { tp, value_off, weak_off: weak_off as usize, inline_off: (basic + 15) & !15 }).is_err() {
            return;
        }
        (*tp).tp_flags &= !ffi::Py_TPFLAGS_HAVE_GC;
        (*tp).tp_traverse = None;
        (*tp).tp_clear = None;
        (*tp).tp_alloc = Some(ffi::PyType_GenericAlloc);
        (*tp).tp_free = Some(ffi::PyObject_Free);
        (*tp).tp_dealloc = Some(cdata_dealloc);
    }
}

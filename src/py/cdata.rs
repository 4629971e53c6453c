//! `CData`: a C value or a view of C memory, with cffi's semantics. This file is the object
//! itself: its fields, what it owns, and releasing that. Around it, each in its own file:
//! - `cdata_alloc.rs`: constructors and the raw allocation/deallocation of the objects;
//! - `cdata_access.rs`: item, field and slice access, pointer arithmetic (through
//!   `convert`);
//! - `cdata_protocol.rs`: the Python methods (`__getitem__`, `__repr__`, ...) and the
//!   array iterator;
//! - `cdata_slots.rs`: the raw attribute/item slots that bypass pyo3's method trampolines.
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
//! The type is not GC-tracked and its objects are allocated/freed by hand (`cdata_alloc.rs`);
//! small `ffi.new` blocks live inside the object (`Owner::Inline`).

use std::sync::OnceLock;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::ctype::CType;
use super::gil::GilCell;
use super::handles;
use super::longdouble;
use super::mem::{load_f64, load_i64, load_u64};
use crate::types::model::{Kind, PrimClass, TypeRef};

/// The owning cdata a view keeps alive.
pub type Keeper = Py<CData>;

/// What a cdata owns, and what releasing it does. Kept to 32 bytes (boxed strings) so a
/// cdata object stays small enough for `new("int[]", 100)` to fit one pymalloc block.
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
    Allocator {
        free: Option<Py<PyAny>>,
        alloc_result: Py<PyAny>,
    },
    /// `ffi.gc(orig, destructor)`: calls `destructor(orig)` once.
    Gc {
        orig: Py<PyAny>,
        destructor: Option<Py<PyAny>>,
    },
    /// `ffi.from_buffer`: the locked buffer of a Python object.
    Buffer {
        view: BufferView,
        type_name: Box<str>,
    },
    /// `ffi.new_handle(obj)`: `addr` is a token of the handle registry mapping back to obj.
    Handle,
    /// Released (`ffi.release`, `with`): what it owned is gone; any access raises.
    Released,
    /// Owners defined elsewhere (callbacks): dropped on release; `repr` text for cffi's
    /// "<cdata 'T' calling ...>" style.
    Custom {
        payload: Box<dyn std::any::Any + Send + Sync>,
        repr: Box<String>,
    },
}

/// A locked `Py_buffer` (released with the GIL held, by `release_now`).
pub struct BufferView(pub Box<ffi::Py_buffer>);
// SAFETY: the view is only read or released with the GIL held (it sits in a cdata's
// GIL-guarded state), so it never is used from two threads at once.
unsafe impl Send for BufferView {}
// SAFETY: as for `Send`: shared access also happens only under the GIL.
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
    value: [u64; 2],
    pub state: GilCell<CState>,
}

/// Calls function-pointer cdata; installed by the calls module (`set_call_hook`).
pub type CallHook = for<'py> fn(
    &Bound<'py, CData>,
    &Bound<'py, PyTuple>,
    Option<&Bound<'py, PyDict>>,
) -> PyResult<Py<PyAny>>;
static CALL_HOOK: OnceLock<CallHook> = OnceLock::new();

/// Lets the calls module make function-pointer cdata callable.
pub fn set_call_hook(h: CallHook) {
    let _ = CALL_HOOK.set(h);
}

/// The C address and function type of a function taken from a lib, which is a builtin
/// function object rather than a cdata; installed by the calls module
/// (`set_lib_function_hook`), so that conversions and comparisons treat it as the
/// function-pointer cdata cffi's `lib.f` is.
pub type LibFunctionHook = fn(&Bound<'_, PyAny>) -> Option<(usize, TypeRef)>;
static LIB_FUNCTION_HOOK: OnceLock<LibFunctionHook> = OnceLock::new();

/// Lets the calls module say which objects are functions taken from a lib.
pub fn set_lib_function_hook(h: LibFunctionHook) {
    let _ = LIB_FUNCTION_HOOK.set(h);
}

/// Address and type of `obj` if it is a function taken from a lib.
pub fn lib_function_address(obj: &Bound<'_, PyAny>) -> Option<(usize, TypeRef)> {
    LIB_FUNCTION_HOOK.get().and_then(|h| h(obj))
}

/// The hook `set_call_hook` installed.
pub fn call_hook() -> Option<CallHook> {
    CALL_HOOK.get().copied()
}

/// The Python object a `Custom` owner calls (callbacks), for a lazily built
/// "<cdata 'T' calling obj>" (computing the repr at creation would cost more than the
/// creation itself); installed by the callbacks module.
pub type CustomTargetHook = fn(Python<'_>, &(dyn std::any::Any + Send + Sync)) -> Option<Py<PyAny>>;
static CUSTOM_TARGET_HOOK: OnceLock<CustomTargetHook> = OnceLock::new();

pub fn set_custom_target_hook(h: CustomTargetHook) {
    let _ = CUSTOM_TARGET_HOOK.set(h);
}

/// The hook `set_custom_target_hook` installed.
pub fn custom_target_hook() -> Option<CustomTargetHook> {
    CUSTOM_TARGET_HOOK.get().copied()
}

fn released_err(cname: &str) -> PyErr {
    PyValueError::new_err(format!(
        "cdata '{cname}' has been released (ffi.release() or 'with')"
    ))
}

pub fn null_err(cname: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "cannot dereference a NULL or invalid pointer (cdata '{cname}')"
    ))
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
    /// The `F_*` flags given at construction.
    #[inline]
    pub fn flags(&self) -> u32 {
        self.state.tag()
    }

    /// The value of a new cdata (the constructors in `cdata_alloc.rs` put it in an object).
    #[inline(always)]
    pub(super) fn build(
        ctype: Py<CType>,
        addr: usize,
        length: usize,
        alloc_size: usize,
        flags: u32,
        value: [u64; 2],
        owner: Owner,
    ) -> CData {
        CData {
            ctype,
            addr,
            length,
            alloc_size,
            value,
            // The `F_*` flags ride in the cell's tag word (see `GilCell::tag`).
            state: GilCell::with_tag(CState { owner }, flags),
        }
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

    /// The address of the 16 value bytes of a primitive cdata.
    #[inline]
    pub fn value_ptr(&self) -> *const u8 {
        self.value.as_ptr() as *const u8
    }

    /// The value bytes are all zero.
    #[inline]
    pub fn value_is_zero(&self) -> bool {
        self.value == [0, 0]
    }

    pub fn is_released(&self, py: Python<'_>) -> bool {
        self.state.borrow(py).released()
    }

    /// Raises if this cdata (or the owner of the memory it views) was released.
    #[inline]
    pub fn check_alive(&self, py: Python<'_>) -> PyResult<()> {
        let st = self.state.borrow(py);
        if st.released() {
            return Err(released_err(&self.ty().cname()));
        }
        if let Owner::View(k) = &st.owner {
            if k.get().state.borrow(py).released() {
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
            self.state.borrow(py).owner,
            Owner::Malloc
                | Owner::Inline
                | Owner::Allocator { .. }
                | Owner::Gc { .. }
                | Owner::Buffer { .. }
                | Owner::Custom { .. }
        )
    }

    /// Made by `ffi.new` (or an allocator's `alloc`): a pointer one points to exactly the
    /// one item allocated.
    pub fn from_new(&self, py: Python<'_>) -> bool {
        matches!(
            self.state.borrow(py).owner,
            Owner::Malloc | Owner::Inline | Owner::Allocator { .. }
        )
    }

    /// Made by `ffi.new_handle`.
    pub fn is_handle(&self, py: Python<'_>) -> bool {
        matches!(self.state.borrow(py).owner, Owner::Handle)
    }

    /// The owning cdata this one is a view of, if any.
    pub fn viewed_owner(&self, py: Python<'_>) -> Option<Keeper> {
        match &self.state.borrow(py).owner {
            Owner::View(k) => Some(k.clone_ref(py)),
            _ => None,
        }
    }

    /// What a view derived from `slf` should keep alive.
    #[inline]
    pub fn keeper_for(slf: &Bound<'_, CData>) -> Option<Keeper> {
        let me = slf.get();
        match &me.state.borrow(slf.py()).owner {
            Owner::None | Owner::Handle => None,
            Owner::View(k) => Some(k.clone_ref(slf.py())),
            _ => Some(slf.clone().unbind()),
        }
    }

    /// Bytes a var-sized struct object spans (from `new` with a flexible array member).
    pub fn var_size(&self, py: Python<'_>) -> usize {
        if self.alloc_size > 0 {
            return self.alloc_size;
        }
        if let Owner::View(k) = &self.state.borrow(py).owner {
            return k.get().alloc_size;
        }
        0
    }

    /// The integer value of an integer-like primitive cdata (ints, chars, bools, enums).
    pub fn int_value(&self) -> Option<i128> {
        let p = self.value_ptr();
        // SAFETY: `p` points to the 16 value bytes, and primitive sizes are at most 16.
        unsafe {
            match &self.ty().kind {
                Kind::Prim(pi) => match pi.class {
                    PrimClass::SignedInt => Some(load_i64(p, pi.size) as i128),
                    PrimClass::UnsignedInt | PrimClass::Bool => Some(load_u64(p, pi.size) as i128),
                    // as cffi: wchar_t by its C signedness (signed on x86_64), char16_t and
                    // char32_t unsigned; a char is its byte's value whatever C's `char` is
                    PrimClass::WideChar if pi.signed => Some(load_i64(p, pi.size) as i128),
                    PrimClass::WideChar => Some(load_u64(p, pi.size) as i128),
                    PrimClass::Char => Some(*p as i128),
                    _ => None,
                },
                Kind::Enum(e) => {
                    let pi = e.underlying_info();
                    Some(if pi.signed {
                        load_i64(p, pi.size) as i128
                    } else {
                        load_u64(p, pi.size) as i128
                    })
                }
                _ => None,
            }
        }
    }

    /// The float value of a float/double/long double primitive cdata.
    pub fn float_value(&self) -> Option<f64> {
        match &self.ty().kind {
            Kind::Prim(pi) => match pi.class {
                // SAFETY: the 16 value bytes hold a float or double.
                PrimClass::Float => Some(unsafe { load_f64(self.value_ptr(), pi.size) }),
                PrimClass::LongDouble => Some(longdouble::to_f64(
                    &self.ctype.get().ffi.target,
                    self.value_bytes(),
                )),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn is_primitive(&self) -> bool {
        matches!(self.ty().kind, Kind::Prim(_) | Kind::Enum(_))
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

    /// Releases what this cdata owns, once. `ffi.release`, `with`, and dealloc.
    pub fn release_now(&self, py: Python<'_>) -> PyResult<()> {
        let owner = {
            let mut st = self.state.try_borrow_mut(py)?;
            match st.owner {
                Owner::None | Owner::View(_) | Owner::Released => return Ok(()),
                _ => {}
            }
            std::mem::replace(&mut st.owner, Owner::Released)
        };
        // What it owned is out of the cell: running Python code (free functions,
        // destructors) cannot find the state borrowed.
        match owner {
            // SAFETY: `addr` came from `calloc` and is freed once (the owner is now
            // `Released`); the GIL is held.
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
            // SAFETY: the view was filled by `PyObject_GetBuffer` and is released once.
            Owner::Buffer { mut view, .. } => unsafe { ffi::PyBuffer_Release(&mut *view.0) },
            Owner::Handle => drop(handles::unregister(py, self.addr)),
            Owner::Custom { payload, .. } => drop(payload),
            Owner::None | Owner::View(_) | Owner::Released => {}
        }
        Ok(())
    }

    /// `ffi.gc(p, None)`: drop the destructor without calling it (false: not from `ffi.gc`).
    pub fn detach_destructor(&self, py: Python<'_>) -> PyResult<bool> {
        let old = {
            let mut st = self.state.try_borrow_mut(py)?;
            match &mut st.owner {
                Owner::Gc { destructor, .. } => Some(destructor.take()),
                _ => None,
            }
        };
        Ok(old.is_some()) // the destructor is dropped here, after the borrow
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
            // SAFETY: dealloc runs with the GIL held, as PyMem_Free requires; `addr` came
            // from `calloc` and is freed once (the owner is now `Released`).
            unsafe { ffi::PyMem_Free(self.addr as *mut std::ffi::c_void) };
            return;
        }
        // SAFETY: cdata values are dropped from tp_dealloc, with the GIL held.
        let py = unsafe { Python::assume_attached() };
        if let Err(e) = self.release_now(py) {
            e.write_unraisable(py, None);
        }
    }
}

/// Allocates `size` zeroed bytes (at least 1 so each object is unique) with CPython's
/// allocator: pymalloc serves small blocks much faster than libc. Needs the GIL (every
/// caller has it: `py`-taking constructors) and is freed by `Owner::Malloc`'s release.
/// `size` bytes left as the allocator gives them (`new_allocator(should_clear_after_alloc=
/// False)`); freed like `calloc`'s.
pub fn malloc_uncleared(size: usize) -> PyResult<*mut u8> {
    // SAFETY: callers hold the GIL, as `PyMem_Malloc` requires.
    let p = unsafe { ffi::PyMem_Malloc(size.max(1)) } as *mut u8;
    if p.is_null() {
        return Err(pyo3::exceptions::PyMemoryError::new_err(format!(
            "cannot allocate {size} bytes"
        )));
    }
    Ok(p)
}

pub fn calloc(size: usize) -> PyResult<*mut u8> {
    // SAFETY: callers hold the GIL (see above), as `PyMem_Calloc` requires.
    let p = unsafe { ffi::PyMem_Calloc(1, size.max(1)) } as *mut u8;
    if p.is_null() {
        return Err(pyo3::exceptions::PyMemoryError::new_err(format!(
            "cannot allocate {size} bytes"
        )));
    }
    Ok(p)
}

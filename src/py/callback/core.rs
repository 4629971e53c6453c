//! A callback's state: what it calls (`Binding`, replaceable for `extern "Python"`), the
//! conversion plan shared by every callback of one function-pointer type (`Shape`), and
//! its entry slot; plus building them.

use std::cell::{Cell, UnsafeCell};
#[cfg(test)]
use std::panic::AssertUnwindSafe;
use std::collections::HashMap;
use std::ptr;
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::exceptions::{PyMemoryError, PyNotImplementedError, PyTypeError};
use pyo3::prelude::*;

use crate::abi;
use crate::jit::callback_thunk::{self, Thunk};
use crate::jit::entry_pool::{self, EntrySlot};
use crate::jit::error::CompileError;
use crate::types::model::{FuncSig, Kind, PrimClass, PrimInfo, TypeNode, TypeRef};
use crate::types::target::Target;

use super::super::convert;
use super::super::function::shape::{lowering_error, LoweringError};
use super::super::state::FfiRef;

/// What a callback calls; replaceable (under the GIL) for `extern "Python"` functions,
/// whose C address exists before `@ffi.def_extern()` binds them.
pub struct Binding {
    /// `None`: an `extern "Python"` function not bound yet.
    pub callable: Option<Py<PyAny>>,
    pub onerror: Option<Py<PyAny>>,
    /// What to return when the callable fails: the `error` argument as C bytes.
    pub error_result: Box<[u8]>,
    /// C calls currently inside this callback (nested or from several threads).
    pub(super) in_flight: u32,
    /// Its cdata was freed during a call: the last call to return frees the core.
    pub(super) orphaned: bool,
}

/// The `Binding` of a callback, reached only with the GIL held and only inside a closure
/// ([`BindingCell::with`]); a flag refuses a second borrow while one is active (a
/// closure that ran Python code re-entering the same callback), so no two `&mut`
/// ever alias. Closures keep to reading or swapping fields: anything that may run
/// Python code (calls, dropping references) happens after they return.
pub(super) struct BindingCell {
    borrowed: Cell<bool>,
    data: UnsafeCell<Binding>,
}

// SAFETY: every access takes `Python<'_>` (the GIL is held), which serializes the
// threads touching the cell (the GIL's hand-over orders their memory accesses), and the
// borrow flag rules out overlapping borrows on one thread.
unsafe impl Sync for BindingCell {}
// SAFETY: the Python references inside are released with the GIL held (the owner is a
// cdata, freed with the GIL held).
unsafe impl Send for BindingCell {}

impl BindingCell {
    pub(super) fn new(b: Binding) -> BindingCell {
        BindingCell { borrowed: Cell::new(false), data: UnsafeCell::new(b) }
    }

    /// Runs `f` on the binding. Panics on a re-entrant borrow (a bug: callers never run
    /// Python code inside `f`).
    #[inline]
    pub(super) fn with<R>(&self, _py: Python<'_>, f: impl FnOnce(&mut Binding) -> R) -> R {
        struct Release<'a>(&'a Cell<bool>);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        assert!(!self.borrowed.replace(true), "re-entrant access to a callback binding");
        let _release = Release(&self.borrowed);
        // SAFETY: the flag was clear, so this is the only borrow (see `Sync` above); it
        // ends with `f`.
        f(unsafe { &mut *self.data.get() })
    }
}

/// What a callback cdata owns. Freeing the cdata while C is inside the callback (the
/// callable released or dropped its own callback) must not free the core under the
/// running call: the entry slot is given back at once, the core itself when the last
/// call returns.
pub struct CallbackHandle(pub(super) Option<Box<CallbackCore>>);

impl CallbackHandle {
    pub fn core(&self) -> &CallbackCore {
        self.0.as_deref().expect("core present until drop")
    }
}

impl Drop for CallbackHandle {
    fn drop(&mut self) {
        let Some(mut core) = self.0.take() else { return };
        // SAFETY: cdata (the owners of handles) are freed with the GIL held.
        let py = unsafe { Python::assume_attached() };
        let busy = core.binding.with(py, |b| {
            if b.in_flight > 0 {
                b.orphaned = true;
            }
            b.in_flight > 0
        });
        if busy {
            core.slot.take();
            // The last call to return frees it (`dispatch`).
            let _ = Box::into_raw(core);
        }
    }
}

/// Plain integers and floats skip the type dispatch of the generic conversions (same
/// scalar converters; anything unusual, errors included, takes the generic path).
#[derive(Clone, Copy, Debug)]
pub(super) enum Fast {
    Int(PrimInfo),
    Float(usize),
    Generic,
}

impl Fast {
    fn of(ty: &TypeRef) -> Fast {
        match &ty.kind {
            Kind::Prim(i) if matches!(i.class, PrimClass::SignedInt | PrimClass::UnsignedInt) => Fast::Int(*i),
            Kind::Prim(i) if i.class == PrimClass::Float => Fast::Float(i.size),
            _ => Fast::Generic,
        }
    }
}

/// What every callback of one function-pointer type shares (built once per type).
pub struct Shape {
    /// Offset of each argument in the thunk's args buffer, its C type, its fast path.
    pub(super) args: Vec<(usize, TypeRef, Fast)>,
    /// `None` for `void`.
    pub(super) result: Option<TypeRef>,
    pub(super) result_fast: Fast,
    pub(super) result_size: usize,
    thunk: Arc<Thunk>,
}

/// One live callback. Owned by its cdata; the entry slot points at it.
pub struct CallbackCore {
    pub(super) binding: BindingCell,
    /// The FFI whose types the arguments and result are (for conversions).
    pub(super) ffi: FfiRef,
    pub(super) shape: Arc<Shape>,
    /// Set for `extern "Python"` functions (named in error reports).
    pub(super) extern_name: Option<String>,
    slot: Option<EntrySlot>,
}

impl CallbackCore {
    /// The C function pointer.
    pub fn code_ptr(&self) -> *const u8 {
        self.slot.as_ref().map_or(ptr::null(), |s| s.code_ptr())
    }

    pub fn callable(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.binding.with(py, |b| b.callable.as_ref().map(|c| c.clone_ref(py)))
    }
}

impl Drop for CallbackCore {
    fn drop(&mut self) {
        // Give the C entry point back first, so no new call can reach this core.
        self.slot.take();
    }
}

fn unsupported(fptr: &TypeNode, why: &str) -> PyErr {
    PyNotImplementedError::new_err(format!(
        "{}: callback with unsupported argument or return type or with '...'{}",
        fptr.cname(),
        if why.is_empty() { String::new() } else { format!(" ({why})") }
    ))
}

/// The shape of a function-pointer type: its thunk (compiled once per ABI shape) and
/// conversion plan. Looked up once per type node, so creating a callback of a known type
/// neither lowers nor compiles nor allocates per argument.
pub fn shape_for(fptr: &TypeRef) -> PyResult<Arc<Shape>> {
    type Cache = HashMap<usize, (TypeRef, Arc<Shape>)>;
    static BY_TYPE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let cache = BY_TYPE.get_or_init(Default::default);
    let key = Arc::as_ptr(fptr) as usize;
    if let Some((_, t)) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(t.clone());
    }
    let sig: &FuncSig = match &fptr.kind {
        Kind::FuncPtr(sig) => sig,
        _ => return Err(PyTypeError::new_err(format!("expected a function ctype, got '{}'", fptr.cname()))),
    };
    if sig.variadic {
        return Err(unsupported(fptr, ""));
    }
    let plan = abi::lower(sig, &Target::host()).map_err(|e| match lowering_error(e) {
        LoweringError::Unsupported(m) => unsupported(fptr, &m),
        LoweringError::Invalid(m) => PyTypeError::new_err(m),
    })?;
    let thunk = callback_thunk::thunk_for_plan(&plan, super::dispatch::dispatch).map_err(|e| match e {
        CompileError::Unsupported(m) => unsupported(fptr, &m),
        e => PyTypeError::new_err(e.to_string()),
    })?;
    let args = sig.args.iter().zip(&thunk.arg_offsets).map(|(t, off)| (*off as usize, t.clone(), Fast::of(t))).collect();
    let result = match sig.result.kind {
        Kind::Void => None,
        _ => Some(sig.result.clone()),
    };
    let result_fast = result.as_ref().map_or(Fast::Generic, Fast::of);
    let result_size = thunk.result_size as usize;
    let shape = Arc::new(Shape { args, result, result_fast, result_size, thunk });
    // The cache keeps the node alive, so its address is never reused for another type.
    cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, (fptr.clone(), shape.clone()));
    Ok(shape)
}

pub(super) fn check_onerror(py: Python<'_>, onerror: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    if let Some(o) = onerror {
        if !o.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "expected a callable object for 'onerror', not {}",
                o.get_type().name()?
            )));
        }
    }
    let _ = py;
    Ok(())
}

/// The `error` argument as result bytes (zeros for None).
fn error_bytes(
    py: Python<'_>,
    ffi: &FfiRef,
    result: &Option<TypeRef>,
    size: usize,
    error: Option<&Bound<'_, PyAny>>,
) -> PyResult<Box<[u8]>> {
    let mut bytes = vec![0u8; size].into_boxed_slice();
    if let (Some(err), Some(rt)) = (error, result) {
        if !err.is_none() {
            // SAFETY: the buffer has the result type's size.
            unsafe { convert::write_value(py, ffi, rt, err, bytes.as_mut_ptr())? };
        }
    }
    Ok(bytes)
}

/// Makes a core for `fptr` with `binding` and takes its entry slot.
fn new_core(
    py: Python<'_>,
    ffi: &FfiRef,
    fptr: &TypeRef,
    callable: Option<Py<PyAny>>,
    error: Option<&Bound<'_, PyAny>>,
    onerror: Option<Py<PyAny>>,
    extern_name: Option<String>,
) -> PyResult<Box<CallbackCore>> {
    check_onerror(py, onerror.as_ref().map(|o| o.bind(py)))?;
    let shape = shape_for(fptr)?;
    let error_result = error_bytes(py, ffi, &shape.result, shape.result_size, error)?;
    let binding = BindingCell::new(Binding { callable, onerror, error_result, in_flight: 0, orphaned: false });
    let mut core = Box::new(CallbackCore { binding, ffi: ffi.clone(), shape, extern_name, slot: None });
    let core_ptr = &*core as *const CallbackCore as *const ();
    let slot = entry_pool::alloc(core.shape.thunk.closure_reg, core_ptr, core.shape.thunk.code)
        .map_err(PyMemoryError::new_err)?;
    core.slot = Some(slot);
    Ok(core)
}

/// Rebinds an `extern "Python"` core (`@ffi.def_extern()`).
pub fn bind_extern(
    py: Python<'_>,
    core: &CallbackCore,
    callable: Py<PyAny>,
    error: Option<&Bound<'_, PyAny>>,
    onerror: Option<Py<PyAny>>,
) -> PyResult<()> {
    check_onerror(py, onerror.as_ref().map(|o| o.bind(py)))?;
    let error_result = error_bytes(py, &core.ffi, &core.shape.result, core.shape.result_size, error)?;
    let old = core.binding.with(py, |b| {
        b.error_result = error_result;
        (b.callable.replace(callable), std::mem::replace(&mut b.onerror, onerror))
    });
    // Dropped outside the borrow: a `__del__` may run Python code.
    drop(old);
    Ok(())
}

/// The core of a not yet bound `extern "Python"` function named `name`.
pub fn new_extern_core(py: Python<'_>, ffi: &FfiRef, fptr: &TypeRef, name: &str) -> PyResult<Box<CallbackCore>> {
    new_core(py, ffi, fptr, None, None, None, Some(name.to_string()))
}

/// Builds a callback: validates `callable`/`onerror`, converts `error`, takes an entry
/// slot. Compiles nothing if the shape was seen before.
pub fn new_callback(
    py: Python<'_>,
    ffi: &FfiRef,
    fptr: &TypeRef,
    callable: Py<PyAny>,
    error: Option<&Bound<'_, PyAny>>,
    onerror: Option<Py<PyAny>>,
) -> PyResult<Box<CallbackCore>> {
    if !callable.bind(py).is_callable() {
        return Err(PyTypeError::new_err("the 'python_callable' argument is not callable"));
    }
    new_core(py, ffi, fptr, Some(callable), error, onerror, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_cell_refuses_a_reentrant_borrow() {
        Python::initialize();
        Python::attach(|py| {
            let cell = BindingCell::new(Binding {
                callable: None,
                onerror: None,
                error_result: Box::new([]),
                in_flight: 0,
                orphaned: false,
            });
            cell.with(py, |b| b.in_flight += 1);
            assert_eq!(cell.with(py, |b| b.in_flight), 1);
            let nested = std::panic::catch_unwind(AssertUnwindSafe(|| cell.with(py, |_| cell.with(py, |b| b.in_flight))));
            assert!(nested.is_err(), "a second borrow inside the first must not alias");
            // The flag was reset by the unwinding first borrow.
            assert_eq!(cell.with(py, |b| b.in_flight), 1);
        });
    }
}

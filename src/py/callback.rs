//! `ffi.callback`: C function pointers that call Python.
//!
//! A callback is a `CallbackCore` (boxed, so its address is stable) holding the Python
//! callable and the `error` result bytes, the `Shape` shared by every callback of its
//! function-pointer type (argument offsets and types, thunk), plus an entry slot
//! from `jit::entry_pool` whose stub passes the core's address to the thunk compiled for
//! the signature's shape (`jit::callback_thunk`). The thunk stores the C arguments into a
//! buffer and calls `dispatch`, which takes the GIL (from any thread, including threads
//! Python never saw), converts the arguments like struct fields are read, calls the
//! callable, and writes the result like a field is written. Errors never propagate into
//! C: they are reported through `sys.unraisablehook` exactly as cffi words them, and the
//! `error` value is returned. Dropping the core gives the entry slot back to the pool.
//!
//! `extern "Python"` functions (ABI mode too) are cores whose binding `@ffi.def_extern()`
//! replaces; their cdata live in the FFI object's `__dict__`.

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::exceptions::{PyNotImplementedError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyString, PyTuple};

use super::cdata::{CData, Owner};
use super::convert;
use super::ctype::CType;
use super::errors::FFIError;
use super::ffi::FFI;
use super::state::FfiRef;
use crate::abi;
use crate::jit::callback_thunk::{self, Thunk};
use crate::jit::entry_pool::{self, EntrySlot};
use crate::types::decls::Decl;
use crate::types::model::{FuncSig, Kind, PrimClass, PrimInfo, TypeNode, TypeRef};
use crate::types::target::Target;

extern "C" {
    // CPython 3.8–3.12: reports the current exception through sys.unraisablehook with
    // err_msg "Exception ignored <err_msg>" (what cffi 2.0 uses for callbacks).
    fn _PyErr_WriteUnraisableMsg(err_msg: *const libc::c_char, obj: *mut ffi::PyObject);
}

/// What a callback calls; replaceable (under the GIL) for `extern "Python"` functions,
/// whose C address exists before `@ffi.def_extern()` binds them.
pub struct Binding {
    /// `None`: an `extern "Python"` function not bound yet.
    pub callable: Option<Py<PyAny>>,
    pub onerror: Option<Py<PyAny>>,
    /// What to return when the callable fails: the `error` argument as C bytes.
    pub error_result: Box<[u8]>,
    /// C calls currently inside this callback (nested or from several threads).
    in_flight: u32,
    /// Its cdata was freed during a call: the last call to return frees the core.
    orphaned: bool,
}

/// Only touched with the GIL held (creation, `def_extern`, the dispatcher).
struct BindingCell(UnsafeCell<Binding>);
// SAFETY: every access happens under the GIL (see `get`).
unsafe impl Sync for BindingCell {}
unsafe impl Send for BindingCell {}

impl BindingCell {
    #[allow(clippy::mut_from_ref)]
    fn get(&self, _py: Python<'_>) -> &mut Binding {
        // SAFETY: the GIL serializes accesses; callers keep no borrow across Python code.
        unsafe { &mut *self.0.get() }
    }
}

/// What a callback cdata owns. Freeing the cdata while C is inside the callback (the
/// callable released or dropped its own callback) must not free the core under the
/// running call: the entry slot is given back at once, the core itself when the last
/// call returns.
pub struct CallbackHandle(Option<Box<CallbackCore>>);

impl CallbackHandle {
    pub fn core(&self) -> &CallbackCore {
        self.0.as_deref().expect("core present until drop")
    }
}

impl Drop for CallbackHandle {
    fn drop(&mut self) {
        let Some(mut core) = self.0.take() else { return };
        // Cdata are freed with the GIL held.
        let py = unsafe { Python::assume_attached() };
        let b = core.binding.get(py);
        if b.in_flight > 0 {
            b.orphaned = true;
            core.slot.take();
            let _ = Box::into_raw(core);
        }
    }
}

/// What every callback of one function-pointer type shares (built once per type).
pub struct Shape {
    /// Offset of each argument in the thunk's args buffer, its C type, its fast path.
    args: Vec<(usize, TypeRef, Fast)>,
    /// `None` for `void`.
    result: Option<TypeRef>,
    result_fast: Fast,
    result_size: usize,
    thunk: Arc<Thunk>,
}

/// One live callback. Owned by its cdata; the entry slot points at it.
pub struct CallbackCore {
    binding: BindingCell,
    /// The FFI whose types the arguments and result are (for conversions).
    ffi: FfiRef,
    shape: Arc<Shape>,
    /// Set for `extern "Python"` functions (named in error reports).
    extern_name: Option<String>,
    slot: Option<EntrySlot>,
}

impl CallbackCore {
    /// The C function pointer.
    pub fn code_ptr(&self) -> *const u8 {
        self.slot.as_ref().map_or(ptr::null(), |s| s.code_ptr())
    }

    pub fn callable(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.binding.get(py).callable.as_ref().map(|c| c.clone_ref(py))
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
    let to_err = |e: String| match e.strip_prefix("NotImplementedError: ") {
        Some(m) => unsupported(fptr, m),
        None => PyTypeError::new_err(e),
    };
    let plan = abi::lower(sig, &Target::host()).map_err(|e| to_err(e.to_string()))?;
    let thunk = callback_thunk::thunk_for_plan(&plan, dispatch).map_err(to_err)?;
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

fn check_onerror(py: Python<'_>, onerror: &Option<Py<PyAny>>) -> PyResult<()> {
    if let Some(o) = onerror {
        if !o.bind(py).is_callable() {
            return Err(PyTypeError::new_err(format!(
                "expected a callable object for 'onerror', not {}",
                o.bind(py).get_type().name()?
            )));
        }
    }
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
            unsafe { write_value(py, ffi, rt, bytes.as_mut_ptr(), err)? };
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
    check_onerror(py, &onerror)?;
    let shape = shape_for(fptr)?;
    let error_result = error_bytes(py, ffi, &shape.result, shape.result_size, error)?;
    let binding =
        BindingCell(UnsafeCell::new(Binding { callable, onerror, error_result, in_flight: 0, orphaned: false }));
    let mut core = Box::new(CallbackCore { binding, ffi: ffi.clone(), shape, extern_name, slot: None });
    let core_ptr = &*core as *const CallbackCore as *const ();
    let slot = entry_pool::alloc(core.shape.thunk.closure_reg, core_ptr, core.shape.thunk.code)
        .map_err(pyo3::exceptions::PyMemoryError::new_err)?;
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
    check_onerror(py, &onerror)?;
    let error_result = error_bytes(py, &core.ffi, &core.shape.result, core.shape.result_size, error)?;
    let b = core.binding.get(py);
    let old = (b.callable.replace(callable), std::mem::replace(&mut b.onerror, onerror));
    b.error_result = error_result;
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

/// Entered from every thunk. Must not unwind and must not let a Python error escape.
unsafe extern "C" fn dispatch(closure: *const (), args: *mut u8, result: *mut u8) {
    // Works from threads Python never saw, from threads that released the GIL in a
    // jitffi call, and nested inside another callback.
    // Already holding the GIL (a call that kept it, or a callback nested in Python code
    // on this thread): PyGILState_Check's test without its bookkeeping, which is not
    // needed then. This thread's own thread state being the attached one means this
    // thread holds the GIL; no attached thread state means the GIL was released (and
    // skips the TSS lookup). Subinterpreter thread states never match: Ensure, as before.
    // (Two calls of `dispatch_held`, not an optional guard: measurably faster.)
    let attached = ffi::compat::PyThreadState_GetUnchecked();
    let held = !attached.is_null() && attached == ffi::PyGILState_GetThisThreadState();
    if held {
        dispatch_held(closure, args, result);
    } else {
        let gil = ffi::PyGILState_Ensure();
        dispatch_held(closure, args, result);
        ffi::PyGILState_Release(gil);
    }
}

/// `dispatch` once the GIL is held.
#[inline(never)]
unsafe fn dispatch_held(closure: *const (), args: *mut u8, result: *mut u8) {
    let core = &*(closure as *const CallbackCore);
    let py = Python::assume_attached();
    core.binding.get(py).in_flight += 1;
    let outcome = catch_unwind(AssertUnwindSafe(|| invoke(py, core, args, result)));
    if outcome.is_err() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            let py = Python::assume_attached();
            put_error_result(py, core, result);
            pyo3::exceptions::PySystemError::new_err("Rust panic inside a jitffi callback").restore(py);
            write_unraisable_msg(py, "from cffi callback (Rust panic)");
        }));
    }
    let b = core.binding.get(py);
    b.in_flight -= 1;
    if b.orphaned && b.in_flight == 0 {
        // The cdata went away during the call (see `CallbackHandle`).
        drop(Box::from_raw(closure as *mut CallbackCore));
    }
}

unsafe fn put_error_result(py: Python<'_>, core: &CallbackCore, result: *mut u8) {
    let e = &core.binding.get(py).error_result;
    ptr::copy_nonoverlapping(e.as_ptr(), result, e.len());
}

/// Calls the Python function for one C call; every failure ends in the error result.
unsafe fn invoke(py: Python<'_>, core: &CallbackCore, args: *mut u8, result: *mut u8) {
    // A strong reference for the duration of the call: `def_extern` may rebind meanwhile.
    // (A Bound, not a Py: its drop decrefs at once; pyo3 does not know this thread holds
    // the GIL and would defer a Py's decref to its pool.)
    let callable = match &core.binding.get(py).callable {
        Some(c) => c.bind(py).clone(),
        None => {
            put_error_result(py, core, result);
            let name = core.extern_name.as_deref().unwrap_or("?");
            pyo3::exceptions::PyRuntimeError::new_err(format!(
                "extern \"Python\": function {name}() called, but @ffi.def_extern() was not called"
            ))
            .restore(py);
            write_unraisable_msg(py, &format!("from extern \"Python\" function {name}()"));
            return;
        }
    };
    const INLINE: usize = 8;
    let shape = &*core.shape;
    let n = shape.args.len();
    // Slot 0 is scratch for PY_VECTORCALL_ARGUMENTS_OFFSET.
    let mut inline: [*mut ffi::PyObject; INLINE + 1] = [ptr::null_mut(); INLINE + 1];
    let mut heap: Vec<*mut ffi::PyObject> = Vec::new();
    let argv: &mut [*mut ffi::PyObject] = if n <= INLINE {
        &mut inline[..n + 1]
    } else {
        heap.resize(n + 1, ptr::null_mut());
        &mut heap[..]
    };
    let mut converted = 0;
    let mut failed = false;
    for (i, (off, ty, fast)) in shape.args.iter().enumerate() {
        match read_arg(py, &core.ffi, ty, *fast, args.add(*off)) {
            Ok(obj) => {
                argv[i + 1] = obj.into_ptr();
                converted += 1;
            }
            Err(e) => {
                e.restore(py);
                failed = true;
                break;
            }
        }
    }
    let ret = if failed {
        ptr::null_mut()
    } else {
        ffi::PyObject_Vectorcall(
            callable.as_ptr(),
            argv.as_ptr().add(1),
            n | ffi::PY_VECTORCALL_ARGUMENTS_OFFSET,
            ptr::null_mut(),
        )
    };
    for a in &argv[1..=converted] {
        ffi::Py_DECREF(*a);
    }
    if ret.is_null() {
        fail(py, core, &callable, result, "");
        return;
    }
    let ret = Bound::from_owned_ptr(py, ret);
    let written = match &shape.result {
        Some(rt) => write_result(py, &core.ffi, rt, shape.result_fast, result, &ret),
        None if ret.is_none() => Ok(()),
        None => Err(PyTypeError::new_err("callback with the return type 'void' must return None")),
    };
    if let Err(e) = written {
        e.restore(py);
        fail(py, core, &callable, result, ", trying to convert the result back to C");
    }
}

/// The current Python exception made the callback fail: give `onerror` a chance to
/// supply the result, else report it and return the `error` value.
unsafe fn fail(py: Python<'_>, core: &CallbackCore, callable: &Bound<'_, PyAny>, result: *mut u8, extra: &str) {
    put_error_result(py, core, result);
    let onerror = core.binding.get(py).onerror.as_ref().map(|o| o.bind(py).clone());
    let Some(onerror) = onerror else {
        report_unraisable(py, callable, extra);
        return;
    };
    let err = PyErr::fetch(py);
    let exc_type = err.get_type(py);
    let value = err.value(py).clone();
    let tb = err.traceback(py).map(|t| t.into_any()).unwrap_or_else(|| py.None().into_bound(py));
    let second = match onerror.call1((exc_type, value, tb)) {
        Ok(r) if r.is_none() => None,
        Ok(r) => match &core.shape.result {
            Some(rt) => write_value(py, &core.ffi, rt, result, &r).err(),
            None => None,
        },
        Err(e2) => Some(e2),
    };
    if let Some(e2) = second {
        put_error_result(py, core, result);
        err.restore(py);
        report_unraisable(py, callable, extra);
        e2.restore(py);
        write_unraisable_msg(py, "during handling of the above exception by 'onerror'");
    }
}

/// Reports the current exception as cffi does: "Exception ignored from cffi callback
/// <repr of the callable><extra>".
fn report_unraisable(py: Python<'_>, callable: &Bound<'_, PyAny>, extra: &str) {
    let name = callable.repr().map(|r| r.to_string()).unwrap_or_else(|_| "<callable>".to_string());
    write_unraisable_msg(py, &format!("from cffi callback {name}{extra}"));
}

fn write_unraisable_msg(py: Python<'_>, msg: &str) {
    let msg = std::ffi::CString::new(msg.replace('\0', "?")).unwrap_or_default();
    let _ = py;
    // SAFETY: the GIL is held and an exception is set.
    unsafe { _PyErr_WriteUnraisableMsg(msg.as_ptr(), ptr::null_mut()) };
}

// ---------------------------------------------------------------------------------------
// Value conversion: callback arguments are read like struct fields (structs as owned
// copies: the argument buffer dies with the C call), results written like fields.

unsafe fn read_value(py: Python<'_>, ffi: &FfiRef, ty: &TypeRef, p: *const u8) -> PyResult<Py<PyAny>> {
    convert::new_owned_copy(py, ffi, ty, p)
}

/// Plain integers and floats skip the type dispatch of the generic conversions (same
/// scalar converters; anything unusual, errors included, takes the generic path).
#[derive(Clone, Copy, Debug)]
enum Fast {
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

#[inline]
unsafe fn read_arg(py: Python<'_>, ffi: &FfiRef, ty: &TypeRef, fast: Fast, p: *const u8) -> PyResult<Py<PyAny>> {
    match fast {
        Fast::Int(i) if i.signed => convert::i64_to_py(py, convert::load_i64(p, i.size)),
        Fast::Int(i) => convert::u64_to_py(py, convert::load_u64(p, i.size)),
        Fast::Float(size) => convert::f64_to_py(py, convert::load_f64(p, size)),
        Fast::Generic => read_value(py, ffi, ty, p),
    }
}

#[inline]
unsafe fn write_result(py: Python<'_>, ffi: &FfiRef, ty: &TypeRef, fast: Fast, p: *mut u8, v: &Bound<'_, PyAny>) -> PyResult<()> {
    match fast {
        Fast::Int(i) if ffi::PyLong_CheckExact(v.as_ptr()) != 0 => {
            if let Ok(bits) = convert::py_to_int_bits(v, &i, "") {
                convert::store_u64(p, i.size, bits);
                return Ok(());
            }
        }
        Fast::Float(size) if ffi::PyFloat_CheckExact(v.as_ptr()) != 0 => {
            convert::store_f64(p, size, ffi::PyFloat_AS_DOUBLE(v.as_ptr()));
            return Ok(());
        }
        _ => {}
    }
    write_value(py, ffi, ty, p, v)
}

unsafe fn write_value(py: Python<'_>, ffi: &FfiRef, ty: &TypeRef, p: *mut u8, v: &Bound<'_, PyAny>) -> PyResult<()> {
    convert::write_value(py, ffi, ty, v, p)
}

// ---------------------------------------------------------------------------------------
// Python API: ffi.callback, ffi.def_extern, and the extern "Python" function pointers
// that `lib.name` / `ffi.addressof(lib, "name")` give.

/// The function-pointer ctype of a `callback` cdecl: a CType, `"int(*)(int)"`, or the
/// function type `"int(int)"` (cffi accepts both spellings here). Cached per FFI.
fn callback_ctype<'py>(shared: &FfiRef, cdecl: &Bound<'py, PyAny>) -> PyResult<Bound<'py, CType>> {
    let py = cdecl.py();
    let ct = if let Ok(s) = cdecl.cast::<PyString>() {
        let cache = shared.type_cache.bind(py);
        // "int(int)" (cffi's usual spelling) is not a type string of its own: cached
        // under ("callback", text); "int(*)(int)" is in the FFI's own cache once parsed.
        let key = PyTuple::new(py, [pyo3::intern!(py, "callback").as_any(), s.as_any()])?;
        if let Some(hit) = cache.get_item(&key)? {
            if let Ok(ct) = hit.cast_into::<CType>() {
                return Ok(ct);
            }
        }
        if let Some(hit) = cache.get_item(s)? {
            if let Ok(ct) = hit.cast_into::<CType>() {
                if matches!(ct.get().ty.kind, Kind::FuncPtr(_)) {
                    return Ok(ct);
                }
            }
        }
        let as_pointer = || -> Option<PyResult<Bound<'py, CType>>> {
            let ptr_text = function_type_as_pointer(s.to_str().ok()?)?;
            Some(shared.parse_ctype(&PyString::new(py, &ptr_text)))
        };
        let ct = match shared.parse_ctype(s) {
            Ok(ct) if matches!(ct.get().ty.kind, Kind::FuncPtr(_)) => ct,
            // `T(T)` with a typedef name T may parse as a parenthesized declarator.
            Ok(ct) => match as_pointer() {
                Some(Ok(p)) if matches!(p.get().ty.kind, Kind::FuncPtr(_)) => p,
                _ => ct,
            },
            Err(e) if e.to_string().contains("function type") => match as_pointer() {
                Some(r) => r?,
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        if matches!(ct.get().ty.kind, Kind::FuncPtr(_)) {
            cache.set_item(&key, &ct)?;
        }
        ct
    } else if let Ok(ct) = cdecl.cast::<CType>() {
        ct.clone()
    } else {
        return Err(PyTypeError::new_err(format!(
            "expected a cdecl string or a ctype object, got {}",
            cdecl.get_type().name()?
        )));
    };
    if !matches!(ct.get().ty.kind, Kind::FuncPtr(_)) {
        return Err(PyTypeError::new_err(format!("expected a function ctype, got '{}'", ct.get().ty.cname())));
    }
    Ok(ct)
}

/// `"int(int)"` → `"int(*)(int)"`: inserts `(*)` before the parameter list that closes
/// the string.
fn function_type_as_pointer(text: &str) -> Option<String> {
    let t = text.trim_end();
    if !t.ends_with(')') {
        return None;
    }
    let mut depth = 0i32;
    for (i, c) in t.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return Some(format!("{}(*){}", &t[..i], &t[i..]));
                }
            }
            _ => {}
        }
    }
    None
}

fn make_callback_cdata(
    py: Python<'_>,
    shared: &FfiRef,
    ct: &Bound<'_, CType>,
    callable: &Bound<'_, PyAny>,
    error: Option<&Bound<'_, PyAny>>,
    onerror: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let ty = ct.get().ty.clone();
    let onerror = onerror.filter(|o| !o.is_none()).map(|o| o.clone().unbind());
    let core = new_callback(py, shared, &ty, callable.clone().unbind(), error, onerror)?;
    let addr = core.code_ptr() as usize;
    // Empty repr: printed through `callback_target` when asked for.
    let owner = Owner::Custom { payload: Box::new(CallbackHandle(Some(core))), repr: String::new().into() };
    Ok(CData::new_owning(py, ct.clone().unbind(), addr, 0, 0, owner)?.into_any())
}

/// What a callback cdata calls, for its repr.
fn callback_target(py: Python<'_>, payload: &(dyn std::any::Any + Send + Sync)) -> Option<Py<PyAny>> {
    payload.downcast_ref::<CallbackHandle>()?.core().callable(py)
}

/// Installs the repr hook (called from `py::register`).
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    super::cdata::set_custom_target_hook(callback_target);
    Ok(())
}

/// The C function pointer of `extern "Python"` function `name` of type `fty` (a cdata,
/// the same object every time, so C may keep the address across `def_extern` calls).
/// Kept in the FFI object's `__dict__`, so it lives exactly as long as the FFI.
pub fn extern_python_cdata(
    py: Python<'_>,
    ffi_obj: &Bound<'_, PyAny>,
    shared: &FfiRef,
    name: &str,
    fty: &TypeRef,
) -> PyResult<Py<CData>> {
    let attrs = ffi_obj.getattr(pyo3::intern!(py, "__dict__")).map_err(|_| {
        PyTypeError::new_err("extern \"Python\" functions need a jitffi.FFI object (with a __dict__)")
    })?;
    let key = pyo3::intern!(py, "_jitffi_extern_python");
    let table = match attrs.get_item(key) {
        Ok(t) => t.cast_into::<PyDict>()?,
        Err(_) => {
            let t = PyDict::new(py);
            attrs.set_item(key, &t)?;
            t
        }
    };
    if let Some(cd) = table.get_item(name)? {
        return Ok(cd.cast_into::<CData>()?.unbind());
    }
    let core = new_extern_core(py, shared, fty, name)?;
    let addr = core.code_ptr() as usize;
    let ct = shared.ctype_of(py, fty);
    let owner = Owner::Custom { payload: Box::new(CallbackHandle(Some(core))), repr: format!("extern \"Python\" {name}()").into() };
    let cd = CData::new_owning(py, ct, addr, 0, 0, owner)?;
    table.set_item(name, &cd)?;
    Ok(cd)
}

fn def_extern_bind(
    py: Python<'_>,
    ffi_obj: &Bound<'_, PyAny>,
    shared: &FfiRef,
    func: &Bound<'_, PyAny>,
    name: Option<&str>,
    error: Option<&Bound<'_, PyAny>>,
    onerror: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let name: String = match name {
        Some(n) => n.to_string(),
        None => func.getattr("__name__")?.extract()?,
    };
    if !func.is_callable() {
        return Err(PyTypeError::new_err("the 'python_callable' argument is not callable"));
    }
    let decl = shared.lock_ns().decls.names.get(&name).cloned();
    let Some(Decl::ExternPython(fty)) = decl else {
        return Err(FFIError::new_err(format!(
            "ffi.def_extern('{name}'): no 'extern \"Python\"' function with this name"
        )));
    };
    let cd = extern_python_cdata(py, ffi_obj, shared, &name, &fty)?;
    let cd = cd.bind(py).get();
    let st = cd.state.get(py);
    let Owner::Custom { payload, .. } = &st.owner else { unreachable!("extern cdata own their core") };
    let core = payload.downcast_ref::<CallbackHandle>().expect("extern cdata hold a callback").core();
    let onerror = onerror.filter(|o| !o.is_none()).map(|o| o.clone().unbind());
    bind_extern(py, core, func.clone().unbind(), error, onerror)
}

#[pymethods]
impl FFI {
    /// `ffi.callback(cdecl, python_callable=None, error=None, onerror=None)`; without
    /// `python_callable`, a decorator.
    #[pyo3(signature = (cdecl, python_callable=None, error=None, onerror=None))]
    fn callback(
        &self,
        py: Python<'_>,
        cdecl: &Bound<'_, PyAny>,
        python_callable: Option<&Bound<'_, PyAny>>,
        error: Option<&Bound<'_, PyAny>>,
        onerror: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let ct = callback_ctype(&self.shared, cdecl)?;
        if let Some(f) = python_callable.filter(|f| !f.is_none()) {
            return make_callback_cdata(py, &self.shared, &ct, f, error, onerror);
        }
        if let Some(o) = onerror.filter(|o| !o.is_none()) {
            check_onerror(py, &Some(o.clone().unbind()))?;
        }
        let shared = self.shared.clone();
        let ct = ct.unbind();
        let error = error.map(|e| e.clone().unbind());
        let onerror = onerror.map(|o| o.clone().unbind());
        let deco = PyCFunction::new_closure(py, Some(c"callback_decorator"), None, move |args, _kw| -> PyResult<Py<PyAny>> {
            let py = args.py();
            let f = args.get_item(0)?;
            make_callback_cdata(py, &shared, ct.bind(py), &f, error.as_ref().map(|e| e.bind(py)), onerror.as_ref().map(|o| o.bind(py)))
        })?;
        Ok(deco.into_any().unbind())
    }

    /// `@ffi.def_extern(name=None, error=None, onerror=None)`: binds the decorated
    /// function to an `extern "Python"` declaration (ABI mode too, unlike cffi).
    #[pyo3(signature = (name=None, error=None, onerror=None))]
    fn def_extern(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        name: Option<String>,
        error: Option<&Bound<'_, PyAny>>,
        onerror: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        if let Some(o) = onerror.filter(|o| !o.is_none()) {
            check_onerror(py, &Some(o.clone().unbind()))?;
        }
        let shared = slf.get().shared.clone();
        let ffi_obj = slf.clone().into_any().unbind();
        let error = error.map(|e| e.clone().unbind());
        let onerror = onerror.map(|o| o.clone().unbind());
        let deco = PyCFunction::new_closure(py, Some(c"def_extern_decorator"), None, move |args, _kw| -> PyResult<Py<PyAny>> {
            let py = args.py();
            let f = args.get_item(0)?;
            def_extern_bind(py, ffi_obj.bind(py), &shared, &f, name.as_deref(), error.as_ref().map(|e| e.bind(py)), onerror.as_ref().map(|o| o.bind(py)))?;
            Ok(f.unbind())
        })?;
        Ok(deco.into_any().unbind())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use pyo3::types::PyDict;

    #[test]
    fn python_callable_called_from_c_with_and_without_the_gil() {
        Python::initialize();
        let (shared, fptr) = Python::attach(|py| {
            let shared = crate::py::state::FfiShared::new(py);
            let fptr = shared.lock_ns().parse_type("int(*)(int, double)").unwrap();
            (shared, fptr)
        });
        let core = Python::attach(|py| {
            let g = PyDict::new(py);
            py.run(c"def f(a, b):\n    return a * 2 + int(b)\n", Some(&g), None).unwrap();
            let f = g.get_item("f").unwrap().unwrap().unbind();
            new_callback(py, &shared, &fptr, f, Some(&(-1i32).into_pyobject(py).unwrap().into_any()), None).unwrap()
        });
        let cfn: extern "C" fn(i32, f64) -> i32 = unsafe { std::mem::transmute(core.code_ptr()) };
        // No GIL held by this thread here.
        assert_eq!(cfn(20, 2.5), 42);
        let from_thread = std::thread::spawn(move || cfn(1, 1.0)).join().unwrap();
        assert_eq!(from_thread, 3);
        Python::attach(|_py| assert_eq!(cfn(-5, 0.0), -10));
        // Overflowing result: reported, `error` returned.
        assert_eq!(cfn(i32::MAX, 0.0), -1);
        Python::attach(|_py| drop(core));
    }
}

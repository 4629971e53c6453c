//! Building callbacks: the shape of a function-pointer type (lowered once; compiled
//! at once only under `JITFFI_TIER=compiled`, else when hot: `generic`), a core
//! with its entry slot, rebinding an `extern "Python"` core.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::exceptions::{PyMemoryError, PyNotImplementedError, PyTypeError};
use pyo3::prelude::*;

use crate::abi;
use crate::jit::callback_thunk;
use crate::jit::entry_pool;
use crate::jit::error::CompileError;
use crate::types::model::{FuncSig, Kind, TypeNode, TypeRef};
use crate::types::target::Target;

use super::super::convert;
use super::super::function::shape::{lowering_error, LoweringError};
use super::super::state::FfiRef;
use super::super::tier::{self, TierMode};
use super::core::{Binding, BindingCell, CallbackCore, Fast, Shape};

fn unsupported(fptr: &TypeNode, why: &str) -> PyErr {
    PyNotImplementedError::new_err(format!(
        "{}: callback with unsupported argument or return type or with '...'{}",
        fptr.cname(),
        if why.is_empty() {
            String::new()
        } else {
            format!(" ({why})")
        }
    ))
}

/// The shape of a function-pointer type: its ABI plan, buffer layout, tier state and
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
        _ => {
            return Err(PyTypeError::new_err(format!(
                "expected a function ctype, got '{}'",
                fptr.cname()
            )))
        }
    };
    // As cffi: a struct or union with bitfields, by value, is refused for callbacks.
    if sig.variadic || sig.args.iter().chain([&sig.result]).any(has_bitfields) {
        return Err(unsupported(fptr, ""));
    }
    let plan = abi::lower(sig, &Target::host()).map_err(|e| match lowering_error(e) {
        LoweringError::Unsupported(m) => unsupported(fptr, &m),
        LoweringError::Invalid(m) => PyTypeError::new_err(m),
    })?;
    let compile_error = |e: CompileError| match e {
        CompileError::Unsupported(m) => unsupported(fptr, &m),
        e => PyTypeError::new_err(e.to_string()),
    };
    let layout = callback_thunk::thunk_layout(&plan).map_err(compile_error)?;
    let tier = super::generic::tier_for(&plan);
    if tier::mode() == TierMode::Compiled {
        super::generic::compile(&plan, &tier).map_err(compile_error)?;
    }
    let args = sig
        .args
        .iter()
        .zip(&layout.arg_offsets)
        .map(|(t, off)| (*off as usize, t.clone(), Fast::of(t)))
        .collect();
    let result = match sig.result.kind {
        Kind::Void => None,
        _ => Some(sig.result.clone()),
    };
    let result_fast = result.as_ref().map_or(Fast::Generic, Fast::of);
    let result_size = layout.result_size as usize;
    let shape = Arc::new(Shape {
        args,
        result,
        result_fast,
        result_size,
        plan,
        layout,
        tier,
    });
    // The cache keeps the node alive, so its address is never reused for another type.
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, (fptr.clone(), shape.clone()));
    Ok(shape)
}

/// A struct or union (or an array of them) holding a bitfield anywhere inside.
fn has_bitfields(t: &TypeRef) -> bool {
    match &t.kind {
        Kind::Array(item, _) => has_bitfields(item),
        Kind::Record(_) => t.record_layout().is_some_and(|l| {
            l.fields
                .iter()
                .any(|f| f.bitsize >= 0 || has_bitfields(&f.ty))
        }),
        _ => false,
    }
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
    let binding = BindingCell::new(Binding {
        callable,
        onerror,
        error_result,
        in_flight: 0,
        orphaned: false,
    });
    let mut core = Box::new(CallbackCore {
        binding,
        ffi: ffi.clone(),
        shape,
        extern_name,
        slot: None,
    });
    let core_ptr = &*core as *const CallbackCore as *const ();
    let code = super::generic::entry_code(&core.shape).map_err(PyMemoryError::new_err)?;
    let slot = entry_pool::alloc(core.shape.layout.closure_reg, core_ptr, code)
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
    let error_result = error_bytes(
        py,
        &core.ffi,
        &core.shape.result,
        core.shape.result_size,
        error,
    )?;
    let old = core.binding.with(py, |b| {
        b.error_result = error_result;
        (
            b.callable.replace(callable),
            std::mem::replace(&mut b.onerror, onerror),
        )
    });
    // Dropped outside the borrow: a `__del__` may run Python code.
    drop(old);
    Ok(())
}

/// The core of a not yet bound `extern "Python"` function named `name`.
pub fn new_extern_core(
    py: Python<'_>,
    ffi: &FfiRef,
    fptr: &TypeRef,
    name: &str,
) -> PyResult<Box<CallbackCore>> {
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
        return Err(PyTypeError::new_err(
            "the 'python_callable' argument is not callable",
        ));
    }
    new_core(py, ffi, fptr, Some(callable), error, onerror, None)
}

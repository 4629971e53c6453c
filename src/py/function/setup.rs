//! Creating function objects, and their lazy set-up: a function taken from a lib costs
//! an allocation; its checks, shape, ctypes and (for a shape not seen before) its
//! trampoline wait for its first call.

use std::cell::{Cell, OnceCell, RefCell};
use std::ffi::CString;
use std::sync::{Arc, OnceLock};

use pyo3::ffi;
use pyo3::prelude::*;

use crate::jit::trampoline::{ArgShape, RetShape, Shape};
use crate::types::model::{Kind, TypeRef};
use crate::types::target::Target;

use super::super::tier::{self, TierMode};
use super::generic::jf_generic_call;
use super::object::{
    self, CallContext, FuncInfo, FuncObject, LazyFunc, LibraryKeepAlive, SigArgs, TypeResolver,
};
use super::runtime::{cached_shape, compile_shape};
use super::shape::{lowering_error, signature_shapes};
use super::variadic::jf_variadic_call;

/// What a signature's functions share: their shapes and (non-variadic) call shape with
/// its ABI plan. Types are interned, so functions of one signature have the same
/// `fn_type`: the shapes and the plan are worked out once per signature (a header of many
/// functions has many repeated signatures), not per function, and kept in its memo.
#[derive(Clone)]
struct SigShapes {
    /// Variadic signatures only (a shape holds the others').
    fixed_shapes: Option<Arc<Vec<ArgShape>>>,
    ret: RetShape,
    shape: Option<Arc<Shape>>,
}

/// A function type's shapes, with and without releasing the GIL, kept in the interned
/// type's memo.
#[derive(Default)]
struct SigMemo {
    by_release_gil: [OnceLock<SigShapes>; 2],
}

fn sig_shapes(fn_type: &TypeRef, variadic: bool, release_gil: bool) -> PyResult<SigShapes> {
    // Kept with the type rather than in a table keyed by it: no lock, no hashing, and
    // the memory goes with the type. The shapes and the plan are pure functions of the
    // type; errors are not kept (an opaque struct in the signature may be completed by a
    // later cdef).
    let memo = fn_type.memo.get_or_init(|| Box::new(SigMemo::default()));
    let Some(memo) = memo.downcast_ref::<SigMemo>() else {
        // Another layer's memo on a function type: work it out each time.
        return build_sig_shapes(fn_type, variadic, release_gil);
    };
    let slot = &memo.by_release_gil[release_gil as usize];
    if let Some(s) = slot.get() {
        return Ok(s.clone());
    }
    let s = build_sig_shapes(fn_type, variadic, release_gil)?;
    Ok(slot.get_or_init(|| s).clone())
}

fn build_sig_shapes(fn_type: &TypeRef, variadic: bool, release_gil: bool) -> PyResult<SigShapes> {
    let (fixed_shapes, ret) = signature_shapes(fn_type)?;
    let Kind::FuncPtr(sig) = &fn_type.kind else {
        unreachable!("checked by signature_shapes")
    };
    if variadic {
        return Ok(SigShapes {
            fixed_shapes: Some(Arc::new(fixed_shapes)),
            ret,
            shape: None,
        });
    }
    let plan = crate::abi::lower(sig, &Target::host()).map_err(lowering_error)?;
    Ok(SigShapes {
        fixed_shapes: None,
        ret,
        shape: Some(Arc::new(Shape {
            args: fixed_shapes,
            ret,
            release_gil,
            plan,
        })),
    })
}

pub struct FunctionSpec<'a> {
    pub name: &'a str,
    pub fn_type: &'a TypeRef,
    pub address: usize,
    pub release_gil: bool,
    pub keepalive: Vec<Py<PyAny>>,
    pub library: Option<LibraryKeepAlive>,
    pub ctx: CallContext,
}

/// Builds the `FuncInfo` of a lazy function object and installs its entry point. On
/// error the object stays lazy (the next call raises the same error).
///
/// # Safety
/// `f` is a live function `self` object, the GIL is held.
unsafe fn materialize<'a>(py: Python<'_>, f: *mut FuncObject) -> PyResult<&'a FuncInfo> {
    // SAFETY: per the contract, `f` owns exactly one of `info`/`lazy`; the GIL
    // serializes every access to them.
    unsafe {
        if !(*f).info.is_null() {
            return Ok(&*(*f).info);
        }
        let lazy_ptr = (*f).lazy;
        let fn_type = (*lazy_ptr).fn_type()?;
        let Kind::FuncPtr(sig) = &fn_type.kind else {
            return Err(signature_shapes(fn_type)
                .err()
                .unwrap_or_else(|| pyo3::exceptions::PyTypeError::new_err("not a function type")));
        };
        let release_gil = (*lazy_ptr).release_gil;
        let SigShapes {
            fixed_shapes,
            ret,
            shape,
        } = sig_shapes(fn_type, sig.variadic, release_gil)?;
        let (result, variadic) = (sig.result.clone(), sig.variadic);
        (*f).lazy = std::ptr::null_mut();
        let mut lazy = Box::from_raw(lazy_ptr);
        let fn_type = lazy.fn_type.take().expect("the type was resolved above");
        let mut info = FuncInfo {
            name: lazy.name,
            args: SigArgs::of(fn_type.clone()),
            fn_type,
            result,
            variadic,
            release_gil,
            address: (*f).target,
            keepalive: lazy.keepalive,
            library: lazy.library,
            ctx: lazy.ctx,
            fixed_shapes,
            ret_shape: ret,
            shape: None,
            calls: Cell::new(0),
            tables: std::cell::OnceCell::new(),
            vararg_cache: RefCell::new(Vec::new()),
        };
        // Compiling waits for the first call (or for the function to be hot) when the shape
        // is new, so that taking a function from a lib stays cheap.
        // Auto: a shape compiled already is used at once, others start on the generic
        // tier (promoted when hot, `generic`). Compiled: the shape is compiled at the
        // first call. Generic: never compiled.
        // The trampolines' ctype tables are built once the function runs compiled.
        let (meth, compiled): (ffi::PyCFunctionFast, bool) = match shape {
            Some(s) => {
                let generic: ffi::PyCFunctionFast = jf_generic_call;
                let compile: ffi::PyCFunctionFast = jf_compile_and_call;
                let mode = tier::mode();
                let m = if mode == TierMode::Generic {
                    (generic, false)
                } else if let Some(t) = cached_shape(&s) {
                    (t, true)
                } else if mode == TierMode::Compiled {
                    (compile, true)
                } else {
                    (generic, false)
                };
                info.shape = Some(s);
                m
            }
            None => (jf_variadic_call, false),
        };
        let info = Box::into_raw(Box::new(info));
        (*f).info = info;
        if compiled {
            object::install_tables(py, f);
        }
        (*f).def.ml_meth = ffi::PyMethodDefPointer {
            PyCFunctionFast: meth,
        };
        Ok(&*info)
    }
}

/// Creates the builtin function object calling `spec.address` with the signature
/// `spec.fn_type`, compiling the trampoline of its shape if not cached yet.
pub fn make_function(py: Python<'_>, spec: FunctionSpec<'_>) -> PyResult<Py<PyAny>> {
    let func = make_lazy_function(py, spec)?;
    // SAFETY: `func` is a function just made here: its `self` is a live `FuncObject`.
    unsafe {
        materialize(
            py,
            ffi::PyCFunction_GetSelf(func.as_ptr()) as *mut FuncObject,
        )?
    };
    Ok(func)
}

/// The same function object, with its checks, shape and ctypes left to its first call
/// (or first use as a cdata).
pub fn make_lazy_function(py: Python<'_>, spec: FunctionSpec<'_>) -> PyResult<Py<PyAny>> {
    let lazy = Box::new(LazyFunc {
        name: CString::new(spec.name).unwrap_or_else(|_| c"?".to_owned()),
        fn_type: OnceCell::from(spec.fn_type.clone()),
        resolver: None,
        release_gil: spec.release_gil,
        keepalive: spec.keepalive,
        library: spec.library,
        ctx: spec.ctx,
    });
    new_function_object(py, spec.address, lazy)
}

/// A lazy function made from a name already NUL-terminated (the one its symbol was
/// looked up with): with its type, or with `resolver` to find it at its first use.
pub struct DeferredSpec {
    pub name: CString,
    pub fn_type: Option<TypeRef>,
    pub resolver: Option<TypeResolver>,
    pub address: usize,
    pub release_gil: bool,
    pub keepalive: Vec<Py<PyAny>>,
    pub library: Option<LibraryKeepAlive>,
    pub ctx: CallContext,
}

/// A lazy function object (as `make_lazy_function`) whose type may not be known yet.
pub fn make_deferred_function(py: Python<'_>, spec: DeferredSpec) -> PyResult<Py<PyAny>> {
    let fn_type = match spec.fn_type {
        Some(t) => OnceCell::from(t),
        None => OnceCell::new(),
    };
    let lazy = Box::new(LazyFunc {
        name: spec.name,
        fn_type,
        resolver: spec.resolver,
        release_gil: spec.release_gil,
        keepalive: spec.keepalive,
        library: spec.library,
        ctx: spec.ctx,
    });
    new_function_object(py, spec.address, lazy)
}

fn new_function_object(py: Python<'_>, address: usize, lazy: Box<LazyFunc>) -> PyResult<Py<PyAny>> {
    let f = object::alloc(py, address, lazy)?;
    // SAFETY: `f` is the fresh object (GIL held); its `def` lives inside it, as long as
    // the function object that references it (which holds `f` as its `self`).
    unsafe {
        (*f).def = ffi::PyMethodDef {
            ml_name: (*(*f).lazy).name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunctionFast: jf_materialize_and_call,
            },
            ml_flags: ffi::METH_FASTCALL,
            ml_doc: std::ptr::null(),
        };
        let obj = f as *mut ffi::PyObject;
        let func = ffi::PyCFunction_NewEx(&mut (*f).def, obj, std::ptr::null_mut());
        ffi::Py_DecRef(obj);
        Bound::from_owned_ptr_or_err(py, func).map(|b| b.unbind())
    }
}

/// Sets up a function's real entry point with `prepare` (which stores it in `ml_meth`:
/// CPython reads it at every call) and performs this call through it.
///
/// # Safety
/// The arguments are those CPython passes a `METH_FASTCALL` entry point of ours.
unsafe fn install_and_call(
    this: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    prepare: impl FnOnce(Python<'_>, *mut FuncObject) -> PyResult<()>,
) -> *mut ffi::PyObject {
    // SAFETY: CPython holds the GIL for the call.
    let py = unsafe { Python::assume_attached() };
    let f = this as *mut FuncObject;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| prepare(py, f)));
    match r {
        // SAFETY: `prepare` installed the entry point for these arguments.
        Ok(Ok(())) => unsafe { ((*f).def.ml_meth.PyCFunctionFast)(this, args, nargs) },
        Ok(Err(e)) => {
            super::helpers::raise(e);
            std::ptr::null_mut()
        }
        Err(payload) => {
            super::helpers::raise_panic(payload);
            std::ptr::null_mut()
        }
    }
}

/// The entry point of a function object until its first call has built its `FuncInfo`.
unsafe extern "C" fn jf_materialize_and_call(
    this: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    // SAFETY: called by CPython as our entry point; `this` is a function `self`.
    unsafe { install_and_call(this, args, nargs, |py, f| materialize(py, f).map(|_| ())) }
}

/// The entry point of a function whose shape was not compiled yet: compiles it.
unsafe extern "C" fn jf_compile_and_call(
    this: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    // SAFETY: called by CPython as our entry point; `this` is a built function `self`
    // (this entry point is installed by `materialize`), which has a pending shape.
    unsafe {
        install_and_call(this, args, nargs, |py, f| {
            let info = &*(*f).info;
            let shape = info
                .shape
                .as_ref()
                .expect("a non-variadic function's shape");
            let t = compile_shape(shape)?;
            object::install_tables(py, f);
            (*f).def.ml_meth = ffi::PyMethodDefPointer { PyCFunctionFast: t };
            Ok(())
        })
    }
}

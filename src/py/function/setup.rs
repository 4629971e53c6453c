//! Creating function objects, and their lazy set-up: a function taken from a lib costs
//! an allocation; its checks, shape, ctypes and (for a shape not seen before) its
//! trampoline wait for its first call.

use std::cell::{Cell, OnceCell, RefCell};
use std::ffi::CString;

use pyo3::ffi;
use pyo3::prelude::*;

use crate::jit::trampoline::Shape;
use crate::types::model::{Kind, TypeRef};
use crate::types::target::Target;

use super::object::{
    self, CallContext, FuncInfo, FuncObject, LazyFunc, LibraryKeepAlive, TypeResolver,
};
use super::runtime::{cached_shape, compile_shape};
use super::shape::{lowering_error, signature_shapes};
use super::variadic::jf_variadic_call;

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
        let fn_type = (*lazy_ptr).fn_type()?.clone();
        let (fixed_shapes, ret) = signature_shapes(&fn_type)?;
        let Kind::FuncPtr(sig) = &fn_type.kind else {
            unreachable!("checked by signature_shapes")
        };
        let release_gil = (*lazy_ptr).release_gil;
        let shape = if sig.variadic {
            None
        } else {
            let plan = crate::abi::lower(sig, &Target::host()).map_err(lowering_error)?;
            Some(Shape {
                args: fixed_shapes.clone(),
                ret,
                release_gil,
                plan,
            })
        };
        (*f).lazy = std::ptr::null_mut();
        let lazy = Box::from_raw(lazy_ptr);
        let mut info = FuncInfo {
            name: lazy.name,
            fn_type: fn_type.clone(),
            args: sig.args.clone(),
            result: sig.result.clone(),
            variadic: sig.variadic,
            release_gil,
            address: (*f).target,
            keepalive: lazy.keepalive,
            library: lazy.library,
            ctx: lazy.ctx,
            fixed_shapes,
            ret_shape: ret,
            pending: None,
            arg_ctype_objs: Vec::new(),
            arg_ctype_ptrs: Vec::new(),
            ic_refs: RefCell::new(Vec::new()),
            vararg_cache: RefCell::new(Vec::new()),
        };
        // Compiling is deferred to the first call when the shape is new, so that taking a
        // function from a lib stays cheap (most functions of a big header are never called).
        let meth: ffi::PyCFunctionFast = match shape {
            Some(s) => match cached_shape(&s) {
                Some(t) => t,
                None => {
                    info.pending = Some(s);
                    jf_compile_and_call
                }
            },
            None => jf_variadic_call,
        };
        info.arg_ctype_objs = info.args.iter().map(|t| info.ctx.ctype_of(py, t)).collect();
        info.arg_ctype_ptrs = info
            .arg_ctype_objs
            .iter()
            .flat_map(|c| [Cell::new(c.as_ptr() as usize), Cell::new(0), Cell::new(0)])
            .collect();
        *info.ic_refs.borrow_mut() = info.args.iter().flat_map(|_| [None, None]).collect();
        let info = Box::into_raw(Box::new(info));
        (*f).info = info;
        (*f).arg_ctypes = (*info).arg_ctype_ptrs.as_ptr() as *const usize;
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
        install_and_call(this, args, nargs, |_, f| {
            let info = &*(*f).info;
            let shape = info.pending.as_ref().expect("a pending shape");
            let t = compile_shape(shape)?;
            (*f).def.ml_meth = ffi::PyMethodDefPointer { PyCFunctionFast: t };
            Ok(())
        })
    }
}

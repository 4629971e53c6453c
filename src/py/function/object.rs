//! The `self` object of every C function: a small non-Python-visible object holding the
//! callee address at a fixed offset (read by the shared trampoline of the signature's
//! shape), what the helpers need to know about the callable, and what must stay alive.
//! The function object users see is `PyCFunction_NewEx(&self.def, self)`.

use std::cell::{Cell, OnceCell, RefCell};
use std::ffi::{c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use pyo3::ffi;
use pyo3::prelude::*;

use crate::jit::trampoline::{ArgShape, RetShape, Scalar, Shape};
use crate::types::model::{Kind, TypeRef};

use super::super::ctype::CType;
use super::super::errors::internal_error;
use super::super::rawtype::{new_spec_type, slot};
use super::super::state::FfiRef;

/// Per-callable state the conversions need: the FFI owning the types.
pub type CallContext = FfiRef;

/// Whatever keeps the library a function lives in mapped (the lib's handle).
pub type LibraryKeepAlive = Arc<dyn std::any::Any + Send + Sync>;

/// The compiled entry point of a shape (`METH_FASTCALL`).
pub type Trampoline = ffi::PyCFunctionFast;

#[repr(C)]
pub struct FuncObject {
    ob_base: ffi::PyObject,
    /// The C function the trampoline calls.
    pub(super) target: usize,
    /// Null until the first call (or anything else needing it) builds it from `lazy`.
    pub(super) info: *const FuncInfo,
    /// What building `info` needs; null once `info` is built.
    pub(super) lazy: *mut LazyFunc,
    /// Three `CType *` per parameter for the trampolines' pointer fast path: the
    /// parameter's own and two inline-cache entries (`FuncInfo::arg_ctype_ptrs`).
    pub(super) arg_ctypes: *const usize,
    pub(super) def: ffi::PyMethodDef,
}

/// Finds the type of the function of that name at its first use: an out-of-line
/// module's lib sets its functions up before any type is realized.
pub type TypeResolver = Arc<dyn Fn(&str) -> PyResult<TypeRef> + Send + Sync>;

/// A function object's description before its first use: lib modules create one object
/// per declared function at `dlopen`, so creation must stay cheap.
pub struct LazyFunc {
    pub(super) name: CString,
    /// Known at creation, or found by `resolver` at the first use.
    pub(super) fn_type: OnceCell<TypeRef>,
    pub(super) resolver: Option<TypeResolver>,
    pub(super) release_gil: bool,
    pub(super) keepalive: Vec<Py<PyAny>>,
    pub(super) library: Option<LibraryKeepAlive>,
    pub(super) ctx: CallContext,
}

impl LazyFunc {
    /// The function type, found now if it was left to the first use.
    pub(super) fn fn_type(&self) -> PyResult<&TypeRef> {
        if let Some(t) = self.fn_type.get() {
            return Ok(t);
        }
        let Some(resolve) = &self.resolver else {
            return Err(internal_error(Box::new("a lazy function without its type")));
        };
        let t = resolve(self.name.to_str().unwrap_or("?"))?;
        Ok(self.fn_type.get_or_init(|| t))
    }
}

/// The parameter types of a function type, borrowed from the interned type itself: a
/// function set up at its first call does not copy them. The slice is located once, so
/// reading it costs what reading an owned `Vec` would.
pub struct SigArgs {
    /// Holds the type whose parameter list `args` points into.
    _owner: TypeRef,
    args: *const TypeRef,
    len: usize,
}

impl SigArgs {
    /// The parameters of `fn_type` (none if it is not a function type).
    pub fn of(fn_type: TypeRef) -> SigArgs {
        let (args, len) = match &fn_type.kind {
            Kind::FuncPtr(sig) => (sig.args.as_ptr(), sig.args.len()),
            _ => (std::ptr::NonNull::dangling().as_ptr() as *const TypeRef, 0),
        };
        SigArgs {
            _owner: fn_type,
            args,
            len,
        }
    }
}

impl std::ops::Deref for SigArgs {
    type Target = [TypeRef];
    fn deref(&self) -> &[TypeRef] {
        // SAFETY: `args`/`len` describe the parameter list of `_owner`, an immutable
        // shared type node this value keeps alive (or are an empty dangling slice).
        unsafe { std::slice::from_raw_parts(self.args, self.len) }
    }
}

// SAFETY: `SigArgs` is a shared reference into a `TypeRef` it owns (which is `Send` and
// `Sync`, and immutable): it moves and shares across threads as that reference does.
unsafe impl Send for SigArgs {}
// SAFETY: as above.
unsafe impl Sync for SigArgs {}

/// What the helpers need to know about one callable.
pub struct FuncInfo {
    pub name: CString,
    /// The function-pointer type (`Kind::FuncPtr`).
    pub fn_type: TypeRef,
    /// The parameter types, read from `fn_type` (not copied per function).
    pub args: SigArgs,
    pub result: TypeRef,
    pub variadic: bool,
    pub release_gil: bool,
    /// The C function.
    pub address: usize,
    /// Whatever must outlive the function (the FFI object).
    pub keepalive: Vec<Py<PyAny>>,
    /// The library the function lives in: not unmapped while the function exists.
    pub library: Option<LibraryKeepAlive>,
    pub ctx: CallContext,
    /// Shape of the fixed part of a variadic function, used to build its call shapes
    /// (a non-variadic function's are its `shape`'s: not kept twice).
    pub(super) fixed_shapes: Option<Arc<Vec<ArgShape>>>,
    pub(super) ret_shape: RetShape,
    /// The shape of a non-variadic function: its ABI plan drives the generic tier, and
    /// it is what gets compiled on promotion.
    pub(super) shape: Option<Arc<Shape>>,
    /// Calls made on the generic tier so far (promotion counter; GIL held).
    pub(super) calls: Cell<u32>,
    /// What the compiled trampolines read of the parameters' ctypes: built when the
    /// function first runs compiled (the generic tier does not need them, and a function
    /// called once should not pay for them).
    /// Boxed: most functions never run compiled, and a smaller record is cheaper to
    /// allocate at the first call.
    pub(super) tables: std::cell::OnceCell<Box<CtypeTables>>,
    /// Variadic functions: per-call shapes by the promoted types of the variadic part,
    /// each with its own tier state (only touched with the GIL held).
    pub(super) vararg_cache: RefCell<Vec<(Vec<Scalar>, std::rc::Rc<VarShape>)>>,
}

pub struct CtypeTables {
    /// Keeps alive the ctype objects `ptrs` names.
    #[allow(dead_code)]
    pub(super) objs: Vec<Py<CType>>,
    /// Three entries per parameter, read by the trampolines: the parameter's ctype
    /// object, and the last other pointer ctype and array ctype whose cdata the converter
    /// accepted for it (written with the GIL held; kept alive by `ic_refs`).
    pub(super) ptrs: Vec<Cell<usize>>,
    /// Keeps alive the ctypes the converter accepted (`ptrs`' second and third entries),
    /// two per parameter.
    pub(super) ic_refs: RefCell<Vec<Option<Py<CType>>>>,
}

/// Builds the ctype tables of a built function (once) and points the object's
/// `arg_ctypes` at them: done before any compiled trampoline runs for it.
///
/// # Safety
/// GIL held; `f` is a live function `self` object whose `info` is built.
pub(super) unsafe fn install_tables(py: Python<'_>, f: *mut FuncObject) {
    // SAFETY: per the contract; `info` lives as long as `f`.
    let info = unsafe { &*(*f).info };
    let t = info.tables.get_or_init(|| {
        let objs: Vec<Py<CType>> = info.args.iter().map(|t| info.ctx.ctype_of(py, t)).collect();
        let ptrs = objs
            .iter()
            .flat_map(|c| [Cell::new(c.as_ptr() as usize), Cell::new(0), Cell::new(0)])
            .collect();
        let ic_refs = RefCell::new(info.args.iter().flat_map(|_| [None, None]).collect());
        Box::new(CtypeTables {
            objs,
            ptrs,
            ic_refs,
        })
    });
    // SAFETY: `f` is live (contract); the tables live as long as `info`.
    unsafe { (*f).arg_ctypes = t.ptrs.as_ptr() as *const usize };
}

/// One call shape of a variadic function: its plan, generic calls so far, and its
/// trampoline once compiled.
pub struct VarShape {
    pub(super) shape: Shape,
    pub(super) calls: Cell<u32>,
    pub(super) tramp: Cell<Option<Trampoline>>,
}

impl FuncInfo {
    /// The shapes of the declared parameters.
    pub(super) fn fixed_shape_list(&self) -> &[ArgShape] {
        match (&self.shape, &self.fixed_shapes) {
            (Some(s), _) => &s.args,
            (None, Some(f)) => f,
            (None, None) => &[],
        }
    }

    /// Name as cffi shows it in messages about the call: the function type.
    pub(super) fn display_name(&self) -> String {
        self.fn_type.cname()
    }
}

pub(super) const TARGET_OFFSET: usize = std::mem::offset_of!(FuncObject, target);
pub(super) const ARG_CTYPES_OFFSET: usize = std::mem::offset_of!(FuncObject, arg_ctypes);

pub(super) fn func_type() -> *mut ffi::PyTypeObject {
    static TYPE: OnceLock<usize> = OnceLock::new();
    *TYPE.get_or_init(|| {
        // SAFETY: called with the GIL held (creating or inspecting function objects).
        let py = unsafe { Python::assume_attached() };
        // GC-aware because the keepalive (the FFI object) can lead back to the function,
        // e.g. ffi → (user attribute) lib module → its dict → the cached function.
        let t = new_spec_type(
            py,
            c"_jitffi.CFunctionData",
            std::mem::size_of::<FuncObject>(),
            ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_GC,
            &[
                (ffi::Py_tp_dealloc, func_dealloc as *const () as *mut c_void),
                (
                    ffi::Py_tp_traverse,
                    func_traverse as *const () as *mut c_void,
                ),
                (ffi::Py_tp_clear, func_clear as *const () as *mut c_void),
            ],
        )
        .expect("creating the function data type");
        t as usize
    }) as *mut ffi::PyTypeObject
}

/// `tp_traverse`: the keepalive references.
unsafe extern "C" fn func_traverse(
    obj: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: CPython calls this on a live object of `func_type()`; `info` and `lazy`
    // are null or point to the boxes the object owns.
    unsafe {
        let f = obj as *mut FuncObject;
        let keepalive = if !(*f).info.is_null() {
            &(*(*f).info).keepalive
        } else if !(*f).lazy.is_null() {
            &(*(*f).lazy).keepalive
        } else {
            return 0;
        };
        for o in keepalive.iter() {
            let r = visit(o.as_ptr(), arg);
            if r != 0 {
                return r;
            }
        }
        0
    }
}

/// Breaks a reference cycle through the keepalive: only ever called on garbage, which
/// nothing can call any more.
unsafe extern "C" fn func_clear(obj: *mut ffi::PyObject) -> c_int {
    // SAFETY: CPython calls this on a live object of `func_type()` with the GIL held;
    // nothing else uses the object (it is garbage), so the boxes may be mutated.
    unsafe {
        slot(-1, |_| {
            let f = obj as *mut FuncObject;
            let info = (*f).info as *mut FuncInfo;
            if !info.is_null() {
                drop(std::mem::take(&mut (*info).keepalive));
            }
            if !(*f).lazy.is_null() {
                drop(std::mem::take(&mut (*(*f).lazy).keepalive));
            }
            Ok(0)
        })
    }
}

unsafe extern "C" fn func_dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: CPython calls this once, on a dead GC-tracked object of `func_type()`.
    unsafe { ffi::PyObject_GC_UnTrack(obj as *mut c_void) };
    // SAFETY: the object owns its boxes (freed once, the pointers cleared first); its
    // memory is freed by its type's `tp_free`, and the heap type reference it holds is
    // dropped last.
    let r = catch_unwind(AssertUnwindSafe(|| unsafe {
        let f = obj as *mut FuncObject;
        let info = (*f).info;
        if !info.is_null() {
            (*f).info = std::ptr::null();
            drop(Box::from_raw(info as *mut FuncInfo));
        }
        let lazy = (*f).lazy;
        if !lazy.is_null() {
            (*f).lazy = std::ptr::null_mut();
            drop(Box::from_raw(lazy));
        }
        let tp = ffi::Py_TYPE(obj);
        let free = (*tp).tp_free.expect("tp_free");
        free(obj as *mut c_void);
        ffi::Py_DecRef(tp as *mut ffi::PyObject);
    }));
    if let Err(payload) = r {
        // SAFETY: deallocs run with the GIL held.
        let py = unsafe { Python::assume_attached() };
        internal_error(payload).write_unraisable(py, None);
    }
}

/// Allocates the `self` object of a lazy function (GIL held).
pub(super) fn alloc(
    py: Python<'_>,
    address: usize,
    lazy: Box<LazyFunc>,
) -> PyResult<*mut FuncObject> {
    // SAFETY: the GIL is held; the fresh object is fully initialized before anything
    // else sees it (the generic allocator zeroed it).
    unsafe {
        let obj = ffi::PyType_GenericAlloc(func_type(), 0);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        let f = obj as *mut FuncObject;
        (*f).target = address;
        (*f).info = std::ptr::null();
        (*f).lazy = Box::into_raw(lazy);
        (*f).arg_ctypes = std::ptr::null();
        Ok(f)
    }
}

/// The `self` object behind `obj` if `obj` is a function made here.
fn self_of(obj: &Bound<'_, PyAny>) -> Option<*mut FuncObject> {
    let o = obj.as_ptr();
    // SAFETY: `o` is a live object (borrowed by `obj`, GIL held); `PyCFunction_GetSelf`
    // is only called on a builtin function.
    unsafe {
        if ffi::PyCFunction_Check(o) == 0 {
            return None;
        }
        let s = ffi::PyCFunction_GetSelf(o);
        if s.is_null() || ffi::Py_TYPE(s) != func_type() {
            return None;
        }
        Some(s as *mut FuncObject)
    }
}

/// The function type, address and context of a function object of ours, built or not.
///
/// # Safety
/// `f` is a live `self` object (of `func_type()`), and the GIL is held.
pub(super) unsafe fn parts<'a>(
    f: *mut FuncObject,
) -> PyResult<(usize, &'a TypeRef, &'a CallContext)> {
    // SAFETY: per the contract, exactly one of `info`/`lazy` is set and owned by `f`.
    unsafe {
        if !(*f).info.is_null() {
            let i = &*(*f).info;
            Ok((i.address, &i.fn_type, &i.ctx))
        } else {
            let l = &*(*f).lazy;
            Ok(((*f).target, l.fn_type()?, &l.ctx))
        }
    }
}

/// The C address behind a function object made by `make_function`, if it is one.
pub fn function_address(obj: &Bound<'_, PyAny>) -> Option<(usize, TypeRef)> {
    let f = self_of(obj)?;
    // SAFETY: `f` is the live `self` of `obj` (which `obj` keeps alive); GIL held.
    let (address, fn_type, _) = unsafe { parts(f) }.ok()?;
    Some((address, fn_type.clone()))
}

/// For the FFI's `typeof`/`cast`: a function taken from a lib as the function-pointer
/// cdata cffi would have given (`<cdata 'int(*)(int, int)' 0x...>`), `None` if `obj` is
/// not such a function.
pub fn lib_function_cdata(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
    let Some(f) = self_of(obj) else {
        return Ok(None);
    };
    // SAFETY: as in `function_address`.
    let (address, fn_type, ctx) = unsafe { parts(f) }?;
    Ok(Some(super::super::convert::cdata_from_pointer(
        py, ctx, fn_type, address,
    )?))
}

/// The `FuncInfo` of a built function object.
///
/// # Safety
/// `this` is the `self` object of a function whose `info` was built.
pub(super) unsafe fn info_of<'a>(this: *mut ffi::PyObject) -> &'a FuncInfo {
    // SAFETY: per the contract; `info` lives as long as the object.
    unsafe { &*(*(this as *mut FuncObject)).info }
}

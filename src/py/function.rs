//! Callable C functions: builtin function objects whose C entry point is a JIT trampoline.
//!
//! Each C function becomes `PyCFunction_NewEx(&def, self)` where `self` is a small
//! [`FuncObject`] holding the callee address at a fixed offset (read by the shared
//! trampoline of the signature's shape), the signature, and what must stay alive (the
//! library, the FFI). Calls go straight from CPython's vectorcall into machine code;
//! the helpers below are what that code calls for the cases it does not inline.
//!
//! Function-pointer cdata reuse the same trampolines through [`call_function_pointer`].

use std::collections::HashMap;
use std::ffi::{c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::exceptions::{PyNotImplementedError, PySystemError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::jit::trampoline::{self, ArgShape, Conv, RetShape, Runtime, Scalar, Shape};
use crate::types::model::{CallConv, FuncSig, Kind, Prim, PrimClass, TypeRef, TypeTable};
use crate::types::target::Target;

use super::call_glue;
use super::cdata::CData;
use super::ctype::CType;
use super::lib_object::LibHandle;

// ---------------------------------------------------------------------------------------
// The `self` object of every C function.

#[repr(C)]
pub struct FuncObject {
    ob_base: ffi::PyObject,
    /// The C function the trampoline calls.
    target: usize,
    /// Null until the first call (or anything else needing it) builds it from `lazy`.
    info: *const FuncInfo,
    /// What building `info` needs; null once `info` is built.
    lazy: *mut LazyFunc,
    /// Three `CType *` per parameter for the trampolines' pointer fast path: the
    /// parameter's own and two inline-cache entries (`FuncInfo::arg_ctype_ptrs`).
    arg_ctypes: *const usize,
    def: ffi::PyMethodDef,
}

/// A function object's description before its first use: lib modules create one object
/// per declared function at `dlopen` (see lib_object.rs), so creation must stay cheap.
pub struct LazyFunc {
    name: CString,
    fn_type: TypeRef,
    release_gil: bool,
    keepalive: Vec<Py<PyAny>>,
    library: Option<Arc<LibHandle>>,
    ctx: call_glue::CallContext,
}

/// What the helpers need to know about one callable.
pub struct FuncInfo {
    pub name: CString,
    /// The function-pointer type (`Kind::FuncPtr`).
    pub fn_type: TypeRef,
    pub args: Vec<TypeRef>,
    pub result: TypeRef,
    pub variadic: bool,
    pub release_gil: bool,
    /// The C function.
    pub address: usize,
    /// Whatever must outlive the function (the FFI object).
    pub keepalive: Vec<Py<PyAny>>,
    /// The library the function lives in: not unmapped while the function exists.
    pub library: Option<Arc<LibHandle>>,
    pub ctx: call_glue::CallContext,
    /// Shape of the fixed part, used to build variadic shapes.
    fixed_shapes: Vec<ArgShape>,
    ret_shape: RetShape,
    /// The shape to compile at the first call (when it was not cached at creation).
    pending: Option<Shape>,
    arg_ctype_objs: Vec<Py<CType>>,
    /// Three entries per parameter, read by the trampolines: the parameter's ctype
    /// object, and the last other pointer ctype and array ctype whose cdata the converter
    /// accepted for it (written with the GIL held; kept alive by `ic_refs`).
    arg_ctype_ptrs: Vec<std::cell::Cell<usize>>,
    ic_refs: std::cell::RefCell<Vec<Option<Py<CType>>>>,
    /// Variadic functions: trampolines by the promoted types of the variadic part (only
    /// touched with the GIL held).
    vararg_cache: std::cell::RefCell<Vec<(Vec<Scalar>, Trampoline)>>,
}

impl FuncInfo {
    /// Name as cffi shows it in messages about the call: the function type.
    fn display_name(&self) -> String {
        self.fn_type.cname()
    }
}

const TARGET_OFFSET: usize = std::mem::offset_of!(FuncObject, target);
const ARG_CTYPES_OFFSET: usize = std::mem::offset_of!(FuncObject, arg_ctypes);

fn func_type() -> *mut ffi::PyTypeObject {
    static TYPE: OnceLock<usize> = OnceLock::new();
    *TYPE.get_or_init(|| unsafe {
        let mut slots = vec![
            ffi::PyType_Slot { slot: ffi::Py_tp_dealloc, pfunc: func_dealloc as *const () as *mut c_void },
            ffi::PyType_Slot { slot: ffi::Py_tp_traverse, pfunc: func_traverse as *const () as *mut c_void },
            ffi::PyType_Slot { slot: ffi::Py_tp_clear, pfunc: func_clear as *const () as *mut c_void },
            ffi::PyType_Slot { slot: 0, pfunc: std::ptr::null_mut() },
        ];
        // GC-aware because the keepalive (the FFI object) can lead back to the function,
        // e.g. ffi → (user attribute) lib module → its dict → the cached function.
        let mut spec = ffi::PyType_Spec {
            name: c"_jitffi.CFunctionData".as_ptr(),
            basicsize: std::mem::size_of::<FuncObject>() as c_int,
            itemsize: 0,
            flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_GC) as _,
            slots: slots.as_mut_ptr(),
        };
        let t = ffi::PyType_FromSpec(&mut spec);
        assert!(!t.is_null(), "creating the function data type");
        std::mem::forget(slots);
        t as usize
    }) as *mut ffi::PyTypeObject
}

unsafe extern "C" fn func_traverse(obj: *mut ffi::PyObject, visit: ffi::visitproc, arg: *mut c_void) -> c_int {
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
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
        let f = obj as *mut FuncObject;
        let info = (*f).info as *mut FuncInfo;
        if !info.is_null() {
            drop(std::mem::take(&mut (*info).keepalive));
        }
        if !(*f).lazy.is_null() {
            drop(std::mem::take(&mut (*(*f).lazy).keepalive));
        }
    }));
    0
}

unsafe extern "C" fn func_dealloc(obj: *mut ffi::PyObject) {
    unsafe { ffi::PyObject_GC_UnTrack(obj as *mut c_void) };
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
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
}

// ---------------------------------------------------------------------------------------
// Shapes

fn int_scalar(size: usize, signed: bool) -> Scalar {
    Scalar::Int { size: size as u8, signed }
}

pub fn arg_shape(ty: &TypeRef) -> Result<ArgShape, String> {
    Ok(match &ty.kind {
        Kind::Prim(p) => match p.class {
            PrimClass::SignedInt | PrimClass::UnsignedInt => {
                ArgShape { scalar: int_scalar(p.size, p.signed), conv: Conv::Int }
            }
            PrimClass::Bool | PrimClass::Char | PrimClass::WideChar => {
                ArgShape { scalar: int_scalar(p.size, p.signed), conv: Conv::Generic }
            }
            PrimClass::Float => ArgShape {
                scalar: if p.size == 4 { Scalar::F32 } else { Scalar::F64 },
                conv: Conv::Float,
            },
            PrimClass::LongDouble | PrimClass::Complex => {
                ArgShape { scalar: Scalar::Bytes(p.size as u32), conv: Conv::Generic }
            }
        },
        Kind::Enum(e) => {
            let u = e.underlying_info();
            ArgShape { scalar: int_scalar(u.size, u.signed), conv: Conv::Int }
        }
        Kind::Pointer(item) => {
            let bytes = matches!(&item.kind, Kind::Prim(p) if p.size == 1 && p.class != PrimClass::Bool)
                || matches!(item.kind, Kind::Void);
            let ints = match &item.kind {
                Kind::Prim(p) if matches!(p.class, PrimClass::SignedInt | PrimClass::UnsignedInt) && p.size <= 8 => {
                    Some(int_scalar(p.size, p.signed))
                }
                _ => None,
            };
            ArgShape { scalar: int_scalar(8, false), conv: Conv::Pointer { bytes, ints } }
        }
        Kind::Array(..) | Kind::FuncPtr(_) => ArgShape { scalar: int_scalar(8, false), conv: Conv::WithTemp },
        // Structs and unions by value: converted into their cell by the conversion layer,
        // passed per the ABI plan (registers, stack or a hidden copy).
        Kind::Record(_) => match ty.size() {
            Some(size) => ArgShape { scalar: Scalar::Bytes(size as u32), conv: Conv::Record },
            None => return Err(format!("ctype '{}' has no known size: cannot pass it by value", ty.cname())),
        },
        Kind::Void => return Err("'void' is not a valid argument type".into()),
    })
}

pub fn ret_shape(ty: &TypeRef) -> Result<RetShape, String> {
    Ok(match &ty.kind {
        Kind::Void => RetShape::Void,
        Kind::Prim(p) => match p.class {
            PrimClass::SignedInt | PrimClass::UnsignedInt => {
                RetShape::Int { size: p.size as u8, signed: p.signed }
            }
            PrimClass::Bool => RetShape::Bool,
            PrimClass::Float => RetShape::Float(if p.size == 4 { Scalar::F32 } else { Scalar::F64 }),
            PrimClass::Char | PrimClass::WideChar => RetShape::Generic(int_scalar(p.size, p.signed)),
            PrimClass::LongDouble | PrimClass::Complex => RetShape::Generic(Scalar::Bytes(p.size as u32)),
        },
        Kind::Enum(e) => {
            let u = e.underlying_info();
            RetShape::Int { size: u.size as u8, signed: u.signed }
        }
        Kind::Pointer(_) | Kind::FuncPtr(_) => RetShape::Generic(int_scalar(8, false)),
        Kind::Array(..) => return Err(format!("ctype '{}' not supported as return value", ty.cname())),
        Kind::Record(_) => match ty.size() {
            Some(size) => RetShape::Generic(Scalar::Bytes(size as u32)),
            None => return Err(format!("ctype '{}' has no known size: cannot return it by value", ty.cname())),
        },
    })
}

fn lowering_error(e: crate::abi::LowerError) -> PyErr {
    if e.is_not_implemented() {
        PyNotImplementedError::new_err(e.message())
    } else {
        PyTypeError::new_err(e.to_string())
    }
}

/// A C type standing for `s` in the lowering of a variadic call (promoted types only).
fn scalar_type(s: Scalar) -> TypeRef {
    static TABLE: Mutex<Option<TypeTable>> = Mutex::new(None);
    let mut g = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let t = g.get_or_insert_with(|| TypeTable::new(Target::host()));
    let p = match s {
        Scalar::Int { size: 8, signed: true } => Prim::Long,
        Scalar::Int { size: 8, signed: false } => Prim::ULong,
        Scalar::Int { signed: true, .. } => Prim::Int,
        Scalar::Int { signed: false, .. } => Prim::UInt,
        Scalar::F32 => Prim::Float,
        Scalar::F64 | Scalar::Bytes(_) => Prim::Double,
    };
    t.prim(p)
}

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let inline_small_ints = Python::attach(|py| {
            let v = py.version_info();
            v.major == 3 && v.minor == 11
        });
        // Where a CData object keeps its ctype and address: measured on a real one.
        let (cdata_type, cdata_ctype_offset, cdata_addr_offset, void_ptr_ctype) = Python::attach(|py| {
            let st = super::state::builtin(py);
            let vp = st.void_ptr_type();
            // The builtin state keeps its ctype objects for the process lifetime.
            let void_ptr = st.ctype_of(py, &vp);
            let void_ptr_addr = void_ptr.as_ptr() as usize;
            let cd = CData::new_pointer(py, void_ptr, 0).expect("allocating a cdata");
            let b = cd.bind(py);
            let base = b.as_ptr() as usize;
            let c = b.get();
            (
                unsafe { ffi::Py_TYPE(b.as_ptr()) } as usize,
                (&c.ctype as *const _ as usize - base) as i32,
                (&c.addr as *const _ as usize - base) as i32,
                void_ptr_addr,
            )
        });
        Runtime {
            target_offset: TARGET_OFFSET as i32,
            arity_error: jf_arity_error as *const () as usize,
            convert_arg: jf_convert_arg as *const () as usize,
            convert_vararg: jf_convert_vararg as *const () as usize,
            release: jf_release as *const () as usize,
            reacquire: jf_reacquire as *const () as usize,
            box_result: jf_box_result as *const () as usize,
            box_none: jf_box_none as *const () as usize,
            release_temp: jf_release_temp as *const () as usize,
            long_from_i64: ffi::PyLong_FromLongLong as *const () as usize,
            long_from_u64: ffi::PyLong_FromUnsignedLongLong as *const () as usize,
            float_from_double: ffi::PyFloat_FromDouble as *const () as usize,
            bool_from_long: ffi::PyBool_FromLong as *const () as usize,
            long_type: std::ptr::addr_of_mut!(ffi::PyLong_Type) as usize,
            float_type: std::ptr::addr_of_mut!(ffi::PyFloat_Type) as usize,
            cdata_type,
            cdata_ctype_offset,
            cdata_addr_offset,
            arg_ctypes_offset: ARG_CTYPES_OFFSET as i32,
            void_ptr_ctype,
            small_int_list: jf_small_int_list as *const () as usize,
            array_data: jf_array_data as *const () as usize,
            bytes_type: std::ptr::addr_of_mut!(ffi::PyBytes_Type) as usize,
            bytes_data_offset: std::mem::offset_of!(ffi::PyBytesObject, ob_sval) as i32,
            inline_small_ints,
            memcpy: libc::memcpy as *const () as usize,
        }
    })
}

type Trampoline = ffi::PyCFunctionFast;

fn compile_shape(shape: &Shape) -> PyResult<Trampoline> {
    let p = trampoline::SHAPES
        .get_or_compile(shape, runtime())
        .map_err(PySystemError::new_err)?;
    Ok(unsafe { std::mem::transmute::<*const u8, Trampoline>(p) })
}

pub struct FunctionSpec<'a> {
    pub name: &'a str,
    pub fn_type: &'a TypeRef,
    pub address: usize,
    pub release_gil: bool,
    pub keepalive: Vec<Py<PyAny>>,
    pub library: Option<Arc<LibHandle>>,
    pub ctx: call_glue::CallContext,
}

/// The checks cffi makes when a function is taken from a lib: anything that would make
/// building its trampoline fail, short of the ABI lowering.
pub fn check_signature(fn_type: &TypeRef) -> PyResult<()> {
    signature_shapes(fn_type).map(|_| ())
}

fn signature_shapes(fn_type: &TypeRef) -> PyResult<(Vec<ArgShape>, RetShape)> {
    let Kind::FuncPtr(sig) = &fn_type.kind else {
        return Err(PyTypeError::new_err(format!("'{}' is not a function type", fn_type.cname())));
    };
    // As cffi: a struct by value declared with `...` needs a compiler to know its layout;
    // an opaque one is an incomplete type.
    for t in sig.args.iter().chain([&sig.result]) {
        if let Kind::Record(r) = &t.kind {
            match r.layout.get() {
                Some(Ok(l)) if l.partial => return Err(super::errors::VerificationMissing::new_err(t.cname())),
                None => return Err(PyTypeError::new_err(format!("ctype '{}' has incomplete type", t.cname()))),
                _ => {}
            }
        }
    }
    let fixed_shapes = sig
        .args
        .iter()
        .map(arg_shape)
        .collect::<Result<Vec<_>, _>>()
        .map_err(PyNotImplementedError::new_err)?;
    let ret = ret_shape(&sig.result).map_err(PyNotImplementedError::new_err)?;
    Ok((fixed_shapes, ret))
}

/// Builds the `FuncInfo` of a lazy function object and installs its entry point. On
/// error the object stays lazy (the next call raises the same error).
unsafe fn materialize<'a>(py: Python<'_>, f: *mut FuncObject) -> PyResult<&'a FuncInfo> {
    unsafe {
        if !(*f).info.is_null() {
            return Ok(&*(*f).info);
        }
        let lazy_ptr = (*f).lazy;
        let fn_type = (*lazy_ptr).fn_type.clone();
        let (fixed_shapes, ret) = signature_shapes(&fn_type)?;
        let Kind::FuncPtr(sig) = &fn_type.kind else { unreachable!("checked by signature_shapes") };
        let release_gil = (*lazy_ptr).release_gil;
        let shape = if sig.variadic {
            None
        } else {
            let plan = crate::abi::lower(sig, &Target::host()).map_err(lowering_error)?;
            Some(Shape { args: fixed_shapes.clone(), ret, release_gil, plan })
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
            ic_refs: std::cell::RefCell::new(Vec::new()),
            vararg_cache: std::cell::RefCell::new(Vec::new()),
        };
        // Compiling is deferred to the first call when the shape is new, so that taking a
        // function from a lib stays cheap (most functions of a big header are never called).
        let meth: ffi::PyCFunctionFast = match shape {
            Some(s) => match trampoline::SHAPES.get(&s) {
                Some(p) => std::mem::transmute::<*const u8, Trampoline>(p),
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
            .flat_map(|c| [std::cell::Cell::new(c.as_ptr() as usize), std::cell::Cell::new(0), std::cell::Cell::new(0)])
            .collect();
        *info.ic_refs.borrow_mut() = info.args.iter().flat_map(|_| [None, None]).collect();
        let info = Box::into_raw(Box::new(info));
        (*f).info = info;
        (*f).arg_ctypes = (*info).arg_ctype_ptrs.as_ptr() as *const usize;
        (*f).def.ml_meth = ffi::PyMethodDefPointer { PyCFunctionFast: meth };
        Ok(&*info)
    }
}

/// Creates the builtin function object calling `spec.address` with the signature
/// `spec.fn_type`, compiling the trampoline of its shape if not cached yet.
pub fn make_function(py: Python<'_>, spec: FunctionSpec<'_>) -> PyResult<Py<PyAny>> {
    let func = make_lazy_function(py, spec)?;
    unsafe { materialize(py, ffi::PyCFunction_GetSelf(func.as_ptr()) as *mut FuncObject)? };
    Ok(func)
}

/// The same function object, with its checks, shape and ctypes left to its first call
/// (or first use as a cdata): about 0.1 µs instead of several.
pub fn make_lazy_function(py: Python<'_>, spec: FunctionSpec<'_>) -> PyResult<Py<PyAny>> {
    let lazy = Box::new(LazyFunc {
        name: CString::new(spec.name).unwrap_or_else(|_| c"?".to_owned()),
        fn_type: spec.fn_type.clone(),
        release_gil: spec.release_gil,
        keepalive: spec.keepalive,
        library: spec.library,
        ctx: spec.ctx,
    });
    unsafe {
        let tp = func_type();
        let obj = ffi::PyType_GenericAlloc(tp, 0);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        let f = obj as *mut FuncObject;
        let lazy = Box::into_raw(lazy);
        (*f).target = spec.address;
        (*f).info = std::ptr::null();
        (*f).lazy = lazy;
        (*f).arg_ctypes = std::ptr::null();
        (*f).def = ffi::PyMethodDef {
            ml_name: (*lazy).name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunctionFast: jf_materialize_and_call },
            ml_flags: ffi::METH_FASTCALL,
            ml_doc: std::ptr::null(),
        };
        let func = ffi::PyCFunction_NewEx(&mut (*f).def, obj, std::ptr::null_mut());
        ffi::Py_DecRef(obj);
        Bound::from_owned_ptr_or_err(py, func).map(|b| b.unbind())
    }
}

/// The function type, address and context of a function object of ours, built or not.
unsafe fn parts<'a>(f: *mut FuncObject) -> (usize, &'a TypeRef, &'a call_glue::CallContext) {
    unsafe {
        if !(*f).info.is_null() {
            let i = &*(*f).info;
            (i.address, &i.fn_type, &i.ctx)
        } else {
            let l = &*(*f).lazy;
            ((*f).target, &l.fn_type, &l.ctx)
        }
    }
}

/// The C address behind a function object made by [`make_function`], if it is one.
pub fn function_address(obj: &Bound<'_, PyAny>) -> Option<(usize, TypeRef)> {
    unsafe {
        let o = obj.as_ptr();
        if ffi::PyCFunction_Check(o) == 0 {
            return None;
        }
        let s = ffi::PyCFunction_GetSelf(o);
        if s.is_null() || ffi::Py_TYPE(s) != func_type() {
            return None;
        }
        let (address, fn_type, _) = parts(s as *mut FuncObject);
        Some((address, fn_type.clone()))
    }
}

/// For the FFI's `typeof`/`cast`: a function taken from a lib as the function-pointer
/// cdata cffi would have given (`<cdata 'int(*)(int, int)' 0x...>`), `None` if `obj` is
/// not such a function.
pub fn lib_function_cdata(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
    unsafe {
        let o = obj.as_ptr();
        if ffi::PyCFunction_Check(o) == 0 {
            return Ok(None);
        }
        let s = ffi::PyCFunction_GetSelf(o);
        if s.is_null() || ffi::Py_TYPE(s) != func_type() {
            return Ok(None);
        }
        let (address, fn_type, ctx) = parts(s as *mut FuncObject);
        Ok(Some(super::convert::cdata_from_pointer(py, ctx, fn_type, address)?))
    }
}

// ---------------------------------------------------------------------------------------
// Function-pointer cdata calls: same trampolines, `self` is a per-type call site object.

struct CallSite {
    obj: Py<PyAny>,
}

/// Calls the C function at `address` of function-pointer type `fn_type`.
pub fn call_function_pointer(
    py: Python<'_>,
    fn_type: &TypeRef,
    address: usize,
    ctx: &call_glue::CallContext,
    args: &[Bound<'_, PyAny>],
) -> PyResult<Py<PyAny>> {
    // One call-site object per (type, address): functions pointers obtained from C are
    // usually called again and again; entries keep their type alive so keys stay unique.
    static SITES: Mutex<Option<HashMap<(usize, usize), CallSite>>> = Mutex::new(None);
    let key = (Arc::as_ptr(fn_type) as usize, address);
    let obj = {
        let mut g = SITES.lock().unwrap_or_else(|e| e.into_inner());
        let map = g.get_or_insert_with(HashMap::new);
        if let Some(site) = map.get(&key) {
            site.obj.clone_ref(py)
        } else {
            drop(g);
            let spec = FunctionSpec {
                name: &fn_type.cname(),
                fn_type,
                address,
                release_gil: true,
                keepalive: Vec::new(),
                library: None,
                ctx: ctx.clone(),
            };
            let func = make_function(py, spec)?;
            let mut g = SITES.lock().unwrap_or_else(|e| e.into_inner());
            let map = g.get_or_insert_with(HashMap::new);
            if map.len() > 4096 {
                map.clear();
            }
            map.insert(key, CallSite { obj: func.clone_ref(py) });
            func
        }
    };
    let mut argv: Vec<*mut ffi::PyObject> = args.iter().map(|a| a.as_ptr()).collect();
    unsafe {
        let self_ = ffi::PyCFunction_GetSelf(obj.as_ptr());
        // Read the entry point at each call: it changes once, after lazy compilation.
        let entry = (*(self_ as *mut FuncObject)).def.ml_meth.PyCFunctionFast;
        let r = entry(self_, argv.as_mut_ptr(), argv.len() as ffi::Py_ssize_t);
        Bound::from_owned_ptr_or_err(py, r).map(|b| b.unbind())
    }
}

// ---------------------------------------------------------------------------------------
// Helpers called from trampolines. None may unwind: every one catches panics and turns
// them into a Python exception.

unsafe fn info_of<'a>(this: *mut ffi::PyObject) -> &'a FuncInfo {
    unsafe { &*(*(this as *mut FuncObject)).info }
}

fn guard<R>(py: Python<'_>, fail: R, f: impl FnOnce() -> PyResult<R>) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            e.restore(py);
            // References dropped by the failed conversion while not attached were
            // deferred: attaching releases them now.
            Python::attach(|_| ());
            fail
        }
        Err(_) => {
            PySystemError::new_err("internal error (Rust panic) in a jitffi call helper").restore(py);
            fail
        }
    }
}

unsafe extern "C" fn jf_arity_error(this: *mut ffi::PyObject, nargs: ffi::Py_ssize_t) -> *mut ffi::PyObject {
    let py = unsafe { Python::assume_attached() };
    guard(py, std::ptr::null_mut(), || {
        let info = unsafe { info_of(this) };
        Err(PyTypeError::new_err(format!(
            "'{}' expects {} arguments, got {}",
            info.display_name(),
            info.args.len(),
            nargs
        )))
    })
}

unsafe extern "C" fn jf_convert_arg(
    this: *mut ffi::PyObject,
    index: usize,
    obj: *mut ffi::PyObject,
    dst: *mut u8,
    temp: *mut *mut c_void,
) -> c_int {
    let py = unsafe { Python::assume_attached() };
    guard(py, -1, || {
        let info = unsafe { info_of(this) };
        let obj = unsafe { Bound::from_borrowed_ptr(py, obj) };
        let ty = &info.args[index];
        let keep = call_glue::write_argument(py, &info.ctx, ty, &obj, dst)?;
        remember_pointer_ctype(py, info, index, ty, &obj);
        if let Some(k) = keep {
            if temp.is_null() {
                // Cannot happen: shapes mark every argument that may need a temporary.
                return Err(PySystemError::new_err("argument temporary without a slot"));
            }
            unsafe { *temp = k.into_raw() };
        }
        Ok(0)
    })
}

/// After the converter accepted a pointer cdata for a `T *` parameter, lets the
/// trampoline accept cdata of that ctype inline next time. Exact: the decision depends
/// only on the two types; the value passed is a pointer cdata's address, or an array's
/// data address (taken by `jf_array_data`, which keeps the check that the array's memory
/// was not released).
fn remember_pointer_ctype(py: Python<'_>, info: &FuncInfo, index: usize, ty: &TypeRef, obj: &Bound<'_, PyAny>) {
    if !matches!(ty.kind, Kind::Pointer(_)) {
        return;
    }
    let Ok(cd) = obj.cast::<CData>() else { return };
    let c = cd.get();
    let which = match c.ty().kind {
        Kind::Pointer(_) | Kind::FuncPtr(_) => 0,
        Kind::Array(..) => 1,
        _ => return,
    };
    let Some(slot) = info.arg_ctype_ptrs.get(3 * index + 1 + which) else { return };
    let ct = c.ctype.clone_ref(py);
    slot.set(ct.as_ptr() as usize);
    if let Some(r) = info.ic_refs.borrow_mut().get_mut(2 * index + which) {
        *r = Some(ct);
    }
}

/// An array cdata (of a ctype the converter accepted before for this parameter): its
/// data address into `dst`.
unsafe extern "C" fn jf_array_data(obj: *mut ffi::PyObject, dst: *mut u8) -> c_int {
    let py = unsafe { Python::assume_attached() };
    guard(py, -1, || {
        let obj = unsafe { Bound::from_borrowed_ptr(py, obj) };
        let cd = obj.cast::<CData>().map_err(|_| PySystemError::new_err("array cache: not a cdata"))?;
        let addr = cd.get().data_addr(py)?;
        unsafe { super::convert::store_ptr(dst, addr) };
        Ok(0)
    })
}

/// An exact list of exact ints, all in range for the item type and fitting
/// `trampoline::LIST_BUF` bytes: written into `buf` (1). Anything else: 0, with nothing
/// raised (the general converter then handles it and raises cffi's errors).
unsafe extern "C" fn jf_small_int_list(obj: *mut ffi::PyObject, buf: *mut u8, size: usize, signed: usize) -> c_int {
    unsafe {
        if ffi::PyList_CheckExact(obj) == 0 {
            return 0;
        }
        let n = ffi::PyList_GET_SIZE(obj) as usize;
        if n * size > trampoline::LIST_BUF {
            return 0;
        }
        let (lo, hi) = call_glue::int_range(size, signed != 0);
        for i in 0..n {
            let o = ffi::PyList_GET_ITEM(obj, i as ffi::Py_ssize_t);
            if ffi::PyLong_CheckExact(o) == 0 {
                return 0;
            }
            let v = match call_glue::small_int(o) {
                Some(v) => v,
                None => {
                    let mut overflow = 0;
                    let v = ffi::PyLong_AsLongLongAndOverflow(o, &mut overflow);
                    if v == -1 && !ffi::PyErr_Occurred().is_null() {
                        ffi::PyErr_Clear();
                        return 0;
                    }
                    if overflow != 0 {
                        return 0;
                    }
                    v as i128
                }
            };
            if v < lo || v > hi {
                return 0;
            }
            super::convert::store_u64(buf.add(i * size), size, v as u64);
        }
        1
    }
}

unsafe extern "C" fn jf_convert_vararg(
    this: *mut ffi::PyObject,
    index: usize,
    obj: *mut ffi::PyObject,
    dst: *mut u8,
) -> c_int {
    let py = unsafe { Python::assume_attached() };
    guard(py, -1, || {
        let info = unsafe { info_of(this) };
        let obj = unsafe { Bound::from_borrowed_ptr(py, obj) };
        call_glue::write_vararg(py, &info.ctx, index, &obj, dst)?;
        Ok(0)
    })
}

unsafe extern "C" fn jf_box_result(this: *mut ffi::PyObject, ret: *const u8) -> *mut ffi::PyObject {
    let py = unsafe { Python::assume_attached() };
    guard(py, std::ptr::null_mut(), || {
        let info = unsafe { info_of(this) };
        Ok(call_glue::read_result(py, &info.ctx, &info.result, ret)?.into_ptr())
    })
}

/// Drops the temporaries of one pointer argument (after the call, GIL held).
unsafe extern "C" fn jf_release_temp(keep: *mut c_void) {
    // A plain temporary buffer after a successful call: no Python object to release.
    // (On the error path the attach below also releases the references that the failed
    // conversion dropped while not attached.)
    if keep as usize & 1 == 1 && unsafe { ffi::PyErr_Occurred() }.is_null() {
        drop(unsafe { call_glue::Temp::from_raw(keep) });
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
        // Attached, so the `Py` references the temporaries hold are released now (raw
        // slots are not pyo3-attached: drops there would be deferred without bound).
        Python::attach(|_| drop(call_glue::Temp::from_raw(keep)));
    }));
}

unsafe extern "C" fn jf_box_none() -> *mut ffi::PyObject {
    unsafe {
        let none = ffi::Py_None();
        ffi::Py_IncRef(none);
        none
    }
}

/// Releases the GIL and puts the calling thread's saved errno in place for the callee.
unsafe extern "C" fn jf_release() -> *mut ffi::PyThreadState {
    unsafe {
        let ts = ffi::PyEval_SaveThread();
        super::ffi::restore_errno();
        ts
    }
}

unsafe extern "C" fn jf_reacquire(ts: *mut ffi::PyThreadState) {
    unsafe {
        super::ffi::save_errno();
        ffi::PyEval_RestoreThread(ts);
    }
}

/// Sets up a function's real entry point with `prepare` (which stores it in `ml_meth`:
/// CPython reads it at every call) and performs this call through it.
unsafe fn install_and_call(
    this: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    prepare: impl FnOnce(Python<'_>, *mut FuncObject) -> PyResult<()>,
) -> *mut ffi::PyObject {
    let py = unsafe { Python::assume_attached() };
    let f = this as *mut FuncObject;
    let entry = guard(py, None, || {
        prepare(py, f)?;
        Ok(Some(unsafe { (*f).def.ml_meth.PyCFunctionFast }))
    });
    match entry {
        Some(t) => unsafe { t(this, args, nargs) },
        None => std::ptr::null_mut(),
    }
}

/// The entry point of a function object until its first call has built its `FuncInfo`.
unsafe extern "C" fn jf_materialize_and_call(
    this: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    unsafe { install_and_call(this, args, nargs, |py, f| materialize(py, f).map(|_| ())) }
}

/// The entry point of a function whose shape was not compiled yet: compiles it.
unsafe extern "C" fn jf_compile_and_call(
    this: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
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

/// The entry point of variadic functions: the shape depends on the types of the cdata
/// passed in the variadic part, so it is looked up (compiled once) per call.
unsafe extern "C" fn jf_variadic_call(
    this: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    let py = unsafe { Python::assume_attached() };
    guard(py, std::ptr::null_mut(), || {
        let info = unsafe { info_of(this) };
        let nfixed = info.args.len();
        let n = nargs as usize;
        if n < nfixed {
            return Err(PyTypeError::new_err(format!(
                "'{}' expects at least {} arguments, got {}",
                info.display_name(),
                nfixed,
                n
            )));
        }
        let mut kinds = Vec::with_capacity(n - nfixed);
        for i in nfixed..n {
            let obj = unsafe { Bound::from_borrowed_ptr(py, *args.add(i)) };
            kinds.push(call_glue::vararg_scalar(py, &info.ctx, i, &obj)?);
        }
        let cached = info.vararg_cache.borrow().iter().find(|(k, _)| *k == kinds).map(|(_, t)| *t);
        let tramp = match cached {
            Some(t) => t,
            None => {
                let mut shapes = info.fixed_shapes.clone();
                let mut types = info.args.clone();
                for &scalar in &kinds {
                    shapes.push(ArgShape { scalar, conv: Conv::VarargCdata });
                    types.push(scalar_type(scalar));
                }
                let full = FuncSig { args: types, result: info.result.clone(), variadic: true, abi: CallConv::Default };
                let plan = crate::abi::lower(&full, &Target::host()).map_err(lowering_error)?;
                let shape = Shape { args: shapes, ret: info.ret_shape, release_gil: info.release_gil, plan };
                let t = compile_shape(&shape)?;
                let mut cache = info.vararg_cache.borrow_mut();
                if cache.len() >= 32 {
                    cache.remove(0);
                }
                cache.push((kinds, t));
                t
            }
        };
        // NULL comes back with the exception set by the trampoline.
        Ok(unsafe { tramp(this, args, nargs) })
    })
}

/// Number of compiled trampoline shapes and bytes of executable memory in use.
#[pyfunction]
fn _jit_stats(py: Python<'_>) -> PyResult<Py<pyo3::types::PyDict>> {
    let d = pyo3::types::PyDict::new(py);
    d.set_item("shapes", trampoline::SHAPES.len())?;
    d.set_item("code_bytes", crate::jit::execmem::bytes_used())?;
    Ok(d.unbind())
}

/// Calls a function-pointer cdata (installed as the CData call hook).
fn call_cdata<'py>(
    cd: &Bound<'py, super::cdata::CData>,
    args: &Bound<'py, pyo3::types::PyTuple>,
    kwargs: Option<&Bound<'py, pyo3::types::PyDict>>,
) -> PyResult<Py<PyAny>> {
    if kwargs.is_some_and(|k| !k.is_empty()) {
        return Err(PyTypeError::new_err("C functions take no keyword arguments"));
    }
    let py = cd.py();
    let c = cd.get();
    if c.addr == 0 {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
            "cannot call NULL function pointer '{}'",
            c.ty().cname()
        )));
    }
    let ffi = c.ctype.get().ffi.clone();
    let argv: Vec<Bound<'py, PyAny>> = args.iter().collect();
    call_function_pointer(py, c.ty(), c.addr, &ffi, &argv)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    super::cdata::set_call_hook(call_cdata);
    super::lib_object::register(m)?;
    m.add_function(wrap_pyfunction!(_jit_stats, m)?)?;
    Ok(())
}

//! The `FFI` object's Rust core: type lookups (`typeof`, `sizeof`, `offsetof`, ...) and the
//! cdata runtime (`new`, `cast`, `string`, `buffer`, `from_buffer`, `gc`, handles, ...).
//! `jitffi.FFI` (Python) subclasses it for the slow paths written in Python.

use std::cell::Cell;

use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};

use super::buffer::CBuffer;
use super::cdata::{self, CData, Owner};
use super::convert::{self, decode_wide, encode_wide, load_u64, write_array, write_sized};
use super::ctype::CType;
use super::errors::{cdef_err, VerificationMissing};
use super::longdouble;
use super::state::{builtin, FfiRef, FfiShared};
use crate::cdef::CdefOptions;
use crate::types::model::{Kind, PrimClass, TypeRef};

thread_local! {
    static SAVED_ERRNO: Cell<i32> = const { Cell::new(0) };
}

/// The errno value `ffi.errno` shows for this thread (saved after the last C call).
pub fn get_saved_errno() -> i32 {
    SAVED_ERRNO.with(|e| e.get())
}

/// Sets the value `ffi.errno` shows and the next C call starts with.
pub fn set_saved_errno(v: i32) {
    SAVED_ERRNO.with(|e| e.set(v))
}

/// Before a C call: C's errno ← the saved value (cffi restores it before each call).
pub fn restore_errno() {
    unsafe { *libc::__errno_location() = get_saved_errno() };
}

/// After a C call: saved value ← C's errno.
pub fn save_errno() {
    set_saved_errno(unsafe { *libc::__errno_location() });
}

#[pyclass(module = "jitffi._jitffi", name = "FFI", subclass, frozen)]
pub struct FFI {
    pub shared: FfiRef,
}

/// Resolves a `cdecl` argument: a type string (cached per FFI) or a CType.
pub fn resolve_ctype<'py>(shared: &FfiRef, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, CType>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return shared.parse_ctype(s);
    }
    if let Ok(ct) = obj.cast::<CType>() {
        return Ok(ct.clone());
    }
    Err(PyTypeError::new_err(format!("expected a cdecl string or a ctype object, got {}", convert::describe(obj))))
}

fn size_or_err(ty: &TypeRef) -> PyResult<usize> {
    if let Some(s) = ty.size() {
        return Ok(s);
    }
    if let Some(l) = ty.record_layout() {
        if l.partial {
            return Err(VerificationMissing::new_err(format!("'{}' has ... in its declaration: its layout is only known to a C compiler", ty.cname())));
        }
    }
    Err(PyValueError::new_err(format!("ctype '{}' is of unknown size", ty.cname())))
}

/// Bytes and item count of `new(ct, init)`.
fn new_size(ct: &CType, init: Option<&Bound<'_, PyAny>>) -> PyResult<(usize, usize)> {
    let ty = &ct.ty;
    match &ty.kind {
        Kind::Pointer(item) => {
            let Some(isz) = item.size() else {
                if let Some(l) = item.record_layout() {
                    if l.partial {
                        return Err(VerificationMissing::new_err(format!("'{}' has ... in its declaration", item.cname())));
                    }
                }
                return Err(PyTypeError::new_err(format!("cannot instantiate ctype '{}' of unknown size", item.cname())));
            };
            let mut size = isz;
            if let (Some(l), Some(init)) = (item.record_layout(), init) {
                if l.has_flexible_array {
                    if let Some(f) = l.fields.last() {
                        if let Kind::Array(fi, None) = &f.ty.kind {
                            let fisz = fi.size().unwrap_or(1);
                            let v = if let Ok(list) = init.cast::<PyList>() {
                                if list.len() == l.fields.len() { Some(list.get_item(l.fields.len() - 1)?) } else { None }
                            } else if let Ok(t) = init.cast::<PyTuple>() {
                                if t.len() == l.fields.len() { Some(t.get_item(l.fields.len() - 1)?) } else { None }
                            } else if let Ok(d) = init.cast::<PyDict>() {
                                d.get_item(&f.name)?
                            } else {
                                None
                            };
                            if let Some(v) = v {
                                let n = array_len_from_init(&f.ty, fi, &v)?;
                                let need = n
                                    .checked_mul(fisz)
                                    .and_then(|b| b.checked_add(f.offset))
                                    .filter(|b| *b <= isize::MAX as usize)
                                    .ok_or_else(|| PyMemoryError::new_err("array size would overflow a ssize_t"))?;
                                size = size.max(need);
                            }
                        }
                    }
                }
            }
            Ok((size, 0))
        }
        Kind::Array(item, len) => {
            let isz = size_or_err(item)?;
            let n = match len {
                Some(n) => *n,
                None => match init {
                    Some(i) => array_len_from_init(ty, item, i)?,
                    None => return Err(PyTypeError::new_err("expected new array length or list/tuple/str, not NoneType")),
                },
            };
            let size = n
                .checked_mul(isz)
                .filter(|b| *b <= isize::MAX as usize)
                .ok_or_else(|| PyMemoryError::new_err("array size would overflow a ssize_t"))?;
            Ok((size, n))
        }
        _ => Err(PyTypeError::new_err(format!("expected a pointer or array ctype, got '{}'", ty.cname()))),
    }
}

/// Length of a `T[]` created from `init`: an int, a list/tuple, bytes (+1 for the NUL of a
/// char array) or str (+1, in code units, for wide-char arrays).
fn array_len_from_init(arr_ty: &TypeRef, item: &TypeRef, init: &Bound<'_, PyAny>) -> PyResult<usize> {
    if unsafe { ffi::PyLong_Check(init.as_ptr()) } != 0 {
        let n: i64 = init.extract()?;
        if n < 0 {
            return Err(PyValueError::new_err("negative array length"));
        }
        return Ok(n as usize);
    }
    if let Ok(l) = init.cast::<PyList>() {
        return Ok(l.len());
    }
    if let Ok(t) = init.cast::<PyTuple>() {
        return Ok(t.len());
    }
    let (is_char, wide) = match &item.kind {
        Kind::Prim(pi) => (convert::is_byte_item(item), if pi.class == PrimClass::WideChar { Some(pi.size) } else { None }),
        _ => (false, None),
    };
    if let Ok(b) = init.cast::<PyBytes>() {
        if is_char {
            return Ok(b.as_bytes().len() + 1);
        }
    }
    if let Ok(s) = init.cast::<PyString>() {
        if let Some(sz) = wide {
            return Ok(encode_wide(s, sz)?.len() + 1);
        }
    }
    if init.is_instance_of::<PyString>() || init.is_instance_of::<PyBytes>() {
        return Err(convert::array_init_type_error(arr_ty, item, init));
    }
    Err(PyTypeError::new_err(format!("expected new array length or list/tuple/str, not {}", convert::describe(init))))
}

/// `ffi.new` and allocator calls: allocate, wrap in an owning cdata (so an initializer
/// error frees the memory through the cdata's release), then initialize.
pub fn new_cdata(py: Python<'_>, ct: &Bound<'_, CType>, init: Option<&Bound<'_, PyAny>>, alloc: Option<&Allocator>) -> PyResult<Py<CData>> {
    let c = ct.get();
    let init = init.filter(|i| !i.is_none());
    // `new("T[]", n)` with a plain int: zeroed memory, nothing to initialize.
    if let (Kind::Array(item, None), Some(i), None) = (&c.ty.kind, init, alloc) {
        if unsafe { ffi::PyLong_CheckExact(i.as_ptr()) } != 0 {
            let n = unsafe { ffi::PyLong_AsSsize_t(i.as_ptr()) };
            if n >= 0 {
                if let Some(size) = item.size().and_then(|isz| isz.checked_mul(n as usize)).filter(|b| *b <= isize::MAX as usize) {
                    return CData::new_owned_zeroed(py, ct.clone().unbind(), size, n as usize);
                }
            } else if n == -1 {
                unsafe { ffi::PyErr_Clear() }; // the generic path below raises the right error
            }
        }
    }
    let (size, length) = match c.fixed_new_size() {
        Some(v) => v,
        None => new_size(c, init)?,
    };
    let cd = match alloc {
        Some(a) if a.alloc.is_some() => {
            let f = a.alloc.as_ref().map(|f| f.bind(py)).ok_or_else(|| PyTypeError::new_err("no alloc"))?;
            let res = f.call1((size,))?;
            let addr = match res.cast::<CData>() {
                Ok(cd) => match cd.get().ty().kind {
                    Kind::Pointer(_) | Kind::Array(..) => cd.get().addr,
                    _ => return Err(PyTypeError::new_err(format!("alloc() must return a cdata pointer, not {}", convert::describe(&res)))),
                },
                Err(_) => return Err(PyTypeError::new_err(format!("alloc() must return a cdata pointer, not {}", convert::describe(&res)))),
            };
            if addr == 0 {
                return Err(PyMemoryError::new_err("alloc() returned NULL"));
            }
            if a.clear {
                unsafe { std::ptr::write_bytes(addr as *mut u8, 0, size) };
            }
            let owner = Owner::Allocator { free: a.free.as_ref().map(|f| f.clone_ref(py)), alloc_result: res.unbind() };
            CData::new_owning(py, ct.clone().unbind(), addr, length, size, owner)?
        }
        _ => CData::new_owned_zeroed(py, ct.clone().unbind(), size, length)?,
    };
    let addr = cd.get().addr;
    if let Some(init) = init {
        let mem = addr as *mut u8;
        let r = unsafe {
            match &c.ty.kind {
                Kind::Pointer(item) => write_sized(item, init, mem, size),
                Kind::Array(item, _) => {
                    if ffi::PyLong_Check(init.as_ptr()) != 0 && matches!(c.ty.kind, Kind::Array(_, None)) {
                        Ok(())
                    } else {
                        write_array(&c.ty, item, length, init, mem)
                    }
                }
                _ => Ok(()),
            }
        };
        if let Err(e) = r {
            // frees now (the cdata is dropped right after too, but be explicit)
            cd.get().release_now(py)?;
            return Err(e);
        }
    }
    Ok(cd)
}

/// `ffi.cast(ct, value)`.
pub fn cast_value(py: Python<'_>, ct: &Bound<'_, CType>, value: &Bound<'_, PyAny>) -> PyResult<Py<CData>> {
    // A function taken from a lib is, for cffi's ABI mode, a function-pointer cdata.
    if let Some(fp) = super::function::lib_function_cdata(py, value)? {
        return cast_value(py, ct, fp.bind(py));
    }
    let c = ct.get();
    let ty = &c.ty;
    let int_src = |v: &Bound<'_, PyAny>| -> PyResult<u64> {
        unsafe {
            let p = v.as_ptr();
            if ffi::PyLong_Check(p) != 0 {
                let r = ffi::PyLong_AsUnsignedLongLongMask(p);
                if r == u64::MAX {
                    if let Some(e) = PyErr::take(py) {
                        return Err(e);
                    }
                }
                return Ok(r);
            }
        }
        if let Ok(cd) = v.cast::<CData>() {
            if let Some(x) = cd.get().cast_int_source() {
                return Ok(x as u64);
            }
        }
        if let Ok(b) = v.cast::<PyBytes>() {
            if b.as_bytes().len() == 1 {
                return Ok(b.as_bytes()[0] as u64);
            }
        }
        if let Ok(s) = v.cast::<PyString>() {
            let n = unsafe { ffi::PyUnicode_GetLength(s.as_ptr()) };
            if n == 1 {
                return Ok(unsafe { ffi::PyUnicode_ReadChar(s.as_ptr(), 0) } as u64);
            }
        }
        if unsafe { ffi::PyFloat_Check(v.as_ptr()) } != 0 {
            let f: f64 = v.extract()?;
            return Ok(if f < 0.0 { (f as i64) as u64 } else { f as u64 });
        }
        if v.hasattr("__index__")? {
            let i = v.call_method0("__index__")?;
            let r = unsafe { ffi::PyLong_AsUnsignedLongLongMask(i.as_ptr()) };
            return Ok(r);
        }
        Err(PyTypeError::new_err("an integer is required"))
    };
    match &ty.kind {
        Kind::Prim(pi) => {
            let mut bytes = [0u8; 16];
            let dst = bytes.as_mut_ptr();
            match pi.class {
                PrimClass::SignedInt | PrimClass::UnsignedInt | PrimClass::Char | PrimClass::WideChar => unsafe {
                    convert::store_u64(dst, pi.size, int_src(value)?)
                },
                PrimClass::Bool => {
                    let nz = if let Ok(f) = value.cast::<pyo3::types::PyFloat>() {
                        f.value() != 0.0
                    } else if unsafe { ffi::PyLong_Check(value.as_ptr()) } != 0 {
                        value.is_truthy()?
                    } else {
                        int_src(value)? != 0
                    };
                    bytes[0] = nz as u8;
                }
                PrimClass::Float => {
                    let f = cast_float_source(value)?;
                    unsafe { convert::store_f64(dst, pi.size, f) }
                }
                PrimClass::LongDouble => {
                    bytes = if let Ok(cd) = value.cast::<CData>().map(|c| c.get()) {
                        if matches!(&cd.ty().kind, Kind::Prim(p) if p.class == PrimClass::LongDouble) {
                            *cd.value_bytes()
                        } else {
                            longdouble::from_f64(&c.ffi.target, cast_float_source(value)?)
                        }
                    } else {
                        longdouble::from_f64(&c.ffi.target, cast_float_source(value)?)
                    };
                }
                PrimClass::Complex => {
                    let (re, im) = if let Ok(cd) = value.cast::<CData>() {
                        match cd.get().float_value() {
                            Some(f) => (f, 0.0),
                            None => match cd.get().int_value() {
                                Some(i) => (i as f64, 0.0),
                                None => convert::py_to_complex(value)?,
                            },
                        }
                    } else {
                        convert::py_to_complex(value)?
                    };
                    let h = pi.size / 2;
                    unsafe {
                        convert::store_f64(dst, h, re);
                        convert::store_f64(dst.add(h), h, im);
                    }
                }
            }
            CData::new_value(py, ct.clone().unbind(), &bytes)
        }
        Kind::Enum(e) => {
            let pi = e.underlying_info();
            let mut bytes = [0u8; 16];
            unsafe { convert::store_u64(bytes.as_mut_ptr(), pi.size, int_src(value)?) };
            CData::new_value(py, ct.clone().unbind(), &bytes)
        }
        Kind::Pointer(_) | Kind::FuncPtr(_) => {
            let addr = if let Ok(cd) = value.cast::<CData>() {
                let c2 = cd.get();
                match &c2.ty().kind {
                    Kind::Array(..) | Kind::Record(_) => c2.data_addr(py)?,
                    _ => match c2.cast_int_source() {
                        Some(v) => v as u64 as usize,
                        None => return Err(PyTypeError::new_err(format!("cannot cast {} to '{}'", convert::describe(value), ty.cname()))),
                    },
                }
            } else if unsafe { ffi::PyFloat_Check(value.as_ptr()) } != 0 {
                let f: f64 = value.extract()?;
                f as i64 as usize
            } else {
                int_src(value)? as usize
            };
            Ok(CData::new_pointer(py, ct.clone().unbind(), addr)?)
        }
        Kind::Array(_, len) => {
            let addr = if let Ok(cd) = value.cast::<CData>() {
                let c2 = cd.get();
                match &c2.ty().kind {
                    Kind::Array(..) => c2.data_addr(py)?,
                    Kind::Pointer(_) | Kind::FuncPtr(_) => c2.addr,
                    _ => return Err(PyTypeError::new_err(format!("cannot cast {} to '{}'", convert::describe(value), ty.cname()))),
                }
            } else {
                int_src(value)? as usize
            };
            CData::new_view(py, ct.clone().unbind(), addr, len.unwrap_or(0), None, 0)
        }
        _ => Err(PyTypeError::new_err(format!("cannot cast to ctype '{}'", ty.cname()))),
    }
}

fn cast_float_source(v: &Bound<'_, PyAny>) -> PyResult<f64> {
    if let Ok(cd) = v.cast::<CData>() {
        let c = cd.get();
        if let Some(f) = c.float_value() {
            return Ok(f);
        }
        if let Some(i) = c.int_value() {
            return Ok(i as f64);
        }
        return Err(PyTypeError::new_err(format!("cannot cast {} to a float type", convert::describe(v))));
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        if b.as_bytes().len() == 1 {
            return Ok(b.as_bytes()[0] as f64);
        }
    }
    convert::py_to_f64(v)
}

fn char_like(item: &TypeRef) -> Option<(bool, usize)> {
    // (is_wide, unit size) for items ffi.string/unpack turn into bytes/str
    match &item.kind {
        Kind::Prim(pi) => match pi.class {
            PrimClass::Char => Some((false, 1)),
            PrimClass::SignedInt | PrimClass::UnsignedInt if pi.size == 1 => Some((false, 1)),
            PrimClass::WideChar => Some((true, pi.size)),
            _ => None,
        },
        _ => None,
    }
}

fn as_cdata<'a, 'py>(obj: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, CData>> {
    obj.cast::<CData>().map_err(|_| PyTypeError::new_err(format!("expected a 'cdata' object, got {}", convert::describe(obj))))
}

/// `ffi.string(cdata, maxlen)`.
pub fn string_of(py: Python<'_>, obj: &Bound<'_, PyAny>, maxlen: isize) -> PyResult<Py<PyAny>> {
    let cd = as_cdata(obj)?;
    let c = cd.get();
    let ty = c.ty();
    match &ty.kind {
        Kind::Prim(pi) if matches!(pi.class, PrimClass::Char | PrimClass::WideChar) => unsafe {
            convert::read_prim(py, &c.ctype.get().ffi, ty, pi, c.value_bytes().as_ptr())
        },
        Kind::Enum(e) => {
            let v = c.int_value().unwrap_or(0);
            match e.items.iter().find(|(_, x)| *x == v) {
                Some((n, _)) => Ok(PyString::new(py, n).into_any().unbind()),
                None => Ok(PyString::new(py, &v.to_string()).into_any().unbind()),
            }
        }
        Kind::Pointer(item) | Kind::Array(item, _) => {
            let Some((wide, usz)) = char_like(item) else {
                return Err(PyTypeError::new_err(format!("string(): unexpected cdata '{}' argument", ty.cname())));
            };
            let base = c.data_addr(py)?;
            let is_array = matches!(ty.kind, Kind::Array(..));
            if cdata::invalid_addr(base) {
                return Err(PyRuntimeError::new_err(format!("cannot use string() on {}", c.repr_string(py)?)));
            }
            // an owning pointer (from `new`) never reads past its allocation
            let mut limit = if is_array {
                c.length
            } else if c.alloc_size > 0 {
                c.alloc_size / usz
            } else {
                usize::MAX
            };
            if maxlen >= 0 {
                limit = limit.min(maxlen as usize);
            }
            let p = base as *const u8;
            let mut n = 0usize;
            unsafe {
                if !wide {
                    let scan = if limit == usize::MAX { libc::strlen(p as *const libc::c_char) } else { libc::strnlen(p as *const libc::c_char, limit) };
                    n = scan;
                } else {
                    while n < limit && load_u64(p.add(n * usz), usz) != 0 {
                        n += 1;
                    }
                }
                if !wide {
                    Ok(PyBytes::new(py, std::slice::from_raw_parts(p, n)).into_any().unbind())
                } else {
                    let units: Vec<u32> = (0..n).map(|i| load_u64(p.add(i * usz), usz) as u32).collect();
                    decode_wide(py, &units, usz)
                }
            }
        }
        _ => Err(PyTypeError::new_err(format!("string(): unexpected cdata '{}' argument", ty.cname()))),
    }
}

/// `ffi.unpack(cdata, length)`.
pub fn unpack_of(py: Python<'_>, obj: &Bound<'_, PyAny>, length: isize) -> PyResult<Py<PyAny>> {
    let cd = as_cdata(obj)?;
    let c = cd.get();
    let ty = c.ty();
    let item = match &ty.kind {
        Kind::Pointer(i) | Kind::Array(i, _) => i.clone(),
        _ => return Err(PyTypeError::new_err(format!("expected a pointer or array, got '{}'", ty.cname()))),
    };
    if length < 0 {
        return Err(PyValueError::new_err("'length' cannot be negative"));
    }
    let n = length as usize;
    let base = c.data_addr(py)?;
    if base == 0 || (cdata::invalid_addr(base) && n > 0) {
        return Err(PyRuntimeError::new_err(format!("cannot use unpack() on {}", c.repr_string(py)?)));
    }
    let p = base as *const u8;
    if let Some((wide, usz)) = char_like(&item) {
        if matches!(&item.kind, Kind::Prim(pi) if pi.class == PrimClass::Char) || wide {
            unsafe {
                if !wide {
                    return Ok(PyBytes::new(py, std::slice::from_raw_parts(p, n)).into_any().unbind());
                }
                let units: Vec<u32> = (0..n).map(|i| load_u64(p.add(i * usz), usz) as u32).collect();
                return decode_wide(py, &units, usz);
            }
        }
    }
    let isz = size_or_err(&item)?;
    let ict = c.ctype.get().ffi.ctype_of(py, &item);
    let keeper = CData::keeper_for(cd);
    let out = PyList::empty(py);
    for i in 0..n {
        let v = unsafe { convert::read_with_ctype(py, ict.get(), &ict, p.add(i * isz), keeper.as_ref().map(|k| k.clone_ref(py)))? };
        out.append(v)?;
    }
    Ok(out.into_any().unbind())
}

/// The allocator object `ffi.new_allocator(...)` returns: call it like `ffi.new`.
#[pyclass(module = "jitffi._jitffi", name = "Allocator", frozen)]
pub struct Allocator {
    ffi: FfiRef,
    pub alloc: Option<Py<PyAny>>,
    pub free: Option<Py<PyAny>>,
    pub clear: bool,
}

#[pymethods]
impl Allocator {
    #[pyo3(signature = (cdecl, init=None))]
    fn __call__(&self, py: Python<'_>, cdecl: &Bound<'_, PyAny>, init: Option<&Bound<'_, PyAny>>) -> PyResult<Py<CData>> {
        let ct = resolve_ctype(&self.ffi, cdecl)?;
        new_cdata(py, &ct, init, Some(self))
    }
}

fn buffer_ptr(obj: &Bound<'_, PyAny>, writable: bool) -> PyResult<(Box<ffi::Py_buffer>, usize, usize)> {
    let mut view: Box<ffi::Py_buffer> = Box::new(unsafe { std::mem::zeroed() });
    let flags = if writable { ffi::PyBUF_WRITABLE } else { ffi::PyBUF_SIMPLE };
    let rc = unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), &mut *view, flags) };
    if rc != 0 {
        return Err(PyErr::fetch(obj.py()));
    }
    let (p, n) = (view.buf as usize, view.len as usize);
    Ok((view, p, n))
}

/// Which field/index path `offsetof`/`addressof` follow: (final type, byte offset).
fn walk_path(py: Python<'_>, start: &TypeRef, path: &Bound<'_, PyTuple>, allow_ptr_first: bool) -> PyResult<(TypeRef, usize)> {
    let _ = py;
    let mut ty = start.clone();
    let mut off = 0usize;
    for (i, step) in path.iter().enumerate() {
        if let Ok(name) = step.cast::<PyString>() {
            let mut rec = ty.clone();
            if i == 0 && allow_ptr_first {
                if let Kind::Pointer(item) = &ty.kind {
                    if matches!(item.kind, Kind::Record(_)) {
                        rec = item.clone();
                    }
                }
            }
            let Kind::Record(_) = &rec.kind else {
                return Err(PyTypeError::new_err(format!("expected a struct or union ctype, got '{}'", rec.cname())));
            };
            let Some(layout) = rec.record_layout() else {
                return Err(PyTypeError::new_err(format!("struct or union '{}' is opaque", rec.cname())));
            };
            let name = name.to_str()?;
            let Some(f) = layout.fields.iter().find(|f| f.name == name) else {
                return Err(pyo3::exceptions::PyKeyError::new_err(name.to_string()));
            };
            if f.bitsize >= 0 {
                return Err(PyTypeError::new_err("not supported for bitfields"));
            }
            off += f.offset;
            ty = f.ty.clone();
        } else {
            let idx: isize = step.extract().map_err(|_| PyTypeError::new_err("expected a field name (str) or an index (int)"))?;
            let item = match &ty.kind {
                Kind::Array(item, _) => item.clone(),
                Kind::Pointer(item) if i == 0 => item.clone(),
                _ => return Err(PyTypeError::new_err(format!("expected an array or pointer ctype, got '{}'", ty.cname()))),
            };
            let isz = size_or_err(&item)?;
            off = (off as isize).wrapping_add(idx.wrapping_mul(isz as isize)) as usize;
            ty = item;
        }
    }
    Ok((ty, off))
}

#[pymethods]
impl FFI {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(py: Python<'_>, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> FFI {
        FFI { shared: FfiShared::new(py) }
    }

    #[pyo3(signature = (csource, r#override=false, packed=false, pack=None))]
    fn cdef(&self, py: Python<'_>, csource: &Bound<'_, PyAny>, r#override: bool, packed: bool, pack: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let src = csource
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err(format!("cdef() argument must be a string, not {}", convert::describe(csource))))?;
        let pack = match pack {
            None => None,
            Some(p) if p.is_none() => None,
            Some(p) => {
                let n: i64 = p.extract()?;
                if n <= 0 || (n & (n - 1)) != 0 {
                    return Err(PyValueError::new_err(format!("'pack' must be a power of two, not {n}")));
                }
                Some(n as u32)
            }
        };
        if packed && pack.is_some_and(|p| p != 1) {
            return Err(PyValueError::new_err("'packed' should be False if 'pack' is given"));
        }
        let opts = CdefOptions { override_: r#override, packed, pack: if packed { Some(1) } else { pack } };
        let text = src.to_str()?.to_string();
        let r = {
            let mut ns = self.shared.lock_ns();
            ns.cdef(&text, &opts)
        };
        self.shared.clear_type_cache(py);
        r.map_err(cdef_err)
    }

    #[pyo3(name = "typeof")]
    fn typeof_<'py>(&self, cdecl: &Bound<'py, PyAny>) -> PyResult<Bound<'py, CType>> {
        if let Ok(cd) = cdecl.cast::<CData>() {
            return Ok(cd.get().ctype.bind(cdecl.py()).clone());
        }
        if cdecl.is_instance_of::<PyString>() {
            return resolve_ctype(&self.shared, cdecl);
        }
        if let Ok(ct) = cdecl.cast::<CType>() {
            return Ok(ct.clone());
        }
        // A function taken from a lib: cffi's ABI mode gives a function-pointer cdata.
        if let Some((_, fn_type)) = super::function::function_address(cdecl) {
            return Ok(self.shared.ctype_of(cdecl.py(), &fn_type).into_bound(cdecl.py()));
        }
        Err(PyTypeError::new_err(format!("{}", cdecl.get_type().repr()?)))
    }

    fn sizeof(&self, py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
        if let Ok(cd) = obj.cast::<CData>() {
            let c = cd.get();
            return match &c.ty().kind {
                Kind::Array(item, _) => Ok(c.length * item.size().unwrap_or(0)),
                Kind::Record(_) => {
                    let base = size_or_err(c.ty())?;
                    let vs = if c.alloc_size > 0 {
                        c.alloc_size
                    } else if let Owner::View(k) = &c.state.get(py).owner {
                        if c.flags & cdata::F_OWNING_VIEW != 0 { k.get().alloc_size } else { 0 }
                    } else {
                        0
                    };
                    Ok(base.max(vs))
                }
                _ => size_or_err(c.ty()),
            };
        }
        if obj.is_instance_of::<PyString>() || obj.is_instance_of::<CType>() {
            let ct = resolve_ctype(&self.shared, obj)?;
            return size_or_err(&ct.get().ty);
        }
        Err(PyTypeError::new_err("expected a 'cdata' or 'ctype' object"))
    }

    fn alignof(&self, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
        let ct = match obj.cast::<CData>() {
            Ok(cd) => cd.get().ctype.bind(obj.py()).clone(),
            Err(_) => resolve_ctype(&self.shared, obj)?,
        };
        let ty = &ct.get().ty;
        ty.align().ok_or_else(|| PyValueError::new_err(format!("ctype '{}' is of unknown alignment", ty.cname())))
    }

    #[pyo3(signature = (cdecl, *fields_or_indexes))]
    fn offsetof(&self, py: Python<'_>, cdecl: &Bound<'_, PyAny>, fields_or_indexes: &Bound<'_, PyTuple>) -> PyResult<usize> {
        let ct = resolve_ctype(&self.shared, cdecl)?;
        if fields_or_indexes.is_empty() {
            return Err(PyTypeError::new_err("offsetof() expects at least 2 arguments"));
        }
        Ok(walk_path(py, &ct.get().ty, fields_or_indexes, true)?.1)
    }

    #[pyo3(signature = (cdecl, replace_with=""))]
    fn getctype(&self, cdecl: &Bound<'_, PyAny>, replace_with: &str) -> PyResult<String> {
        let ct = resolve_ctype(&self.shared, cdecl)?;
        let ty = &ct.get().ty;
        let mut r = replace_with.trim().to_string();
        if r.starts_with('*') && ty.cname_template.contains("&[") {
            r = format!("({r})");
        } else if !r.is_empty() && !r.starts_with('[') && !r.starts_with('(') {
            r = format!(" {r}");
        }
        Ok(ty.cname_with(&r))
    }

    fn list_types(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        self.shared.lock_ns().list_types()
    }

    fn include(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<()> {
        let Ok(o) = other.cast::<FFI>() else {
            return Err(PyTypeError::new_err(format!("ffi.include() expects an argument that is also of type cffi.FFI, not {}", convert::describe(other))));
        };
        let o = o.get();
        if std::sync::Arc::ptr_eq(&o.shared, &self.shared) {
            return Err(PyValueError::new_err("self.include(self)"));
        }
        let r = {
            let other_ns = o.shared.lock_ns();
            let mut ns = self.shared.lock_ns();
            ns.include(&other_ns)
        };
        self.shared.clear_type_cache(py);
        r.map_err(cdef_err)
    }

    #[pyo3(signature = (cdecl, init=None))]
    fn new(&self, py: Python<'_>, cdecl: &Bound<'_, PyAny>, init: Option<&Bound<'_, PyAny>>) -> PyResult<Py<CData>> {
        let ct = resolve_ctype(&self.shared, cdecl)?;
        new_cdata(py, &ct, init, None)
    }

    #[pyo3(signature = (alloc=None, free=None, should_clear_after_alloc=true))]
    fn new_allocator(&self, alloc: Option<Py<PyAny>>, free: Option<Py<PyAny>>, should_clear_after_alloc: bool, py: Python<'_>) -> PyResult<Allocator> {
        let alloc = alloc.filter(|a| !a.is_none(py));
        let free = free.filter(|f| !f.is_none(py));
        if alloc.is_none() && free.is_some() {
            return Err(PyTypeError::new_err("cannot pass 'free' without 'alloc'"));
        }
        Ok(Allocator { ffi: self.shared.clone(), alloc, free, clear: should_clear_after_alloc })
    }

    fn cast(&self, py: Python<'_>, cdecl: &Bound<'_, PyAny>, source: &Bound<'_, PyAny>) -> PyResult<Py<CData>> {
        let ct = resolve_ctype(&self.shared, cdecl)?;
        cast_value(py, &ct, source)
    }

    #[pyo3(signature = (cdata, maxlen=-1))]
    fn string(&self, py: Python<'_>, cdata: &Bound<'_, PyAny>, maxlen: isize) -> PyResult<Py<PyAny>> {
        string_of(py, cdata, maxlen)
    }

    fn unpack(&self, py: Python<'_>, cdata: &Bound<'_, PyAny>, length: isize) -> PyResult<Py<PyAny>> {
        unpack_of(py, cdata, length)
    }

    #[pyo3(signature = (cdecl, python_buffer=None, require_writable=false))]
    fn from_buffer(&self, py: Python<'_>, cdecl: &Bound<'_, PyAny>, python_buffer: Option<&Bound<'_, PyAny>>, require_writable: bool) -> PyResult<Py<CData>> {
        let (ct, obj) = match python_buffer {
            Some(b) => (resolve_ctype(&self.shared, cdecl)?, b.clone()),
            None => (self.shared.parse_ctype(&PyString::new(py, "char[]"))?, cdecl.clone()),
        };
        if obj.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err("from_buffer() cannot return the address of a unicode object"));
        }
        let c = ct.get();
        let type_name = obj.get_type().name()?.to_string();
        let (view, addr, len) = buffer_ptr(&obj, require_writable)?;
        let length = match &c.ty.kind {
            Kind::Array(item, n) => {
                let isz = size_or_err(item)?.max(1);
                match n {
                    Some(n) => {
                        if n.saturating_mul(isz) > len {
                            let mut view = view;
                            unsafe { ffi::PyBuffer_Release(&mut *view) };
                            return Err(PyValueError::new_err(format!(
                                "buffer is too small ({len} bytes) for '{}' ({} bytes)",
                                c.ty.cname(),
                                n.saturating_mul(isz)
                            )));
                        }
                        *n
                    }
                    None => len / isz,
                }
            }
            Kind::Pointer(_) => 0,
            _ => {
                let mut view = view;
                unsafe { ffi::PyBuffer_Release(&mut *view) };
                return Err(PyTypeError::new_err(format!("expected a pointer or array ctype, got '{}'", c.ty.cname())));
            }
        };
        CData::new_owning(py, ct.clone().unbind(), addr, length, len, Owner::Buffer { view: cdata::BufferView(view), type_name: type_name.into() })
    }

    fn memmove(&self, py: Python<'_>, dest: &Bound<'_, PyAny>, src: &Bound<'_, PyAny>, n: isize) -> PyResult<()> {
        if n < 0 {
            return Err(PyValueError::new_err("negative size"));
        }
        let mut views = Vec::new();
        let mut addr_of = |o: &Bound<'_, PyAny>, writable: bool| -> PyResult<usize> {
            if let Ok(cd) = o.cast::<CData>() {
                let c = cd.get();
                return match &c.ty().kind {
                    Kind::Pointer(_) | Kind::Array(..) => {
                        let a = c.data_addr(py)?;
                        if cdata::invalid_addr(a) && n > 0 {
                            return Err(PyRuntimeError::new_err(format!("cannot use memmove() on {}", c.repr_string(py)?)));
                        }
                        Ok(a)
                    }
                    _ => Err(PyTypeError::new_err(format!("expected a pointer or array cdata, got cdata '{}'", c.ty().cname()))),
                };
            }
            let (v, a, _) = buffer_ptr(o, writable)?;
            views.push(v);
            Ok(a)
        };
        let d = addr_of(dest, true);
        let s = addr_of(src, false);
        let r = match (d, s) {
            (Ok(d), Ok(s)) => {
                if n > 0 {
                    unsafe { std::ptr::copy(s as *const u8, d as *mut u8, n as usize) };
                }
                Ok(())
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        for mut v in views {
            unsafe { ffi::PyBuffer_Release(&mut *v) };
        }
        r
    }

    #[pyo3(signature = (cdata, destructor, size=0))]
    fn gc(&self, py: Python<'_>, cdata: &Bound<'_, PyAny>, destructor: &Bound<'_, PyAny>, size: isize) -> PyResult<Py<PyAny>> {
        let _ = size;
        let cd = as_cdata(cdata)?;
        let c = cd.get();
        if destructor.is_none() {
            if c.detach_destructor(py) {
                return Ok(cdata.clone().unbind());
            }
            return Err(PyTypeError::new_err("Can remove destructor only on a object previously returned by ffi.gc()"));
        }
        let owner = Owner::Gc { orig: cdata.clone().unbind(), destructor: Some(destructor.clone().unbind()) };
        Ok(CData::new_owning(py, c.ctype.clone_ref(py), c.addr, c.length, 0, owner)?.into_any())
    }

    #[pyo3(signature = (cdata, *fields_or_indexes))]
    fn addressof(&self, py: Python<'_>, cdata: &Bound<'_, PyAny>, fields_or_indexes: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let Ok(cd) = cdata.cast::<CData>() else {
            if let Some(lib) = super::lib_object::lib_state(cdata) {
                let name: String = match fields_or_indexes.len() {
                    1 => fields_or_indexes.get_item(0)?.extract()?,
                    n => return Err(PyTypeError::new_err(format!("addressof(lib, name) takes one name, got {n}"))),
                };
                return super::lib_object::addressof_lib(py, &lib, &name);
            }
            return Err(PyTypeError::new_err(format!("expected a cdata struct/union/array object, got {}", convert::describe(cdata))));
        };
        let c = cd.get();
        if !matches!(c.ty().kind, Kind::Record(_) | Kind::Array(..)) {
            return Err(PyTypeError::new_err("addressof(pointer)"));
        }
        let base = c.data_addr(py)?;
        let (ty, off) = walk_path(py, c.ty(), fields_or_indexes, false)?;
        let pty = self.shared.pointer_to(&ty);
        let pct = self.shared.ctype_of(py, &pty);
        let owner = match CData::keeper_for(cd) {
            Some(k) => Owner::View(k),
            None => Owner::None,
        };
        Ok(CData::new_owning(py, pct, base + off, 0, 0, owner)?.into_any())
    }

    fn new_handle(&self, py: Python<'_>, x: Py<PyAny>) -> PyResult<Py<CData>> {
        let t = self.shared.void_ptr_type();
        let ct = self.shared.ctype_of(py, &t);
        cdata::new_handle(py, ct, x)
    }

    fn from_handle(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let cd = x.cast::<CData>().map_err(|_| PyTypeError::new_err("expected a 'cdata' object"))?;
        let c = cd.get();
        if !matches!(c.ty().kind, Kind::Pointer(_)) {
            return Err(PyTypeError::new_err(format!("expected a pointer cdata, got cdata '{}'", c.ty().cname())));
        }
        cdata::from_handle(py, c.addr)
    }

    fn release(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let cd = as_cdata(x)?;
        let c = cd.get();
        if !c.owns_memory(py) && !matches!(c.state.get(py).owner, Owner::Handle) && !c.is_released(py) {
            return Err(PyValueError::new_err(
                "only 'cdata' object from ffi.new(), ffi.gc(), ffi.from_buffer() or ffi.new_allocator()() can be used with the 'with' keyword or ffi.release()",
            ));
        }
        c.release_now(py)
    }

    #[getter]
    fn get_errno(&self) -> i32 {
        get_saved_errno()
    }

    #[setter]
    fn set_errno(&self, v: i32) {
        set_saved_errno(v)
    }

    #[classattr]
    #[allow(non_snake_case)]
    fn NULL(py: Python<'_>) -> PyResult<Py<CData>> {
        let b = builtin(py);
        let t = b.void_ptr_type();
        CData::new_pointer(py, b.ctype_of(py, &t), 0)
    }

    #[classattr]
    #[allow(non_snake_case)]
    fn CData(py: Python<'_>) -> Py<PyType> {
        py.get_type::<CData>().unbind()
    }

    #[classattr]
    #[allow(non_snake_case)]
    fn CType(py: Python<'_>) -> Py<PyType> {
        py.get_type::<CType>().unbind()
    }

    #[classattr]
    fn buffer(py: Python<'_>) -> Py<PyType> {
        py.get_type::<CBuffer>().unbind()
    }

    #[classattr]
    const RTLD_LAZY: i32 = libc::RTLD_LAZY;
    #[classattr]
    const RTLD_NOW: i32 = libc::RTLD_NOW;
    #[classattr]
    const RTLD_GLOBAL: i32 = libc::RTLD_GLOBAL;
    #[classattr]
    const RTLD_LOCAL: i32 = libc::RTLD_LOCAL;
    #[classattr]
    const RTLD_NODELETE: i32 = libc::RTLD_NODELETE;
    #[classattr]
    const RTLD_NOLOAD: i32 = libc::RTLD_NOLOAD;
    #[classattr]
    const RTLD_DEEPBIND: i32 = libc::RTLD_DEEPBIND;
}

impl Drop for FFI {
    fn drop(&mut self) {
        // SAFETY: pyclass objects are dropped from tp_dealloc, with the GIL held.
        let py = unsafe { Python::assume_attached() };
        self.shared.clear_caches(py);
    }
}

impl FFI {
    /// The FFI state (for the calls/callbacks code).
    pub fn shared(&self) -> &FfiRef {
        &self.shared
    }
}

// ---------------------------------------------------------------------------------------
// Fast METH_FASTCALL entry points for the hottest FFI methods. The common call shape
// (positional args, a type string already in the per-FFI cache) is handled directly;
// anything else goes to the pyo3-generated method (kept as the fallback), so behaviour
// and error messages are identical.

use std::ffi::CStr;
use std::sync::OnceLock;

struct FastFallbacks {
    new: Py<PyAny>,
    cast: Py<PyAny>,
    string: Py<PyAny>,
}

static FAST_FALLBACKS: OnceLock<FastFallbacks> = OnceLock::new();

unsafe fn call_fallback(
    py: Python<'_>,
    f: &Py<PyAny>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let nkw = if kwnames.is_null() { 0 } else { ffi::PyTuple_GET_SIZE(kwnames) };
    let mut v: Vec<*mut ffi::PyObject> = Vec::with_capacity((nargs + nkw + 1) as usize);
    v.push(slf);
    for i in 0..(nargs + nkw) {
        v.push(*args.add(i as usize));
    }
    let _ = py;
    ffi::PyObject_Vectorcall(f.as_ptr(), v.as_ptr(), (nargs + 1) as usize, kwnames)
}

/// The cached CType for a type-string argument, without parsing (None on a miss).
#[inline]
unsafe fn cached_ctype<'py>(py: Python<'py>, slf: *mut ffi::PyObject, cdecl: *mut ffi::PyObject) -> Option<Bound<'py, CType>> {
    if ffi::PyUnicode_CheckExact(cdecl) == 0 {
        return None;
    }
    let me = Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<FFI>();
    let shared = &me.get().shared;
    // Same string object as last time (it is held, so the address cannot be reused).
    let (last_key, last_ct) = *shared.last_type.get(py);
    if last_key == cdecl as usize {
        return Some(Bound::from_borrowed_ptr(py, last_ct as *mut ffi::PyObject).cast_into_unchecked::<CType>());
    }
    let hit = ffi::PyDict_GetItemWithError(shared.type_cache.as_ptr(), cdecl);
    if hit.is_null() {
        ffi::PyErr_Clear();
        return None;
    }
    let ct = Bound::from_borrowed_ptr(py, hit).cast_into_unchecked::<CType>();
    shared.remember_last_type(py, cdecl, hit);
    Some(ct)
}

#[inline(always)]
unsafe fn fast_finish(py: Python<'_>, r: std::thread::Result<PyResult<*mut ffi::PyObject>>) -> *mut ffi::PyObject {
    super::errors::finish_slot(py, r, std::ptr::null_mut(), "jitffi")
}

unsafe extern "C" fn fast_new(slf: *mut ffi::PyObject, args: *const *mut ffi::PyObject, nargs: ffi::Py_ssize_t, kwnames: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let py = Python::assume_attached();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> PyResult<*mut ffi::PyObject> {
        if kwnames.is_null() && (nargs == 1 || nargs == 2) {
            if let Some(ct) = cached_ctype(py, slf, *args) {
                let init = if nargs == 2 { Some(Bound::from_borrowed_ptr(py, *args.add(1))) } else { None };
                return new_cdata(py, &ct, init.as_ref(), None).map(|c| c.into_ptr());
            }
        }
        match FAST_FALLBACKS.get() {
            Some(f) => Ok(call_fallback(py, &f.new, slf, args, nargs, kwnames)),
            None => Err(PyRuntimeError::new_err("jitffi not initialized")),
        }
    }));
    fast_finish(py, r)
}

unsafe extern "C" fn fast_cast(slf: *mut ffi::PyObject, args: *const *mut ffi::PyObject, nargs: ffi::Py_ssize_t, kwnames: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let py = Python::assume_attached();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> PyResult<*mut ffi::PyObject> {
        if kwnames.is_null() && nargs == 2 {
            if let Some(ct) = cached_ctype(py, slf, *args) {
                let v = Bound::from_borrowed_ptr(py, *args.add(1));
                return cast_value(py, &ct, &v).map(|c| c.into_ptr());
            }
        }
        match FAST_FALLBACKS.get() {
            Some(f) => Ok(call_fallback(py, &f.cast, slf, args, nargs, kwnames)),
            None => Err(PyRuntimeError::new_err("jitffi not initialized")),
        }
    }));
    fast_finish(py, r)
}

unsafe extern "C" fn fast_string(slf: *mut ffi::PyObject, args: *const *mut ffi::PyObject, nargs: ffi::Py_ssize_t, kwnames: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let py = Python::assume_attached();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> PyResult<*mut ffi::PyObject> {
        if kwnames.is_null() && nargs == 1 {
            let v = Bound::from_borrowed_ptr(py, *args);
            if v.is_instance_of::<CData>() {
                return string_of(py, &v, -1).map(|o| o.into_ptr());
            }
        }
        match FAST_FALLBACKS.get() {
            Some(f) => Ok(call_fallback(py, &f.string, slf, args, nargs, kwnames)),
            None => Err(PyRuntimeError::new_err("jitffi not initialized")),
        }
    }));
    fast_finish(py, r)
}

/// Replaces `FFI.new`, `FFI.cast` and `FFI.string` by the fast entry points above (the
/// pyo3 methods stay reachable as their fallbacks). Called once at module init.
pub fn install_fast_methods(py: Python<'_>) -> PyResult<()> {
    let tp = py.get_type::<FFI>();
    let fallbacks = FastFallbacks {
        new: tp.getattr("new")?.unbind(),
        cast: tp.getattr("cast")?.unbind(),
        string: tp.getattr("string")?.unbind(),
    };
    if FAST_FALLBACKS.set(fallbacks).is_err() {
        return Ok(());
    }
    let entries: [(&'static CStr, ffi::PyCFunctionFastWithKeywords); 3] =
        [(c"new", fast_new), (c"cast", fast_cast), (c"string", fast_string)];
    for (name, f) in entries {
        let def = Box::leak(Box::new(ffi::PyMethodDef {
            ml_name: name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunctionFastWithKeywords: f },
            ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
            ml_doc: std::ptr::null(),
        }));
        unsafe {
            let tpp = tp.as_type_ptr();
            let descr = Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewMethod(tpp, def))?;
            if ffi::PyDict_SetItemString((*tpp).tp_dict, name.as_ptr(), descr.as_ptr()) != 0 {
                return Err(PyErr::fetch(py));
            }
            ffi::PyType_Modified(tpp);
        }
    }
    Ok(())
}

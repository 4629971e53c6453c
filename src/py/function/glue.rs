//! Glue between call trampolines and THE conversion layer (`py::convert`): which
//! converter an argument of a given C type goes through, the temporaries of pointer
//! arguments, cffi's rules for the variadic part, and result boxing. No conversion rule
//! lives here; this only dispatches.

use pyo3::exceptions::{PyNotImplementedError, PyTypeError};
use pyo3::ffi as pyffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::super::cdata::CData;
use super::super::convert;
pub use super::super::convert::KeepAlive;
use super::layout::small_int;
pub use super::object::CallContext;
use crate::jit::trampoline::Scalar;
use crate::types::model::{Kind, PrimClass, TypeRef};

/// Writes argument `index` (C type `ty`) from `obj` into `dst`. Returns the temporaries
/// (boxed) to drop after the call, if the conversion made any.
///
/// # Safety
/// `dst` is the argument's cell: writable, aligned, at least 16 bytes and the C type's
/// size.
pub unsafe fn write_argument(
    py: Python<'_>,
    ctx: &CallContext,
    ty: &TypeRef,
    obj: &Bound<'_, PyAny>,
    dst: *mut u8,
) -> PyResult<Option<Temp>> {
    match &ty.kind {
        Kind::Pointer(item) => {
            // The argument vector holds `obj` for the whole call, so a cdata or a bytes
            // object needs no extra reference.
            if obj.is_instance_of::<CData>() {
                let p = convert::pointer_from_cdata(ty, obj)?;
                // SAFETY: `dst` is the argument's cell (contract).
                unsafe { convert::store_ptr(dst, p) };
                return Ok(None);
            }
            if let Ok(b) = obj.cast::<PyBytes>() {
                if matches!(&item.kind, Kind::Prim(p) if p.size == 1 && p.class != PrimClass::Bool)
                    || matches!(item.kind, Kind::Void)
                {
                    // SAFETY: `dst` is the argument's cell (contract).
                    unsafe { convert::store_ptr(dst, b.as_bytes().as_ptr() as usize) };
                    return Ok(None);
                }
            }
            if let Some(buf) = numbers_to_array(item, obj)? {
                // SAFETY: `dst` is the argument's cell (contract).
                unsafe { convert::store_ptr(dst, buf.0 as usize) };
                return Ok(Some(Temp::Buffer(buf)));
            }
            let mut keep = Box::new(KeepAlive::new());
            // SAFETY: `dst` is the cell (contract); `keep` outlives the call and holds what the pointer needs.
            let p = unsafe { convert::py_to_pointer_arg(py, ctx, ty, obj, &mut keep)? };
            // SAFETY: `dst` is the argument's cell (contract).
            unsafe { convert::store_ptr(dst, p) };
            Ok(Some(Temp::Keep(keep)))
        }
        Kind::FuncPtr(_) => {
            // A function-pointer cdata or a function taken from a lib (the conversion
            // layer treats it as its cdata): an address, nothing to keep for the call.
            let p = convert::pointer_from_cdata(ty, obj)?;
            // SAFETY: `dst` is the argument's cell (contract).
            unsafe { convert::store_ptr(dst, p) };
            Ok(None)
        }
        Kind::Array(..) => {
            let mut keep = Box::new(KeepAlive::new());
            // SAFETY: `dst` is the cell (contract); `keep` outlives the call and holds what the pointer needs.
            let p = unsafe { convert::py_to_pointer_arg(py, ctx, ty, obj, &mut keep)? };
            // SAFETY: `dst` is the argument's cell (contract).
            unsafe { convert::store_ptr(dst, p) };
            Ok(Some(Temp::Keep(keep)))
        }
        Kind::Record(_) => write_record_argument(py, ctx, ty, obj, dst),
        _ => {
            // SAFETY: `dst` is the argument's cell (contract).
            unsafe { convert::write_value(py, ctx, ty, obj, dst)? };
            Ok(None)
        }
    }
}

/// A list/tuple passed for a pointer to integers or floating-point numbers: the temporary
/// array is filled through the scalar converters directly (the general array writer
/// re-dispatches on the item type for every element). `None`: not this case.
fn numbers_to_array(item: &TypeRef, obj: &Bound<'_, PyAny>) -> PyResult<Option<Buffer>> {
    let Kind::Prim(info) = &item.kind else {
        return Ok(None);
    };
    let kind = match info.class {
        PrimClass::SignedInt | PrimClass::UnsignedInt | PrimClass::Float => info.class,
        _ => return Ok(None),
    };
    let (list, tuple) = (obj.cast::<PyList>().ok(), obj.cast::<PyTuple>().ok());
    let n = match (&list, &tuple) {
        (Some(l), _) => l.len(),
        (_, Some(t)) => t.len(),
        _ => return Ok(None),
    };
    let size = info.size;
    let buf = Buffer::new(size * n)?;
    let (lo, hi) = int_range(info.size, info.signed);
    let mut name: Option<String> = None;
    for i in 0..n {
        // Borrowed: the fast paths below run no Python code. The list may still shrink
        // while a slow-path item converts (`__index__`), so each access is bounds-checked.
        // SAFETY: the list or tuple is alive (borrowed by `obj`) and `i` is within its current size.
        let o = unsafe {
            match (&list, &tuple) {
                (Some(l), _) => {
                    if i as pyffi::Py_ssize_t >= pyffi::PyList_GET_SIZE(l.as_ptr()) {
                        break;
                    }
                    pyffi::PyList_GET_ITEM(l.as_ptr(), i as pyffi::Py_ssize_t)
                }
                (_, Some(t)) => pyffi::PyTuple_GET_ITEM(t.as_ptr(), i as pyffi::Py_ssize_t),
                _ => unreachable!(),
            }
        };
        // SAFETY: `i < n`: within the `size * n` bytes of the buffer.
        let d = unsafe { buf.0.add(i * size) };
        // Exact ints and floats in range: stored directly. Anything else (other types,
        // out of range, big ints) goes through the converter, which raises cffi's error.
        // SAFETY: `o` is a live item (see above), `d` within the buffer.
        unsafe {
            match kind {
                PrimClass::SignedInt | PrimClass::UnsignedInt
                    if pyffi::PyLong_CheckExact(o) != 0 =>
                {
                    if let Some(v) = small_int(o) {
                        if v >= lo && v <= hi {
                            convert::store_u64(d, size, v as u64);
                            continue;
                        }
                    }
                    let mut overflow = 0;
                    let v = pyffi::PyLong_AsLongLongAndOverflow(o, &mut overflow);
                    let failed = v == -1 && !pyffi::PyErr_Occurred().is_null();
                    if overflow == 0 && !failed && (v as i128) >= lo && (v as i128) <= hi {
                        convert::store_u64(d, size, v as u64);
                        continue;
                    }
                    if !pyffi::PyErr_Occurred().is_null() {
                        pyffi::PyErr_Clear();
                    }
                }
                PrimClass::Float if pyffi::PyFloat_CheckExact(o) != 0 => {
                    convert::store_f64(d, size, pyffi::PyFloat_AS_DOUBLE(o));
                    continue;
                }
                _ => {}
            }
            let x = Bound::from_borrowed_ptr(obj.py(), o);
            let name = name.get_or_insert_with(|| item.cname());
            match kind {
                PrimClass::SignedInt => {
                    convert::store_u64(d, size, convert::py_to_i64(&x, info, name)? as u64)
                }
                PrimClass::UnsignedInt => {
                    convert::store_u64(d, size, convert::py_to_u64(&x, info, name)?)
                }
                _ => convert::store_f64(d, size, convert::py_to_f64(&x)?),
            }
        }
    }
    Ok(Some(buf))
}

pub(crate) fn int_range(size: usize, signed: bool) -> (i128, i128) {
    let bits = 8 * size as u32;
    if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    }
}

/// A zeroed malloc'ed temporary array. Small ones (at most `SMALL_BUFFER` bytes) come
/// from, and go back to, a one-entry per-thread cache: a call passing a short list then
/// costs no allocation (re-entrant calls simply find the cache empty and allocate).
pub struct Buffer(*mut u8, bool);

const SMALL_BUFFER: usize = 256;

struct BufferCache(std::cell::Cell<*mut u8>);

impl Drop for BufferCache {
    fn drop(&mut self) {
        let p = self.0.replace(std::ptr::null_mut());
        if !p.is_null() {
            // SAFETY: the buffer was malloc'ed here and is freed once (taken out of its owner).
            unsafe { libc::free(p as *mut libc::c_void) }
        }
    }
}

thread_local! {
    static BUFFER_CACHE: BufferCache = const { BufferCache(std::cell::Cell::new(std::ptr::null_mut())) };
}

impl Buffer {
    fn new(size: usize) -> PyResult<Buffer> {
        if size <= SMALL_BUFFER {
            let cached = BUFFER_CACHE
                .try_with(|c| c.0.replace(std::ptr::null_mut()))
                .unwrap_or(std::ptr::null_mut());
            let p = if cached.is_null() {
                // SAFETY: plain allocation; null is checked below.
                unsafe { libc::malloc(SMALL_BUFFER) as *mut u8 }
            } else {
                cached
            };
            if !p.is_null() {
                // SAFETY: `p` has `SMALL_BUFFER >= size` bytes.
                unsafe { std::ptr::write_bytes(p, 0, size) };
                return Ok(Buffer(p, true));
            }
        } else {
            // SAFETY: plain allocation; null is checked below.
            let p = unsafe { libc::calloc(1, size) } as *mut u8;
            if !p.is_null() {
                return Ok(Buffer(p, false));
            }
        }
        Err(pyo3::exceptions::PyMemoryError::new_err(
            "out of memory for a temporary array",
        ))
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let p = self.0;
        if self.1 {
            let kept = BUFFER_CACHE
                .try_with(|c| {
                    if c.0.get().is_null() {
                        c.0.set(p);
                        true
                    } else {
                        false
                    }
                })
                .unwrap_or(false);
            if kept {
                return;
            }
        }
        // SAFETY: the buffer was malloc'ed here and is freed once (taken out of its owner).
        unsafe { libc::free(p as *mut libc::c_void) }
    }
}

/// What a pointer argument's conversion leaves to release after the call. Travels
/// through the trampoline's temporary slot as one word: a `Box<KeepAlive>` pointer, or a
/// buffer pointer tagged with its (otherwise always clear) lowest bit, and bit 1 set
/// for a small (cacheable) buffer.
pub enum Temp {
    Keep(Box<KeepAlive>),
    Buffer(Buffer),
}

impl Temp {
    pub fn into_raw(self) -> *mut std::ffi::c_void {
        match self {
            Temp::Keep(k) => Box::into_raw(k) as *mut _,
            Temp::Buffer(b) => {
                let p = b.0 as usize | 1 | if b.1 { 2 } else { 0 };
                std::mem::forget(b);
                p as *mut _
            }
        }
    }

    /// # Safety
    /// `p` must come from `into_raw`, once.
    pub unsafe fn from_raw(p: *mut std::ffi::c_void) -> Temp {
        // SAFETY: `p` came from `into_raw` (contract): tagged, a buffer pointer; else a
        // leaked `Box<KeepAlive>`.
        unsafe {
            if p as usize & 1 == 1 {
                Temp::Buffer(Buffer((p as usize & !3) as *mut u8, p as usize & 2 != 0))
            } else {
                Temp::Keep(Box::from_raw(p as *mut KeepAlive))
            }
        }
    }
}

/// A struct/union argument passed by value (`ty` is a record type), written to `dst`.
///
/// # Safety
/// `dst` is the argument's cell: writable, aligned, at least 16 bytes and the C type's
/// size.
#[inline(never)]
pub unsafe fn write_record_argument(
    py: Python<'_>,
    ctx: &CallContext,
    ty: &TypeRef,
    obj: &Bound<'_, PyAny>,
    dst: *mut u8,
) -> PyResult<Option<Temp>> {
    match obj.cast::<CData>() {
        // From a cdata of the very same type: a plain copy.
        Ok(cd) if std::sync::Arc::ptr_eq(cd.get().ty(), ty) => {
            if let Kind::Record(r) = &ty.kind {
                if let Some(Ok(l)) = r.layout.get() {
                    let src = cd.get().data_addr(py)?;
                    // SAFETY: `src` is the live cdata's data of this record type, `dst` a cell of its size.
                    unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst, l.size) };
                    return Ok(None);
                }
            }
        }
        Ok(_) => {}
        // The cell is stack memory of the trampoline: fields (and padding) a list or dict
        // leaves out must read as zero, as in `ffi.new`.
        Err(_) => {
            if let Some(size) = ty.size() {
                // SAFETY: `dst` is the argument's cell (contract).
                unsafe { std::ptr::write_bytes(dst, 0, size) };
            }
        }
    }
    // SAFETY: `dst` is the argument's cell (contract).
    unsafe { convert::write_value(py, ctx, ty, obj, dst)? };
    Ok(None)
}

fn not_cdata(index: usize, obj: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "argument {} passed in the variadic part needs to be a cdata object (got {})",
        index + 1,
        obj.get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default()
    ))
}

/// The register class of an argument of the variadic part after C's default argument
/// promotions (small integers → int, float → double). cffi accepts only cdata there.
pub fn vararg_scalar(
    _py: Python<'_>,
    _ctx: &CallContext,
    index: usize,
    obj: &Bound<'_, PyAny>,
) -> PyResult<Scalar> {
    let cd = obj.cast::<CData>().map_err(|_| not_cdata(index, obj))?;
    let ty = cd.get().ty().clone();
    let int = |size: usize, signed: bool| {
        if size < 4 {
            Scalar::Int {
                size: 4,
                signed: true,
            }
        } else {
            Scalar::Int {
                size: size as u8,
                signed,
            }
        }
    };
    Ok(match &ty.kind {
        Kind::Prim(p) => match p.class {
            PrimClass::Float => Scalar::F64,
            PrimClass::LongDouble | PrimClass::Complex => {
                return Err(PyNotImplementedError::new_err(format!(
                    "cdata '{}' in the variadic part is not supported",
                    ty.cname()
                )))
            }
            _ => int(p.size, p.signed),
        },
        Kind::Enum(e) => {
            let u = e.underlying_info();
            int(u.size, u.signed)
        }
        Kind::Pointer(_) | Kind::Array(..) | Kind::FuncPtr(_) => Scalar::Int {
            size: 8,
            signed: false,
        },
        _ => {
            return Err(PyNotImplementedError::new_err(format!(
                "cdata '{}' passed by value in the variadic part is not supported",
                ty.cname()
            )))
        }
    })
}

/// Writes a variadic-part cdata argument, promoted as `vararg_scalar` said.
///
/// # Safety
/// `dst` is the argument's cell: writable, aligned, at least 16 bytes and the C type's
/// size.
pub unsafe fn write_vararg(
    py: Python<'_>,
    _ctx: &CallContext,
    index: usize,
    obj: &Bound<'_, PyAny>,
    dst: *mut u8,
) -> PyResult<()> {
    let cd = obj.cast::<CData>().map_err(|_| not_cdata(index, obj))?;
    let c = cd.get();
    let ty = c.ty().clone();
    // SAFETY: `dst` is the argument's cell (contract); sources are the live cdata's data
    // of the type matched.
    unsafe {
        match &ty.kind {
            Kind::Pointer(_) | Kind::FuncPtr(_) => convert::store_ptr(dst, c.addr),
            Kind::Array(..) => convert::store_ptr(dst, c.data_addr(py)?),
            Kind::Prim(p) if p.class == PrimClass::Float => {
                let src = c.data_addr(py)? as *const u8;
                convert::store_f64(dst, 8, convert::load_f64(src, p.size));
            }
            Kind::Prim(p) => {
                let src = c.data_addr(py)? as *const u8;
                let v = if p.signed {
                    convert::load_i64(src, p.size) as u64
                } else {
                    convert::load_u64(src, p.size)
                };
                convert::store_u64(dst, 8, v);
            }
            Kind::Enum(e) => {
                let u = e.underlying_info();
                let src = c.data_addr(py)? as *const u8;
                let v = if u.signed {
                    convert::load_i64(src, u.size) as u64
                } else {
                    convert::load_u64(src, u.size)
                };
                convert::store_u64(dst, 8, v);
            }
            _ => {
                return Err(PyNotImplementedError::new_err(format!(
                    "cdata '{}' in the variadic part",
                    ty.cname()
                )))
            }
        }
    }
    Ok(())
}

/// Boxes a result the trampoline does not box inline (char, wide chars, pointers).
///
/// # Safety
/// `src` holds a value of C type `ty`.
pub unsafe fn read_result(
    py: Python<'_>,
    ctx: &CallContext,
    ty: &TypeRef,
    src: *const u8,
) -> PyResult<Py<PyAny>> {
    match &ty.kind {
        Kind::Pointer(_) | Kind::FuncPtr(_) => {
            // SAFETY: `src` holds a value of type `ty` (contract).
            convert::cdata_from_pointer(py, ctx, ty, unsafe { convert::load_ptr(src) })
        }
        // SAFETY: `src` holds a value of type `ty` (contract).
        _ => unsafe { convert::new_owned_copy(py, ctx, ty, src) },
    }
}

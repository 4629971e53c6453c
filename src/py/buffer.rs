//! `ffi.buffer`: a type whose instances expose C memory through the buffer protocol,
//! indexing/slicing (bytes out, bytes in) and comparisons; keeps its cdata alive.
//!
//! A raw type (`rawtype.rs`): a buffer references only its cdata (never a container), so
//! the type is non-GC from module init on; objects are allocated and freed here, the type
//! is called through its own vectorcall, and `buf[:]` has a direct mapping slot.

use std::os::raw::c_int;

use pyo3::exceptions::{PyBufferError, PyIndexError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyBytes, PySlice};

use super::cdata::{invalid_addr, CData};
use super::rawtype::{slot, RawType};
use crate::types::model::Kind;

#[pyclass(module = "jitffi._jitffi", name = "buffer", frozen, weakref)]
pub struct CBuffer {
    cdata: Py<CData>,
    addr: usize,
    size: usize,
}

impl CBuffer {
    fn bytes(&self, py: Python<'_>) -> PyResult<&[u8]> {
        self.check(py)?;
        if self.size == 0 {
            return Ok(&[]);
        }
        // SAFETY: `check` passed: the cdata is alive and the address is not in the NULL
        // page; `size` bytes at it are what the user asked to expose (cffi's contract).
        Ok(unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.size) })
    }

    /// Raises if the cdata was released or the memory is in the NULL page.
    fn check(&self, py: Python<'_>) -> PyResult<()> {
        self.cdata.get().check_alive(py)?;
        if self.size > 0 && invalid_addr(self.addr) {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "cannot access a buffer at address 0x{:x} (NULL pointer)",
                self.addr
            )));
        }
        Ok(())
    }

    fn range(&self, slice: &Bound<'_, PySlice>) -> PyResult<(usize, usize)> {
        let ind = slice.indices(self.size as isize)?;
        if ind.step != 1 {
            return Err(PyValueError::new_err(
                "buffer doesn't support slicing with step != 1",
            ));
        }
        let (a, b) = (ind.start.max(0) as usize, ind.stop.max(0) as usize);
        Ok((a, b.max(a)))
    }
}

#[pymethods]
impl CBuffer {
    #[new]
    #[pyo3(signature = (cdata, size=-1))]
    fn py_new(py: Python<'_>, cdata: &Bound<'_, PyAny>, size: isize) -> PyResult<CBuffer> {
        let cd = cdata.cast::<CData>().map_err(|_| {
            PyTypeError::new_err(format!(
                "expected a cdata object, got {}",
                cdata
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let c = cd.get();
        let ty = c.ty();
        let (addr, dflt) = match &ty.kind {
            Kind::Array(item, _) => (c.data_addr(py)?, c.length * item.size().unwrap_or(0)),
            Kind::Pointer(item) => match item.size() {
                Some(n) => (c.data_addr(py)?, n),
                // as cffi: no default size for `void *` or an opaque struct
                None if size < 0 => {
                    return Err(PyTypeError::new_err(format!(
                        "don't know the size pointed to by '{}'",
                        ty.cname()
                    )))
                }
                None => (c.data_addr(py)?, 0),
            },
            Kind::Record(_) => (c.data_addr(py)?, ty.size().unwrap_or(0).max(c.alloc_size)),
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "expected a pointer or array cdata, got '{}'",
                    ty.cname()
                )))
            }
        };
        let size = if size < 0 { dflt } else { size as usize };
        Ok(CBuffer {
            cdata: cd.clone().unbind(),
            addr,
            size,
        })
    }

    fn __len__(&self) -> usize {
        self.size
    }

    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let b = self.bytes(py)?;
        if let Ok(s) = key.cast::<PySlice>() {
            // `buf[:]`: the whole buffer, without computing slice indices
            if is_full_slice(s.as_ptr()) {
                return Ok(PyBytes::new(py, b).into_any().unbind());
            }
            let (a, e) = self.range(s)?;
            return Ok(PyBytes::new(py, &b[a..e]).into_any().unbind());
        }
        let mut i: isize = key.extract()?;
        if i < 0 {
            i += self.size as isize;
        }
        if i < 0 || i as usize >= self.size {
            return Err(PyIndexError::new_err("buffer index out of range"));
        }
        Ok(PyBytes::new(py, &b[i as usize..i as usize + 1])
            .into_any()
            .unbind())
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.check(py)?;
        let (a, e) = if let Ok(s) = key.cast::<PySlice>() {
            self.range(s)?
        } else {
            let mut i: isize = key.extract()?;
            if i < 0 {
                i += self.size as isize;
            }
            if i < 0 || i as usize >= self.size {
                return Err(PyIndexError::new_err("buffer index out of range"));
            }
            (i as usize, i as usize + 1)
        };
        let src: Vec<u8> = if let Ok(b) = value.cast::<PyBytes>() {
            b.as_bytes().to_vec()
        } else if let Ok(n) = value.extract::<u8>() {
            if e - a != 1 {
                return Err(PyTypeError::new_err("a bytes-like object is required"));
            }
            vec![n]
        } else {
            let pb = pyo3::buffer::PyBuffer::<u8>::get(value)?;
            pb.to_vec(py)?
        };
        if src.len() != e - a {
            return Err(PyValueError::new_err(
                "right operand length must match slice length",
            ));
        }
        // SAFETY: `check` passed and `a..e` lies within the buffer's `size` bytes; `src` is
        // our own copy of the value, so it cannot overlap.
        unsafe { std::ptr::copy(src.as_ptr(), (self.addr + a) as *mut u8, src.len()) };
        Ok(())
    }

    fn __richcmp__(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let mine = PyBytes::new(py, self.bytes(py)?);
        let theirs = if let Ok(o) = other.cast::<CBuffer>() {
            PyBytes::new(py, o.get().bytes(py)?).into_any()
        } else if other.is_instance_of::<PyBytes>() {
            other.clone()
        } else {
            match pyo3::buffer::PyBuffer::<u8>::get(other) {
                Ok(pb) => PyBytes::new(py, &pb.to_vec(py)?).into_any(),
                Err(_) => return Ok(py.NotImplemented()),
            }
        };
        Ok(mine.rich_compare(theirs, op)?.unbind())
    }

    /// # Safety
    /// Called by CPython with a valid (or null) `view`.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let me = slf.get();
        me.check(slf.py())?;
        if view.is_null() {
            return Err(PyBufferError::new_err("NULL view"));
        }
        let rc = ffi::PyBuffer_FillInfo(
            view,
            slf.as_ptr(),
            me.addr as *mut _,
            me.size as isize,
            0,
            flags,
        );
        if rc != 0 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        format!("<jitffi.buffer object at 0x{:x}>", slf.as_ptr() as usize)
    }
}

/// `slice` (a slice object) is `[:]`.
#[inline]
fn is_full_slice(slice: *mut ffi::PyObject) -> bool {
    let so = slice as *mut ffi::PySliceObject;
    // SAFETY: callers pass a live slice object, whose three fields are always set (None
    // when omitted); `Py_None` only reads the address of the singleton.
    unsafe {
        let none = ffi::Py_None();
        (*so).start == none && (*so).stop == none && (*so).step == none
    }
}

/// `ffi.buffer(cdata)` without pyo3's generic `__new__` argument parsing: the buffer type's
/// own vectorcall (how CPython calls a type object). Other call shapes (size, keywords)
/// go through `type.__call__` → the pyo3 `#[new]`. CPython passes `nargs` live
/// positional arguments followed by one per name in `kwnames`, with the GIL held.
unsafe extern "C" fn buffer_vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let nargs = ffi::PyVectorcall_NARGS(nargsf);
    slot(std::ptr::null_mut(), |py| {
        if kwnames.is_null() && nargs == 1 {
            let cd = Bound::from_borrowed_ptr(py, *args);
            let b = CBuffer::py_new(py, &cd, -1)?;
            return alloc_buffer(py, b);
        }
        // generic path: tuple/dict call through the type's tp_call (type.__call__)
        let tuple = ffi::PyTuple_New(nargs);
        if tuple.is_null() {
            return Err(PyErr::fetch(py));
        }
        for i in 0..nargs {
            let a = *args.add(i as usize);
            ffi::Py_INCREF(a);
            ffi::PyTuple_SET_ITEM(tuple, i, a);
        }
        let tuple = Bound::from_owned_ptr(py, tuple);
        let kwargs = if kwnames.is_null() {
            None
        } else {
            let d = pyo3::types::PyDict::new(py);
            let names = Bound::from_borrowed_ptr(py, kwnames);
            for (j, name) in names.try_iter()?.enumerate() {
                d.set_item(
                    name?,
                    Bound::from_borrowed_ptr(py, *args.add(nargs as usize + j)),
                )?;
            }
            Some(d)
        };
        let call = (*ffi::Py_TYPE(callable)).tp_call;
        match call {
            Some(c) => Ok(c(
                callable,
                tuple.as_ptr(),
                kwargs
                    .as_ref()
                    .map(|d| d.as_ptr())
                    .unwrap_or(std::ptr::null_mut()),
            )),
            None => Err(PyTypeError::new_err("buffer type is not callable")),
        }
    })
}

static RAW: std::sync::OnceLock<RawType<CBuffer>> = std::sync::OnceLock::new();
static ORIG_SUBSCRIPT: std::sync::OnceLock<Option<ffi::binaryfunc>> = std::sync::OnceLock::new();

fn alloc_buffer(py: Python<'_>, b: CBuffer) -> PyResult<*mut ffi::PyObject> {
    let Some(l) = RAW.get() else {
        return Ok(Py::new(py, b)?.into_ptr());
    };
    // SAFETY: `l` is the buffer type's raw layout and the GIL is held (`py`); the memory
    // is initialized by `init` right after a successful `alloc`.
    unsafe {
        let obj = l.alloc(l.basic_size());
        if obj.is_null() {
            return Err(pyo3::exceptions::PyMemoryError::new_err(
                "cannot allocate a buffer object",
            ));
        }
        Ok(l.init(obj, b))
    }
}

/// tp_dealloc of the buffer type in raw mode.
unsafe extern "C" fn buffer_dealloc(obj: *mut ffi::PyObject) {
    let Some(l) = RAW.get() else { return };
    l.clear_weakrefs(obj);
    // The value is plain data but for this reference, released by hand (raw slots are not
    // pyo3-attached, where dropping a `Py` would be deferred).
    let cdata = (*l.value_ptr(obj)).cdata.as_ptr();
    l.free(obj);
    ffi::Py_DECREF(cdata);
}

/// `buf[:]`: the bytes, directly; anything else goes to the pyo3 slot.
unsafe extern "C" fn buffer_subscript(
    slf: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    if ffi::PySlice_Check(key) != 0 && is_full_slice(key) {
        return slot(std::ptr::null_mut(), |py| {
            let me = Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<CBuffer>();
            let me = me.get();
            me.check(py)?;
            let p = if me.size == 0 {
                std::ptr::null()
            } else {
                me.addr as *const std::os::raw::c_char
            };
            Bound::from_owned_ptr_or_err(
                py,
                ffi::PyBytes_FromStringAndSize(p, me.size as ffi::Py_ssize_t),
            )
            .map(|b| b.into_ptr())
        });
    }
    match ORIG_SUBSCRIPT.get().copied().flatten() {
        Some(f) => f(slf, key),
        None => slot(std::ptr::null_mut(), |_| {
            Err(PyTypeError::new_err("buffer is not subscriptable"))
        }),
    }
}

/// Installs `buffer_vectorcall` and raw mode on the buffer type (once, at module init,
/// after the cdata type is set up: a probe buffer over NULL measures where pyo3 puts the
/// value).
pub fn install_fast_new(py: Python<'_>) {
    let tp = py.get_type::<CBuffer>().as_type_ptr();
    // SAFETY: module init with the GIL held: the type object is live and not in use.
    unsafe { (*tp).tp_vectorcall = Some(buffer_vectorcall) };
    // SAFETY: as above.
    let m = unsafe { (*tp).tp_as_mapping };
    if RAW.get().is_none() && !m.is_null() {
        let b = super::state::builtin(py);
        let t = b.void_ptr_type();
        if let Ok(null) = CData::new_pointer(py, b.ctype_of(py, &t), 0) {
            // SAFETY: no buffer exists yet (module init); CBuffer has no `__traverse__`
            // (it references only its cdata); `buffer_dealloc` uses this layout.
            if let Some(raw) = unsafe {
                RawType::install(
                    py,
                    CBuffer {
                        cdata: null,
                        addr: 0,
                        size: 0,
                    },
                    buffer_dealloc,
                )
            } {
                let _ = RAW.set(raw);
                // SAFETY: as above; `m` is the type's own mapping table.
                unsafe {
                    if ORIG_SUBSCRIPT.set((*m).mp_subscript).is_ok() {
                        (*m).mp_subscript = Some(buffer_subscript);
                    }
                }
            }
        }
    }
    // SAFETY: as above; tells CPython the type's slots changed.
    unsafe { ffi::PyType_Modified(tp) };
}

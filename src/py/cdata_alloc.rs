//! Making cdata objects: the constructors, and the raw allocation and deallocation behind
//! them. CData defines no `__traverse__`, so the collector never saw through a cdata
//! anyway: the type is a raw, non-GC type (`rawtype.rs`) from module init on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;

use super::cdata::{calloc, CData, Keeper, Owner};
use super::ctype::CType;
use super::rawtype::{drop_attached, RawType};

static RAW: OnceLock<RawType<CData>> = OnceLock::new();
/// Set once a cdata was built by pyo3 before `install_raw` (then the raw mode stays off).
static PYO3_BUILT: AtomicBool = AtomicBool::new(false);

/// Objects with inline owned bytes (`Owner::Inline`) stay within pymalloc's small-block
/// limit; beyond it, two pymalloc blocks beat one block from the system allocator, and big
/// blocks are given back at `ffi.release`.
const INLINE_MAX: usize = 512;

impl CData {
    /// A primitive value cdata (`ffi.cast("int", 5)`, long double reads).
    pub fn new_value(py: Python<'_>, ct: Py<CType>, bytes: &[u8; 16]) -> PyResult<Py<CData>> {
        let mut v = [0u64; 2];
        v[0] = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
        v[1] = u64::from_le_bytes(bytes[8..].try_into().unwrap_or([0; 8]));
        alloc_cdata(py, Self::build(ct, 0, 0, 0, 0, v, Owner::None))
    }

    /// A non-owning pointer / function-pointer cdata.
    #[inline]
    pub fn new_pointer(py: Python<'_>, ct: Py<CType>, addr: usize) -> PyResult<Py<CData>> {
        alloc_cdata(py, Self::build(ct, addr, 0, 0, 0, [0; 2], Owner::None))
    }

    /// A non-owning view of an array (`length` items) or struct/union at `addr` (or a
    /// pointer into it), keeping `keeper` alive.
    #[inline]
    pub fn new_view(
        py: Python<'_>,
        ct: Py<CType>,
        addr: usize,
        length: usize,
        keeper: Option<Keeper>,
        flags: u32,
    ) -> PyResult<Py<CData>> {
        let owner = match keeper {
            Some(k) => Owner::View(k),
            None => Owner::None,
        };
        alloc_cdata(py, Self::build(ct, addr, length, 0, flags, [0; 2], owner))
    }

    /// An owning cdata over memory that `owner` releases.
    pub fn new_owning(
        py: Python<'_>,
        ct: Py<CType>,
        addr: usize,
        length: usize,
        alloc_size: usize,
        owner: Owner,
    ) -> PyResult<Py<CData>> {
        alloc_cdata(
            py,
            Self::build(ct, addr, length, alloc_size, 0, [0; 2], owner),
        )
    }

    /// An owning array/struct cdata over `size` zeroed bytes (`ffi.new`): inline in the
    /// object (one allocation) while the whole stays a pymalloc block, else a separate
    /// `calloc` block (which `ffi.release` gives back at once).
    #[inline]
    pub fn new_owned_zeroed(
        py: Python<'_>,
        ct: Py<CType>,
        size: usize,
        length: usize,
    ) -> PyResult<Py<CData>> {
        if size <= INLINE_MAX {
            if let Some(l) = RAW.get().filter(|l| l.inline_offset() + size <= INLINE_MAX) {
                // SAFETY: `l` is the CData type's raw layout and the GIL is held (`py`).
                return unsafe {
                    alloc_inline(py, l, size, |addr| {
                        Self::build(ct, addr, length, size, 0, [0; 2], Owner::Inline)
                    })
                };
            }
        }
        let mem = calloc(size)?;
        alloc_cdata(
            py,
            Self::build(ct, mem as usize, length, size, 0, [0; 2], Owner::Malloc),
        )
    }

    /// An owning cdata over `size` bytes that are not zeroed (an allocator made with
    /// `should_clear_after_alloc=False`).
    pub fn new_owned_uncleared(
        py: Python<'_>,
        ct: Py<CType>,
        size: usize,
        length: usize,
    ) -> PyResult<Py<CData>> {
        let mem = super::cdata::malloc_uncleared(size)?;
        alloc_cdata(
            py,
            Self::build(ct, mem as usize, length, size, 0, [0; 2], Owner::Malloc),
        )
    }

    /// An owning struct/union cdata with `size` zeroed bytes (by-value results).
    pub fn new_owned_struct(py: Python<'_>, ct: Py<CType>, size: usize) -> PyResult<Py<CData>> {
        Self::new_owned_zeroed(py, ct, size, 0)
    }
}

/// Creates a cdata object holding `cd`.
#[inline]
fn alloc_cdata(py: Python<'_>, cd: CData) -> PyResult<Py<CData>> {
    match RAW.get() {
        // SAFETY: `l` is the CData type's raw layout and the GIL is held (`py`).
        Some(l) => unsafe { alloc_inline(py, l, 0, |_| cd) },
        None => {
            PYO3_BUILT.store(true, Ordering::Relaxed);
            Py::new(py, cd)
        }
    }
}

/// Allocates an object with `extra` zeroed bytes after its fixed part and moves into it
/// the value `make(address of those bytes)` returns.
///
/// # Safety
/// `l` is the raw layout of the CData type; the GIL is held.
#[inline(always)]
unsafe fn alloc_inline(
    py: Python<'_>,
    l: &RawType<CData>,
    extra: usize,
    make: impl FnOnce(usize) -> CData,
) -> PyResult<Py<CData>> {
    // Small blocks are zeroed with two stores rather than a memset call.
    let small = extra > 0 && extra <= 16;
    let off = l.inline_offset();
    let obj = l.alloc(off + if small { 16 } else { extra });
    if obj.is_null() {
        return Err(pyo3::exceptions::PyMemoryError::new_err(format!(
            "cannot allocate {extra} bytes"
        )));
    }
    let data = obj.add(off);
    if small {
        // `off` is a multiple of 16 and PyObject_Malloc aligns to 16
        *(data as *mut [u64; 2]) = [0; 2];
    } else if extra > 0 {
        std::ptr::write_bytes(data, 0, extra);
    }
    let o = l.init(obj, make(data as usize));
    Ok(Bound::from_owned_ptr(py, o)
        .cast_into_unchecked::<CData>()
        .unbind())
}

/// tp_dealloc of CData in raw mode. Plain-memory owners (none, inline, PyMem block, view
/// of another cdata) are torn down without running Python code; the others (allocator free
/// functions, gc destructors, buffers, handles, callbacks) run `Drop` in pyo3's attached
/// state (their `Py` fields need it), with panics caught.
unsafe extern "C" fn cdata_dealloc(obj: *mut ffi::PyObject) {
    let Some(l) = RAW.get() else { return };
    let cd = l.value_ptr(obj);
    l.clear_weakrefs(obj);
    let (free_addr, keeper) = match &(*cd).state.get_mut().owner {
        Owner::None | Owner::Inline | Owner::Released => (0, std::ptr::null_mut()),
        Owner::Malloc => ((*cd).addr, std::ptr::null_mut()),
        Owner::View(k) => (0, k.as_ptr()),
        _ => (usize::MAX, std::ptr::null_mut()),
    };
    if free_addr == usize::MAX {
        drop_attached(cd);
        l.free(obj);
        return;
    }
    if free_addr != 0 {
        ffi::PyMem_Free(free_addr as *mut std::ffi::c_void);
    }
    // What is left of the value is plain data except these references, released by hand
    // (dropping `Py` values needs pyo3's attached state, which raw slots lack).
    let ctype = (*cd).ctype.as_ptr();
    l.free(obj);
    ffi::Py_DECREF(ctype);
    if !keeper.is_null() {
        ffi::Py_DECREF(keeper);
    }
}

/// Switches the CData type to raw mode (once, at module init, before any cdata exists).
pub fn install_raw(py: Python<'_>) {
    if RAW.get().is_some() || PYO3_BUILT.load(Ordering::Relaxed) {
        return;
    }
    let b = super::state::builtin(py);
    let t = b.void_ptr_type();
    let probe = CData::build(b.ctype_of(py, &t), 0, 0, 0, 0, [0; 2], Owner::None);
    // SAFETY: no cdata exists yet (`PYO3_BUILT` is unset and raw mode is off, so none was
    // made); CData has no `__traverse__`, so the collector has nothing to find through a
    // cdata; `cdata_dealloc` tears objects down with this layout.
    if let Some(raw) = unsafe { RawType::install(py, probe, cdata_dealloc) } {
        let _ = RAW.set(raw);
    }
}

//! `ffi.dlopen()` and the `lib` objects it returns (ABI mode).
//!
//! A `Lib` resolves names lazily: a function is looked up (dlsym) and wrapped at its first
//! attribute access, then stored in the instance dict, so later `lib.f` is a plain
//! attribute lookup that never reaches Rust. Global variables are read and written at
//! each access (never cached); integer constants are cached like functions.
//!
//! The library handle is shared (`Arc`) by the `Lib` and every function taken from it:
//! `ffi.dlclose(lib)` makes the `Lib` unusable at once, while the code stays mapped until
//! the last function object that could still call into it is gone.

use std::ffi::{c_void, CString};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyAttributeError, PyNotImplementedError, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::cdata::CData;
use super::convert;
use super::ffi::FFI;
use super::function::{self, FunctionSpec};
use super::state::FfiRef;
use crate::types::decls::Decl;
use crate::types::model::Kind;

/// An open library. Closed (dlclose) when the last user drops it, unless the handle was
/// given to us by the user.
pub struct LibHandle {
    raw: *mut c_void,
    owned: bool,
}

// The handle is an opaque token for dlsym/dlclose, which are thread-safe.
unsafe impl Send for LibHandle {}
unsafe impl Sync for LibHandle {}

impl Drop for LibHandle {
    fn drop(&mut self) {
        if self.owned && !self.raw.is_null() {
            unsafe { libc::dlclose(self.raw) };
        }
    }
}

impl LibHandle {
    fn symbol(&self, name: &str) -> Result<usize, String> {
        let c = CString::new(name).map_err(|_| "name contains a NUL byte".to_string())?;
        unsafe {
            libc::dlerror();
            let p = libc::dlsym(self.raw, c.as_ptr());
            if p.is_null() {
                let e = libc::dlerror();
                let msg = if e.is_null() {
                    "symbol is NULL".to_string()
                } else {
                    std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
                };
                return Err(msg);
            }
            Ok(p as usize)
        }
    }
}

fn dlerror_text() -> String {
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown dlopen error".into()
        } else {
            std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

fn raw_dlopen(path: Option<&str>, flags: i32) -> Result<*mut c_void, String> {
    let c = match path {
        Some(p) => Some(CString::new(p).map_err(|_| "library name contains a NUL byte".to_string())?),
        None => None,
    };
    let h = unsafe { libc::dlopen(c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()), flags) };
    if h.is_null() {
        Err(dlerror_text())
    } else {
        Ok(h)
    }
}

#[pyclass(dict, module = "_jitffi", name = "Lib")]
pub struct Lib {
    ffi: FfiRef,
    /// The Python FFI object, kept alive as cffi does.
    ffi_obj: Py<PyAny>,
    handle: Mutex<Option<Arc<LibHandle>>>,
    name: String,
    release_gil: bool,
}

impl Lib {
    fn handle(&self) -> PyResult<Arc<LibHandle>> {
        self.handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| PyValueError::new_err(format!("library '{}' has been closed", self.name)))
    }

    fn lookup(&self, name: &str) -> Option<Decl> {
        self.ffi.lock_ns().decls.names.get(name).cloned()
    }

    fn no_such(&self, name: &str) -> PyErr {
        PyAttributeError::new_err(format!(
            "cffi library '{}' has no function, constant or global variable named '{}'",
            self.name, name
        ))
    }

    fn symbol(&self, name: &str, what: &str) -> PyResult<usize> {
        self.handle()?.symbol(name).map_err(|e| {
            PyAttributeError::new_err(format!("{what} '{name}' not found in library '{}': {e}", self.name))
        })
    }

    /// The address of a declared function or global variable.
    pub fn address_of(&self, name: &str) -> PyResult<(usize, Decl)> {
        match self.lookup(name) {
            Some(d @ (Decl::Function(_) | Decl::Variable { .. })) => {
                let what = if matches!(d, Decl::Function(_)) { "function" } else { "variable" };
                Ok((self.symbol(name, what)?, d))
            }
            Some(_) => Err(PyAttributeError::new_err(format!("'{name}' is not a function or global variable"))),
            None => Err(self.no_such(name)),
        }
    }
}

#[pymethods]
impl Lib {
    fn __getattr__(slf: &Bound<'_, Self>, name: &Bound<'_, PyString>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.borrow();
        let n = name.to_str()?;
        if n.starts_with("__") && n.ends_with("__") {
            return Err(PyAttributeError::new_err(n.to_string()));
        }
        this.handle()?;
        let Some(decl) = this.lookup(n) else {
            return Err(this.no_such(n));
        };
        match decl {
            Decl::Function(fty) => {
                let addr = this.symbol(n, "function/symbol")?;
                let handle = this.handle()?;
                let spec = FunctionSpec {
                    name: n,
                    fn_type: &fty,
                    address: addr,
                    release_gil: this.release_gil,
                    keepalive: vec![this.ffi_obj.clone_ref(py)],
                    library: Some(handle),
                    ctx: this.ffi.clone(),
                };
                let f = function::make_function(py, spec)?;
                let dict = slf.getattr("__dict__")?.cast_into::<PyDict>()?;
                dict.set_item(name, &f)?;
                Ok(f)
            }
            Decl::Variable { ty, .. } => {
                let addr = this.symbol(n, "variable")?;
                drop(this);
                read_global(py, slf, &ty, addr)
            }
            Decl::IntConstant { value, .. } => {
                let v = value.into_pyobject(py)?.into_any().unbind();
                let dict = slf.getattr("__dict__")?.cast_into::<PyDict>()?;
                dict.set_item(name, &v)?;
                Ok(v)
            }
            Decl::ExternPython(fty) => Ok(crate::py::callback::extern_python_cdata(py, &this.ffi, n, &fty)?.into_any()),
            Decl::UnknownConstant { .. } => Err(PyNotImplementedError::new_err(format!(
                "'{n}': the value of this constant is only known to a C compiler (API mode); \
                 in ABI mode only integer constants are available"
            ))),
        }
    }

    fn __setattr__(slf: &Bound<'_, Self>, name: &Bound<'_, PyString>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.borrow();
        let n = name.to_str()?;
        match this.lookup(n) {
            Some(Decl::Variable { ty, is_const }) => {
                if is_const {
                    return Err(PyAttributeError::new_err(format!("cannot write to the constant global '{n}'")));
                }
                let addr = this.symbol(n, "variable")?;
                unsafe { convert::write_value(py, &this.ffi, &ty, value, addr as *mut u8) }
            }
            Some(_) => Err(PyAttributeError::new_err(format!("cannot assign to '{n}': not a global variable"))),
            None => Err(PyAttributeError::new_err(format!(
                "cffi library '{}' has no global variable named '{n}'",
                this.name
            ))),
        }
    }

    fn __dir__(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let ns = self.ffi.lock_ns();
        let names: Vec<&String> = ns
            .decls
            .order
            .iter()
            .filter(|n| {
                matches!(
                    ns.decls.names.get(*n),
                    Some(
                        Decl::Function(_)
                            | Decl::Variable { .. }
                            | Decl::IntConstant { .. }
                            | Decl::UnknownConstant { .. }
                    )
                )
            })
            .collect();
        Ok(PyList::new(py, names)?.unbind())
    }

    /// `ffi.addressof(lib, "name")` (the FFI calls this hook).
    fn _jitffi_addressof(slf: &Bound<'_, Self>, name: &str) -> PyResult<Py<PyAny>> {
        addressof_lib(slf.py(), slf, name)
    }

    fn __repr__(&self) -> String {
        format!("<jitffi.Lib object for '{}'>", self.name)
    }
}

fn read_global(py: Python<'_>, slf: &Bound<'_, Lib>, ty: &crate::types::model::TypeRef, addr: usize) -> PyResult<Py<PyAny>> {
    let this = slf.borrow();
    match &ty.kind {
        // Arrays and structs: non-owning cdata over the library's memory.
        Kind::Array(_, n) => Ok(CData::new_view(py, this.ffi.ctype_of(py, ty), addr, n.unwrap_or(0), None, 0)?.into_any()),
        Kind::Record(_) => Ok(CData::new_view(py, this.ffi.ctype_of(py, ty), addr, 0, None, 0)?.into_any()),
        _ => unsafe { convert::read_value(py, &this.ffi, ty, addr as *const u8) },
    }
}

/// `ffi.addressof(lib, "name")`: a pointer cdata to a global variable, or the function as
/// a function-pointer cdata.
pub fn addressof_lib(py: Python<'_>, lib: &Bound<'_, Lib>, name: &str) -> PyResult<Py<PyAny>> {
    let this = lib.borrow();
    if let Some(Decl::ExternPython(fty)) = this.lookup(name) {
        return Ok(crate::py::callback::extern_python_cdata(py, &this.ffi, name, &fty)?.into_any());
    }
    let (addr, decl) = this.address_of(name)?;
    match decl {
        Decl::Function(fty) => convert::cdata_from_pointer(py, &this.ffi, &fty, addr),
        Decl::Variable { ty, .. } => {
            let pty = this.ffi.pointer_to(&ty);
            convert::cdata_from_pointer(py, &this.ffi, &pty, addr)
        }
        _ => Err(this.no_such(name)),
    }
}

/// `ffi.dlopen(name, flags)`: None (the process's global namespace), a path or a library
/// name (names without '/' are also searched with `ctypes.util.find_library`, as cffi
/// does), or an already-open handle as a `void *` cdata (never closed by us).
pub fn dlopen(
    py: Python<'_>,
    ffi: FfiRef,
    ffi_obj: Py<PyAny>,
    name: &Bound<'_, PyAny>,
    flags: i32,
    release_gil: bool,
) -> PyResult<Lib> {
    let flags = if flags == 0 { libc::RTLD_NOW } else { flags };
    let (handle, shown) = if name.is_none() {
        let h = raw_dlopen(None, flags).map_err(|e| PyOSError::new_err(format!("cannot load the C library: {e}")))?;
        (LibHandle { raw: h, owned: true }, "<None>".to_string())
    } else if let Ok(cd) = name.cast::<CData>() {
        let c = cd.get();
        if !matches!(c.ty().kind, Kind::Pointer(_)) {
            return Err(PyTypeError::new_err(format!(
                "dlopen() expects a library name or a 'void *' handle, not cdata '{}'",
                c.ty().cname()
            )));
        }
        if c.addr == 0 {
            return Err(PyOSError::new_err("dlopen() got a NULL library handle"));
        }
        (LibHandle { raw: c.addr as *mut c_void, owned: false }, format!("<handle 0x{:x}>", c.addr))
    } else if let Ok(s) = name.cast::<PyString>() {
        let s = s.to_str()?.to_string();
        let h = match raw_dlopen(Some(&s), flags) {
            Ok(h) => h,
            Err(first) => {
                if s.contains('/') {
                    return Err(PyOSError::new_err(format!("cannot load library '{s}': {first}")));
                }
                let found = py.import("ctypes.util")?.call_method1("find_library", (&s,))?;
                if found.is_none() {
                    return Err(PyOSError::new_err(format!(
                        "cannot load library '{s}': {first}.  Additionally, ctypes.util.find_library() \
                         did not manage to locate a library called '{s}'"
                    )));
                }
                let path: String = found.extract()?;
                raw_dlopen(Some(&path), flags)
                    .map_err(|e| PyOSError::new_err(format!("cannot load library '{path}': {e}")))?
            }
        };
        (LibHandle { raw: h, owned: true }, s)
    } else {
        return Err(PyTypeError::new_err(format!(
            "dlopen() expects a str, None or a 'void *' cdata, not {}",
            name.get_type().name()?
        )));
    };
    Ok(Lib { ffi, ffi_obj, handle: Mutex::new(Some(Arc::new(handle))), name: shown, release_gil })
}

/// `ffi.dlclose(lib)`: later attribute access raises; the library itself is unmapped
/// once the functions already taken from it are gone too.
pub fn dlclose(lib: &Bound<'_, Lib>) -> PyResult<()> {
    let this = lib.borrow();
    let old = this.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
    if old.is_none() {
        return Err(PyValueError::new_err(format!("library '{}' is already closed", this.name)));
    }
    drop(this);
    let dict = lib.getattr("__dict__")?.cast_into::<PyDict>()?;
    dict.clear();
    Ok(())
}

#[pymethods]
impl FFI {
    /// `dlopen(name, flags=0, *, release_gil=True)`. `release_gil=False` is jitffi's
    /// opt-out for tiny hot functions: calls keep the GIL and do not save/restore errno
    /// (`ffi.errno` is then not updated by those calls).
    #[pyo3(signature = (name, flags = 0, *, release_gil = true))]
    fn dlopen(slf: &Bound<'_, Self>, name: &Bound<'_, PyAny>, flags: i32, release_gil: bool) -> PyResult<Py<Lib>> {
        let py = slf.py();
        let shared = slf.get().shared().clone();
        let lib = dlopen(py, shared, slf.clone().into_any().unbind(), name, flags, release_gil)?;
        Py::new(py, lib)
    }

    fn dlclose(&self, lib: &Bound<'_, PyAny>) -> PyResult<()> {
        let lib = lib
            .cast::<Lib>()
            .map_err(|_| PyTypeError::new_err(format!("dlclose() expects a library object, not {}", lib.get_type().name().map(|n| n.to_string()).unwrap_or_default())))?;
        dlclose(lib)
    }
}

/// pyo3's `tp_getattro` for a class with `__getattr__` costs ~50 ns more than a plain
/// attribute lookup even when the name is in the instance dict. Fetched functions and
/// constants live in that dict, so the slot is replaced by CPython's generic lookup, falling
/// back to pyo3's slot (and so `__getattr__`) only for names not there yet.
static PYO3_GETATTRO: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

unsafe extern "C" fn lib_getattro(obj: *mut pyo3::ffi::PyObject, name: *mut pyo3::ffi::PyObject) -> *mut pyo3::ffi::PyObject {
    use pyo3::ffi;
    unsafe {
        // Functions and constants fetched before sit in the instance dict: look there
        // first (declared C names never collide with the type's own attributes).
        let off = (*ffi::Py_TYPE(obj)).tp_dictoffset;
        if off > 0 {
            let dict = *((obj as *mut u8).offset(off) as *mut *mut ffi::PyObject);
            if !dict.is_null() {
                let hit = ffi::PyDict_GetItem(dict, name);
                if !hit.is_null() {
                    ffi::Py_IncRef(hit);
                    return hit;
                }
            }
        }
        let r = ffi::PyObject_GenericGetAttr(obj, name);
        if !r.is_null() || ffi::PyErr_ExceptionMatches(ffi::PyExc_AttributeError) == 0 {
            return r;
        }
        ffi::PyErr_Clear();
        let slow: ffi::getattrofunc = std::mem::transmute(*PYO3_GETATTRO.get().expect("installed with the slot"));
        slow(obj, name)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Lib>()?;
    let tp = m.py().get_type::<Lib>();
    unsafe {
        let t = tp.as_type_ptr();
        if let Some(orig) = (*t).tp_getattro {
            if orig as usize != lib_getattro as *const () as usize {
                let _ = PYO3_GETATTRO.set(orig as usize);
                (*t).tp_getattro = Some(lib_getattro);
                pyo3::ffi::PyType_Modified(t);
            }
        }
    }
    Ok(())
}

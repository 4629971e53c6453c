//! The `lib` objects `ffi.dlopen()` returns (ABI mode): their state, attribute access and
//! namespace upkeep. Opening libraries and finding symbols is `crate::dlfcn`; the cold
//! glue (the `find_library` fallback, making the module, emptying it at `dlclose`,
//! switching it to a class with `__setattr__`) is Python, in `python/jitffi/_lib.py`.
//!
//! A lib is a plain Python module whose `__loader__` is its `Lib` state: CPython 3.11
//! specializes attribute loads only on exact modules (and default-lookup objects), and
//! `lib.f(...)` is the hottest line of user code. `Lib::_sync` puts every declared
//! function into the module dict as a lazy function object (dlsym already done, the
//! trampoline built at the first call), so `lib.f` is a specialized module attribute
//! load that never reaches Rust. An out-of-line module's lib is set up from its tables
//! alone (`crate::ool::lazy`): each function object finds its type at its first use. What needs work at each access (global variables are
//! read at each access, never cached) goes through the module's PEP 562 `__getattr__`;
//! assignments need `__setattr__`, which only a module subclass can have, so the Python
//! layer switches a lib to such a subclass once its ffi declares a global variable.
//!
//! The library handle is shared (`Arc`) by the `Lib` and every function taken from it:
//! `ffi.dlclose(lib)` makes the `Lib` unusable at once, while the code stays mapped until
//! the last function object that could still call into it is gone.

use std::sync::{Arc, Mutex};

use pyo3::exceptions::{
    PyAttributeError, PyKeyError, PyNotImplementedError, PyOSError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyModule, PyString};

use super::cdata::CData;
use super::convert;
use super::errors::{realizing, FFIError};
use super::function::{self, FunctionSpec};
use super::state::FfiRef;
use crate::dlfcn::DlError;
pub use crate::dlfcn::LibHandle;
use crate::ool::lazy::{self, LibEntry};
use crate::types::decls::Decl;
use crate::types::model::Kind;

/// The state behind a `lib`. The object users see is a plain module (see the module docs
/// above): this state is its `__loader__` and provides its `__getattr__` and `__dir__`.
#[pyclass(module = "_jitffi", name = "Lib")]
pub struct Lib {
    ffi: FfiRef,
    /// The Python FFI object, kept alive as cffi does.
    ffi_obj: Py<PyAny>,
    handle: Mutex<Option<Arc<LibHandle>>>,
    #[pyo3(get, name = "_name")]
    name: String,
    release_gil: bool,
    /// The lib module's namespace, where fetched functions and constants are cached.
    /// Module dict → bound `__getattr__` → this state → dict is a cycle: traversed below.
    dict: Mutex<Option<Py<PyDict>>>,
}

impl Lib {
    /// Whether this lib belongs to an out-of-line module's FFI, whose lib cffi words
    /// its errors differently (`ffi.error` for a closed library or a missing symbol).
    fn is_compiled(&self) -> bool {
        self.ffi.ool.get().is_some()
    }

    fn handle(&self) -> PyResult<Arc<LibHandle>> {
        self.handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                if self.is_compiled() {
                    FFIError::new_err(format!("library '{}' has been closed", self.name))
                } else {
                    PyValueError::new_err(format!(
                        "library '{}' has already been closed",
                        self.name
                    ))
                }
            })
    }

    /// A compiled FFI's error for a symbol the library does not have.
    fn compiled_missing(&self, name: &str, e: impl std::fmt::Display) -> PyErr {
        FFIError::new_err(format!(
            "symbol '{name}' not found in library '{}': {e}",
            self.name
        ))
    }

    /// The declaration of `name` (an out-of-line module's declares it now if needed).
    fn lookup(&self, name: &str) -> PyResult<Option<Decl>> {
        lookup_in(&self.ffi, name)
    }

    fn no_such(&self, name: &str) -> PyErr {
        PyAttributeError::new_err(format!(
            "cffi library '{}' has no function, constant or global variable named '{}'",
            self.name, name
        ))
    }

    fn symbol(&self, name: &str, what: &str) -> PyResult<usize> {
        self.handle()?.symbol(name).map_err(|e| {
            if self.is_compiled() {
                return self.compiled_missing(name, e);
            }
            PyAttributeError::new_err(format!(
                "{what} '{name}' not found in library '{}': {e}",
                self.name
            ))
        })
    }

    /// The address of a declared global variable: cffi's KeyError when the library does
    /// not have it (its lib object looks variables up by key).
    fn variable_symbol(&self, name: &str) -> PyResult<usize> {
        self.handle()?.symbol(name).map_err(|e| {
            if self.is_compiled() {
                return self.compiled_missing(name, e);
            }
            PyKeyError::new_err(format!(
                "variable '{name}' not found in library '{}': {e}",
                self.name
            ))
        })
    }

    fn cache(&self, py: Python<'_>, name: &Bound<'_, PyString>, value: &Py<PyAny>) -> PyResult<()> {
        if let Some(d) = self.dict.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            d.bind(py).set_item(name, value)?;
        }
        Ok(())
    }

    /// The address of a declared function or global variable.
    pub fn address_of(&self, name: &str) -> PyResult<(usize, Decl)> {
        match self.lookup(name)? {
            // (cffi's wording for both kinds here)
            Some(d @ (Decl::Function(_) | Decl::Variable { .. })) => {
                Ok((self.symbol(name, "function/symbol")?, d))
            }
            Some(_) => Err(PyAttributeError::new_err(format!(
                "'{name}' is not a function or global variable"
            ))),
            None => Err(self.no_such(name)),
        }
    }
}

/// The enum a constant belongs to, if that enum was declared with `...` (its cname).
fn partial_enum(d: &Decl) -> Option<String> {
    match d {
        Decl::IntConstant { ty: Some(t), .. } | Decl::UnknownConstant { ty: Some(t) } => {
            match &t.kind {
                Kind::Enum(e) if e.partial => Some(t.cname()),
                _ => None,
            }
        }
        _ => None,
    }
}

#[pymethods]
impl Lib {
    /// The lib module's `__getattr__` (PEP 562): runs only for names not cached in the
    /// module yet, i.e. at the first access of a function or constant and at every read of
    /// a global variable.
    fn _getattr(slf: &Bound<'_, Self>, name: &Bound<'_, PyString>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.borrow();
        let n = name.to_str()?;
        if n.starts_with("__") && n.ends_with("__") {
            return Err(PyAttributeError::new_err(n.to_string()));
        }
        this.handle()?;
        let Some(decl) = this.lookup(n)? else {
            return Err(this.no_such(n));
        };
        if let Some(e) = partial_enum(&decl) {
            // As cffi: none of a `...` enum's values is known without a compiler.
            return Err(super::errors::VerificationMissing::new_err(e));
        }
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
                this.cache(py, name, &f)?;
                Ok(f)
            }
            Decl::Variable { ty, .. } => {
                let addr = this.variable_symbol(n)?;
                drop(this);
                read_global(py, slf, &ty, addr)
            }
            Decl::IntConstant { value, .. } => {
                let v = value.into_pyobject(py)?.into_any().unbind();
                this.cache(py, name, &v)?;
                Ok(v)
            }
            Decl::ExternPython(fty) => Ok(crate::py::callback::extern_python_cdata(
                py,
                this.ffi_obj.bind(py),
                &this.ffi,
                n,
                &fty,
            )?
            .into_any()),
            Decl::UnknownConstant { .. } => Err(PyNotImplementedError::new_err(format!(
                "'{n}': the value of this constant is only known to a C compiler (API mode); \
                 in ABI mode only integer constants are available"
            ))),
        }
    }

    /// Brings the lib module's namespace up to date with the ffi's declarations (at
    /// `dlopen` and after each `cdef`/`include`). While the ffi declares only functions and
    /// integer constants, the module holds all of them (functions as lazy objects whose
    /// first call does the rest) and has no `__getattr__`: CPython 3.11 refuses to
    /// specialize attribute loads on a module that has one. Anything needing work at each
    /// access or cffi's exact error at access (a global variable, `extern "Python"`, a
    /// constant only a compiler knows, a signature cffi rejects) installs `__getattr__`.
    /// A declared function missing from the library is left out: accessing it raises the
    /// module's AttributeError.
    fn _sync(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.borrow();
        let Some(dict) = this
            .dict
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|d| d.clone_ref(py))
        else {
            return Ok(());
        };
        let d = dict.bind(py);
        let hook = pyo3::intern!(py, "__getattr__");
        if d.contains(hook)? {
            return Ok(());
        }
        let Some(handle) = this
            .handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return Ok(());
        };
        if let Some(module) = this.ffi.ool.get() {
            let needs_hook = this.sync_out_of_line(py, d, &handle, module)?;
            if needs_hook {
                drop(this);
                d.set_item(hook, slf.getattr("_getattr")?)?;
            }
            return Ok(());
        }
        let mut needs_hook = false;
        let mut pending: Vec<(String, Decl)> = Vec::new();
        {
            let ns = this.ffi.lock_ns();
            for name in &ns.decls.order {
                match ns.decls.names.get(name) {
                    Some(d @ (Decl::Function(_) | Decl::IntConstant { .. }))
                        if partial_enum(d).is_none() =>
                    {
                        pending.push((name.clone(), d.clone()))
                    }
                    Some(_) => {
                        needs_hook = true;
                        break;
                    }
                    None => {}
                }
            }
        }
        if !needs_hook {
            let _pause = GcPause::new(py);
            for (name, decl) in pending {
                let key = PyString::new(py, &name);
                if d.contains(&key)? {
                    continue;
                }
                match decl {
                    Decl::Function(fty) => {
                        if function::check_signature(&fty).is_err() {
                            needs_hook = true;
                            break;
                        }
                        let Ok(cname) = std::ffi::CString::new(name) else {
                            continue;
                        };
                        let Ok(addr) = handle.symbol_c(&cname) else {
                            continue;
                        };
                        let spec = function::DeferredSpec {
                            name: cname,
                            fn_type: Some(fty),
                            resolver: None,
                            address: addr,
                            release_gil: this.release_gil,
                            keepalive: vec![this.ffi_obj.clone_ref(py)],
                            library: Some(handle.clone()),
                            ctx: this.ffi.clone(),
                        };
                        d.set_item(&key, function::make_deferred_function(py, spec)?)?;
                    }
                    Decl::IntConstant { value, .. } => d.set_item(&key, value)?,
                    _ => {}
                }
            }
        }
        if needs_hook {
            drop(this);
            d.set_item(hook, slf.getattr("_getattr")?)?;
        }
        Ok(())
    }

    /// `lib.name = value` on a lib whose ffi declares global variables (the `__setattr__`
    /// of jitffi's module subclass for such libs).
    fn _setattr(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyString>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let n = name.to_str()?;
        match self.lookup(n)? {
            Some(Decl::Variable { ty, is_const }) => {
                if is_const {
                    return Err(PyAttributeError::new_err(format!(
                        "cannot write to the constant global '{n}'"
                    )));
                }
                let addr = self.variable_symbol(n)?;
                // SAFETY: dlsym found the variable `n` at `addr`, declared with type `ty`:
                // the library's own storage for a `ty`, mapped while the handle is open.
                unsafe { convert::write_value(py, &self.ffi, &ty, value, addr as *mut u8) }
            }
            Some(_) => Err(PyAttributeError::new_err(format!(
                "cannot assign to '{n}': not a global variable"
            ))),
            None => Err(PyAttributeError::new_err(format!(
                "cffi library '{}' has no global variable named '{n}'",
                self.name
            ))),
        }
    }

    /// Takes the new lib module's namespace (whose `__loader__` is this state) and fills
    /// it (`_sync`). Once: a lib has one module.
    fn _attach(slf: &Bound<'_, Self>, namespace: &Bound<'_, PyDict>) -> PyResult<()> {
        {
            let this = slf.borrow();
            let mut dict = this.dict.lock().unwrap_or_else(|e| e.into_inner());
            if dict.is_some() {
                return Err(PyValueError::new_err(format!(
                    "library '{}' already has its module",
                    this.name
                )));
            }
            *dict = Some(namespace.clone().unbind());
        }
        Self::_sync(slf)
    }

    /// The lib module's `__dir__`: the declared functions, variables and constants.
    fn _dir(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        if let Some(module) = self.ffi.ool.get() {
            let names = lazy::lib_entries(module).into_iter().map(|(n, _)| n);
            return Ok(PyList::new(py, names)?.unbind());
        }
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

    /// Python 3.11's `module.__repr__` asks the module's `__loader__`.
    fn module_repr(&self, _module: &Bound<'_, PyAny>) -> String {
        self.__repr__()
    }

    fn __repr__(&self) -> String {
        format!("<jitffi.Lib object for '{}'>", self.name)
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.ffi_obj)?;
        if let Some(d) = self.dict.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            visit.call(d)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        self.dict.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// The declaration of `name` in `ffi`; an out-of-line module's FFI declares it now (from
/// its tables) if it has not yet.
fn lookup_in(ffi: &FfiRef, name: &str) -> PyResult<Option<Decl>> {
    let mut ns = ffi.lock_ns();
    if let Some(d) = ns.decls.names.get(name) {
        return Ok(Some(d.clone()));
    }
    let Some(module) = ffi.ool.get() else {
        return Ok(None);
    };
    realizing(|| lazy::declare_global(module, &mut ns, name))?;
    Ok(ns.decls.names.get(name).cloned())
}

impl Lib {
    /// `_sync` for an out-of-line module's lib: from the tables alone, no type realized
    /// (each function finds its type at its first use). Returns whether the lib needs
    /// `__getattr__` (as `_sync` decides it).
    fn sync_out_of_line(
        &self,
        py: Python<'_>,
        d: &Bound<'_, PyDict>,
        handle: &Arc<LibHandle>,
        module: &crate::ool::Include,
    ) -> PyResult<bool> {
        let m = lazy::module_of(module);
        let (entries, included) = realizing(|| {
            let e: Vec<LibEntry> = (0..m.tables.globals.len())
                .map(|gi| lazy::lib_entry(&m, gi))
                .collect();
            Ok((e, lazy::included_constants(module)))
        })?;
        if entries
            .iter()
            .any(|e| matches!(e, LibEntry::Variable | LibEntry::BadFunction))
        {
            return Ok(true);
        }
        let _pause = GcPause::new(py);
        let ffi = self.ffi.clone();
        let resolver: function::TypeResolver =
            Arc::new(move |name: &str| match lookup_in(&ffi, name)? {
                Some(Decl::Function(t)) => Ok(t),
                _ => Err(PyAttributeError::new_err(format!(
                    "'{name}' is not a function"
                ))),
            });
        // (only ever run once per lib: an out-of-line module's ffi declares nothing
        // after dlopen, so the namespace holds none of these names yet)
        for (g, entry) in m.tables.globals.iter().zip(entries) {
            let name = g.name.as_str();
            match entry {
                LibEntry::Function => {
                    // (names were checked to be identifiers when the tables were read)
                    let Ok(cname) = std::ffi::CString::new(name) else {
                        continue;
                    };
                    let Ok(addr) = handle.symbol_c(&cname) else {
                        continue;
                    };
                    let spec = function::DeferredSpec {
                        name: cname,
                        fn_type: None,
                        resolver: Some(resolver.clone()),
                        address: addr,
                        release_gil: self.release_gil,
                        keepalive: vec![self.ffi_obj.clone_ref(py)],
                        library: Some(handle.clone()),
                        ctx: self.ffi.clone(),
                    };
                    let f = function::make_deferred_function(py, spec)?;
                    d.set_item(PyString::new(py, name), f)?;
                }
                LibEntry::Int(v) => d.set_item(PyString::new(py, name), v)?,
                LibEntry::Variable | LibEntry::BadFunction => {}
            }
        }
        // The included modules' integer constants, where the module has no such name.
        for (name, v) in included {
            if m.global_index(&name).is_none() {
                let key = PyString::new(py, &name);
                if !d.contains(&key)? {
                    d.set_item(key, v)?;
                }
            }
        }
        Ok(false)
    }
}

/// Pauses the cyclic garbage collector while a lib creates its function objects: the
/// thousands of new, all-live GC objects would otherwise set off collections that only
/// traverse them. The previous state comes back on drop (the GIL is held throughout, so
/// no other thread changes it in between).
struct GcPause(bool);

impl GcPause {
    fn new(_py: Python<'_>) -> GcPause {
        // SAFETY: the GIL is held (`_py`).
        GcPause(unsafe { pyo3::ffi::PyGC_Disable() } != 0)
    }
}

impl Drop for GcPause {
    fn drop(&mut self) {
        if self.0 {
            // SAFETY: made with the GIL held, and dropped in the same scope.
            unsafe { pyo3::ffi::PyGC_Enable() };
        }
    }
}

/// The state of a lib module (exact module or jitffi's subclass for libs with globals).
pub fn lib_state<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, Lib>> {
    let module = obj.cast::<PyModule>().ok()?;
    let loader = module
        .dict()
        .get_item(pyo3::intern!(obj.py(), "__loader__"))
        .ok()??;
    loader.cast_into::<Lib>().ok()
}

fn read_global(
    py: Python<'_>,
    slf: &Bound<'_, Lib>,
    ty: &crate::types::model::TypeRef,
    addr: usize,
) -> PyResult<Py<PyAny>> {
    let this = slf.borrow();
    match &ty.kind {
        // `extern int a[];`: its length is unknown, so (as cffi) a pointer to the items.
        Kind::Array(item, None) => {
            convert::cdata_from_pointer(py, &this.ffi, &this.ffi.pointer_to(item), addr)
        }
        // Arrays and structs: non-owning cdata over the library's memory.
        Kind::Array(_, n) => {
            Ok(
                CData::new_view(py, this.ffi.ctype_of(py, ty), addr, n.unwrap_or(0), None, 0)?
                    .into_any(),
            )
        }
        Kind::Record(_) => {
            Ok(CData::new_view(py, this.ffi.ctype_of(py, ty), addr, 0, None, 0)?.into_any())
        }
        // SAFETY: `addr` is where dlsym found a global declared with type `ty`: storage
        // for a `ty`, mapped while the library is open.
        _ => unsafe { convert::read_value(py, &this.ffi, ty, addr as *const u8) },
    }
}

/// `ffi.addressof(lib, "name")`: a pointer cdata to a global variable, or the function as
/// a function-pointer cdata.
pub fn addressof_lib(py: Python<'_>, lib: &Bound<'_, Lib>, name: &str) -> PyResult<Py<PyAny>> {
    let this = lib.borrow();
    if let Some(Decl::ExternPython(fty)) = this.lookup(name)? {
        return Ok(crate::py::callback::extern_python_cdata(
            py,
            this.ffi_obj.bind(py),
            &this.ffi,
            name,
            &fty,
        )?
        .into_any());
    }
    if this.is_compiled() {
        // A compiled FFI reads a `const` global once, as a constant (DLOPEN_CONST).
        if let Some(Decl::Variable { is_const: true, .. }) = this.lookup(name)? {
            return Err(PyAttributeError::new_err(format!(
                "cannot take the address of the constant '{name}'"
            )));
        }
    }
    let (addr, decl) = this.address_of(name)?;
    match decl {
        Decl::Function(fty) => convert::cdata_from_pointer(py, &this.ffi, &fty, addr),
        Decl::Variable { ty, .. } => {
            // (an array of unknown length: a pointer to its items, as reading it gives)
            let pty = match &ty.kind {
                Kind::Array(item, None) => this.ffi.pointer_to(item),
                _ => this.ffi.pointer_to(&ty),
            };
            convert::cdata_from_pointer(py, &this.ffi, &pty, addr)
        }
        _ => Err(this.no_such(name)),
    }
}

/// `ffi.dlopen(name, flags)` without the Python layer's `ctypes.util.find_library`
/// fallback: `name` is None (the process's global namespace), a path or a library name,
/// or an already-open handle as a `void *` cdata (never closed by us). `path`, when
/// given, is the file found for the str `name`: it is opened instead, while the lib
/// keeps `name` for its repr and messages.
pub fn dlopen(
    ffi: FfiRef,
    ffi_obj: Py<PyAny>,
    name: &Bound<'_, PyAny>,
    flags: i32,
    release_gil: bool,
    path: Option<&str>,
) -> PyResult<Lib> {
    let flags = if flags == 0 { libc::RTLD_NOW } else { flags };
    let (handle, shown) = if name.is_none() {
        // SAFETY: loading what the user asked for is what `ffi.dlopen` is for (here: the
        // process's global namespace, already loaded).
        let h = unsafe { LibHandle::open(None, flags) }
            .map_err(|e| PyOSError::new_err(format!("cannot load the C library: {e}")))?;
        (h, "<None>".to_string())
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
        // SAFETY: as in cffi, the user vouches that the pointer is a dlopen handle and
        // that it stays open while the lib and its functions are used.
        let h = unsafe { LibHandle::borrowed(c.addr as *mut std::ffi::c_void) };
        (h, format!("<handle 0x{:x}>", c.addr))
    } else if let Ok(s) = name.cast::<PyString>() {
        let s = s.to_str()?;
        let file = path.unwrap_or(s);
        // SAFETY: loading the library the user named runs its initialisers: foreign code
        // the user chose, as any call through the ffi.
        let h = unsafe { LibHandle::open(Some(file), flags) }.map_err(|e| open_error(file, &e))?;
        (h, s.to_string())
    } else {
        return Err(PyTypeError::new_err(format!(
            "dlopen() expects a str, None or a 'void *' cdata, not {}",
            name.get_type().name()?
        )));
    };
    Ok(Lib {
        ffi,
        ffi_obj,
        handle: Mutex::new(Some(Arc::new(handle))),
        name: shown,
        release_gil,
        dict: Mutex::new(None),
    })
}

fn open_error(file: &str, e: &DlError) -> PyErr {
    PyOSError::new_err(format!("cannot load library '{file}': {e}"))
}

/// `ffi.dlclose(lib)`: later attribute access raises; the library itself is unmapped
/// once the functions already taken from it are gone too. The Python layer then empties
/// the module's namespace.
pub fn dlclose(lib: &Bound<'_, PyAny>) -> PyResult<()> {
    let state = lib_state(lib).ok_or_else(|| {
        PyTypeError::new_err(format!(
            "dlclose() expects a library object, not {}",
            lib.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let this = state.borrow();
    // Closing a closed library again does nothing, as in cffi.
    drop(this.handle.lock().unwrap_or_else(|e| e.into_inner()).take());
    Ok(())
}

/// Whether the ffi declares any global variable (the Python layer then gives its libs a
/// `__setattr__`).
pub fn declares_globals(ffi: &FfiRef) -> bool {
    if let Some(module) = ffi.ool.get() {
        return lazy::lib_entries(module)
            .iter()
            .any(|(_, e)| *e == LibEntry::Variable);
    }
    ffi.lock_ns()
        .decls
        .names
        .values()
        .any(|d| matches!(d, Decl::Variable { .. }))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Lib>()
}

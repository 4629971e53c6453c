//! Out-of-line ABI modules on the Python side: writing one for what an FFI declared
//! (`ffi.emit_python_code`, `ffi.compile`), and giving a new FFI the tables such a
//! module passes to `_cffi_backend.FFI(...)` (its own or cffi's), whose names it then
//! declares at their first use (`crate::ool::lazy`). The tables themselves are
//! `crate::ool`'s.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyImportError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::ool::tables::GlobalKind;
use crate::ool::{self, Include, RawTables, Realizer};
use crate::py::convert;
use crate::py::errors::{internal_error, VerificationError, VerificationMissing};
use crate::py::state::FfiRef;

/// The decoded tables of one loaded module, kept by its FFI (`ffi._ool`) so that modules
/// listing it in `_includes` can resolve their external structs and unions through it.
#[pyclass(module = "jitffi._jitffi", name = "_OutOfLineModule", frozen)]
pub struct OutOfLineModule {
    realizer: Include,
    list: (Vec<String>, Vec<String>, Vec<String>),
}

#[pymethods]
impl OutOfLineModule {
    /// `ffi.list_types()` as cffi's compiled FFI answers it.
    fn list_types(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        self.list.clone()
    }

    /// The value of the integer constant or enumerator `name` of this module, or None.
    fn integer_const(&self, name: &str) -> Option<i128> {
        let r = self.realizer.lock().unwrap_or_else(|p| p.into_inner());
        let m = r.module();
        match m.tables.globals[m.global_index(name)?].kind {
            GlobalKind::IntConstant { value } | GlobalKind::Enumerator { value } => Some(value),
            _ => None,
        }
    }
}

/// The text of the module `module_name` for what `shared` declared, the included FFIs
/// being `included` with their module names; it imports `backend` as its backend module.
pub fn emit(
    shared: &FfiRef,
    module_name: &str,
    backend: &str,
    included: &[(FfiRef, String)],
) -> PyResult<String> {
    // Each namespace is locked once (a second lock of the same one would never return).
    for (i, (f, _)) in included.iter().enumerate() {
        if Arc::ptr_eq(f, shared) || included[..i].iter().any(|(g, _)| Arc::ptr_eq(f, g)) {
            return Err(PyValueError::new_err("an ffi is included more than once"));
        }
    }
    let guards: Vec<_> = included.iter().map(|(f, _)| f.lock_ns()).collect();
    let refs: Vec<&crate::cdef::Namespace> = guards.iter().map(|g| &**g).collect();
    let tables = {
        let mut ns = shared.lock_ns();
        catch_unwind(AssertUnwindSafe(|| {
            ool::encode_with_includes(&mut ns, &refs)
        }))
    }
    .map_err(internal_error)?
    .map_err(encode_error)?;
    let names: Vec<String> = included.iter().map(|(_, n)| n.clone()).collect();
    Ok(ool::render_module(
        module_name,
        backend,
        &tables.to_raw(),
        &names,
    ))
}

/// cffi's exception type for each reason a module cannot be written.
fn encode_error(e: ool::EncodeError) -> PyErr {
    match e {
        ool::EncodeError::ArrayTooLong { .. } => PyOverflowError::new_err(e.to_string()),
        ool::EncodeError::PartialEnum { .. } => VerificationMissing::new_err(e.to_string()),
        _ => VerificationError::new_err(e.to_string()),
    }
}

fn table_err(module_name: &str, e: impl std::fmt::Display) -> PyErr {
    PyImportError::new_err(format!(
        "cffi out-of-line Python module '{module_name}': {e}"
    ))
}

fn bytes_of(what: &str, o: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    match o.cast::<PyBytes>() {
        Ok(b) => Ok(b.as_bytes().to_vec()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{what}: expected bytes, got {}",
            convert::describe(o)
        ))),
    }
}

fn tuple_of<'py>(what: &str, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    o.cast::<PyTuple>().cloned().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what}: expected a tuple, got {}",
            convert::describe(o)
        ))
    })
}

/// The module's arguments as `RawTables` (a wrong Python type is a TypeError).
fn raw_tables(
    types: &Bound<'_, PyAny>,
    globals: Option<&Bound<'_, PyAny>>,
    struct_unions: Option<&Bound<'_, PyAny>>,
    enums: Option<&Bound<'_, PyAny>>,
    typenames: Option<&Bound<'_, PyAny>>,
    num_includes: usize,
) -> PyResult<RawTables> {
    let mut raw = RawTables {
        types: bytes_of("_types", types)?,
        num_includes,
        ..RawTables::default()
    };
    if let Some(g) = globals {
        let g = tuple_of("_globals", g)?;
        if g.len() % 2 != 0 {
            return Err(PyTypeError::new_err(
                "_globals: expected pairs of (bytes, int) items",
            ));
        }
        for i in (0..g.len()).step_by(2) {
            let name = bytes_of("_globals", &g.get_item(i)?)?;
            let v = g.get_item(i + 1)?;
            let value: i128 = v.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "_globals: expected an int after each name, got {}",
                    convert::describe(&v)
                ))
            })?;
            raw.globals.push((name, value));
        }
    }
    if let Some(s) = struct_unions {
        for entry in tuple_of("_struct_unions", s)?.iter() {
            let items = tuple_of("_struct_unions", &entry)?;
            let mut v = Vec::with_capacity(items.len());
            for it in items.iter() {
                v.push(bytes_of("_struct_unions", &it)?);
            }
            raw.struct_unions.push(v);
        }
    }
    if let Some(e) = enums {
        for it in tuple_of("_enums", e)?.iter() {
            raw.enums.push(bytes_of("_enums", &it)?);
        }
    }
    if let Some(t) = typenames {
        for it in tuple_of("_typenames", t)?.iter() {
            raw.typenames.push(bytes_of("_typenames", &it)?);
        }
    }
    Ok(raw)
}

/// Gives the new (empty) FFI `shared` a module's tables. They are decoded and checked
/// completely here (an error leaves the FFI as empty as it was); the types are realized
/// when first named.
#[allow(clippy::too_many_arguments)]
pub fn load(
    shared: &FfiRef,
    module_name: &str,
    version: Option<i64>,
    types: &Bound<'_, PyAny>,
    globals: Option<&Bound<'_, PyAny>>,
    struct_unions: Option<&Bound<'_, PyAny>>,
    enums: Option<&Bound<'_, PyAny>>,
    typenames: Option<&Bound<'_, PyAny>>,
    includes: Vec<Bound<'_, OutOfLineModule>>,
) -> PyResult<OutOfLineModule> {
    let raw = raw_tables(
        types,
        globals,
        struct_unions,
        enums,
        typenames,
        includes.len(),
    )?;
    let has_tables = ool::check_version(version, raw.types.is_empty()).map_err(|e| {
        PyImportError::new_err(format!(
            "cffi out-of-line Python module '{module_name}' has {e}"
        ))
    })?;
    let raw = if has_tables {
        raw
    } else {
        // As cffi: without a version only an empty `_types` is valid, and the rest is
        // ignored.
        RawTables {
            num_includes: includes.len(),
            ..RawTables::default()
        }
    };
    // These tables come from files on disk: a bug the fuzzing missed is an
    // InternalError, never a panic crossing into Python.
    let module = catch_unwind(|| ool::decode(&raw))
        .map_err(internal_error)?
        .map_err(|e| table_err(module_name, e))?;
    let incs: Vec<Include> = includes.iter().map(|m| m.get().realizer.clone()).collect();
    let r = Realizer::new(Arc::new(module), shared.target, incs);
    let list = r.list_types();
    let realizer: Include = Arc::new(Mutex::new(r));
    // Nothing is realized here: the namespace declares each name at its first use
    // (`ool::lazy`).
    if shared.ool.set(realizer.clone()).is_err() {
        return Err(PyValueError::new_err("this ffi already has its tables"));
    }
    Ok(OutOfLineModule { realizer, list })
}

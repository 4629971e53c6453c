//! Declaring C: `ffi.cdef` (with its packing options) and `ffi.include`.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::cdef::CdefOptions;
use crate::py::convert;
use crate::py::errors::cdef_err;
use crate::py::state::{FfiRef, FFI};
use crate::types::model::Kind;

/// `ffi.cdef(csource, override, packed, pack)`.
pub fn cdef(
    py: Python<'_>,
    shared: &FfiRef,
    csource: &Bound<'_, PyAny>,
    r#override: bool,
    packed: bool,
    pack: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let src = csource.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "cdef() argument must be a string, not {}",
            convert::describe(csource)
        ))
    })?;
    let pack = match pack {
        None => None,
        Some(p) if p.is_none() => None,
        Some(p) => {
            let n: i64 = p.extract()?;
            if n == 0 {
                // (cffi: 0 is no `pack`)
                None
            } else if n < 0 || (n & (n - 1)) != 0 {
                return Err(PyValueError::new_err(format!(
                    "'pack' must be a power of two, not {n}"
                )));
            } else {
                Some(n as u32)
            }
        }
    };
    if packed && pack.is_some() {
        return Err(PyValueError::new_err(
            "cannot give both 'pack' and 'packed'",
        ));
    }
    let opts = CdefOptions {
        override_: r#override,
        packed,
        pack: if packed { Some(1) } else { pack },
    };
    let text = src.to_str()?.to_string();
    let r = {
        let mut ns = shared.lock_ns();
        ns.cdef(&text, &opts)
    };
    shared.clear_type_cache(py);
    r.map_err(cdef_err)
}

/// `ffi.include(other)`.
pub fn include(py: Python<'_>, shared: &FfiRef, other: &Bound<'_, PyAny>) -> PyResult<()> {
    let Ok(o) = other.cast::<FFI>() else {
        return Err(PyTypeError::new_err(format!(
            "ffi.include() expects an argument that is also of type cffi.FFI, not {}",
            convert::describe(other)
        )));
    };
    let o = o.get();
    if std::sync::Arc::ptr_eq(&o.shared, shared) {
        return Err(PyValueError::new_err("self.include(self)"));
    }
    let r = {
        let other_ns = o.shared.lock_ns();
        let mut ns = shared.lock_ns();
        ns.include(&other_ns)
    };
    shared.clear_type_cache(py);
    r.map_err(cdef_err)
}

/// The integer constants declared so far (`#define`, `static const`, enumerators), in
/// declaration order: what cffi's parser keeps as `_int_constants`.
pub fn int_constants(shared: &FfiRef) -> Vec<(String, i128)> {
    let ns = shared.lock_ns();
    ns.decls
        .order
        .iter()
        .filter_map(|name| match ns.decls.names.get(name) {
            Some(crate::types::decls::Decl::IntConstant { value, .. }) => {
                Some((name.clone(), *value))
            }
            _ => None,
        })
        .collect()
}

/// The names of what was declared, spelled as cffi's parser keys its declarations
/// (`function f`, `variable v`, `macro M`, `typedef t`, `struct s`, `anonymous t`, ...);
/// enumerators are part of their enum, as in cffi.
pub fn declared_keys(shared: &FfiRef) -> Vec<String> {
    use crate::types::decls::Decl;
    let ns = shared.lock_ns();
    let d = &ns.decls;
    let mut keys = Vec::with_capacity(d.order.len() + d.typedefs.len());
    for name in &d.order {
        let kind = match d.names.get(name) {
            Some(Decl::Function(_)) => "function",
            Some(Decl::ExternPython(_)) => "extern_python",
            Some(Decl::Variable { .. }) => "variable",
            Some(Decl::IntConstant { ty: Some(t), .. }) if matches!(t.kind, Kind::Enum(_)) => {
                continue
            }
            Some(Decl::IntConstant { .. }) | Some(Decl::UnknownConstant { ty: None }) => "macro",
            Some(Decl::UnknownConstant { .. }) => "constant",
            None => continue,
        };
        keys.push(format!("{kind} {name}"));
    }
    for (name, ty) in &d.typedefs {
        keys.push(format!("typedef {name}"));
        if matches!(&ty.kind, Kind::Record(r) if r.tag.is_none()) {
            keys.push(format!("anonymous {name}"));
        }
    }
    for (kind, map) in [
        ("struct", &d.structs),
        ("union", &d.unions),
        ("enum", &d.enums),
    ] {
        for name in map.keys() {
            keys.push(format!("{kind} {name}"));
        }
    }
    keys.sort();
    keys
}

/// What `name` was declared as, for an FFI over another backend (`FFI(backend=...)`,
/// python/jitffi/_foreign_backend.py): ("function", its CType, the function pointer's),
/// ("variable", its CType) or ("constant", its integer value); None otherwise.
pub fn declared(
    py: Python<'_>,
    shared: &FfiRef,
    name: &str,
) -> PyResult<Option<(&'static str, Py<PyAny>)>> {
    use crate::types::decls::Decl;
    // (cloned, so that making CTypes below does not run under the namespace's lock)
    let decl = shared.lock_ns().decls.names.get(name).cloned();
    Ok(match decl {
        Some(Decl::Function(fty)) => Some(("function", shared.ctype_of(py, &fty).into_any())),
        Some(Decl::Variable { ty, .. }) => Some(("variable", shared.ctype_of(py, &ty).into_any())),
        Some(Decl::IntConstant { value, .. }) => {
            Some(("constant", value.into_pyobject(py)?.into_any().unbind()))
        }
        _ => None,
    })
}

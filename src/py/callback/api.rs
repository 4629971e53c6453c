//! The Python side of callbacks: `ffi.callback`, `ffi.def_extern`, and the
//! `extern "Python"` function pointers that `lib.name` / `ffi.addressof(lib, "name")`
//! give. Plain functions; the `FFI` methods are thin calls of these
//! (`py::ffi_callback_methods`), and the decorator forms are Python
//! (`jitffi/_callbacks.py`).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyTuple};

use crate::types::decls::Decl;
use crate::types::model::{Kind, TypeRef};

use super::super::cdata::{CData, Owner};
use super::super::ctype::CType;
use super::super::errors::FFIError;
use super::super::state::FfiRef;
use super::core::CallbackHandle;
use super::create::{bind_extern, check_onerror, new_callback, new_extern_core};

/// The function-pointer ctype of a `callback` cdecl: a CType, `"int(*)(int)"`, or the
/// function type `"int(int)"` (cffi accepts both spellings here). Cached per FFI.
fn callback_ctype<'py>(shared: &FfiRef, cdecl: &Bound<'py, PyAny>) -> PyResult<Bound<'py, CType>> {
    let py = cdecl.py();
    let ct = if let Ok(s) = cdecl.cast::<PyString>() {
        let cache = shared.type_cache.bind(py);
        // "int(int)" (cffi's usual spelling) is not a type string of its own: cached
        // under ("callback", text); "int(*)(int)" is in the FFI's own cache once parsed.
        let key = PyTuple::new(py, [pyo3::intern!(py, "callback").as_any(), s.as_any()])?;
        if let Some(hit) = cache.get_item(&key)? {
            if let Ok(ct) = hit.cast_into::<CType>() {
                return Ok(ct);
            }
        }
        if let Some(hit) = cache.get_item(s)? {
            if let Ok(ct) = hit.cast_into::<CType>() {
                if matches!(ct.get().ty.kind, Kind::FuncPtr(_)) {
                    return Ok(ct);
                }
            }
        }
        let as_pointer = || -> Option<PyResult<Bound<'py, CType>>> {
            let ptr_text = function_type_as_pointer(s.to_str().ok()?)?;
            let r = shared.parse_ctype(&PyString::new(py, &ptr_text));
            if r.is_err() {
                // a named function type (`int foo(int)`), as cffi accepts: `int (*foo)(int)`
                let named = named_function_type_as_pointer(s.to_str().ok()?)?;
                return Some(shared.parse_ctype(&PyString::new(py, &named)));
            }
            Some(r)
        };
        // Without any `*`, the text is not a pointer type of its own: a function type
        // (cffi's usual spelling) or a parenthesized declarator, whose pointer spelling
        // wins below anyway. Trying that spelling first spares the failing parse (and
        // its error) on the common path; when it is not a function pointer, the text is
        // decided as before.
        if !s.to_str().is_ok_and(|t| t.contains('*')) {
            if let Some(Ok(p)) = as_pointer() {
                if matches!(p.get().ty.kind, Kind::FuncPtr(_)) {
                    cache.set_item(&key, &p)?;
                    return Ok(p);
                }
            }
        }
        let ct = match shared.parse_ctype(s) {
            Ok(ct) if matches!(ct.get().ty.kind, Kind::FuncPtr(_)) => ct,
            // `T(T)` with a typedef name T may parse as a parenthesized declarator.
            Ok(ct) => match as_pointer() {
                Some(Ok(p)) if matches!(p.get().ty.kind, Kind::FuncPtr(_)) => p,
                _ => ct,
            },
            // `T(args)`, a function type, is not a type of its own: its pointer spelling
            // is what a callback of it means. Decided by the pointer spelling parsing
            // to a function pointer, not by the first error.
            Err(e) => match as_pointer() {
                Some(Ok(p)) if matches!(p.get().ty.kind, Kind::FuncPtr(_)) => p,
                _ => return Err(e),
            },
        };
        if matches!(ct.get().ty.kind, Kind::FuncPtr(_)) {
            cache.set_item(&key, &ct)?;
        }
        ct
    } else if let Ok(ct) = cdecl.cast::<CType>() {
        ct.clone()
    } else {
        return Err(PyTypeError::new_err(format!(
            "expected a cdecl string or a ctype object, got {}",
            cdecl.get_type().name()?
        )));
    };
    if !matches!(ct.get().ty.kind, Kind::FuncPtr(_)) {
        return Err(PyTypeError::new_err(format!(
            "expected a function ctype, got '{}'",
            ct.get().ty.cname()
        )));
    }
    Ok(ct)
}

/// `"int(int)"` → `"int(*)(int)"`: inserts `(*)` before the parameter list that closes
/// the string.
fn function_type_as_pointer(text: &str) -> Option<String> {
    let t = text.trim_end();
    if !t.ends_with(')') {
        return None;
    }
    let mut depth = 0i32;
    for (i, c) in t.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return Some(format!("{}(*){}", &t[..i], &t[i..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// `"int foo(int)"` → `"int (*foo)(int)"`, from `function_type_as_pointer`'s spelling.
fn named_function_type_as_pointer(text: &str) -> Option<String> {
    let p = function_type_as_pointer(text)?;
    let at = p.find("(*)")?;
    let head = p[..at].trim_end();
    let name_at = head
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .map_or(0, |j| j + 1);
    let (base, name) = head.split_at(name_at);
    (!base.trim().is_empty() && !name.is_empty())
        .then(|| format!("{base}(*{name}){}", &p[at + 3..]))
}

fn make_callback_cdata(
    py: Python<'_>,
    shared: &FfiRef,
    ct: &Bound<'_, CType>,
    callable: &Bound<'_, PyAny>,
    error: Option<&Bound<'_, PyAny>>,
    onerror: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let ty = ct.get().ty.clone();
    let onerror = onerror.filter(|o| !o.is_none()).map(|o| o.clone().unbind());
    let core = new_callback(py, shared, &ty, callable.clone().unbind(), error, onerror)?;
    let addr = core.code_ptr() as usize;
    // Empty repr: printed through `callback_target` when asked for.
    let owner = Owner::Custom {
        payload: Box::new(CallbackHandle(Some(core))),
        repr: String::new().into(),
    };
    Ok(CData::new_owning(py, ct.clone().unbind(), addr, 0, 0, owner)?.into_any())
}

/// What a callback cdata calls, for its repr.
pub(super) fn callback_target(
    py: Python<'_>,
    payload: &(dyn std::any::Any + Send + Sync),
) -> Option<Py<PyAny>> {
    payload
        .downcast_ref::<CallbackHandle>()?
        .core()
        .callable(py)
}

/// The C function pointer of `extern "Python"` function `name` of type `fty` (a cdata,
/// the same object every time, so C may keep the address across `def_extern` calls).
/// Kept in a table in the FFI object's `__dict__` (`jitffi._callbacks.extern_python`),
/// so it lives exactly as long as the FFI; made by [`new_extern_python_cdata`] at the
/// first use.
pub fn extern_python_cdata(
    py: Python<'_>,
    ffi_obj: &Bound<'_, PyAny>,
    _shared: &FfiRef,
    name: &str,
    _fty: &TypeRef,
) -> PyResult<Py<CData>> {
    // `shared` and `fty` are the FFI's and the declaration's: `new_extern_python_cdata`
    // finds them again from `ffi_obj` and `name`.
    let cd = python_glue(py)?
        .getattr(pyo3::intern!(py, "extern_python"))?
        .call1((ffi_obj, name))?;
    Ok(cd.cast_into::<CData>()?.unbind())
}

/// A new cdata for `extern "Python"` function `name` of FFI `shared` (not bound yet).
pub fn new_extern_python_cdata(py: Python<'_>, shared: &FfiRef, name: &str) -> PyResult<Py<CData>> {
    let decl = shared.lock_ns().decls.names.get(name).cloned();
    let Some(Decl::ExternPython(fty)) = decl else {
        return Err(FFIError::new_err(format!(
            "no 'extern \"Python\"' function named '{name}'"
        )));
    };
    let core = new_extern_core(py, shared, &fty, name)?;
    let addr = core.code_ptr() as usize;
    let ct = shared.ctype_of(py, &fty);
    let owner = Owner::Custom {
        payload: Box::new(CallbackHandle(Some(core))),
        repr: format!("extern \"Python\" {name}()").into(),
    };
    CData::new_owning(py, ct, addr, 0, 0, owner)
}

pub fn def_extern_bind(
    py: Python<'_>,
    ffi_obj: &Bound<'_, PyAny>,
    shared: &FfiRef,
    func: &Bound<'_, PyAny>,
    name: Option<&str>,
    error: Option<&Bound<'_, PyAny>>,
    onerror: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let name: String = match name {
        Some(n) => n.to_string(),
        None => func.getattr("__name__")?.extract()?,
    };
    if !func.is_callable() {
        return Err(PyTypeError::new_err(
            "the 'python_callable' argument is not callable",
        ));
    }
    let decl = shared.lock_ns().decls.names.get(&name).cloned();
    let Some(Decl::ExternPython(fty)) = decl else {
        return Err(FFIError::new_err(format!(
            "ffi.def_extern('{name}'): no 'extern \"Python\"' function with this name"
        )));
    };
    let cd = extern_python_cdata(py, ffi_obj, shared, &name, &fty)?;
    let cd = cd.bind(py).get();
    let st = cd.state.get(py);
    let Owner::Custom { payload, .. } = &st.owner else {
        unreachable!("extern cdata own their core")
    };
    let core = payload
        .downcast_ref::<CallbackHandle>()
        .expect("extern cdata hold a callback")
        .core();
    let onerror = onerror.filter(|o| !o.is_none()).map(|o| o.clone().unbind());
    bind_extern(py, core, func.clone().unbind(), error, onerror)
}

/// `jitffi._callbacks`, where the decorator forms live.
fn python_glue(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    MODULE
        .get_or_try_init(py, || py.import("jitffi._callbacks").map(Bound::unbind))
        .map(|m| m.bind(py))
}

fn check_onerror_arg(py: Python<'_>, onerror: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    check_onerror(py, onerror.filter(|o| !o.is_none()))
}

/// `ffi.callback(cdecl, python_callable=None, error=None, onerror=None)` of the FFI
/// object `ffi_obj` (state `shared`); without `python_callable`, a decorator.
pub fn ffi_callback(
    py: Python<'_>,
    ffi_obj: &Bound<'_, PyAny>,
    shared: &FfiRef,
    cdecl: &Bound<'_, PyAny>,
    python_callable: Option<&Bound<'_, PyAny>>,
    error: Option<&Bound<'_, PyAny>>,
    onerror: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let ct = callback_ctype(shared, cdecl)?;
    if let Some(f) = python_callable.filter(|f| !f.is_none()) {
        return make_callback_cdata(py, shared, &ct, f, error, onerror);
    }
    check_onerror_arg(py, onerror)?;
    let none = py.None().into_bound(py);
    let deco = python_glue(py)?.getattr("callback_decorator")?.call1((
        ffi_obj,
        ct,
        error.unwrap_or(&none),
        onerror.unwrap_or(&none),
    ))?;
    Ok(deco.unbind())
}

/// `@ffi.def_extern(name=None, error=None, onerror=None)`: the decorator that binds a
/// function to an `extern "Python"` declaration (ABI mode too, unlike cffi).
pub fn ffi_def_extern(
    py: Python<'_>,
    ffi_obj: &Bound<'_, PyAny>,
    name: Option<&str>,
    error: Option<&Bound<'_, PyAny>>,
    onerror: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    check_onerror_arg(py, onerror)?;
    let none = py.None().into_bound(py);
    let deco = python_glue(py)?.getattr("def_extern_decorator")?.call1((
        ffi_obj,
        name,
        error.unwrap_or(&none),
        onerror.unwrap_or(&none),
    ))?;
    Ok(deco.unbind())
}

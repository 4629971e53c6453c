//! The `FFI` methods of callbacks, as thin calls of `callback::api` (to be folded into
//! ffi.rs with the other methods).

use pyo3::prelude::*;

use super::callback::api;
use super::cdata::CData;
use super::ffi::FFI;

#[pymethods]
impl FFI {
    /// `ffi.callback(cdecl, python_callable=None, error=None, onerror=None)`; without
    /// `python_callable`, a decorator.
    #[pyo3(signature = (cdecl, python_callable=None, error=None, onerror=None))]
    fn callback(
        slf: &Bound<'_, Self>,
        cdecl: &Bound<'_, PyAny>,
        python_callable: Option<&Bound<'_, PyAny>>,
        error: Option<&Bound<'_, PyAny>>,
        onerror: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        api::ffi_callback(slf.py(), slf.as_any(), &slf.get().shared, cdecl, python_callable, error, onerror)
    }

    /// `@ffi.def_extern(name=None, error=None, onerror=None)`: binds the decorated
    /// function to an `extern "Python"` declaration (ABI mode too, unlike cffi).
    #[pyo3(signature = (name=None, error=None, onerror=None))]
    fn def_extern(
        slf: &Bound<'_, Self>,
        name: Option<String>,
        error: Option<&Bound<'_, PyAny>>,
        onerror: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        api::ffi_def_extern(slf.py(), slf.as_any(), name.as_deref(), error, onerror)
    }

    /// What the `def_extern` decorator calls: binds `func` (named `name`, else its
    /// `__name__`).
    #[pyo3(signature = (func, name=None, error=None, onerror=None))]
    fn _def_extern_bind(
        slf: &Bound<'_, Self>,
        func: &Bound<'_, PyAny>,
        name: Option<String>,
        error: Option<&Bound<'_, PyAny>>,
        onerror: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        api::def_extern_bind(slf.py(), slf.as_any(), &slf.get().shared, func, name.as_deref(), error, onerror)
    }

    /// What the `extern "Python"` table calls at a name's first use: a new cdata.
    fn _extern_python_new(slf: &Bound<'_, Self>, name: &str) -> PyResult<Py<CData>> {
        api::new_extern_python_cdata(slf.py(), &slf.get().shared, name)
    }
}

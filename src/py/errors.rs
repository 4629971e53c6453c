//! The exception classes of the package and the mapping from cdef error kinds to them.
use pyo3::exceptions::{PyException, PyNotImplementedError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::cdef::{CdefError, ErrorKind};

pyo3::create_exception!(jitffi, CDefError, PyException, "Invalid or unsupported C declarations.");
pyo3::create_exception!(jitffi, FFIError, PyException, "Semantic error in declarations.");
pyo3::create_exception!(jitffi, VerificationError, PyException, "Compile/verify failure or API-mode-only feature.");
pyo3::create_exception!(jitffi, VerificationMissing, PyException, "Layout only known to a C compiler.");

/// A cdef/type-string error as the Python exception cffi raises for it.
pub fn cdef_err(e: CdefError) -> PyErr {
    match e.kind {
        ErrorKind::CDef => CDefError::new_err(e.message),
        ErrorKind::FFI => FFIError::new_err(e.message),
        ErrorKind::Value => PyValueError::new_err(e.message),
        ErrorKind::Type => PyTypeError::new_err(e.message),
        ErrorKind::VerificationMissing => VerificationMissing::new_err(e.message),
        ErrorKind::NotImplemented => PyNotImplementedError::new_err(e.message),
    }
}

/// The end of a raw C slot implemented in Rust (run under `catch_unwind`): the value, or
/// `err` with the Python exception set; a panic becomes RuntimeError naming `place`, so
/// it never crosses into CPython's frames.
#[inline(always)]
pub fn finish_slot<T>(py: Python<'_>, r: std::thread::Result<PyResult<T>>, err: T, place: &str) -> T {
    match r {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            e.restore(py);
            err
        }
        Err(_) => {
            pyo3::exceptions::PyRuntimeError::new_err(format!("internal error (Rust panic) in {place}")).restore(py);
            err
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("CDefError", py.get_type::<CDefError>())?;
    m.add("FFIError", py.get_type::<FFIError>())?;
    m.add("VerificationError", py.get_type::<VerificationError>())?;
    m.add("VerificationMissing", py.get_type::<VerificationMissing>())?;
    Ok(())
}

// TEMP(call): stand-in for the shared helper another branch adds here (same signature,
// with an `InternalError` class subclassing SystemError); reconciled at merge.
pyo3::create_exception!(jitffi, InternalError, pyo3::exceptions::PySystemError, "Internal error in jitffi (a caught Rust panic).");

/// TEMP(call): a caught panic as the one internal-error exception.
pub fn internal_error(payload: Box<dyn std::any::Any + Send>) -> PyErr {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    InternalError::new_err(format!("internal error (Rust panic): {what}"))
}

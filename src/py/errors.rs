//! The exception classes of the package, the mapping from cdef error kinds to them, and
//! the one exception a caught Rust panic becomes.
use std::any::Any;

use pyo3::exceptions::{
    PyException, PyNotImplementedError, PySystemError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;

use crate::cdef::{CdefError, ErrorKind};

pyo3::create_exception!(
    jitffi,
    CDefError,
    PyException,
    "Invalid or unsupported C declarations."
);
pyo3::create_exception!(
    jitffi,
    FFIError,
    PyException,
    "Semantic error in declarations."
);
pyo3::create_exception!(
    jitffi,
    VerificationError,
    PyException,
    "Compile/verify failure or API-mode-only feature."
);
pyo3::create_exception!(
    jitffi,
    VerificationMissing,
    PyException,
    "Layout only known to a C compiler."
);
pyo3::create_exception!(
    jitffi,
    InternalError,
    PySystemError,
    "A bug in jitffi: a Rust panic, caught before it could cross into Python or C frames."
);

/// Runs lazy realization of out-of-line tables (which come from files on disk): a bug
/// the fuzzing missed is an InternalError, never a panic crossing into Python.
pub fn realizing<T>(f: impl FnOnce() -> Result<T, crate::ool::RealizeError>) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(internal_error)?
        .map_err(realize_err)
}

/// A table entry of an out-of-line module that fails to realize at its first use: a
/// layout the in-line rules refuse is a TypeError (as cffi's reader gives it), anything
/// else `ffi.error`.
pub fn realize_err(e: crate::ool::RealizeError) -> PyErr {
    match e {
        crate::ool::RealizeError::Layout { message, .. } => {
            pyo3::exceptions::PyTypeError::new_err(message)
        }
        e => FFIError::new_err(e.to_string()),
    }
}

/// A cdef/type-string error as the Python exception cffi raises for it.
pub fn cdef_err(e: CdefError) -> PyErr {
    match e.kind {
        ErrorKind::CDef => CDefError::new_err(e.message),
        // A panic caught inside the parser or resolver.
        ErrorKind::Internal => {
            InternalError::new_err(format!("jitffi internal error: {}", e.message))
        }
        ErrorKind::FFI => FFIError::new_err(e.message),
        ErrorKind::Value => PyValueError::new_err(e.message),
        ErrorKind::Type => PyTypeError::new_err(e.message),
        ErrorKind::VerificationMissing => VerificationMissing::new_err(e.message),
        ErrorKind::NotImplemented => PyNotImplementedError::new_err(e.message),
    }
}

/// The text a panic was raised with (`panic!` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(panic without a message)"
    }
}

/// A caught panic as the Python exception users see: `jitffi.InternalError` (a
/// `SystemError`), whatever code caught it.
pub fn internal_error(payload: Box<dyn Any + Send>) -> PyErr {
    internal(panic_message(&*payload))
}

/// `InternalError` for a broken invariant detected without a panic.
pub fn internal(what: &str) -> PyErr {
    InternalError::new_err(format!("jitffi internal error: {what}"))
}

/// The end of a raw C slot implemented in Rust (run under `catch_unwind`): the value, or
/// `err` with the Python exception set; a panic becomes `InternalError`, so it never
/// crosses into CPython's frames.
#[inline(always)]
pub fn finish_slot<T>(py: Python<'_>, r: std::thread::Result<PyResult<T>>, err: T) -> T {
    match r {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            e.restore(py);
            err
        }
        Err(payload) => {
            internal_error(payload).restore(py);
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
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_an_internal_error_with_its_message() {
        Python::initialize();
        Python::attach(|py| {
            let payload = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
            let e = internal_error(payload);
            assert!(e.is_instance_of::<InternalError>(py));
            assert!(e.is_instance_of::<PySystemError>(py));
            assert_eq!(e.value(py).to_string(), "jitffi internal error: boom 1");
            let payload = std::panic::catch_unwind(|| panic!("static text")).unwrap_err();
            assert_eq!(
                internal_error(payload).value(py).to_string(),
                "jitffi internal error: static text"
            );
        });
    }
}

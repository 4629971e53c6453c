//! cffi's file emulation: a Python file object passed as a `FILE *` argument becomes a C
//! `FILE *` on a duplicate of its descriptor, made once per file object and kept on it
//! (attribute `__cffi_FILE`, a capsule that fcloses it when the file object goes).
//!
//! The Python object is flushed first, and the `FILE` is unbuffered, so that what the
//! two write lands in the order the program wrote it.

use std::ffi::CString;

use pyo3::exceptions::{PyOSError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods, PyString};

use crate::py::state::FfiRef;
use crate::types::model::{Kind, TypeRef};

const CAPSULE_NAME: &std::ffi::CStr = c"jitffi.FILE";
const ATTR: &str = "__cffi_FILE";

fn is_file_record(ffi: &FfiRef, item: &TypeRef) -> bool {
    let Kind::Record(r) = &item.kind else {
        return false;
    };
    let ns = ffi.lock_ns();
    matches!(&ns.file_type().kind, Kind::Record(f) if f.id == r.id)
}

/// The `FILE *` for `obj` when `item` is `FILE` and `obj` is a Python file object (has
/// `fileno`); `None` otherwise (the caller reports its usual error).
/// With it, the capsule that owns the `FILE`, for the caller to keep until C returns:
/// another thread replacing or deleting the attribute meanwhile cannot close the `FILE`
/// under the call.
pub fn file_argument(
    py: Python<'_>,
    ffi: &FfiRef,
    item: &TypeRef,
    obj: &Bound<'_, PyAny>,
) -> PyResult<Option<(usize, Py<PyAny>)>> {
    if !is_file_record(ffi, item) || !obj.hasattr("fileno")? {
        return Ok(None);
    }
    obj.call_method0("flush")?;
    if let Ok(existing) = obj.getattr(ATTR) {
        let cap = existing.cast::<PyCapsule>().map_err(|_| {
            PyTypeError::new_err(format!("{ATTR} of this file object is not jitffi's"))
        })?;
        let p = cap.pointer_checked(Some(CAPSULE_NAME))?;
        // SAFETY: a capsule named CAPSULE_NAME is only made below, by
        // `new_with_destructor` with a usize value, which pyo3 stores at offset 0 of what
        // the capsule points to.
        let fp = unsafe { *(p.as_ptr() as *const usize) };
        return Ok(Some((fp, cap.clone().into_any().unbind())));
    }
    let fd: i32 = obj.call_method0("fileno")?.extract()?;
    let mode = obj.getattr("mode")?;
    let mode = mode
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("the file object's mode is not a str"))?
        .to_str()?
        .to_string();
    let cmode = CString::new(mode).map_err(|_| PyTypeError::new_err("bad file mode"))?;
    // SAFETY: dup/fdopen/setvbuf/close take plain values; a failed fdopen leaves the
    // duplicate ours to close.
    let fp = unsafe {
        let fd2 = libc::dup(fd);
        if fd2 < 0 {
            return Err(PyOSError::new_err(format!(
                "dup() of the file's descriptor failed: {}",
                std::io::Error::last_os_error()
            )));
        }
        let fp = libc::fdopen(fd2, cmode.as_ptr());
        if fp.is_null() {
            let e = std::io::Error::last_os_error();
            libc::close(fd2);
            return Err(PyOSError::new_err(format!("fdopen() failed: {e}")));
        }
        libc::setvbuf(fp, std::ptr::null_mut(), libc::_IONBF, 0);
        fp as usize
    };
    let cap = PyCapsule::new_with_value_and_destructor(py, fp, CAPSULE_NAME, |fp, _| {
        // SAFETY: `fp` came from fdopen above and is closed once, with its capsule.
        unsafe { libc::fclose(fp as *mut libc::FILE) };
    });
    let cap = match cap {
        Ok(c) => c,
        Err(e) => {
            // SAFETY: no capsule took `fp`; it is closed here, once.
            unsafe { libc::fclose(fp as *mut libc::FILE) };
            return Err(e);
        }
    };
    let owner = cap.clone().into_any().unbind();
    obj.setattr(ATTR, cap)?;
    Ok(Some((fp, owner)))
}

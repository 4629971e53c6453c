//! The FFI's library methods, as thin calls into `lib_object`. The public
//! `FFI.dlopen`/`FFI.dlclose` are the Python subclass's (`python/jitffi/_lib.py` does the
//! glue around these).

use pyo3::prelude::*;

use super::ffi::FFI;
use super::lib_object::{self, Lib};

#[pymethods]
impl FFI {
    /// `_dlopen(name, flags=0, release_gil=True, path=None)`: the lib state for `name`
    /// (see `lib_object::dlopen`). `release_gil=False` is jitffi's opt-out for tiny hot
    /// functions: calls keep the GIL and do not save/restore errno (`ffi.errno` is then
    /// not updated by those calls).
    #[pyo3(signature = (name, flags = 0, release_gil = true, path = None))]
    fn _dlopen(slf: &Bound<'_, Self>, name: &Bound<'_, PyAny>, flags: i32, release_gil: bool, path: Option<&str>) -> PyResult<Lib> {
        let shared = slf.get().shared().clone();
        lib_object::dlopen(shared, slf.clone().into_any().unbind(), name, flags, release_gil, path)
    }

    /// Closes the lib's handle (see `lib_object::dlclose`).
    fn _dlclose(&self, lib: &Bound<'_, PyAny>) -> PyResult<()> {
        lib_object::dlclose(lib)
    }

    /// Whether any global variable is declared.
    fn _declares_globals(&self) -> bool {
        lib_object::declares_globals(self.shared())
    }
}

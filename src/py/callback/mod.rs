//! `ffi.callback`: C function pointers that call Python.
//!
//! A callback is a `CallbackCore` (boxed, so its address is stable) holding the Python
//! callable and the `error` result bytes, the `Shape` shared by every callback of its
//! function-pointer type (argument offsets and types, thunk), plus an entry slot
//! from `jit::entry_pool` whose stub passes the core's address to the thunk compiled for
//! the signature's shape (`jit::callback_thunk`). The thunk stores the C arguments into a
//! buffer and calls `dispatch`, which takes the GIL (from any thread, including threads
//! Python never saw), converts the arguments like struct fields are read, calls the
//! callable, and writes the result like a field is written. Errors never propagate into
//! C: they are reported through `sys.unraisablehook` exactly as cffi words them, and the
//! `error` value is returned. Dropping the core gives the entry slot back to the pool.
//!
//! `extern "Python"` functions (ABI mode too) are cores whose binding `@ffi.def_extern()`
//! replaces; their cdata live in the FFI object's `__dict__`.
//!
//! Two tiers (`generic`): a callback of a shape not compiled yet enters through the
//! process's generic thunk, which saves the machine registers and lets the shape's ABI
//! plan find the arguments; hot shapes get their compiled thunk, and each callback's
//! entry slot switches to it.
//!
//! Layout, one way: `api` (what the `FFI` methods call) → `create` (building callbacks)
//! → `generic` (the generic tier, promotion) → `dispatch` (entered from C) → `core`
//! (the callback state).

use pyo3::prelude::*;

pub mod api;
pub mod core;
pub mod create;
mod dispatch;
mod generic;

pub use super::tier::callback_stats as tier_stats;
pub use api::{def_extern_bind, extern_python_cdata, ffi_callback, ffi_def_extern};
pub use core::{Binding, CallbackCore, CallbackHandle, Shape};
pub use create::{bind_extern, new_callback, new_extern_core, shape_for};

/// Installs the repr hook (called from `py::register`).
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    super::cdata::set_custom_target_hook(api::callback_target);
    Ok(())
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::create::new_callback;
    use pyo3::prelude::*;
    use pyo3::types::PyDict;

    #[test]
    fn python_callable_called_from_c_with_and_without_the_gil() {
        Python::initialize();
        let (shared, fptr) = Python::attach(|py| {
            let shared = crate::py::state::FfiShared::new(py);
            let fptr = shared.lock_ns().parse_type("int(*)(int, double)").unwrap();
            (shared, fptr)
        });
        let core = Python::attach(|py| {
            let g = PyDict::new(py);
            py.run(c"def f(a, b):\n    return a * 2 + int(b)\n", Some(&g), None)
                .unwrap();
            let f = g.get_item("f").unwrap().unwrap().unbind();
            new_callback(
                py,
                &shared,
                &fptr,
                f,
                Some(&(-1i32).into_pyobject(py).unwrap().into_any()),
                None,
            )
            .unwrap()
        });
        // SAFETY: the entry point of a callback of exactly this C type.
        let cfn: extern "C" fn(i32, f64) -> i32 = unsafe { std::mem::transmute(core.code_ptr()) };
        // No GIL held by this thread here.
        assert_eq!(cfn(20, 2.5), 42);
        let from_thread = std::thread::spawn(move || cfn(1, 1.0)).join().unwrap();
        assert_eq!(from_thread, 3);
        Python::attach(|_py| assert_eq!(cfn(-5, 0.0), -10));
        // Overflowing result: reported, `error` returned.
        assert_eq!(cfn(i32::MAX, 0.0), -1);
        Python::attach(|_py| drop(core));
    }
}

//! Interior mutability guarded by the GIL.
//!
//! jitffi targets GIL builds of CPython: every access to these cells happens with the GIL
//! held (the `Python` token proves it), so a plain `UnsafeCell` is enough and costs nothing
//! on the hot paths (no atomics, no lock). Borrows are kept short and never span a call
//! back into Python code.
use std::cell::UnsafeCell;

use pyo3::Python;

pub struct GilCell<T>(UnsafeCell<T>);

// SAFETY: all accesses go through `get`, which requires the GIL.
unsafe impl<T: Send> Sync for GilCell<T> {}
unsafe impl<T: Send> Send for GilCell<T> {}

impl<T> GilCell<T> {
    pub const fn new(v: T) -> Self {
        GilCell(UnsafeCell::new(v))
    }

    /// # Safety-by-convention
    /// The caller must not keep the reference across code that can run Python code which
    /// might access the same cell.
    /// Exclusive access through `&mut self` (no GIL needed: nobody else can see it).
    pub fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }

    #[allow(clippy::mut_from_ref)]
    pub fn get(&self, _py: Python<'_>) -> &mut T {
        unsafe { &mut *self.0.get() }
    }
}

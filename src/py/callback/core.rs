//! A callback's state: what it calls (`Binding`, replaceable for `extern "Python"`), the
//! conversion plan shared by every callback of one function-pointer type (`Shape`), and
//! its entry slot.

use std::cell::{Cell, UnsafeCell};
#[cfg(test)]
use std::panic::AssertUnwindSafe;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;

use crate::abi::CallPlan;
use crate::jit::callback_thunk::{Thunk, ThunkLayout};
use crate::jit::entry_pool::EntrySlot;
use crate::types::model::{Kind, PrimClass, PrimInfo, TypeRef};

use super::super::state::FfiRef;

/// What a callback calls; replaceable (under the GIL) for `extern "Python"` functions,
/// whose C address exists before `@ffi.def_extern()` binds them.
pub struct Binding {
    /// `None`: an `extern "Python"` function not bound yet.
    pub callable: Option<Py<PyAny>>,
    pub onerror: Option<Py<PyAny>>,
    /// What to return when the callable fails: the `error` argument as C bytes.
    pub error_result: Box<[u8]>,
    /// C calls currently inside this callback (nested or from several threads).
    pub(super) in_flight: u32,
    /// Its cdata was freed during a call: the last call to return frees the core.
    pub(super) orphaned: bool,
}

/// The `Binding` of a callback, reached only with the GIL held and only inside a closure
/// ([`BindingCell::with`]); a flag refuses a second borrow while one is active (a
/// closure that ran Python code re-entering the same callback), so no two `&mut`
/// ever alias. Closures keep to reading or swapping fields: anything that may run
/// Python code (calls, dropping references) happens after they return.
pub(super) struct BindingCell {
    borrowed: Cell<bool>,
    data: UnsafeCell<Binding>,
}

// SAFETY: every access takes `Python<'_>` (the GIL is held), which serializes the
// threads touching the cell (the GIL's hand-over orders their memory accesses), and the
// borrow flag rules out overlapping borrows on one thread.
unsafe impl Sync for BindingCell {}
// SAFETY: the Python references inside are released with the GIL held (the owner is a
// cdata, freed with the GIL held).
unsafe impl Send for BindingCell {}

impl BindingCell {
    pub(super) fn new(b: Binding) -> BindingCell {
        BindingCell {
            borrowed: Cell::new(false),
            data: UnsafeCell::new(b),
        }
    }

    /// Runs `f` on the binding. Panics on a re-entrant borrow (a bug: callers never run
    /// Python code inside `f`).
    #[inline]
    pub(super) fn with<R>(&self, _py: Python<'_>, f: impl FnOnce(&mut Binding) -> R) -> R {
        struct Release<'a>(&'a Cell<bool>);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        assert!(
            !self.borrowed.replace(true),
            "re-entrant access to a callback binding"
        );
        let _release = Release(&self.borrowed);
        // SAFETY: the flag was clear, so this is the only borrow (see `Sync` above); it
        // ends with `f`.
        f(unsafe { &mut *self.data.get() })
    }
}

/// What a callback cdata owns. Freeing the cdata while C is inside the callback (the
/// callable released or dropped its own callback) must not free the core under the
/// running call: the entry slot is given back at once, the core itself when the last
/// call returns.
pub struct CallbackHandle(pub(super) Option<Box<CallbackCore>>);

impl CallbackHandle {
    pub fn core(&self) -> &CallbackCore {
        self.0.as_deref().expect("core present until drop")
    }
}

impl Drop for CallbackHandle {
    fn drop(&mut self) {
        let Some(mut core) = self.0.take() else {
            return;
        };
        // SAFETY: cdata (the owners of handles) are freed with the GIL held.
        let py = unsafe { Python::assume_attached() };
        let busy = core.binding.with(py, |b| {
            if b.in_flight > 0 {
                b.orphaned = true;
            }
            b.in_flight > 0
        });
        if busy {
            core.slot.take();
            // The last call to return frees it (`dispatch`).
            let _ = Box::into_raw(core);
        }
    }
}

/// Plain integers and floats skip the type dispatch of the generic conversions (same
/// scalar converters; anything unusual, errors included, takes the generic path).
#[derive(Clone, Copy, Debug)]
pub(super) enum Fast {
    Int(PrimInfo),
    Float(usize),
    Generic,
}

impl Fast {
    pub(super) fn of(ty: &TypeRef) -> Fast {
        match &ty.kind {
            Kind::Prim(i) if matches!(i.class, PrimClass::SignedInt | PrimClass::UnsignedInt) => {
                Fast::Int(*i)
            }
            Kind::Prim(i) if i.class == PrimClass::Float => Fast::Float(i.size),
            _ => Fast::Generic,
        }
    }
}

/// The tier state of one ABI shape (shared by every function-pointer type lowering to
/// the same plan): its compiled thunk once there is one, and how many calls the generic
/// thunk served before.
pub struct ShapeTier {
    pub(super) compiled: OnceLock<Arc<Thunk>>,
    pub(super) generic_calls: AtomicU64,
    /// Compiling failed once: the shape stays generic.
    pub(super) failed: AtomicBool,
}

/// What every callback of one function-pointer type shares (built once per type).
pub struct Shape {
    /// Offset of each argument in the thunk's args buffer, its C type, its fast path.
    pub(super) args: Vec<(usize, TypeRef, Fast)>,
    /// `None` for `void`.
    pub(super) result: Option<TypeRef>,
    pub(super) result_fast: Fast,
    pub(super) result_size: usize,
    /// Where the C values are (the generic thunk's dispatcher follows it).
    pub(super) plan: CallPlan,
    /// The buffers' layout and the closure's register, the same in both tiers.
    pub(super) layout: ThunkLayout,
    pub(super) tier: Arc<ShapeTier>,
}

/// One live callback. Owned by its cdata; the entry slot points at it.
pub struct CallbackCore {
    pub(super) binding: BindingCell,
    /// The FFI whose types the arguments and result are (for conversions).
    pub(super) ffi: FfiRef,
    pub(super) shape: Arc<Shape>,
    /// Set for `extern "Python"` functions (named in error reports).
    pub(super) extern_name: Option<String>,
    pub(super) slot: Option<EntrySlot>,
}

impl CallbackCore {
    /// The C function pointer.
    pub fn code_ptr(&self) -> *const u8 {
        self.slot.as_ref().map_or(ptr::null(), |s| s.code_ptr())
    }

    pub fn callable(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.binding
            .with(py, |b| b.callable.as_ref().map(|c| c.clone_ref(py)))
    }
}

impl Drop for CallbackCore {
    fn drop(&mut self) {
        // Give the C entry point back first, so no new call can reach this core.
        self.slot.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_cell_refuses_a_reentrant_borrow() {
        Python::initialize();
        Python::attach(|py| {
            let cell = BindingCell::new(Binding {
                callable: None,
                onerror: None,
                error_result: Box::new([]),
                in_flight: 0,
                orphaned: false,
            });
            cell.with(py, |b| b.in_flight += 1);
            assert_eq!(cell.with(py, |b| b.in_flight), 1);
            let nested = std::panic::catch_unwind(AssertUnwindSafe(|| {
                cell.with(py, |_| cell.with(py, |b| b.in_flight))
            }));
            assert!(
                nested.is_err(),
                "a second borrow inside the first must not alias"
            );
            // The flag was reset by the unwinding first borrow.
            assert_eq!(cell.with(py, |b| b.in_flight), 1);
        });
    }
}

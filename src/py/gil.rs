//! Interior mutability guarded by the GIL.
//!
//! jitffi targets GIL builds of CPython: every access to these cells happens with the GIL
//! held (each takes the `Python` token that proves it), so they need no atomics and no
//! lock. What they hand out cannot be aliased by re-entrant code (code run while a value
//! is borrowed that calls back into Python, which reaches the same cell):
//! - [`GilCell`] lends its value only through guards with `RefCell`'s rules: any number of
//!   shared borrows or one mutable borrow; a conflicting borrow panics (callers that run
//!   under `catch_unwind` report it as `InternalError`). Keep borrows short and never
//!   call Python code while holding one;
//! - [`GilCopy`] holds a `Copy` value read and written whole, lending no reference at all.
use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use pyo3::Python;

/// Borrow state of a [`GilCell`]: the number of shared borrows, or `WRITING`.
type BorrowFlag = i32;
const WRITING: BorrowFlag = -1;

pub struct GilCell<T> {
    flag: Cell<BorrowFlag>,
    /// An immutable word beside the flag, in what would otherwise be padding, for the
    /// owner to use: cdata keep their repr flags here, so a cdata object is no bigger
    /// than before the cell had a flag (objects with inline bytes must stay within
    /// pymalloc's small-block limit).
    tag: u32,
    value: UnsafeCell<T>,
}

// SAFETY: every access to `flag` and `value` takes a `Python` token (or `&mut self`), so
// it happens on the one thread holding the GIL; the GIL hand-over between threads orders
// those accesses. The borrow flag then gives `RefCell`'s guarantees for the value. `T:
// Send` because the value may be used from whichever thread holds the GIL.
unsafe impl<T: Send> Sync for GilCell<T> {}

/// A re-entrant borrow that would alias a mutable one.
#[derive(Debug)]
pub struct BorrowError;

impl std::fmt::Display for BorrowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("jitffi state already borrowed (re-entrant access)")
    }
}

impl From<BorrowError> for pyo3::PyErr {
    fn from(e: BorrowError) -> Self {
        super::errors::internal(&e.to_string())
    }
}

#[cold]
#[inline(never)]
fn borrow_conflict() -> ! {
    panic!("{}", BorrowError)
}

impl<T> GilCell<T> {
    pub const fn new(v: T) -> Self {
        Self::with_tag(v, 0)
    }

    /// A cell carrying `tag` (see [`GilCell::tag`]).
    pub const fn with_tag(v: T, tag: u32) -> Self {
        GilCell {
            flag: Cell::new(0),
            tag,
            value: UnsafeCell::new(v),
        }
    }

    /// The word given to [`GilCell::with_tag`]; readable without a borrow (it never
    /// changes).
    #[inline]
    pub fn tag(&self) -> u32 {
        self.tag
    }

    /// Exclusive access through `&mut self` (no GIL needed: nobody else can see it).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// A shared borrow; panics while the value is mutably borrowed.
    #[inline]
    pub fn borrow<'a>(&'a self, _py: Python<'a>) -> GilRef<'a, T> {
        let n = self.flag.get();
        if n < 0 {
            borrow_conflict();
        }
        self.flag.set(n + 1);
        GilRef {
            cell: self,
            _not_send: PhantomData,
        }
    }

    /// A mutable borrow; panics while the value is borrowed at all.
    #[inline]
    pub fn borrow_mut<'a>(&'a self, py: Python<'a>) -> GilRefMut<'a, T> {
        match self.try_borrow_mut(py) {
            Ok(b) => b,
            Err(_) => borrow_conflict(),
        }
    }

    /// A mutable borrow, or `BorrowError` while the value is borrowed at all.
    #[inline]
    pub fn try_borrow_mut<'a>(&'a self, _py: Python<'a>) -> Result<GilRefMut<'a, T>, BorrowError> {
        if self.flag.get() != 0 {
            return Err(BorrowError);
        }
        self.flag.set(WRITING);
        Ok(GilRefMut {
            cell: self,
            _not_send: PhantomData,
        })
    }

    /// Runs `f` with a shared borrow.
    #[inline]
    pub fn with<R>(&self, py: Python<'_>, f: impl FnOnce(&T) -> R) -> R {
        f(&self.borrow(py))
    }

    /// Runs `f` with a mutable borrow.
    #[inline]
    pub fn with_mut<R>(&self, py: Python<'_>, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.borrow_mut(py))
    }

    /// The same as [`GilCell::borrow`] (the name the calls/callbacks code uses).
    #[inline]
    pub fn get<'a>(&'a self, py: Python<'a>) -> GilRef<'a, T> {
        self.borrow(py)
    }
}

/// A shared borrow of a [`GilCell`]'s value. Not `Send`: it must not leave the thread
/// (and the GIL hold) it was taken under.
pub struct GilRef<'a, T> {
    cell: &'a GilCell<T>,
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for GilRef<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the flag counts this guard as a shared borrow, so no mutable borrow exists
        // while it lives.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T> Drop for GilRef<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.cell.flag.set(self.cell.flag.get() - 1);
    }
}

/// A mutable borrow of a [`GilCell`]'s value.
pub struct GilRefMut<'a, T> {
    cell: &'a GilCell<T>,
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for GilRefMut<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the flag is `WRITING` while this guard lives: no other borrow exists.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T> DerefMut for GilRefMut<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; `&mut self` makes this the only reference the guard gives.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T> Drop for GilRefMut<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.cell.flag.set(0);
    }
}

/// A `Copy` value guarded by the GIL, read and written whole (like `Cell`).
pub struct GilCopy<T: Copy>(Cell<T>);

// SAFETY: accesses take a `Python` token, so they happen under the GIL (see `GilCell`);
// no reference to the value is ever handed out.
unsafe impl<T: Copy + Send> Sync for GilCopy<T> {}

impl<T: Copy> GilCopy<T> {
    pub const fn new(v: T) -> Self {
        GilCopy(Cell::new(v))
    }

    #[inline]
    pub fn get(&self, _py: Python<'_>) -> T {
        self.0.get()
    }

    #[inline]
    pub fn set(&self, _py: Python<'_>, v: T) {
        self.0.set(v)
    }

    #[inline]
    pub fn replace(&self, _py: Python<'_>, v: T) -> T {
        self.0.replace(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_and_the_tag_share_one_word() {
        // What the cell adds to a value is one word, so cdata objects keep their size.
        assert_eq!(std::mem::size_of::<GilCell<u64>>(), 16);
        let c = GilCell::with_tag(5u64, 0xdead_beef);
        assert_eq!(c.tag(), 0xdead_beef);
        assert_eq!(GilCell::new(1u8).tag(), 0);
    }

    #[test]
    fn shared_borrows_stack_and_a_mutable_one_is_refused_meanwhile() {
        Python::initialize();
        Python::attach(|py| {
            let c = GilCell::new(5);
            {
                let a = c.borrow(py);
                let b = c.borrow(py);
                assert_eq!(*a + *b, 10);
                assert!(c.try_borrow_mut(py).is_err());
            }
            *c.borrow_mut(py) += 1;
            assert_eq!(c.with(py, |v| *v), 6);
        });
    }

    #[test]
    fn reentrant_mutable_borrow_panics() {
        Python::initialize();
        Python::attach(|py| {
            let c = GilCell::new(0);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                c.with_mut(py, |_| c.with(py, |v| *v));
            }));
            assert!(r.is_err());
            // the failed borrow left no stale state behind
            assert!(c.try_borrow_mut(py).is_ok());
        });
    }

    #[test]
    fn copy_cell() {
        Python::initialize();
        Python::attach(|py| {
            let c = GilCopy::new((1usize, 2usize));
            assert_eq!(c.replace(py, (3, 4)), (1, 2));
            assert_eq!(c.get(py), (3, 4));
        });
    }
}

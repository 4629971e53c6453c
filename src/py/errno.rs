//! `ffi.errno`: the errno value saved after the last C call, per thread, and restored
//! into C's errno before the next one (as cffi does).

use std::cell::Cell;

thread_local! {
    static SAVED_ERRNO: Cell<i32> = const { Cell::new(0) };
}

/// The errno value `ffi.errno` shows for this thread (saved after the last C call).
pub fn get_saved_errno() -> i32 {
    SAVED_ERRNO.with(|e| e.get())
}

/// Sets the value `ffi.errno` shows and the next C call starts with.
pub fn set_saved_errno(v: i32) {
    SAVED_ERRNO.with(|e| e.set(v))
}

/// Before a C call: C's errno ← the saved value (cffi restores it before each call).
pub fn restore_errno() {
    // SAFETY: `__errno_location` returns the calling thread's errno, always valid.
    unsafe { *libc::__errno_location() = get_saved_errno() };
}

/// After a C call: saved value ← C's errno. Returns where this thread's errno lives,
/// for `restore_errno_at`.
pub fn save_errno() -> *mut i32 {
    // SAFETY: as in `restore_errno`.
    let at = unsafe { libc::__errno_location() };
    // SAFETY: `at` is this thread's errno.
    set_saved_errno(unsafe { *at });
    at
}

/// `restore_errno` with the location `save_errno` returned.
///
/// # Safety
/// `at` came from `save_errno` on this thread.
pub unsafe fn restore_errno_at(at: *mut i32) {
    // SAFETY: `at` is this thread's errno (the contract).
    unsafe { *at = get_saved_errno() };
}

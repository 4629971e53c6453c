//! Where CPython objects keep what the trampolines and the integer fast paths read
//! directly: taken from pyo3-ffi's definitions of the running interpreter's headers, and
//! checked once against real objects of the running interpreter before any code that
//! reads them inline is generated.

use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;

use crate::jit::builtins::ObjectLayout;

/// The object layout (offsets fit in `i32`: they are a few words).
pub const OBJECT_LAYOUT: ObjectLayout = ObjectLayout {
    ob_type: std::mem::offset_of!(ffi::PyObject, ob_type) as i32,
    ob_size: std::mem::offset_of!(ffi::PyVarObject, ob_size) as i32,
    // 3.11's `PyLongObject` is a variable-size header followed by the digits (pyo3 keeps
    // the struct opaque); `small_ints_inline` checks it on real ints.
    long_digit: std::mem::size_of::<ffi::PyVarObject>() as i32,
    float_value: std::mem::offset_of!(ffi::PyFloatObject, ob_fval) as i32,
    bytes_data: std::mem::offset_of!(ffi::PyBytesObject, ob_sval) as i32,
};

/// [`OBJECT_LAYOUT`].
pub fn object_layout() -> ObjectLayout {
    OBJECT_LAYOUT
}

/// Whether ints of at most one digit may be read inline: CPython 3.11 (3.12 changed the
/// layout of ints), with 30-bit digits in 32-bit words at `long_digit`, the signed digit
/// count in `ob_size` — verified on a few ints of the running interpreter.
pub fn small_ints_inline() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        Python::attach(|py| {
            let v = py.version_info();
            if !(v.major == 3 && v.minor == 11) {
                return false;
            }
            let l = OBJECT_LAYOUT;
            [0i64, 1, -1, 5, -12345, (1 << 30) - 1].iter().all(|&n| {
                let Ok(obj) = n.into_pyobject(py);
                // SAFETY: `obj` is a live int; the offsets are within its header and
                // first digit (every int has room for one digit on 3.11).
                let (size, digit) = unsafe { read_small(obj.as_ptr(), &l) };
                size * digit as i64 == n && (-1..=1).contains(&size)
            })
        })
    })
}

/// The signed digit count and the first digit of an int.
///
/// # Safety
/// `o` is a live int of an interpreter with the 3.11 int layout.
#[inline(always)]
unsafe fn read_small(o: *mut ffi::PyObject, l: &ObjectLayout) -> (i64, u32) {
    // SAFETY: per the contract.
    unsafe {
        let size = *((o as *const u8).add(l.ob_size as usize) as *const isize);
        let digit = *((o as *const u8).add(l.long_digit as usize) as *const u32);
        (size as i64, digit)
    }
}

/// An exact int of at most one digit, read without a call (`None`: not such an int, or
/// not an interpreter where this is known to hold — the caller's general path then).
///
/// # Safety
/// `o` is a live exact int, the GIL is held.
#[inline]
pub(crate) unsafe fn small_int(o: *mut ffi::PyObject) -> Option<i128> {
    if !small_ints_inline() {
        return None;
    }
    let l = &OBJECT_LAYOUT;
    // SAFETY: `o` is a live int (contract) with the verified layout.
    let size = unsafe { *((o as *const u8).add(l.ob_size as usize) as *const isize) };
    if !(-1..=1).contains(&size) {
        return None;
    }
    // SAFETY: an int of one digit (or zero, which has room for one) has it here.
    let digit = unsafe { *((o as *const u8).add(l.long_digit as usize) as *const u32) };
    Some(size as i128 * digit as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_running_interpreter() {
        Python::initialize();
        let l = object_layout();
        assert_eq!((l.ob_type, l.ob_size, l.float_value), (8, 16, 16));
        let is_311 = Python::attach(|py| py.version_info().minor == 11);
        assert_eq!(small_ints_inline(), is_311);
        if is_311 {
            assert_eq!(l.long_digit, 24);
            Python::attach(|py| {
                for n in [0i64, 7, -7, (1 << 30) - 1] {
                    let o = n.into_pyobject(py).unwrap();
                    // SAFETY: a live exact int, GIL held.
                    assert_eq!(unsafe { small_int(o.as_ptr()) }, Some(n as i128));
                }
                let big = (1i64 << 40).into_pyobject(py).unwrap();
                // SAFETY: as above.
                assert_eq!(unsafe { small_int(big.as_ptr()) }, None);
            });
        }
    }
}

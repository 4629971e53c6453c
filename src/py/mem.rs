//! Raw access to C memory: integers, floats and pointers of a given size at an address,
//! always unaligned (packed structs put fields anywhere). No Python here.
//!
//! # Safety
//! Every function here needs its address valid for `size` bytes (8 for pointers) of
//! reading or writing.

/// An unsigned integer of `size` (1, 2, 4 or 8) bytes, zero-extended.
///
/// # Safety
/// `src` valid for reading `size` bytes.
#[inline]
pub unsafe fn load_u64(src: *const u8, size: usize) -> u64 {
    match size {
        1 => *src as u64,
        2 => (src as *const u16).read_unaligned() as u64,
        4 => (src as *const u32).read_unaligned() as u64,
        _ => (src as *const u64).read_unaligned(),
    }
}

/// A signed integer of `size` bytes, sign-extended.
///
/// # Safety
/// `src` valid for reading `size` bytes.
#[inline]
pub unsafe fn load_i64(src: *const u8, size: usize) -> i64 {
    match size {
        1 => *(src as *const i8) as i64,
        2 => (src as *const i16).read_unaligned() as i64,
        4 => (src as *const i32).read_unaligned() as i64,
        _ => (src as *const i64).read_unaligned(),
    }
}

/// The low `size` bytes of `v`.
///
/// # Safety
/// `dst` valid for writing `size` bytes.
#[inline]
pub unsafe fn store_u64(dst: *mut u8, size: usize, v: u64) {
    match size {
        1 => *dst = v as u8,
        2 => (dst as *mut u16).write_unaligned(v as u16),
        4 => (dst as *mut u32).write_unaligned(v as u32),
        _ => (dst as *mut u64).write_unaligned(v),
    }
}

/// A `float` (`size` 4) or `double`.
///
/// # Safety
/// `src` valid for reading `size` bytes.
#[inline]
pub unsafe fn load_f64(src: *const u8, size: usize) -> f64 {
    if size == 4 {
        (src as *const f32).read_unaligned() as f64
    } else {
        (src as *const f64).read_unaligned()
    }
}

/// # Safety
/// `dst` valid for writing `size` bytes.
#[inline]
pub unsafe fn store_f64(dst: *mut u8, size: usize, v: f64) {
    if size == 4 {
        (dst as *mut f32).write_unaligned(v as f32)
    } else {
        (dst as *mut f64).write_unaligned(v)
    }
}

/// # Safety
/// `src` valid for reading 8 bytes.
#[inline]
pub unsafe fn load_ptr(src: *const u8) -> usize {
    (src as *const usize).read_unaligned()
}

/// # Safety
/// `dst` valid for writing 8 bytes.
#[inline]
pub unsafe fn store_ptr(dst: *mut u8, v: usize) {
    (dst as *mut usize).write_unaligned(v)
}

/// `n` (at most 8) little-endian bytes as an integer: the span of a bitfield.
///
/// # Safety
/// `p` valid for reading `n.min(8)` bytes.
#[inline]
pub unsafe fn load_u64_n(p: *const u8, n: usize) -> u64 {
    let mut b = [0u8; 8];
    std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), n.min(8));
    u64::from_le_bytes(b)
}

/// The low `n` (at most 8) bytes of `v`, little-endian.
///
/// # Safety
/// `p` valid for writing `n.min(8)` bytes.
#[inline]
pub unsafe fn store_u64_n(p: *mut u8, n: usize, v: u64) {
    let b = v.to_le_bytes();
    std::ptr::copy_nonoverlapping(b.as_ptr(), p, n.min(8));
}

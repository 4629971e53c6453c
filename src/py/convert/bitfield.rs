//! Bitfields: reading with sign extension, storing range-checked against the width.

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;

use super::scalar::{bool_to_py, i64_to_py, int_value, u64_to_py, IntVal};
use crate::py::cdata::CData;
use crate::py::mem::{load_u64_n, store_u64_n};
use crate::types::model::{Kind, PrimClass, PrimInfo, TypeRef};

fn bitfield_info(ty: &TypeRef) -> PyResult<PrimInfo> {
    match &ty.kind {
        Kind::Prim(pi) => Ok(*pi),
        Kind::Enum(e) => Ok(e.underlying_info()),
        _ => Err(PyTypeError::new_err(format!(
            "bitfield of non-integer type '{}'",
            ty.cname()
        ))),
    }
}

/// Stores a bitfield; the storage unit at `unit` has the field type's size.
///
/// # Safety
/// `unit` must be valid for the field type's size.
pub unsafe fn write_bitfield(
    ty: &TypeRef,
    shift: i32,
    bits: i32,
    obj: &Bound<'_, PyAny>,
    unit: *mut u8,
) -> PyResult<()> {
    let info = bitfield_info(ty)?;
    if ffi::PyLong_Check(obj.as_ptr()) == 0 && !obj.is_instance_of::<CData>() {
        // like int.__index__: floats and others raise "... cannot be interpreted as an integer"
        let idx = Bound::from_owned_ptr_or_err(obj.py(), ffi::PyNumber_Index(obj.as_ptr()))?;
        return write_bitfield(ty, shift, bits, &idx, unit);
    }
    let signed = info.signed && info.class != PrimClass::Bool;
    let v: i128 = match int_value(obj)? {
        IntVal::Small(v) => v,
        _ => i128::MAX,
    };
    let (lo, hi) = if signed && bits > 0 {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    if v < lo || v > hi {
        let s = obj.str().map(|s| s.to_string()).unwrap_or_default();
        return Err(PyOverflowError::new_err(format!(
            "value {s} outside the range allowed by the bit field width: {lo} <= x <= {hi}"
        )));
    }
    let (raw_off, nbytes) = bit_span(shift, bits);
    let p = unit.add(raw_off);
    let local_shift = shift - (raw_off as i32) * 8;
    let mut word = load_u64_n(p, nbytes);
    let mask: u128 = ((1u128 << bits) - 1) << local_shift;
    let w = ((word as u128 & !mask) | (((v as u128) << local_shift) & mask)) as u64;
    word = w;
    store_u64_n(p, nbytes, word);
    Ok(())
}

/// The bytes a bitfield occupies: (byte offset from the unit, number of bytes ≤ 8).
fn bit_span(shift: i32, bits: i32) -> (usize, usize) {
    let first = (shift / 8) as usize;
    let last = ((shift + bits.max(1) - 1) / 8) as usize;
    (first, last - first + 1)
}

/// Reads a bitfield with sign extension for signed types.
///
/// # Safety
/// `unit` must be valid for the field type's size.
pub unsafe fn read_bitfield(
    py: Python<'_>,
    ty: &TypeRef,
    shift: i32,
    bits: i32,
    unit: *const u8,
) -> PyResult<Py<PyAny>> {
    let info = bitfield_info(ty)?;
    let (raw_off, nbytes) = bit_span(shift, bits);
    let local_shift = shift - (raw_off as i32) * 8;
    let word = load_u64_n(unit.add(raw_off), nbytes) as u128;
    let raw = (word >> local_shift) & ((1u128 << bits) - 1);
    if info.class == PrimClass::Bool {
        return Ok(bool_to_py(py, raw != 0));
    }
    if info.signed && bits > 0 && raw >> (bits - 1) & 1 == 1 {
        let v = raw as i128 - (1i128 << bits);
        i64_to_py(py, v as i64)
    } else {
        u64_to_py(py, raw as u64)
    }
}

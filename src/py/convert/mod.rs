//! THE Python ↔ C value conversion layer, shared by cdata (fields, items, `new`), calls
//! (arguments, results) and callbacks (arguments, results), with cffi's rules:
//! range-checked integers, `None` is not NULL, `_Bool` only 0/1, `char` from bytes of
//! length 1, wide chars from str, structs from list/tuple/dict/cdata, arrays from
//! list/tuple/bytes/str, pointers from compatible cdata.
//!
//! Layers, from the bottom (each file uses only those before it):
//! - `crate::py::mem`: raw unaligned memory access (re-exported here);
//! - `scalar`: scalar converters (`py_to_i64`, `py_to_u64`, `py_to_f64`, `py_to_bool`,
//!   `py_to_char`, `py_to_wchar`, `py_to_complex`) and boxers (`i64_to_py`, ...);
//! - `chars`: char/wide-char items and wide strings; `prim`: primitives in memory;
//!   `pointer`: what a pointer slot accepts; `bitfield`;
//! - `value`: `read_value`/`write_value`, a value of any C type at an address;
//! - `file`: a Python file object passed for `FILE *` (cffi's file emulation);
//! - `call`: call-argument helpers: `py_to_pointer_arg` with a `KeepAlive` for
//!   temporaries, `cdata_from_pointer` and `new_owned_copy` for results.
//!
//! Every function returning `PyResult` raises a Python exception for bad input; none
//! panics. Conversion sits above the cdata object (`crate::py::cdata`: it reads and makes
//! cdata) and below everything that gives cdata their Python behaviour.

mod bitfield;
mod call;
mod chars;
mod file;
mod pointer;
mod prim;
mod scalar;
mod value;

pub use self::bitfield::{read_bitfield, write_bitfield};
pub use self::call::{cdata_from_pointer, new_owned_copy, prim_of, py_to_pointer_arg, KeepAlive};
pub use self::chars::{decode_wide, encode_wide, is_byte_item};
pub use self::pointer::{pointer_from_cdata, same_type};
pub use self::prim::{long_double_bytes, read_prim, write_prim};
pub use self::scalar::{
    bool_to_py, char_to_py, complex_to_py, describe, f64_to_py, i64_to_py, py_to_bool, py_to_char,
    py_to_complex, py_to_f64, py_to_i64, py_to_i64_named, py_to_int_bits, py_to_u64,
    py_to_u64_named, py_to_wchar, u64_to_py, wchar_to_py,
};
pub use self::value::{
    array_init_type_error, read_value, read_with_ctype, write_array, write_field, write_sized,
    write_value,
};
pub use crate::py::mem::{load_f64, load_i64, load_ptr, load_u64, store_f64, store_ptr, store_u64};

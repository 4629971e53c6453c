//! Out-of-line ABI modules: the compact tables cffi's `emit_python_code` writes
//! (`_types`, `_globals`, `_struct_unions`, `_enums`, `_typenames`, `_includes`) and
//! `_cffi_backend.FFI(...)` reads. Pure Rust; the Python side converts the module's
//! arguments to `RawTables` and back.
//!
//! - `tables`: the opcode and primitive vocabulary, and the plain-data tables.
//! - `decode`: bytes to tables, validated completely (`Module`).
//! - `realize`: a module to the type model, lazily per name (`Realizer`).
//! - `encode`: a namespace's declarations to the tables cffi would write.
//! - `typestr`: C type strings (`ffi.typeof("pt_t *")`) against a module, lazily.
//! - `pyfmt`: the module text, as cffi writes it.

pub mod decode;
pub mod encode;
pub mod error;
pub mod pyfmt;
pub mod realize;
pub mod tables;
pub mod typestr;

pub use decode::{check_version, decode, Module};
pub use encode::{encode, encode_with_includes};
pub use error::{DecodeError, EncodeError, RealizeError};
pub use pyfmt::render_module;
pub use realize::{Include, Realizer};
pub use tables::{RawTables, Tables};
pub use typestr::{parse_type, TypeStrError};

//! Out-of-line ABI modules: the compact tables cffi's `emit_python_code` writes
//! (`_types`, `_globals`, `_struct_unions`, `_enums`, `_typenames`, `_includes`) and
//! `_cffi_backend.FFI(...)` reads. Pure Rust; the Python side converts the module's
//! arguments to `RawTables` and back.
//!
//! - `tables`: the opcode and primitive vocabulary, and the plain-data tables.
//! - `decode`: bytes to tables, validated completely (`Module`).
//! - `realize`: a module to the type model, lazily per name (`Realizer`).
//! - `lazy`: a module's declarations made in an FFI's namespace on first use, and C
//!   type strings (`ffi.typeof("pt_t *")`) against a module.
//! - `encode`: a namespace's declarations to the tables cffi would write (`members`
//!   recovers a struct's declared members from its layout).
//! - `pyfmt`: the module text, as cffi writes it.
//!
//! Reading a module: `check_version(_version, _types.is_empty())`, then
//! `decode(&RawTables { .. })` gives a `Module` or a `DecodeError`; a
//! `Realizer::new(Arc::new(module), target, includes)` then answers `typename`,
//! `record`, `enum_tag` and `global` on first use (`lazy::resolve_type_string` for type strings), each building only
//! what the name needs. `includes` are the `Realizer`s of the modules in `_includes`,
//! in order. Writing one: `encode` (or `encode_with_includes`) gives `Tables`,
//! `Tables::to_raw` their bytes, `render_module` the file.

pub mod decode;
pub mod encode;
pub mod error;
pub mod lazy;
mod members;
pub mod pyfmt;
pub mod realize;
pub mod tables;

pub use decode::{check_version, decode, Module};
pub use encode::{encode, encode_with_includes};
pub use error::{DecodeError, EncodeError, RealizeError};
pub use pyfmt::render_module;
pub use realize::{Include, Realizer};
pub use tables::{RawTables, Tables};

#[cfg(test)]
mod tests {
    /// Included modules are shared between threads behind a mutex.
    #[test]
    fn realizer_is_send() {
        fn send<T: Send>() {}
        send::<super::Realizer>();
        send::<super::Module>();
    }
}

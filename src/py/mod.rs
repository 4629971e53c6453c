//! Python objects: FFI, CType, CData, buffer, and the one Python<->C conversion layer.
//!
//! For the calls/callbacks code:
//! - `state::FfiRef` (= `Arc<FfiShared>`): an FFI's types; get it from `ffi::FFI::shared()`
//!   or from any cdata (`cdata.ctype.get().ffi`);
//! - `convert`: all value conversions (see its module docs);
//! - `cdata::set_call_hook`: makes function-pointer cdata callable;
//! - `ffi::{save_errno, restore_errno, get_saved_errno, set_saved_errno}`: `ffi.errno`.
use pyo3::prelude::*;

pub mod buffer;
pub mod callback;
pub mod cdata;
pub mod convert;
pub mod ctype;
pub mod errors;
pub mod ffi;
mod ffi_callback_methods;
pub mod function;
pub mod gil;
pub mod lib_object;
pub mod longdouble;
pub mod state;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    cdata::install_fast_slots(m.py()); // before FFI: its NULL is the first cdata
    m.add_class::<ffi::FFI>()?;
    ffi::install_fast_methods(m.py())?;
    m.add_class::<ctype::CType>()?;
    m.add_class::<ctype::CField>()?;
    m.add_class::<cdata::CData>()?;
    m.add_class::<buffer::CBuffer>()?;
    buffer::install_fast_new(m.py());
    m.add_class::<ffi::Allocator>()?;
    m.add("FFI_DEFAULT_ABI", ctype::FFI_DEFAULT_ABI)?;
    m.add("FFI_CDECL", ctype::FFI_DEFAULT_ABI)?;
    function::register(m)?;
    lib_object::register(m)?;
    callback::register(m)?;
    Ok(())
}

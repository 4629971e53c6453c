//! Python objects: FFI, CType, CData, buffer, and the one Python<->C conversion layer.
//!
//! Layers, from the bottom (a module uses only modules listed before it; the call side —
//! `function`, `callback`, `lib_object` — sits above `convert`):
//! - `errors`, `gil`, `mem`, `longdouble`, `errno`, `rawtype`, `tier` (which call tier
//!   serves calls and callbacks): no Python objects of ours;
//! - `state` (per-FFI state, the `FFI` class) → `ctype` (CType, CField, `ctype_of`);
//! - `handles` → `cdata` (the object, its owner, release) → `cdata_alloc` (constructors,
//!   raw allocation) → `convert` (THE value conversion layer) → `cdata_access`,
//!   `cdata_protocol`, `cdata_slots` (what cdata do as Python objects) → `buffer`;
//! - `ops/*` (the FFI's operations) → `ffi` (the `FFI` methods, a facade).
//!
//! For the calls/callbacks code:
//! - `state::FfiRef` (= `Arc<FfiShared>`): an FFI's types; get it from `FFI::shared()`
//!   or from any cdata (`cdata.ctype.get().ffi`);
//! - `convert`: all value conversions (see its module docs);
//! - `cdata::set_call_hook`: makes function-pointer cdata callable;
//! - `errno::{save_errno, restore_errno, get_saved_errno, set_saved_errno}` (also at
//!   `ffi::`): `ffi.errno`;
//! - `errors::internal_error`: the exception a caught panic becomes;
//! - `rawtype`: raw types and the bodies of raw slots.
// Every unsafe block says why it holds.
#![deny(clippy::undocumented_unsafe_blocks)]
use pyo3::prelude::*;

pub mod buffer;
pub mod callback;
pub mod cdata;
pub mod cdata_access;
pub mod cdata_alloc;
pub mod cdata_protocol;
pub mod cdata_slots;
pub mod convert;
pub mod ctype;
pub mod errno;
pub mod errors;
pub mod ffi;
pub mod function;
pub mod gil;
pub mod handles;
pub mod lib_object;
pub mod longdouble;
pub mod mem;
pub mod ops;
pub mod rawtype;
pub mod state;
pub mod tier;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    tier::check()?;
    errors::register(m)?;
    cdata_slots::install(m.py()); // before FFI: its NULL is the first cdata
    m.add_class::<state::FFI>()?;
    ops::fast::install(m.py())?;
    m.add_class::<ctype::CType>()?;
    m.add_class::<ctype::CField>()?;
    m.add_class::<cdata::CData>()?;
    m.add_class::<buffer::CBuffer>()?;
    buffer::install_fast_new(m.py());
    m.add_class::<ops::allocator::Allocator>()?;
    m.add_class::<ops::outofline::OutOfLineModule>()?;
    m.add("FFI_DEFAULT_ABI", ctype::FFI_DEFAULT_ABI)?;
    m.add("FFI_CDECL", ctype::FFI_DEFAULT_ABI)?;
    function::register(m)?;
    lib_object::register(m)?;
    callback::register(m)?;
    Ok(())
}

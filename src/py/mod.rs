//! Python objects: FFI, CType, CData, Lib, and the one Python<->C conversion layer.
use pyo3::prelude::*;

pub mod call_glue;
pub mod callback;
pub mod function;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    function::register(m)?;
    Ok(())
}

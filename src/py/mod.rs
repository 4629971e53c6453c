//! Python objects: FFI, CType, CData, Lib, and the one Python<->C conversion layer.
use pyo3::prelude::*;

pub mod callback;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}

//! The runtime side of the boundary with generated code: the `extern "C"` builtins
//! (generated from the table in `jit::builtins` around `helpers`), and the [`Runtime`]
//! every host trampoline is compiled against.

use std::sync::OnceLock;

use pyo3::exceptions::PySystemError;
use pyo3::ffi;
use pyo3::prelude::*;

use crate::builtin_wrappers;
use crate::jit::trampoline::{Runtime, Shape};
use crate::jit::trampoline_cache;

use super::super::cdata::CData;
use super::helpers;
use super::object::{Trampoline, ARG_CTYPES_OFFSET, TARGET_OFFSET};

crate::foreach_builtin_function!(builtin_wrappers helpers);

pub(super) fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        // Where a CData object keeps its ctype and address: read off a real one.
        let (cdata_type, cdata_ctype_offset, cdata_addr_offset, void_ptr_ctype) =
            Python::attach(|py| {
                let st = super::super::state::builtin(py);
                let vp = st.void_ptr_type();
                // Generated code compares against this CType's address: it must live
                // for the process.
                let void_ptr = st.ctype_of(py, &vp);
                st.pin(py, void_ptr.clone_ref(py).into_any());
                let void_ptr_addr = void_ptr.as_ptr() as usize;
                let cd = CData::new_pointer(py, void_ptr, 0).expect("allocating a cdata");
                let b = cd.bind(py);
                let base = b.as_ptr() as usize;
                let c = b.get();
                (
                    // SAFETY: `b` is a live object.
                    unsafe { ffi::Py_TYPE(b.as_ptr()) } as usize,
                    (&c.ctype as *const _ as usize - base) as i32,
                    (&c.addr as *const _ as usize - base) as i32,
                    void_ptr_addr,
                )
            });
        Runtime {
            fns: host_builtins(),
            objects: super::layout::object_layout(),
            target_offset: TARGET_OFFSET as i32,
            arg_ctypes_offset: ARG_CTYPES_OFFSET as i32,
            long_type: std::ptr::addr_of_mut!(ffi::PyLong_Type) as usize,
            float_type: std::ptr::addr_of_mut!(ffi::PyFloat_Type) as usize,
            bytes_type: std::ptr::addr_of_mut!(ffi::PyBytes_Type) as usize,
            cdata_type,
            cdata_ctype_offset,
            cdata_addr_offset,
            void_ptr_ctype,
            inline_small_ints: super::layout::small_ints_inline(),
        }
    })
}

/// The trampoline of `shape`, compiled at its first use.
pub(super) fn compile_shape(shape: &Shape) -> PyResult<Trampoline> {
    let p = trampoline_cache::SHAPES
        .get_or_compile(shape, runtime())
        .map_err(|e| PySystemError::new_err(e.to_string()))?;
    // SAFETY: the code has the `METH_FASTCALL` signature (`trampoline::build`).
    Ok(unsafe { std::mem::transmute::<*const u8, Trampoline>(p) })
}

/// A shape's trampoline if it was compiled already.
pub(super) fn cached_shape(shape: &Shape) -> Option<Trampoline> {
    // SAFETY: as in `compile_shape`.
    trampoline_cache::SHAPES
        .get(shape)
        .map(|p| unsafe { std::mem::transmute::<*const u8, Trampoline>(p) })
}

//! The generic call tier, and promotion to the compiled one.
//!
//! A function starts here (unless its shape was compiled already): `jf_generic_call` is
//! its `METH_FASTCALL` entry point. It converts every argument through the same glue and
//! conversion layer the trampolines fall back on, places the bytes per the function's
//! ABI plan into a register file (`jit::generic_call`), releases the GIL and swaps errno
//! exactly where a trampoline does (`helpers::release`/`reacquire`), calls the one
//! generic stub, and boxes the result as the trampoline would. Nothing is compiled per
//! signature, so a program that calls many functions once pays no compile time.
//!
//! Promotion: a function's generic calls are counted; at `PROMOTE_AFTER` its shape's
//! trampoline is compiled (or found in the cache) and stored in the function's
//! `def.ml_meth`. CPython's FASTCALL vectorcall of a builtin function reads
//! `m_ml->ml_meth` at every call (and the specialized CALL instructions of 3.11 check
//! the method flags, not the pointer), so that one store, made with the GIL held,
//! switches every later call; calls already running finish on the tier they started on.
//! Compiling happens on the calling thread, under the GIL: no call waits for a compile
//! except the one that reaches the threshold. A failed compile leaves the generic entry
//! in place (and is not retried).
//!
//! Why the tier state lives in the `self` object (`FuncObject`): whatever object users
//! hold for a C function — a builtin function object today, a function-pointer cdata
//! once `lib.f` is one — must reach the C function through `FuncObject.def.ml_meth`,
//! read at each call (as `fnptr_cache` does for cdata calls). The counter, the plan and
//! the entry point are the `FuncObject`'s, so changing the wrapper changes nothing here.

use pyo3::ffi;
use pyo3::prelude::*;

use crate::jit::generic_call::Frame;
use crate::jit::trampoline::{RetShape, Scalar, Shape};

use super::super::convert;
use super::super::tier::{self, TierMode, TierStats, STATS};
use super::glue::{self, Temp};
use super::helpers;
use super::object::{info_of, FuncInfo, FuncObject, Trampoline, VarShape};
use super::runtime::{cached_shape, compile_shape};

/// Generic calls of one function (or variadic call shape) before it is promoted. One
/// compile costs what a few thousand calls lose on the generic tier against the compiled
/// trampoline (measured with benches/bench_tiers.py). A threshold below that break-even
/// keeps what a hot function pays on the generic tier before its promotion under one
/// compile's cost (its first calls cost at most about twice what compiling at once would
/// have), and the many functions a program calls only a few times never compile.
pub const PROMOTE_AFTER: u32 = 1000;

/// Arguments whose cells fit in the on-stack scratch (bytes).
const SMALL_CELLS: usize = 512;
const SMALL_ARGS: usize = 16;
const SMALL_RET: usize = 256;

/// 16-byte aligned scratch: on the stack when small, else on the heap. Only the bytes
/// asked for are zeroed.
struct Scratch<const N: usize> {
    small: std::mem::MaybeUninit<[u128; N]>,
    big: Vec<u128>,
}

impl<const N: usize> Scratch<N> {
    fn new() -> Self {
        Scratch {
            small: std::mem::MaybeUninit::uninit(),
            big: Vec::new(),
        }
    }

    /// `bytes` zeroed bytes, 16-byte aligned.
    fn get(&mut self, bytes: usize) -> *mut u8 {
        if bytes <= 16 * N {
            let p = self.small.as_mut_ptr() as *mut u8;
            // SAFETY: `bytes` is within the array.
            unsafe { std::ptr::write_bytes(p, 0, bytes) };
            p
        } else {
            self.big = vec![0; bytes.div_ceil(16)];
            self.big.as_mut_ptr() as *mut u8
        }
    }
}

/// Cell bytes per argument: at least 16, 16-aligned (as the trampolines' cells).
fn cell_size(size: u32) -> usize {
    (size as usize).max(16).div_ceil(16) * 16
}

/// Performs one call on the generic tier: `shape` is the function's (or the variadic
/// call's) shape, `nargs` already checked against it.
///
/// # Safety
/// GIL held; `f` is a built function `self` object, `args` its `nargs` live arguments.
pub(super) unsafe fn call(
    py: Python<'_>,
    f: *mut FuncObject,
    info: &FuncInfo,
    shape: &Shape,
    args: *mut *mut ffi::PyObject,
    nargs: usize,
) -> PyResult<*mut ffi::PyObject> {
    TierStats::bump(&STATS.generic_calls);
    let plan = &shape.plan;
    let nfixed = info.args.len();
    let total: usize = plan.args.iter().map(|a| cell_size(a.size)).sum();
    let mut cells = Scratch::<{ SMALL_CELLS / 16 }>::new();
    let base = cells.get(total);
    let mut ptrs_small = [std::ptr::null::<u8>(); SMALL_ARGS];
    let mut ptrs_big = Vec::new();
    let ptrs: &mut [*const u8] = if nargs <= SMALL_ARGS {
        &mut ptrs_small[..nargs]
    } else {
        ptrs_big.resize(nargs, std::ptr::null());
        &mut ptrs_big
    };
    let mut temps: Vec<Temp> = Vec::new();
    let mut at = 0usize;
    let mut converted = Ok(());
    for (i, a) in plan.args.iter().enumerate().take(nargs) {
        // SAFETY: `at + cell_size` is within the `total` bytes of `base`.
        let dst = unsafe { base.add(at) };
        at += cell_size(a.size);
        ptrs[i] = dst;
        // SAFETY: `i < nargs`: a live argument (contract).
        let obj = unsafe { Bound::from_borrowed_ptr(py, *args.add(i)) };
        let r = if i < nfixed {
            let ty = &info.args[i];
            // SAFETY: `dst` is the argument's zeroed cell, 16-aligned, at least 16
            // bytes and the type's size.
            match unsafe { glue::write_argument(py, &info.ctx, ty, &obj, dst) } {
                Ok(keep) => {
                    helpers::remember_pointer_ctype(py, info, i, ty, &obj);
                    temps.extend(keep);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else {
            // SAFETY: as above.
            unsafe { glue::write_vararg(py, &info.ctx, i, &obj, dst) }
        };
        if let Err(e) = r {
            converted = Err(e);
            break;
        }
    }
    if let Err(e) = converted {
        release_temps(temps);
        return Err(e);
    }
    let mut ret = Scratch::<{ SMALL_RET / 16 }>::new();
    let ret_ptr = ret.get((plan.ret_size as usize).max(16));
    let mut frame = Frame::new();
    // SAFETY: `f` is live (contract); the callee address is what the trampolines call.
    let target = unsafe { (*f).target };
    let release_gil = shape.release_gil;
    let around = |go: &mut dyn FnMut()| {
        if release_gil {
            // SAFETY: GIL held here; paired with `reacquire` on this thread.
            let ts = unsafe { helpers::release() };
            go();
            // SAFETY: `ts` is what `release` returned.
            unsafe { helpers::reacquire(ts) };
        } else {
            go();
        }
    };
    // SAFETY: every cell holds its argument's C representation and is this call's own
    // copy; `ret_ptr` has room for the result; the plan is the host's for `target`'s
    // signature.
    let r = unsafe { frame.call(plan, target, ptrs, ret_ptr, around) };
    release_temps(temps);
    r.map_err(|e| pyo3::exceptions::PySystemError::new_err(e.to_string()))?;
    // SAFETY: `ret_ptr` holds the C result.
    unsafe { box_result(py, info, ret_ptr) }
}

/// Drops a call's temporaries attached (so the references they hold go now, not into
/// pyo3's deferred pool), as the trampolines' `release_temp`.
fn release_temps(temps: Vec<Temp>) {
    if !temps.is_empty() {
        Python::attach(|_| drop(temps));
    }
}

/// The result as the trampolines box it.
///
/// # Safety
/// GIL held; `ret` holds a C value of the function's result type.
unsafe fn box_result(
    py: Python<'_>,
    info: &FuncInfo,
    ret: *const u8,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: `ret` holds the result (contract), at least 16 readable bytes.
    let p = unsafe {
        match info.ret_shape {
            RetShape::Void => helpers::box_none(),
            RetShape::Int { size, signed } => {
                if signed {
                    ffi::PyLong_FromLongLong(convert::load_i64(ret, size as usize))
                } else {
                    ffi::PyLong_FromUnsignedLongLong(convert::load_u64(ret, size as usize))
                }
            }
            RetShape::Bool => ffi::PyBool_FromLong(*ret as std::ffi::c_long),
            RetShape::Float(s) => {
                let d = if s == Scalar::F32 {
                    std::ptr::read_unaligned(ret as *const f32) as f64
                } else {
                    std::ptr::read_unaligned(ret as *const f64)
                };
                ffi::PyFloat_FromDouble(d)
            }
            RetShape::Generic(_) => {
                return Ok(glue::read_result(py, &info.ctx, &info.result, ret)?.into_ptr())
            }
        }
    };
    if p.is_null() {
        Err(PyErr::fetch(py))
    } else {
        Ok(p)
    }
}

/// Counts a generic call of `calls`' owner and says whether it is time to promote.
fn due(calls: &std::cell::Cell<u32>) -> bool {
    let n = calls.get().saturating_add(1);
    calls.set(n);
    n == PROMOTE_AFTER
}

/// The compiled trampoline of `shape` for a promotion: from the cache, or compiled now;
/// `None` when compiling failed (the error is dropped: the generic tier keeps serving).
fn promote(shape: &Shape) -> Option<Trampoline> {
    let t = cached_shape(shape).or_else(|| compile_shape(shape).ok())?;
    TierStats::bump(&STATS.promotions);
    Some(t)
}

/// The entry point of a non-variadic function on the generic tier.
pub(super) unsafe extern "C" fn jf_generic_call(
    this: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls the entry point with the GIL held, `this` the built function's
    // `self` (this entry point is installed by `materialize`), `args` its live arguments.
    let py = unsafe { Python::assume_attached() };
    let f = this as *mut FuncObject;
    // SAFETY: as above.
    let info = unsafe { info_of(this) };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let shape = info
            .shape
            .as_ref()
            .expect("a non-variadic function has a shape");
        if nargs as usize != info.args.len() || nargs < 0 {
            // SAFETY: `this` is a built function.
            return unsafe { helpers::arity_error(this, nargs) }.map(Done);
        }
        if tier::mode() == TierMode::Auto && due(&info.calls) {
            if let Some(t) = promote(shape) {
                // SAFETY: GIL held, `f` live: the tables first, then the one store that
                // switches the function's tier.
                unsafe { super::object::install_tables(py, f) };
                // SAFETY: as above.
                unsafe { (*f).def.ml_meth = ffi::PyMethodDefPointer { PyCFunctionFast: t } };
                return Ok(Promoted(t));
            }
        }
        // SAFETY: per this function's contract.
        unsafe { call(py, f, info, shape, args, nargs as usize) }.map(Done)
    }));
    finish(r, this, args, nargs)
}

/// What a generic entry point did: the call, or a promotion leaving the call to the
/// trampoline just installed.
pub(super) enum Outcome {
    Done(*mut ffi::PyObject),
    Promoted(Trampoline),
}
use Outcome::{Done, Promoted};

/// Turns an entry point's outcome into its return value (raising errors and panics).
pub(super) fn finish(
    r: std::thread::Result<PyResult<Outcome>>,
    this: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    match r {
        Ok(Ok(Done(p))) => p,
        // SAFETY: the trampoline of this function's shape, called as CPython would.
        Ok(Ok(Promoted(t))) => unsafe { t(this, args, nargs) },
        Ok(Err(e)) => {
            helpers::raise(e);
            std::ptr::null_mut()
        }
        Err(payload) => {
            helpers::raise_panic(payload);
            std::ptr::null_mut()
        }
    }
}

/// One call of a variadic function with the call shape `vs`, on whichever tier serves
/// it (compiling it first under `JITFFI_TIER=compiled`).
///
/// # Safety
/// GIL held; `this` is a built variadic function, `args` its `nargs` live arguments,
/// which match `vs`.
pub(super) unsafe fn call_variadic(
    py: Python<'_>,
    this: *mut ffi::PyObject,
    info: &FuncInfo,
    vs: &VarShape,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> PyResult<Outcome> {
    let f = this as *mut FuncObject;
    if let Some(t) = vs.tramp.get() {
        return Ok(Promoted(t));
    }
    let compiled = match tier::mode() {
        TierMode::Compiled => Some(compile_shape(&vs.shape)?),
        TierMode::Generic => None,
        TierMode::Auto => match cached_shape(&vs.shape) {
            Some(t) => Some(t),
            None if due(&vs.calls) => promote(&vs.shape),
            None => None,
        },
    };
    if let Some(t) = compiled {
        // SAFETY: GIL held, `f` live (contract).
        unsafe { super::object::install_tables(py, f) };
        vs.tramp.set(Some(t));
        return Ok(Promoted(t));
    }
    // SAFETY: per the contract.
    unsafe { call(py, f, info, &vs.shape, args, nargs as usize) }.map(Done)
}

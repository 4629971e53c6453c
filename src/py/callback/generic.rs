//! The two callback tiers. A callback of a shape not compiled yet starts on the generic
//! thunk (`jit::generic_thunk`, one per process): its dispatcher here moves the C
//! arguments out of the register file into the argument buffer the compiled thunks
//! fill, per the shape's ABI plan, and hands them to the same `dispatch` the compiled
//! thunks call (same conversions, errors, GIL and errno handling), then moves the result
//! back into the register file. A shape whose callbacks keep being called is compiled
//! (`PROMOTE_AFTER`); each callback of it then switches its entry slot to the compiled
//! thunk on its next generic call, and callbacks created later start there. The switch
//! is one aligned word of the entry slot, written with the GIL held while the callback
//! is alive, so C calls running on other threads meanwhile finish on whichever thunk
//! they entered.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::prelude::*;

use crate::abi::regfile::RegFile;
use crate::abi::CallPlan;
use crate::jit::callback_thunk::{self, Thunk};
use crate::jit::error::CompileError;
use crate::jit::generic_thunk;

use super::super::tier::{self, TierMode, TierStats, STATS};
use super::core::{CallbackCore, Shape, ShapeTier};
use super::dispatch::{dispatch, dispatch_with};

/// Generic calls of one shape after which it is compiled. Compiling a thunk costs as
/// much as a large number of generic calls' extra conversion work, so a shape is
/// compiled once its callbacks have spent about that much on the generic tier: a
/// callback called a few times (start-up hooks, comparison functions of one small sort)
/// never pays for a compile, one called in a loop pays at most about twice what
/// compiling at once would have cost.
const PROMOTE_AFTER: u64 = 2000;

/// The tier state of `plan`'s shape (one per distinct plan in the process).
pub(super) fn tier_for(plan: &CallPlan) -> Arc<ShapeTier> {
    static TIERS: OnceLock<Mutex<HashMap<CallPlan, Arc<ShapeTier>>>> = OnceLock::new();
    let mut tiers = TIERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(t) = tiers.get(plan) {
        return t.clone();
    }
    tiers
        .entry(plan.clone())
        .or_insert_with(|| {
            Arc::new(ShapeTier {
                compiled: OnceLock::new(),
                generic_calls: Default::default(),
                failed: Default::default(),
            })
        })
        .clone()
}

/// Compiles `plan`'s thunk for `tier` (once per shape: the thunk cache shares it).
pub(super) fn compile(plan: &CallPlan, tier: &ShapeTier) -> Result<Arc<Thunk>, CompileError> {
    if let Some(t) = tier.compiled.get() {
        return Ok(t.clone());
    }
    let t = callback_thunk::thunk_for_plan(plan, dispatch)?;
    Ok(tier.compiled.get_or_init(|| t).clone())
}

/// The generic thunk of this process.
fn generic() -> Result<&'static generic_thunk::GenericThunk, String> {
    generic_thunk::host(dispatch_generic)
}

/// Where a new callback of `shape` enters: its compiled thunk if the shape has one, else
/// the generic thunk's entry for the shape's closure register.
pub(super) fn entry_code(shape: &Shape) -> Result<*const u8, String> {
    match shape.tier.compiled.get() {
        Some(t) => Ok(t.code),
        None => Ok(generic()?.entry(shape.layout.closure_reg)),
    }
}

/// Run by the generic dispatcher with the GIL held while `core` is counted in flight:
/// counts the call, compiles the shape when it is hot, and switches this callback's entry
/// slot to the compiled thunk once there is one.
fn promote(_py: Python<'_>, core: &CallbackCore) {
    let shape = &*core.shape;
    let tier = &*shape.tier;
    let code = match tier.compiled.get() {
        Some(t) => t.code,
        None => {
            if tier::mode() != TierMode::Auto || tier.failed.load(Ordering::Relaxed) {
                return;
            }
            let n = tier.generic_calls.fetch_add(1, Ordering::Relaxed) + 1;
            if n < PROMOTE_AFTER {
                return;
            }
            match compile(&shape.plan, tier) {
                Ok(t) => {
                    TierStats::bump(&STATS.callback_promotions);
                    t.code
                }
                Err(_) => {
                    // The generic tier keeps serving the shape.
                    tier.failed.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
    };
    if let Some(slot) = &core.slot {
        slot.set_thunk(code);
    }
}

/// 16-byte aligned scratch for argument and result bytes.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Chunk([u8; 16]);

const INLINE_CHUNKS: usize = 16;

/// Aligned bytes on the stack when small, on the heap otherwise. (Lives on the stack
/// for one call only: its size is the point.)
#[allow(clippy::large_enum_variant)]
enum Scratch {
    Inline([Chunk; INLINE_CHUNKS]),
    Heap(Vec<Chunk>),
}

impl Scratch {
    fn new(size: usize) -> Scratch {
        let n = size.div_ceil(16).max(1);
        if n <= INLINE_CHUNKS {
            Scratch::Inline([Chunk([0; 16]); INLINE_CHUNKS])
        } else {
            Scratch::Heap(vec![Chunk([0; 16]); n])
        }
    }

    fn bytes(&mut self) -> &mut [u8] {
        let chunks: &mut [Chunk] = match self {
            Scratch::Inline(a) => a,
            Scratch::Heap(v) => v,
        };
        // SAFETY: `Chunk` is 16 plain bytes without padding.
        unsafe { std::slice::from_raw_parts_mut(chunks.as_mut_ptr() as *mut u8, chunks.len() * 16) }
    }
}

/// Entered from the generic thunk. Must not unwind.
///
/// # Safety
/// `closure` is a live `CallbackCore` (its entry slot was taken from it) and `rf` the
/// register file the generic thunk filled for a C call of the core's shape.
pub(super) unsafe extern "C" fn dispatch_generic(closure: *const (), rf: *mut RegFile) {
    // SAFETY: the contract above.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe { serve(closure, &mut *rf) }));
}

/// # Safety
/// `dispatch_generic`'s contract.
unsafe fn serve(closure: *const (), rf: &mut RegFile) {
    TierStats::bump(&STATS.generic_callbacks);
    // SAFETY: the core is alive until `dispatch` counts the call in flight; its shape is
    // held here on our own, since the last call of an orphaned core frees the core.
    let shape: Arc<Shape> = unsafe { (*(closure as *const CallbackCore)).shape.clone() };
    let plan = &shape.plan;
    let mut args = Scratch::new(shape.layout.args_size as usize);
    let mut result = Scratch::new(shape.result_size.max(16));
    // SAFETY: the generic thunk filled `rf` for a call of this plan.
    let loaded =
        unsafe { generic_thunk::load_args(plan, &shape.layout.arg_offsets, rf, args.bytes()) };
    if loaded.is_err() {
        // A plan that does not match its own layout: a bug; nothing reaches Python.
        rf.ret_gpr = [0; 2];
        rf.ret_vec = [[0; 16]; 4];
        return;
    }
    let res_ptr = generic_thunk::result_ptr(plan, rf, result.bytes().as_mut_ptr());
    // SAFETY: the buffers have the layout and sizes of the compiled thunks' buffers;
    // `res_ptr` is the hidden result pointer or the result buffer.
    unsafe { dispatch_with(closure, args.bytes().as_mut_ptr(), res_ptr, promote) };
    let _ = generic_thunk::store_result(plan, rf, result.bytes());
}

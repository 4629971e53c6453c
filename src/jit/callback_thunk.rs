//! Callback thunks: one piece of machine code per signature *shape*, entered from C.
//!
//! A thunk has the C signature of the callback plus one trailing parameter, the closure
//! pointer, which the calling convention places in the first argument register the C
//! arguments leave free; the entry stub of each callback (`entry_pool`) loads it there.
//! The thunk stores every incoming argument's bytes into a stack buffer, calls the Rust
//! dispatcher `(closure, args buffer, result buffer)`, and returns the result buffer's
//! bytes the way the convention wants them. Everything about Python (GIL, conversions,
//! errors) happens in the dispatcher, so the thunk only depends on the ABI shape and is
//! shared by every callback of that shape, whatever FFI or Python function it belongs to.
//!
//! `build_thunk` is the code generator, for any ISA, reaching the dispatcher through an
//! [`Extern`] (a baked-in address on the host, a symbol in an object file: see
//! tests/tramp_aarch64_qemu.rs); `thunk_for_plan` compiles and caches host thunks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{
    self, types, AbiParam, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind,
    Type, Value,
};
use cranelift_codegen::isa::TargetIsa;
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use super::builtins::{Builtin, Extern};
use super::entry_pool::ClosureReg;
use super::error::CompileError;
use super::native_call::{self, Slot};
use crate::abi::{CallPlan, RetPass};
use crate::types::target::Arch;

/// The Rust side every thunk calls: `(closure, args buffer, result buffer)` (the
/// `dispatch` entry of the builtins table).
pub type Dispatcher = unsafe extern "C" fn(*const (), *mut u8, *mut u8);

/// A compiled thunk and the buffer layout its dispatcher must follow.
#[derive(Debug)]
pub struct Thunk {
    pub code: *const u8,
    pub closure_reg: ClosureReg,
    /// Offset of each argument's bytes in the args buffer.
    pub arg_offsets: Vec<u32>,
    pub args_size: u32,
    /// Bytes of the C result the dispatcher writes (0 for void).
    pub result_size: u32,
}

/// What a thunk's entry stub and dispatcher must know about it (`Thunk` minus the code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThunkLayout {
    /// Where the entry stub puts the closure pointer.
    pub closure_reg: ClosureReg,
    /// Offset of each argument's bytes in the args buffer.
    pub arg_offsets: Vec<u32>,
    pub args_size: u32,
    /// Bytes of the C result the dispatcher writes (0 for void).
    pub result_size: u32,
}

// SAFETY: `code` points to immutable executable memory that is never freed.
unsafe impl Send for Thunk {}
// SAFETY: `code` is never written after installation, so sharing it across threads is
// sound.
unsafe impl Sync for Thunk {}

static COMPILED_SHAPES: AtomicUsize = AtomicUsize::new(0);
static COMPILED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// How many thunks were compiled in this process and the bytes of code they hold.
pub fn compiled_stats() -> (usize, usize) {
    (
        COMPILED_SHAPES.load(Ordering::Relaxed),
        COMPILED_BYTES.load(Ordering::Relaxed),
    )
}

/// Thunks live in the jit's executable arena (never freed: they are per shape, so their
/// number is bounded by the program's distinct callback types).
fn install_code(code: &[u8]) -> Result<*const u8, CompileError> {
    super::execmem::install(code).map_err(CompileError::Memory)
}

fn align_up(x: u32, a: u32) -> u32 {
    x.div_ceil(a) * a
}

/// Compiles (or returns the cached) thunk for a lowered callback signature.
pub fn thunk_for_plan(plan: &CallPlan, dispatcher: Dispatcher) -> Result<Arc<Thunk>, CompileError> {
    type Cache = HashMap<(String, usize), Arc<Thunk>>;
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    // Plans are small; their debug form is a complete structural key.
    let key = (format!("{plan:?}"), dispatcher as usize);
    if let Some(t) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(t.clone());
    }
    let thunk = Arc::new(compile_thunk(plan, dispatcher)?);
    Ok(cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert(thunk)
        .clone())
}

/// `fld tword [rdi]; ret`: leaves an x87 `long double` result in st(0). Cranelift never
/// touches the x87 stack, so a thunk can call this last and then return.
#[cfg(target_arch = "x86_64")]
fn x87_load_helper() -> Result<usize, CompileError> {
    static HELPER: OnceLock<Result<usize, CompileError>> = OnceLock::new();
    HELPER
        .get_or_init(|| install_code(&[0xDB, 0x2F, 0xC3]).map(|p| p as usize))
        .clone()
}

#[cfg(not(target_arch = "x86_64"))]
fn x87_load_helper() -> Result<usize, CompileError> {
    Err(CompileError::Internal(
        "x87 results exist only on x86_64".into(),
    ))
}

/// Where the closure pointer travels in the thunk's signature.
enum ClosureParam {
    /// Replaces the filler parameter at this index (a register the C caller leaves unused).
    Replace(usize),
    /// Appended as the last parameter.
    Append,
    /// Every register is taken: two stack parameters inserted at this index, in front of
    /// the C stack arguments (the closure pointer, then the return address into the
    /// stack stub, see `ClosureReg::Stack`).
    Stack(usize),
}

/// Chooses the closure register: a filler register of the lowered signature, else the
/// next free integer register, else a filler or free vector register.
fn place_closure(
    plan: &CallPlan,
    params: &[AbiParam],
) -> Result<(ClosureParam, ClosureReg), CompileError> {
    let (ngpr, nvec) = match plan.arch {
        Arch::X86_64 => (6, 8),
        Arch::Aarch64 => (8, 8),
    };
    // param_slots lists: [aarch64 sret], integer registers in order, vector registers in
    // order, stack pieces; with stack pieces present every register is listed.
    let start = usize::from(plan.arch == Arch::Aarch64 && plan.ret == RetPass::Sret);
    let gpr_len = params[start..]
        .iter()
        .take_while(|p| p.value_type.is_int())
        .count()
        .min(ngpr);
    let vec_start = start + gpr_len;
    let vec_len = params[vec_start..]
        .iter()
        .take_while(|p| !p.value_type.is_int())
        .count()
        .min(nvec);
    let slots = native_call::param_slots(plan, false);
    let is_filler = |i: usize, ty: Type| slots[i].0 == Slot::Filler(ty);
    if let Some(k) = (0..gpr_len).find(|&k| is_filler(start + k, types::I64)) {
        return Ok((ClosureParam::Replace(start + k), ClosureReg::Int(k as u8)));
    }
    let any_stack = params.len() > vec_start + vec_len;
    if gpr_len < ngpr && !any_stack {
        return Ok((ClosureParam::Append, ClosureReg::Int(gpr_len as u8)));
    }
    if let Some(k) = (0..vec_len).find(|&k| is_filler(vec_start + k, types::F64)) {
        return Ok((
            ClosureParam::Replace(vec_start + k),
            ClosureReg::Float(k as u8),
        ));
    }
    if vec_len < nvec && !any_stack {
        return Ok((ClosureParam::Append, ClosureReg::Float(vec_len as u8)));
    }
    Ok((ClosureParam::Stack(vec_start + vec_len), ClosureReg::Stack))
}

/// The layout of `plan`'s thunk without compiling it: where the entry stub puts the
/// closure and where the dispatcher finds each argument. The generic thunk follows it
/// too, so a callback can move between the tiers without its entry stub changing.
pub fn thunk_layout(plan: &CallPlan) -> Result<ThunkLayout, CompileError> {
    if plan.variadic.is_some() {
        return Err(CompileError::Unsupported(
            "variadic callbacks are not supported".into(),
        ));
    }
    let params: Vec<AbiParam> = native_call::param_slots(plan, false)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let (_, closure_reg) = place_closure(plan, &params)?;
    let mut arg_offsets = Vec::with_capacity(plan.args.len());
    let mut off = 0u32;
    for a in &plan.args {
        off = align_up(off, a.align.max(1));
        arg_offsets.push(off);
        off += a.size;
    }
    let args_size = align_up(off.max(8), 16);
    let result_size = if plan.ret == RetPass::Void {
        0
    } else {
        plan.ret_size
    };
    Ok(ThunkLayout {
        closure_reg,
        arg_offsets,
        args_size,
        result_size,
    })
}

fn compile_thunk(plan: &CallPlan, dispatcher: Dispatcher) -> Result<Thunk, CompileError> {
    let isa = super::isa::thunks();
    let x87_helper = if plan.ret == RetPass::X87 {
        Some(x87_load_helper()?)
    } else {
        None
    };
    let (func, layout) = build_thunk(plan, &**isa, dispatcher as usize, x87_helper)?;
    let bytes = compile_function(func)?;
    let code = install_code(&bytes)?;
    COMPILED_SHAPES.fetch_add(1, Ordering::Relaxed);
    COMPILED_BYTES.fetch_add(bytes.len(), Ordering::Relaxed);
    let ThunkLayout {
        closure_reg,
        arg_offsets,
        args_size,
        result_size,
    } = layout;
    Ok(Thunk {
        code,
        closure_reg,
        arg_offsets,
        args_size,
        result_size,
    })
}

/// The thunk of `plan` as a Cranelift function for `isa`, calling `dispatcher`
/// (`Dispatcher`'s contract), and the layout its stub and dispatcher follow.
/// `x87_helper` (x86_64 `long double` results only) is `x87_load_helper`'s code.
pub fn build_thunk<A: Extern>(
    plan: &CallPlan,
    isa: &dyn TargetIsa,
    dispatcher: A,
    x87_helper: Option<A>,
) -> Result<(ir::Function, ThunkLayout), CompileError> {
    let ptr_ty = isa.pointer_type();
    let target = crate::types::target::Target::from_triple(isa.triple())
        .map_err(CompileError::Unsupported)?;
    if target.arch != plan.arch {
        return Err(CompileError::Internal(
            "callback thunk: the call plan was lowered for another architecture".into(),
        ));
    }
    if plan.variadic.is_some() {
        return Err(CompileError::Unsupported(
            "variadic callbacks are not supported".into(),
        ));
    }
    let x87 = plan.ret == RetPass::X87;
    let mut sig = if x87 {
        // Cranelift cannot return in st(0): the thunk returns nothing and leaves the
        // value on the x87 stack through `x87_load_helper`.
        let mut s = Signature::new(isa.default_call_conv());
        s.params = native_call::param_slots(plan, false)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        s
    } else {
        native_call::c_signature(plan, isa)?
    };
    let (closure_param, closure_reg) = place_closure(plan, &sig.params)?;
    let closure_ty = match closure_reg {
        ClosureReg::Int(_) | ClosureReg::Stack => types::I64,
        ClosureReg::Float(_) => types::F64,
    };
    let closure_index = match closure_param {
        ClosureParam::Replace(i) => {
            sig.params[i] = AbiParam::new(closure_ty);
            i
        }
        ClosureParam::Append => {
            sig.params.push(AbiParam::new(closure_ty));
            sig.params.len() - 1
        }
        ClosureParam::Stack(i) => {
            sig.params.insert(i, AbiParam::new(types::I64));
            sig.params.insert(i, AbiParam::new(types::I64));
            i
        }
    };

    let ThunkLayout {
        arg_offsets,
        args_size,
        result_size,
        ..
    } = thunk_layout(plan)?;
    let result_buf = align_up(result_size.max(16), 16);
    let max_align = plan
        .args
        .iter()
        .map(|a| a.align)
        .chain([plan.ret_align, 16])
        .max()
        .unwrap_or(16);

    let mut func = ir::Function::with_name_signature(ir::UserFuncName::default(), sig);
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        b.seal_block(block);
        let mut params = b.block_params(block).to_vec();
        let align_shift = max_align.trailing_zeros() as u8;
        let args_slot = b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            args_size,
            align_shift,
        ));
        let res_slot = b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            result_buf,
            align_shift,
        ));
        let closure_raw = params[closure_index];
        let closure = match closure_reg {
            ClosureReg::Int(_) | ClosureReg::Stack => closure_raw,
            ClosureReg::Float(_) => b.ins().bitcast(ptr_ty, MemFlagsData::new(), closure_raw),
        };
        match closure_param {
            ClosureParam::Append => {
                params.pop();
            }
            ClosureParam::Stack(i) => {
                params.drain(i..i + 2);
            }
            ClosureParam::Replace(_) => {}
        }
        let arg_ptrs: Vec<Value> = arg_offsets
            .iter()
            .map(|&o| b.ins().stack_addr(ptr_ty, args_slot, o as i32))
            .collect();
        native_call::emit_store_incoming(&mut b, plan, &params, &arg_ptrs);
        let args_ptr = b.ins().stack_addr(ptr_ty, args_slot, 0);
        // A hidden result pointer is written directly.
        let res_ptr = match native_call::incoming_sret(plan, &params) {
            Some(p) => p,
            None => b.ins().stack_addr(ptr_ty, res_slot, 0),
        };
        let dsig_ref = b.import_signature(Builtin::dispatch.signature(isa.default_call_conv()));
        let target = dispatcher.address(&mut b, ptr_ty);
        b.ins()
            .call_indirect(dsig_ref, target, &[closure, args_ptr, res_ptr]);
        if x87 {
            let mut hsig = Signature::new(isa.default_call_conv());
            hsig.params.push(AbiParam::new(ptr_ty));
            let hsig_ref = b.import_signature(hsig);
            let helper = x87_helper
                .ok_or_else(|| {
                    CompileError::Internal("an x87 result needs the x87 load helper".into())
                })?
                .address(&mut b, ptr_ty);
            b.ins().call_indirect(hsig_ref, helper, &[res_ptr]);
            b.ins().return_(&[]);
        } else {
            native_call::emit_return_from_memory(&mut b, plan, &params, res_ptr);
        }
        b.finalize(isa.frontend_config());
    }
    Ok((
        func,
        ThunkLayout {
            closure_reg,
            arg_offsets,
            args_size,
            result_size,
        },
    ))
}

/// Compiles a function with every address baked in as a constant, into position-
/// independent bytes.
pub fn compile_function(func: ir::Function) -> Result<Vec<u8>, CompileError> {
    let isa = super::isa::thunks();
    let mut ctx = Context::for_function(func);
    let compiled = ctx
        .compile(&**isa, &mut ControlPlane::default())
        .map_err(|e| {
            CompileError::Internal(format!("callback thunk compilation failed: {:?}", e.inner))
        })?;
    if !compiled.buffer.relocs().is_empty() {
        return Err(CompileError::Internal(
            "callback thunk needs relocations".into(),
        ));
    }
    Ok(compiled.code_buffer().to_vec())
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::abi::test_layout::{field, record};
    use crate::jit::entry_pool;
    use crate::types::model::{Prim, TypeRef, TypeTable};
    use crate::types::target::Target;

    /// Test closure: the types of the arguments, so the dispatcher can sum them.
    struct Sum {
        kinds: Vec<char>,
        offsets: Vec<u32>,
    }

    /// Sums every argument (i = i64-ish integers by size letter, d = double, f = float,
    /// p = struct {double, double}), writes the sum per `kinds[last]` as the result.
    unsafe extern "C" fn sum_dispatch(closure: *const (), args: *mut u8, result: *mut u8) {
        let c = &*(closure as *const Sum);
        let mut acc = 0.0f64;
        for (k, off) in c.kinds[..c.kinds.len() - 1].iter().zip(&c.offsets) {
            let p = args.add(*off as usize);
            acc += match k {
                'b' => *(p as *const i8) as f64,
                'i' => *(p as *const i32) as f64,
                'l' => *(p as *const i64) as f64,
                'd' => *(p as *const f64),
                'f' => *(p as *const f32) as f64,
                'p' => *(p as *const f64) + *(p as *const f64).add(1),
                _ => unreachable!(),
            };
        }
        match c.kinds.last().unwrap() {
            'l' => *(result as *mut i64) = acc as i64,
            'd' => *(result as *mut f64) = acc,
            'f' => *(result as *mut f32) = acc as f32,
            // struct {double, double}: (acc, -acc); struct {long, long, long}: (acc, 2acc, 3acc)
            'p' => {
                *(result as *mut f64) = acc;
                *(result as *mut f64).add(1) = -acc;
            }
            't' => {
                for k in 0..3 {
                    *(result as *mut i64).add(k) = acc as i64 * (k as i64 + 1);
                }
            }
            _ => unreachable!(),
        }
    }

    fn ty_of(t: &mut TypeTable, k: char) -> TypeRef {
        let d = t.prim(Prim::Double);
        let l = t.prim(Prim::Long);
        match k {
            'b' => t.prim(Prim::SChar),
            'i' => t.prim(Prim::Int),
            'l' => l,
            'd' => d,
            'f' => t.prim(Prim::Float),
            'p' => record(
                t,
                "struct pt",
                false,
                false,
                vec![field("x", &d), field("y", &d)],
            ),
            't' => record(
                t,
                "struct three",
                false,
                false,
                vec![field("a", &l), field("b", &l), field("c", &l)],
            ),
            _ => unreachable!(),
        }
    }

    /// Builds a callback of signature `kinds` (last = result) and returns (entry slot, closure).
    fn make(kinds: &str) -> (entry_pool::EntrySlot, Box<Sum>, Arc<Thunk>) {
        let mut t = TypeTable::new(Target::X86_64_LINUX);
        let kinds: Vec<char> = kinds.chars().collect();
        let args: Vec<TypeRef> = kinds[..kinds.len() - 1]
            .iter()
            .map(|&k| ty_of(&mut t, k))
            .collect();
        let ret = ty_of(&mut t, *kinds.last().unwrap());
        let f = t.func_ptr(args, &ret, false);
        let crate::types::model::Kind::FuncPtr(sig) = &f.kind else {
            unreachable!()
        };
        let plan = crate::abi::lower(sig, &Target::X86_64_LINUX).unwrap();
        let thunk = thunk_for_plan(&plan, sum_dispatch).unwrap();
        let c = Box::new(Sum {
            kinds,
            offsets: thunk.arg_offsets.clone(),
        });
        let slot = entry_pool::alloc(
            thunk.closure_reg,
            &*c as *const Sum as *const (),
            thunk.code,
        )
        .unwrap();
        (slot, c, thunk)
    }

    #[test]
    fn scalar_arguments_and_result() {
        let (slot, _c, thunk) = make("idbl");
        assert_eq!(thunk.closure_reg, ClosureReg::Int(2));
        // SAFETY: the entry stub of a thunk compiled for exactly this C signature.
        let f: extern "C" fn(i32, f64, i8) -> i64 = unsafe { std::mem::transmute(slot.code_ptr()) };
        assert_eq!(f(-5, 100.0, -128), -33);
        assert_eq!(f(i32::MAX, 0.0, 127), i32::MAX as i64 + 127);
        let (_s2, _c2, thunk2) = make("idbl");
        assert!(
            Arc::ptr_eq(&thunk, &thunk2),
            "a known shape compiles nothing"
        );
    }

    #[test]
    fn closure_in_float_register_when_integer_registers_are_full() {
        let (slot, _c, thunk) = make("llllllfff");
        assert_eq!(thunk.closure_reg, ClosureReg::Float(2));
        // SAFETY: the entry stub of a thunk compiled for exactly this C signature.
        let f: extern "C" fn(i64, i64, i64, i64, i64, i64, f32, f32) -> f32 =
            unsafe { std::mem::transmute(slot.code_ptr()) };
        assert_eq!(f(1, 2, 3, 4, 5, 6, 0.5, 0.25), 21.75);
    }

    #[test]
    fn stack_arguments_use_a_filler_register() {
        let (slot, _c, thunk) = make("lllllllldl");
        assert_eq!(thunk.closure_reg, ClosureReg::Float(1));
        // SAFETY: the entry stub of a thunk compiled for exactly this C signature.
        let f: extern "C" fn(i64, i64, i64, i64, i64, i64, i64, i64, f64) -> i64 =
            unsafe { std::mem::transmute(slot.code_ptr()) };
        assert_eq!(f(1, 2, 3, 4, 5, 6, 7, 80, 0.5), 108);
    }

    /// Closure placement for aarch64 plans (pure data; the stubs themselves run under
    /// qemu in `entry_pool`).
    #[test]
    fn aarch64_closure_placement() {
        let mut t = TypeTable::new(Target::AARCH64_LINUX);
        let l = t.prim(Prim::Long);
        let d = t.prim(Prim::Double);
        let big = record(
            &mut t,
            "struct big",
            false,
            false,
            vec![field("a", &l), field("b", &l), field("c", &l)],
        );
        let place = |t: &mut TypeTable, args: Vec<TypeRef>, ret: &TypeRef| {
            let f = t.func_ptr(args, ret, false);
            let crate::types::model::Kind::FuncPtr(sig) = &f.kind else {
                unreachable!()
            };
            let plan = crate::abi::lower(sig, &Target::AARCH64_LINUX).unwrap();
            let params: Vec<AbiParam> = native_call::param_slots(&plan, false)
                .into_iter()
                .map(|(_, p)| p)
                .collect();
            place_closure(&plan, &params).unwrap().1
        };
        assert_eq!(place(&mut t, vec![l.clone(); 7], &l), ClosureReg::Int(7));
        assert_eq!(place(&mut t, vec![l.clone(); 8], &l), ClosureReg::Float(0));
        // Big struct result: hidden pointer in x8, x0.. stay free.
        assert_eq!(place(&mut t, vec![l.clone(); 2], &big), ClosureReg::Int(2));
        let mut many = vec![l.clone(); 9];
        many.extend(vec![d.clone(); 8]);
        assert_eq!(place(&mut t, many, &l), ClosureReg::Stack);
    }

    #[test]
    fn every_register_used_closure_travels_on_the_stack() {
        // 6 integer + 8 double registers, plus stack arguments.
        let (slot, _c, thunk) = make("llllllddddddddlpdl");
        assert_eq!(thunk.closure_reg, ClosureReg::Stack);
        #[allow(clippy::type_complexity)]
        // SAFETY: the entry stub of a thunk compiled for exactly this C signature.
        let f: extern "C" fn(
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            f64,
            f64,
            f64,
            f64,
            f64,
            f64,
            f64,
            f64,
            i64,
            Pt,
            f64,
        ) -> i64 = unsafe { std::mem::transmute(slot.code_ptr()) };
        let p = Pt { x: 0.5, y: 0.25 };
        assert_eq!(
            f(1, 2, 3, 4, 5, 6, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 100, p, 1000.25),
            21 + 36 + 100 + 1001
        );
        // Exactly every register, nothing on the stack.
        let (slot, _c, thunk) = make("lllllldddddddddd");
        assert_eq!(thunk.closure_reg, ClosureReg::Stack);
        // SAFETY: the entry stub of a thunk compiled for exactly this C signature.
        let f: extern "C" fn(
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            f64,
            f64,
            f64,
            f64,
            f64,
            f64,
            f64,
            f64,
        ) -> f64 = unsafe { std::mem::transmute(slot.code_ptr()) };
        assert_eq!(
            f(1, 2, 3, 4, 5, 6, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.5),
            57.5
        );
    }

    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Pt {
        x: f64,
        y: f64,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Three {
        a: i64,
        b: i64,
        c: i64,
    }

    #[test]
    fn structs_by_value_in_and_out() {
        let (slot, _c, _t) = make("ippp");
        // SAFETY: the entry stub of a thunk compiled for exactly this C signature.
        let f: extern "C" fn(i32, Pt, Pt) -> Pt = unsafe { std::mem::transmute(slot.code_ptr()) };
        assert_eq!(
            f(1, Pt { x: 2.0, y: 3.0 }, Pt { x: 4.0, y: 5.5 }),
            Pt { x: 15.5, y: -15.5 }
        );
        let (slot, _c, _t) = make("lpt");
        // SAFETY: the entry stub of a thunk compiled for exactly this C signature.
        let f: extern "C" fn(i64, Pt) -> Three = unsafe { std::mem::transmute(slot.code_ptr()) };
        assert_eq!(
            f(10, Pt { x: 1.0, y: 1.0 }),
            Three {
                a: 12,
                b: 24,
                c: 36
            }
        );
    }
}

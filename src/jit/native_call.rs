//! Cranelift code that follows a `CallPlan`: calling C (`emit_call_from_memory`) and being
//! called by C (`c_signature`, `emit_store_incoming`, `emit_return_from_memory`).
//!
//! Cranelift assigns its parameters to registers and stack slots sequentially per register
//! class. To make it put every piece exactly where the plan says (including the registers
//! the plan deliberately skips: all-or-nothing aggregates, aarch64's even-register rule),
//! the Cranelift signature lists the register pieces by register index with filler
//! parameters in the gaps, fills every remaining argument register once anything goes to
//! the stack, then lists the stack pieces by offset with filler slots for alignment gaps.
//! `param_slots` is that mapping, shared by calls and callbacks.
//!
//! Values move through memory in their C representation: an `int` argument is 4 bytes at
//! its `arg_ptrs[i]`, a struct its full size. Pieces of odd-sized aggregates are assembled
//! from narrower loads, so nothing is read or written past the end of a value.

use cranelift_codegen::ir::{
    types, AbiParam, ArgumentPurpose, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind, Type, Value,
};
use cranelift_codegen::isa::TargetIsa;
use cranelift_frontend::FunctionBuilder;

use crate::abi::{align_to, int_type_for, ArgPass, CallPlan, Ext, Loc, Part, RetPass, StubKind};
use crate::types::target::Arch;

/// What one Cranelift parameter of the lowered signature carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Piece `part` of argument `arg`.
    Part { arg: usize, part: usize },
    /// Address of the caller's copy of argument `arg` (`ArgPass::ByRef`).
    ByRef { arg: usize },
    /// The hidden result pointer.
    Sret,
    /// Occupies a register or stack slot the plan leaves unused; its value is ignored.
    Filler(Type),
    /// Extra stack arguments read by the x86_64 stubs (`jit::stubs`), ignored by the callee.
    StubTarget,
    StubResult,
    StubScratch,
}

fn arg_regs(arch: Arch) -> (usize, usize) {
    match arch {
        Arch::X86_64 => (6, 8),
        Arch::Aarch64 => (8, 8),
    }
}

fn abi_param(ty: Type, ext: Ext) -> AbiParam {
    let p = AbiParam::new(ty);
    match ext {
        Ext::None => p,
        Ext::Sext => p.sext(),
        Ext::Uext => p.uext(),
    }
}

/// The Cranelift parameters of `plan`, in order. `with_stub` adds the stub's extra stack
/// arguments (calls through a stub only).
pub fn param_slots(plan: &CallPlan, with_stub: bool) -> Vec<(Slot, AbiParam)> {
    let (ngpr, nvec) = arg_regs(plan.arch);
    let mut gprs: Vec<Option<(Slot, AbiParam)>> = vec![None; ngpr];
    let mut vecs: Vec<Option<(Slot, AbiParam)>> = vec![None; nvec];
    let mut stack: Vec<(u32, Slot, AbiParam)> = Vec::new();
    let mut special = Vec::new();
    let mut place = |loc: Loc, slot: Slot, param: AbiParam| match loc {
        Loc::Gpr(n) => gprs[n as usize] = Some((slot, param)),
        Loc::Vec(n) => vecs[n as usize] = Some((slot, param)),
        Loc::Stack(off) => stack.push((off, slot, param)),
    };
    if plan.ret == RetPass::Sret {
        let p = AbiParam::special(types::I64, ArgumentPurpose::StructReturn);
        match plan.arch {
            Arch::X86_64 => place(Loc::Gpr(0), Slot::Sret, p),
            Arch::Aarch64 => special.push((Slot::Sret, p)),
        }
    }
    for (i, a) in plan.args.iter().enumerate() {
        match &a.pass {
            ArgPass::Parts(parts) => {
                for (j, p) in parts.iter().enumerate() {
                    place(p.loc, Slot::Part { arg: i, part: j }, abi_param(p.ty, p.ext));
                }
            }
            ArgPass::ByRef { ptr, .. } => place(*ptr, Slot::ByRef { arg: i }, AbiParam::new(types::I64)),
        }
    }
    let stub_extra: &[Slot] = match (with_stub, plan.stub) {
        (true, Some(StubKind::Variadic { .. })) => &[Slot::StubTarget],
        (true, Some(StubKind::X87Return { .. })) => &[Slot::StubTarget, Slot::StubResult, Slot::StubScratch],
        _ => &[],
    };
    let any_stack = !stack.is_empty() || !stub_extra.is_empty();
    let mut out = special;
    for (regs, filler) in [(&gprs, types::I64), (&vecs, types::F64)] {
        let used = if any_stack { regs.len() } else { regs.iter().rposition(|r| r.is_some()).map_or(0, |i| i + 1) };
        for r in &regs[..used] {
            out.push(r.unwrap_or((Slot::Filler(filler), AbiParam::new(filler))));
        }
    }
    stack.sort_by_key(|s| s.0);
    // Replays Cranelift's stack assignment: each slot max(size, 8) bytes, naturally aligned.
    let mut cur = 0u32;
    let mut push_stack = |out: &mut Vec<(Slot, AbiParam)>, off: u32, slot: Slot, param: AbiParam| {
        let sz = param.value_type.bytes().max(8);
        while align_to(cur, sz) < off {
            out.push((Slot::Filler(types::I64), AbiParam::new(types::I64)));
            cur = align_to(cur, 8) + 8;
        }
        cur = align_to(cur, sz);
        assert_eq!(cur, off, "stack piece out of Cranelift's order");
        cur += sz;
        out.push((slot, param));
    };
    for (off, slot, param) in stack {
        push_stack(&mut out, off, slot, param);
    }
    let extra_at = align_to(plan.stack_size, 8);
    for (k, s) in stub_extra.iter().enumerate() {
        push_stack(&mut out, extra_at + 8 * k as u32, *s, AbiParam::new(types::I64));
    }
    out
}

/// Result pieces in Cranelift return order (integer registers, then vector registers).
fn ret_parts(plan: &CallPlan) -> Vec<Part> {
    match &plan.ret {
        RetPass::Parts(ps) => {
            let mut v = ps.clone();
            v.sort_by_key(|p| match p.loc {
                Loc::Gpr(n) => n as u32,
                Loc::Vec(n) => 100 + n as u32,
                Loc::Stack(o) => 1000 + o,
            });
            v
        }
        _ => Vec::new(),
    }
}

fn signature(plan: &CallPlan, isa: &dyn TargetIsa, with_stub: bool) -> Signature {
    let mut sig = Signature::new(isa.default_call_conv());
    sig.params = param_slots(plan, with_stub).into_iter().map(|(_, p)| p).collect();
    sig.returns = ret_parts(plan).iter().map(|p| abi_param(p.ty, p.ext)).collect();
    sig
}

/// The Cranelift signature a C caller of a function with this plan expects (for callback
/// thunks). Fails for what Cranelift cannot express as a callee: an x87 `long double`
/// result on x86_64, and variadic functions.
pub fn c_signature(plan: &CallPlan, isa: &dyn TargetIsa) -> Result<Signature, String> {
    if plan.ret == RetPass::X87 {
        return Err("NotImplementedError: a callback cannot return 'long double' on x86_64 (x87 st(0))".into());
    }
    if plan.variadic.is_some() {
        return Err("NotImplementedError: variadic callbacks are not supported".into());
    }
    Ok(signature(plan, isa, false))
}

fn flags() -> MemFlagsData {
    // Argument memory may be a packed struct field: no alignment promise.
    MemFlagsData::new().with_notrap()
}

fn int_of(ty: Type) -> Type {
    Type::int(ty.bits() as u16).expect("integer of float width")
}

/// Loads `part.size` bytes at `base + part.offset` as a `part.ty` value.
pub fn load_part(b: &mut FunctionBuilder, base: Value, part: &Part) -> Value {
    if part.size == part.ty.bytes() {
        return b.ins().load(part.ty, flags(), base, part.offset as i32);
    }
    let ity = int_of(part.ty);
    let mut acc: Option<Value> = None;
    let mut pos = 0u32;
    for w in [8u32, 4, 2, 1] {
        while part.size - pos >= w && w < ity.bytes() {
            let piece_ty = Type::int((w * 8) as u16).unwrap();
            let mut v = b.ins().load(piece_ty, flags(), base, (part.offset + pos) as i32);
            if piece_ty != ity {
                v = b.ins().uextend(ity, v);
            }
            if pos > 0 {
                v = b.ins().ishl_imm_u(v, (pos * 8) as i64);
            }
            acc = Some(match acc {
                None => v,
                Some(a) => b.ins().bor(a, v),
            });
            pos += w;
        }
    }
    let v = acc.expect("non-empty part");
    if part.ty.is_float() {
        b.ins().bitcast(part.ty, MemFlagsData::new(), v)
    } else {
        v
    }
}

/// Stores the low `part.size` bytes of `v` at `base + part.offset`.
pub fn store_part(b: &mut FunctionBuilder, base: Value, part: &Part, v: Value) {
    if part.size == part.ty.bytes() {
        b.ins().store(flags(), v, base, part.offset as i32);
        return;
    }
    let ity = int_of(part.ty);
    let v = if part.ty.is_float() { b.ins().bitcast(ity, MemFlagsData::new(), v) } else { v };
    let mut pos = 0u32;
    for w in [4u32, 2, 1] {
        while part.size - pos >= w {
            let piece_ty = Type::int((w * 8) as u16).unwrap();
            let mut x = v;
            if pos > 0 {
                x = b.ins().ushr_imm_u(x, (pos * 8) as i64);
            }
            if piece_ty != ity {
                x = b.ins().ireduce(piece_ty, x);
            }
            b.ins().store(flags(), x, base, (part.offset + pos) as i32);
            pos += w;
        }
    }
}

/// Copies `size` bytes from `src` to `dst` with straight-line loads and stores.
pub fn copy_bytes(b: &mut FunctionBuilder, dst: Value, src: Value, size: u32) {
    let mut off = 0;
    while off < size {
        let sz = (size - off).min(8);
        let p = Part { offset: off, size: sz, ty: int_type_for(sz), loc: Loc::Gpr(0), ext: Ext::None };
        let v = load_part(b, src, &p);
        store_part(b, dst, &p, v);
        off += sz;
    }
}

fn zero(b: &mut FunctionBuilder, ty: Type) -> Value {
    if ty == types::F64 {
        b.ins().f64const(0.0)
    } else {
        b.ins().iconst(ty, 0)
    }
}

/// In a function under construction, calls `callee` (a pointer-sized value) per `plan`,
/// taking each C argument's bytes from memory at `arg_ptrs[i]` and writing the C result's
/// bytes to `ret_ptr` (`plan.ret_size` bytes; required unless the result is void).
///
/// When `plan.stub` is set (x86_64 variadic calls and `long double` results), `stub` must
/// be the address of the bytes `jit::stubs::stub_bytes(plan.stub)` placed in executable
/// memory; the call goes through it.
pub fn emit_call_from_memory(
    b: &mut FunctionBuilder,
    isa: &dyn TargetIsa,
    plan: &CallPlan,
    callee: Value,
    stub: Option<Value>,
    arg_ptrs: &[Value],
    ret_ptr: Option<Value>,
) {
    assert_eq!(arg_ptrs.len(), plan.args.len(), "one memory pointer per argument");
    let ptr_ty = isa.pointer_type();
    let slots = param_slots(plan, plan.stub.is_some());
    let mut vals = Vec::with_capacity(slots.len());
    for (slot, param) in &slots {
        let v = match *slot {
            Slot::Part { arg, part } => {
                let ArgPass::Parts(ps) = &plan.args[arg].pass else { unreachable!() };
                load_part(b, arg_ptrs[arg], &ps[part])
            }
            Slot::ByRef { arg } => {
                let ArgPass::ByRef { size, align, .. } = plan.args[arg].pass else { unreachable!() };
                let ss = b.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    size,
                    align.max(8).trailing_zeros() as u8,
                ));
                let copy = b.ins().stack_addr(ptr_ty, ss, 0);
                copy_bytes(b, copy, arg_ptrs[arg], size);
                copy
            }
            Slot::Sret | Slot::StubResult => ret_ptr.expect("result memory"),
            Slot::StubTarget => callee,
            Slot::Filler(ty) => zero(b, ty),
            Slot::StubScratch => zero(b, types::I64),
        };
        debug_assert_eq!(b.func.dfg.value_type(v), param.value_type);
        vals.push(v);
    }
    let sig = signature(plan, isa, plan.stub.is_some());
    let sigref = b.import_signature(sig);
    let target = if plan.stub.is_some() { stub.expect("plan needs a stub: pass its address") } else { callee };
    let call = b.ins().call_indirect(sigref, target, &vals);
    let results = b.inst_results(call).to_vec();
    let rparts = ret_parts(plan);
    if !rparts.is_empty() {
        let rp = ret_ptr.expect("result memory");
        for (p, v) in rparts.iter().zip(results) {
            store_part(b, rp, p, v);
        }
    }
}

/// In a callback thunk whose entry block has `c_signature`'s parameters `params`, stores
/// each incoming C argument's bytes to memory at `arg_ptrs[i]` (by-reference arguments
/// are copied from the caller's copy).
pub fn emit_store_incoming(b: &mut FunctionBuilder, plan: &CallPlan, params: &[Value], arg_ptrs: &[Value]) {
    let slots = param_slots(plan, false);
    assert_eq!(slots.len(), params.len(), "params must follow c_signature");
    for ((slot, _), &v) in slots.iter().zip(params) {
        match *slot {
            Slot::Part { arg, part } => {
                let ArgPass::Parts(ps) = &plan.args[arg].pass else { unreachable!() };
                store_part(b, arg_ptrs[arg], &ps[part], v);
            }
            Slot::ByRef { arg } => {
                let ArgPass::ByRef { size, .. } = plan.args[arg].pass else { unreachable!() };
                copy_bytes(b, arg_ptrs[arg], v, size);
            }
            _ => {}
        }
    }
}

/// The incoming hidden result pointer among `params` (when `plan.ret` is `Sret`): the
/// thunk may write the result there directly instead of copying.
pub fn incoming_sret(plan: &CallPlan, params: &[Value]) -> Option<Value> {
    param_slots(plan, false).iter().zip(params).find(|((s, _), _)| *s == Slot::Sret).map(|(_, v)| *v)
}

/// Returns from a callback thunk with the C result whose bytes are at `ret_ptr` (ignored
/// for void). For a hidden-pointer result the bytes are copied to the caller's memory
/// (skipped when `ret_ptr` already is that pointer).
pub fn emit_return_from_memory(b: &mut FunctionBuilder, plan: &CallPlan, params: &[Value], ret_ptr: Value) {
    match &plan.ret {
        RetPass::Void => {
            b.ins().return_(&[]);
        }
        RetPass::Sret => {
            let dst = incoming_sret(plan, params).expect("sret parameter");
            if dst != ret_ptr {
                copy_bytes(b, dst, ret_ptr, plan.ret_size);
            }
            b.ins().return_(&[]);
        }
        RetPass::Parts(_) => {
            let vals: Vec<Value> = ret_parts(plan).iter().map(|p| load_part(b, ret_ptr, p)).collect();
            b.ins().return_(&vals);
        }
        RetPass::X87 => panic!("c_signature refuses x87 results"),
    }
}

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
    types, AbiParam, ArgumentPurpose, InstBuilder, MemFlagsData, Signature, StackSlotData,
    StackSlotKind, Type, Value,
};
use cranelift_codegen::isa::TargetIsa;
use cranelift_frontend::FunctionBuilder;

use super::error::CompileError;
use crate::abi::{
    align_to, int_type_for, ArgPass, CallPlan, Ext, Loc, Part, Parts, RetPass, StubKind,
};
use crate::types::target::Arch;

/// What one Cranelift parameter of the lowered signature carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Piece `part` of argument `arg`.
    Part {
        arg: usize,
        part: usize,
    },
    /// Address of the caller's copy of argument `arg` (`ArgPass::ByRef`).
    ByRef {
        arg: usize,
    },
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

/// Which side of the C call the generated code is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Generated code calls C (through the plan's stub, if any: its extra stack arguments
    /// are added).
    Caller,
    /// C calls generated code (a callback thunk), directly.
    Callee,
    /// C calls `stubs::x87_callback_entry`, which calls the thunk with 16 more bytes of
    /// stack and loads the result's 16 bytes, returned in rax:rdx, into `st(0)`. Only for
    /// plans whose result is `RetPass::X87`; see `c_signature_x87_entry`.
    CalleeX87Entry,
}

/// The Cranelift parameters of `plan`, in order: `with_stub` for a call (`Side::Caller`),
/// otherwise for a thunk called directly (`Side::Callee`).
pub fn param_slots(plan: &CallPlan, with_stub: bool) -> Vec<(Slot, AbiParam)> {
    param_slots_for(
        plan,
        if with_stub {
            Side::Caller
        } else {
            Side::Callee
        },
    )
}

/// The Cranelift parameters of `plan`, in order, for `side`.
pub fn param_slots_for(plan: &CallPlan, side: Side) -> Vec<(Slot, AbiParam)> {
    let with_stub = side == Side::Caller;
    let x87_entry = side == Side::CalleeX87Entry;
    assert!(
        !x87_entry || plan.ret == RetPass::X87,
        "x87 entry only for x87 results"
    );
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
                    place(
                        p.loc,
                        Slot::Part { arg: i, part: j },
                        abi_param(p.ty, p.ext),
                    );
                }
            }
            ArgPass::ByRef { ptr, .. } => {
                place(*ptr, Slot::ByRef { arg: i }, AbiParam::new(types::I64))
            }
        }
    }
    let stub_extra: &[Slot] = match (with_stub, plan.stub) {
        (true, Some(StubKind::Variadic { .. })) => &[Slot::StubTarget],
        (true, Some(StubKind::X87Return { .. })) => {
            &[Slot::StubTarget, Slot::StubResult, Slot::StubScratch]
        }
        _ => &[],
    };
    let any_stack = !stack.is_empty() || !stub_extra.is_empty() || x87_entry;
    let mut out = special;
    for (regs, filler) in [(&gprs, types::I64), (&vecs, types::F64)] {
        let used = if any_stack {
            regs.len()
        } else {
            regs.iter().rposition(|r| r.is_some()).map_or(0, |i| i + 1)
        };
        for r in &regs[..used] {
            out.push(r.unwrap_or((Slot::Filler(filler), AbiParam::new(filler))));
        }
    }
    stack.sort_by_key(|s| s.0);
    // Replays Cranelift's stack assignment: each slot max(size, 8) bytes, naturally aligned.
    let mut cur = 0u32;
    let mut push_stack =
        |out: &mut Vec<(Slot, AbiParam)>, off: u32, slot: Slot, param: AbiParam| {
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
    // Behind the x87 entry stub the C caller's stack arguments are 16 bytes further.
    let shift = if x87_entry { 16 } else { 0 };
    for (off, slot, param) in stack {
        push_stack(&mut out, off + shift, slot, param);
    }
    let extra_at = align_to(plan.stack_size, 8);
    for (k, s) in stub_extra.iter().enumerate() {
        push_stack(
            &mut out,
            extra_at + 8 * k as u32,
            *s,
            AbiParam::new(types::I64),
        );
    }
    out
}

/// Result pieces in Cranelift return order (integer registers, then vector registers).
fn ret_parts(plan: &CallPlan) -> Parts {
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
        _ => Parts::new(),
    }
}

fn signature(plan: &CallPlan, isa: &dyn TargetIsa, side: Side) -> Signature {
    let mut sig = Signature::new(isa.default_call_conv());
    sig.params = param_slots_for(plan, side)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    sig.returns = ret_parts(plan)
        .iter()
        .map(|p| abi_param(p.ty, p.ext))
        .collect();
    if side == Side::CalleeX87Entry {
        sig.returns = vec![AbiParam::new(types::I64), AbiParam::new(types::I64)];
    }
    sig
}

/// The Cranelift signature of a callback thunk that C calls with this plan's convention.
/// Refuses variadic callbacks, and x87 results (`needs_x87_entry`: use
/// `c_signature_x87_entry`).
pub fn c_signature(plan: &CallPlan, isa: &dyn TargetIsa) -> Result<Signature, CompileError> {
    if plan.variadic.is_some() {
        return Err(CompileError::Unsupported(
            "variadic callbacks are not supported".into(),
        ));
    }
    if plan.ret == RetPass::X87 {
        return Err(CompileError::Unsupported(
            "x87 'long double' result: use c_signature_x87_entry".into(),
        ));
    }
    Ok(signature(plan, isa, Side::Callee))
}

/// For an x87 result (x86_64 `long double`): the signature of a thunk that C reaches
/// through `stubs::x87_callback_entry(thunk_address)`. `emit_store_incoming` and
/// `emit_return_from_memory` recognize its parameters.
pub fn c_signature_x87_entry(
    plan: &CallPlan,
    isa: &dyn TargetIsa,
) -> Result<Signature, CompileError> {
    if plan.variadic.is_some() {
        return Err(CompileError::Unsupported(
            "variadic callbacks are not supported".into(),
        ));
    }
    if plan.ret != RetPass::X87 {
        return Err(CompileError::Internal("not an x87 result".into()));
    }
    Ok(signature(plan, isa, Side::CalleeX87Entry))
}

/// The callee-side slots matching `nparams` thunk parameters (direct, or behind the x87
/// entry stub: that list is always longer).
fn callee_slots(plan: &CallPlan, nparams: usize) -> Vec<(Slot, AbiParam)> {
    let direct = param_slots_for(plan, Side::Callee);
    if plan.ret == RetPass::X87 && direct.len() != nparams {
        return param_slots_for(plan, Side::CalleeX87Entry);
    }
    direct
}

/// x86_64 `long double` results leave through x87 `st(0)`, which Cranelift cannot
/// produce: the thunk returns the bytes in rax:rdx to an entry stub that loads `st(0)`.
pub fn needs_x87_entry(plan: &CallPlan) -> bool {
    plan.ret == RetPass::X87
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
            let mut v = b
                .ins()
                .load(piece_ty, flags(), base, (part.offset + pos) as i32);
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
    let v = if part.ty.is_float() {
        b.ins().bitcast(ity, MemFlagsData::new(), v)
    } else {
        v
    };
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
        let p = Part {
            offset: off,
            size: sz,
            ty: int_type_for(sz),
            loc: Loc::Gpr(0),
            ext: Ext::None,
        };
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

/// One C argument for `emit_call`.
#[derive(Clone, Copy, Debug)]
pub enum CArg {
    /// Address of the argument's bytes in C representation.
    Memory(Value),
    /// The value itself, for an argument the plan passes as one whole scalar piece
    /// (`scalar_arg_type` says which type): no memory round trip.
    Scalar(Value),
}

/// The Cranelift type of argument `i` when the plan passes it as one whole scalar (ints,
/// pointers, float, double, aarch64 long double), so it may be given as `CArg::Scalar`.
pub fn scalar_arg_type(plan: &CallPlan, i: usize) -> Option<Type> {
    match &plan.args[i].pass {
        ArgPass::Parts(ps)
            if ps.len() == 1 && ps[0].offset == 0 && ps[0].size == ps[0].ty.bytes() =>
        {
            Some(ps[0].ty)
        }
        _ => None,
    }
}

/// The Cranelift type of the result when it comes back as one whole scalar, in which case
/// `emit_call` without result memory returns it as a value.
pub fn scalar_ret_type(plan: &CallPlan) -> Option<Type> {
    match &plan.ret {
        RetPass::Parts(ps)
            if ps.len() == 1 && ps[0].offset == 0 && ps[0].size == ps[0].ty.bytes() =>
        {
            Some(ps[0].ty)
        }
        _ => None,
    }
}

/// In a function under construction, calls `callee` (a pointer-sized value) per `plan`.
///
/// Arguments come from `args` (memory or whole scalars). With `ret_ptr`, the C result's
/// bytes are written there (`plan.ret_size` bytes) and nothing is returned; without it the
/// result must be void (returns nothing) or a whole scalar (returns that one value).
/// Sret and x87 results need `ret_ptr`.
///
/// When `plan.stub` is set (x86_64 variadic calls and x87 `long double` results), `stub`
/// must be the address of `jit::stubs::stub_bytes(plan.stub)` placed in executable
/// memory; the call goes through it.
pub fn emit_call(
    b: &mut FunctionBuilder,
    isa: &dyn TargetIsa,
    plan: &CallPlan,
    callee: Value,
    stub: Option<Value>,
    args: &[CArg],
    ret_ptr: Option<Value>,
) -> Vec<Value> {
    assert_eq!(args.len(), plan.args.len(), "one CArg per argument");
    let ptr_ty = isa.pointer_type();
    let slots = param_slots_for(plan, Side::Caller);
    let mut vals = Vec::with_capacity(slots.len());
    for (slot, param) in &slots {
        let v = match *slot {
            Slot::Part { arg, part } => {
                let ArgPass::Parts(ps) = &plan.args[arg].pass else {
                    unreachable!()
                };
                match args[arg] {
                    CArg::Memory(p) => load_part(b, p, &ps[part]),
                    CArg::Scalar(v) => {
                        assert!(
                            scalar_arg_type(plan, arg).is_some(),
                            "argument {arg} is not a whole scalar"
                        );
                        v
                    }
                }
            }
            Slot::ByRef { arg } => {
                let ArgPass::ByRef { size, align, .. } = plan.args[arg].pass else {
                    unreachable!()
                };
                let CArg::Memory(src) = args[arg] else {
                    panic!("argument {arg} must be in memory")
                };
                // The callee may modify its copy: never hand it the caller's memory.
                let ss = b.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    size,
                    align.max(8).trailing_zeros() as u8,
                ));
                let copy = b.ins().stack_addr(ptr_ty, ss, 0);
                copy_bytes(b, copy, src, size);
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
    let sig = signature(plan, isa, Side::Caller);
    let sigref = b.import_signature(sig);
    let target = if plan.stub.is_some() {
        stub.expect("plan needs a stub: pass its address")
    } else {
        callee
    };
    let call = b.ins().call_indirect(sigref, target, &vals);
    let results = b.inst_results(call).to_vec();
    let rparts = ret_parts(plan);
    match ret_ptr {
        Some(rp) => {
            for (p, v) in rparts.iter().zip(results) {
                store_part(b, rp, p, v);
            }
            Vec::new()
        }
        None => {
            assert!(
                rparts.is_empty() && matches!(plan.ret, RetPass::Void)
                    || scalar_ret_type(plan).is_some(),
                "this result needs result memory"
            );
            results
        }
    }
}

/// `emit_call` with every argument in memory at `arg_ptrs[i]` and the result written to
/// `ret_ptr` (required unless the result is void).
pub fn emit_call_from_memory(
    b: &mut FunctionBuilder,
    isa: &dyn TargetIsa,
    plan: &CallPlan,
    callee: Value,
    stub: Option<Value>,
    arg_ptrs: &[Value],
    ret_ptr: Option<Value>,
) {
    let args: Vec<CArg> = arg_ptrs.iter().map(|p| CArg::Memory(*p)).collect();
    if plan.ret != RetPass::Void {
        assert!(ret_ptr.is_some(), "result memory");
    }
    emit_call(b, isa, plan, callee, stub, &args, ret_ptr);
}

/// In a callback thunk, the incoming value of argument `i` when `scalar_arg_type` says it
/// is one whole scalar. Small integers arrive with unspecified upper bits: extend them
/// explicitly (`uextend`/`sextend`) before widening.
pub fn incoming_scalar(plan: &CallPlan, params: &[Value], i: usize) -> Option<Value> {
    scalar_arg_type(plan, i)?;
    callee_slots(plan, params.len())
        .iter()
        .zip(params)
        .find(|((s, _), _)| *s == Slot::Part { arg: i, part: 0 })
        .map(|(_, v)| *v)
}

/// Returns from a callback thunk with a whole-scalar result value (`scalar_ret_type`).
pub fn emit_return_scalar(b: &mut FunctionBuilder, plan: &CallPlan, v: Value) {
    assert!(
        scalar_ret_type(plan).is_some(),
        "result is not a whole scalar"
    );
    b.ins().return_(&[v]);
}

/// In a callback thunk whose entry block has `c_signature`'s parameters `params`, stores
/// each incoming C argument's bytes to memory at `arg_ptrs[i]` (by-reference arguments
/// are copied from the caller's copy).
pub fn emit_store_incoming(
    b: &mut FunctionBuilder,
    plan: &CallPlan,
    params: &[Value],
    arg_ptrs: &[Value],
) {
    let slots = callee_slots(plan, params.len());
    assert_eq!(slots.len(), params.len(), "params must follow c_signature");
    for ((slot, _), &v) in slots.iter().zip(params) {
        match *slot {
            Slot::Part { arg, part } => {
                let ArgPass::Parts(ps) = &plan.args[arg].pass else {
                    unreachable!()
                };
                store_part(b, arg_ptrs[arg], &ps[part], v);
            }
            Slot::ByRef { arg } => {
                let ArgPass::ByRef { size, .. } = plan.args[arg].pass else {
                    unreachable!()
                };
                copy_bytes(b, arg_ptrs[arg], v, size);
            }
            _ => {}
        }
    }
}

/// The incoming hidden result pointer among `params` (when `plan.ret` is `Sret`): the
/// thunk may write the result there directly instead of copying.
pub fn incoming_sret(plan: &CallPlan, params: &[Value]) -> Option<Value> {
    callee_slots(plan, params.len())
        .iter()
        .zip(params)
        .find(|((s, _), _)| *s == Slot::Sret)
        .map(|(_, v)| *v)
}

/// Returns from a callback thunk with the C result whose bytes are at `ret_ptr` (ignored
/// for void). For a hidden-pointer result the bytes are copied to the caller's memory
/// (skipped when `ret_ptr` already is that pointer).
pub fn emit_return_from_memory(
    b: &mut FunctionBuilder,
    plan: &CallPlan,
    params: &[Value],
    ret_ptr: Value,
) {
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
            let vals: Vec<Value> = ret_parts(plan)
                .iter()
                .map(|p| load_part(b, ret_ptr, p))
                .collect();
            b.ins().return_(&vals);
        }
        RetPass::X87 => {
            // Behind `stubs::x87_callback_entry` (`c_signature_x87_entry`): rax:rdx.
            let lo = b.ins().load(types::I64, flags(), ret_ptr, 0);
            let hi = b.ins().load(types::I64, flags(), ret_ptr, 8);
            b.ins().return_(&[lo, hi]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::lower;
    use crate::abi::test_layout::{field, record};
    use crate::types::model::{Kind, Prim, TypeRef, TypeTable};
    use crate::types::target::Target;

    fn slots(
        t: &mut TypeTable,
        args: &[&TypeRef],
        ret: &TypeRef,
        variadic: bool,
        side: Side,
    ) -> (CallPlan, Vec<Slot>) {
        let f = t.func_ptr(args.iter().map(|a| (*a).clone()).collect(), ret, variadic);
        let Kind::FuncPtr(sig) = &f.kind else {
            unreachable!()
        };
        let plan = lower(sig, &t.target).unwrap();
        let s = param_slots_for(&plan, side)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        (plan, s)
    }

    const F64: Slot = Slot::Filler(types::F64);
    const I64: Slot = Slot::Filler(types::I64);
    fn part(arg: usize, part: usize) -> Slot {
        Slot::Part { arg, part }
    }

    #[test]
    fn all_or_nothing_keeps_the_skipped_register_filled() {
        let mut t = TypeTable::new(Target::X86_64_LINUX);
        let l = t.prim(Prim::Long);
        let ll = record(
            &mut t,
            "struct ll",
            false,
            false,
            vec![field("a", &l), field("b", &l)],
        );
        let (_, s) = slots(&mut t, &[&l, &l, &l, &l, &l, &ll], &l, false, Side::Caller);
        // r9 unused by the plan: a filler, so the struct's halves land on the stack.
        let mut want = vec![
            part(0, 0),
            part(1, 0),
            part(2, 0),
            part(3, 0),
            part(4, 0),
            I64,
        ];
        want.extend([F64; 8]);
        want.extend([part(5, 0), part(5, 1)]);
        assert_eq!(s, want);
    }

    #[test]
    fn no_stack_no_fillers_beyond_the_last_register() {
        let mut t = TypeTable::new(Target::X86_64_LINUX);
        let (i, d) = (t.prim(Prim::Int), t.prim(Prim::Double));
        let (_, s) = slots(&mut t, &[&d, &i, &d], &i, false, Side::Caller);
        assert_eq!(s, vec![part(1, 0), part(0, 0), part(2, 0)]);
    }

    #[test]
    fn aarch64_even_register_gap_and_sret_in_x8() {
        let mut t = TypeTable::new(Target::AARCH64_LINUX);
        let (i, l, ld) = (
            t.prim(Prim::Int),
            t.prim(Prim::Long),
            t.prim(Prim::LongDouble),
        );
        let u = record(
            &mut t,
            "union u",
            true,
            false,
            vec![field("ld", &ld), field("l", &l)],
        );
        let big = record(
            &mut t,
            "struct big",
            false,
            false,
            vec![field("a", &l), field("b", &l), field("c", &l)],
        );
        let (_, s) = slots(&mut t, &[&i, &u], &big, false, Side::Caller);
        assert_eq!(s, vec![Slot::Sret, part(0, 0), I64, part(1, 0), part(1, 1)]);
    }

    #[test]
    fn x86_64_stack_alignment_fillers_and_stub_arguments() {
        let mut t = TypeTable::new(Target::X86_64_LINUX);
        let (i, ld) = (t.prim(Prim::Int), t.prim(Prim::LongDouble));
        let args = [&i, &i, &i, &i, &i, &i, &i, &ld];
        let (plan, s) = slots(&mut t, &args, &ld, false, Side::Caller);
        assert_eq!(plan.stack_size, 32);
        let tail: Vec<Slot> = s[14..].to_vec();
        // int at 0, filler at 8, long double at 16..32, then the stub's three slots.
        assert_eq!(
            tail,
            vec![
                part(6, 0),
                I64,
                part(7, 0),
                part(7, 1),
                Slot::StubTarget,
                Slot::StubResult,
                Slot::StubScratch
            ]
        );
        // As a callee behind the x87 entry stub: everything 16 bytes further.
        let (_, s) = slots(&mut t, &args, &ld, false, Side::CalleeX87Entry);
        assert_eq!(
            s[14..].to_vec(),
            vec![I64, I64, part(6, 0), I64, part(7, 0), part(7, 1)]
        );
    }
}

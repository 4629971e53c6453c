//! Call trampolines: machine code that is the `METH_FASTCALL` entry point of a builtin
//! function object, compiled once per signature *shape* and shared by every C function of
//! that shape (the callee address is read from the function's `self` object at call
//! time, so compiling is needed only for shapes not seen before).
//!
//! A trampoline: checks the argument count, converts each Python argument into a stack
//! cell (inline fast paths for exact `int`/`float`, otherwise a helper of the Python
//! layer that knows the exact C type), optionally releases the GIL and restores the
//! saved errno, calls the C function, saves errno and re-takes the GIL, frees the call's
//! temporaries and boxes the result. On the host every helper is reached through an
//! address baked in as a constant, so the compiled bytes are position independent and
//! relocation free.
//!
//! This module knows nothing about Python objects beyond the few layout facts it is
//! handed in [`Runtime`]; the Python layer supplies the helpers. The code generator is
//! generic over how an address reaches the code ([`Extern`]) and takes the ISA, so the
//! same generator also emits the trampolines of another target into an object file
//! (tests/tramp_aarch64_qemu.rs runs them for aarch64 against a fake CPython).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, Function, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind,
    UserFuncName, Value,
};
use cranelift_codegen::isa::{CallConv, OwnedTargetIsa, TargetIsa};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

pub use super::builtins::Extern;
use super::builtins::{Builtin, Builtins, ObjectLayout};
use super::error::CompileError;
use super::native_call;
pub use super::shape::{ArgShape, Fallback, Inline, RetShape, Scalar, Shape};

/// Addresses and layout facts the trampolines need from the Python layer. `A` says how an
/// address reaches the code (see [`Extern`]); the host uses baked-in addresses.
#[derive(Clone, Copy, Debug)]
pub struct Runtime<A = usize> {
    /// The functions the code calls (the table in `jit::builtins`).
    pub fns: Builtins<A>,
    /// Field offsets of the interpreter's objects.
    pub objects: ObjectLayout,
    /// Offset of the C function address inside the `self` object.
    pub target_offset: i32,
    /// Where the `self` object keeps the table of accepted ctype objects (three per
    /// parameter: the parameter's own and two inline-cache entries).
    pub arg_ctypes_offset: i32,
    /// The int, float and bytes types.
    pub long_type: A,
    pub float_type: A,
    pub bytes_type: A,
    /// The CData type, and where a cdata keeps its ctype object and its address.
    pub cdata_type: A,
    pub cdata_ctype_offset: i32,
    pub cdata_addr_offset: i32,
    /// The ctype of `ffi.NULL` (`void *`), which every pointer parameter accepts.
    pub void_ptr_ctype: A,
    /// Ints with at most one digit may be read inline (`ObjectLayout::long_digit`).
    pub inline_small_ints: bool,
}

/// The host ISA trampolines are compiled for (`jit::isa`).
pub fn isa() -> &'static OwnedTargetIsa {
    super::isa::trampolines()
}

/// Signature of every trampoline: `PyObject *(PyObject *self, PyObject *const *args,
/// Py_ssize_t nargs)`.
fn entry_signature(cc: CallConv) -> Signature {
    let mut sig = Signature::new(cc);
    sig.params.push(AbiParam::new(types::I64));
    sig.params.push(AbiParam::new(types::I64));
    sig.params.push(AbiParam::new(types::I64));
    sig.returns.push(AbiParam::new(types::I64));
    sig
}

struct Emitter<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    cc: CallConv,
}

impl Emitter<'_, '_> {
    /// Calls builtin `f` of `rt` with its declared signature.
    fn call<A: Extern>(&mut self, rt: &Runtime<A>, f: Builtin, args: &[Value]) -> Vec<Value> {
        let sig = self.b.import_signature(f.signature(self.cc));
        let callee = rt.fns.get(f).address(self.b, types::I64);
        let inst = self.b.ins().call_indirect(sig, callee, args);
        self.b.inst_results(inst).to_vec()
    }
}

const TRUSTED: fn() -> MemFlagsData = MemFlagsData::trusted;

/// Stack room per argument: at least 16 bytes (long double, double complex), more for
/// structs by value; 16-aligned.
const CELL: usize = 16;
/// Bytes of the per-argument stack array for a short list passed as `int *` (and alike).
pub const LIST_BUF: usize = 256;

fn cell_offsets(shape: &Shape) -> (Vec<usize>, usize) {
    let mut offs = Vec::with_capacity(shape.args.len());
    let mut at = 0;
    for a in &shape.args {
        offs.push(at);
        at += (a.scalar.size() as usize).max(CELL).div_ceil(CELL) * CELL;
    }
    (offs, at.max(CELL))
}

fn int_bounds(size: u8, signed: bool) -> (i64, i64) {
    match (size, signed) {
        (1, true) => (i8::MIN as i64, i8::MAX as i64),
        (1, false) => (0, u8::MAX as i64),
        (2, true) => (i16::MIN as i64, i16::MAX as i64),
        (2, false) => (0, u16::MAX as i64),
        (4, true) => (i32::MIN as i64, i32::MAX as i64),
        (4, false) => (0, u32::MAX as i64),
        (_, true) => (i64::MIN, i64::MAX),
        (_, false) => (0, i64::MAX),
    }
}

/// `value == addr`, for the type and ctype identity checks of the fast paths.
fn is_address<A: Extern>(b: &mut FunctionBuilder, value: Value, addr: A) -> Value {
    let a = addr.address(b, types::I64);
    b.ins().icmp(IntCC::Equal, value, a)
}

fn build_function<A: Extern>(
    func: &mut Function,
    shape: &Shape,
    rt: &Runtime<A>,
    isa: &dyn TargetIsa,
    stub_addr: Option<A>,
) {
    let cc = isa.default_call_conv();
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(func, &mut fctx);
    let n = shape.args.len();
    let i64t = types::I64;

    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    let (this, argv, nargs) = (params[0], params[1], params[2]);

    let (cell_offs, cells_size) = cell_offsets(shape);
    let cells = b.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        cells_size as u32,
        4,
    ));
    let ret_size = shape.plan.ret_size.max(16);
    let ret_slot =
        b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, ret_size, 4));
    let temp_args: Vec<usize> = (0..n).filter(|&i| shape.args[i].may_need_temp()).collect();
    let temps = if temp_args.is_empty() {
        None
    } else {
        Some(b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (8 * temp_args.len()) as u32,
            3,
        )))
    };
    if let Some(t) = temps {
        let zero = b.ins().iconst(i64t, 0);
        for k in 0..temp_args.len() {
            b.ins().stack_store(i64t, zero, t, (8 * k) as i32);
        }
    }

    let arity_ok = b.create_block();
    let arity_bad = b.create_block();
    let ok = b.ins().icmp_imm_s(IntCC::Equal, nargs, n as i64);
    b.ins().brif(ok, arity_ok, &[], arity_bad, &[]);

    b.switch_to_block(arity_bad);
    {
        let mut e = Emitter { b: &mut b, cc };
        let r = e.call(rt, Builtin::arity_error, &[this, nargs]);
        b.ins().return_(&r);
    }

    // Reached with an exception set: release the temporaries made so far, return NULL.
    let fail = b.create_block();

    b.switch_to_block(arity_ok);
    let mut cell_addrs = Vec::with_capacity(n);
    for &off in &cell_offs {
        cell_addrs.push(b.ins().stack_addr(i64t, cells, off as i32));
    }
    for (i, a) in shape.args.iter().enumerate() {
        let obj = b.ins().load(i64t, TRUSTED(), argv, (8 * i) as i32);
        let dst = cell_addrs[i];
        let next = b.create_block();
        let slow = b.create_block();
        match a.inline {
            Inline::SmallInt if rt.inline_small_ints => {
                let Scalar::Int { size, signed } = a.scalar else {
                    unreachable!()
                };
                let ty = b.ins().load(i64t, TRUSTED(), obj, rt.objects.ob_type);
                let is_long = is_address(&mut b, ty, rt.long_type);
                let check_size = b.create_block();
                b.ins().brif(is_long, check_size, &[], slow, &[]);
                b.switch_to_block(check_size);
                let ob_size = b.ins().load(i64t, TRUSTED(), obj, rt.objects.ob_size);
                let biased = b.ins().iadd_imm_s(ob_size, 1);
                let small = b
                    .ins()
                    .icmp_imm_u(IntCC::UnsignedLessThanOrEqual, biased, 2);
                let have_small = b.create_block();
                b.ins().brif(small, have_small, &[], slow, &[]);
                b.switch_to_block(have_small);
                let digit = b.ins().uload32(TRUSTED(), obj, rt.objects.long_digit);
                let value = b.ins().imul(ob_size, digit);
                // One 30-bit digit always fits a signed 32-bit or wider integer.
                let (lo, hi) = int_bounds(size, signed);
                let needs_check = !(signed && size >= 4);
                if needs_check {
                    let in_lo = b
                        .ins()
                        .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, value, lo);
                    let in_hi = b.ins().icmp_imm_s(IntCC::SignedLessThanOrEqual, value, hi);
                    let inr = b.ins().band(in_lo, in_hi);
                    let store = b.create_block();
                    b.ins().brif(inr, store, &[], slow, &[]);
                    b.switch_to_block(store);
                }
                b.ins().store(TRUSTED(), value, dst, 0);
                b.ins().jump(next, &[]);
            }
            Inline::Float => {
                let ty = b.ins().load(i64t, TRUSTED(), obj, rt.objects.ob_type);
                let is_float = is_address(&mut b, ty, rt.float_type);
                let fast = b.create_block();
                b.ins().brif(is_float, fast, &[], slow, &[]);
                b.switch_to_block(fast);
                let v = b
                    .ins()
                    .load(types::F64, TRUSTED(), obj, rt.objects.float_value);
                let v = if a.scalar == Scalar::F32 {
                    b.ins().fdemote(types::F32, v)
                } else {
                    v
                };
                b.ins().store(TRUSTED(), v, dst, 0);
                b.ins().jump(next, &[]);
            }
            Inline::Address { int_list, buffer } => {
                let ty = b.ins().load(i64t, TRUSTED(), obj, rt.objects.ob_type);
                let is_cdata = is_address(&mut b, ty, rt.cdata_type);
                let cdata = b.create_block();
                let not_cdata = b.create_block();
                b.ins().brif(is_cdata, cdata, &[], not_cdata, &[]);
                b.switch_to_block(cdata);
                let ct = b.ins().load(i64t, TRUSTED(), obj, rt.cdata_ctype_offset);
                let table = b.ins().load(i64t, TRUSTED(), this, rt.arg_ctypes_offset);
                // Three entries per parameter: its own ctype, the last other pointer ctype
                // the converter accepted for it, and the last array ctype it accepted
                // (inline caches; an array still goes through a small helper that checks
                // that its memory was not released).
                let want = b.ins().load(i64t, TRUSTED(), table, (24 * i) as i32);
                let seen = b.ins().load(i64t, TRUSTED(), table, (24 * i + 8) as i32);
                let same = b.ins().icmp(IntCC::Equal, ct, want);
                let cached = b.ins().icmp(IntCC::Equal, ct, seen);
                let is_void_ptr = is_address(&mut b, ct, rt.void_ptr_ctype);
                let ok = b.ins().bor(same, cached);
                let ok = b.ins().bor(ok, is_void_ptr);
                let take = b.create_block();
                let try_array = b.create_block();
                b.ins().brif(ok, take, &[], try_array, &[]);
                b.switch_to_block(take);
                let addr = b.ins().load(i64t, TRUSTED(), obj, rt.cdata_addr_offset);
                b.ins().store(TRUSTED(), addr, dst, 0);
                b.ins().jump(next, &[]);
                b.switch_to_block(try_array);
                let seen_array = b.ins().load(i64t, TRUSTED(), table, (24 * i + 16) as i32);
                let is_array = b.ins().icmp(IntCC::Equal, ct, seen_array);
                let array = b.create_block();
                b.ins().brif(is_array, array, &[], slow, &[]);
                b.switch_to_block(array);
                let status = {
                    let mut e = Emitter { b: &mut b, cc };
                    e.call(rt, Builtin::array_data, &[obj, dst])[0]
                };
                b.ins().brif(status, fail, &[], next, &[]);
                b.switch_to_block(not_cdata);
                if let Some(Scalar::Int { size, signed }) = int_list {
                    // A short list of ints: a temporary array on this trampoline's stack.
                    let slot = b.create_sized_stack_slot(StackSlotData::new(
                        StackSlotKind::ExplicitSlot,
                        LIST_BUF as u32,
                        3,
                    ));
                    let buf = b.ins().stack_addr(i64t, slot, 0);
                    let isz = b.ins().iconst(i64t, size as i64);
                    let sg = b.ins().iconst(i64t, signed as i64);
                    let done = {
                        let mut e = Emitter { b: &mut b, cc };
                        e.call(rt, Builtin::small_int_list, &[obj, buf, isz, sg])[0]
                    };
                    let filled = b.create_block();
                    let other = b.create_block();
                    b.ins().brif(done, filled, &[], other, &[]);
                    b.switch_to_block(filled);
                    b.ins().store(TRUSTED(), buf, dst, 0);
                    b.ins().jump(next, &[]);
                    b.switch_to_block(other);
                }
                if buffer {
                    let is_bytes = is_address(&mut b, ty, rt.bytes_type);
                    let take_bytes = b.create_block();
                    b.ins().brif(is_bytes, take_bytes, &[], slow, &[]);
                    b.switch_to_block(take_bytes);
                    let chars = b.ins().iadd_imm_s(obj, rt.objects.bytes_data as i64);
                    b.ins().store(TRUSTED(), chars, dst, 0);
                    b.ins().jump(next, &[]);
                } else {
                    b.ins().jump(slow, &[]);
                }
            }
            Inline::CopyBytes => {
                let Scalar::Bytes(size) = a.scalar else {
                    unreachable!()
                };
                let ty = b.ins().load(i64t, TRUSTED(), obj, rt.objects.ob_type);
                let is_cdata = is_address(&mut b, ty, rt.cdata_type);
                let cdata = b.create_block();
                b.ins().brif(is_cdata, cdata, &[], slow, &[]);
                b.switch_to_block(cdata);
                let ct = b.ins().load(i64t, TRUSTED(), obj, rt.cdata_ctype_offset);
                let table = b.ins().load(i64t, TRUSTED(), this, rt.arg_ctypes_offset);
                let want = b.ins().load(i64t, TRUSTED(), table, (24 * i) as i32);
                let same = b.ins().icmp(IntCC::Equal, ct, want);
                let take = b.create_block();
                b.ins().brif(same, take, &[], slow, &[]);
                b.switch_to_block(take);
                // The data address lands in the cell first (cells are at least 16 bytes),
                // then the bytes are copied over it.
                let status = {
                    let mut e = Emitter { b: &mut b, cc };
                    e.call(rt, Builtin::array_data, &[obj, dst])[0]
                };
                let copy = b.create_block();
                b.ins().brif(status, fail, &[], copy, &[]);
                b.switch_to_block(copy);
                let src = b.ins().load(i64t, TRUSTED(), dst, 0);
                let size = size as usize;
                if size <= 256 {
                    let fl = MemFlagsData::new();
                    let mut off = 0usize;
                    for (w, t) in [
                        (8usize, i64t),
                        (4, types::I32),
                        (2, types::I16),
                        (1, types::I8),
                    ] {
                        while size - off >= w {
                            let v = b.ins().load(t, fl, src, off as i32);
                            b.ins().store(fl, v, dst, off as i32);
                            off += w;
                        }
                    }
                } else {
                    let n_bytes = b.ins().iconst(i64t, size as i64);
                    let mut e = Emitter { b: &mut b, cc };
                    e.call(rt, Builtin::memcpy, &[dst, src, n_bytes]);
                }
                b.ins().jump(next, &[]);
            }
            _ => {
                b.ins().jump(slow, &[]);
            }
        }
        b.switch_to_block(slow);
        let idx = b.ins().iconst(i64t, i as i64);
        let status = {
            let mut e = Emitter { b: &mut b, cc };
            if a.fallback == Fallback::Vararg {
                e.call(rt, Builtin::convert_vararg, &[this, idx, obj, dst])[0]
            } else {
                let temp = match temps {
                    Some(t) if a.may_need_temp() => {
                        let k = temp_args.iter().position(|&j| j == i).unwrap();
                        e.b.ins().stack_addr(i64t, t, (8 * k) as i32)
                    }
                    _ => e.b.ins().iconst(i64t, 0),
                };
                e.call(rt, Builtin::convert_arg, &[this, idx, obj, dst, temp])[0]
            }
        };
        b.ins().brif(status, fail, &[], next, &[]);
        b.switch_to_block(next);
    }

    let callee = b.ins().load(i64t, TRUSTED(), this, rt.target_offset);
    let ret_addr = b.ins().stack_addr(i64t, ret_slot, 0);
    let tstate = if shape.release_gil {
        let mut e = Emitter { b: &mut b, cc };
        Some(e.call(rt, Builtin::release, &[])[0])
    } else {
        None
    };
    let stub = stub_addr.map(|a| a.address(&mut b, i64t));
    native_call::emit_call_from_memory(
        &mut b,
        isa,
        &shape.plan,
        callee,
        stub,
        &cell_addrs,
        Some(ret_addr),
    );
    if let Some(ts) = tstate {
        let mut e = Emitter { b: &mut b, cc };
        e.call(rt, Builtin::reacquire, &[ts]);
    }
    emit_release_temps(&mut b, cc, rt, temps, temp_args.len());

    let result = {
        let mut e = Emitter { b: &mut b, cc };
        match shape.ret {
            RetShape::Void => e.call(rt, Builtin::box_none, &[])[0],
            RetShape::Int { size, signed } => {
                let s = Scalar::Int { size, signed };
                let raw = e.b.ins().load(s.ir_type(), TRUSTED(), ret_addr, 0);
                let wide = match size {
                    8 => raw,
                    _ if signed => e.b.ins().sextend(i64t, raw),
                    _ => e.b.ins().uextend(i64t, raw),
                };
                let f = if signed {
                    Builtin::long_from_i64
                } else {
                    Builtin::long_from_u64
                };
                e.call(rt, f, &[wide])[0]
            }
            RetShape::Bool => {
                let raw = e.b.ins().load(types::I8, TRUSTED(), ret_addr, 0);
                let wide = e.b.ins().uextend(i64t, raw);
                e.call(rt, Builtin::bool_from_long, &[wide])[0]
            }
            RetShape::Float(s) => {
                let raw = e.b.ins().load(s.ir_type(), TRUSTED(), ret_addr, 0);
                let d = if s == Scalar::F32 {
                    e.b.ins().fpromote(types::F64, raw)
                } else {
                    raw
                };
                e.call(rt, Builtin::float_from_double, &[d])[0]
            }
            RetShape::Generic(_) => e.call(rt, Builtin::box_result, &[this, ret_addr])[0],
        }
    };
    b.ins().return_(&[result]);

    b.switch_to_block(fail);
    emit_release_temps(&mut b, cc, rt, temps, temp_args.len());
    let null = b.ins().iconst(i64t, 0);
    b.ins().return_(&[null]);

    b.seal_all_blocks();
    b.finalize(isa.frontend_config());
}

fn emit_release_temps<A: Extern>(
    b: &mut FunctionBuilder,
    cc: CallConv,
    rt: &Runtime<A>,
    temps: Option<cranelift_codegen::ir::StackSlot>,
    count: usize,
) {
    let Some(t) = temps else { return };
    for k in 0..count {
        let obj = b
            .ins()
            .stack_load(types::I64, types::I64, t, (8 * k) as i32);
        let has = b.create_block();
        let done = b.create_block();
        b.ins().brif(obj, has, &[], done, &[]);
        b.switch_to_block(has);
        let mut e = Emitter { b, cc };
        e.call(rt, Builtin::release_temp, &[obj]);
        b.ins().jump(done, &[]);
        b.switch_to_block(done);
    }
}

/// The trampoline of `shape` as a Cranelift function for `isa`, reaching the helpers
/// through `rt`, and calling through `stub` (the address of `stubs::stub_bytes` of the
/// plan's stub) when the plan needs one. `trampoline_cache::compile` is the host path;
/// this is also what emits trampolines into an object file for another target.
pub fn build<A: Extern>(
    shape: &Shape,
    rt: &Runtime<A>,
    isa: &dyn TargetIsa,
    stub: Option<A>,
) -> Result<Function, CompileError> {
    let internal = |m: &str| Err(CompileError::Internal(format!("trampoline: {m}")));
    if shape.plan.stub.is_some() != stub.is_some() {
        return internal("a stub address is needed exactly when the plan has a stub");
    }
    let target = crate::types::target::Target::from_triple(isa.triple())
        .map_err(CompileError::Unsupported)?;
    if target.arch != shape.plan.arch {
        return internal("the call plan was lowered for another architecture");
    }
    let mut func = Function::with_name_signature(
        UserFuncName::user(0, 0),
        entry_signature(isa.default_call_conv()),
    );
    build_function(&mut func, shape, rt, isa, stub);
    Ok(func)
}

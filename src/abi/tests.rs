//! Plans checked against expectations derived by hand from the psABI / AAPCS64 texts.

use cranelift_codegen::ir::types::{F128, F32, F64, I16, I32, I64, I8};

use super::test_layout::{bitfield, field, record};
use super::*;
use crate::types::model::{Prim, TypeRef, TypeTable};

const X64: Target = Target::X86_64_LINUX;
const A64: Target = Target::AARCH64_LINUX;

fn p(offset: u32, size: u32, ty: Type, loc: Loc) -> Part {
    Part {
        offset,
        size,
        ty,
        loc,
        ext: Ext::None,
    }
}
fn px(offset: u32, size: u32, ty: Type, loc: Loc, ext: Ext) -> Part {
    Part {
        offset,
        size,
        ty,
        loc,
        ext,
    }
}
use Loc::{Gpr as G, Stack as S, Vec as V};

fn plan(
    t: &mut TypeTable,
    target: Target,
    args: &[&TypeRef],
    ret: &TypeRef,
    variadic: bool,
) -> CallPlan {
    let f = t.func_ptr(args.iter().map(|a| (*a).clone()).collect(), ret, variadic);
    let Kind::FuncPtr(sig) = &f.kind else {
        unreachable!()
    };
    lower(sig, &target).unwrap()
}

fn parts(plan: &CallPlan, i: usize) -> Vec<Part> {
    match &plan.args[i].pass {
        ArgPass::Parts(ps) => ps.to_vec(),
        other => panic!("arg {i} is {other:?}"),
    }
}

fn ret_parts(plan: &CallPlan) -> Vec<Part> {
    match &plan.ret {
        RetPass::Parts(ps) => ps.to_vec(),
        other => panic!("result is {other:?}"),
    }
}

struct Ty {
    t: TypeTable,
}

impl Ty {
    fn new(target: Target) -> Ty {
        Ty {
            t: TypeTable::new(target),
        }
    }
    fn prim(&mut self, p: Prim) -> TypeRef {
        self.t.prim(p)
    }
    fn st(&mut self, fields: &[Prim]) -> TypeRef {
        let fs = fields
            .iter()
            .enumerate()
            .map(|(i, p)| field(&format!("f{i}"), &self.t.prim(*p)))
            .collect();
        record(&mut self.t, "struct s", false, false, fs)
    }
    fn arr(&mut self, p: Prim, n: usize) -> TypeRef {
        let e = self.t.prim(p);
        self.t.array(&e, Some(n))
    }
}

// ----------------------------------------------------------------------------- x86_64

#[test]
fn x64_scalars_and_extension() {
    let mut t = Ty::new(X64);
    let (i, c, us, d, f, vp) = (
        t.prim(Prim::Int),
        t.prim(Prim::Char),
        t.prim(Prim::UShort),
        t.prim(Prim::Double),
        t.prim(Prim::Float),
        {
            let v = t.t.void();
            t.t.pointer(&v)
        },
    );
    let pl = plan(&mut t.t, X64, &[&i, &c, &us, &d, &f, &vp], &c, false);
    assert_eq!(parts(&pl, 0), vec![p(0, 4, I32, G(0))]);
    assert_eq!(parts(&pl, 1), vec![px(0, 1, I8, G(1), Ext::Sext)]);
    assert_eq!(parts(&pl, 2), vec![px(0, 2, I16, G(2), Ext::Uext)]);
    assert_eq!(parts(&pl, 3), vec![p(0, 8, F64, V(0))]);
    assert_eq!(parts(&pl, 4), vec![p(0, 4, F32, V(1))]);
    assert_eq!(parts(&pl, 5), vec![p(0, 8, I64, G(3))]);
    assert_eq!(ret_parts(&pl), vec![px(0, 1, I8, G(0), Ext::Sext)]);
    assert_eq!(pl.stub, None);
    assert_eq!(pl.stack_size, 0);
}

#[test]
fn x64_scalars_overflow_to_stack_in_order() {
    let mut t = Ty::new(X64);
    let (l, d) = (t.prim(Prim::Long), t.prim(Prim::Double));
    // 8 longs and 10 doubles interleaved: longs 6,7 and doubles 8,9 on the stack.
    let mut args = Vec::new();
    for _ in 0..8 {
        args.push(&l);
        args.push(&d);
    }
    args.push(&d);
    args.push(&d);
    let pl = plan(&mut t.t, X64, &args, &l, false);
    assert_eq!(parts(&pl, 12), vec![p(0, 8, I64, S(0))]); // 7th long
    assert_eq!(parts(&pl, 13), vec![p(0, 8, F64, V(6))]);
    assert_eq!(parts(&pl, 14), vec![p(0, 8, I64, S(8))]);
    assert_eq!(parts(&pl, 15), vec![p(0, 8, F64, V(7))]);
    assert_eq!(parts(&pl, 16), vec![p(0, 8, F64, S(16))]);
    assert_eq!(parts(&pl, 17), vec![p(0, 8, F64, S(24))]);
    assert_eq!(pl.stack_size, 32);
}

#[test]
fn x64_two_doubles_and_mixed_eightbytes() {
    let mut t = Ty::new(X64);
    let dd = t.st(&[Prim::Double, Prim::Double]);
    let ld = t.st(&[Prim::Long, Prim::Double]);
    let ifl = t.st(&[Prim::Int, Prim::Float]);
    let pl = plan(&mut t.t, X64, &[&dd, &ld, &ifl], &dd, false);
    assert_eq!(parts(&pl, 0), vec![p(0, 8, F64, V(0)), p(8, 8, F64, V(1))]);
    assert_eq!(parts(&pl, 1), vec![p(0, 8, I64, G(0)), p(8, 8, F64, V(2))]);
    // int and float share one eightbyte: INTEGER wins.
    assert_eq!(parts(&pl, 2), vec![p(0, 8, I64, G(1))]);
    assert_eq!(ret_parts(&pl), vec![p(0, 8, F64, V(0)), p(8, 8, F64, V(1))]);
    let pl = plan(&mut t.t, X64, &[], &ld, false);
    assert_eq!(ret_parts(&pl), vec![p(0, 8, I64, G(0)), p(8, 8, F64, V(0))]);
}

#[test]
fn x64_odd_sizes_never_read_past_the_end() {
    let mut t = Ty::new(X64);
    let fff = t.st(&[Prim::Float, Prim::Float, Prim::Float]);
    let c3 = t.st(&[Prim::Char, Prim::Char, Prim::Char]);
    let a5 = t.arr(Prim::Char, 5);
    let s5 = record(&mut t.t, "struct s5", false, false, vec![field("a", &a5)]);
    let a3 = t.arr(Prim::Short, 3);
    let s6 = record(&mut t.t, "struct s6", false, false, vec![field("a", &a3)]);
    let a7 = t.arr(Prim::UChar, 7);
    let s7 = record(&mut t.t, "struct s7", false, false, vec![field("a", &a7)]);
    let li = t.st(&[Prim::Long, Prim::Int]);
    let lc3 = {
        let l = t.prim(Prim::Long);
        let a = t.arr(Prim::Char, 3);
        record(
            &mut t.t,
            "struct lc3",
            false,
            false,
            vec![field("l", &l), field("c", &a)],
        )
    };
    let pl = plan(&mut t.t, X64, &[&fff, &c3, &s5, &s6, &s7, &li], &fff, false);
    assert_eq!(parts(&pl, 0), vec![p(0, 8, F64, V(0)), p(8, 4, F32, V(1))]);
    assert_eq!(parts(&pl, 1), vec![p(0, 3, I32, G(0))]);
    assert_eq!(parts(&pl, 2), vec![p(0, 5, I64, G(1))]);
    assert_eq!(parts(&pl, 3), vec![p(0, 6, I64, G(2))]);
    assert_eq!(parts(&pl, 4), vec![p(0, 7, I64, G(3))]);
    // {long, int} is 16 bytes with 4 bytes of tail padding: the padding is inside it.
    assert_eq!(parts(&pl, 5), vec![p(0, 8, I64, G(4)), p(8, 8, I64, G(5))]);
    assert_eq!(ret_parts(&pl), vec![p(0, 8, F64, V(0)), p(8, 4, F32, V(1))]);
    assert_eq!(t.t.get(lc3.id).size(), Some(16));
}

#[test]
fn x64_large_aggregates_go_to_memory_and_results_use_sret() {
    let mut t = Ty::new(X64);
    let big = t.st(&[Prim::Long, Prim::Long, Prim::Long]);
    let i = t.prim(Prim::Int);
    let a5 = t.arr(Prim::Int, 5); // 20 bytes
    let s20 = record(&mut t.t, "struct s20", false, false, vec![field("a", &a5)]);
    let pl = plan(&mut t.t, X64, &[&i, &big, &s20, &i], &big, false);
    assert_eq!(pl.ret, RetPass::Sret);
    assert_eq!(parts(&pl, 0), vec![p(0, 4, I32, G(1))]); // rdi holds the result pointer
    assert_eq!(
        parts(&pl, 1),
        vec![p(0, 8, I64, S(0)), p(8, 8, I64, S(8)), p(16, 8, I64, S(16))]
    );
    assert_eq!(
        parts(&pl, 2),
        vec![
            p(0, 8, I64, S(24)),
            p(8, 8, I64, S(32)),
            p(16, 4, I32, S(40))
        ]
    );
    assert_eq!(parts(&pl, 3), vec![p(0, 4, I32, G(2))]);
    assert_eq!(pl.stack_size, 48);
}

#[test]
fn x64_all_or_nothing_when_registers_run_out() {
    let mut t = Ty::new(X64);
    let l = t.prim(Prim::Long);
    let d = t.prim(Prim::Double);
    let ll = t.st(&[Prim::Long, Prim::Long]);
    let dd = t.st(&[Prim::Double, Prim::Double]);
    let ldb = t.st(&[Prim::Long, Prim::Double]);
    // 5 longs, then {long,long} needs 2 GPRs with 1 left: stack; the next long takes r9.
    let pl = plan(&mut t.t, X64, &[&l, &l, &l, &l, &l, &ll, &l], &l, false);
    assert_eq!(parts(&pl, 5), vec![p(0, 8, I64, S(0)), p(8, 8, I64, S(8))]);
    assert_eq!(parts(&pl, 6), vec![p(0, 8, I64, G(5))]);
    // 7 doubles, then {double,double}: stack; the next double takes xmm7.
    let pl = plan(
        &mut t.t,
        X64,
        &[&d, &d, &d, &d, &d, &d, &d, &dd, &d],
        &l,
        false,
    );
    assert_eq!(parts(&pl, 7), vec![p(0, 8, I64, S(0)), p(8, 8, I64, S(8))]);
    assert_eq!(parts(&pl, 8), vec![p(0, 8, F64, V(7))]);
    // {long,double} with no GPR left but xmm free: all on the stack, xmm0 stays free.
    let pl = plan(
        &mut t.t,
        X64,
        &[&l, &l, &l, &l, &l, &l, &ldb, &d],
        &l,
        false,
    );
    assert_eq!(parts(&pl, 6), vec![p(0, 8, I64, S(0)), p(8, 8, I64, S(8))]);
    assert_eq!(parts(&pl, 7), vec![p(0, 8, F64, V(0))]);
}

#[test]
fn x64_long_double() {
    let mut t = Ty::new(X64);
    let i = t.prim(Prim::Int);
    let ld = t.prim(Prim::LongDouble);
    let sld = t.st(&[Prim::LongDouble]);
    // 6 ints fill the GPRs, a 7th goes to stack 0; long double is 16-aligned: stack 16.
    let pl = plan(
        &mut t.t,
        X64,
        &[&i, &i, &i, &i, &i, &i, &i, &ld, &sld],
        &ld,
        false,
    );
    assert_eq!(parts(&pl, 6), vec![p(0, 4, I32, S(0))]);
    assert_eq!(
        parts(&pl, 7),
        vec![p(0, 8, I64, S(16)), p(8, 8, I64, S(24))]
    );
    assert_eq!(
        parts(&pl, 8),
        vec![p(0, 8, I64, S(32)), p(8, 8, I64, S(40))]
    );
    assert_eq!(pl.ret, RetPass::X87);
    assert_eq!(
        pl.stub,
        Some(StubKind::X87Return {
            al: None,
            stack_size: 48
        })
    );
    let pl = plan(&mut t.t, X64, &[], &sld, false);
    assert_eq!(pl.ret, RetPass::X87);
    // long double next to anything else in a struct: memory.
    let lds = t.st(&[Prim::LongDouble, Prim::Int]);
    let pl = plan(&mut t.t, X64, &[&lds], &lds, false);
    assert_eq!(pl.ret, RetPass::Sret);
    assert_eq!(parts(&pl, 0).len(), 4);
}

#[test]
fn x64_complex_unions_arrays_bitfields_packed_empty() {
    let mut t = Ty::new(X64);
    let fc = t.prim(Prim::FloatComplex);
    let dc = t.prim(Prim::DoubleComplex);
    let (i, f, d, c) = (
        t.prim(Prim::Int),
        t.prim(Prim::Float),
        t.prim(Prim::Double),
        t.prim(Prim::Char),
    );
    let u_if = record(
        &mut t.t,
        "union u1",
        true,
        false,
        vec![field("i", &i), field("f", &f)],
    );
    let u_fd = record(
        &mut t.t,
        "union u2",
        true,
        false,
        vec![field("f", &f), field("d", &d)],
    );
    let f2 = t.arr(Prim::Float, 2);
    let f2i = record(
        &mut t.t,
        "struct f2i",
        false,
        false,
        vec![field("a", &f2), field("i", &i)],
    );
    let bf = record(
        &mut t.t,
        "struct bf",
        false,
        false,
        vec![bitfield("a", &i, 3), bitfield("b", &i, 5), field("c", &c)],
    );
    let packed = record(
        &mut t.t,
        "struct pk",
        false,
        true,
        vec![field("c", &c), field("i", &i)],
    );
    let empty = record(&mut t.t, "struct e", false, false, vec![]);
    let pl = plan(
        &mut t.t,
        X64,
        &[&fc, &dc, &u_if, &u_fd, &f2i, &bf, &packed, &empty, &i],
        &dc,
        false,
    );
    assert_eq!(parts(&pl, 0), vec![p(0, 8, F64, V(0))]);
    assert_eq!(parts(&pl, 1), vec![p(0, 8, F64, V(1)), p(8, 8, F64, V(2))]);
    assert_eq!(parts(&pl, 2), vec![p(0, 4, I32, G(0))]);
    assert_eq!(parts(&pl, 3), vec![p(0, 8, F64, V(3))]);
    assert_eq!(parts(&pl, 4), vec![p(0, 8, F64, V(4)), p(8, 4, I32, G(1))]);
    // a:3 and b:5 share the int's first byte, c is byte 1: 4 bytes in all.
    assert_eq!(pl.args[5].size, 4);
    assert_eq!(parts(&pl, 5), vec![p(0, 4, I32, G(2))]);
    // packed {char, int}: the int is unaligned, so the 5 bytes go to memory.
    assert_eq!(parts(&pl, 6), vec![p(0, 5, I64, S(0))]);
    assert_eq!(parts(&pl, 7), vec![]);
    assert_eq!(parts(&pl, 8), vec![p(0, 4, I32, G(3))]);
    assert_eq!(ret_parts(&pl), vec![p(0, 8, F64, V(0)), p(8, 8, F64, V(1))]);
    let pl = plan(&mut t.t, X64, &[], &fc, false);
    assert_eq!(ret_parts(&pl), vec![p(0, 8, F64, V(0))]);
    let pl = plan(&mut t.t, X64, &[&empty], &empty, false);
    assert_eq!(pl.ret, RetPass::Void);
}

#[test]
fn x64_variadic_sets_al_through_a_stub() {
    let mut t = Ty::new(X64);
    let ch = t.prim(Prim::Char);
    let s = t.t.pointer(&ch);
    let (i, d) = (t.prim(Prim::Int), t.prim(Prim::Double));
    let f = t.t.func_ptr(vec![s.clone()], &i, true);
    let Kind::FuncPtr(sig) = &f.kind else {
        unreachable!()
    };
    // The call site's actual argument list: the declared ones plus the promoted varargs.
    let call = FuncSig {
        args: vec![s.clone(), i.clone(), d.clone(), s.clone(), d.clone()],
        result: i.clone(),
        variadic: true,
        abi: sig.abi,
    };
    let pl = lower(&call, &X64).unwrap();
    assert_eq!(pl.variadic, Some(VariadicInfo { vector_regs: 2 }));
    assert_eq!(
        pl.stub,
        Some(StubKind::Variadic {
            al: 2,
            stack_size: 0
        })
    );
    assert_eq!(parts(&pl, 4), vec![p(0, 8, F64, V(1))]);
}

// ----------------------------------------------------------------------------- aarch64

#[test]
fn a64_scalars() {
    let mut t = Ty::new(A64);
    let (i, c, f, ld) = (
        t.prim(Prim::Int),
        t.prim(Prim::Char),
        t.prim(Prim::Float),
        t.prim(Prim::LongDouble),
    );
    let pl = plan(&mut t.t, A64, &[&i, &c, &f, &ld], &ld, false);
    assert_eq!(parts(&pl, 0), vec![p(0, 4, I32, G(0))]);
    // plain char is unsigned on aarch64
    assert_eq!(parts(&pl, 1), vec![px(0, 1, I8, G(1), Ext::Uext)]);
    assert_eq!(parts(&pl, 2), vec![p(0, 4, F32, V(0))]);
    assert_eq!(parts(&pl, 3), vec![p(0, 16, F128, V(1))]);
    assert_eq!(ret_parts(&pl), vec![p(0, 16, F128, V(0))]);
}

#[test]
fn a64_hfa() {
    let mut t = Ty::new(A64);
    let f4 = t.st(&[Prim::Float, Prim::Float, Prim::Float, Prim::Float]);
    let d3 = t.st(&[Prim::Double, Prim::Double, Prim::Double]);
    let d4 = t.st(&[Prim::Double, Prim::Double, Prim::Double, Prim::Double]);
    let f5 = t.st(&[
        Prim::Float,
        Prim::Float,
        Prim::Float,
        Prim::Float,
        Prim::Float,
    ]);
    let fd = t.st(&[Prim::Float, Prim::Double]);
    let fc = t.prim(Prim::FloatComplex);
    let pl = plan(&mut t.t, A64, &[&f4, &d4, &fc, &f5, &fd], &d3, false);
    assert_eq!(
        parts(&pl, 0),
        vec![
            p(0, 4, F32, V(0)),
            p(4, 4, F32, V(1)),
            p(8, 4, F32, V(2)),
            p(12, 4, F32, V(3))
        ]
    );
    assert_eq!(
        parts(&pl, 1).iter().map(|x| x.loc).collect::<Vec<_>>(),
        vec![V(4), V(5), V(6), V(7)]
    );
    // no v registers left: the complex goes to the stack as its 8-byte memory image
    assert_eq!(parts(&pl, 2), vec![p(0, 8, I64, S(0))]);
    assert_eq!(
        pl.args[3].pass,
        ArgPass::ByRef {
            ptr: G(0),
            size: 20,
            align: 4
        }
    );
    // mixed float/double: not homogeneous, 16 bytes in x1, x2
    assert_eq!(parts(&pl, 4), vec![p(0, 8, I64, G(1)), p(8, 8, I64, G(2))]);
    assert_eq!(
        ret_parts(&pl),
        vec![p(0, 8, F64, V(0)), p(8, 8, F64, V(1)), p(16, 8, F64, V(2))]
    );
}

#[test]
fn a64_hfa_exhaustion_is_all_or_nothing_and_blocks_later_floats() {
    let mut t = Ty::new(A64);
    let d = t.prim(Prim::Double);
    let d3 = t.st(&[Prim::Double, Prim::Double, Prim::Double]);
    let f3 = t.st(&[Prim::Float, Prim::Float, Prim::Float]);
    let pl = plan(
        &mut t.t,
        A64,
        &[&d, &d, &d, &d, &d, &d, &d3, &d, &f3],
        &d,
        false,
    );
    assert_eq!(
        parts(&pl, 6),
        vec![p(0, 8, I64, S(0)), p(8, 8, I64, S(8)), p(16, 8, I64, S(16))]
    );
    assert_eq!(parts(&pl, 7), vec![p(0, 8, F64, S(24))]);
    assert_eq!(
        parts(&pl, 8),
        vec![p(0, 8, I64, S(32)), p(8, 4, I32, S(40))]
    );
    assert_eq!(pl.stack_size, 48);
}

#[test]
fn a64_composites_in_x_registers_by_reference_and_sret() {
    let mut t = Ty::new(A64);
    let l = t.prim(Prim::Long);
    let i3 = t.st(&[Prim::Int, Prim::Int, Prim::Int]);
    let c3 = t.st(&[Prim::Char, Prim::Char, Prim::Char]);
    let big = t.st(&[Prim::Long, Prim::Long, Prim::Long]);
    let ll = t.st(&[Prim::Long, Prim::Long]);
    let pl = plan(
        &mut t.t,
        A64,
        &[&i3, &c3, &big, &l, &l, &l, &l, &ll, &l, &big],
        &big,
        false,
    );
    // x8 carries the result pointer; x0 is still the first argument register.
    assert_eq!(pl.ret, RetPass::Sret);
    assert_eq!(parts(&pl, 0), vec![p(0, 8, I64, G(0)), p(8, 4, I32, G(1))]);
    assert_eq!(parts(&pl, 1), vec![p(0, 3, I32, G(2))]);
    assert_eq!(
        pl.args[2].pass,
        ArgPass::ByRef {
            ptr: G(3),
            size: 24,
            align: 8
        }
    );
    assert_eq!(parts(&pl, 6), vec![p(0, 8, I64, G(7))]);
    // x registers exhausted: the composite goes to the stack and NGRN becomes 8.
    assert_eq!(parts(&pl, 7), vec![p(0, 8, I64, S(0)), p(8, 8, I64, S(8))]);
    assert_eq!(parts(&pl, 8), vec![p(0, 8, I64, S(16))]);
    assert_eq!(
        pl.args[9].pass,
        ArgPass::ByRef {
            ptr: S(24),
            size: 24,
            align: 8
        }
    );
    let pl = plan(
        &mut t.t,
        A64,
        &[&l, &l, &l, &l, &l, &l, &l, &ll, &l],
        &ll,
        false,
    );
    assert_eq!(parts(&pl, 7), vec![p(0, 8, I64, S(0)), p(8, 8, I64, S(8))]);
    // C.13 sets NGRN to 8 (unlike x86_64, a later long does not take x7... x7 was used anyway)
    assert_eq!(parts(&pl, 8), vec![p(0, 8, I64, S(16))]);
    assert_eq!(ret_parts(&pl), vec![p(0, 8, I64, G(0)), p(8, 8, I64, G(1))]);
}

#[test]
fn a64_sixteen_byte_aligned_composite_starts_at_even_register() {
    let mut t = Ty::new(A64);
    let i = t.prim(Prim::Int);
    let l = t.prim(Prim::Long);
    let ld = t.prim(Prim::LongDouble);
    let u = record(
        &mut t.t,
        "union u",
        true,
        false,
        vec![field("ld", &ld), field("l", &l)],
    );
    let pl = plan(&mut t.t, A64, &[&i, &u, &i], &u, false);
    assert_eq!(parts(&pl, 1), vec![p(0, 8, I64, G(2)), p(8, 8, I64, G(3))]);
    assert_eq!(parts(&pl, 2), vec![p(0, 4, I32, G(4))]);
    assert_eq!(ret_parts(&pl), vec![p(0, 8, I64, G(0)), p(8, 8, I64, G(1))]);
    // on the stack a 16-aligned composite is 16-aligned too
    let pl = plan(
        &mut t.t,
        A64,
        &[&l, &l, &l, &l, &l, &l, &l, &l, &i, &u],
        &i,
        false,
    );
    assert_eq!(parts(&pl, 8), vec![p(0, 4, I32, S(0))]);
    assert_eq!(
        parts(&pl, 9),
        vec![p(0, 8, I64, S(16)), p(8, 8, I64, S(24))]
    );
    // a long double on the stack: 16-aligned
    let d = t.prim(Prim::Double);
    let pl = plan(
        &mut t.t,
        A64,
        &[&d, &d, &d, &d, &d, &d, &d, &d, &d, &ld],
        &i,
        false,
    );
    assert_eq!(parts(&pl, 8), vec![p(0, 8, F64, S(0))]);
    assert_eq!(parts(&pl, 9), vec![p(0, 16, F128, S(16))]);
}

#[test]
fn a64_variadic_like_named_and_empty_struct() {
    let mut t = Ty::new(A64);
    let d = t.prim(Prim::Double);
    let i = t.prim(Prim::Int);
    let empty = record(&mut t.t, "struct e", false, false, vec![]);
    let pl = plan(&mut t.t, A64, &[&i, &d, &empty], &empty, true);
    assert_eq!(pl.stub, None);
    assert_eq!(parts(&pl, 1), vec![p(0, 8, F64, V(0))]);
    assert_eq!(parts(&pl, 2), vec![]);
    assert_eq!(pl.ret, RetPass::Void);
}

#[test]
fn opaque_struct_is_an_error() {
    let mut t = Ty::new(X64);
    let o = t.t.new_record(false, Some("o".into()), "struct o".into());
    let f = t.t.func_ptr(vec![o.clone()], &o, false);
    let Kind::FuncPtr(sig) = &f.kind else {
        unreachable!()
    };
    let e = lower(sig, &X64).unwrap_err();
    assert_eq!(
        e,
        LowerError::Opaque {
            cname: "struct o".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "'struct o' is opaque: cannot pass it by value"
    );
    assert!(!e.is_not_implemented());
}

#[test]
fn x64_more_eightbyte_mixes() {
    let mut t = Ty::new(X64);
    let cd = t.st(&[Prim::Char, Prim::Double]);
    let ffd = t.st(&[Prim::Float, Prim::Float, Prim::Double]);
    let sf = t.st(&[Prim::Short, Prim::Float]);
    let i3 = t.arr(Prim::Int, 3);
    let si3 = record(&mut t.t, "struct i3", false, false, vec![field("a", &i3)]);
    let (d, l) = (t.prim(Prim::Double), t.prim(Prim::Long));
    let udl = record(
        &mut t.t,
        "union dl",
        true,
        false,
        vec![field("d", &d), field("l", &l)],
    );
    let pl = plan(&mut t.t, X64, &[&cd, &ffd, &sf, &si3, &udl], &cd, false);
    // the char's eightbyte includes 7 bytes of padding inside the struct
    assert_eq!(parts(&pl, 0), vec![p(0, 8, I64, G(0)), p(8, 8, F64, V(0))]);
    assert_eq!(parts(&pl, 1), vec![p(0, 8, F64, V(1)), p(8, 8, F64, V(2))]);
    assert_eq!(parts(&pl, 2), vec![p(0, 8, I64, G(1))]);
    assert_eq!(parts(&pl, 3), vec![p(0, 8, I64, G(2)), p(8, 4, I32, G(3))]);
    assert_eq!(parts(&pl, 4), vec![p(0, 8, I64, G(4))]);
    assert_eq!(ret_parts(&pl), vec![p(0, 8, I64, G(0)), p(8, 8, F64, V(0))]);
}

#[test]
fn a64_more_aggregates() {
    let mut t = Ty::new(A64);
    let df = t.st(&[Prim::Double, Prim::Float]);
    let f2 = t.arr(Prim::Float, 2);
    let f2f2 = record(
        &mut t.t,
        "struct f2f2",
        false,
        false,
        vec![field("a", &f2), field("b", &f2)],
    );
    let f = t.prim(Prim::Float);
    let uf = record(
        &mut t.t,
        "union uf",
        true,
        false,
        vec![field("f", &f), field("a", &f2)],
    );
    let dc = t.prim(Prim::DoubleComplex);
    let pl = plan(&mut t.t, A64, &[&df, &f2f2, &uf, &dc], &dc, false);
    // double + float: not homogeneous; 16 bytes with tail padding in x0, x1
    assert_eq!(parts(&pl, 0), vec![p(0, 8, I64, G(0)), p(8, 8, I64, G(1))]);
    assert_eq!(
        parts(&pl, 1)
            .iter()
            .map(|x| (x.offset, x.loc))
            .collect::<Vec<_>>(),
        vec![(0, V(0)), (4, V(1)), (8, V(2)), (12, V(3))]
    );
    assert_eq!(parts(&pl, 2), vec![p(0, 4, F32, V(4)), p(4, 4, F32, V(5))]);
    assert_eq!(parts(&pl, 3), vec![p(0, 8, F64, V(6)), p(8, 8, F64, V(7))]);
    assert_eq!(ret_parts(&pl), vec![p(0, 8, F64, V(0)), p(8, 8, F64, V(1))]);
}

#[test]
fn lowering_errors_keep_their_messages() {
    let mut n = crate::cdef::Namespace::new(X64);
    let opts = crate::cdef::CdefOptions::default();
    n.cdef("struct p { int a; ...; };", &opts).unwrap();
    let partial = n.parse_type("void(*)(struct p)").unwrap();
    let Kind::FuncPtr(sig) = &partial.kind else {
        unreachable!()
    };
    let e = lower(sig, &X64).unwrap_err();
    assert_eq!(
        e,
        LowerError::PartialLayout {
            cname: "struct p".into()
        }
    );
    assert!(e.is_not_implemented());
    assert_eq!(
        e.to_string(),
        "NotImplementedError: 'struct p' has a partial layout ('...'), only known in API mode"
    );
    assert_eq!(
        e.message(),
        "'struct p' has a partial layout ('...'), only known in API mode"
    );
    assert_eq!(
        LowerError::ArrayResult.to_string(),
        "a function cannot return an array"
    );
    assert_eq!(LowerError::VoidArgument.to_string(), "'void' argument");
    assert_eq!(LowerError::Layout("x".into()).to_string(), "x");
}

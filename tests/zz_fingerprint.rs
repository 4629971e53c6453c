// TEMP: code fingerprint before/after refactor (not committed).
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::Context;
use jitffi::abi::test_layout::{field, record};
use jitffi::abi::lower;
use jitffi::jit::trampoline::{self, ArgShape, Conv, Runtime, Scalar, Shape};
use jitffi::py::function::{arg_shape, ret_shape};
use jitffi::types::model::{Kind, Prim, TypeRef, TypeTable};
use jitffi::types::target::Target;

fn rt() -> Runtime {
    let mut k = 0x10000usize;
    let mut n = || { k += 0x1000; k };
    Runtime {
        target_offset: 16, arity_error: n(), convert_arg: n(), convert_vararg: n(), release: n(), reacquire: n(),
        box_result: n(), box_none: n(), release_temp: n(), long_from_i64: n(), long_from_u64: n(),
        float_from_double: n(), bool_from_long: n(), long_type: n(), float_type: n(), cdata_type: n(),
        cdata_ctype_offset: 16, cdata_addr_offset: 24, arg_ctypes_offset: 32, array_data: n(), void_ptr_ctype: n(),
        small_int_list: n(), bytes_type: n(), bytes_data_offset: 32, inline_small_ints: true, memcpy: n(),
    }
}

fn hash(b: &[u8]) -> u64 { let mut h = 0xcbf29ce484222325u64; for &x in b { h ^= x as u64; h = h.wrapping_mul(0x100000001b3); } h }

#[test]
fn fingerprint() {
    let mut t = TypeTable::new(Target::host());
    let i = t.prim(Prim::Int); let uc = t.prim(Prim::UChar); let sh = t.prim(Prim::Short); let l = t.prim(Prim::Long);
    let ul = t.prim(Prim::ULong); let d = t.prim(Prim::Double); let f = t.prim(Prim::Float); let c = t.prim(Prim::Char);
    let b = t.prim(Prim::Bool); let ld = t.prim(Prim::LongDouble); let v = t.void();
    let pi = t.pointer(&i); let pc = t.pointer(&c); let pv = t.pointer(&v); let pd = t.pointer(&d);
    let a4 = t.array(&i, Some(4)); let fnp = t.func_ptr(vec![i.clone()], &i, false);
    let pt = record(&mut t, "struct pt", false, false, vec![field("x", &d), field("y", &d)]);
    let big = record(&mut t, "struct big", false, false, vec![field("a", &l), field("b", &l), field("c", &l)]);
    let la = t.array(&l, Some(40));
    let huge = record(&mut t, "struct huge", false, false, vec![field("v", &la)]);
    let ppt = t.pointer(&pt);
    let sigs: Vec<(Vec<TypeRef>, TypeRef)> = vec![
        (vec![i.clone(), i.clone()], i.clone()), (vec![], v.clone()), (vec![uc.clone(), sh.clone()], uc.clone()),
        (vec![l.clone(), ul.clone()], ul.clone()), (vec![d.clone(), f.clone()], d.clone()), (vec![f.clone()], f.clone()),
        (vec![c.clone(), b.clone()], b.clone()), (vec![ld.clone()], ld.clone()), (vec![pi.clone(), pc.clone(), pv.clone(), pd.clone(), ppt.clone()], pv.clone()),
        (vec![a4.clone(), fnp.clone()], fnp.clone()), (vec![pt.clone(), big.clone(), huge.clone()], pt.clone()), (vec![i.clone()], big.clone()),
        (vec![l.clone(); 9], c.clone()), (vec![d.clone(); 10], d.clone()),
    ];
    let isa = trampoline::isa();
    let mut out = String::new();
    for (k, (args, ret)) in sigs.iter().enumerate() {
        for var in [false, true] {
            let fty = t.func_ptr(args.clone(), ret, var);
            let Kind::FuncPtr(sig) = &fty.kind else { unreachable!() };
            let mut shapes: Vec<ArgShape> = args.iter().map(|a| arg_shape(a).unwrap()).collect();
            let mut full: jitffi::types::model::FuncSig = FuncSigClone::c(sig);
            if var { shapes.push(ArgShape { scalar: Scalar::F64, conv: Conv::VarargCdata }); full.args.push(d.clone()); }
            let plan = lower(&full, &Target::host()).unwrap();
            for rg in [false, true] {
                let shape = Shape { args: shapes.clone(), ret: ret_shape(ret).unwrap(), release_gil: rg, plan: plan.clone() };
                let stub = shape.plan.stub.as_ref().map(|_| 0x777000usize);
                let func = trampoline::build(&shape, &rt(), &**isa, stub).unwrap();
                let mut ctx = Context::for_function(func);
                let code = ctx.compile(&**isa, &mut ControlPlane::default()).unwrap();
                out += &format!("T{k} var={var} gil={rg} {} {:016x}\n", code.code_buffer().len(), hash(code.code_buffer()));
            }
            if !var {
                if let Ok((func, lay)) = jitffi::jit::callback_thunk::build_thunk(&plan, &**jitffi::jit::callback_thunk::host_isa().unwrap(), 0x555000usize, Some(0x666000usize)) {
                    let code = jitffi::jit::callback_thunk::compile_function(func).unwrap();
                    out += &format!("C{k} {} {:016x} {:?}\n", code.len(), hash(&code), lay);
                }
            }
        }
    }
    std::fs::write(std::env::var("FP_OUT").unwrap(), out).unwrap();
}
trait FuncSigClone { fn c(s: &Self) -> jitffi::types::model::FuncSig; }
impl FuncSigClone for jitffi::types::model::FuncSig { fn c(s: &Self) -> Self { jitffi::types::model::FuncSig { args: s.args.clone(), result: s.result.clone(), variadic: s.variadic, abi: s.abi } } }

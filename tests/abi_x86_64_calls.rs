//! x86_64 SysV, run for real: a generated C library (fixed seed) called through Cranelift
//! code built by `jit::native_call` from `abi::lower` plans, and the same plans used for
//! thunks that C calls back. Results are compared with what the C code computes when it
//! calls itself directly.
#![cfg(target_arch = "x86_64")]

mod abi_common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use abi_common::{check_layouts, define_jcall, define_stub, define_thunk, generate, Library};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::default_libcall_names;
use jitffi::abi::{lower, ArgPass, RetPass, StubKind};
use jitffi::jit::native_call::needs_x87_entry;
use jitffi::jit::stubs::x87_callback_entry;
use jitffi::types::model::{Kind, Prim, TypeTable};
use jitffi::types::target::Target;

const SEEDS: u64 = 3;

fn workdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("jitffi-abi-x64-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn compile_so(src: &str, name: &str) -> PathBuf {
    let dir = workdir();
    let c = dir.join(format!("{name}.c"));
    let so = dir.join(format!("lib{name}.so"));
    std::fs::write(&c, src).unwrap();
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-w", "-o"])
        .arg(&so)
        .arg(&c)
        .output()
        .expect("cc");
    assert!(
        out.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

fn host_isa() -> OwnedTargetIsa {
    let mut fb = settings::builder();
    // JITFFI_TEST_OPT=speed / JITFFI_TEST_REGALLOC=single_pass run the same checks on the
    // code the calls helper may choose to generate.
    fb.set(
        "opt_level",
        &std::env::var("JITFFI_TEST_OPT").unwrap_or("none".into()),
    )
    .unwrap();
    if let Ok(r) = std::env::var("JITFFI_TEST_REGALLOC") {
        fb.set("regalloc_algorithm", &r).unwrap();
    }
    fb.set("is_pic", "false").unwrap();
    fb.set("use_colocated_libcalls", "false").unwrap();
    fb.set("enable_verifier", "true").unwrap();
    cranelift_native::builder()
        .unwrap()
        .finish(settings::Flags::new(fb))
        .unwrap()
}

fn jit_module(isa: &OwnedTargetIsa, lib: &Arc<libloading::Library>) -> JITModule {
    let mut jb = JITBuilder::with_isa(isa.clone(), default_libcall_names());
    let lib = lib.clone();
    jb.symbol_lookup_fn(Box::new(move |name| unsafe {
        lib.get::<unsafe extern "C" fn()>(name.as_bytes())
            .ok()
            .map(|f| *f as *const u8)
    }));
    JITModule::new(jb)
}

/// Memory slots whose last byte is followed by an inaccessible page: reading or writing
/// past the end of a value placed with `place` faults.
struct Guarded {
    base: *mut u8,
    page: usize,
    n: usize,
}

impl Guarded {
    fn new(n: usize) -> Guarded {
        let page = 4096;
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                2 * page * n,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            ) as *mut u8;
            assert!(base as isize != -1);
            for i in 0..n {
                assert_eq!(
                    libc::mprotect(
                        base.add((2 * i + 1) * page) as *mut _,
                        page,
                        libc::PROT_NONE
                    ),
                    0
                );
            }
            Guarded { base, page, n }
        }
    }
    /// Address of `size` bytes (at least 1) ending right at slot `i`'s guard page.
    fn place(&self, i: usize, size: u32) -> *mut u8 {
        assert!(i < self.n);
        unsafe {
            let p = self
                .base
                .add((2 * i + 1) * self.page - size.max(1) as usize);
            std::ptr::write_bytes(p, 0xa5, size.max(1) as usize);
            p
        }
    }
}

/// Copies machine code to fresh executable memory (leaked: test lifetime).
fn exec_bytes(code: &[u8]) -> *const u8 {
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        ) as *mut u8;
        assert!(p as isize != -1);
        std::ptr::copy_nonoverlapping(code.as_ptr(), p, code.len());
        assert_eq!(
            libc::mprotect(p as *mut _, 4096, libc::PROT_READ | libc::PROT_EXEC),
            0
        );
        p
    }
}

type ArgsFn = unsafe extern "C" fn(*mut *mut u8, u64);
type CheckFn = unsafe extern "C" fn(u64) -> u64;
type ViaFn = unsafe extern "C" fn(*const u8, u64) -> u64;
type RetHashFn = unsafe extern "C" fn(*const u8) -> u64;
type JCall = unsafe extern "C" fn(*const u8, *const *mut u8, *mut u8);

fn sym<T: Copy>(lib: &libloading::Library, name: &str) -> T {
    unsafe {
        *lib.get::<T>(name.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

fn run_library(lib_desc: &Library, so: &PathBuf) -> (usize, usize, Vec<String>) {
    let lib = Arc::new(unsafe { libloading::Library::new(so) }.unwrap());
    let table: *const u64 = unsafe { *lib.get::<*const u64>(b"layout_table").unwrap() };
    let entries: usize = lib_desc
        .shapes
        .iter()
        .map(|s| {
            2 + s
                .fields
                .iter()
                .filter(|f| !matches!(f, abi_common::Ft::Bits(..)))
                .count()
        })
        .sum();
    check_layouts(lib_desc, unsafe {
        std::slice::from_raw_parts(table, entries)
    });

    let isa = host_isa();
    let mut m = jit_module(&isa, &lib);
    let mut built = Vec::new();
    for f in &lib_desc.funcs {
        let stub = define_stub(&mut m, &format!("stub_{}", f.name), &f.plan);
        let jcall = define_jcall(&mut m, &isa, &format!("jcall_{}", f.name), &f.plan, stub);
        let thunk = if f.variadic {
            None
        } else {
            Some(
                define_thunk(
                    &mut m,
                    &isa,
                    &format!("jthunk_{}", f.name),
                    &f.plan,
                    &format!("impl_{}", f.name),
                )
                .unwrap(),
            )
        };
        built.push((jcall, thunk));
    }
    m.finalize_definitions().unwrap();

    let guard = Guarded::new(32);
    let mut failures = Vec::new();
    let (mut calls, mut callbacks) = (0, 0);
    for (f, (jcall, thunk)) in lib_desc.funcs.iter().zip(&built) {
        let n = &f.name;
        let args_fn: ArgsFn = sym(&lib, &format!("args_{n}"));
        let check_fn: CheckFn = sym(&lib, &format!("check_{n}"));
        let rethash: RetHashFn = sym(&lib, &format!("rethash_{n}"));
        let callee: unsafe extern "C" fn() = sym(&lib, &f.callee);
        let jcall: JCall = unsafe { std::mem::transmute(m.get_finalized_function(*jcall)) };
        for seed in 1..=SEEDS {
            let mut argv: Vec<*mut u8> = f
                .plan
                .args
                .iter()
                .enumerate()
                .map(|(i, a)| guard.place(i, a.size))
                .collect();
            let ret = guard.place(31, f.plan.ret_size);
            unsafe {
                args_fn(argv.as_mut_ptr(), seed);
                jcall(callee as *const u8, argv.as_ptr(), ret);
                let want = check_fn(seed);
                let got = rethash(ret);
                if got != want {
                    failures.push(format!(
                        "call {n} seed {seed}: got {got:#x}, want {want:#x}; plan {:?}",
                        f.plan
                    ));
                }
            }
            calls += 1;
            if let Some(thunk) = thunk {
                let via: ViaFn = sym(&lib, &format!("via_{n}"));
                let mut entry = m.get_finalized_function(*thunk);
                if needs_x87_entry(&f.plan) {
                    entry = exec_bytes(&x87_callback_entry(entry as u64));
                }
                let got = unsafe { via(entry, seed) };
                let want = unsafe { check_fn(seed) };
                if got != want {
                    failures.push(format!(
                        "callback {n} seed {seed}: got {got:#x}, want {want:#x}; plan {:?}",
                        f.plan
                    ));
                }
                callbacks += 1;
            }
        }
    }
    // The module's code must outlive every call above; it is leaked with the module.
    std::mem::forget(m);
    (calls, callbacks, failures)
}

#[test]
fn generated_library_calls_and_callbacks() {
    let lib = generate(Target::X86_64_LINUX, 0x05ee_dab1, 140, 340, 40);
    let nfun = lib.funcs.iter().filter(|f| !f.variadic).count();
    assert!(nfun >= 300);
    let so = compile_so(&lib.c_source, "abigen");
    let (calls, callbacks, failures) = run_library(&lib, &so);
    let kinds =
        |pred: &dyn Fn(&abi_common::Func) -> bool| lib.funcs.iter().filter(|f| pred(f)).count();
    eprintln!(
        "x86_64: {} functions ({} variadic calls), {} shapes; {calls} calls and {callbacks} callbacks run; \
         sret results {}, x87 results {}, stack-passed aggregates in {} functions",
        lib.funcs.len(),
        lib.funcs.len() - nfun,
        lib.shapes.len(),
        kinds(&|f| f.plan.ret == RetPass::Sret),
        kinds(&|f| f.plan.ret == RetPass::X87),
        kinds(&|f| f.plan.stack_parts().next().is_some()),
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// libc's snprintf through the `%al` stub, with ints, doubles, pointers and strings,
/// enough of them to spill to the stack.
#[test]
fn variadic_snprintf_from_libc() {
    let mut t = TypeTable::new(Target::X86_64_LINUX);
    let ch = t.prim(Prim::Char);
    let s = t.pointer(&ch);
    let (int, size, dbl, long) = (
        t.prim(Prim::Int),
        t.prim(Prim::Size),
        t.prim(Prim::Double),
        t.prim(Prim::Long),
    );
    let mut args = vec![s.clone(), size.clone(), s.clone()];
    let mut vals: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; 512];
    let fmt = b"%d|%.3f|%s|%ld|%.1f|%.1f|%.1f|%.1f|%.1f|%.1f|%.1f|%.1f|%d|%d|%d|%d\0".to_vec();
    let word = b"hello\0".to_vec();
    vals.push((buf.as_mut_ptr() as u64).to_ne_bytes().to_vec());
    vals.push((buf.len() as u64).to_ne_bytes().to_vec());
    vals.push((fmt.as_ptr() as u64).to_ne_bytes().to_vec());
    args.push(int.clone());
    vals.push((-42i32).to_ne_bytes().to_vec());
    args.push(dbl.clone());
    vals.push(3.25f64.to_ne_bytes().to_vec());
    args.push(s.clone());
    vals.push((word.as_ptr() as u64).to_ne_bytes().to_vec());
    args.push(long.clone());
    vals.push((-1234567890123i64).to_ne_bytes().to_vec());
    for k in 0..8 {
        args.push(dbl.clone());
        vals.push((k as f64 + 0.5).to_ne_bytes().to_vec());
    }
    for k in 0..4i32 {
        args.push(int.clone());
        vals.push((100 + k).to_ne_bytes().to_vec());
    }
    let fty = t.func_ptr(args, &int, true);
    let Kind::FuncPtr(sig) = &fty.kind else {
        unreachable!()
    };
    let plan = lower(sig, &Target::X86_64_LINUX).unwrap();
    assert!(matches!(plan.stub, Some(StubKind::Variadic { al: 8, .. })));
    assert!(plan.stack_size > 0);
    let isa = host_isa();
    let lib = Arc::new(unsafe { libloading::Library::new("libc.so.6") }.unwrap());
    let mut m = jit_module(&isa, &lib);
    let stub = define_stub(&mut m, "stub", &plan);
    let id = define_jcall(&mut m, &isa, "jcall", &plan, stub);
    m.finalize_definitions().unwrap();
    let jcall: JCall = unsafe { std::mem::transmute(m.get_finalized_function(id)) };
    let snprintf: unsafe extern "C" fn() = sym(&lib, "snprintf");
    let mut argv: Vec<*mut u8> = vals.iter_mut().map(|v| v.as_mut_ptr()).collect();
    let mut ret = [0u8; 8];
    unsafe { jcall(snprintf as *const u8, argv.as_mut_ptr(), ret.as_mut_ptr()) };
    let n = i32::from_ne_bytes(ret[..4].try_into().unwrap());
    let text = std::ffi::CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_str()
        .unwrap();
    let want = "-42|3.250|hello|-1234567890123|0.5|1.5|2.5|3.5|4.5|5.5|6.5|7.5|100|101|102|103";
    assert_eq!(text, want);
    assert_eq!(n as usize, want.len());
    assert!(matches!(plan.args[0].pass, ArgPass::Parts(_)));
    std::mem::forget(m);
}

const SCALAR_C: &str = r#"
#include <stdint.h>
typedef int64_t (*sum_fn)(signed char, unsigned char, short, unsigned short, int, unsigned int,
                          long, unsigned long, double, float, signed char, unsigned short, int, long,
                          double, float, double, float, double, float, double, float, unsigned char, short);
int64_t sum14(signed char a, unsigned char b, short c, unsigned short d, int e, unsigned int f,
              long g, unsigned long h, double x1, float x2, signed char i, unsigned short j, int k, long l,
              double x3, float x4, double x5, float x6, double x7, float x8, double x9, float x10,
              unsigned char m, short n) {
    return a + b + c + d + e + (int64_t)f + g + (int64_t)h + i + j + k + l + m + n
        + (int64_t)(x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10);
}
int64_t call_sum14(sum_fn f) {
    return f(-5, 250, -300, 65000, -70000, 4000000000u, -5000000000000L, 7, 1.5, 2.5f, -128, 65535,
             -1, 9, 10.25, 11.75f, 12.0, 13.0f, 14.0, 15.0f, 16.0, 17.0f, 255, -32768);
}
"#;

/// Scalars passed as values (no memory), more than fit in registers, small integers at
/// their limits; and a thunk reading them with `incoming_scalar` and extending them itself.
#[test]
fn whole_scalars_as_values_both_directions() {
    use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Signature};
    use cranelift_codegen::Context;
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
    use cranelift_module::{Linkage, Module};
    use jitffi::jit::native_call::{
        c_signature, emit_call, emit_return_scalar, incoming_scalar, scalar_arg_type, CArg,
    };

    let so = compile_so(SCALAR_C, "scalars");
    let lib = Arc::new(unsafe { libloading::Library::new(&so) }.unwrap());
    let mut t = TypeTable::new(Target::X86_64_LINUX);
    let p = |t: &mut TypeTable, x: Prim| t.prim(x);
    use Prim::*;
    let order = [
        SChar, UChar, Short, UShort, Int, UInt, Long, ULong, Double, Float, SChar, UShort, Int,
        Long, Double, Float, Double, Float, Double, Float, Double, Float, UChar, Short,
    ];
    let args: Vec<_> = order.iter().map(|x| p(&mut t, *x)).collect();
    let i64t = p(&mut t, Long);
    let fty = t.func_ptr(args, &i64t, false);
    let Kind::FuncPtr(sig) = &fty.kind else {
        unreachable!()
    };
    let plan = lower(sig, &Target::X86_64_LINUX).unwrap();
    assert!(plan.stack_size > 0);
    let isa = host_isa();
    let mut m = jit_module(&isa, &lib);
    let ptr = isa.pointer_type();

    // Caller: fn(callee) -> i64, arguments as constants.
    let mut csig = Signature::new(isa.default_call_conv());
    csig.params.push(AbiParam::new(ptr));
    csig.returns.push(AbiParam::new(types::I64));
    let caller = m.declare_function("caller", Linkage::Local, &csig).unwrap();
    let mut ctx = Context::new();
    ctx.func.signature = csig;
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let e = b.create_block();
        b.append_block_params_for_function_params(e);
        b.switch_to_block(e);
        let callee = b.block_params(e)[0];
        let ints: [i64; 14] = [
            -5,
            250,
            -300,
            65000,
            -70000,
            4000000000,
            -5000000000000,
            7,
            -128,
            65535,
            -1,
            9,
            255,
            -32768,
        ];
        let flts = [1.5, 2.5, 10.25, 11.75, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0];
        let (mut ii, mut fi) = (0, 0);
        let mut cargs = Vec::new();
        for i in 0..order.len() {
            let ty = scalar_arg_type(&plan, i).unwrap();
            let v = if ty == types::F64 {
                fi += 1;
                b.ins().f64const(flts[fi - 1])
            } else if ty == types::F32 {
                fi += 1;
                b.ins().f32const(flts[fi - 1] as f32)
            } else {
                ii += 1;
                b.ins().iconst(ty, ints[ii - 1])
            };
            cargs.push(CArg::Scalar(v));
        }
        let r = emit_call(&mut b, &*isa, &plan, callee, None, &cargs, None);
        b.ins().return_(&r);
        b.seal_all_blocks();
        b.finalize(isa.frontend_config());
    }
    m.define_function(caller, &mut ctx).unwrap();

    // Callee: the same function as a thunk, summing its own arguments.
    let tsig = c_signature(&plan, &*isa).unwrap();
    let thunk = m.declare_function("thunk", Linkage::Local, &tsig).unwrap();
    let mut ctx = Context::new();
    ctx.func.signature = tsig;
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let e = b.create_block();
        b.append_block_params_for_function_params(e);
        b.switch_to_block(e);
        let params = b.block_params(e).to_vec();
        let mut isum = b.ins().iconst(types::I64, 0);
        let mut fsum = b.ins().f64const(0.0);
        for (i, prim) in order.iter().enumerate() {
            let v = incoming_scalar(&plan, &params, i).unwrap();
            let ty = b.func.dfg.value_type(v);
            if ty == types::F64 {
                fsum = b.ins().fadd(fsum, v);
            } else if ty == types::F32 {
                let w = b.ins().fpromote(types::F64, v);
                fsum = b.ins().fadd(fsum, w);
            } else {
                let signed = prim.info(&Target::X86_64_LINUX).signed;
                let w = if ty == types::I64 {
                    v
                } else if signed {
                    b.ins().sextend(types::I64, v)
                } else {
                    b.ins().uextend(types::I64, v)
                };
                isum = b.ins().iadd(isum, w);
            }
        }
        let f = b.ins().fcvt_to_sint(types::I64, fsum);
        let total = b.ins().iadd(isum, f);
        emit_return_scalar(&mut b, &plan, total);
        b.seal_all_blocks();
        b.finalize(isa.frontend_config());
    }
    m.define_function(thunk, &mut ctx).unwrap();
    m.finalize_definitions().unwrap();

    let sum14: unsafe extern "C" fn() = sym(&lib, "sum14");
    let call_sum14: unsafe extern "C" fn(*const u8) -> i64 = sym(&lib, "call_sum14");
    let want = unsafe { call_sum14(sum14 as *const u8) };
    let caller_fn: unsafe extern "C" fn(*const u8) -> i64 =
        unsafe { std::mem::transmute(m.get_finalized_function(caller)) };
    assert_eq!(unsafe { caller_fn(sum14 as *const u8) }, want);
    assert_eq!(unsafe { call_sum14(m.get_finalized_function(thunk)) }, want);
    std::mem::forget(m);
}

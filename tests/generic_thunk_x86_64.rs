//! The generic callback thunk (`jit::generic_thunk`), run for real on x86_64: every
//! function of the generated ABI library (`abi_common`: ints of each width and sign,
//! floats, doubles, pointers, mixed, more arguments than registers, structs and unions
//! by value in registers and in memory, packed ones, `_Complex`, `long double`, results
//! returned in memory) is called back by C through a function pointer that is an entry
//! stub of the production pool jumping to the generic thunk's entry for the shape's
//! closure register. The dispatcher moves the arguments out of the register file with the
//! production `load_args` (the compiled thunks' buffer layout, `thunk_layout`), lets the
//! C implementation compute the result from them, and puts it back with `store_result`.
//! A callback is right when what C got back hashes like a direct call.
#![cfg(target_arch = "x86_64")]

mod abi_common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use abi_common::generate;
use jitffi::abi::regfile::RegFile;
use jitffi::abi::{CallPlan, RetPass};
use jitffi::jit::callback_thunk::{thunk_layout, ThunkLayout};
use jitffi::jit::entry_pool::{self, ClosureReg};
use jitffi::jit::generic_thunk::{self, load_args, result_ptr, store_result};
use jitffi::types::target::Target;

type ImplFn = unsafe extern "C" fn(*const *mut u8, *mut u8);
type CheckFn = unsafe extern "C" fn(u64) -> u64;
type ViaFn = unsafe extern "C" fn(*const u8, u64) -> u64;

fn compile_so(src: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jitffi-generic-thunk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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

fn sym<T: Copy>(lib: &libloading::Library, name: &str) -> T {
    unsafe {
        *lib.get::<T>(name.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

/// What the test dispatcher needs of one callback.
struct Closure {
    plan: CallPlan,
    layout: ThunkLayout,
    implementation: ImplFn,
    calls: std::cell::Cell<u32>,
}

/// 16-byte aligned zeroed bytes.
fn aligned(size: usize) -> Vec<u128> {
    vec![0u128; size.div_ceil(16).max(1)]
}

unsafe extern "C" fn test_dispatch(closure: *const (), rf: *mut RegFile) {
    let c = unsafe { &*(closure as *const Closure) };
    let rf = unsafe { &mut *rf };
    c.calls.set(c.calls.get() + 1);
    let mut args = aligned(c.layout.args_size as usize);
    let args_bytes =
        unsafe { std::slice::from_raw_parts_mut(args.as_mut_ptr() as *mut u8, args.len() * 16) };
    unsafe { load_args(&c.plan, &c.layout.arg_offsets, rf, args_bytes) }.expect("plan fits");
    let argv: Vec<*mut u8> = c
        .layout
        .arg_offsets
        .iter()
        .map(|&o| unsafe { args_bytes.as_mut_ptr().add(o as usize) })
        .collect();
    let mut res = aligned(c.plan.ret_size as usize);
    let res_bytes =
        unsafe { std::slice::from_raw_parts_mut(res.as_mut_ptr() as *mut u8, res.len() * 16) };
    let rp = result_ptr(&c.plan, rf, res_bytes.as_mut_ptr());
    unsafe { (c.implementation)(argv.as_ptr(), rp) };
    store_result(&c.plan, rf, res_bytes).expect("result fits");
}

#[test]
fn generated_library_called_back_through_the_generic_thunk() {
    let lib_desc = generate(Target::X86_64_LINUX, 0x9e7e_71c5, 140, 340, 0);
    let so = compile_so(&lib_desc.c_source, "genthunk");
    let lib = unsafe { libloading::Library::new(&so) }.unwrap();
    let thunk = generic_thunk::host(test_dispatch).unwrap();
    let mut failures = Vec::new();
    let mut regs_seen = BTreeSet::new();
    let (mut sret, mut x87, mut stack_args, mut runs) = (0, 0, 0, 0);
    for f in lib_desc.funcs.iter().filter(|f| !f.variadic) {
        let n = &f.name;
        let layout = thunk_layout(&f.plan).unwrap();
        let closure = Box::new(Closure {
            plan: f.plan.clone(),
            layout: layout.clone(),
            implementation: sym(&lib, &format!("impl_{n}")),
            calls: std::cell::Cell::new(0),
        });
        let slot = entry_pool::alloc(
            layout.closure_reg,
            &*closure as *const Closure as *const (),
            thunk.entry(layout.closure_reg),
        )
        .unwrap();
        let via: ViaFn = sym(&lib, &format!("via_{n}"));
        let check: CheckFn = sym(&lib, &format!("check_{n}"));
        for seed in 1..=3u64 {
            let got = unsafe { via(slot.code_ptr(), seed) };
            let want = unsafe { check(seed) };
            if got != want {
                failures.push(format!(
                    "{n} seed {seed}: got {got:#x}, want {want:#x}; closure in {:?}; plan {:?}",
                    layout.closure_reg, f.plan
                ));
            }
            runs += 1;
        }
        assert_eq!(
            closure.calls.get(),
            3,
            "{n}: every call reached the dispatcher"
        );
        regs_seen.insert(match layout.closure_reg {
            ClosureReg::Int(_) => "int",
            ClosureReg::Float(_) => "float",
            ClosureReg::Stack => "stack",
        });
        sret += usize::from(f.plan.ret == RetPass::Sret);
        x87 += usize::from(f.plan.ret == RetPass::X87);
        stack_args += usize::from(f.plan.stack_size > 0);
        drop(slot);
    }
    eprintln!(
        "{runs} callbacks through the generic thunk: {sret} sret, {x87} x87 results, \
         {stack_args} with stack arguments; closure places {regs_seen:?}"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    assert!(
        sret > 0 && x87 > 0 && stack_args > 0,
        "the matrix covers every result kind"
    );
    assert!(regs_seen.contains("int") && regs_seen.contains("float"));
}

/// Hand-written callers for the closure places the random matrix rarely hits: every
/// integer and vector register taken plus stack arguments (the closure travels on the
/// stack), and a float-register closure.
#[test]
fn closure_on_the_stack_and_in_a_vector_register() {
    let src = r#"
#include <stdint.h>
typedef long (*all_t)(long, long, long, long, long, long, double, double, double, double,
                      double, double, double, double, long, double);
long call_all(all_t f) { return f(1, 2, 3, 4, 5, 6, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 1000, 0.25); }
typedef float (*fl_t)(long, long, long, long, long, long, float, short);
float call_fl(fl_t f) { return f(-1, -2, -3, -4, -5, -6, 0.5f, -7); }
void impl_all(void **p, void *r) {
    long s = 0; for (int i = 0; i < 6; i++) s += *(long *)p[i];
    double d = 0; for (int i = 6; i < 14; i++) d += *(double *)p[i];
    *(long *)r = s + (long)(d * 10) + *(long *)p[14] + (long)(*(double *)p[15] * 100);
}
void impl_fl(void **p, void *r) {
    long s = 0; for (int i = 0; i < 6; i++) s += *(long *)p[i];
    *(float *)r = (float)s + *(float *)p[6] + *(short *)p[7];
}
"#;
    let so = compile_so(src, "genthunk_places");
    let lib = unsafe { libloading::Library::new(&so) }.unwrap();
    let mut t = jitffi::types::model::TypeTable::new(Target::X86_64_LINUX);
    use jitffi::types::model::{Kind, Prim};
    let l = t.prim(Prim::Long);
    let d = t.prim(Prim::Double);
    let fl = t.prim(Prim::Float);
    let sh = t.prim(Prim::Short);
    let plan_of = |t: &mut jitffi::types::model::TypeTable, args, ret| {
        let f = t.func_ptr(args, ret, false);
        let Kind::FuncPtr(sig) = &f.kind else {
            unreachable!()
        };
        jitffi::abi::lower(sig, &Target::X86_64_LINUX).unwrap()
    };
    let mut all_args = vec![l.clone(); 6];
    all_args.extend(vec![d.clone(); 8]);
    all_args.push(l.clone());
    all_args.push(d.clone());
    let all = plan_of(&mut t, all_args, &l);
    let mut fl_args = vec![l.clone(); 6];
    fl_args.push(fl.clone());
    fl_args.push(sh.clone());
    let flp = plan_of(&mut t, fl_args, &fl);
    let thunk = generic_thunk::host(test_dispatch).unwrap();
    for (plan, imp, reg) in [
        (all, "impl_all", ClosureReg::Stack),
        (flp, "impl_fl", ClosureReg::Float(1)),
    ] {
        let layout = thunk_layout(&plan).unwrap();
        assert_eq!(layout.closure_reg, reg);
        let closure = Box::new(Closure {
            plan,
            layout: layout.clone(),
            implementation: sym(&lib, imp),
            calls: std::cell::Cell::new(0),
        });
        let slot = entry_pool::alloc(
            reg,
            &*closure as *const Closure as *const (),
            thunk.entry(reg),
        )
        .unwrap();
        if reg == ClosureReg::Stack {
            let call: unsafe extern "C" fn(*const u8) -> i64 = sym(&lib, "call_all");
            assert_eq!(unsafe { call(slot.code_ptr()) }, 21 + 400 + 1000 + 25);
        } else {
            let call: unsafe extern "C" fn(*const u8) -> f32 = sym(&lib, "call_fl");
            assert_eq!(unsafe { call(slot.code_ptr()) }, -21.0 + 0.5 - 7.0);
        }
        assert_eq!(closure.calls.get(), 1);
    }
}

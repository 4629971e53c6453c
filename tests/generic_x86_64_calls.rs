//! The generic call stub (`jit::generic_call`) on x86_64, run for real: the generated C
//! library of `abi_x86_64_calls` (every shape family: integers of each width and sign,
//! floats, doubles, mixed, arguments on the stack, structs and unions by value in
//! registers and in memory, sret, `_Complex`, x87 `long double`, variadic calls with
//! `%al`) called through one stub and a register file filled from each `abi::lower`
//! plan. Results are compared with what the C code computes calling itself directly.
//! Argument and result memory ends right before an inaccessible page, so reading or
//! writing past a value faults.
#![cfg(target_arch = "x86_64")]

mod abi_common;

use std::path::PathBuf;
use std::process::Command;

use abi_common::generate;
use jitffi::abi::{lower, RetPass};
use jitffi::jit::generic_call::Frame;
use jitffi::types::model::{Kind, Prim, TypeTable};
use jitffi::types::target::Target;

fn compile_so(src: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jitffi-generic-x64-{}", std::process::id()));
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

struct Guarded {
    base: *mut u8,
    page: usize,
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
                let g = base.add((2 * i + 1) * page) as *mut _;
                assert_eq!(libc::mprotect(g, page, libc::PROT_NONE), 0);
            }
            Guarded { base, page }
        }
    }

    fn place(&self, i: usize, size: u32) -> *mut u8 {
        unsafe {
            let p = self
                .base
                .add((2 * i + 1) * self.page - size.max(1) as usize);
            std::ptr::write_bytes(p, 0xa5, size.max(1) as usize);
            p
        }
    }
}

type ArgsFn = unsafe extern "C" fn(*mut *mut u8, u64);
type CheckFn = unsafe extern "C" fn(u64) -> u64;
type RetHashFn = unsafe extern "C" fn(*const u8) -> u64;

fn sym<T: Copy>(lib: &libloading::Library, name: &str) -> T {
    unsafe {
        *lib.get::<T>(name.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

#[test]
fn generated_library_through_the_generic_stub() {
    let desc = generate(Target::X86_64_LINUX, 0x05ee_dab1, 140, 340, 40);
    let so = compile_so(&desc.c_source, "abigen_generic");
    let lib = unsafe { libloading::Library::new(&so) }.unwrap();
    let guard = Guarded::new(32);
    let mut failures = Vec::new();
    let mut calls = 0;
    for f in &desc.funcs {
        let n = &f.name;
        let args_fn: ArgsFn = sym(&lib, &format!("args_{n}"));
        let check_fn: CheckFn = sym(&lib, &format!("check_{n}"));
        let rethash: RetHashFn = sym(&lib, &format!("rethash_{n}"));
        let callee: unsafe extern "C" fn() = sym(&lib, &f.callee);
        for seed in 1..=3 {
            let mut argv: Vec<*mut u8> = f
                .plan
                .args
                .iter()
                .enumerate()
                .map(|(i, a)| guard.place(i, a.size))
                .collect();
            let ret = guard.place(31, f.plan.ret_size);
            unsafe { args_fn(argv.as_mut_ptr(), seed) };
            let ptrs: Vec<*const u8> = argv.iter().map(|p| *p as *const u8).collect();
            let mut frame = Frame::new();
            unsafe { frame.call(&f.plan, callee as usize, &ptrs, ret, |go| go()) }.unwrap();
            let (got, want) = unsafe { (rethash(ret), check_fn(seed)) };
            if got != want {
                failures.push(format!(
                    "{n} seed {seed}: got {got:#x}, want {want:#x}; plan {:?}",
                    f.plan
                ));
            }
            calls += 1;
        }
    }
    let count =
        |pred: &dyn Fn(&abi_common::Func) -> bool| desc.funcs.iter().filter(|f| pred(f)).count();
    // Every family the stub has to handle is in the matrix.
    assert!(count(&|f| f.variadic) >= 30);
    assert!(count(&|f| f.plan.ret == RetPass::Sret) > 0);
    assert!(count(&|f| f.plan.ret == RetPass::X87) > 0);
    assert!(count(&|f| f.plan.stack_parts().next().is_some()) > 0);
    eprintln!(
        "generic stub: {calls} calls of {} functions",
        desc.funcs.len()
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

/// libc's snprintf through the stub: `%al` set from the plan, doubles in xmm registers and
/// on the stack, strings and integers spilled to the stack.
#[test]
fn variadic_snprintf_from_libc() {
    let mut t = TypeTable::new(Target::X86_64_LINUX);
    let ch = t.prim(Prim::Char);
    let s = t.pointer(&ch);
    let (int, size, dbl) = (t.prim(Prim::Int), t.prim(Prim::Size), t.prim(Prim::Double));
    let mut buf = vec![0u8; 256];
    let fmt = b"%d|%s|%.1f|%.1f|%.1f|%.1f|%.1f|%.1f|%.1f|%.1f|%.1f|%d|%d|%d|%d\0".to_vec();
    let word = b"hi\0".to_vec();
    let mut args = vec![s.clone(), size.clone(), s.clone(), int.clone(), s.clone()];
    let mut vals: Vec<Vec<u8>> = vec![
        (buf.as_mut_ptr() as u64).to_ne_bytes().to_vec(),
        (buf.len() as u64).to_ne_bytes().to_vec(),
        (fmt.as_ptr() as u64).to_ne_bytes().to_vec(),
        (-7i32).to_ne_bytes().to_vec(),
        (word.as_ptr() as u64).to_ne_bytes().to_vec(),
    ];
    for k in 0..9 {
        args.push(dbl.clone());
        vals.push((k as f64 + 0.5).to_ne_bytes().to_vec());
    }
    for k in 0..4i32 {
        args.push(int.clone());
        vals.push((10 + k).to_ne_bytes().to_vec());
    }
    let fty = t.func_ptr(args, &int, true);
    let Kind::FuncPtr(sig) = &fty.kind else {
        unreachable!()
    };
    let plan = lower(sig, &Target::X86_64_LINUX).unwrap();
    assert_eq!(plan.variadic.unwrap().vector_regs, 8);
    assert!(plan.stack_size > 16);
    let libc_so = unsafe { libloading::Library::new("libc.so.6") }.unwrap();
    let snprintf: unsafe extern "C" fn() = sym(&libc_so, "snprintf");
    let ptrs: Vec<*const u8> = vals.iter().map(|v| v.as_ptr()).collect();
    let mut ret = [0u8; 16];
    let mut frame = Frame::new();
    unsafe { frame.call(&plan, snprintf as usize, &ptrs, ret.as_mut_ptr(), |go| go()) }.unwrap();
    let text = std::ffi::CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_str()
        .unwrap();
    let want = "-7|hi|0.5|1.5|2.5|3.5|4.5|5.5|6.5|7.5|8.5|10|11|12|13";
    assert_eq!(text, want);
    assert_eq!(
        i32::from_ne_bytes(ret[..4].try_into().unwrap()) as usize,
        want.len()
    );
}

/// The around-hook runs the call exactly once, and the stub leaves callee-saved state and
/// the x87 stack balanced over many calls (a long double result pops `st(0)`; others do
/// not touch the x87 stack).
#[test]
fn many_calls_keep_the_machine_state_balanced() {
    let so = compile_so(
        "long double half(long double x) { return x / 2; }\n\
         int add(int a, int b) { return a + b; }\n",
        "balance",
    );
    let lib = unsafe { libloading::Library::new(&so) }.unwrap();
    let mut t = TypeTable::new(Target::X86_64_LINUX);
    let ld = t.prim(Prim::LongDouble);
    let int = t.prim(Prim::Int);
    let half_t = t.func_ptr(vec![ld.clone()], &ld, false);
    let add_t = t.func_ptr(vec![int.clone(), int.clone()], &int, false);
    let plan_of = |ty: &jitffi::types::model::TypeRef| {
        let Kind::FuncPtr(sig) = &ty.kind else {
            unreachable!()
        };
        lower(sig, &Target::X86_64_LINUX).unwrap()
    };
    let (half_p, add_p) = (plan_of(&half_t), plan_of(&add_t));
    assert_eq!(half_p.ret, RetPass::X87);
    let half: unsafe extern "C" fn() = sym(&lib, "half");
    let add: unsafe extern "C" fn() = sym(&lib, "add");
    // 8.0L as x87 extended: mantissa 1 << 63, exponent 16383 + 3.
    let mut eight = [0u8; 16];
    eight[..8].copy_from_slice(&(1u64 << 63).to_le_bytes());
    eight[8..10].copy_from_slice(&(16383u16 + 3).to_le_bytes());
    for i in 0..200i32 {
        let mut ret = [0u8; 16];
        let mut ran = 0;
        let mut frame = Frame::new();
        unsafe {
            frame.call(
                &half_p,
                half as usize,
                &[eight.as_ptr()],
                ret.as_mut_ptr(),
                |go| {
                    ran += 1;
                    go()
                },
            )
        }
        .unwrap();
        assert_eq!(ran, 1);
        assert_eq!(u64::from_le_bytes(ret[..8].try_into().unwrap()), 1 << 63);
        assert_eq!(
            u16::from_le_bytes(ret[8..10].try_into().unwrap()),
            16383 + 2
        );
        let (a, b) = (i, -3i32);
        let mut r = [0u8; 16];
        let mut frame = Frame::new();
        let (av, bv) = (a.to_ne_bytes(), b.to_ne_bytes());
        unsafe {
            frame.call(
                &add_p,
                add as usize,
                &[av.as_ptr(), bv.as_ptr()],
                r.as_mut_ptr(),
                |go| go(),
            )
        }
        .unwrap();
        assert_eq!(i32::from_ne_bytes(r[..4].try_into().unwrap()), a + b);
    }
}

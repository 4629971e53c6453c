//! The aarch64 generic call stub (`jit::generic_call`), verified on this x86_64 machine
//! under `qemu-aarch64`, on the generated library of `abi_aarch64_qemu` (every shape
//! family: integers, floats, HFAs in v registers, composites by reference, sret through
//! x8, stack arguments, variadic calls).
//!
//! The register file is filled by jitffi's own `generic_call::prepare`, run here: the
//! aarch64 program first prints the argument bytes that `args_fN` makes for each seed;
//! `prepare` turns them into register-file and stack images, passing distinctive tag
//! values where a pointer goes (by-reference copies, the x8 result address); run again,
//! the program loads each image, replaces the tags by its own argument and result memory, calls the
//! function through the stub bytes from `generic_call::stub_bytes(Aarch64)` and reads the
//! result registers back per the plan, then compares the result's hash with the direct
//! C call.
//!
//! Needs `aarch64-linux-gnu-gcc` and `qemu-aarch64`; fails, never skips, without them.

mod abi_common;

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use abi_common::{generate, Func, Val};
use jitffi::abi::regfile::{offsets, RegFile};
use jitffi::abi::{ArgPass, Loc, RetPass};
use jitffi::jit::generic_call::{prepare, stack_bytes, stub_bytes};
use jitffi::types::target::{Arch, Target};

const CC: &str = "aarch64-linux-gnu-gcc";
const QEMU: &str = "qemu-aarch64";
const SYSROOT: &str = "/usr/aarch64-linux-gnu";
const SEEDS: u64 = 2;
const TAG: u64 = 0x5eed_0000_0000_0000;
const RET_TAG: u64 = TAG | 0xffff;

fn require_tool(name: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is missing: the aarch64 tests need the cross toolchain and qemu"
    );
}

fn val_c(v: &Val) -> String {
    match v {
        Val::S(s) => s.c_name().to_string(),
        Val::Rec(k) => format!("t{k}"),
    }
}

fn build(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    std::fs::write(&c, src).unwrap();
    let out = Command::new(CC)
        .args(["-O0", "-w", "-static", "-o"])
        .arg(&exe)
        .arg(&c)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{CC} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

fn run(exe: &Path, args: &[&str]) -> String {
    let run = Command::new(QEMU)
        .args(["-L", SYSROOT])
        .arg(exe)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{exe:?} under qemu failed ({:?}):\n{}\n{}",
        run.status,
        stdout.lines().take(40).collect::<Vec<_>>().join("\n"),
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}

fn decls(f: &Func) -> (String, String) {
    let d: String = f
        .args
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{t} *a{i} = slot({i}, sizeof({t})); ", t = val_c(a)))
        .collect();
    let ptrs: Vec<String> = (0..f.args.len()).map(|i| format!("a{i}")).collect();
    let parr = if ptrs.is_empty() {
        "0".to_string()
    } else {
        ptrs.join(", ")
    };
    (d, parr)
}

const SLOT_C: &str = "#include <stdio.h>\n#include <stdint.h>\n#include <string.h>\n#include <sys/mman.h>\n\
static unsigned char *guard_base;\n\
static void *slot(int i, size_t size) { if (!size) size = 1;\n\
  if (!guard_base) { guard_base = mmap(0, 64 * 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n\
    for (int k = 0; k < 32; k++) mprotect(guard_base + (2 * k + 1) * 8192, 8192, PROT_NONE); }\n\
  unsigned char *p = guard_base + (2 * i + 1) * 8192 - size; memset(p, 0xa5, size); return p; }\n";

/// One program for both phases (so that addresses of static data in argument values, such
/// as a variadic call's format string, are the same in both): `prog dump` prints the
/// argument bytes of every function and seed; `prog run FILE` runs the images in FILE.
/// A FILE line: function, seed, 8 gprs, x8, the 128 vector bytes in hex, stack bytes,
/// the stack words, then the result parts (offset, size, 0 = gpr / 1 = vector, index).
fn program(lib: &abi_common::Library) -> String {
    let mut c = String::from(SLOT_C);
    c.push_str("#include <stdlib.h>\n");
    c.push_str(&lib.c_source);
    let _ = writeln!(
        c,
        "struct rf {{ uint64_t gpr[8]; unsigned char vec[8][16]; uint64_t x8, al, target, stack, stack_size, ret_gpr[2]; unsigned char ret_vec[4][16]; unsigned char x87[16]; uint64_t ret_x87, x87_result; }};\n\
         _Static_assert(sizeof(struct rf) == {}, \"RegFile size\");\n\
         _Static_assert(__builtin_offsetof(struct rf, x8) == {} && __builtin_offsetof(struct rf, ret_vec) == {} && __builtin_offsetof(struct rf, stack_size) == {}, \"RegFile offsets\");",
        std::mem::size_of::<RegFile>(),
        offsets::X8,
        offsets::RET_VEC,
        offsets::STACK_SIZE
    );
    let _ = writeln!(
        c,
        "static const unsigned char stub_code[] = {{{}}};\n\
         static void (*stub)(struct rf *);\n\
         static FILE *in;\n\
         static uint64_t fix(uint64_t w, void **p, void *ret) {{ if ((w & ~0xffffull) != {TAG}ull) return w; \
           return (w & 0xffff) == 0xffff ? (uint64_t)ret : (uint64_t)p[w & 0xffff]; }}\n\
         static void dump(int f, int s, int i, const unsigned char *p, int n) {{ printf(\"%d %d %d \", f, s, i); for (int k = 0; k < n; k++) printf(\"%02x\", p[k]); printf(\"\\n\"); }}\n\
         /* The rest of the current line: the image, run, then the result parts. */\n\
         static void run(void *callee, void **p, unsigned char *ret) {{\n\
           struct rf r; memset(&r, 0, sizeof r); unsigned long long w; int ns;\n\
           for (int k = 0; k < 8; k++) {{ fscanf(in, \"%llu\", &w); r.gpr[k] = fix(w, p, ret); }}\n\
           fscanf(in, \"%llu\", &w); r.x8 = fix(w, p, ret);\n\
           for (int k = 0; k < 128; k++) {{ unsigned x; fscanf(in, \"%2x\", &x); ((unsigned char *)r.vec)[k] = x; }}\n\
           fscanf(in, \"%d\", &ns); uint64_t stk[ns / 8 + 2];\n\
           for (int k = 0; k < ns / 8; k++) {{ fscanf(in, \"%llu\", &w); stk[k] = fix(w, p, ret); }}\n\
           r.target = (uint64_t)callee; r.stack = (uint64_t)stk; r.stack_size = ns;\n\
           stub(&r);\n\
           int np; fscanf(in, \"%d\", &np);\n\
           for (int k = 0; k < np; k++) {{ int off, size, kind, idx; fscanf(in, \"%d %d %d %d\", &off, &size, &kind, &idx);\n\
             memcpy(ret + off, kind ? (unsigned char *)r.ret_vec[idx] : (unsigned char *)&r.ret_gpr[idx], size); }}\n\
         }}",
        c_bytes(&stub_bytes(Arch::Aarch64))
    );
    c.push_str("static int one(int fi, uint64_t seed, int dumping) { switch (fi) {\n");
    for (fi, f) in lib.funcs.iter().enumerate() {
        let (d, parr) = decls(f);
        let rsize = f
            .ret
            .as_ref()
            .map_or("0".to_string(), |r| format!("sizeof({})", val_c(r)));
        let _ = write!(
            c,
            "case {fi}: {{ {d} void *p[] = {{{parr}}}; args_{n}(p, seed); if (dumping) {{",
            n = f.name
        );
        for (i, a) in f.plan.args.iter().enumerate() {
            let _ = write!(c, " dump({fi}, (int)seed, {i}, p[{i}], {});", a.size);
        }
        let _ = writeln!(
            c,
            " return 0; }} unsigned char *ret = slot(31, {rsize}); run((void *){callee}, p, ret); \
             if (rethash_{n}(ret) != check_{n}(seed)) {{ printf(\"FAIL {n} seed %d\\n\", (int)seed); return 1; }} return 0; }}",
            n = f.name,
            callee = f.callee
        );
    }
    c.push_str("} return 1; }\n");
    let _ = writeln!(
        c,
        "int main(int argc, char **argv) {{\n\
         if (argc == 2) {{ for (int fi = 0; fi < {nf}; fi++) for (uint64_t s = 1; s <= {SEEDS}; s++) one(fi, s, 1); return 0; }}\n\
         unsigned char *code = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n\
         memcpy(code, stub_code, sizeof stub_code); mprotect(code, 4096, PROT_READ | PROT_EXEC);\n\
         __builtin___clear_cache((char *)code, (char *)code + sizeof stub_code); stub = (void (*)(struct rf *))code;\n\
         in = fopen(argv[2], \"r\"); int fi, seed, bad = 0, calls = 0;\n\
         while (fscanf(in, \"%d %d\", &fi, &seed) == 2) {{ bad += one(fi, seed, 0); calls++; }}\n\
         printf(\"generic stub: %d calls, %d failures\\n\", calls, bad); return bad != 0; }}",
        nf = lib.funcs.len()
    );
    c
}

fn hex(b: &[u8]) -> Vec<u8> {
    (0..b.len() / 2)
        .map(|k| {
            u8::from_str_radix(std::str::from_utf8(&b[2 * k..2 * k + 2]).unwrap(), 16).unwrap()
        })
        .collect()
}

fn c_bytes(b: &[u8]) -> String {
    if b.is_empty() {
        return "0".into();
    }
    b.iter()
        .map(|x| format!("{x}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn generated_library_through_the_generic_stub_under_qemu() {
    require_tool(CC);
    require_tool(QEMU);
    let lib = generate(Target::AARCH64_LINUX, 0x05ee_dab1, 140, 340, 40);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("jitffi-generic-a64-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = build(&dir, "generic", &program(&lib));
    let dumped = run(&exe, &["dump"]);
    let mut argbytes = std::collections::HashMap::new();
    for line in dumped.lines() {
        let mut it = line.split(' ');
        let f: usize = it.next().unwrap().parse().unwrap();
        let s: u64 = it.next().unwrap().parse().unwrap();
        let i: usize = it.next().unwrap().parse().unwrap();
        argbytes.insert((f, s, i), hex(it.next().unwrap_or("").as_bytes()));
    }
    // The images from `prepare`.
    let mut images = String::new();
    for (fi, f) in lib.funcs.iter().enumerate() {
        let plan = &f.plan;
        for seed in 1..=SEEDS {
            let bufs: Vec<Vec<u8>> = (0..plan.args.len())
                .map(|i| argbytes[&(fi, seed, i)].clone())
                .collect();
            let ptrs: Vec<*const u8> = plan
                .args
                .iter()
                .zip(&bufs)
                .enumerate()
                .map(|(i, (a, b))| match a.pass {
                    ArgPass::ByRef { .. } => (TAG | i as u64) as *const u8,
                    ArgPass::Parts(_) => b.as_ptr(),
                })
                .collect();
            let mut rf = RegFile::default();
            let mut stack = vec![0u8; stack_bytes(plan)];
            unsafe { prepare(plan, 0, &ptrs, RET_TAG as *mut u8, &mut rf, &mut stack) }.unwrap();
            let _ = write!(images, "{fi} {seed}");
            for g in rf.gpr {
                let _ = write!(images, " {g}");
            }
            let _ = write!(images, " {} ", rf.x8);
            for b in rf.vec.iter().flatten() {
                let _ = write!(images, "{b:02x}");
            }
            let _ = write!(images, " {}", stack.len());
            for w in stack.chunks(8) {
                let _ = write!(images, " {}", u64::from_le_bytes(w.try_into().unwrap()));
            }
            let parts: Vec<String> = match &plan.ret {
                RetPass::Parts(ps) => ps
                    .iter()
                    .map(|p| match p.loc {
                        Loc::Gpr(k) => format!("{} {} 0 {k}", p.offset, p.size),
                        Loc::Vec(k) => format!("{} {} 1 {k}", p.offset, p.size),
                        Loc::Stack(_) => panic!("a result on the stack"),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let _ = writeln!(images, " {} {}", parts.len(), parts.join(" "));
        }
    }
    let img = dir.join("images.txt");
    std::fs::write(&img, images).unwrap();
    let out = run(&exe, &["run", img.to_str().unwrap()]);
    let count = |pred: &dyn Fn(&Func) -> bool| lib.funcs.iter().filter(|f| pred(f)).count();
    assert!(count(&|f| f.plan.ret == RetPass::Sret) > 0);
    assert!(
        count(&|f| f
            .plan
            .args
            .iter()
            .any(|a| matches!(a.pass, ArgPass::ByRef { .. })))
            > 0
    );
    assert!(count(&|f| f.plan.stack_size > 0) > 0);
    assert!(count(&|f| f.variadic) > 0);
    eprintln!("{}", out.lines().last().unwrap_or(""));
    assert!(
        out.contains(&format!(
            "generic stub: {} calls, 0 failures",
            lib.funcs.len() as u64 * SEEDS
        )),
        "{out}"
    );
}

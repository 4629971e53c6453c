//! The aarch64 generic callback thunk (`jit::generic_thunk::code(Arch::Aarch64, ..)`), run
//! under qemu on this x86_64 machine: the generated ABI library (`abi_common`) for aarch64
//! calls back every function of it through the production entry stub
//! (`entry_pool::stub_code_aarch64`, for the closure register `thunk_layout` picks) in
//! front of the thunk's entry for that register. The thunk's dispatcher is C here: it
//! follows a table made from each function's aarch64 plan (where every argument part
//! lives in the register file or the incoming stack, where the result parts go, results
//! in memory through x8), lets `impl_fN` compute the result, and leaves it in the
//! register file for the thunk to return. A callback is right when `via_fN` (a call
//! through the pointer) hashes like `check_fN` (a direct call).
//!
//! Needs `aarch64-linux-gnu-gcc` and `qemu-aarch64`; fails, never skips, without them.
#![cfg(target_arch = "x86_64")]

mod abi_common;

use std::fmt::Write;
use std::process::Command;

use abi_common::generate;
use jitffi::abi::regfile::offsets;
use jitffi::abi::{ArgPass, Loc, RetPass};
use jitffi::jit::callback_thunk::thunk_layout;
use jitffi::jit::entry_pool::{stub_code_aarch64, ClosureReg};
use jitffi::jit::generic_thunk::{code, entry_index};
use jitffi::types::target::{Arch, Target};

const PAGE: usize = 4096;

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("0x{x:02x}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `{kind, idx, size, dst}`: kind 0 gpr, 1 vec, 2 stack offset, 3 pointer in gpr,
/// 4 pointer on the stack.
fn op_of(loc: Loc, by_ref: bool, size: u32, dst: u32) -> String {
    let (kind, idx) = match (loc, by_ref) {
        (Loc::Gpr(n), false) => (0, n as u32),
        (Loc::Vec(n), false) => (1, n as u32),
        (Loc::Stack(o), false) => (2, o),
        (Loc::Gpr(n), true) => (3, n as u32),
        (Loc::Stack(o), true) => (4, o),
        (Loc::Vec(_), true) => panic!("a by-reference pointer in a vector register"),
    };
    format!("{{{kind},{idx},{size},{dst}}}")
}

#[test]
fn generated_library_called_back_through_the_aarch64_generic_thunk() {
    let lib = generate(Target::AARCH64_LINUX, 0x0a64_9e7e, 120, 260, 0);
    let g = code(Arch::Aarch64, 0);
    let lit = g
        .literal
        .expect("aarch64 loads the dispatcher from a literal");
    let mut c = lib.c_source.clone();
    let _ = writeln!(
        c,
        r#"
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
struct regfile {{ uint64_t gpr[8]; uint8_t vec[8][16]; uint64_t x8, al, target, stack, stack_size;
                 uint64_t ret_gpr[2]; uint8_t ret_vec[4][16]; uint8_t x87[16]; uint64_t ret_x87, x87_result; }};
_Static_assert(offsetof(struct regfile, vec) == {vec}, "vec");
_Static_assert(offsetof(struct regfile, x8) == {x8}, "x8");
_Static_assert(offsetof(struct regfile, stack) == {stack}, "stack");
_Static_assert(offsetof(struct regfile, ret_gpr) == {ret_gpr}, "ret_gpr");
_Static_assert(offsetof(struct regfile, ret_vec) == {ret_vec}, "ret_vec");
struct op {{ int kind, idx, size, dst; }};
struct prog {{ void (*impl)(void **, void *); int nargs; int arg_off[40]; int nops; struct op ops[80];
              int ret_kind; int nret; struct op rops[4]; int calls; }};
static void gdispatch(struct prog *p, struct regfile *rf) {{
    static __thread unsigned char args[4096] __attribute__((aligned(16)));
    unsigned char res[512] __attribute__((aligned(16)));
    memset(args, 0, sizeof args); memset(res, 0, sizeof res);
    p->calls++;
    for (int i = 0; i < p->nops; i++) {{
        struct op o = p->ops[i];
        unsigned char *st = (unsigned char *)rf->stack;
        const unsigned char *src =
            o.kind == 0 ? (const unsigned char *)&rf->gpr[o.idx] :
            o.kind == 1 ? rf->vec[o.idx] :
            o.kind == 2 ? st + o.idx :
            o.kind == 3 ? *(unsigned char **)&rf->gpr[o.idx] :
                          *(unsigned char **)(st + o.idx);
        memcpy(args + o.dst, src, o.size);
    }}
    void *argv[40];
    for (int i = 0; i < p->nargs; i++) argv[i] = args + p->arg_off[i];
    void *rp = p->ret_kind == 2 ? (void *)rf->x8 : (void *)res;
    p->impl(argv, rp);
    if (p->ret_kind == 1)
        for (int i = 0; i < p->nret; i++) {{
            struct op o = p->rops[i];
            unsigned char *d = o.kind == 0 ? (unsigned char *)&rf->ret_gpr[o.idx] : rf->ret_vec[o.idx];
            memset(d, 0, o.kind == 0 ? 8 : 16);
            memcpy(d, res + o.dst, o.size);
        }}
}}
static const unsigned char g_thunk[] = {{{thunk}}};
"#,
        vec = offsets::VEC,
        x8 = offsets::X8,
        stack = offsets::STACK,
        ret_gpr = offsets::RET_GPR,
        ret_vec = offsets::RET_VEC,
        thunk = hex(&g.bytes),
    );
    // One table entry, stub and entry offset per function.
    let mut progs = String::new();
    let mut table = String::new();
    let mut stubs: Vec<String> = Vec::new();
    let mut count = 0;
    let mut places = [0usize; 3];
    for f in lib.funcs.iter().filter(|f| !f.variadic) {
        let n = &f.name;
        let layout = thunk_layout(&f.plan).unwrap();
        let mut ops = Vec::new();
        for (a, &off) in f.plan.args.iter().zip(&layout.arg_offsets) {
            match &a.pass {
                ArgPass::Parts(parts) => {
                    for p in parts {
                        ops.push(op_of(p.loc, false, p.size, off + p.offset));
                    }
                }
                ArgPass::ByRef { ptr, size, .. } => ops.push(op_of(*ptr, true, *size, off)),
            }
        }
        let (ret_kind, rops) = match &f.plan.ret {
            RetPass::Void => (0, Vec::new()),
            RetPass::Parts(parts) => (
                1,
                parts
                    .iter()
                    .map(|p| op_of(p.loc, false, p.size, p.offset))
                    .collect(),
            ),
            RetPass::Sret => (2, Vec::new()),
            RetPass::X87 => panic!("no x87 on aarch64"),
        };
        assert!(ops.len() <= 80 && f.plan.args.len() <= 40 && layout.args_size <= 4096);
        let offs: Vec<String> = layout.arg_offsets.iter().map(|o| o.to_string()).collect();
        let _ = writeln!(
            progs,
            "static struct prog p_{n} = {{impl_{n}, {}, {{{}}}, {}, {{{}}}, {ret_kind}, {}, {{{}}}, 0}};",
            f.plan.args.len(),
            if offs.is_empty() { "0".into() } else { offs.join(",") },
            ops.len(),
            if ops.is_empty() { "{0}".into() } else { ops.join(",") },
            rops.len(),
            if rops.is_empty() { "{0}".into() } else { rops.join(",") },
        );
        let _ = writeln!(
            table,
            "{{\"{n}\", &p_{n}, via_{n}, check_{n}, {}, {}}},",
            stubs.len(),
            g.entries[entry_index(Arch::Aarch64, layout.closure_reg)]
        );
        places[match layout.closure_reg {
            ClosureReg::Int(_) => 0,
            ClosureReg::Float(_) => 1,
            ClosureReg::Stack => 2,
        }] += 1;
        stubs.push(hex(&stub_code_aarch64(layout.closure_reg, PAGE)));
        count += 1;
    }
    c.push_str(&progs);
    let _ = writeln!(
        c,
        "struct fn {{ const char *name; struct prog *p; uint64_t (*via)(void *, uint64_t); uint64_t (*check)(uint64_t); int stub; int entry; }};"
    );
    let _ = writeln!(c, "static const struct fn g_fns[] = {{\n{table}}};");
    let _ = writeln!(c, "static const unsigned char g_stubs[][32] = {{");
    for s in &stubs {
        let _ = writeln!(c, "{{{s}}},");
    }
    let _ = writeln!(
        c,
        r#"}};
int main(void) {{
    unsigned char *code = mmap(0, 4 * {PAGE}, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(code, g_thunk, sizeof g_thunk);
    uint64_t d = (uint64_t)gdispatch; memcpy(code + {lit}, &d, 8);
    __builtin___clear_cache((char *)code, (char *)code + sizeof g_thunk);
    mprotect(code, 4 * {PAGE}, PROT_READ | PROT_EXEC);
    int n = sizeof g_fns / sizeof g_fns[0], failures = 0, runs = 0;
    for (int k = 0; k < n; k++) {{
        const struct fn *f = &g_fns[k];
        /* The pool's layout: the stub on a code page, its data slot one page on. */
        unsigned char *pg = mmap(0, 2 * {PAGE}, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        memcpy(pg, g_stubs[f->stub], 32);
        uint64_t *data = (uint64_t *)(pg + {PAGE});
        data[0] = (uint64_t)f->p; data[1] = (uint64_t)(code + f->entry);
        __builtin___clear_cache((char *)pg, (char *)pg + 32);
        mprotect(pg, {PAGE}, PROT_READ | PROT_EXEC);
        for (uint64_t seed = 1; seed <= 3; seed++) {{
            uint64_t got = f->via(pg, seed), want = f->check(seed);
            runs++;
            if (got != want) {{ failures++; if (failures < 20) printf("FAIL %s seed %lu: %lx != %lx\n", f->name, (unsigned long)seed, (unsigned long)got, (unsigned long)want); }}
        }}
        if (f->p->calls != 3) {{ failures++; printf("FAIL %s: %d dispatches\n", f->name, f->p->calls); }}
    }}
    printf("runs %d failures %d\n", runs, failures);
    return failures != 0;
}}"#
    );
    let dir = std::env::temp_dir().join(format!("jitffi-a64-generic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("h.c");
    std::fs::write(&src, &c).unwrap();
    let exe = dir.join("h");
    let out = Command::new("aarch64-linux-gnu-gcc")
        .args(["-O1", "-w", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("aarch64-linux-gnu-gcc (CI installs gcc-aarch64-linux-gnu)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("qemu-aarch64")
        .args(["-L", "/usr/aarch64-linux-gnu"])
        .arg(&exe)
        .output()
        .expect("qemu-aarch64 (CI installs qemu-user)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{count} functions, closure in int/float/stack: {places:?}; {stdout}");
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some(format!("runs {} failures 0", 3 * count).as_str())
    );
    assert!(
        places[0] > 0 && places[1] > 0,
        "closure places covered: {places:?}"
    );
}

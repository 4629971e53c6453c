//! aarch64 AAPCS64, verified on this x86_64 machine: the generated library of
//! `abi_x86_64_calls` lowered for aarch64 by `abi::lower`, compiled by Cranelift's arm64
//! backend into an ELF object (`cranelift-object`), linked with the C library and a C
//! harness by Debian's cross compiler and run under `qemu-aarch64`. The harness compares
//! every call through generated code (`jcall_*`), and every C call of a generated thunk
//! (`jthunk_*`), with the direct C call.
//!
//! Needs `aarch64-linux-gnu-gcc` and `qemu-aarch64` (Debian: gcc-aarch64-linux-gnu
//! libc6-dev-arm64-cross qemu-user); fails, never skips, without them.

mod abi_common;

use std::fmt::Write;
use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;

use abi_common::{define_jcall, define_thunk, generate, Func, Library, Val};
use cranelift_codegen::isa::{self, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_module::default_libcall_names;
use cranelift_object::{ObjectBuilder, ObjectModule};
use jitffi::types::target::Target;

const CC: &str = "aarch64-linux-gnu-gcc";
const QEMU: &str = "qemu-aarch64";
const SYSROOT: &str = "/usr/aarch64-linux-gnu";

fn require_tool(name: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is missing: the aarch64 ABI tests need the cross toolchain and qemu \
         (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"
    );
}

fn workdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("jitffi-abi-a64-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn aarch64_isa() -> OwnedTargetIsa {
    let mut fb = settings::builder();
    fb.set(
        "opt_level",
        &std::env::var("JITFFI_TEST_OPT").unwrap_or("none".into()),
    )
    .unwrap();
    fb.set("is_pic", "false").unwrap();
    fb.set("enable_verifier", "true").unwrap();
    let triple = target_lexicon::Triple::from_str("aarch64-unknown-linux-gnu").unwrap();
    isa::lookup(triple)
        .unwrap()
        .finish(settings::Flags::new(fb))
        .unwrap()
}

fn val_c(v: &Val) -> String {
    match v {
        Val::S(s) => s.c_name().to_string(),
        Val::Rec(k) => format!("t{k}"),
    }
}

/// The C harness: per function, three seeds, call and callback compared with `check_*`.
fn harness(lib: &Library, thunks: &[bool]) -> String {
    let mut c = String::from("#include <stdio.h>\n#include <stdint.h>\n#include <sys/mman.h>\n");
    c.push_str(&lib.c_source);
    // Argument and result memory for the generated calls ends right before an
    // inaccessible page: reading or writing past the end of a value faults.
    c.push_str(
        "static unsigned char *guard_base;\n\
         static void *slot(int i, size_t size) { if (!size) size = 1;\n\
           if (!guard_base) { guard_base = mmap(0, 64 * 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n\
             for (int k = 0; k < 32; k++) mprotect(guard_base + (2 * k + 1) * 8192, 8192, PROT_NONE); }\n\
           unsigned char *p = guard_base + (2 * i + 1) * 8192 - size; memset(p, 0xa5, size); return p; }\n",
    );
    for (f, has_thunk) in lib.funcs.iter().zip(thunks) {
        let n = &f.name;
        let _ = writeln!(c, "void jcall_{n}(void *, void **, void *);");
        if *has_thunk {
            let _ = writeln!(c, "void jthunk_{n}(void);");
        }
        let decls: String = f
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{t} *a{i} = slot({i}, sizeof({t})); ", t = val_c(a)))
            .collect();
        let ptrs: Vec<String> = (0..f.args.len()).map(|i| format!("a{i}")).collect();
        let rsize = f
            .ret
            .as_ref()
            .map_or("0".to_string(), |r| format!("sizeof({})", val_c(r)));
        let parr = if ptrs.is_empty() {
            "0".to_string()
        } else {
            ptrs.join(", ")
        };
        let _ = writeln!(
            c,
            "static int test_{n}(int *ncb) {{ int bad = 0; for (uint64_t seed = 1; seed <= 3; seed++) {{ {decls}\
             void *p[] = {{{parr}}}; args_{n}(p, seed); unsigned char *ret = slot(31, {rsize}); \
             jcall_{n}((void *){callee}, p, ret); uint64_t want = check_{n}(seed); \
             if (rethash_{n}(ret) != want) {{ printf(\"FAIL call {n} seed %d\\n\", (int)seed); bad++; }}",
            callee = f.callee
        );
        if *has_thunk {
            let _ = writeln!(
                c,
                "if (via_{n}((void *)jthunk_{n}, seed) != want) {{ printf(\"FAIL callback {n} seed %d\\n\", (int)seed); bad++; }} (*ncb)++;"
            );
        }
        let _ = writeln!(c, "}} return bad; }}");
    }
    let _ = writeln!(c, "int main(void) {{ int bad = 0, ncb = 0;");
    for f in &lib.funcs {
        let _ = writeln!(c, "bad += test_{}(&ncb);", f.name);
    }
    let _ = writeln!(
        c,
        "printf(\"aarch64: %d functions, %d calls, %d callbacks, %d failures\\n\", {}, {} * 3, ncb, bad); return bad != 0; }}",
        lib.funcs.len(),
        lib.funcs.len()
    );
    c
}

fn build_object(lib: &Library) -> (Vec<u8>, Vec<bool>) {
    let isa = aarch64_isa();
    let mut m = ObjectModule::new(
        ObjectBuilder::new(isa.clone(), "jitffi_abi", default_libcall_names()).unwrap(),
    );
    let mut thunks = Vec::new();
    for f in &lib.funcs {
        assert!(f.plan.stub.is_none(), "{}: aarch64 needs no stubs", f.name);
        define_jcall(&mut m, &isa, &format!("jcall_{}", f.name), &f.plan, None);
        let has = !f.variadic;
        if has {
            define_thunk(
                &mut m,
                &isa,
                &format!("jthunk_{}", f.name),
                &f.plan,
                &format!("impl_{}", f.name),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", f.name));
        }
        thunks.push(has);
    }
    (m.finish().emit().unwrap(), thunks)
}

fn count(lib: &Library, pred: impl Fn(&Func) -> bool) -> usize {
    lib.funcs.iter().filter(|f| pred(f)).count()
}

#[test]
fn generated_library_under_qemu() {
    require_tool(CC);
    require_tool(QEMU);
    let lib = generate(Target::AARCH64_LINUX, 0x05ee_dab1, 140, 340, 40);
    assert!(count(&lib, |f| !f.variadic) >= 300);
    let (obj, thunks) = build_object(&lib);
    let dir = workdir();
    std::fs::write(dir.join("jit.o"), obj).unwrap();
    std::fs::write(dir.join("harness.c"), harness(&lib, &thunks)).unwrap();
    let exe = dir.join("harness");
    let out = Command::new(CC)
        .args(["-O1", "-w", "-static", "-o"])
        .arg(&exe)
        .arg(dir.join("harness.c"))
        .arg(dir.join("jit.o"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{CC} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(QEMU)
        .args(["-L", SYSROOT])
        .arg(&exe)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    eprintln!(
        "{}\nsret results {}, by-reference arguments in {} functions, HFA-in-v-register arguments in {} functions",
        stdout.lines().last().unwrap_or(""),
        count(&lib, |f| f.plan.ret == jitffi::abi::RetPass::Sret),
        count(&lib, |f| f.plan.args.iter().any(|a| matches!(a.pass, jitffi::abi::ArgPass::ByRef { .. }))),
        count(&lib, |f| f.plan.args.iter().any(|a| matches!(&a.pass, jitffi::abi::ArgPass::Parts(ps) if ps.len() > 1 && ps.iter().all(|p| matches!(p.loc, jitffi::abi::Loc::Vec(_)))))),
    );
    assert!(
        run.status.success(),
        "harness under qemu failed ({:?}):\n{}\n{}",
        run.status,
        stdout.lines().take(40).collect::<Vec<_>>().join("\n"),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains(", 0 failures"), "{stdout}");
}

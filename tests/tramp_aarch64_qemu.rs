//! The call trampolines and callback thunks on aarch64, run under qemu on this x86_64
//! machine (open issue: they were only ever compiled for the host).
//!
//! The real code generators (`jit::trampoline::build`, `jit::callback_thunk::build_thunk`)
//! emit aarch64 code through Cranelift's arm64 backend into ELF objects (one per ISA
//! configuration: production's `opt_level=speed`, and the `fast-compile` setting
//! `opt_level=none` + single-pass register allocation), with every helper, C-API function
//! and type object an imported symbol instead of a baked-in address. The shapes come from
//! the production mapping of C types (`py::function::arg_shape`/`ret_shape`) and the
//! aarch64 ABI lowering. `tests/tramp_aarch64/harness.c` links them with a fake of exactly
//! the CPython surface the trampolines touch (object header, 3.11 small-int layout,
//! float, bytes, list, cdata and ctype objects, the C-API calls and the Rust helpers with
//! their contracts) and with real C target functions, calls every trampoline with
//! arguments hitting each inline fast path and each fallback, checks results, errors,
//! helper call counts (a fast path must not call the converter), temporaries, reference
//! counts and GIL/errno handling, then calls the thunks through the production entry
//! stubs (`entry_pool::stub_code_aarch64`) placed on a code page with a data page behind
//! it, as the pool does.
//!
//! Needs `aarch64-linux-gnu-gcc` and `qemu-aarch64` (Debian: gcc-aarch64-linux-gnu
//! libc6-dev-arm64-cross qemu-user); fails, never skips, without them.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use cranelift_codegen::ir::immediates::Imm64;
use cranelift_codegen::ir::{
    ExternalName, GlobalValueData, InstBuilder, Signature, Type, UserExternalName, Value,
};
use cranelift_codegen::isa::{self, OwnedTargetIsa};
use cranelift_codegen::Context;
use cranelift_frontend::FunctionBuilder;
use cranelift_module::{default_libcall_names, DataId, FuncId, Linkage, Module};
use cranelift_object::{ObjectBuilder, ObjectModule};

use jitffi::abi::test_layout::{field, record};
use jitffi::abi::{lower, RetPass};
use jitffi::jit::builtins::{Builtin, Builtins};
use jitffi::jit::callback_thunk::build_thunk;
use jitffi::jit::entry_pool::{stub_code_aarch64, ClosureReg};
use jitffi::jit::isa::{flags, OptLevel};
use jitffi::jit::trampoline::{self, ArgShape, Extern, Fallback, Inline, Runtime, Scalar, Shape};
use jitffi::py::function::layout::object_layout;
use jitffi::py::function::{arg_shape, ret_shape};
use jitffi::types::model::{Kind, Prim, TypeRef, TypeTable};
use jitffi::types::target::Target;

const CC: &str = "aarch64-linux-gnu-gcc";
const QEMU: &str = "qemu-aarch64";
const SYSROOT: &str = "/usr/aarch64-linux-gnu";
const PAGE: usize = 4096;

fn require_tool(name: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is missing: the aarch64 trampoline tests need the cross toolchain and qemu \
         (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"
    );
}

/// A symbol the linker resolves: how the object-file trampolines reach the fake runtime.
#[derive(Clone, Copy, Debug)]
enum Sym {
    Func(FuncId),
    Data(DataId),
}

impl Extern for Sym {
    fn address(self, b: &mut FunctionBuilder, ty: Type) -> Value {
        // cranelift-module's convention: namespace 0 names functions, 1 data objects.
        let (namespace, index) = match self {
            Sym::Func(f) => (0, f.as_u32()),
            Sym::Data(d) => (1, d.as_u32()),
        };
        let name = b
            .func
            .declare_imported_user_function(UserExternalName::new(namespace, index));
        let gv = b.create_global_value(GlobalValueData::Symbol {
            name: ExternalName::user(name),
            offset: Imm64::new(0),
            colocated: false,
            tls: false,
        });
        b.ins().symbol_value(ty, gv)
    }
}

/// Layout of the fake objects (the C harness static-asserts each against its structs).
const TARGET_OFFSET: i32 = 16;
const ARG_CTYPES_OFFSET: i32 = 32;
const CDATA_CTYPE_OFFSET: i32 = 16;
const CDATA_ADDR_OFFSET: i32 = 24;

fn runtime(m: &mut ObjectModule) -> Runtime<Sym> {
    let sig = Signature::new(m.isa().default_call_conv());
    // The harness's symbol of every builtin: the Rust helpers as `jf_<name>`, the C-API
    // functions by their names.
    let fns = Builtins::from_fn(|b| {
        let name = match b {
            Builtin::long_from_i64 => "PyLong_FromLongLong".to_string(),
            Builtin::long_from_u64 => "PyLong_FromUnsignedLongLong".to_string(),
            Builtin::float_from_double => "PyFloat_FromDouble".to_string(),
            Builtin::bool_from_long => "PyBool_FromLong".to_string(),
            Builtin::memcpy => "memcpy".to_string(),
            b => format!("jf_{}", b.name()),
        };
        Sym::Func(m.declare_function(&name, Linkage::Import, &sig).unwrap())
    });
    let mut data =
        |name: &str| Sym::Data(m.declare_data(name, Linkage::Import, false, false).unwrap());
    Runtime {
        fns,
        // What production reads from CPython's headers; the fake has the same layout.
        objects: object_layout(),
        target_offset: TARGET_OFFSET,
        arg_ctypes_offset: ARG_CTYPES_OFFSET,
        long_type: data("PyLong_Type"),
        float_type: data("PyFloat_Type"),
        bytes_type: data("PyBytes_Type"),
        cdata_type: data("FakeCData_Type"),
        cdata_ctype_offset: CDATA_CTYPE_OFFSET,
        cdata_addr_offset: CDATA_ADDR_OFFSET,
        void_ptr_ctype: data("fake_void_ptr_ctype"),
        inline_small_ints: true,
    }
}

/// The C types the tests use: (spelling in C, kind constant of the harness).
const CTYPES: &[(&str, &str)] = &[
    ("signed char", "K_SCHAR"),
    ("unsigned char", "K_UCHAR"),
    ("short", "K_SHORT"),
    ("unsigned short", "K_USHORT"),
    ("int", "K_INT"),
    ("unsigned int", "K_UINT"),
    ("long", "K_LONG"),
    ("unsigned long", "K_ULONG"),
    ("float", "K_FLOAT"),
    ("double", "K_DOUBLE"),
    ("char", "K_CHAR"),
    ("_Bool", "K_BOOL"),
    ("long double", "K_LDOUBLE"),
    ("int *", "K_PINT"),
    ("unsigned char *", "K_PUCHAR"),
    ("char *", "K_PCHAR"),
    ("void *", "K_PVOID"),
    ("double *", "K_PDOUBLE"),
    ("long *", "K_PLONG"),
    ("int[4]", "K_AINT4"),
    ("intfn", "K_INTFN"),
    ("pt", "K_PT"),
    ("big", "K_BIG"),
    ("huge", "K_HUGE"),
    ("ldu", "K_LDU"),
    ("void", "K_VOID"),
];

fn kind_of(c: &str) -> &'static str {
    CTYPES
        .iter()
        .find(|(n, _)| *n == c)
        .unwrap_or_else(|| panic!("unknown C type {c}"))
        .1
}

struct Types {
    t: TypeTable,
}

impl Types {
    fn new() -> Types {
        Types {
            t: TypeTable::new(Target::AARCH64_LINUX),
        }
    }

    fn get(&mut self, c: &str) -> TypeRef {
        let t = &mut self.t;
        let prim = |t: &mut TypeTable, p| t.prim(p);
        match c {
            "signed char" => prim(t, Prim::SChar),
            "unsigned char" => prim(t, Prim::UChar),
            "short" => prim(t, Prim::Short),
            "unsigned short" => prim(t, Prim::UShort),
            "int" => prim(t, Prim::Int),
            "unsigned int" => prim(t, Prim::UInt),
            "long" => prim(t, Prim::Long),
            "unsigned long" => prim(t, Prim::ULong),
            "float" => prim(t, Prim::Float),
            "double" => prim(t, Prim::Double),
            "char" => prim(t, Prim::Char),
            "_Bool" => prim(t, Prim::Bool),
            "long double" => prim(t, Prim::LongDouble),
            "void" => t.void(),
            "int[4]" => {
                let i = self.get("int");
                self.t.array(&i, Some(4))
            }
            "intfn" => {
                let i = self.get("int");
                self.t.func_ptr(vec![i.clone()], &i, false)
            }
            "pt" => {
                let d = self.get("double");
                record(
                    &mut self.t,
                    "struct pt",
                    false,
                    false,
                    vec![field("x", &d), field("y", &d)],
                )
            }
            "big" => {
                let l = self.get("long");
                record(
                    &mut self.t,
                    "struct big",
                    false,
                    false,
                    vec![field("a", &l), field("b", &l), field("c", &l)],
                )
            }
            "huge" => {
                let l = self.get("long");
                let a = self.t.array(&l, Some(40));
                record(
                    &mut self.t,
                    "struct huge",
                    false,
                    false,
                    vec![field("v", &a)],
                )
            }
            // 16-byte aligned and not homogeneous: an even register pair on aarch64.
            "ldu" => {
                let (ld, l) = (self.get("long double"), self.get("long"));
                record(
                    &mut self.t,
                    "union ldu",
                    true,
                    false,
                    vec![field("ld", &ld), field("l", &l)],
                )
            }
            p if p.ends_with(" *") => {
                let item = self.get(&p[..p.len() - 2]);
                self.t.pointer(&item)
            }
            _ => panic!("unknown C type {c}"),
        }
    }
}

/// One trampoline under test: a C function `target` of the harness, called through the
/// trampoline of its shape (for a variadic target: with `varargs` as the variadic part).
struct Call {
    name: &'static str,
    target: &'static str,
    ret: &'static str,
    args: &'static [&'static str],
    varargs: &'static [&'static str],
    release_gil: bool,
}

const fn call(
    name: &'static str,
    ret: &'static str,
    args: &'static [&'static str],
    release_gil: bool,
) -> Call {
    Call {
        name,
        target: name,
        ret,
        args,
        varargs: &[],
        release_gil,
    }
}

const INTS9: &[&str] = &["int"; 9];

const CALLS: &[Call] = &[
    call("add_i", "int", &["int", "int"], false),
    call(
        "mix_ints",
        "long",
        &[
            "signed char",
            "unsigned char",
            "short",
            "unsigned short",
            "unsigned int",
            "long",
            "unsigned long",
        ],
        true,
    ),
    call("ret_schar", "signed char", &["int"], false),
    call("ret_uchar", "unsigned char", &["int"], false),
    call("ret_short", "short", &["int"], true),
    call("ret_ushort", "unsigned short", &["int"], false),
    call("ret_uint", "unsigned int", &["int"], false),
    call("ret_long", "long", &["long"], false),
    call("ret_ulong", "unsigned long", &["unsigned long"], true),
    call("is_pos", "_Bool", &["double"], false),
    call("halve", "float", &["float"], false),
    call("muladd", "double", &["double", "float", "double"], true),
    call("next_char", "char", &["char"], false),
    call("bool_to_int", "int", &["_Bool"], false),
    call("ld_twice", "long double", &["long double"], true),
    call("set_errno_to", "void", &["int"], true),
    call("get_errno", "int", &[], true),
    call("ret_const", "int", &[], false),
    call("sum_ints", "long", &["int *", "int"], false),
    call("sum_ints_nogil", "long", &["int *", "int"], true),
    call("sum_uchars", "long", &["unsigned char *", "int"], false),
    call("c_strlen", "unsigned long", &["char *"], true),
    call("ptr_id", "void *", &["void *"], false),
    call("sum_dbl", "double", &["double *", "int"], false),
    call("sum4", "long", &["int[4]"], false),
    call("call_fp", "int", &["intfn", "int"], true),
    call("two_lists", "long", &["int *", "int *"], false),
    call("pt_dot", "double", &["pt", "pt"], false),
    call("big_scale", "big", &["big", "long"], true),
    call("huge_sum", "long", &["huge", "int"], false),
    call("pt_make", "pt", &["double", "double"], false),
    call("gap_sum", "long", &["int", "ldu", "long"], true),
    Call {
        name: "vsum_ild",
        target: "vsum",
        ret: "long",
        args: &["char *"],
        varargs: &["int", "long", "double"],
        release_gil: false,
    },
    Call {
        name: "vsum_dd",
        target: "vsum",
        ret: "long",
        args: &["char *"],
        varargs: &["double", "double"],
        release_gil: true,
    },
    call(
        "many",
        "double",
        &[
            "int",
            "int",
            "int",
            "int",
            "int",
            "int",
            "int",
            "int",
            "int",
            "double",
            "double",
            "double",
            "double",
            "double",
            "double",
            "double",
            "double",
            "double",
            "float",
            "pt",
            "unsigned char *",
        ],
        false,
    ),
    call("nine_ints", "long", INTS9, true),
];

/// One callback thunk under test: C calls a function of type `ret (*)(args)` (the entry
/// stub), the harness's dispatcher computes the result with `ref_<name>`.
struct Callback {
    name: &'static str,
    ret: &'static str,
    args: &'static [&'static str],
}

const CALLBACKS: &[Callback] = &[
    Callback {
        name: "cb_ints",
        ret: "long",
        args: &["int", "long", "signed char", "unsigned short"],
    },
    Callback {
        name: "cb_dbl",
        ret: "double",
        args: &["double", "float", "double"],
    },
    Callback {
        name: "cb_mixed",
        ret: "double",
        args: &["int", "double", "long", "float", "unsigned char"],
    },
    Callback {
        name: "cb_uchar",
        ret: "unsigned char",
        args: &["unsigned char", "short"],
    },
    Callback {
        name: "cb_pt",
        ret: "pt",
        args: &["pt", "double"],
    },
    Callback {
        name: "cb_big",
        ret: "big",
        args: &["big", "long"],
    },
    Callback {
        name: "cb_huge",
        ret: "long",
        args: &["huge", "int"],
    },
    Callback {
        name: "cb_void",
        ret: "void",
        args: &["int *", "int"],
    },
    // x1 skipped by the even-register rule: the closure takes that filler register.
    Callback {
        name: "cb_gap",
        ret: "long",
        args: &["int", "ldu", "long"],
    },
    Callback {
        name: "cb_8l",
        ret: "long",
        args: &["long"; 8],
    },
    Callback {
        name: "cb_regs_full",
        ret: "float",
        args: &[
            "float", "float", "float", "float", "float", "float", "float", "float", "long", "long",
            "long", "long", "long", "long", "long", "long",
        ],
    },
    Callback {
        name: "cb_stack",
        ret: "long",
        args: &[
            "long", "long", "long", "long", "long", "long", "long", "long", "long", "double",
            "double", "double", "double", "double", "double", "double", "double", "double",
        ],
    },
];

/// ISA configurations, as `jit::isa` sets them up for the host (with the verifier on).
const CONFIGS: &[(&str, OptLevel)] = &[
    ("speed", OptLevel::Speed),
    ("fast-compile", OptLevel::FastCompile),
];

fn aarch64_isa(opt: OptLevel) -> OwnedTargetIsa {
    let triple = target_lexicon::Triple::from_str("aarch64-unknown-linux-gnu").unwrap();
    isa::lookup(triple)
        .unwrap()
        .finish(flags(opt, true))
        .unwrap()
}

/// The scalar a variadic cdata argument of C type `c` travels as (promoted).
fn vararg_scalar(c: &str) -> Scalar {
    match c {
        "int" => Scalar::Int {
            size: 4,
            signed: true,
        },
        "long" => Scalar::Int {
            size: 8,
            signed: true,
        },
        "double" => Scalar::F64,
        _ => panic!("vararg {c}"),
    }
}

fn shape_of(ty: &mut Types, c: &Call) -> Shape {
    let mut shapes: Vec<ArgShape> = c
        .args
        .iter()
        .map(|a| arg_shape(&ty.get(a)).unwrap())
        .collect();
    shapes.extend(c.varargs.iter().map(|a| ArgShape::vararg(vararg_scalar(a))));
    let args: Vec<TypeRef> = c.args.iter().chain(c.varargs).map(|a| ty.get(a)).collect();
    let ret = ty.get(c.ret);
    let f = ty.t.func_ptr(args, &ret, !c.varargs.is_empty());
    let Kind::FuncPtr(sig) = &f.kind else {
        unreachable!()
    };
    let plan = lower(sig, &Target::AARCH64_LINUX).unwrap();
    Shape {
        args: shapes,
        ret: ret_shape(&ret).unwrap(),
        release_gil: c.release_gil,
        plan,
    }
}

/// Every inline path and fallback the calls exercise must be present (so a change in
/// the C-type mapping cannot silently drop coverage).
fn check_coverage(shapes: &[Shape]) {
    let args: Vec<(Inline, Fallback)> = shapes
        .iter()
        .flat_map(|s| s.args.iter().map(|a| (a.inline, a.fallback)))
        .collect();
    let has = |p: &dyn Fn(&(Inline, Fallback)) -> bool| args.iter().any(p);
    assert!(has(&|c| *c == (Inline::SmallInt, Fallback::Convert)));
    assert!(has(&|c| *c == (Inline::Float, Fallback::Convert)));
    assert!(has(&|c| *c == (Inline::None, Fallback::Convert)));
    assert!(has(&|c| *c == (Inline::None, Fallback::ConvertWithTemp)));
    assert!(has(&|c| *c == (Inline::CopyBytes, Fallback::Convert)));
    assert!(has(&|c| *c == (Inline::None, Fallback::Vararg)));
    assert!(has(&|c| matches!(
        c.0,
        Inline::Address {
            buffer: true,
            int_list: Some(_)
        }
    )));
    assert!(has(&|c| matches!(
        c.0,
        Inline::Address {
            buffer: true,
            int_list: None
        }
    )));
    assert!(has(&|c| matches!(
        c.0,
        Inline::Address {
            buffer: false,
            int_list: Some(_)
        }
    )));
    assert!(has(&|c| matches!(
        c.0,
        Inline::Address {
            buffer: false,
            int_list: None
        }
    )));
    assert!(shapes.iter().any(|s| s.plan.ret == RetPass::Sret));
    assert!(shapes.iter().any(|s| s.plan.stack_size > 0));
}

struct Built {
    objects: Vec<PathBuf>,
    header: String,
    shapes: usize,
}

fn build_all(dir: &Path) -> Built {
    let mut ty = Types::new();
    let shapes: Vec<Shape> = CALLS.iter().map(|c| shape_of(&mut ty, c)).collect();
    check_coverage(&shapes);
    let mut layouts = Vec::new();
    let mut objects = Vec::new();
    for (k, (cfg, opt)) in CONFIGS.iter().enumerate() {
        let isa = aarch64_isa(*opt);
        let mut m = ObjectModule::new(
            ObjectBuilder::new(
                isa.clone(),
                format!("jitffi_tramp_{k}"),
                default_libcall_names(),
            )
            .unwrap(),
        );
        let rt = runtime(&mut m);
        for (c, shape) in CALLS.iter().zip(&shapes) {
            assert!(shape.plan.stub.is_none(), "aarch64 plans need no stubs");
            let func = trampoline::build(shape, &rt, &*isa, None).unwrap();
            let id = m
                .declare_function(
                    &format!("t{k}_{}", c.name),
                    Linkage::Export,
                    &func.signature,
                )
                .unwrap();
            let mut ctx = Context::for_function(func);
            m.define_function(id, &mut ctx)
                .unwrap_or_else(|e| panic!("{cfg} {}: {e:?}", c.name));
        }
        let dispatch = m
            .declare_function(
                "jitffi_dispatch",
                Linkage::Import,
                &Signature::new(isa.default_call_conv()),
            )
            .unwrap();
        layouts.clear();
        for cb in CALLBACKS {
            let args: Vec<TypeRef> = cb.args.iter().map(|a| ty.get(a)).collect();
            let ret = ty.get(cb.ret);
            let f = ty.t.func_ptr(args, &ret, false);
            let Kind::FuncPtr(sig) = &f.kind else {
                unreachable!()
            };
            let plan = lower(sig, &Target::AARCH64_LINUX).unwrap();
            let (func, layout) = build_thunk(&plan, &*isa, Sym::Func(dispatch), None).unwrap();
            let id = m
                .declare_function(
                    &format!("cb{k}_{}", cb.name),
                    Linkage::Export,
                    &func.signature,
                )
                .unwrap();
            let mut ctx = Context::for_function(func);
            m.define_function(id, &mut ctx)
                .unwrap_or_else(|e| panic!("{cfg} {}: {e:?}", cb.name));
            layouts.push(layout);
        }
        let obj = dir.join(format!("jit{k}.o"));
        std::fs::write(&obj, m.finish().emit().unwrap()).unwrap();
        objects.push(obj);
    }
    let regs: BTreeSet<String> = layouts
        .iter()
        .map(|l| format!("{:?}", l.closure_reg))
        .collect();
    assert!(
        regs.len() >= 4,
        "closure registers of several kinds: {regs:?}"
    );
    assert!(layouts.iter().any(|l| l.closure_reg == ClosureReg::Stack));
    assert!(layouts
        .iter()
        .any(|l| matches!(l.closure_reg, ClosureReg::Float(_))));
    assert!(
        layouts.iter().any(|l| l.closure_reg == ClosureReg::Int(1)),
        "a filler register holds the closure"
    );

    // The generated header: layout constants, prototypes, descriptors, symbol tables.
    let mut h = String::new();
    let _ = writeln!(h, "/* generated by tests/tramp_aarch64_qemu.rs */");
    for (n, v) in [
        ("TARGET_OFFSET", TARGET_OFFSET),
        ("ARG_CTYPES_OFFSET", ARG_CTYPES_OFFSET),
        ("CDATA_CTYPE_OFFSET", CDATA_CTYPE_OFFSET),
        ("CDATA_ADDR_OFFSET", CDATA_ADDR_OFFSET),
        ("BYTES_DATA_OFFSET", object_layout().bytes_data),
        ("LIST_BUF", trampoline::LIST_BUF as i32),
        ("STUB_PAGE", PAGE as i32),
    ] {
        let _ = writeln!(h, "#define {n} {v}");
    }
    let _ = writeln!(
        h,
        "#define NCONFIG {}\n#define NCALLS {}\n#define NCB {}",
        CONFIGS.len(),
        CALLS.len(),
        CALLBACKS.len()
    );
    let cfg_names: Vec<String> = CONFIGS.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let _ = writeln!(
        h,
        "static const char *const config_names[NCONFIG] = {{{}}};",
        cfg_names.join(", ")
    );
    let mut seen = BTreeSet::new();
    let param = |a: &str| {
        if a == "int[4]" {
            "int[4]".to_string()
        } else {
            a.to_string()
        }
    };
    for c in CALLS {
        if seen.insert(c.target) {
            let mut ps: Vec<String> = c.args.iter().map(|a| param(a)).collect();
            if !c.varargs.is_empty() {
                ps.push("...".into());
            }
            let ps = if ps.is_empty() {
                "void".to_string()
            } else {
                ps.join(", ")
            };
            let _ = writeln!(h, "{} {}({ps});", c.ret, c.target);
        }
    }
    for k in 0..CONFIGS.len() {
        for c in CALLS {
            let _ = writeln!(
                h,
                "PyObject *t{k}_{}(PyObject *, PyObject *const *, Py_ssize_t);",
                c.name
            );
        }
        for cb in CALLBACKS {
            let _ = writeln!(h, "void cb{k}_{}(void);", cb.name);
        }
    }
    let _ = writeln!(h, "static const FuncDesc descs[NCALLS] = {{");
    for c in CALLS {
        let kinds: Vec<&str> = c.args.iter().chain(c.varargs).map(|a| kind_of(a)).collect();
        let _ = writeln!(
            h,
            "  {{\"{}\", (void *){}, {}, {}, {{{}}}, {}, {}}},",
            c.name,
            c.target,
            kinds.len(),
            c.args.len(),
            if kinds.is_empty() {
                "0".to_string()
            } else {
                kinds.join(", ")
            },
            kind_of(c.ret),
            c.release_gil as i32
        );
    }
    let _ = writeln!(h, "}};");
    let _ = writeln!(h, "static const TrampFn tramps[NCONFIG][NCALLS] = {{");
    for k in 0..CONFIGS.len() {
        let names: Vec<String> = CALLS.iter().map(|c| format!("t{k}_{}", c.name)).collect();
        let _ = writeln!(h, "  {{{}}},", names.join(", "));
    }
    let _ = writeln!(h, "}};");
    for (i, cb) in CALLBACKS.iter().enumerate() {
        let _ = writeln!(h, "#define CB_{} {i}", cb.name);
        let ps = cb.args.join(", ");
        let _ = writeln!(h, "typedef {} (*cbt_{})({ps});", cb.ret, cb.name);
        let _ = writeln!(h, "{} ref_{}({ps});", cb.ret, cb.name);
    }
    let _ = writeln!(h, "static const CbDesc cbdescs[NCB] = {{");
    for (cb, l) in CALLBACKS.iter().zip(&layouts) {
        let stub: Vec<String> = stub_code_aarch64(l.closure_reg, PAGE)
            .iter()
            .map(|b| format!("0x{b:02x}"))
            .collect();
        let offs: Vec<String> = l.arg_offsets.iter().map(|o| o.to_string()).collect();
        let _ = writeln!(
            h,
            "  {{\"{}\", {}, {{{}}}, {}, {}, \"{:?}\", {}, {{{}}}}},",
            cb.name,
            cb.args.len(),
            offs.join(", "),
            l.args_size,
            l.result_size,
            l.closure_reg,
            stub.len(),
            stub.join(", ")
        );
    }
    let _ = writeln!(h, "}};");
    let _ = writeln!(h, "static void *const thunks[NCONFIG][NCB] = {{");
    for k in 0..CONFIGS.len() {
        let names: Vec<String> = CALLBACKS
            .iter()
            .map(|cb| format!("(void *)cb{k}_{}", cb.name))
            .collect();
        let _ = writeln!(h, "  {{{}}},", names.join(", "));
    }
    let _ = writeln!(h, "}};");
    Built {
        objects,
        header: h,
        shapes: shapes.len(),
    }
}

fn harness_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("tramp_aarch64")
}

fn run(exe: &Path, arg: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(QEMU);
    cmd.args(["-L", SYSROOT]).arg(exe);
    if let Some(a) = arg {
        cmd.arg(a);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn trampolines_and_callback_thunks_under_qemu() {
    require_tool(CC);
    require_tool(QEMU);
    let dir = std::env::temp_dir().join(format!("jitffi-tramp-a64-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let built = build_all(&dir);
    std::fs::write(dir.join("gen.h"), &built.header).unwrap();
    let exe = dir.join("harness");
    let out = Command::new(CC)
        .args([
            "-O1",
            "-g",
            "-static",
            "-Wall",
            "-Wno-unused-function",
            "-I",
        ])
        .arg(&dir)
        .arg("-o")
        .arg(&exe)
        .arg(harness_dir().join("harness.c"))
        .args(&built.objects)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{CC} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (ok, text) = run(&exe, None);
    eprintln!(
        "{} trampoline shapes per ISA configuration\n{}",
        built.shapes,
        text.lines().last().unwrap_or("")
    );
    assert!(ok, "harness under qemu failed:\n{text}");
    let summary = text.lines().last().unwrap_or("");
    assert!(summary.contains(" 0 failures"), "{text}");
    // Every trampoline and thunk was called, in every configuration.
    let calls = number_before(summary, " calls");
    let callbacks = number_before(summary, " callbacks");
    // (the harness checks that each trampoline returned a result at least once per
    // configuration)
    assert!(calls >= 100 * CONFIGS.len(), "{summary}");
    assert!(
        callbacks >= 3 * CALLBACKS.len() * CONFIGS.len(),
        "{summary}"
    );

    // The checks can fail: a run with one deliberately wrong expectation must report it.
    let (ok, text) = run(&exe, Some("--wrong-expectation"));
    assert!(
        !ok && text.contains("FAIL") && text.contains(" 1 failures"),
        "a wrong expectation went unnoticed:\n{text}"
    );
}

fn number_before(s: &str, what: &str) -> usize {
    let end = s.find(what).unwrap_or_else(|| panic!("`{what}` in {s}"));
    let start = s[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    s[start..end].parse().unwrap()
}

//! Plans for types declared through the real cdef parser and layout (anonymous members,
//! unnamed and zero-width bitfields, `packed`, typedef'd arrays, enums), on both targets,
//! against hand-derived expectations.

use cranelift_codegen::ir::types::{F32, F64, I64, I8};
use jitffi::abi::{lower, ArgPass, CallPlan, Ext, Loc, Part, RetPass};
use jitffi::cdef::{CdefOptions, Namespace};
use jitffi::types::model::Kind;
use jitffi::types::target::Target;

const DECLS: &str = "
    struct anon { struct { float x, y; }; float z; };
    struct bits { int a : 3; int : 0; char c; };
    union un { struct { int i; float f; }; double d; };
    typedef float vec4[4];
    struct mat { vec4 r[2]; };
    enum e { A, B };
    struct en { enum e k; float f; };
    struct two { double d; long l; };
";

fn plan(target: Target, packed: bool, decls: &str, fty: &str) -> CallPlan {
    let mut ns = Namespace::new(target);
    ns.cdef(
        decls,
        &CdefOptions {
            packed,
            ..Default::default()
        },
    )
    .unwrap();
    let t = ns.parse_type(fty).unwrap();
    let Kind::FuncPtr(sig) = &t.kind else {
        panic!("{fty} is not a function pointer")
    };
    lower(sig, &target).unwrap()
}

fn p(offset: u32, size: u32, ty: cranelift_codegen::ir::Type, loc: Loc) -> Part {
    Part {
        offset,
        size,
        ty,
        loc,
        ext: Ext::None,
    }
}

fn parts(pl: &CallPlan, i: usize) -> Vec<Part> {
    match &pl.args[i].pass {
        ArgPass::Parts(ps) => ps.to_vec(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn x86_64_plans_of_parsed_types() {
    let t = Target::X86_64_LINUX;
    let pl = plan(
        t,
        false,
        DECLS,
        "struct anon(*)(struct anon, struct bits, union un, struct mat, struct en)",
    );
    assert_eq!(
        parts(&pl, 0),
        vec![p(0, 8, F64, Loc::Vec(0)), p(8, 4, F32, Loc::Vec(1))]
    );
    // `int :0` moves c to the next int unit: 8 bytes, one INTEGER eightbyte.
    assert_eq!(pl.args[1].size, 8);
    assert_eq!(parts(&pl, 1), vec![p(0, 8, I64, Loc::Gpr(0))]);
    assert_eq!(parts(&pl, 2), vec![p(0, 8, I64, Loc::Gpr(1))]);
    assert_eq!(parts(&pl, 3).len(), 4);
    assert!(parts(&pl, 3).iter().all(|x| matches!(x.loc, Loc::Stack(_))));
    assert_eq!(parts(&pl, 4), vec![p(0, 8, I64, Loc::Gpr(2))]);
    assert_eq!(
        pl.ret,
        RetPass::Parts(smallvec::smallvec![
            p(0, 8, F64, Loc::Vec(0)),
            p(8, 4, F32, Loc::Vec(1))
        ])
    );
    // packed: the double is unaligned, so memory class.
    let pl = plan(
        t,
        true,
        "struct pk { char c; double d; };",
        "struct pk(*)(struct pk)",
    );
    assert_eq!(
        parts(&pl, 0),
        vec![p(0, 8, I64, Loc::Stack(0)), p(8, 1, I8, Loc::Stack(8))]
    );
    assert_eq!(pl.ret, RetPass::Sret);
}

#[test]
fn aarch64_plans_of_parsed_types() {
    let t = Target::AARCH64_LINUX;
    let pl = plan(
        t,
        false,
        DECLS,
        "struct two(*)(struct anon, struct bits, union un, struct mat, struct en)",
    );
    assert_eq!(
        parts(&pl, 0),
        vec![
            p(0, 4, F32, Loc::Vec(0)),
            p(4, 4, F32, Loc::Vec(1)),
            p(8, 4, F32, Loc::Vec(2))
        ]
    );
    assert_eq!(parts(&pl, 1), vec![p(0, pl.args[1].size, I64, Loc::Gpr(0))]);
    assert_eq!(parts(&pl, 2), vec![p(0, 8, I64, Loc::Gpr(1))]);
    // 8 floats: too many members for an HFA, 32 bytes: by reference
    assert_eq!(
        pl.args[3].pass,
        ArgPass::ByRef {
            ptr: Loc::Gpr(2),
            size: 32,
            align: 4
        }
    );
    assert_eq!(parts(&pl, 4), vec![p(0, 8, I64, Loc::Gpr(3))]);
    assert_eq!(
        pl.ret,
        RetPass::Parts(smallvec::smallvec![
            p(0, 8, I64, Loc::Gpr(0)),
            p(8, 8, I64, Loc::Gpr(1))
        ])
    );
    // packed: 9 bytes in two x registers, the tail read as one byte.
    let pl = plan(
        t,
        true,
        "struct pk { char c; double d; };",
        "struct pk(*)(struct pk)",
    );
    assert_eq!(
        parts(&pl, 0),
        vec![p(0, 8, I64, Loc::Gpr(0)), p(8, 1, I8, Loc::Gpr(1))]
    );
}

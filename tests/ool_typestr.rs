//! Type strings against an out-of-line module give the types the in-line namespace
//! gives for the same declarations.

use std::sync::Arc;

use jitffi::cdef::{CdefOptions, Namespace};
use jitffi::ool::{self, Realizer};
use jitffi::types::target::Target;

const CDEF: &str = "
    struct point { int x; unsigned int flags : 3; double w; };
    union value { int i; float f; char bytes[8]; };
    enum color { RED, GREEN = 5, BLUE = -1 };
    typedef struct point point_t;
    typedef int (*callback_t)(struct point *, void *);
    typedef int fn_t(int, char);
    typedef struct { int a, b; } pair_t;
    typedef double vec3[3];
    #define N 4
    void move(struct point *p, int dx);
    FILE *f(void);
";

const TYPES: &[&str] = &[
    "int",
    "unsigned long long",
    "long int",
    "char *",
    "const char *",
    "int32_t",
    "size_t",
    "point_t",
    "point_t *",
    "struct point",
    "struct point[2]",
    "union value *",
    "enum color",
    "callback_t",
    "callback_t[3]",
    "int(*)[5]",
    "int(*)(int, ...)",
    "void(*)(void)",
    "int *[N]",
    "int[N][2]",
    "pair_t",
    "vec3",
    "vec3 *",
    "fn_t *",
    "void (*(*)(int))(long)",
    "double[]",
    "FILE *",
    "int * const *",
    "char(*)(int[3], fn_t)",
    "point_t x",
    "int (*name)[2]",
];

const BAD: &[&str] = &[
    "",
    "foo_t",
    "struct nope",
    "union point",
    "enum nope",
    "int int",
    "int *)",
    "int[",
    "int[-1]",
    "int[nope]",
    "void[3]",
    "fn_t[2]",
    "int(*)(void, int)",
    "point_t x y",
    "struct",
    "(((((",
];

fn setup() -> (Namespace, Realizer) {
    let mut ns = Namespace::new(Target::host());
    ns.cdef(CDEF, &CdefOptions::default()).unwrap();
    let raw = ool::encode(&mut ns).unwrap().to_raw();
    let module = Arc::new(ool::decode(&raw).unwrap());
    (ns, Realizer::new(module, Target::host(), Vec::new()))
}

#[test]
fn same_types_as_inline() {
    let (mut ns, mut r) = setup();
    for t in TYPES {
        let want = ns
            .parse_type(t)
            .unwrap_or_else(|e| panic!("inline {t}: {e:?}"));
        let (got, func) = ool::parse_type(&mut r, t).unwrap_or_else(|e| panic!("ool {t}: {e}"));
        assert!(!func, "{t}");
        assert_eq!(got.cname(), want.cname(), "{t}");
        assert_eq!(got.kind_name(), want.kind_name(), "{t}");
        assert_eq!(got.size(), want.size(), "{t}");
        assert_eq!(got.align(), want.align(), "{t}");
    }
    // Interned: the same string twice gives the same node.
    let (a, _) = ool::parse_type(&mut r, "point_t *").unwrap();
    let (b, _) = ool::parse_type(&mut r, "struct point*").unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    // A function type is told apart from a pointer to one.
    let (f, func) = ool::parse_type(&mut r, "fn_t").unwrap();
    assert!(func);
    assert_eq!(f.cname(), "int(*)(int, char)");
    assert!(ool::parse_type(&mut r, "int(int)").unwrap().1);
}

#[test]
fn bad_strings_are_errors() {
    let (mut ns, mut r) = setup();
    for t in BAD {
        assert!(ool::parse_type(&mut r, t).is_err(), "accepted {t:?}");
        // The in-line parser refuses them too, except function types and unknown tags
        // (in-line, cffi declares those as opaque on the fly; compiled, it refuses).
        if !t.starts_with("fn_t") && !t.contains("nope") && *t != "union point" {
            assert!(ns.parse_type(t).is_err(), "inline accepted {t:?}");
        }
    }
    let e = ool::parse_type(&mut r, "struct point *  x nope").unwrap_err();
    assert_eq!(e.message, "unexpected symbol");
    assert_eq!(e.pos, 18);
    assert_eq!(
        ool::parse_type(&mut r, "foo_t").unwrap_err().message,
        "undefined type name"
    );
    assert_eq!(
        ool::parse_type(&mut r, "union point").unwrap_err().message,
        "wrong kind of tag: struct vs union"
    );
}

#[test]
fn only_what_is_named_gets_built() {
    let (_, mut r) = setup();
    ool::parse_type(&mut r, "int").unwrap();
    let before = r.table.len();
    ool::parse_type(&mut r, "union value").unwrap();
    // union value, and the types of its three fields (int is there already).
    assert!(r.table.len() - before <= 4, "{}", r.table.len() - before);
}

#[test]
fn random_strings_never_panic() {
    let (_, mut r) = setup();
    let pieces = [
        "int", "*", "(", ")", "[", "]", "3", "N", ",", "...", "struct", "point", "point_t", "fn_t",
        "const", "void", "unsigned", "long", " ", "vec3", "enum", "color", "0x10", "-", "char",
    ];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..20000 {
        let mut s = String::new();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % 8) as usize + 1;
        let mut y = x;
        for _ in 0..n {
            s.push_str(pieces[(y % pieces.len() as u64) as usize]);
            y /= pieces.len() as u64;
            if y == 0 {
                y = x.rotate_left(17);
            }
        }
        let _ = ool::parse_type(&mut r, &s);
    }
    let deep = "(".repeat(10000) + "*" + &")".repeat(10000);
    assert!(ool::parse_type(&mut r, &format!("int {deep}")).is_err());
}

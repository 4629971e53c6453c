//! Type strings against an out-of-line module (the compiled FFI's path,
//! `ool::lazy::resolve_type_string`) give the types the in-line namespace gives for the
//! same declarations, and cffi's compiled FFI's errors.

use std::sync::{Arc, Mutex};

use jitffi::cdef::{CdefOptions, Namespace};
use jitffi::ool::lazy::{resolve_type_string, TypeStringError};
use jitffi::ool::{self, Include, Realizer};
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

fn compiled() -> (Namespace, Include) {
    let mut ns = Namespace::new(Target::host());
    ns.cdef(CDEF, &CdefOptions::default()).unwrap();
    let raw = ool::encode(&mut ns).unwrap().to_raw();
    let module = Arc::new(ool::decode(&raw).unwrap());
    let inc = Arc::new(Mutex::new(Realizer::new(
        module,
        Target::host(),
        Vec::new(),
    )));
    (ns, inc)
}

#[test]
fn same_types_as_inline() {
    let (mut inline, inc) = compiled();
    // The compiled FFI's namespace starts empty: each string declares what it names.
    let mut ns = Namespace::new(Target::host());
    for t in TYPES {
        let want = inline
            .parse_type(t)
            .unwrap_or_else(|e| panic!("inline {t}: {e:?}"));
        let got =
            resolve_type_string(&inc, &mut ns, t).unwrap_or_else(|e| panic!("ool {t}: {e:?}"));
        assert_eq!(got.cname(), want.cname(), "{t}");
        assert_eq!(got.kind_name(), want.kind_name(), "{t}");
        assert_eq!(got.size(), want.size(), "{t}");
        assert_eq!(got.align(), want.align(), "{t}");
    }
    // Interned: two spellings of one type give the same node.
    let a = resolve_type_string(&inc, &mut ns, "point_t *").unwrap();
    let b = resolve_type_string(&inc, &mut ns, "struct point*").unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    // A function type is not a type of values (as in-line).
    for t in ["fn_t", "int(int)"] {
        match resolve_type_string(&inc, &mut ns, t) {
            Err(TypeStringError::Parse(e)) => {
                assert!(e.message.contains("function type"), "{t}: {e:?}")
            }
            other => panic!("{t}: {other:?}"),
        }
    }
}

#[test]
fn bad_strings_are_errors() {
    let (mut inline, inc) = compiled();
    let mut ns = Namespace::new(Target::host());
    for t in BAD {
        assert!(
            resolve_type_string(&inc, &mut ns, t).is_err(),
            "accepted {t:?}"
        );
        // The in-line parser refuses them too, except function types and unknown tags
        // (in-line, cffi declares those as opaque on the fly; compiled, it refuses).
        if !t.starts_with("fn_t") && !t.contains("nope") && *t != "union point" {
            assert!(inline.parse_type(t).is_err(), "inline accepted {t:?}");
        }
    }
    // cffi's compiled FFI's wording and position, where it has one.
    let cffi1 = |ns: &mut Namespace, t: &str| match resolve_type_string(&inc, ns, t) {
        Err(TypeStringError::Cffi1(d)) => (d.message, d.at),
        other => panic!("{t}: {other:?}"),
    };
    assert_eq!(
        cffi1(&mut ns, "struct point *  x nope"),
        ("unexpected symbol", 18)
    );
    assert_eq!(cffi1(&mut ns, "foo_t").0, "undefined type name");
    assert_eq!(
        cffi1(&mut ns, "union point").0,
        "wrong kind of tag: struct vs union"
    );
}

#[test]
fn only_what_is_named_gets_declared() {
    let (_, inc) = compiled();
    let mut ns = Namespace::new(Target::host());
    resolve_type_string(&inc, &mut ns, "union value").unwrap();
    // The union only: not the struct, enum or typedefs the module also declares.
    assert!(ns.decls.unions.contains_key("value"));
    assert!(ns.decls.structs.is_empty(), "{:?}", ns.decls.structs.keys());
    assert!(ns.decls.enums.is_empty() && ns.decls.typedefs.is_empty());
    resolve_type_string(&inc, &mut ns, "point_t *").unwrap();
    // The typedef (its struct comes with it as a type; the tag is declared when a
    // string names `struct point`).
    assert!(ns.decls.typedefs.contains_key("point_t"));
    resolve_type_string(&inc, &mut ns, "struct point").unwrap();
    assert!(ns.decls.structs.contains_key("point"));
    assert!(ns.decls.enums.is_empty());
}

#[test]
fn random_strings_never_panic() {
    let (_, inc) = compiled();
    let mut ns = Namespace::new(Target::host());
    let pieces = [
        "int", "*", "(", ")", "[", "]", "3", "N", ",", "...", "struct", "point", "point_t", "fn_t",
        "const", "void", "unsigned", "long", " ", "vec3", "enum", "color", "0x10", "-", "char",
        "{", "}", ";", "union", "value",
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
        let _ = resolve_type_string(&inc, &mut ns, &s);
    }
    let deep = "(".repeat(10000) + "*" + &")".repeat(10000);
    assert!(resolve_type_string(&inc, &mut ns, &format!("int {deep}")).is_err());
}

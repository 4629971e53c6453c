//! Parser tests: one per grammar rule (grammar/cdef.pest) and per error form. Expected cnames,
//! sizes and messages were checked against cffi 2.0.0 and gcc.

use super::*;
use crate::types::decls::Decl;
use crate::types::model::Kind;
use std::sync::Arc;

fn ns() -> Namespace {
    Namespace::new(Target::X86_64_LINUX)
}

fn cdef(src: &str) -> Namespace {
    let mut n = ns();
    n.cdef(src, &CdefOptions::default())
        .unwrap_or_else(|e| panic!("cdef failed: {e}"));
    n
}

fn cdef_err(src: &str) -> CdefError {
    let mut n = ns();
    match n.cdef(src, &CdefOptions::default()) {
        Ok(()) => panic!("cdef of {src:?} unexpectedly succeeded"),
        Err(e) => e,
    }
}

fn cname(n: &mut Namespace, t: &str) -> String {
    n.parse_type(t)
        .unwrap_or_else(|e| panic!("parse_type({t:?}): {e}"))
        .cname()
}

fn func(n: &Namespace, name: &str) -> String {
    match n.decls.names.get(name) {
        Some(Decl::Function(t)) => t.cname(),
        other => panic!("{name} is not a function: {other:?}"),
    }
}

fn constant(n: &Namespace, name: &str) -> i128 {
    match n.decls.names.get(name) {
        Some(Decl::IntConstant { value, .. }) => *value,
        other => panic!("{name} is not a constant: {other:?}"),
    }
}

fn size(n: &mut Namespace, t: &str) -> Option<usize> {
    n.parse_type(t).unwrap().size()
}

fn fields(n: &mut Namespace, t: &str) -> Vec<(String, usize, i32, i32)> {
    let ty = n.parse_type(t).unwrap();
    let l = ty
        .record_layout()
        .unwrap_or_else(|| panic!("{t} has no layout"));
    l.fields
        .iter()
        .map(|f| (f.name.clone(), f.offset, f.bitshift, f.bitsize))
        .collect()
}

#[test]
fn function_declarations() {
    let n = cdef("int f(int, char *); int g(); void h(void); long k(int a, double b);");
    assert_eq!(func(&n, "f"), "int(*)(int, char *)");
    assert_eq!(func(&n, "g"), "int(*)()");
    assert_eq!(func(&n, "h"), "void(*)()");
    assert_eq!(func(&n, "k"), "long(*)(int, double)");
    assert_eq!(n.decls.order, ["f", "g", "h", "k"]);
}

#[test]
fn varargs() {
    let n = cdef("int printf(const char *, ...);");
    assert_eq!(func(&n, "printf"), "int(*)(char *, ...)");
    let Kind::FuncPtr(sig) = &n.decls.names["printf"].clone().fn_type().kind else {
        panic!()
    };
    assert!(sig.variadic);
}

trait FnType {
    fn fn_type(&self) -> TypeRef;
}
impl FnType for Decl {
    fn fn_type(&self) -> TypeRef {
        match self {
            Decl::Function(t) | Decl::ExternPython(t) => t.clone(),
            _ => panic!("not a function"),
        }
    }
}

#[test]
fn function_pointers_everywhere() {
    let mut n = cdef(
        "typedef int (*cb_t)(int); struct s { int (*f)(long, ...); cb_t g; void (*arr[3])(void); };
         int call(int (*cb)(int), cb_t c2); void (*signal(int, void (*)(int)))(int);",
    );
    assert_eq!(cname(&mut n, "cb_t"), "int(*)(int)");
    assert_eq!(func(&n, "call"), "int(*)(int(*)(int), int(*)(int))");
    assert_eq!(func(&n, "signal"), "void(*(*)(int, void(*)(int)))(int)");
    let f = fields(&mut n, "struct s");
    assert_eq!(f.iter().map(|x| x.1).collect::<Vec<_>>(), [0, 8, 16]);
    assert_eq!(size(&mut n, "struct s"), Some(40));
    let t = n.parse_type("struct s").unwrap();
    assert_eq!(
        t.record_layout().unwrap().fields[2].ty.cname(),
        "void(*[3])()"
    );
}

#[test]
fn params_decay() {
    let n = cdef("int f(int a[5], int g(int), int (*h)[3], char m[][4]);");
    assert_eq!(
        func(&n, "f"),
        "int(*)(int *, int(*)(int), int(*)[3], char(*)[4])"
    );
}

#[test]
fn typedefs_with_several_declarators() {
    let mut n = cdef("typedef struct { int a; } a_t, *a_p, a3_t[3]; typedef int i_t, *ip_t;");
    assert_eq!(cname(&mut n, "a_t"), "a_t");
    assert_eq!(cname(&mut n, "a_p"), "a_t *");
    assert_eq!(cname(&mut n, "a3_t"), "a_t[3]");
    assert_eq!(cname(&mut n, "ip_t"), "int *");
    assert_eq!(size(&mut n, "a3_t"), Some(12));
    let (t, s, u) = n.list_types();
    assert_eq!(t, ["a3_t", "a_p", "a_t", "i_t", "ip_t"]);
    assert!(s.is_empty() && u.is_empty());
}

#[test]
fn anonymous_record_names_follow_cffi() {
    let mut n = cdef("typedef struct { int a; } *foo_p;");
    assert_eq!(cname(&mut n, "foo_p"), "struct $1 *");
    let mut n = cdef("enum { A }; struct s { struct { int a; } x; struct { int b; } y; union { int q; }; }; struct t { struct { int a; } x; };");
    let s = n.parse_type("struct s").unwrap();
    let l = s.record_layout().unwrap();
    let names: Vec<(String, String)> = l
        .fields
        .iter()
        .map(|f| (f.name.clone(), f.ty.cname()))
        .collect();
    assert_eq!(
        names,
        [
            ("x".into(), "struct $2".into()),
            ("y".into(), "struct $3".into()),
            ("q".into(), "int".into())
        ]
    );
    let t = n.parse_type("struct t").unwrap();
    assert_eq!(t.record_layout().unwrap().fields[0].ty.cname(), "struct $5");
    assert_eq!(cname(&mut n, "struct s *"), "struct s *");
}

#[test]
fn structs_unions_opaque_and_completed_later() {
    let mut n =
        cdef("struct s; union u; typedef struct s s_t; struct node { int v; struct node *next; };");
    assert_eq!(size(&mut n, "struct s"), None);
    assert_eq!(size(&mut n, "s_t *"), Some(8));
    assert_eq!(size(&mut n, "struct node"), Some(16));
    n.cdef(
        "struct s { char c; double d; }; union u { char c; int i; short s[3]; };",
        &CdefOptions::default(),
    )
    .unwrap();
    assert_eq!(size(&mut n, "s_t"), Some(16));
    assert_eq!(size(&mut n, "union u"), Some(8));
    assert!(Arc::ptr_eq(
        &n.parse_type("s_t").unwrap(),
        &n.parse_type("struct s").unwrap()
    ));
    let (_, s, u) = n.list_types();
    assert_eq!(s, ["node", "s"]);
    assert_eq!(u, ["u"]);
}

#[test]
fn by_value_member_completed_later_in_same_or_next_cdef() {
    let mut n = cdef("struct a { struct b x; int y; }; struct b { long z; };");
    assert_eq!(size(&mut n, "struct a"), Some(16));
    let mut n = cdef("struct a { struct b x; };");
    assert_eq!(size(&mut n, "struct a"), None);
    n.cdef("struct b { int y; };", &CdefOptions::default())
        .unwrap();
    assert_eq!(size(&mut n, "struct a"), Some(4));
}

#[test]
fn anonymous_members_flattened() {
    let mut n = cdef("struct s { int a; union { int b; float c; }; struct { char d; char e; }; };");
    let f = fields(&mut n, "struct s");
    assert_eq!(
        f,
        [
            ("a".into(), 0, -1, -1),
            ("b".into(), 4, -1, -1),
            ("c".into(), 4, -1, -1),
            ("d".into(), 8, -1, -1),
            ("e".into(), 9, -1, -1)
        ]
    );
    assert_eq!(size(&mut n, "struct s"), Some(12));
}

#[test]
fn nested_named_definitions() {
    let mut n = cdef("struct outer { struct inner { int x; } in; enum color { RED, GREEN } c; };");
    assert_eq!(size(&mut n, "struct inner"), Some(4));
    assert_eq!(size(&mut n, "struct outer"), Some(8));
    assert_eq!(constant(&n, "GREEN"), 1);
    assert_eq!(cname(&mut n, "enum color"), "enum color");
}

#[test]
fn bitfields() {
    let mut n =
        cdef("struct s { int a:3; int :0; unsigned b:5; int :2; char c:4; long long d:40; };");
    let f = fields(&mut n, "struct s");
    assert_eq!(f[0], ("a".into(), 0, 0, 3));
    assert_eq!(f[1], ("b".into(), 4, 0, 5));
    assert_eq!(f[2], ("c".into(), 5, 0, 4));
    assert_eq!(f[3], ("d".into(), 8, 0, 40));
    assert_eq!(size(&mut n, "struct s"), Some(16));
}

#[test]
fn invalid_bitfields_fail_at_use() {
    let mut n = cdef("struct s { int x:3; float y:2; }; struct t { int x:33; };");
    let s = n.parse_type("struct s").unwrap();
    let Kind::Record(r) = &s.kind else { panic!() };
    let err = r.layout.get().unwrap().as_ref().unwrap_err();
    assert_eq!(
        err,
        "field 'struct s.y' declared as 'float' cannot be a bit field"
    );
    let t = n.parse_type("struct t").unwrap();
    let Kind::Record(r) = &t.kind else { panic!() };
    assert_eq!(
        r.layout.get().unwrap().as_ref().unwrap_err(),
        "bit field 'struct t.x' is declared 'int:33', which exceeds the width of the type"
    );
}

#[test]
fn enums() {
    let mut n = cdef(
        "enum e { A, B = 5, C, D = B + 10, E = -3, F = 'a', G = 010, H = 0x10, I = 1 << 3 | 2, J = ~0, K = (1+2)*3 };",
    );
    for (k, v) in [
        ("A", 0),
        ("B", 5),
        ("C", 6),
        ("D", 15),
        ("E", -3),
        ("F", 97),
        ("G", 8),
        ("H", 16),
        ("I", 10),
        ("J", -1),
        ("K", 9),
    ] {
        assert_eq!(constant(&n, k), v, "{k}");
    }
    let t = n.parse_type("enum e").unwrap();
    let Kind::Enum(e) = &t.kind else { panic!() };
    assert_eq!(e.underlying, Prim::Int);
    assert_eq!(e.items.len(), 11);
    let cases = [
        ("enum e { A, B };", Prim::UInt),
        ("enum e { A = -1 };", Prim::Int),
        ("enum e { A = 0x80000000 };", Prim::UInt),
        ("enum e { A = -1, B = 0x80000000 };", Prim::Long),
        ("enum e { A = 0x100000000 };", Prim::ULong),
        ("enum e { A = -0x100000000 };", Prim::Long),
        ("enum e { A = 0xffffffffffffffff };", Prim::ULong),
    ];
    for (src, want) in cases {
        let mut n = cdef(src);
        let t = n.parse_type("enum e").unwrap();
        let Kind::Enum(e) = &t.kind else { panic!() };
        assert_eq!(e.underlying, want, "{src}");
    }
    let mut n = cdef("typedef enum { X, Y } e_t; enum { Z = 7 };");
    assert_eq!(cname(&mut n, "e_t"), "e_t");
    assert_eq!(constant(&n, "Z"), 7);
}

#[test]
fn arrays() {
    let mut n = cdef("#define N 4\nenum { M = 2 }; static const int K = 3; struct s { int a[N][M]; char b[K*2+1]; }; int g[2][3][4]; int flex[];");
    assert_eq!(size(&mut n, "struct s"), Some(40));
    match &n.decls.names["g"] {
        Decl::Variable { ty, is_const } => {
            assert_eq!(ty.cname(), "int[2][3][4]");
            assert!(!is_const);
        }
        d => panic!("{d:?}"),
    }
    assert_eq!(cname(&mut n, "int[3][4]"), "int[3][4]");
    assert_eq!(size(&mut n, "int[3][4]"), Some(48));
}

#[test]
fn flexible_array_member() {
    let mut n = cdef("struct s { int n; double a[]; };");
    let t = n.parse_type("struct s").unwrap();
    let l = t.record_layout().unwrap();
    assert!(l.has_flexible_array);
    assert_eq!((l.size, l.align), (8, 8));
    assert_eq!(l.fields[1].offset, 8);
    assert_eq!(l.fields[1].ty.cname(), "double[]");
}

#[test]
fn opaque_typedef() {
    let mut n = cdef("typedef ... t; typedef ... *t_p; t *make(void);");
    assert_eq!(cname(&mut n, "t"), "t");
    assert_eq!(n.parse_type("t").unwrap().kind_name(), "struct");
    assert_eq!(size(&mut n, "t"), None);
    assert_eq!(func(&n, "make"), "t *(*)()");
    assert_eq!(size(&mut n, "t_p"), Some(8));
}

#[test]
fn defines() {
    let n = cdef("#define A 42\n#define B 0x1F\n#define C 017\n#define D -5\n#define E 10UL\n#define F 3L // c\n#define G ...\n  #  define H 1 /* c */\n");
    for (k, v) in [
        ("A", 42),
        ("B", 31),
        ("C", 15),
        ("D", -5),
        ("E", 10),
        ("F", 3),
        ("H", 1),
    ] {
        assert_eq!(constant(&n, k), v, "{k}");
    }
    assert!(matches!(
        n.decls.names["G"],
        Decl::UnknownConstant { ty: None }
    ));
    let e = cdef_err("#define X 1+2\n");
    assert_eq!(e.kind, ErrorKind::CDef);
    assert!(e.message.starts_with("only supports one of the following syntax:\n  #define X ...     (literally dot-dot-dot)"), "{}", e.message);
    assert!(
        e.message.ends_with("got:\n  #define X 1+2"),
        "{}",
        e.message
    );
    assert!(cdef_err("#define X(a) a\n")
        .message
        .contains("only supports one of the following syntax"));
    assert!(cdef_err("#define X\n")
        .message
        .contains("only supports one of the following syntax"));
}

#[test]
fn static_const_and_globals() {
    let n = cdef(
        "static const int N = 5 + 3; static const int M; static const double D = 1.5; static const char C = 'x';\n\
         extern int x; int y; const int cx; extern const char *s; char *const cp; extern int arr[4];",
    );
    assert_eq!(constant(&n, "N"), 8);
    assert_eq!(constant(&n, "C"), 120);
    assert!(
        matches!(&n.decls.names["M"], Decl::UnknownConstant { ty: Some(t) } if t.cname() == "int")
    );
    assert!(
        matches!(&n.decls.names["D"], Decl::UnknownConstant { ty: Some(t) } if t.cname() == "double")
    );
    let var = |k: &str| match &n.decls.names[k] {
        Decl::Variable { ty, is_const } => (ty.cname(), *is_const),
        d => panic!("{d:?}"),
    };
    assert_eq!(var("x"), ("int".into(), false));
    assert_eq!(var("y"), ("int".into(), false));
    assert_eq!(var("cx"), ("int".into(), true));
    assert_eq!(var("s"), ("char *".into(), false));
    assert_eq!(var("cp"), ("char *".into(), true));
    assert_eq!(var("arr"), ("int[4]".into(), false));
}

#[test]
fn qualifiers_comments_continuations() {
    let mut n = cdef("/* c */ const volatile int * restrict const * volatile p; // x\nint\\\n q; int * const f(const char * restrict s);");
    assert!(n.decls.names.contains_key("p") && n.decls.names.contains_key("q"));
    assert_eq!(func(&n, "f"), "int *(*)(char *)");
    assert_eq!(cname(&mut n, "int *const*"), "int * *");
    assert_eq!(cname(&mut n, "const int"), "int");
}

#[test]
fn line_comments_continue_after_a_backslash_newline() {
    // cffi's rule: a backslash takes the next character into the comment, so `\<nl>`
    // continues it on the next line, and `\\<nl>` ends it there.
    let n = cdef(
        "double // blah \\\n more comments\nx(void);\n\
         double // blah // blah\\\\\ny(void);\n\
         double // c \\\r\n z_not_code\nz(void);",
    );
    for f in ["x", "y", "z"] {
        assert!(n.decls.names.contains_key(f), "{f}");
    }
    assert!(!n.decls.names.contains_key("comments"));
    assert_eq!(func(&n, "y"), "double(*)()");
}

#[test]
fn builtin_type_spellings_normalize() {
    let mut n = ns();
    for (t, want) in [
        ("long int", "long"),
        ("unsigned", "unsigned int"),
        ("signed", "int"),
        ("short int", "short"),
        ("long long int", "long long"),
        ("unsigned long int", "unsigned long"),
        ("bool", "_Bool"),
        ("_Bool", "_Bool"),
        ("signed char", "signed char"),
        ("unsigned short int", "unsigned short"),
        ("signed long long", "long long"),
        ("long unsigned", "unsigned long"),
        ("long double", "long double"),
        ("char16_t", "char16_t"),
        ("size_t *", "size_t *"),
        ("double _Complex", "double _Complex"),
        ("int8_t", "int8_t"),
        ("uint_fast32_t", "uint_fast32_t"),
        ("FILE *", "FILE *"),
    ] {
        assert_eq!(cname(&mut n, t), want, "{t}");
    }
    assert!(Arc::ptr_eq(
        &n.parse_type("long int").unwrap(),
        &n.parse_type("long").unwrap()
    ));
    assert!(Arc::ptr_eq(
        &n.parse_type("int *").unwrap(),
        &n.parse_type("int*").unwrap()
    ));
    assert_eq!(
        n.parse_type("long double _Complex").unwrap_err().kind,
        ErrorKind::FFI
    );
}

#[test]
fn type_strings() {
    let mut n = cdef("struct s { int a; }; typedef int fn_t(int);");
    for (t, want) in [
        ("int(*)[5]", "int(*)[5]"),
        ("char *[]", "char *[]"),
        ("void(*)(int, ...)", "void(*)(int, ...)"),
        ("struct s *", "struct s *"),
        ("struct q *", "struct q *"),
        ("union u*", "union u *"),
        ("enum e*", "enum e *"),
        ("int(*(*)(long))[3]", "int(*(*)(long))[3]"),
        ("fn_t *", "int(*)(int)"),
        ("int(**)(void)", "int(* *)()"),
        ("int f", "int"),
        ("int[]", "int[]"),
    ] {
        assert_eq!(cname(&mut n, t), want, "{t}");
    }
    // `(int8_t)` after a type is a parameter list, not a parenthesized name.
    for t in [
        "int(int)",
        "fn_t",
        "void(void)",
        "int8_t(int8_t)",
        "int(size_t)",
    ] {
        let e = n.parse_type(t).unwrap_err();
        assert_eq!(e.kind, ErrorKind::CDef);
        assert_eq!(
            e.message,
            format!("the type '{t}' is a function type, not a pointer-to-function type")
        );
    }
    let e = n.parse_type("foo").unwrap_err();
    assert_eq!(e.kind, ErrorKind::CDef);
    assert_eq!(e.message, "unknown identifier 'foo'");
    assert!(n.parse_type("int int int").is_err());
    assert!(n.parse_type("").is_err());
    assert!(n.parse_type("int (").is_err());
}

#[test]
fn line_directives_in_errors() {
    let e = cdef_err("# 5 \"foo.h\"\nint x; int y @;");
    assert_eq!(e.kind, ErrorKind::CDef);
    assert!(
        e.message.contains("foo.h:5:14: illegal character '@'"),
        "{}",
        e.message
    );
    let e = cdef_err("#line 12 \"a.h\"\nint f(foo);");
    assert!(
        e.message
            .starts_with("a.h:12:7: f arg 1: unknown type 'foo'"),
        "{}",
        e.message
    );
}

#[test]
fn api_mode_forms_are_kept() {
    let mut n = cdef(
        "struct s { int a; ...; }; enum e { A, B, ... }; enum f { X = ..., Y = 2 }; struct t { int a[...]; };\n\
         typedef int... i_t; typedef float... f_t; int arr[...];\n\
         extern \"Python\" int cb(int); extern \"Python\" { int cb2(int); void cb3(void); }\n\
         extern \"Python+C\" int cb4(void);",
    );
    let s = n.parse_type("struct s").unwrap();
    assert!(s.record_layout().unwrap().partial);
    assert_eq!(s.size(), None);
    assert!(
        n.parse_type("struct t")
            .unwrap()
            .record_layout()
            .unwrap()
            .partial
    );
    let Kind::Enum(e) = &n.parse_type("enum e").unwrap().kind else {
        panic!()
    };
    assert!(e.partial);
    assert!(matches!(n.decls.names["X"], Decl::UnknownConstant { .. }));
    assert_eq!(constant(&n, "Y"), 2);
    assert_eq!(
        n.parse_type("i_t").unwrap_err().kind,
        ErrorKind::NotImplemented
    );
    assert_eq!(
        n.parse_type("f_t *").unwrap_err().kind,
        ErrorKind::NotImplemented
    );
    assert_eq!(n.list_types().0, ["f_t", "i_t"]);
    for k in ["cb", "cb2", "cb3", "cb4"] {
        assert!(matches!(n.decls.names[k], Decl::ExternPython(_)), "{k}");
    }
    assert_eq!(n.decls.names["cb3"].fn_type().cname(), "void(*)()");
    assert!(matches!(&n.decls.names["arr"], Decl::Variable { ty, .. } if ty.cname() == "int[]"));
}

#[test]
fn options_packed_and_pack() {
    let mut n = ns();
    let opts = CdefOptions {
        packed: true,
        ..Default::default()
    };
    n.cdef("struct p { char a; int b; short c; };", &opts)
        .unwrap();
    assert_eq!(
        fields(&mut n, "struct p")
            .iter()
            .map(|f| f.1)
            .collect::<Vec<_>>(),
        [0, 1, 5]
    );
    assert_eq!(size(&mut n, "struct p"), Some(7));
    let opts = CdefOptions {
        pack: Some(2),
        ..Default::default()
    };
    n.cdef("struct q { char a; int b; double c; };", &opts)
        .unwrap();
    assert_eq!(
        fields(&mut n, "struct q")
            .iter()
            .map(|f| f.1)
            .collect::<Vec<_>>(),
        [0, 2, 6]
    );
    assert_eq!(size(&mut n, "struct q"), Some(14));
    let e = n
        .cdef(
            "",
            &CdefOptions {
                pack: Some(3),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Value);
}

#[test]
fn redeclarations() {
    let mut n = cdef("typedef int t; typedef int t; int f(int); int f(int x); int x; extern int x;\n#define X 1\n#define X 1\n");
    let e = n
        .cdef("typedef long t;", &CdefOptions::default())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::FFI);
    assert_eq!(
        e.message,
        "multiple declarations of typedef t (for interactive usage, try cdef(xx, override=True))"
    );
    let e = n.cdef("long f(int);", &CdefOptions::default()).unwrap_err();
    assert_eq!(
        e.message,
        "multiple declarations of function f (for interactive usage, try cdef(xx, override=True))"
    );
    let e = n.cdef("long x;", &CdefOptions::default()).unwrap_err();
    assert_eq!(
        e.message,
        "multiple declarations of variable x (for interactive usage, try cdef(xx, override=True))"
    );
    let e = n
        .cdef("enum { A }; enum { A = 1 };", &CdefOptions::default())
        .unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::FFI, "multiple declarations of constant: A")
    );
    let ov = CdefOptions {
        override_: true,
        ..Default::default()
    };
    n.cdef("typedef long t; long f(int);", &ov).unwrap();
    assert_eq!(cname(&mut n, "t"), "long");
    assert_eq!(func(&n, "f"), "long(*)(int)");
    let e = cdef_err("struct s { int a; }; struct s { int a; };");
    assert_eq!(e.kind, ErrorKind::CDef);
    assert_eq!(
        e.message,
        "<cdef source string>:1:22: duplicate declaration of struct s"
    );
    let e = cdef_err("enum e { A }; enum e { A };");
    assert_eq!(e.kind, ErrorKind::NotImplemented);
    // An explicit typedef of a standard name wins.
    let mut n = cdef("typedef int size_t; typedef long FILE;");
    assert_eq!(cname(&mut n, "size_t"), "int");
    assert_eq!(cname(&mut n, "FILE"), "long");
}

#[test]
fn function_typedef() {
    let mut n = cdef("typedef int fn_t(int); fn_t *p; fn_t f2; struct s { fn_t *cb; };");
    assert_eq!(cname(&mut n, "fn_t *"), "int(*)(int)");
    assert_eq!(func(&n, "f2"), "int(*)(int)");
    assert!(
        matches!(&n.decls.names["p"], Decl::Variable { ty, .. } if ty.cname() == "int(*)(int)")
    );
    assert_eq!(n.list_types().0, ["fn_t"]);
}

#[test]
fn include_copies_types_and_constants() {
    let mut a = cdef("typedef struct { int x; } pt_t; struct s { pt_t p; long q; }; enum e { A = 3 };\n#define N 9\nint f(int); int v;");
    let mut b = ns();
    b.include(&a).unwrap();
    assert_eq!(size(&mut b, "pt_t"), Some(4));
    assert_eq!(size(&mut b, "struct s"), Some(16));
    assert_eq!(constant(&b, "A"), 3);
    assert_eq!(constant(&b, "N"), 9);
    assert!(!b.decls.names.contains_key("f") && !b.decls.names.contains_key("v"));
    b.cdef(
        "struct t { struct s inner; pt_t *p; };",
        &CdefOptions::default(),
    )
    .unwrap();
    assert_eq!(size(&mut b, "struct t"), Some(24));
    assert_eq!(cname(&mut b, "pt_t *"), "pt_t *");
    let _ = a.parse_type("struct s").unwrap();
}

#[test]
fn error_unknown_type_names() {
    let e = cdef_err("int f(foo);");
    assert_eq!(e.kind, ErrorKind::CDef);
    assert_eq!(
        e.message,
        "<cdef source string>:1:7: f arg 1: unknown type 'foo' (if you meant to use the old C syntax of giving untyped arguments, it is not supported)"
    );
    let e = cdef_err("int f(a, b);");
    assert!(
        e.message.contains("f arg 1: unknown type 'a'"),
        "{}",
        e.message
    );
    let e = cdef_err("\nfoo x;");
    assert_eq!(
        e.message,
        "<cdef source string>:2:1: unknown type name 'foo'"
    );
}

#[test]
fn error_directives_and_bodies() {
    let e = cdef_err("#include <stdio.h>\n");
    assert_eq!(e.kind, ErrorKind::CDef);
    assert!(e.message.starts_with("cannot parse \"#include <stdio.h>\"\n<cdef source string>:1:1: #include is not supported"), "{}", e.message);
    for src in [
        "#ifdef X\n#endif\n",
        "#if 0\n#endif\n",
        "#undef X\n",
        "#error x\n",
    ] {
        let e = cdef_err(src);
        assert_eq!(e.kind, ErrorKind::CDef);
        assert!(
            e.message.contains("not supported in cdef()"),
            "{}",
            e.message
        );
    }
    cdef("#pragma once\nint x;");
    let e = cdef_err("int f(int x) { return x; }");
    assert_eq!(e.kind, ErrorKind::CDef);
    assert!(
        e.message
            .starts_with("<cdef source string>:1:1: function definitions are not supported"),
        "{}",
        e.message
    );
    let e = cdef_err("int f(void) __attribute__((x));");
    assert!(
        e.message
            .contains("1:13: __attribute__ and __declspec are not supported"),
        "{}",
        e.message
    );
    let e = cdef_err("int * __restrict z;");
    assert!(
        e.message.contains("'__restrict' is not supported"),
        "{}",
        e.message
    );
}

#[test]
fn error_syntax_positions() {
    let e = cdef_err("int x");
    assert_eq!(e.kind, ErrorKind::CDef);
    assert!(
        e.message
            .contains("<cdef source string>:1:6: unexpected end of input"),
        "{}",
        e.message
    );
    let e = cdef_err("\n\nint x; int y @;");
    assert_eq!(
        e.message,
        "cannot parse \"int x; int y @;\"\n<cdef source string>:3:14: illegal character '@'"
    );
    let e = cdef_err("int x;\n  int ;;");
    assert!(
        e.message
            .starts_with("<cdef source string>:2:3: Invalid declaration"),
        "{}",
        e.message
    );
    let e = cdef_err("struct s { int a };");
    assert!(e.message.contains("1:18: unexpected '}'"), "{}", e.message);
    let e = cdef_err("int f(...);");
    assert!(e
        .message
        .contains("a function with only '(...)' as argument is not correct C"));
    let e = cdef_err("/* unterminated");
    assert!(e.message.contains("unterminated comment"));
    let e = cdef_err("struct s { int; };");
    assert_eq!(e.kind, ErrorKind::FFI);
    assert!(e.message.contains("bad or unsupported type declaration"));
}

#[test]
fn error_unsupported_expressions() {
    for src in [
        "int a[sizeof(int)];",
        "struct s { int a[sizeof(int)]; };",
        "enum e { A = (int)3 };",
        "int a[N];",
        "enum e { A = !0 };",
        "enum e { A = 1 / 0 };",
    ] {
        let e = cdef_err(src);
        assert_eq!(e.kind, ErrorKind::FFI, "{src}: {}", e.message);
    }
    assert!(cdef_err("int a[sizeof(int)];")
        .message
        .contains("unsupported expression"));
    assert!(cdef_err("int a[N];")
        .message
        .contains("unsupported expression"));
}

#[test]
fn char_literals() {
    let n = cdef(r"enum e { A = '\n', B = '\x41', C = '\101', D = '\0', E = '\\', F = '\'' };");
    for (k, v) in [
        ("A", 10),
        ("B", 65),
        ("C", 65),
        ("D", 0),
        ("E", 92),
        ("F", 39),
    ] {
        assert_eq!(constant(&n, k), v);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let src = format!("int a[{}1{}];", "(".repeat(5000), ")".repeat(5000));
    assert_eq!(cdef_err(&src).kind, ErrorKind::CDef);
    let mut n = ns();
    assert!(n
        .parse_type(&format!("int{}*{}", "(".repeat(3000), ")".repeat(3000)))
        .is_err());
    // Within the limit it works.
    let src = format!("int a[{}1{}];", "(".repeat(50), ")".repeat(50));
    cdef(&src);
}

#[test]
fn aarch64_target_types() {
    let mut n = Namespace::new(Target::AARCH64_LINUX);
    let t = n.parse_type("char").unwrap();
    let Kind::Prim(p) = &t.kind else { panic!() };
    assert!(!p.signed);
    n.cdef(
        "struct s { char c; long double d; };",
        &CdefOptions::default(),
    )
    .unwrap();
    assert_eq!(size(&mut n, "struct s"), Some(32));
}

/// Every construct that makes the grammar or the resolver recurse, nested right up to
/// the limit (must work, or fail with a CdefError), far past it (must be refused), and
/// the prefix runs that must not recurse at all. pest runs without a stack probe, so
/// a stack overflow here would abort the test process. The thread gets 2 MiB, less
/// than any Python thread has by default on Linux.
#[test]
fn nesting_of_every_construct_is_bounded() {
    fn rep(s: &str, n: usize) -> String {
        s.repeat(n)
    }
    let inputs = |d: usize| -> Vec<String> {
        vec![
            // expression parentheses
            format!("int a[{}1{}];", rep("(", d), rep(")", d)),
            format!("enum e {{ A = {}1{} }};", rep("(", d), rep(")", d)),
            format!("static const int c = {}1{};", rep("(", d), rep(")", d)),
            format!("struct b {{ int x : {}1{}; }};", rep("(", d), rep(")", d)),
            // brackets inside expressions (sizeof of array types)
            format!("int a[{}1{}];", rep("sizeof(int[", d / 2), rep("])", d / 2)),
            // casts inside parentheses
            format!("int a[{}1{}];", rep("((int)", d), rep(")", d)),
            // struct/union bodies
            format!(
                "struct s {{ {} int x; {} }};",
                rep("struct { union {", d / 2),
                rep("} u; } v;", d / 2)
            ),
            // function bodies (refused, but parsed)
            format!("int f(void) {}{};", rep("{", d), rep("}", d)),
            // parenthesized declarators
            format!("int {}x{};", rep("(*", d), rep(")", d)),
            // function pointers returning function pointers
            format!("int {}f{};", rep("(*", d / 2), rep(")(int)", d / 2)),
            // parameter lists
            format!("void f({}int{});", rep("void (*)(", d / 2), rep(")", d / 2)),
            // arrays of arrays (not nested brackets, but deep types)
            format!("int x{};", rep("[2]", d)),
        ]
    };
    let run = move || {
        for d in [
            crate::cdef::parser::MAX_NESTING - 1,
            crate::cdef::parser::MAX_NESTING,
            100_000,
        ] {
            for src in inputs(d) {
                let mut n = ns();
                let r = n.cdef(&src, &CdefOptions::default());
                if let Err(e) = &r {
                    assert!(
                        !e.message.contains("internal error"),
                        "{}: {}",
                        &src[..60.min(src.len())],
                        e.message
                    );
                }
                if d > crate::cdef::parser::MAX_NESTING {
                    assert!(r.is_err(), "nesting of {d} accepted: {}", &src[..60]);
                }
            }
            for t in [
                format!("int{}*{}", rep("(", d), rep(")", d)),
                format!("int(*{})(int)", rep("(*", d / 2) + &rep(")(int)", d / 2)),
                format!("void(*)({}int{})", rep("void(*)(", d / 2), rep(")", d / 2)),
            ] {
                let mut n = ns();
                let r = n.parse_type(&t);
                if let Err(e) = &r {
                    assert!(
                        !e.message.contains("internal error"),
                        "{}: {}",
                        &t[..60],
                        e.message
                    );
                }
            }
        }
        // Prefix runs are repetitions: long ones parse (and are refused by the
        // evaluator) whatever their length.
        for src in [
            format!("int a[{}1];", rep("!", 100_000)),
            format!("int a[{}1];", rep("! - ~", 30_000)),
            format!("int a[{}x];", rep("sizeof ", 50_000)),
            format!("int a[{}1];", rep("(int)", 50_000)),
            format!("int a[{}1];", rep("(int)!sizeof -", 20_000)),
        ] {
            let e = ns()
                .cdef(&src, &CdefOptions::default())
                .expect_err(&src[..40]);
            assert!(
                e.message.contains("unsupported expression"),
                "{}: {}",
                &src[..40],
                e.message
            );
        }
        assert_eq!(
            constant(
                &cdef(&format!("enum e {{ A = {}1 }};", rep("- ~", 50_000))),
                "A"
            ),
            50_001
        );
    };
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}

/// The grammar gives binary operators as a flat list; C precedence and left
/// associativity come from consteval. Values printed by gcc for the same enum.
#[test]
fn binary_operator_precedence_as_gcc() {
    let n = cdef(
        "enum e { A = 1 + 2 * 3 << 1 | 4 ^ 6 & 3, B = 100 / 10 / 5, C = 10 - 3 - 2, D = 1 << 2 + 1, \
         E = -7 % 3 * 2 | 1 ^ 3 & ~0, F = 1 | 2 ^ 3 & 4 << 1 + 1 * 2 };",
    );
    for (k, v) in [("A", 14), ("B", 2), ("C", 5), ("D", 8), ("E", -2), ("F", 3)] {
        assert_eq!(constant(&n, k), v, "{k}");
    }
    let e = cdef_err("enum e { A = 1 + 6 / (2 - 2) };");
    assert!(
        e.message.contains(":1:22: division by zero"),
        "{}",
        e.message
    );
}

/// Everything a cdef left behind, as text: declarations in order with their types,
/// typedefs, records with their layouts, and the error if any.
fn cdef_summary(src: &str) -> String {
    cdef_summary_after("", src)
}

/// The same, in a namespace that already has `before` declared (a non-empty namespace
/// checks every parameter piece before resolving anything).
fn cdef_summary_after(before: &str, src: &str) -> String {
    let mut n = ns();
    if !before.is_empty() {
        n.cdef(before, &CdefOptions::default()).unwrap();
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        resolve::run_cdef(&mut n, src, &CdefOptions::default())
    }))
    .unwrap_or_else(|_| Err(CdefError::new(ErrorKind::CDef, "panic")));
    n.finish_pending();
    let mut out = format!("{:?}\n", r.map_err(|e| (e.kind, e.message)));
    for name in &n.decls.order {
        let d = &n.decls.names[name];
        let desc = match d {
            Decl::Function(t) | Decl::ExternPython(t) => t.cname(),
            Decl::Variable { ty, is_const } => format!("{} {is_const}", ty.cname()),
            Decl::IntConstant { value, ty } => {
                format!("{value} {:?}", ty.as_ref().map(|t| t.cname()))
            }
            Decl::UnknownConstant { ty } => format!("? {:?}", ty.as_ref().map(|t| t.cname())),
        };
        out += &format!("{name}: {desc}\n");
    }
    let mut typedefs: Vec<_> = n
        .decls
        .typedefs
        .iter()
        .map(|(k, v)| format!("typedef {k}: {}", v.cname()))
        .collect();
    typedefs.sort();
    let mut records: Vec<_> = n
        .decls
        .structs
        .iter()
        .chain(n.decls.unions.iter())
        .map(|(k, v)| format!("{k}: {} {:?} {:?}", v.cname(), v.size(), v.align()))
        .collect();
    records.sort();
    out + &typedefs.join("\n") + "\n" + &records.join("\n")
}

/// Long texts, resolved the fast way (an empty namespace resolves the raw-piece parse
/// unchecked, undoing it if a piece turns out bad; a non-empty one checks the pieces
/// first), give exactly the declarations, layouts, error messages and partial
/// declarations before a resolve error of parsing every parameter in place.
#[test]
fn long_texts_resolve_exactly_as_inline_parse() {
    let mut big = String::new();
    for i in 0..60 {
        big += &format!(
            "struct s{i} {{ int a; char b[{}]; struct s{} *next; double (*f)(int, char *); }};\n",
            i % 7 + 1,
            i.max(1) - 1
        );
        if i % 3 == 0 {
            big += &format!("typedef struct s{i} s{i}_t;\n#define K{i} {i}\n");
        }
        big += &format!("int f{i}(int, const char *, struct s{i} *, ...);\nenum e{i} {{ E{i}A = {i}, E{i}B = E{i}A << 2 }};\n");
    }
    let cases = [
        big.clone(),
        big.clone() + "static const char C = ';'; int after(long);",
        format!("static const int Q = '}}'; extern \"Python\" {{ int cb(int); }} {big}"),
        format!("{big} enum q {{ QA = ';' }}; int z;"),
        format!("{big} int broken(int;"),
        format!("int broken(int; {big}"),
        format!("{big} int broken(int x y);"),
        format!("{big} unknown_t x;"),
        format!("unknown_t x; {big}"),
        format!("{big} int g(void) {{ return 0; }}"),
        format!("int g(void) {{ return ';'; }} {big}"),
        format!("{big} struct s1 {{ int again; }};"),
        format!("{big}\n#define LATE 7\nint last;"),
        format!("extern \"C\" {{ int c1; }} {big} extern \"Python\" {{ void cb2(void); }}"),
        "int a; int b;".to_string(),
        ";;;;;;;;".to_string(),
    ];
    for (i, src) in cases.iter().enumerate() {
        let fast = cdef_summary(src);
        assert_eq!(fast, cdef_summary_inline("", src), "case {i}");
        let before = "int pre_existing; struct s0;";
        assert_eq!(
            cdef_summary_after(before, src),
            cdef_summary_inline(before, src),
            "case {i} after other declarations"
        );
        assert!(!fast.contains("panic"), "case {i}: {fast}");
    }
    // Small texts of every mix of items.
    let pieces = [
        "int a;",
        "struct p { int x; };",
        "typedef int t;",
        "t f(t, ...);",
        "static const int K = 'k';",
        "enum { X = 1 };",
        ";",
    ];
    for n in 1..40 {
        let src: String = (0..n)
            .map(|k| pieces[(k * 7 + n) % pieces.len()])
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(cdef_summary(&src), cdef_summary_inline("", &src), "{src}");
        assert_eq!(
            cdef_summary_after("long g;", &src),
            cdef_summary_inline("long g;", &src),
            "{src}"
        );
    }
}

/// A piece that turns out bad after much of an empty namespace's text was resolved
/// undoes it all: the namespace is as new (same `FILE` and `void` nodes) and takes
/// further cdefs.
#[test]
fn undone_resolve_leaves_a_usable_namespace() {
    let mut n = ns();
    let file = n.parse_type("FILE").unwrap();
    let void = n.parse_type("void").unwrap();
    assert!(n.is_empty());
    let head: String = (0..200)
        .map(|i| format!("struct h{i} {{ int a{i}; }}; int f{i}(struct h{i} *);\n"))
        .collect();
    let undos = resolve::UNDOS.with(|u| u.get());
    let e = n
        .cdef(
            &format!("{head} int broken(int x y);"),
            &CdefOptions::default(),
        )
        .unwrap_err();
    assert_eq!(resolve::UNDOS.with(|u| u.get()), undos + 1);
    assert!(e.message.contains("cannot parse"), "{}", e.message);
    assert!(n.is_empty());
    assert!(Arc::ptr_eq(&file, &n.parse_type("FILE").unwrap()));
    assert!(Arc::ptr_eq(&void, &n.parse_type("void").unwrap()));
    n.cdef(&head, &CdefOptions::default()).unwrap();
    assert_eq!(size(&mut n, "struct h7"), Some(4));
}

/// Qualifiers with no type after them are a syntax error, not a type named `const`.
#[test]
fn qualifiers_alone_are_a_syntax_error() {
    for src in ["const;", "const volatile;", "static *p;"] {
        let e = cdef_err(src);
        assert!(
            e.message.starts_with("cannot parse"),
            "{src}: {}",
            e.message
        );
    }
}

/// `summary` of one parse with parameter lists read inline (`cdef_inline`) instead of
/// cut into raw pieces.
fn cdef_summary_inline(before: &str, src: &str) -> String {
    parser::FORCE_INLINE.with(|f| f.set(true));
    let s = cdef_summary_after(before, src);
    parser::FORCE_INLINE.with(|f| f.set(false));
    s
}

/// Parameter lists cut into raw pieces (each distinct piece parsed and resolved once)
/// give exactly the declarations, types, layouts and error messages of parsing every
/// parameter in place, for every kind of parameter and every kind of mistake in one.
#[test]
fn raw_parameter_pieces_resolve_as_inline_parameters() {
    let decls = [
        "int f(int, char *);",
        "int f(int a, int a2, int a);",
        "void f(void);",
        "void f();",
        "int f(int, ...);",
        "int f(const char *fmt, ...);",
        "int f(int (*cb)(void *, int), void *arg);",
        "int f(int (*)(int (*)(long), double), int);",
        "int f(int a[10], char b[][4], void g(int));",
        "typedef int t; int f(t, t *, const t);",
        "typedef int t; int f(t(t));",
        "int f(struct s *, struct s *); struct s { int x; };",
        "int f(enum e *); enum e { A, B };",
        "enum { N = 3 }; int f(int a[N], int b[N + 1]);",
        "int f(int a[...]);",
        "struct s { int (*cb)(int, char), (*cb2)(int, char); double (*f)(float x, float); };",
        "typedef void (*fp)(int, int); fp f(fp, fp);",
        "int f(unsigned long long, long double, _Bool, float _Complex);",
        "int f(int x[')']);",
        "int f(struct { int a, b; } s);",
        "int f(struct { int a; } s); int g(struct { int a; } s); struct { int z; } *h(void);",
        "int f(enum { A } e); int g(enum { A } e);",
        "int f(enum { A1 } e); int g(enum { A2 } e); int k(int x[A1 + A2]);",
        "int f(char c, int x[sizeof(int)]);",
        "int __stdcall f(int, int); int (__cdecl *g)(int, int);",
        // Mistakes inside a parameter list.
        "int f(int x y);",
        "int f(int,);",
        "int f(, int);",
        "int f(..., int);",
        "int f(...);",
        "int f(int ... );",
        "int f(unknown_t);",
        "int f(int, unknown_t *p);",
        "int f(void, int);",
        "int f(int (*cb)(void *, int);",
        "int f(int (*cb)(void *, int)));",
        "int f(int x[');",
        "int f(int a, char \"s\");",
        "int f(int a) int g(int);",
        "int f(const);",
        "int f(struct);",
        // A mistake in a later piece decides over an earlier resolve error, and a resolve
        // error keeps the declarations before it, as with one parse of the whole text.
        "unknown_t x; int f(int x y);",
        "int ok(int); int f(int x y);",
        "int ok(int); int v(int, ...); int g(..., int);",
        "int a; int h(unknown_t); int c(int);",
        "int a; int h(int, void); int c(char *);",
    ];
    for d in decls {
        for before in ["", "typedef long t2; struct s;"] {
            let split = cdef_summary_after(before, d);
            let inline = cdef_summary_inline(before, d);
            assert_eq!(split, inline, "{d}");
            assert!(
                !split.contains("internal error") && !split.contains("panic"),
                "{d}: {split}"
            );
        }
    }
    // The same piece in many prototypes, in a long text.
    let mut big = String::new();
    for i in 0..400 {
        big += &format!("struct r{i} {{ int a; }}; int g{i}(const char *, struct r{} *, int (*cb)(void *, int), ...);\n", i / 2);
    }
    assert_eq!(cdef_summary(&big), cdef_summary_inline("", &big));
    assert!(cdef_summary(&big).starts_with("Ok"));
    // A last parameter list that cannot be cut raw (a comma in brackets) makes the
    // unchecked resolve undo and the text run again with its pieces checked, which reads
    // that list in place: the types reused by text must then be the new namespace's own
    // nodes, not those of the undone one.
    let tail = format!("{big} int q(int x[','], const char *);");
    let mut n = ns();
    let undos = resolve::UNDOS.with(|u| u.get());
    n.cdef(&tail, &CdefOptions::default()).unwrap();
    assert_eq!(resolve::UNDOS.with(|u| u.get()), undos + 1);
    let const_char_p = n.parse_type("const char *").unwrap();
    for name in ["g0", "g399", "q"] {
        let Some(Decl::Function(f)) = n.decls.names.get(name) else {
            panic!("{name}")
        };
        let Kind::FuncPtr(sig) = &f.kind else {
            panic!()
        };
        let arg = sig
            .args
            .iter()
            .find(|a| a.cname() == const_char_p.cname())
            .unwrap_or_else(|| panic!("{name}: {}", f.cname()));
        assert!(Arc::ptr_eq(arg, &const_char_p), "{name}");
    }
}

/// A reused piece means the same type only while names keep their meaning: under
/// `override=True` a typedef may change between two identical pieces.
#[test]
fn raw_parameter_pieces_follow_redefinitions() {
    let mut n = ns();
    let opts = CdefOptions {
        override_: true,
        ..Default::default()
    };
    n.cdef(
        "typedef int t; int f(t *); typedef long t; int g(t *);",
        &opts,
    )
    .unwrap();
    assert_eq!(func(&n, "f"), "int(*)(int *)");
    assert_eq!(func(&n, "g"), "int(*)(long *)");
    // The same for specifiers reused by text (a return type).
    n.cdef(
        "typedef int r; r h(void); typedef long r; r k(void);",
        &opts,
    )
    .unwrap();
    assert_eq!(func(&n, "h"), "int(*)()");
    assert_eq!(func(&n, "k"), "long(*)()");
    // And identical pieces give the one interned node.
    let n = cdef("int f(const char *s, int); int g(const char *s, int);");
    let (Some(Decl::Function(f)), Some(Decl::Function(g))) =
        (n.decls.names.get("f"), n.decls.names.get("g"))
    else {
        panic!()
    };
    assert!(Arc::ptr_eq(f, g));
}

/// Generated texts (fixed seed): prototypes and function-pointer members whose
/// parameter lists are drawn from valid and broken pieces. Both readings of parameter
/// lists must agree on every one, errors included.
#[test]
fn raw_parameter_pieces_agree_on_generated_texts() {
    let pieces = [
        "int",
        "char *",
        "const char *s",
        "void *",
        "void",
        "...",
        "unsigned long n",
        "t",
        "t *p",
        "struct s *",
        "struct s",
        "int (*cb)(int, void *)",
        "double d[4]",
        "int a[N]",
        "enum e *",
        "long double",
        "float _Complex",
        "int x y",
        "",
        "const",
        "struct",
        "int (*)(",
        "int [",
        "'a'",
        "\"s\"",
        "struct { int a; } v",
        "int b[N + 1]",
        "unknown_t",
        "short int",
        "int const * const",
        "char (*(*f)(int))[3]",
    ];
    let mut seed: u64 = 0x2545F4914F6CDD1D;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..400 {
        let mut src = String::from("typedef int t; enum { N = 2 }; ");
        for f in 0..1 + next(4) {
            let nparams = next(5);
            let list: Vec<&str> = (0..nparams).map(|_| pieces[next(pieces.len())]).collect();
            let list = list.join(", ");
            if next(4) == 0 {
                src += &format!("struct m{f} {{ int (*fp)({list}); }}; ");
            } else {
                src += &format!("int f{f}({list}); ");
            }
        }
        for before in ["", "struct s;"] {
            let split = cdef_summary_after(before, &src);
            assert_eq!(split, cdef_summary_inline(before, &src), "{src}");
            if split.starts_with("Ok") {
                ok += 1;
            } else {
                failed += 1;
            }
        }
    }
    // Both outcomes are well represented.
    assert!(ok > 100 && failed > 100, "{ok} ok, {failed} failed");
}

/// Errors with a place in the source carry it as fields, and the message is built from
/// them: `cannot parse "LINE"` / `file:line:col: ` then the reason.
#[test]
fn errors_carry_their_location() {
    let e = cdef_err("int a;\n  int f(int x y);");
    let loc = e.location.as_deref().expect("a syntax error has a place");
    assert_eq!(
        (loc.file.as_str(), loc.line, loc.column),
        (preprocess::DEFAULT_FILE, 2, 15)
    );
    assert_eq!(
        (loc.source_line.as_str(), loc.token.as_str()),
        ("int f(int x y);", "y")
    );
    assert_eq!(loc.offset, "int a;\n  int f(int x ".len());
    assert_eq!(
        e.message,
        format!(
            "cannot parse \"int f(int x y);\"\n{}{}",
            loc.prefix(),
            e.reason()
        )
    );
    assert!(e.reason().starts_with("unexpected 'y'"), "{}", e.reason());

    // Resolve errors, with the file and line a line marker gives.
    let e = cdef_err("# 5 \"foo.h\"\nstruct s { int a; };\nstruct s { int b; };");
    let loc = e.location.as_deref().unwrap();
    assert_eq!(
        (loc.file.as_str(), loc.line, loc.column, loc.token.as_str()),
        ("foo.h", 6, 1, "struct")
    );
    assert_eq!(e.message, "foo.h:6:1: duplicate declaration of struct s");
    assert_eq!(e.reason(), "duplicate declaration of struct s");
    assert_eq!(e.detail, None);

    let e = cdef_err("int a;\nunknown_t x;");
    assert_eq!(
        e.detail,
        Some(ErrorDetail::UnknownTypeName("unknown_t".into()))
    );
    let loc = e.location.as_deref().unwrap();
    assert_eq!(
        (loc.line, loc.column, loc.token.as_str()),
        (2, 1, "unknown_t")
    );
    assert_eq!(e.reason(), "unknown type name 'unknown_t'");

    // In a parameter piece parsed on its own, the position is still the whole text's.
    let e = cdef_err("int g(int);\nint f(int, foo_t *p);");
    let loc = e.location.as_deref().unwrap();
    assert_eq!((loc.line, loc.column, loc.token.as_str()), (2, 12, "foo_t"));
    assert!(
        e.reason().starts_with("f arg 2: unknown type 'foo_t'"),
        "{}",
        e.reason()
    );
    assert_eq!(e.detail, None);

    // Directives quote the directive as read.
    let e = cdef_err("int a;\n#include <x.h> /* c */\n");
    let loc = e.location.as_deref().unwrap();
    assert_eq!(
        (loc.line, loc.column, loc.source_line.as_str()),
        (2, 1, "#include <x.h>")
    );
    assert!(e.message.starts_with(
        "cannot parse \"#include <x.h>\"\n<cdef source string>:2:1: #include is not supported"
    ));

    // Errors without a place.
    let e = cdef_err("int a; long a;");
    assert!(e.location.is_none());
    assert_eq!(e.reason(), e.message);
}

/// Type strings: messages name the type, not a place; what callers tell apart is typed.
#[test]
fn type_string_errors_are_typed() {
    let mut n = ns();
    let e = n.parse_type("foo *").unwrap_err();
    assert_eq!(e.detail, Some(ErrorDetail::UnknownTypeName("foo".into())));
    assert!(e.location.is_none());
    assert_eq!(e.message, "unknown identifier 'foo' (in type 'foo *')");
    let e = n.parse_type("int(int)").unwrap_err();
    assert_eq!(e.detail, Some(ErrorDetail::FunctionType));
    let e = n.parse_type("struct { int f(int); }").unwrap_err();
    assert_ne!(e.detail, Some(ErrorDetail::FunctionType), "{}", e.message);
}

/// A panic caught around the resolver is an internal error, of its own kind.
#[test]
fn caught_panics_are_internal_errors() {
    let e = CdefError::from_panic(Box::new("boom"), "cdef");
    assert_eq!(e.kind, ErrorKind::Internal);
    assert_eq!(e.message, "internal error in cdef (please report): boom");
    let e = CdefError::from_panic(Box::new(String::from("bang")), "typeof");
    assert_eq!(e.message, "internal error in typeof (please report): bang");
}

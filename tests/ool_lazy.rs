//! `ool::lazy`: an out-of-line module's names are declared in a namespace only when a
//! type string or a lib lookup names them, with the in-line layouts, and the modules it
//! includes answer for the names it does not have.

use std::sync::{Arc, Mutex};

use jitffi::cdef::{CdefOptions, Namespace};
use jitffi::ool::lazy::{declare_for_type_string, declare_global, included_constants};
use jitffi::ool::{self, Include, Realizer};
use jitffi::types::decls::Decl;
use jitffi::types::target::Target;

const CDEF: &str = "
    typedef struct { int x, y; } pt_t;
    struct node { struct node *next; pt_t p; unsigned b:3; };
    struct other { double d; };
    enum color { RED, GREEN = 5 };
    #define N 3
    typedef int fn_t(int);
    int add(int, int);
    long sum(pt_t *p, int n);
";

fn inline(text: &str) -> Namespace {
    let mut ns = Namespace::new(Target::host());
    ns.cdef(text, &CdefOptions::default()).unwrap();
    ns
}

fn module(text: &str, includes: Vec<Include>) -> Include {
    let mut ns = inline(text);
    let raw = ool::encode(&mut ns).unwrap().to_raw();
    let m = Arc::new(ool::decode(&raw).unwrap());
    Arc::new(Mutex::new(Realizer::new(m, Target::host(), includes)))
}

fn declared(ns: &Namespace) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
    let sorted = |it: Vec<&String>| {
        let mut v: Vec<String> = it.into_iter().cloned().collect();
        v.sort();
        v
    };
    (
        sorted(ns.decls.typedefs.keys().collect()),
        sorted(ns.decls.structs.keys().collect()),
        sorted(ns.decls.enums.keys().collect()),
        sorted(ns.decls.names.keys().collect()),
    )
}

#[test]
fn a_type_string_declares_only_what_it_names() {
    let r = module(CDEF, Vec::new());
    let mut ns = Namespace::new(Target::host());
    assert_eq!(declared(&ns), (vec![], vec![], vec![], vec![]));
    declare_for_type_string(&r, &mut ns, "struct node *[N]").unwrap();
    assert_eq!(
        declared(&ns),
        (vec![], vec!["node".into()], vec![], vec!["N".into()])
    );
    let t = ns.parse_type("struct node *[N]").unwrap();
    assert_eq!(t.cname(), "struct node *[3]");
    // the layout is the in-line one
    let mut want = inline(CDEF);
    let (got, exp) = (
        ns.parse_type("struct node").unwrap(),
        want.parse_type("struct node").unwrap(),
    );
    assert_eq!(got.size(), exp.size());
    let (gl, el) = (got.record_layout().unwrap(), exp.record_layout().unwrap());
    let offsets = |l: &jitffi::types::model::RecordLayout| {
        l.fields
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    f.offset,
                    f.bitshift,
                    f.bitsize,
                    f.ty.cname(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(offsets(gl), offsets(el));
    // a typedef, a function typedef, an enum tag
    declare_for_type_string(&r, &mut ns, "pt_t").unwrap();
    declare_for_type_string(&r, &mut ns, "fn_t *").unwrap();
    declare_for_type_string(&r, &mut ns, "enum color").unwrap();
    let (typedefs, structs, enums, _) = declared(&ns);
    assert_eq!(typedefs, ["pt_t"]);
    assert_eq!(structs, ["node"]);
    assert_eq!(enums, ["color"]);
    assert_eq!(ns.parse_type("fn_t *").unwrap().cname(), "int(*)(int)");
    assert!(!ns.decls.structs.contains_key("other"));
    // a name the module does not have declares nothing (the parser then refuses it)
    declare_for_type_string(&r, &mut ns, "no_such_t").unwrap();
    assert!(ns.parse_type("no_such_t").is_err());
}

#[test]
fn a_lib_name_declares_that_global_only() {
    let r = module(CDEF, Vec::new());
    let mut ns = Namespace::new(Target::host());
    assert!(declare_global(&r, &mut ns, "sum").unwrap());
    assert!(!declare_global(&r, &mut ns, "nothing").unwrap());
    let (typedefs, structs, _, names) = declared(&ns);
    assert_eq!(names, ["sum"]);
    assert!(typedefs.is_empty() && structs.is_empty());
    let Some(Decl::Function(t)) = ns.decls.names.get("sum") else {
        panic!("sum is a function")
    };
    assert_eq!(t.cname(), "long(*)(pt_t *, int)");
    assert!(declare_global(&r, &mut ns, "GREEN").unwrap());
    assert!(matches!(
        ns.decls.names.get("GREEN"),
        Some(Decl::IntConstant {
            value: 5,
            ty: Some(_)
        })
    ));
}

#[test]
fn includes_answer_for_names_the_module_lacks() {
    let base_text = "typedef struct { int x, y; } pt_t;\n#define BASE_K 7\nstruct box { pt_t a; };";
    let base = module(base_text, Vec::new());
    // written as the including module is: its own declarations, the records external
    let base_ns = inline(base_text);
    let mut top_only = Namespace::new(Target::host());
    top_only.include(&base_ns).unwrap();
    top_only
        .cdef(
            "int f(pt_t *); struct holder { struct box *b; };",
            &CdefOptions::default(),
        )
        .unwrap();
    let raw = ool::encode_with_includes(&mut top_only, &[&base_ns])
        .unwrap()
        .to_raw();
    let top: Include = Arc::new(Mutex::new(Realizer::new(
        Arc::new(ool::decode(&raw).unwrap()),
        Target::host(),
        vec![base.clone()],
    )));
    let mut ns = Namespace::new(Target::host());
    declare_for_type_string(&top, &mut ns, "struct box *").unwrap();
    declare_for_type_string(&top, &mut ns, "int[BASE_K]").unwrap();
    assert_eq!(ns.parse_type("int[BASE_K]").unwrap().cname(), "int[7]");
    assert_eq!(ns.parse_type("struct box").unwrap().size(), Some(8));
    assert_eq!(included_constants(&top), vec![("BASE_K".to_string(), 7)]);
}

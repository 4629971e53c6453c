//! Out-of-line tables against real cffi: the modules cffi writes decode and realize to
//! the layouts of jitffi's in-line cdef of the same text, and jitffi's encoder writes
//! the same tables (and the same module text) as cffi.

#[path = "ool_support.rs"]
mod support;

use std::sync::Arc;

use jitffi::cdef::{CdefOptions, Namespace};
use jitffi::ool::{self, Realizer, Tables};
use jitffi::types::decls::{Decl, Declarations};
use jitffi::types::model::{Kind, TypeRef};
use jitffi::types::target::Target;
use support::{run_cffi, CffiResult, CORPUS, REFUSED};

fn describe_type(t: &TypeRef) -> String {
    let mut s = format!(
        "{} [{}] size={:?} align={:?}",
        t.cname(),
        t.kind_name(),
        t.size(),
        t.align()
    );
    if let Some(l) = t.record_layout() {
        s.push_str(&format!(
            " flex={} packed={} {{",
            l.has_flexible_array, l.packed
        ));
        for f in &l.fields {
            s.push_str(&format!(
                " {}:{}@{}/{}:{}",
                f.name,
                f.ty.cname(),
                f.offset,
                f.bitshift,
                f.bitsize
            ));
        }
        s.push_str(" }");
    }
    if let Kind::Enum(e) = &t.kind {
        s.push_str(&format!(" {:?} {:?}", e.underlying, e.items));
    }
    s
}

/// Every declaration, normalized where the two forms say the same thing differently.
fn describe(d: &Declarations) -> Vec<String> {
    let mut out = Vec::new();
    for (n, t) in &d.typedefs {
        // The compiled form names the built-in FILE through a typedef, as cffi's does.
        if n != "FILE" {
            out.push(format!("typedef {n}: {}", describe_type(t)));
        }
    }
    for (n, t) in &d.structs {
        out.push(format!("struct {n}: {}", describe_type(t)));
        if let Some(l) = t.record_layout() {
            for f in &l.fields {
                out.push(format!("  field {n}.{}: {}", f.name, describe_type(&f.ty)));
            }
        }
    }
    for (n, t) in &d.unions {
        out.push(format!("union {n}: {}", describe_type(t)));
    }
    for (n, t) in &d.enums {
        out.push(format!("enum {n}: {}", describe_type(t)));
    }
    for (n, decl) in &d.names {
        let s = match decl {
            Decl::Function(t) => format!("function {}", describe_type(t)),
            Decl::Variable { ty, is_const: true } if !matches!(ty.kind, Kind::Array(..)) => {
                format!("constant {}", describe_type(ty))
            }
            Decl::Variable { ty, .. } => format!("variable {}", describe_type(ty)),
            Decl::IntConstant { value, ty: Some(t) } if matches!(t.kind, Kind::Enum(_)) => {
                format!("enumerator {value} of {}", t.cname())
            }
            Decl::IntConstant { value, .. } => format!("int {value}"),
            Decl::UnknownConstant { ty: Some(t) } => format!("constant {}", describe_type(t)),
            Decl::UnknownConstant { ty: None } => "unknown".to_string(),
            Decl::ExternPython(t) => format!("extern python {}", t.cname()),
        };
        out.push(format!("{n}: {s}"));
    }
    out.sort();
    out
}

fn inline(text: &str, packed: bool) -> Namespace {
    let mut ns = Namespace::new(Target::host());
    ns.cdef(
        text,
        &CdefOptions {
            packed,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("cdef {text:?}: {e:?}"));
    ns
}

type TypeNames = (Vec<String>, Vec<String>, Vec<String>);

fn realized(tables: &ool::RawTables) -> (Declarations, TypeNames) {
    let module = ool::decode(tables).unwrap_or_else(|e| panic!("decode: {e}"));
    let mut r = Realizer::new(Arc::new(module), Target::host(), Vec::new());
    let (d, _fn_typedefs) = r.declarations().unwrap_or_else(|e| panic!("realize: {e}"));
    let mut lt = r.list_types();
    // The compiled form lists the built-in FILE (as cffi's does); in-line does not.
    lt.0.retain(|n| n != "FILE");
    lt.1.retain(|n| n != "_IO_FILE");
    (d, lt)
}

fn inline_list_types(ns: &Namespace) -> TypeNames {
    let mut lt = ns.list_types();
    lt.0.retain(|n| n != "FILE");
    lt
}

/// Marked in the corpus: qualifiers inside types, which the model drops.
fn uses_inner_const(text: &str) -> bool {
    text.contains("const char") || text.contains("const int *") || text.contains("const void")
}

/// Checks one cdef against cffi's module for it; true if jitffi wrote the same file.
fn check_entry(
    label: &str,
    text: &str,
    packed: bool,
    res: &CffiResult,
    failures: &mut Vec<String>,
) -> bool {
    let m = match res {
        CffiResult::Module(m) => m,
        CffiResult::Error(c, msg) => panic!("cffi refused {label} {text:?}: {c}: {msg}"),
    };
    assert_eq!(m.version, 0x2601);
    assert!(ool::check_version(Some(m.version), m.raw.types.is_empty()).unwrap());
    let mut ns = inline(text, packed);

    // (a) cffi's tables realize to the in-line layouts.
    let (d, lt) = realized(&m.raw);
    let want = describe(&ns.decls);
    let got = describe(&d);
    if want != got {
        failures.push(format!(
            "{label} realize differs:\n  inline: {want:#?}\n  ool:    {got:#?}"
        ));
    }
    if lt != inline_list_types(&ns) {
        failures.push(format!(
            "{label} list_types: {lt:?} vs {:?}",
            inline_list_types(&ns)
        ));
    }

    // The layouts real cffi computes for its module: the same from jitffi's reading.
    let module = Arc::new(ool::decode(&m.raw).unwrap());
    let mut r = Realizer::new(module, Target::host(), Vec::new());
    let mut ours = Vec::new();
    let (_, structs, unions) = r.list_types();
    for (kind, names) in [("struct", structs), ("union", unions)] {
        for n in names {
            let t = r.record(&n, kind == "union").unwrap().unwrap();
            match (t.size(), t.align()) {
                (Some(s), Some(a)) => ours.push(format!("LAYOUT {kind} {n} {s} {a}")),
                _ => ours.push(format!("LAYOUT {kind} {n} error")),
            }
            let layout = t.record_layout().cloned();
            for f in layout.iter().flat_map(|l| l.fields.iter()) {
                // cffi reports a flexible array member with bitshift -2.
                let flexible = matches!(f.ty.kind, Kind::Array(_, None));
                let shift = if flexible { -2 } else { f.bitshift };
                ours.push(format!(
                    "FIELD {kind} {n} {} {} {} {}",
                    f.name, f.offset, shift, f.bitsize
                ));
            }
        }
    }
    let mut theirs_layouts: Vec<String> = m
        .layouts
        .iter()
        .map(|l| l.replacen(" error ", " error", 1))
        .map(|l| match l.find(" error") {
            Some(i) => l[..i + 6].to_string(),
            None => l,
        })
        .collect();
    theirs_layouts.sort();
    ours.sort();
    if ours != theirs_layouts {
        failures.push(format!(
            "{label} layouts differ from real cffi's:\n  jitffi: {ours:#?}\n  cffi:   {theirs_layouts:#?}"
        ));
    }

    // Round trip: jitffi's own tables realize the same way.
    let mine = match ool::encode(&mut ns) {
        Ok(t) => t,
        Err(e) => {
            failures.push(format!("{label} encode failed: {e}"));
            return false;
        }
    };
    let (d2, _) = realized(&mine.to_raw());
    if describe(&d2) != want {
        failures.push(format!(
            "{label} round trip differs:\n  {:#?}\n  {:#?}",
            describe(&d2),
            want
        ));
    }

    // (b) the same tables and the same file as cffi.
    if uses_inner_const(text) {
        return false;
    }
    let theirs: Tables = ool::decode(&m.raw).unwrap().tables;
    if mine != theirs {
        failures.push(format!(
            "{label} tables differ:\n  jitffi: {mine:?}\n  cffi:   {theirs:?}"
        ));
        return false;
    }
    assert_eq!(mine.to_raw(), m.raw, "{label} raw bytes");
    let name = m.text.split('\'').nth(1).unwrap_or_default();
    let text_out = ool::render_module(name, "_cffi_backend", &mine.to_raw(), &[]);
    if text_out != m.text {
        failures.push(format!(
            "{label} module text differs:\n{text_out}\nvs\n{}",
            m.text
        ));
        return false;
    }
    true
}

#[test]
fn corpus_matches_cffi() {
    if !support::python_has_cffi() {
        eprintln!("cffi not installed: skipped");
        return;
    }
    let results = run_cffi(CORPUS);
    let mut failures = Vec::new();
    let mut identical = 0;
    for (i, ((text, packed), res)) in CORPUS.iter().zip(&results).enumerate() {
        identical += usize::from(check_entry(
            &format!("corpus[{i}]"),
            text,
            *packed,
            res,
            &mut failures,
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let with_const = CORPUS.iter().filter(|(t, _)| uses_inner_const(t)).count();
    assert_eq!(identical, CORPUS.len() - with_const);
    assert!(with_const >= 2);
}

/// The benchmark header (2000 functions, 200 structs), and the same without `const`.
#[test]
fn big_header_matches_cffi() {
    if !support::python_has_cffi() {
        return;
    }
    let path = std::env::temp_dir().join(format!("jitffi_ool_big_{}.h", std::process::id()));
    let status = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/bench_cdef.py"
        ))
        .arg("--write-header")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let header = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let plain = header.replace("const char *", "char *");
    assert!(!uses_inner_const(&plain) && uses_inner_const(&header));
    let corpus = [(header.as_str(), false), (plain.as_str(), false)];
    let results = run_cffi(&corpus);
    let mut failures = Vec::new();
    check_entry("big header", &header, false, &results[0], &mut failures);
    let same = check_entry(
        "big header without const",
        &plain,
        false,
        &results[1],
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(same);
}

#[test]
fn encoder_refuses_what_cffi_refuses() {
    if !support::python_has_cffi() {
        return;
    }
    let corpus: Vec<(&str, bool)> = REFUSED.iter().map(|t| (*t, false)).collect();
    for (text, res) in REFUSED.iter().zip(run_cffi(&corpus)) {
        assert!(
            matches!(res, CffiResult::Error(..)),
            "cffi accepted {text:?}"
        );
        let mut ns = inline(text, false);
        assert!(ool::encode(&mut ns).is_err(), "jitffi encoded {text:?}");
    }
}

#[test]
fn output_is_deterministic() {
    let text = CORPUS[0].0;
    let a = ool::encode(&mut inline(text, false)).unwrap();
    let b = ool::encode(&mut inline(text, false)).unwrap();
    assert_eq!(a, b);
    let ra = ool::render_module("m", "_cffi_backend", &a.to_raw(), &[]);
    let rb = ool::render_module("m", "_cffi_backend", &b.to_raw(), &[]);
    assert_eq!(ra, rb);
}

#[test]
fn unnamed_bitfield_without_a_neighbour_is_written_as_cffi_writes_it() {
    // Recovered from the layout alone, this one could only be refused (no bitfield next
    // to it gives its type, and writing it without would move `b`); the namespace keeps
    // the members as declared, so it is written as cffi writes it.
    let text = "struct s { char a; long : 0; char b; };";
    assert!(ool::encode(&mut inline(text, false)).is_ok());
    if !support::python_has_cffi() {
        return;
    }
    let results = run_cffi(&[(text, false)]);
    let mut failures = Vec::new();
    let same = check_entry("long :0", text, false, &results[0], &mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(same);
}

#[test]
fn cffi_unnamed_bitfields_realize_like_inline() {
    if !support::python_has_cffi() {
        return;
    }
    let corpus = [(
        "struct s { int a : 3; int : 0; int b : 2; char c; int : 4; int d : 4; };",
        false,
    )];
    let res = run_cffi(&corpus);
    let CffiResult::Module(m) = &res[0] else {
        panic!("cffi refused")
    };
    let ns = inline(corpus[0].0, false);
    assert_eq!(describe(&realized(&m.raw).0), describe(&ns.decls));
}

#[test]
fn lazy_lookups() {
    let mut ns = inline(CORPUS[0].0, false);
    let raw = ool::encode(&mut ns).unwrap().to_raw();
    let module = Arc::new(ool::decode(&raw).unwrap());
    let mut r = Realizer::new(module, Target::host(), Vec::new());
    let (t, func) = r.typename("point_t").unwrap().unwrap();
    assert!(!func);
    assert_eq!(t.size(), Some(16));
    assert_eq!(r.record("value", true).unwrap().unwrap().size(), Some(8));
    assert!(r.record("value", false).unwrap().is_none());
    assert!(matches!(r.global("move").unwrap(), Some(Decl::Function(_))));
    assert!(matches!(
        r.global("MAX_ITEMS").unwrap(),
        Some(Decl::IntConstant { value: 128, .. })
    ));
    assert!(r.global("nope").unwrap().is_none());
    assert_eq!(r.enum_tag("color").unwrap().unwrap().cname(), "enum color");
}

#[test]
fn includes_match_cffi() {
    if !support::python_has_cffi() {
        return;
    }
    let a_text =
        "struct pt { int x, y; }; typedef struct pt pt_t; struct op; enum col { R, G = 4 };
        typedef int myint;\n#define AD 5\nint afunc(int); typedef struct { int q; } anon_t;
        union un { int i; char c; }; enum { ANON_E = 9 };";
    let b_text = "struct bb { pt_t p; myint m; enum col c; struct op *o; anon_t an; union un u; };
        pt_t *get(void); enum own { O1 = 2 };";
    let res = support::run_cffi_opts(&[(a_text, "-"), (b_text, "include=0")]);
    let (CffiResult::Module(ma), CffiResult::Module(mb)) = (&res[0], &res[1]) else {
        panic!("cffi refused the include pair")
    };
    let mut a = inline(a_text, false);
    let mut b = Namespace::new(Target::host());
    b.include(&a).unwrap();
    b.cdef(b_text, &CdefOptions::default()).unwrap();

    let ta = ool::encode(&mut a).unwrap();
    assert_eq!(ta, ool::decode(&ma.raw).unwrap().tables);
    let tb = ool::encode_with_includes(&mut b, &[&a]).unwrap();
    assert_eq!(tb, ool::decode(&mb.raw).unwrap().tables);
    let text = ool::render_module("_m1", "_cffi_backend", &tb.to_raw(), &["_m0".to_string()]);
    assert_eq!(text, mb.text);

    // Realized with the include: B's records are A's, and B's layouts are the in-line ones.
    let ra = Arc::new(ool::decode(&ma.raw).unwrap());
    let ra = Arc::new(std::sync::Mutex::new(Realizer::new(
        ra,
        Target::host(),
        Vec::new(),
    )));
    let rb = Arc::new(ool::decode(&mb.raw).unwrap());
    let mut rb = Realizer::new(rb, Target::host(), vec![ra.clone()]);
    let bb = rb.record("bb", false).unwrap().unwrap();
    let want = b.decls.structs["bb"].clone();
    assert_eq!(describe_type(&bb), describe_type(&want));
    let (pt_b, _) = rb.typename("pt_t").unwrap().unwrap();
    let pt_a = ra.lock().unwrap().record("pt", false).unwrap().unwrap();
    let (Kind::Record(x), Kind::Record(y)) = (&pt_b.kind, &pt_a.kind) else {
        panic!()
    };
    assert!(Arc::ptr_eq(x, y));
    // Included enums are copied in full, with their enumerators.
    assert!(matches!(
        rb.global("G").unwrap(),
        Some(Decl::IntConstant { value: 4, .. })
    ));
    assert!(rb.global("AD").unwrap().is_none());
}

#[test]
fn pack_option_like_cffi() {
    if !support::python_has_cffi() {
        return;
    }
    let text = "struct p { char c; int i; short s; long long l; };";
    let res = support::run_cffi_opts(&[(text, "pack=1"), (text, "pack=4")]);
    let CffiResult::Module(m) = &res[0] else {
        panic!("cffi refused pack=1")
    };
    let mut ns = Namespace::new(Target::host());
    ns.cdef(
        text,
        &CdefOptions {
            pack: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        ool::encode(&mut ns).unwrap(),
        ool::decode(&m.raw).unwrap().tables
    );
    // cffi's writer refuses pack=N for N > 1 (it can only write "packed"); so does
    // jitffi's, rather than write a layout the reader would compute differently.
    assert!(matches!(&res[1], CffiResult::Error(c, _) if c == "NotImplementedError"));
    let mut ns = Namespace::new(Target::host());
    ns.cdef(
        text,
        &CdefOptions {
            pack: Some(4),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(ool::encode(&mut ns).is_err());
}

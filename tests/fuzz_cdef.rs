//! Fuzzing the cdef parser with proptest: random token soups and mutated valid cdefs
//! must give Ok or a CdefError, never a panic (a caught panic shows up as an error of
//! kind `Internal`, which is also a failure here) and never hang.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jitffi::cdef::{CdefOptions, ErrorKind, Namespace};
use jitffi::types::target::Target;
use proptest::prelude::*;

static RAN: AtomicUsize = AtomicUsize::new(0);

const TOKENS: &[&str] = &[
    "int",
    "char",
    "unsigned",
    "signed",
    "long",
    "short",
    "void",
    "double",
    "float",
    "_Bool",
    "struct",
    "union",
    "enum",
    "typedef",
    "const",
    "volatile",
    "restrict",
    "extern",
    "static",
    "\"Python\"",
    "\"C\"",
    "...",
    "*",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ";",
    ",",
    ":",
    "=",
    "+",
    "-",
    "~",
    "<<",
    ">>",
    "&",
    "|",
    "^",
    "/",
    "%",
    "!",
    "?",
    "0",
    "1",
    "42",
    "0x7f",
    "017",
    "'a'",
    "'\\n'",
    "1.5",
    "x",
    "y",
    "s",
    "t",
    "foo",
    "size_t",
    "FILE",
    "int8_t",
    "sizeof",
    "#define",
    "#include",
    "# 3 \"f.h\"",
    "\n",
    "\\\n",
    "/*",
    "*/",
    "//",
    "__attribute__",
    "@",
    "é",
    "\t",
    "A",
    "B",
    "_Complex",
    "long double",
    "__restrict",
    "(*)",
    "[5]",
    "[...]",
    "[]",
    "(void)",
    "(int, ...)",
];

const SEEDS: &[&str] = &[
    "int f(int, char *);",
    "typedef struct { int a; char b[4]; } s_t, *s_p;",
    "struct node { int v; struct node *next; };",
    "struct s { int a:3; int :0; unsigned b:5; union { int c; float d; }; };",
    "enum e { A = 1 << 3, B = A | 2, C = -1, D = 'x', ... };",
    "int (*signal(int, void (*)(int)))(int);",
    "#define N 0x10\nint arr[N][2];",
    "static const int K = (3 + 4) * 2;",
    "extern \"Python\" { int cb(int); }",
    "typedef int fn_t(int); fn_t *p;",
    "struct flex { int n; double a[]; };",
    "typedef ... opaque_t; typedef int... i_t;",
    "# 12 \"x.h\"\nint printf(const char *, ...);",
];

fn run(src: &str) {
    let start = Instant::now();
    for target in [Target::X86_64_LINUX, Target::AARCH64_LINUX] {
        let mut ns = Namespace::new(target);
        let packed = src.len().is_multiple_of(3);
        let opts = CdefOptions {
            override_: src.len().is_multiple_of(2),
            packed,
            pack: None,
        };
        if let Err(e) = ns.cdef(src, &opts) {
            assert!(
                e.kind != ErrorKind::Internal && !e.message.contains("internal error"),
                "panic on {src:?}: {}",
                e.message
            );
        }
        // The same text as a type string, and some types against what was declared.
        for t in [src, "struct s", "s_t *", "int(*)[5]", "fn_t *"] {
            if let Err(e) = ns.parse_type(t) {
                assert!(
                    e.kind != ErrorKind::Internal && !e.message.contains("internal error"),
                    "panic on type {t:?}: {}",
                    e.message
                );
            }
        }
        // Layouts are computed lazily by nobody else here: touch them all.
        for ty in ns.decls.structs.values().chain(ns.decls.unions.values()) {
            let _ = ty.size();
        }
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?} on {src:?}",
        start.elapsed()
    );
    RAN.fetch_add(1, Ordering::Relaxed);
}

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..60).prop_map(|toks| toks.join(" "))
}

fn mutated_seed() -> impl Strategy<Value = String> {
    (
        prop::sample::select(SEEDS),
        prop::collection::vec((any::<u16>(), 0u8..4, prop::sample::select(TOKENS)), 1..6),
    )
        .prop_map(|(seed, edits)| {
            let mut s: Vec<char> = seed.chars().collect();
            for (at, op, tok) in edits {
                if s.is_empty() {
                    s.extend(tok.chars());
                    continue;
                }
                let i = at as usize % s.len();
                match op {
                    0 => {
                        s.remove(i);
                    }
                    1 => {
                        for (k, c) in tok.chars().enumerate() {
                            s.insert(i + k, c);
                        }
                    }
                    2 => {
                        let j = (i + 1 + at as usize % 7).min(s.len());
                        s.drain(i..j);
                    }
                    _ => {
                        let j = (at as usize / 7) % s.len();
                        s.swap(i, j);
                    }
                }
            }
            s.into_iter().collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(src in token_soup()) {
        run(&src);
    }

    #[test]
    fn mutated_cdefs_never_panic(src in mutated_seed()) {
        run(&src);
    }

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,80}") {
        run(&src);
    }
}

#[test]
fn pathological_inputs() {
    let cases = [
        "(".repeat(100_000),
        "*".repeat(100_000),
        format!("int x{};", "[1]".repeat(10_000)),
        format!("int {}x;", "*".repeat(50_000)),
        format!("enum e {{ A = {} }};", "-".repeat(50_000) + "1"),
        format!("int a[{}];", "1+".repeat(20_000) + "1"),
        "struct s { ".repeat(5_000),
        "/*".to_string(),
        "'".to_string(),
        "\"".to_string(),
        "#".to_string(),
        "\\".to_string(),
        "int f(int (*(*(*(*(*(*(*(*(*(*x)))))))))));".to_string(),
        format!(
            "typedef int t0; {}",
            (1..2000)
                .map(|i| format!("typedef t{} t{i};", i - 1))
                .collect::<String>()
        ),
    ];
    for c in &cases {
        run(c);
    }
}

#[test]
fn zz_report_count() {
    // Printed so the number of fuzz inputs shows in the test log (run with --nocapture).
    eprintln!(
        "fuzz inputs run so far in this process: {}",
        RAN.load(Ordering::Relaxed)
    );
}

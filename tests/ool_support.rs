//! Shared by the ool_* tests: running real cffi on a corpus of cdefs and reading the
//! tables of the modules it writes.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

use jitffi::ool::RawTables;

/// Writes each cdef with real cffi (`set_source(name, None)` + `emit_python_code`),
/// then runs the written module against a stand-in `_cffi_backend` that prints the
/// tables it is given, one item per line in hex.
const SCRIPT: &str = r#"
import sys, os, tempfile, types, cffi, _cffi_backend
real_backend = _cffi_backend
src = sys.stdin.read().split('\n=====CDEF\n')[1:]
tmp = tempfile.mkdtemp()
captured = {}
sys.path.insert(0, tmp)
ffis = []
class FakeFFI:
    def __init__(self, name, **kw):
        captured.clear()
        captured.update(kw)
fake = types.ModuleType('_cffi_backend')
fake.FFI = FakeFFI
for i, item in enumerate(src):
    opts, text = item.split('\n', 1)
    kw = {}
    if 'packed' in opts: kw['packed'] = True
    if opts.startswith('pack='): kw['pack'] = int(opts[5:])
    print('BEGIN', i)
    ffi = cffi.FFI()
    ffis.append(ffi)
    try:
        if opts.startswith('include='):
            ffi.include(ffis[int(opts[8:])])
        ffi.cdef(text, **kw)
        ffi.set_source('_m%d' % i, None)
        path = os.path.join(tmp, '_m%d.py' % i)
        import contextlib, io
        with contextlib.redirect_stdout(io.StringIO()):
            ffi.emit_python_code(path)
    except Exception as e:
        print('ERROR', type(e).__name__, str(e).replace('\n', ' '))
        print('END')
        continue
    data = open(path, 'rb').read()
    print('TEXT', data.hex())
    captured.clear()
    for k in [k for k in sys.modules if k.startswith('_m')]:
        del sys.modules[k]
    sys.modules['_cffi_backend'] = fake
    exec(compile(data, path, 'exec'), {})
    sys.modules['_cffi_backend'] = real_backend
    print('VERSION', captured.get('_version'))
    print('TYPES', captured.get('_types', b'').hex())
    g = captured.get('_globals', ())
    for k in range(0, len(g), 2):
        print('GLOBAL', g[k].hex(), g[k + 1])
    for s in captured.get('_struct_unions', ()):
        print('STRUCT', ' '.join(x.hex() for x in s))
    for e in captured.get('_enums', ()):
        print('ENUM', e.hex())
    for t in captured.get('_typenames', ()):
        print('TYPENAME', t.hex())
    print('INCLUDES', len(captured.get('_includes', ())))
    # The layouts real cffi computes when it loads the module it wrote.
    sys.modules['_cffi_backend'] = real_backend
    for k in [k for k in sys.modules if k.startswith('_m')]:
        del sys.modules[k]
    try:
        ns = {}
        exec(compile(data, path, 'exec'), ns)
        lffi = ns['ffi']
        _, structs, unions = lffi.list_types()
        for kind, names in (('struct', structs), ('union', unions)):
            for n in names:
                try:
                    t = lffi.typeof(kind + ' ' + n)
                    print('LAYOUT', kind, n, lffi.sizeof(t), lffi.alignof(t))
                    for fname, f in t.fields or ():
                        print('FIELD', kind, n, fname or '-', f.offset, f.bitshift, f.bitsize)
                except Exception as e:
                    print('LAYOUT', kind, n, 'error', type(e).__name__)
    except Exception as e:
        print('LOADERROR', type(e).__name__, str(e).replace('\n', ' '))
    print('END')
"#;

pub struct CffiModule {
    /// `kind name size align` / `kind name field offset bitshift bitsize` lines, as
    /// real cffi reports them after loading the module.
    pub layouts: Vec<String>,
    pub text: String,
    pub version: i64,
    pub raw: RawTables,
}

pub enum CffiResult {
    Module(CffiModule),
    /// cffi refused: the exception's class name and message.
    Error(String, String),
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

pub fn python_has_cffi() -> bool {
    Command::new("python3")
        .args(["-c", "import cffi"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs real cffi on each `(cdef, packed)`.
pub fn run_cffi(corpus: &[(&str, bool)]) -> Vec<CffiResult> {
    let with_opts: Vec<(&str, &str)> = corpus
        .iter()
        .map(|(t, p)| (*t, if *p { "packed" } else { "-" }))
        .collect();
    run_cffi_opts(&with_opts)
}

/// Runs real cffi on each `(cdef, options)`; options are `-`, `packed`, or
/// `pack=N`, or `include=K` (the FFI of item K, written first, is included).
pub fn run_cffi_opts(corpus: &[(&str, &str)]) -> Vec<CffiResult> {
    let mut input = String::new();
    for (text, opts) in corpus {
        input.push_str("\n=====CDEF\n");
        input.push_str(opts);
        input.push('\n');
        input.push_str(text);
    }
    let mut child = Command::new("python3")
        .args(["-W", "ignore", "-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the cffi script failed");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut results = Vec::new();
    let mut cur: Option<CffiModule> = None;
    let mut err: Option<(String, String)> = None;
    for line in stdout.lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "BEGIN" => {
                cur = Some(CffiModule {
                    layouts: Vec::new(),
                    text: String::new(),
                    version: 0,
                    raw: RawTables::default(),
                });
                err = None;
            }
            "ERROR" => {
                let (cls, msg) = rest.split_once(' ').unwrap_or((rest, ""));
                err = Some((cls.to_string(), msg.to_string()));
            }
            "TEXT" => cur.as_mut().unwrap().text = String::from_utf8(unhex(rest)).unwrap(),
            "VERSION" => cur.as_mut().unwrap().version = rest.parse().unwrap(),
            "TYPES" => cur.as_mut().unwrap().raw.types = unhex(rest),
            "GLOBAL" => {
                let (b, v) = rest.split_once(' ').unwrap();
                cur.as_mut()
                    .unwrap()
                    .raw
                    .globals
                    .push((unhex(b), v.parse().unwrap()));
            }
            "STRUCT" => {
                let items = rest.split(' ').map(unhex).collect();
                cur.as_mut().unwrap().raw.struct_unions.push(items);
            }
            "ENUM" => cur.as_mut().unwrap().raw.enums.push(unhex(rest)),
            "TYPENAME" => cur.as_mut().unwrap().raw.typenames.push(unhex(rest)),
            "LAYOUT" | "FIELD" => cur.as_mut().unwrap().layouts.push(line.to_string()),
            "LOADERROR" => panic!("real cffi could not load its own module: {rest}"),
            "INCLUDES" => cur.as_mut().unwrap().raw.num_includes = rest.parse().unwrap(),
            "END" => {
                let m = cur.take().unwrap();
                results.push(match err.take() {
                    Some((c, msg)) => CffiResult::Error(c, msg),
                    None => CffiResult::Module(m),
                });
            }
            _ => panic!("unexpected line from the cffi script: {line}"),
        }
    }
    assert_eq!(results.len(), corpus.len());
    results
}

/// Declarations covering every kind of table entry. `true`: declared with
/// `packed=True`. Entries marked `const` use qualifiers inside types, which the type
/// model does not keep (see `ool::encode`).
pub const CORPUS: &[(&str, bool)] = &[
    (
        "struct point { int x; unsigned int flags : 3; double w; };
         union value { int i; float f; char bytes[8]; };
         enum color { RED, GREEN = 5, BLUE = -1 };
         typedef struct point point_t;
         typedef int (*callback_t)(struct point *, void *);
         int printf(char *fmt, ...);
         void move(struct point *p, int dx);
         extern int counter;
         #define MAX_ITEMS 128",
        false,
    ),
    ("struct s { char a; int b; short c; long long d; };", false),
    ("struct s { char a; int b; short c; long long d; };", true),
    ("struct s { char a; int b : 5; int c : 7; char d; };", true),
    ("union u { char c; double d; int a[3]; };", false),
    ("struct outer { int a; union { int b; float c; }; struct { char d; char e; }; int f; };", false),
    ("struct o2 { int a; struct { int b; union { short c; char d; }; }; long e; };", false),
    ("typedef struct { int x, y; } pair_t; typedef union { int i; void *p; } any_t; pair_t make(int, int);", false),
    ("struct bits { unsigned a : 1; unsigned b : 2; unsigned c : 30; signed char d : 3; long e : 40; };", false),
    ("struct fl { int n; double data[]; }; struct fl *alloc_fl(int n);", false),
    ("enum big { B0 = 0, B1 = 0x7fffffff, B2 = 0xffffffff }; enum neg { N0 = -5, N1, N2 = 100 };", false),
    ("enum huge { H0 = 0x100000000, H1 }; enum hneg { HN = -0x100000000 }; enum e8 { E = 1 };", false),
    ("typedef enum { T_A, T_B = 7 } tenum_t; enum { ANON_A = 3, ANON_B };", false),
    ("typedef int myint; typedef myint *myint_p; typedef unsigned long ul_t; typedef char name_t[32];", false),
    ("int arr[10]; int grid[3][4]; int (*pgrid)[5]; char *names[]; extern double matrix[2][2];", false),
    (
        "typedef void (*handler_t)(int, void *); int (*get_cb(void))(int); void set(handler_t h, int (*f)(long, ...));",
        false,
    ),
    ("int vf(int n, ...); void vv(void); double mix(float, double, long double, _Bool, char);", false),
    ("extern int errno_like; extern struct point2 { int a; } origin; extern int *ptr_global;", false),
    ("#define A 1\n#define B -2\n#define C 0x7fffffffffffffff\n#define D 0xffffffffffffffff\nstatic const int SC = 42;", false),
    ("static const int unknown_c; static const double dc; const int ci;", false),
    ("struct opaque; struct opaque *get_opaque(void); typedef struct hidden hidden_t; void use(hidden_t *);", false),
    ("typedef int fn_t(int, char); fn_t *pick(int); int call(fn_t *f);", false),
    (
        "int8_t a8; uint16_t b16; int32_t c32; uint64_t d64; size_t sz; ssize_t ssz; intptr_t ip; uintptr_t up;
         ptrdiff_t pd; wchar_t wc; char16_t c16; char32_t c32b; int_least8_t l8; uint_fast32_t f32; intmax_t im;
         float _Complex fc; double _Complex dcx; unsigned char uc; signed char sc; short sh; unsigned short us;",
        false,
    ),
    ("struct list { struct list *next; struct list *prev; int value; }; struct tree { struct tree *kids[2]; struct list l; };", false),
    ("FILE *fopen(char *, char *); int fclose(FILE *);", false),
    ("struct node; typedef struct node node_t; struct node { node_t *next; int v; };", false),
    ("struct a { int x; }; struct b { struct a inner; struct a arr[3]; }; struct c { struct b b; char tail; };", false),
    ("struct pk { char c; int i; short s; };", true),
    ("int const_fn(const char *s, const void *p); extern const char *const_name;", false),
    ("struct s2 { const char *name; const int *vals; };", false),
    ("typedef struct { int a; } *foo_p; foo_p mk(void);", false),
    ("typedef struct tagged { int a; } tagged_t, *tagged_p; tagged_p tp(tagged_t);", false),
    ("struct fs { int (*fns[4])(int); char *(*pa)[3]; void (*(*nest)(int))(long); };", false),
    ("typedef enum col2 { C1, C2 } col2_t; col2_t getc2(void); enum col2 *pc2;", false),
    ("void takes_arr(int a[5], char b[]); void takes_fn(int f(int));", false),
    ("struct { int x; } anon_var; union { int a; float b; } uvar;", false),
    ("typedef double vec3[3]; vec3 *vp; void f3(vec3 v); vec3 gv;", false),
    ("long double ld; typedef long double ld_t; _Bool bb; ld_t fl(ld_t, ...);", false),
    ("struct e0 { int a; }; typedef struct e0 e0_t; typedef e0_t e0b_t; e0b_t *ge(void);", false),
    ("int fv(void); int (*fp)(void); int (*fpa[2])(void); void (*sig(int, void (*)(int)))(int);", false),
    ("struct later; typedef struct later later_t; struct later { later_t *self; int v[2][3]; };", false),
    ("struct lookalike { struct { int a; } s; int a; }; struct { int z; } zz;", false),
    ("struct ub { int a : 3; int : 0; int b : 2; char c; int : 4; int d : 4; };", false),
    ("struct ub2 { int x : 2; int : 3; int y : 2; int : 0; int z : 4; char c; };", false),
    ("typedef int (*cmp_t)(void *, void *); void qs(void *, size_t, size_t, cmp_t); cmp_t cmps[3];", false),
];

/// Entries real cffi refuses in ABI mode; jitffi's encoder must refuse them too.
pub const REFUSED: &[&str] = &[
    "extern \"Python\" int cb(int);",
    "#define N ...",
    "enum e { A, B = ... };",
];

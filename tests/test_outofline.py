"""The out-of-line ABI mode: modules written by real cffi (`emit_python_code`) load into
jitffi's `_cffi_backend.FFI` and agree with real cffi loading them and with jitffi's
in-line FFI for the same cdef; modules jitffi writes round-trip, are deterministic and
load into real cffi too; malformed tables raise; misuse of the builder gives cffi's
errors."""
import importlib
import io
import json
import os
import random
import subprocess
import sys
import textwrap
import zlib

import pytest

import cffi  # a test dependency: a missing cffi must fail, not skip
import jitffi
from jitffi import _cffi_backend

from conftest import PYTHON, build_clib

# Where the jitffi this interpreter imported lives (the source tree's, or the target's
# build under .ci/aarch64): subprocesses must import the same one.
PY_DIR = os.path.dirname(os.path.dirname(os.path.abspath(jitffi.__file__)))

CDEF = """
typedef struct { int x, y; } pt_t;
struct node { struct node *next; int v; unsigned b:3; signed int c:5; };
union u { int i; double d; char c[3]; };
struct anon { int a; union { int b; float f; }; struct { char c, d; } s; };
struct flex { int n; double items[]; };
struct nest { pt_t p; struct node n[2]; union u w; };
enum color { RED, GREEN = -5, BLUE = 0x7fffffff };
enum big { BIG = 0xffffffffff };
#define N 42
#define NEG -7
static const int SC = 9;
typedef int (*cmp_t)(const void *, const void *);
typedef int fn_t(int);
typedef pt_t pts_t[4];
typedef unsigned long long ull;
int add(int, int);
pt_t mkpt(int x, int y);
int sum_pt(pt_t *p);
long sum_va(int n, ...);
int apply(int (*f)(int), int v);
double avg(double *xs, int n);
extern int counter;
extern pt_t origin;
extern const int limit;
"""

C_SOURCE = r"""
#include <stdarg.h>
typedef struct { int x, y; } pt_t;
int add(int a, int b) { return a + b; }
pt_t mkpt(int x, int y) { pt_t p = {x, y}; return p; }
int sum_pt(pt_t *p) { return p->x + p->y; }
long sum_va(int n, ...) { va_list ap; long s = 0; va_start(ap, n);
    for (int i = 0; i < n; i++) s += va_arg(ap, int); va_end(ap); return s; }
int apply(int (*f)(int), int v) { return f(v) * 2; }
double avg(double *xs, int n) { double s = 0; for (int i = 0; i < n; i++) s += xs[i]; return s / n; }
int counter = 5;
pt_t origin = {1, 2};
const int limit = 99;
"""

TYPES = ["pt_t", "struct node", "union u", "struct anon", "struct flex", "struct nest",
         "enum color", "enum big", "cmp_t", "pts_t", "ull", "pt_t *", "int(*)(int)",
         "struct node *[3]", "fn_t *"]
FIELDS = [("struct node", "v"), ("struct node", "next"), ("struct anon", "b"),
          ("struct anon", "s"), ("struct flex", "items"), ("struct nest", "w"),
          ("pt_t", "y"), ("union u", "c")]


def cffi_module(tmp_path, name, cdef=CDEF, include=None):
    """Writes the module real cffi emits for `cdef` and returns its path."""
    ffi = cffi.FFI()
    if include is not None:
        ffi.include(include)
    ffi.cdef(cdef)
    ffi.set_source(name, None)
    path = os.path.join(str(tmp_path), name + ".py")
    ffi.emit_python_code(path)
    return path, ffi


def to_jitffi(path):
    """The same module importing jitffi's backend explicitly."""
    with open(path) as f:
        text = f.read()
    assert text.startswith("# auto-generated file\nimport _cffi_backend\n")
    text = text.replace("import _cffi_backend\n", "from jitffi import _cffi_backend\n", 1)
    with open(path, "w") as f:
        f.write(text)


def load(tmp_path, name):
    sys.path.insert(0, str(tmp_path))
    try:
        sys.modules.pop(name, None)
        return importlib.import_module(name).ffi
    finally:
        sys.path.remove(str(tmp_path))


def inline_ffi(cdef=CDEF):
    ffi = jitffi.FFI()
    ffi.cdef(cdef)
    return ffi


def facts(ffi):
    """What the types of CDEF look like, as plain data."""
    out = {"types": {}, "offsets": {}, "consts": {}}
    for t in TYPES:
        ct = ffi.typeof(t)
        entry = [str(ct), ct.kind]
        if ct.kind != "function" and not (ct.kind == "array" and ct.length is None):
            entry += [ffi.sizeof(ct), ffi.alignof(ct)]
        if ct.kind in ("struct", "union"):
            entry.append([(n, f.offset, str(f.type), f.bitsize, f.bitshift)
                          for n, f in ct.fields])
        out["types"][t] = entry
    for t, f in FIELDS:
        out["offsets"]["%s.%s" % (t, f)] = ffi.offsetof(t, f)
    out["list_types"] = [list(x) for x in ffi.list_types()]
    out["enum"] = sorted(ffi.typeof("enum color").elements.items())
    return out


def facts_of_listed(ffi):
    """Sizes, alignments and fields of every type `list_types()` names."""
    typedefs, structs, unions = ffi.list_types()
    out = {}
    for name in typedefs + ["struct " + s for s in structs] + ["union " + u for u in unions]:
        ct = ffi.typeof(name)
        entry = [str(ct), ct.kind]
        try:
            entry += [ffi.sizeof(ct), ffi.alignof(ct)]
        except Exception as e:  # opaque, function, T[]
            # (cffi's compiled FFI raises ffi.error where its in-line one, and jitffi's
            # FFIs, raise ValueError: "unknown size" either way)
            assert "size" in str(e)
            entry.append("no size")
            continue_fields = False
        else:
            continue_fields = True
        # (cffi's compiled ctype aborts on `.fields` of an opaque struct)
        if ct.kind in ("struct", "union") and continue_fields:
            entry.append([(n, f.offset, str(f.type), f.bitsize, f.bitshift)
                          for n, f in ct.fields])
        out[name] = entry
    return out


FACTS_SCRIPT = textwrap.dedent("""
    import json, sys, importlib
    sys.path[:0] = sys.argv[1].split(":")
    sys.path.insert(0, sys.argv[2])
    sys.path.insert(0, sys.argv[3])
    import test_outofline as t
    ffi = importlib.import_module(sys.argv[4]).ffi
    print(json.dumps(getattr(t, sys.argv[5])(ffi)))
""")

SHIM = "from jitffi._cffi_backend import *\nfrom jitffi._cffi_backend import __version__\n"


def run_facts(tmp_path, name, jitffi_backend, what="facts"):
    """`facts()` of the module `name` in `tmp_path`, read by a new interpreter whose
    `import _cffi_backend` is cffi's or (through a shim directory) jitffi's."""
    paths = [PY_DIR]
    if jitffi_backend:
        shim = os.path.join(str(tmp_path), "shim")
        os.makedirs(shim, exist_ok=True)
        with open(os.path.join(shim, "_cffi_backend.py"), "w") as f:
            f.write(SHIM)
        paths.insert(0, shim)
    r = subprocess.run(PYTHON + ["-c", FACTS_SCRIPT, ":".join(paths), os.path.dirname(__file__),
                                 str(tmp_path), name, what],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_cffi_module_agrees_with_cffi_and_inline(tmp_path):
    cffi_module(tmp_path, "_m_agree")
    by_cffi = run_facts(tmp_path, "_m_agree", jitffi_backend=False)
    by_jitffi = run_facts(tmp_path, "_m_agree", jitffi_backend=True)
    assert by_jitffi == by_cffi
    inline = json.loads(json.dumps(facts(inline_ffi())))
    # The in-line FFI lists function typedefs the same way; everything else is equal.
    assert inline == by_jitffi


# (cdef, cdef options, whether jitffi writes cffi's text for it)
MORE_CASES = [
    ("struct p { char a; int b; short c; long long d; }; typedef struct { char x; double y; } q_t;",
     {"packed": True}, True),
    ("struct p { char a; int b; short c; long long d; }; struct r { char a; struct p p; };",
     {"pack": 1}, True),
    # (cffi also writes the type of the unnamed `int :0`, which the layout does not keep)
    ("struct bits { unsigned a:1, b:7; int :0; short c:3; long long d:40; char e; };", {}, False),
    ("struct o; typedef struct o o_t; struct h { o_t *p; struct o *q; };", {}, True),
    ("struct outer { int k; struct { int a; union { char b; double c; }; }; "
     "struct inner { short s; } named; int tail[]; };", {}, True),
]


@pytest.mark.parametrize("cdef,opts,same_text", MORE_CASES)
def test_more_declarations_agree_with_cffi(tmp_path, cdef, opts, same_text):
    ffi = cffi.FFI()
    ffi.cdef(cdef, **opts)
    ffi.set_source("_m_more", None)
    ffi.emit_python_code(str(tmp_path / "_m_more.py"))
    by_cffi = run_facts(tmp_path, "_m_more", False, "facts_of_listed")
    by_jitffi = run_facts(tmp_path, "_m_more", True, "facts_of_listed")
    assert by_jitffi == by_cffi
    inline = jitffi.FFI()
    inline.cdef(cdef, **opts)
    assert json.loads(json.dumps(facts_of_listed(inline))) == by_jitffi
    inline.set_source("_m_more", None)
    text = inline._emit_python_module("_m_more", "jitffi._cffi_backend")
    if same_text:
        with open(str(tmp_path / "_m_more.py")) as f:
            assert text == f.read().replace("_cffi_backend", "jitffi._cffi_backend")
    # what jitffi writes reads back to the same facts
    with open(str(tmp_path / "_m_more.py"), "w") as f:
        f.write(text)
    assert run_facts(tmp_path, "_m_more", False, "facts_of_listed") == by_cffi


def test_pack_other_than_1_is_refused():
    # the tables can only say "packed" (cffi refuses too, with NotImplementedError)
    ffi = jitffi.FFI()
    ffi.cdef("struct p { char a; int b; };", pack=2)
    ffi.set_source("_m_pack2", None)
    with pytest.raises(jitffi.VerificationError):
        ffi.emit_python_code(io.StringIO())


def test_jitffi_module_agrees_with_cffi(tmp_path):
    ffi = inline_ffi()
    ffi.set_source("_m_own", None)
    path = ffi.compile(tmpdir=str(tmp_path))
    assert path == os.path.join(str(tmp_path), "_m_own.py")
    with open(path) as f:
        text = f.read()
    assert text.startswith("# auto-generated file\nimport jitffi._cffi_backend\n")
    by_jitffi = run_facts(tmp_path, "_m_own", jitffi_backend=False)
    # Real cffi reads the same tables when the import names its backend.
    with open(path, "w") as f:
        f.write(text.replace("jitffi._cffi_backend", "_cffi_backend"))
    by_cffi = run_facts(tmp_path, "_m_own", jitffi_backend=False)
    assert by_jitffi == by_cffi


def check_runtime(ffi, so):
    lib = ffi.dlopen(so)
    assert lib.add(2, 3) == 5
    p = lib.mkpt(3, 4)
    assert (p.x, p.y) == (3, 4) and ffi.typeof(p) is ffi.typeof("pt_t")
    assert lib.sum_pt(ffi.new("pt_t *", [5, 6])) == 11
    assert lib.sum_va(3, ffi.cast("int", 1), ffi.cast("int", 2), ffi.cast("int", 3)) == 6
    assert lib.avg([1.0, 2.0, 6.0], 3) == 3.0

    @ffi.callback("int(int)")
    def triple(v):
        return v * 3
    assert lib.apply(triple, 7) == 42
    assert lib.counter == 5
    lib.counter = 8
    assert lib.counter == 8
    lib.counter = 5
    assert (lib.origin.x, lib.origin.y) == (1, 2)
    assert lib.limit == 99
    with pytest.raises(AttributeError):
        lib.limit = 1
    assert (lib.N, lib.NEG, lib.SC, lib.RED, lib.GREEN, lib.BLUE, lib.BIG) == \
        (42, -7, 9, 0, -5, 0x7fffffff, 0xffffffffff)
    assert ffi.integer_const("N") == 42 and ffi.integer_const("GREEN") == -5
    with pytest.raises(AttributeError):
        ffi.integer_const("add")
    assert ffi.string(ffi.cast("enum color", -5)) == "GREEN"
    n = ffi.new("struct node *", {"v": 3, "b": 5, "c": -3})
    assert (n.v, n.b, n.c, n.next) == (3, 5, -3, ffi.NULL)
    assert repr(n.next) == "<cdata 'struct node *' NULL>"
    a = ffi.new("struct anon *", {"a": 1, "b": 2, "s": {"c": b"x"}})
    assert (a.a, a.b, a.s.c) == (1, 2, b"x")
    fl = ffi.new("struct flex *", [2, [1.5, 2.5]])
    assert fl.items[1] == 2.5
    assert ffi.sizeof(ffi.new("pts_t")) == 4 * ffi.sizeof("pt_t")
    assert ffi.cast("ull", -1) == 2**64 - 1


def test_cffi_module_runtime(tmp_path):
    so = build_clib("ool", C_SOURCE)
    path, _ = cffi_module(tmp_path, "_m_run")
    to_jitffi(path)
    ffi = load(tmp_path, "_m_run")
    assert isinstance(ffi, _cffi_backend.FFI) and isinstance(ffi, jitffi.FFI)
    check_runtime(ffi, so)
    # A compiled FFI has no builder methods (as in cffi).
    for name in ("cdef", "include", "set_source", "compile", "emit_python_code"):
        assert not hasattr(ffi, name)
    assert ffi.error is jitffi.FFIError


def test_jitffi_module_runtime_and_determinism(tmp_path):
    so = build_clib("ool", C_SOURCE)
    texts = []
    for sub in ("a", "b"):
        ffi = inline_ffi()
        ffi.set_source("pkg.sub._m_rt", None)
        path = ffi.compile(tmpdir=str(tmp_path / sub))
        assert path == os.path.join(str(tmp_path / sub), "pkg", "sub", "_m_rt.py")
        with open(path, "rb") as f:
            texts.append(f.read())
    assert texts[0] == texts[1]
    # compile() leaves an up-to-date file alone
    before = os.stat(path).st_mtime_ns
    ffi.compile(tmpdir=str(tmp_path / "b"))
    assert os.stat(path).st_mtime_ns == before
    # emit_python_code gives the same text, to a path or a file-like object
    buf = io.StringIO()
    ffi.emit_python_code(buf)
    assert buf.getvalue().encode() == texts[0]
    sys.path.insert(0, str(tmp_path / "b"))
    try:
        for m in [m for m in sys.modules if m == "pkg" or m.startswith("pkg.")]:
            del sys.modules[m]
        loaded = importlib.import_module("pkg.sub._m_rt").ffi
    finally:
        sys.path.remove(str(tmp_path / "b"))
    check_runtime(loaded, so)
    inline = facts(inline_ffi())
    assert facts(loaded) == inline


def test_cffi_loads_jitffi_module_runtime(tmp_path):
    so = build_clib("ool", C_SOURCE)
    ffi = inline_ffi()
    ffi.set_source("_m_back", None)
    path = ffi.compile(tmpdir=str(tmp_path))
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("jitffi._cffi_backend", "_cffi_backend"))
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from _m_back import ffi
        import _cffi_backend
        assert type(ffi) is _cffi_backend.FFI
        lib = ffi.dlopen(sys.argv[2])
        p = lib.mkpt(3, 4)
        print(lib.add(2, 3), p.x, p.y, lib.counter, lib.N, lib.GREEN,
              lib.apply(ffi.callback("int(int)", lambda v: v + 1), 4))
    """)
    r = subprocess.run(PYTHON + ["-c", script, str(tmp_path), so],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["5", "3", "4", "5", "42", "-5", "10"]


def test_unmodified_cffi_module_through_shim(tmp_path):
    """A module exactly as cffi wrote it (`import _cffi_backend`), with jitffi's backend
    resolving that name."""
    so = build_clib("ool", C_SOURCE)
    cffi_module(tmp_path, "_m_shim")
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "_cffi_backend.py").write_text(SHIM)
    script = textwrap.dedent("""
        import sys
        sys.path[:0] = [sys.argv[1], sys.argv[2], sys.argv[3]]
        from _m_shim import ffi
        import jitffi._cffi_backend
        assert type(ffi) is jitffi._cffi_backend.FFI
        lib = ffi.dlopen(sys.argv[4])
        print(lib.add(20, 22), lib.sum_pt(ffi.new("pt_t *", [1, 2])))
    """)
    r = subprocess.run(PYTHON + ["-c", script, str(shim), PY_DIR, str(tmp_path), so],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["42", "3"]


def test_dlopen_takes_the_name_as_is(tmp_path):
    path, _ = cffi_module(tmp_path, "_m_dl", cdef="int abs(int);")
    to_jitffi(path)
    ffi = load(tmp_path, "_m_dl")
    with pytest.raises(OSError) as e:
        ffi.dlopen("c")  # the in-line FFI would find libc through find_library
    assert "find_library" not in str(e.value)
    assert ffi.dlopen(None).abs(-3) == 3
    assert jitffi.FFI().dlopen  # (the in-line one still has its fallback)


def test_includes_between_two_cffi_modules(tmp_path):
    so = build_clib("ool", C_SOURCE)
    base_path, base = cffi_module(tmp_path, "_m_base",
                                  cdef="typedef struct { int x, y; } pt_t;\n#define BASE_K 3\n"
                                       "struct box { pt_t a, b; }; enum side { LEFT, RIGHT };")
    top_path, _ = cffi_module(tmp_path, "_m_top", include=base,
                              cdef="int sum_pt(pt_t *p); struct holder { struct box *bx; int k; };")
    to_jitffi(base_path)
    to_jitffi(top_path)
    sys.modules.pop("_m_base", None)
    ffi = load(tmp_path, "_m_top")
    base_ffi = sys.modules["_m_base"].ffi
    assert ffi.typeof("pt_t") is not None
    assert ffi.sizeof("struct box") == 16 == base_ffi.sizeof("struct box")
    assert ffi.offsetof("struct holder", "k") == 8
    lib = ffi.dlopen(so)
    assert lib.sum_pt(ffi.new("pt_t *", [2, 5])) == 7
    h = ffi.new("struct holder *")
    bx = ffi.new("struct box *", [[1, 2], [3, 4]])
    h.bx = bx
    assert h.bx.b.y == 4
    assert ffi.integer_const("BASE_K") == 3
    assert ffi.integer_const("RIGHT") == 1


def test_zlib_through_a_written_module(tmp_path):
    ffi = jitffi.FFI()
    ffi.cdef("""
        typedef unsigned long uLong; typedef unsigned int uInt; typedef unsigned char Bytef;
        uLong crc32(uLong crc, const Bytef *buf, uInt len);
        uLong adler32(uLong adler, const Bytef *buf, uInt len);
        const char *zlibVersion(void);
    """)
    ffi.set_source("zpkg._zlib_ffi", None)
    ffi.compile(tmpdir=str(tmp_path))
    sys.path.insert(0, str(tmp_path))
    try:
        mod = importlib.import_module("zpkg._zlib_ffi")
    finally:
        sys.path.remove(str(tmp_path))
    try:
        lib = mod.ffi.dlopen("libz.so.1")
    except OSError:  # (a cross target's sysroot may not have it)
        pytest.skip("no libz.so.1 on this target")
    data = b"hello out-of-line world" * 10
    assert lib.crc32(0, data, len(data)) == zlib.crc32(data)
    assert lib.adler32(1, data, len(data)) == zlib.adler32(data)
    assert mod.ffi.string(lib.zlibVersion()).decode().split(".")[0] == \
        zlib.ZLIB_RUNTIME_VERSION.split(".")[0]


# --- the compiled FFI's argument checks ------------------------------------------------

def module_args(tmp_path, cdef=CDEF):
    """The keyword arguments a cffi-written module passes to `_cffi_backend.FFI`."""
    path, _ = cffi_module(tmp_path, "_m_args", cdef=cdef)
    with open(path) as f:
        text = f.read()
    call = text[text.index("_cffi_backend.FFI(") + len("_cffi_backend.FFI("):].rstrip().rstrip(")")
    return eval("(lambda *a, **k: (a, k))(" + call + ")")


def test_versions(tmp_path):
    with pytest.raises(ImportError, match=r"cffi out-of-line Python module 'm' has unknown version 0x1"):
        _cffi_backend.FFI("m", _version=0x1, _types=b"\x00\x00\x00\x01")
    with pytest.raises(ImportError, match="unknown version"):
        _cffi_backend.FFI("m", _types=b"\x00\x00\x00\x01")
    # no version and no types: an empty FFI, as in cffi
    empty = _cffi_backend.FFI("m", _types=b"")
    assert empty.list_types() == ([], [], [])
    assert empty.sizeof("int") == 4
    assert _cffi_backend.FFI().sizeof("long") == 8


def test_argument_types(tmp_path):
    args, kw = module_args(tmp_path)
    for key, bad in [("_types", "text"), ("_globals", [1]), ("_globals", (b"\x00\x00\x00\x23abs",)),
                     ("_struct_unions", (b"x",)), ("_enums", ("x",)), ("_typenames", (1,)),
                     ("_includes", (object(),))]:
        kw2 = dict(kw, **{key: bad})
        with pytest.raises(TypeError):
            _cffi_backend.FFI(*args, **kw2)
    assert _cffi_backend.FFI(*args, **kw).sizeof("pt_t") == 8


def test_corrupted_tables_raise(tmp_path):
    args, kw = module_args(tmp_path)
    types = kw["_types"]
    # truncated _types, bad opcodes, out-of-range indexes
    for bad in [types[:-1], types[:-4], b"\x00\x00\x00\xff" + types[4:],
                types[:4] + b"\x00\xff\xff\x03" + types[8:]]:
        with pytest.raises(ImportError):
            _cffi_backend.FFI(*args, **dict(kw, _types=bad))
    g = list(kw["_globals"])
    g[-2] = b"\x00\xff\xff\x23" + g[-2][4:]
    with pytest.raises(ImportError):
        _cffi_backend.FFI(*args, **dict(kw, _globals=tuple(g)))
    s = [list(e) for e in kw["_struct_unions"]]
    s[0][1] = b"\x00\xff\x00\x11x"
    with pytest.raises(ImportError):
        _cffi_backend.FFI(*args, **dict(kw, _struct_unions=tuple(tuple(e) for e in s)))
    with pytest.raises(ImportError):
        _cffi_backend.FFI(*args, **dict(kw, _typenames=(b"\x00\x00",)))


FUZZ_SCRIPT = textwrap.dedent("""
    import random, sys
    sys.path.insert(0, sys.argv[1])
    from jitffi import _cffi_backend
    args, kw = eval(sys.stdin.read())
    rng = random.Random(int(sys.argv[2]))
    ok = bad = 0
    for i in range(int(sys.argv[3])):
        k = dict(kw)
        t = bytearray(k["_types"])
        for _ in range(rng.randint(1, 4)):
            what = rng.random()
            if what < 0.6 and t:
                t[rng.randrange(len(t))] = rng.randrange(256)
            elif what < 0.8:
                del t[rng.randrange(len(t) + 1):]
            elif what < 0.85:
                g = list(k["_globals"])
                j = rng.randrange(0, len(g), 2)
                b = bytearray(g[j]); b[rng.randrange(4)] = rng.randrange(256); g[j] = bytes(b)
                k["_globals"] = tuple(g)
            elif what < 0.95:
                su = [list(e) for e in k["_struct_unions"]]
                e = rng.choice(su)
                j = rng.randrange(len(e))
                b = bytearray(e[j])
                if rng.random() < 0.8:
                    b[rng.randrange(min(8, len(b)))] = rng.randrange(256)
                else:
                    del b[rng.randrange(len(b)):]
                e[j] = bytes(b)
                k["_struct_unions"] = tuple(tuple(e) for e in su)
            else:
                key = rng.choice(["_enums", "_typenames"])
                items = list(k[key])
                j = rng.randrange(len(items))
                b = bytearray(items[j]); b[rng.randrange(min(8, len(b)))] = rng.randrange(256)
                items[j] = bytes(b)
                k[key] = tuple(items)
        k["_types"] = bytes(t)
        try:
            ffi = _cffi_backend.FFI(*args, **k)
        except (ImportError, TypeError) as e:
            bad += 1
            continue
        ok += 1
        for name in ffi.list_types()[0]:
            try:
                ffi.sizeof(name)
            except Exception:
                pass
    print(ok, bad)
""")


def test_fuzzed_tables_never_crash(tmp_path):
    args, kw = module_args(tmp_path)
    r = subprocess.run(PYTHON + ["-c", FUZZ_SCRIPT, PY_DIR, "1234", "3000"],
                       input=repr((args, kw)), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    ok, bad = map(int, r.stdout.split())
    assert bad > 0 and ok + bad == 3000


# --- the builder's errors ----------------------------------------------------------------

def test_builder_misuse():
    ffi = jitffi.FFI()
    ffi.cdef("int f(int);")
    with pytest.raises(ValueError, match=r"set_source\(\) must be called before compile\(\)"):
        ffi.compile()
    with pytest.raises(ValueError, match=r"set_source\(\) must be called before emit_c_code\(\)"):
        ffi.emit_python_code("x.py")
    with pytest.raises(TypeError, match="'module_name' must be a string"):
        ffi.set_source(5, None)
    with pytest.raises(ValueError, match="must not contain '/'"):
        ffi.set_source("a/b", None)
    ffi.set_source("_m", None)
    with pytest.raises(ValueError, match="cannot be called several times"):
        ffi.set_source("_m", None)
    with pytest.raises(TypeError, match="emit_c_code\\(\\) is only for C extension modules"):
        ffi.emit_c_code("x.c")
    with pytest.raises(TypeError, match="distutils_extension\\(\\) is only for C extension"):
        ffi.distutils_extension()


def test_builder_records_a_c_source_and_refuses_its_api_mode_steps(tmp_path, monkeypatch):
    # set_source() with C source is accepted (a build script imported by the program
    # calls it); the steps that need a C compiler say jitffi has no API mode.
    monkeypatch.chdir(tmp_path)
    import cffi
    for lib in (cffi, jitffi):
        ffi = lib.FFI()
        ffi.cdef("int f(int);")
        ffi.set_source("_m_api", "#include <foo.h>")
        with pytest.raises(TypeError, match="only for dlopen"):
            ffi.emit_python_code("x.py")
    for call in (ffi.compile, lambda: ffi.emit_c_code("x.c"), ffi.distutils_extension):
        with pytest.raises(jitffi.VerificationError, match="no out-of-line API mode"):
            call()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cdef", [
    'extern "Python" int cb(int);', "#define K ...", "enum e { A, B, ... };",
    "enum e { A = ... };", "typedef int a_t[3000000000];",
])
def test_builder_refuses_what_abi_mode_cannot_write(tmp_path, cdef):
    # cffi's exception type and text for each (VerificationError, VerificationMissing
    # for a partial enum, OverflowError for a too long array), and no file written.
    import cffi
    from cffi.recompiler import make_py_source
    real = cffi.FFI()
    real.cdef(cdef)
    with pytest.raises(Exception) as want:
        make_py_source(real, "_m_refuse", io.StringIO())
    ffi = jitffi.FFI()
    ffi.cdef(cdef)
    ffi.set_source("_m_refuse", None)
    with pytest.raises(Exception) as got:
        ffi.compile(tmpdir=str(tmp_path))
    assert type(got.value).__name__ == type(want.value).__name__
    assert str(got.value) == str(want.value)
    assert list(tmp_path.iterdir()) == []


def test_builder_include_needs_set_source(tmp_path):
    base = jitffi.FFI()
    base.cdef("typedef struct { int x; } b_t;")
    top = jitffi.FFI()
    top.include(base)
    top.cdef("int g(b_t *);")
    top.set_source("_m_top2", None)
    with pytest.raises(jitffi.VerificationError, match="has not been prepared with set_source"):
        top.compile(tmpdir=str(tmp_path))
    base.set_source("_m_base2", None)
    base.compile(tmpdir=str(tmp_path))
    path = top.compile(tmpdir=str(tmp_path))
    with open(path) as f:
        assert "from _m_base2 import ffi as _ffi0\n" in f.read()
    sys.modules.pop("_m_base2", None)
    ffi = load(tmp_path, "_m_top2")
    assert ffi.sizeof("b_t") == 4
    assert str(ffi.typeof("int(*)(b_t *)")) == "<ctype 'int(*)(b_t *)'>"


def test_inline_include_field_types_are_this_ffis():
    """The fields of a record shared through include() are typed with nodes of the
    other FFI's table; the including FFI gives them its own CTypes (ids differ)."""
    a = jitffi.FFI()
    a.cdef("typedef struct { int x, y; } pt_t; struct box { pt_t a; pt_t *p; int n; };"
           "struct fl { int n; pt_t items[]; };")
    b = jitffi.FFI()
    b.cdef("struct q { double z; }; typedef struct q *qq; struct r { qq a; }; "
           "int f(struct r, qq, qq*); typedef char c3[3];")
    b.include(a)
    x = b.new("struct box *")
    assert repr(x.p) == "<cdata 'pt_t *' NULL>"
    assert b.typeof(x.a) is b.typeof("pt_t")
    assert [str(f.type) for _, f in b.typeof("struct box").fields] == \
        ["<ctype 'pt_t'>", "<ctype 'pt_t *'>", "<ctype 'int'>"]
    assert str(b.typeof("c3")) == "<ctype 'char[3]'>"
    buf = b.new("char[]", 64)
    fl = b.cast("struct fl *", buf)
    assert b.typeof(fl.items) is b.typeof("pt_t *")
    assert str(b.typeof("struct q")) == "<ctype 'struct q'>"


def test_same_text_as_cffi(tmp_path):
    """Without inner `const` (which jitffi's type model does not keep, so cffi's extra
    `const T` slots are not reproduced), jitffi writes cffi's text byte for byte, but
    for the backend it imports."""
    cdef = "\n".join(line for line in CDEF.splitlines() if "const" not in line)
    path, _ = cffi_module(tmp_path, "_m_same", cdef=cdef)
    with open(path) as f:
        by_cffi = f.read()
    ffi = inline_ffi(cdef)
    ffi.set_source("_m_same", None)
    out = ffi.compile(tmpdir=str(tmp_path / "j"))
    with open(out) as f:
        by_jitffi = f.read()
    assert by_jitffi == by_cffi.replace("_cffi_backend", "jitffi._cffi_backend")


def test_cffi_loads_jitffi_modules_with_includes(tmp_path):
    base = jitffi.FFI()
    base.cdef("typedef struct { int x, y; } pt_t; enum side { LEFT, RIGHT = 7 };")
    base.set_source("_m_jbase", None)
    top = jitffi.FFI()
    top.include(base)
    top.cdef("struct seg { pt_t a, b; enum side s; }; int sum_pt(pt_t *p);")
    top.set_source("_m_jtop", None)
    for f in (base, top):
        path = f.compile(tmpdir=str(tmp_path))
        with open(path) as fh:
            text = fh.read()
        with open(path, "w") as fh:
            fh.write(text.replace("jitffi._cffi_backend", "_cffi_backend"))
    so = build_clib("ool", C_SOURCE)
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from _m_jtop import ffi
        lib = ffi.dlopen(sys.argv[2])
        s = ffi.new("struct seg *", [[1, 2], [3, 4], 7])
        print(ffi.sizeof("struct seg"), ffi.offsetof("struct seg", "s"), s.b.y, s.s,
              lib.sum_pt(ffi.addressof(s.a)))
    """)
    r = subprocess.run(PYTHON + ["-c", script, str(tmp_path), so],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["20", "16", "4", "7", "3"]
    # and jitffi reads them the same way
    sys.modules.pop("_m_jbase", None)
    for f in ("_m_jbase.py", "_m_jtop.py"):
        p = tmp_path / f
        p.write_text(p.read_text().replace("import _cffi_backend", "import jitffi._cffi_backend")
                     .replace("= _cffi_backend.FFI", "= jitffi._cffi_backend.FFI"))
    ffi = load(tmp_path, "_m_jtop")
    s = ffi.new("struct seg *", [[1, 2], [3, 4], 7])
    assert (ffi.sizeof("struct seg"), ffi.offsetof("struct seg", "s"), s.b.y, s.s) == (20, 16, 4, 7)
    assert ffi.dlopen(so).sum_pt(ffi.addressof(s.a)) == 3


def test_backend_module_names():
    import _cffi_backend as real
    for name in ("FFI", "Lib", "CType", "CField", "buffer", "__version__", "FFI_DEFAULT_ABI",
                 "FFI_CDECL", "RTLD_LAZY", "RTLD_NOW", "RTLD_GLOBAL", "RTLD_LOCAL",
                 "RTLD_NODELETE", "RTLD_NOLOAD", "RTLD_DEEPBIND"):
        assert hasattr(_cffi_backend, name), name
        if name.startswith("RTLD_") or name.startswith("FFI_"):
            assert getattr(_cffi_backend, name) == getattr(real, name), name
    # The version of cffi's API jitffi implements (not necessarily the installed cffi's).
    assert _cffi_backend.__version__ == jitffi.__version__
    ffi = _cffi_backend.FFI()
    assert isinstance(ffi.dlopen(None), _cffi_backend.Lib)
    assert isinstance(ffi.typeof("int"), _cffi_backend.CType)
    assert ffi.buffer is _cffi_backend.buffer


# --- lazy realization, the lib set up from the tables, cffi's text and errors ----------

LAZY_CDEF = """
struct o;
typedef struct { int x, y; } pt_t;
int add(int, int);
int take_o(struct o);
int not_in_library(int);
"""

LAZY_C = "int add(int a, int b) { return a + b; }\n"


def test_lib_functions_find_their_types_at_first_use(tmp_path):
    """An out-of-line lib is set up from the tables alone; each function's type is
    realized at its first use, and equals the in-line FFI's."""
    so = build_clib("ool_lazy", LAZY_C + "int take_o(void *p) { return 0; }\n")
    path, _ = cffi_module(tmp_path, "_m_lazy", cdef=LAZY_CDEF.replace("int take_o(struct o);\n", ""))
    to_jitffi(path)
    ffi = load(tmp_path, "_m_lazy")
    lib = ffi.dlopen(so)
    inline = jitffi.FFI()
    inline.cdef(LAZY_CDEF.replace("int take_o(struct o);\n", ""))
    ilib = inline.dlopen(so)
    # typeof before any call: the type is found then
    assert str(ffi.typeof(lib.add)) == str(inline.typeof(ilib.add)) == "<ctype 'int(*)(int, int)'>"
    assert lib.add(20, 22) == 42
    assert sorted(dir(lib)) == sorted(dir(ilib))
    # a declared function the library lacks: not in the lib, as in-line
    with pytest.raises(AttributeError):
        lib.not_in_library
    with pytest.raises(AttributeError):
        ilib.not_in_library
    assert "__getattr__" not in vars(lib)  # attribute loads stay plain module loads
    assert ffi.cast("void *", ffi.addressof(lib, "add")) != ffi.NULL


def test_opaque_by_value_function_errors_at_access_as_inline(tmp_path):
    so = build_clib("ool_lazy2", LAZY_C + "int take_o(void *p) { return 0; }\n")
    path, _ = cffi_module(tmp_path, "_m_lazy2", cdef=LAZY_CDEF)
    to_jitffi(path)
    ffi = load(tmp_path, "_m_lazy2")
    lib = ffi.dlopen(so)
    inline = jitffi.FFI()
    inline.cdef(LAZY_CDEF)
    ilib = inline.dlopen(so)
    with pytest.raises(TypeError) as got:
        lib.take_o
    with pytest.raises(TypeError) as want:
        ilib.take_o
    assert str(got.value) == str(want.value)
    assert lib.add(1, 2) == 3


def test_type_strings_declare_only_what_they_name(tmp_path):
    """Names come from the tables when a type string first names them: typedefs, tags,
    constants in array lengths; unknown names give cffi's compiled-FFI errors (ffi.error,
    the same text as real cffi reading the same module), the in-line FFI its CDefError."""
    path, _ = cffi_module(tmp_path, "_m_names")
    real = load(tmp_path, "_m_names")  # the module as cffi wrote it, on cffi's backend
    path, _ = cffi_module(tmp_path, "_m_names_j")
    to_jitffi(path)
    ffi = load(tmp_path, "_m_names_j")
    inline = inline_ffi()
    for t in ["pts_t", "struct nest *", "int[N]", "enum color", "cmp_t", "union u[2]"]:
        assert str(ffi.typeof(t)) == str(inline.typeof(t)), t
        assert ffi.sizeof(t) == inline.sizeof(t), t
    for bad in ["no_such_t", "add", "int[N", "struct nope *", "enum nope"]:
        with pytest.raises(ffi.error) as got:
            ffi.typeof(bad)
        with pytest.raises(real.error) as want:
            real.typeof(bad)
        assert str(got.value) == str(want.value), bad
    for bad in ["no_such_t", "add", "int[N"]:
        with pytest.raises(jitffi.CDefError):
            inline.typeof(bad)


OUTCOMES_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    ffi = __import__(sys.argv[2]).ffi
    op = {"sizeof": ffi.sizeof, "typeof": lambda t: repr(ffi.typeof(t))}[sys.argv[3]]
    out = []
    for t in json.loads(sys.argv[4]):
        try:
            out.append([t, op(t)])
        except ffi.error as e:
            out.append([t, "ffi.error", str(e)])
        except Exception as e:
            out.append([t, type(e).__name__, str(e)])
    print(json.dumps(out))
""")


def outcomes(tmp_path, name, op, types):
    """[type, result] or [type, exception, text] of `ffi.<op>(type)` for each type, with
    the module `name` in tmp_path loaded in a fresh process (whichever backend it imports)."""
    r = subprocess.run(PYTHON + ["-c", OUTCOMES_SCRIPT, str(tmp_path), name, op, json.dumps(types)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_sizeof_of_unknown_size_is_ffi_error_as_cffi(tmp_path):
    path, _ = cffi_module(tmp_path, "_m_sz", cdef="struct o; struct s { int a; };")
    by_cffi = outcomes(tmp_path, "_m_sz", "sizeof", ["struct o", "int[]", "void"])
    assert [x[1] for x in by_cffi] == ["ffi.error"] * 3
    to_jitffi(path)
    ffi = load(tmp_path, "_m_sz")
    got = []
    for t in ["struct o", "int[]", "void"]:
        with pytest.raises(ffi.error) as e:
            ffi.sizeof(t)
        got.append([t, "ffi.error", str(e.value)])
    assert got == by_cffi
    assert ffi.sizeof("struct s") == 4
    with pytest.raises(ffi.error):
        ffi.sizeof(ffi.typeof("struct o"))
    # the in-line FFI keeps its ValueError
    inline = jitffi.FFI()
    inline.cdef("struct o;")
    with pytest.raises(ValueError):
        inline.sizeof("struct o")


@pytest.mark.parametrize("cdef", [
    "struct bits { unsigned a:1, b:7; int :0; short c:3; long long d:40; char e; };",
    "struct z { char a; long :0; char b; unsigned :3; int c:4; };",
    "struct q { int x; struct { short :0; char c; }; };",
])
def test_unnamed_bitfields_give_cffis_text(tmp_path, cdef):
    path, _ = cffi_module(tmp_path, "_m_bits", cdef=cdef)
    with open(path) as f:
        by_cffi = f.read()
    ffi = inline_ffi(cdef)
    ffi.set_source("_m_bits", None)
    assert ffi._emit_python_module("_m_bits", "jitffi._cffi_backend") == by_cffi.replace("_cffi_backend", "jitffi._cffi_backend")


BAD_LAYOUT_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    ffi = __import__(sys.argv[2]).ffi
    out = [ffi.sizeof("struct ok")]
    try:
        ffi.sizeof("struct bits")
    except Exception as e:
        out.append([type(e).__name__, str(e)])
    print(json.dumps(out))
""")


def test_refused_layout_raises_at_first_use_as_cffi(tmp_path):
    """Tables that decode cleanly but describe a layout the rules refuse (a bitfield
    wider than its type): the module loads, other types work, and the struct raises
    what cffi's reader raises when it is first used."""
    path, _ = cffi_module(tmp_path, "_m_badlay", cdef="struct bits { unsigned a:1; int z; }; "
                                                      "struct ok { int x; };")
    with open(path) as f:
        text = f.read()
    assert r"\x00\x00\x00\x01a" in text
    with open(path, "w") as f:
        f.write(text.replace(r"\x00\x00\x00\x01a", r"\x00\x00\x00\x21a"))
    r = subprocess.run(PYTHON + ["-c", BAD_LAYOUT_SCRIPT, str(tmp_path), "_m_badlay"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    by_cffi = json.loads(r.stdout)
    to_jitffi(path)
    ffi = load(tmp_path, "_m_badlay")
    assert ffi.sizeof("struct ok") == by_cffi[0] == 4
    with pytest.raises(TypeError) as e:
        ffi.sizeof("struct bits")
    assert [type(e.value).__name__, str(e.value)] == by_cffi[1]
    with pytest.raises(TypeError):
        ffi.new("struct bits *")


INCLUDED_LIB_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path[:0] = sys.argv[1].split(":")
    ffi = __import__(sys.argv[2]).ffi
    lib = ffi.dlopen(None)
    print(json.dumps([lib.labs(-3), lib.BASE_K, lib.B_TWO, lib.OWN_K, sorted(dir(lib))]))
""")


def test_lib_shows_the_included_modules_constants_as_cffi(tmp_path):
    """cffi's compiled libs give the integer constants of the modules their ffi includes
    (not in dir()); jitffi's out-of-line libs hold them as plain attributes."""
    _, base = cffi_module(tmp_path, "_m_ibase", cdef="#define BASE_K 3\nenum b { B_ONE, B_TWO };\n"
                                                     "int abs(int);")
    cffi_module(tmp_path, "_m_itop", include=base, cdef="#define OWN_K 5\nlong labs(long);")
    r = subprocess.run(PYTHON + ["-c", INCLUDED_LIB_SCRIPT, str(tmp_path), "_m_itop"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    by_cffi = json.loads(r.stdout)
    # (an included enum is written again into the including module: its enumerators are
    # the module's own)
    assert by_cffi == [3, 3, 1, 5, ["B_ONE", "B_TWO", "OWN_K", "labs"]]
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "_cffi_backend.py").write_text(SHIM)
    r = subprocess.run(PYTHON + ["-c", INCLUDED_LIB_SCRIPT,
                                 ":".join([str(shim), PY_DIR, str(tmp_path)]), "_m_itop"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == by_cffi


def test_wrong_kind_of_tag_as_cffi(tmp_path):
    path, _ = cffi_module(tmp_path, "_m_tag",
                          cdef="struct point { int x, y; }; union value { int i; float f; };")
    types = ["union point", "struct value *", "struct point", "union value"]
    by_cffi = outcomes(tmp_path, "_m_tag", "typeof", types)
    assert [x[1] for x in by_cffi[:2]] == ["ffi.error"] * 2
    assert "wrong kind of tag" in by_cffi[0][2]
    to_jitffi(path)
    assert outcomes(tmp_path, "_m_tag", "typeof", types) == by_cffi


LIB_ERRORS_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    sys.path.append(sys.argv[4])  # (jitffi, for the module that imports it)
    ffi = __import__(sys.argv[2]).ffi
    so = sys.argv[3]
    out = []
    def outcome(f):
        try:
            r = f()
            out.append(["ok", r if isinstance(r, (int, bytes)) else repr(type(r).__name__)])
        except ffi.error as e:
            out.append(["ffi.error", str(e)])
        except Exception as e:
            out.append([type(e).__name__, str(e)])
    lib = ffi.dlopen(so)
    outcome(lambda: lib.limit)
    outcome(lambda: ffi.addressof(lib, "limit"))
    outcome(lambda: ffi.addressof(lib, "counter")[0])
    outcome(lambda: lib.no_such_function)
    outcome(lambda: lib.no_such_globalvar)
    outcome(lambda: setattr(lib, "no_such_globalvar", 1))
    lib2 = ffi.dlopen(so)
    ffi.dlclose(lib2)
    outcome(lambda: lib2.add)
    outcome(lambda: lib2.counter)
    outcome(lambda: ffi.dlclose(lib2))
    print(json.dumps(out))
""")


def test_compiled_lib_errors_as_cffi(tmp_path):
    # A compiled FFI's lib words its errors as cffi's does (ffi.error for a missing
    # symbol or a closed library) and reads `const` globals as constants, which have no
    # address; the in-line FFI keeps cffi's in-line wording.
    so = build_clib("ool", C_SOURCE)
    cdef = ("int add(int, int); extern int counter; const int limit;"
            "int no_such_function(int); extern int no_such_globalvar;")
    path, _ = cffi_module(tmp_path, "_m_liberr", cdef=cdef)

    def run():
        r = subprocess.run(PYTHON + ["-c", LIB_ERRORS_SCRIPT, str(tmp_path), "_m_liberr", so,
                                     PY_DIR],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)
    by_cffi = run()
    to_jitffi(path)
    by_jitffi = run()
    assert by_jitffi == by_cffi
    assert by_cffi[1][0] == "AttributeError" and by_cffi[3][0] == "ffi.error"
    assert by_cffi[6] == ["ffi.error", "library '%s' has been closed" % so]
    inline = jitffi.FFI()
    inline.cdef(cdef)
    lib = inline.dlopen(so)
    assert inline.addressof(lib, "limit")[0] == 99
    with pytest.raises(AttributeError, match="not found in library"):
        lib.no_such_function
    inline.dlclose(lib)
    with pytest.raises(ValueError, match="has already been closed"):
        lib.add

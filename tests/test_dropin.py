"""Drop-in use by programs written for cffi: the JITFFI_AS_CFFI switch (the .pth hook,
its finder, `python -m jitffi run`, install_as_cffi) and what published cffi users do at
import and use time, compared with the installed cffi where it can run the same code.

The switch is tested in subprocesses started the way a user's are: the .pth sits in a
site directory of its own (the user site, as `pip install --user` puts it, when the
interpreter has one), and nothing else tells the child about jitffi."""
import importlib.util
import os
import pickle
import subprocess
import sys
import textwrap
import weakref

import pytest

import cffi as real_cffi  # installed by .ci/setup; a missing cffi must fail, not skip
import jitffi
from conftest import PYTHON, build_clib, run_c_program

PY_DIR = os.path.dirname(os.path.dirname(os.path.abspath(jitffi.__file__)))
PTH = os.path.join(PY_DIR, "jitffi_as_cffi.pth")
REAL_CFFI_DIR = os.path.dirname(os.path.abspath(real_cffi.__file__))
REAL_BACKEND = importlib.util.find_spec("_cffi_backend").origin

C_SOURCE = r"""
#include <stdio.h>
typedef struct { int x, y; } pt_t;
int add(int a, int b) { return a + b; }
int sum_pt(pt_t *p) { return p->x + p->y; }
int put(const char *s, FILE *f) { return fputs(s, f); }
"""


@pytest.fixture(scope="module")
def site_env(tmp_path_factory):
    """(env, prefix): an environment whose interpreter runs jitffi_as_cffi.pth at start
    (JITFFI_AS_CFFI not set), and the code to put before a `-c` script when the
    interpreter has no user site (in a venv): then the .pth's directory is added the way
    site.py adds site-packages."""
    base = tmp_path_factory.mktemp("userbase")
    env = dict(os.environ)
    for k in ("JITFFI_AS_CFFI", "PYTHONNOUSERSITE", "PYTHONSTARTUP"):
        env.pop(k, None)
    env["PYTHONUSERBASE"] = str(base)
    # jitffi first; the rest of the path stays (under qemu it is where the target's cffi
    # and pytest live).
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != PY_DIR]
    env["PYTHONPATH"] = os.pathsep.join([PY_DIR] + rest)
    r = subprocess.run(PYTHON + ["-c", "import site; print(site.ENABLE_USER_SITE); "
                                 "print(site.getusersitepackages())"],
                       env=env, capture_output=True, text=True, check=True)
    enabled, usersite = r.stdout.split()
    if enabled == "True":
        os.makedirs(usersite)
        target = usersite
        prefix = ""
    else:
        target = str(base / "site")
        os.makedirs(target)
        prefix = "import site; site.addsitedir(%r)\n" % (target,)
    with open(PTH) as src, open(os.path.join(target, "jitffi_as_cffi.pth"), "w") as dst:
        dst.write(src.read())
    return env, prefix


def run(site_env, script, *args, switch=None, cwd=None, never_real=False):
    env, prefix = site_env
    env = dict(env)
    if switch is not None:
        env["JITFFI_AS_CFFI"] = switch
    code = None
    if not isinstance(script, list):
        code = prefix + textwrap.dedent(script) + (NEVER_REAL if never_real else "")
    argv = PYTHON + (["-c", code] if code is not None else script) + [str(a) for a in args]
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r.stdout.split("\n")


NEVER_REAL = """
import sys
bad = [n for n, m in list(sys.modules.items())
       if (getattr(m, "__file__", None) or "").startswith(%r)]
assert not bad, bad
assert %r not in open("/proc/self/maps").read()
""" % (REAL_CFFI_DIR + os.sep, REAL_BACKEND)


def test_switch_resolves_cffi_and_backend_to_jitffi(site_env):
    out = run(site_env, """
        import cffi, cffi.api, cffi.error, cffi.model, _cffi_backend
        import jitffi, jitffi._cffi_backend
        assert cffi.__jitffi__ is True
        assert cffi.FFI is jitffi.FFI is cffi.api.FFI
        assert cffi.CDefError is cffi.error.CDefError is jitffi.CDefError
        assert cffi.error.PkgConfigError is cffi.PkgConfigError is jitffi.PkgConfigError
        assert _cffi_backend is jitffi._cffi_backend
        assert _cffi_backend.__spec__.name == "jitffi._cffi_backend"
        from cffi import FFI
        ffi = FFI()
        ffi.cdef("int abs(int);")
        print(ffi.dlopen(None).abs(-7), cffi.__version__)
    """, switch="1", never_real=True)
    assert out[0] == "7 2.0.0"


def test_switch_off_leaves_real_cffi_and_loads_nothing_of_jitffi(site_env):
    for switch in (None, "", "0"):
        out = run(site_env, """
            import sys
            assert "_jitffi_as_cffi" not in sys.modules and "jitffi" not in sys.modules
            import cffi
            print(cffi.__file__, hasattr(cffi, "__jitffi__"))
            assert "jitffi" not in sys.modules
        """, switch=switch)
        assert out[0] == os.path.join(REAL_CFFI_DIR, "__init__.py") + " False"


def test_submodule_jitffi_lacks_is_an_import_error_naming_it(site_env):
    out = run(site_env, """
        for name in ("cffi.verifier", "cffi.vengine_gen", "cffi.cparser"):
            try:
                __import__(name)
            except ImportError as e:
                assert e.name == name, e.name
                print(e)
            else:
                raise AssertionError(name)
        try:
            from cffi import vengine_cpy
        except ImportError as e:
            print(e)
    """, switch="1", never_real=True)
    for line, sub in zip(out, ("verifier", "vengine_gen", "cparser", "vengine_cpy")):
        assert "jitffi" in line and repr(sub) in line, line


def test_subprocesses_inherit_the_switch(site_env):
    # (the child gets the same site setup as its parent: the .pth in the user site, or
    # the addsitedir prefix where the interpreter has no user site)
    child = site_env[1] + "import cffi; print(getattr(cffi, '__jitffi__', False))"
    out = run(site_env, """
        import subprocess, sys, os
        import cffi
        print(subprocess.run(%r + ["-c", %r], capture_output=True, text=True,
                             check=True).stdout.strip())
    """ % (PYTHON, child), switch="1")
    assert out[0] == "True"


def test_python_m_jitffi_run_script_and_module(site_env, tmp_path):
    (tmp_path / "prog.py").write_text(textwrap.dedent("""
        import sys, os
        import cffi, _cffi_backend
        import helper_mod  # found beside the script, as with `python prog.py`
        print(cffi.__jitffi__, _cffi_backend.__name__, sys.argv[1:], __name__,
              os.environ["JITFFI_AS_CFFI"])
    """))
    (tmp_path / "helper_mod.py").write_text("")
    (tmp_path / "pkgm").mkdir()
    (tmp_path / "pkgm" / "__init__.py").write_text("")
    (tmp_path / "pkgm" / "tool.py").write_text(textwrap.dedent("""
        import sys, cffi
        print(cffi.__jitffi__, sys.argv, __name__)
    """))
    out = run(site_env, ["-m", "jitffi", "run", str(tmp_path / "prog.py"), "a", "-b"])
    assert out[0] == "True jitffi._cffi_backend ['a', '-b'] __main__ 1"
    out = run(site_env, ["-m", "jitffi", "run", "-m", "pkgm.tool", "x"], cwd=str(tmp_path))
    assert out[0] == "True ['%s', 'x'] __main__" % (tmp_path / "pkgm" / "tool.py")
    env, _ = site_env
    r = subprocess.run(PYTHON + ["-m", "jitffi", "run"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr


def test_install_as_cffi_and_refusal_after_real_cffi(site_env):
    out = run(site_env, """
        import os, jitffi
        jitffi.install_as_cffi()
        jitffi.install_as_cffi()  # twice is harmless
        import cffi
        print(cffi.__jitffi__, os.environ["JITFFI_AS_CFFI"])
    """, never_real=True)
    assert out[0] == "True 1"
    out = run(site_env, """
        import cffi, jitffi
        try:
            jitffi.install_as_cffi()
        except ImportError as e:
            print("refused:", e)
    """)
    assert out[0].startswith("refused:") and "already imported" in out[0]


# What pyvex does: cache the parse as a pickle, read back with an unpickler that allows
# only cffi.model classes, and assign it instead of calling cdef(). Same program, run
# twice (writing, then reading the cache), on jitffi and on cffi.
CACHE_PROGRAM = """
import os, pickle, sys
import cffi, cffi.model

class Restricted(pickle.Unpickler):
    ALLOWED = frozenset(n for n in dir(cffi.model) if isinstance(getattr(cffi.model, n), type))
    def find_class(self, module, name):
        if module == "cffi.model" and name in self.ALLOWED:
            return getattr(cffi.model, name)
        raise pickle.UnpicklingError("refusing %s.%s" % (module, name))

CDEF = '''
typedef struct { int x, y; } pt_t;
int add(int a, int b);
int sum_pt(pt_t *p);
#define ANSWER 42
enum color { RED, GREEN = 5 };
'''
cache, so = sys.argv[1], sys.argv[2]
ffi = cffi.FFI()
if os.path.isfile(cache):
    with open(cache, "rb") as f:
        c = Restricted(f).load()
    ffi._parser._declarations = c["_declarations"]
    ffi._parser._int_constants = c["_int_constants"]
    how = "cached"
else:
    ffi.cdef(CDEF)
    with open(cache, "wb") as f:
        f.write(pickle.dumps({"_declarations": ffi._parser._declarations,
                              "_int_constants": ffi._parser._int_constants}))
    how = "parsed"
lib = ffi.dlopen(so)
print(how, lib.add(40, 2), lib.sum_pt(ffi.new("pt_t *", [3, 4])), lib.ANSWER, lib.GREEN,
      sorted(ffi._parser._int_constants.items()))
"""


def test_parse_cache_round_trip_like_pyvex(site_env, tmp_path):
    so = build_clib("dropin", C_SOURCE)
    results = {}
    for switch in ("1", None):
        cache = tmp_path / ("cache-%s" % switch)
        first = run(site_env, CACHE_PROGRAM, cache, so, switch=switch)[0]
        second = run(site_env, CACHE_PROGRAM, cache, so, switch=switch)[0]
        results[switch] = (first, second)
    expect = "7 42 5 [('ANSWER', 42), ('GREEN', 5), ('RED', 0)]"
    assert results["1"] == results[None] == ("parsed 42 " + expect, "cached 42 " + expect)


def test_parse_cache_written_by_real_cffi_is_refused_clearly(site_env, tmp_path):
    so = build_clib("dropin", C_SOURCE)
    cache = tmp_path / "cache"
    run(site_env, CACHE_PROGRAM, cache, so)  # real cffi writes it
    env, prefix = site_env
    env = dict(env, JITFFI_AS_CFFI="1")
    r = subprocess.run(PYTHON + ["-c", prefix + CACHE_PROGRAM, str(cache), so], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "jitffi.FFIError" in r.stderr and "written by real cffi" in r.stderr, r.stderr


def test_declarations_snapshot_in_process():
    ffi = jitffi.FFI()
    ffi.cdef("struct s { int a; };")
    ffi.cdef("int abs(int);\n#define N 3", override=True)
    snap = pickle.loads(pickle.dumps(ffi._parser._declarations))
    assert snap == ffi._parser._declarations and len(snap._cdefs) == 2
    assert sorted(snap) == ["function abs", "macro N", "struct s"]
    other = jitffi.FFI()
    other._parser._declarations = snap
    assert other.sizeof("struct s") == 4 and other.dlopen(None).abs(-2) == 2
    assert other._parser._int_constants == {"N": 3}
    # re-assigning what the ffi already has is a no-op; something else is refused
    other._parser._declarations = snap
    third = jitffi.FFI()
    third.cdef("int x_other;")
    with pytest.raises(jitffi.FFIError):
        third._parser._declarations = snap
    with pytest.raises(jitffi.FFIError):
        jitffi.FFI()._parser._declarations = {"function f": ("not a type", 0)}
    f = jitffi.FFI()
    f._parser._int_constants = {"N": 4}
    with pytest.raises(jitffi.FFIError):
        f._parser._declarations = snap


@pytest.mark.parametrize("mod", [jitffi, real_cffi], ids=["jitffi", "cffi"])
def test_set_source_none_then_inline_dlopen(mod):
    so = build_clib("dropin", C_SOURCE)
    ffi = mod.FFI()
    ffi.cdef("int add(int, int);")
    ffi.set_source("_dropin_never_built", None)
    assert ffi.dlopen(so).add(2, 3) == 5


@pytest.mark.parametrize("mod", [jitffi, real_cffi], ids=["jitffi", "cffi"])
def test_dlopen_flags_without_now_or_lazy(mod):
    so = build_clib("dropin", C_SOURCE)
    ffi = mod.FFI()
    ffi.cdef("int add(int, int);")
    for flags in (ffi.RTLD_DEEPBIND, ffi.RTLD_GLOBAL, ffi.RTLD_LOCAL | ffi.RTLD_NODELETE):
        assert ffi.dlopen(so, flags).add(1, 2) == 3


@pytest.mark.parametrize("mod", [jitffi, real_cffi], ids=["jitffi", "cffi"])
def test_weak_references_to_ctypes(mod):
    ffi = mod.FFI()
    t = ffi.typeof("int *")
    r = weakref.ref(t)
    assert r() is t
    cache = weakref.WeakValueDictionary()
    cache["k"] = ffi.typeof("int")
    assert cache["k"] is ffi.typeof("int")


@pytest.mark.parametrize("mod", [jitffi, real_cffi], ids=["jitffi", "cffi"])
def test_errors_of_the_same_type_as_cffi(mod):
    ffi = mod.FFI()
    with pytest.raises(ValueError, match="'packed' should be False or True"):
        ffi.cdef("struct p { int x; };", packed="yes")
    ffi.cdef("struct p1 { char c; int x; };", packed=1)  # 0/1 pass, as bools
    assert ffi.sizeof("struct p1") == 5
    with pytest.raises(OSError, match="find_library"):
        ffi.dlopen("")


def test_real_cffi_backend_is_refused():
    import _cffi_backend as real_backend  # (the finder is not installed in this process)
    assert real_backend.__file__ == REAL_BACKEND
    with pytest.raises(TypeError, match="real cffi's backend"):
        jitffi.FFI(backend=real_backend)
    from jitffi import _cffi_backend as own_backend
    assert isinstance(jitffi.FFI(backend=own_backend), jitffi.FFI)


@pytest.mark.parametrize("mod", [jitffi, real_cffi], ids=["jitffi", "cffi"])
def test_user_typedef_named_bool_and_calling_convention_words(mod):
    so = build_clib("dropin_bool", "int neg(int b) { return !b; }\n"
                    "int twice(int x) { return 2 * x; }\n")
    plain = mod.FFI()
    assert plain.typeof("bool") is plain.typeof("_Bool")  # bool means _Bool undeclared
    ffi = mod.FFI()
    ffi.cdef("typedef int bool; bool neg(bool); int WINAPI twice(int); "
             "struct s { bool b; };")
    assert ffi.typeof("bool") is ffi.typeof("int") and ffi.sizeof("struct s") == 4
    lib = ffi.dlopen(so)
    assert lib.neg(0) == 1 and lib.neg(5) == 0 and lib.twice(21) == 42
    for t in ("int(WINAPI *)(int)", "int(__stdcall *)(int)", "int(__cdecl *)(int)"):
        assert ffi.typeof(t) is ffi.typeof("int(*)(int)"), t
    assert ffi.typeof("int(*[3])(int)").length == 3


@pytest.mark.parametrize("mod", [jitffi, real_cffi], ids=["jitffi", "cffi"])
def test_python_file_object_as_file_pointer(mod, tmp_path):
    so = build_clib("dropin", C_SOURCE)
    ffi = mod.FFI()
    ffi.cdef("int put(const char *, FILE *);")
    lib = ffi.dlopen(so)
    path = tmp_path / "out.txt"
    with open(path, "w") as f:
        f.write("A")
        assert lib.put(b"hello", f) >= 0
        f.write("B")
        assert lib.put(b"!", f) >= 0  # the second call reuses the same FILE
    assert path.read_text() == "AhelloB!"
    with pytest.raises(TypeError):
        lib.put(b"x", object())


@pytest.mark.parametrize("mod", [jitffi, real_cffi], ids=["jitffi", "cffi"])
def test_exception_classes_cffi_uses(mod):
    ffi = mod.FFI()
    with pytest.raises(ValueError):
        ffi.new("int[]", -1)
    with pytest.raises(OverflowError):
        ffi.new("int[]", 2 ** 62)
    with pytest.raises(mod.CDefError):
        mod.FFI().cdef("enum e { A = 1.5 };")
    with pytest.raises(TypeError, match="new_handle"):
        ffi.from_handle(ffi.new("int *"))
    with pytest.raises(TypeError, match="don't know the size pointed to by 'void \\*'"):
        ffi.buffer(ffi.NULL)
    assert len(ffi.buffer(ffi.cast("void *", 0), 0)) == 0
    with pytest.raises(ValueError, match="with"):
        with ffi.cast("int *", 0):
            pass
    with ffi.new("int *") as p:  # owning: fine
        p[0] = 1


@pytest.mark.parametrize("mod", [jitffi, real_cffi], ids=["jitffi", "cffi"])
def test_named_function_type_for_callbacks_and_field_rules(mod):
    ffi = mod.FFI()
    cb = ffi.callback("int foo(int)", lambda x: x + 1)
    assert ffi.typeof(cb) is ffi.typeof("int(*)(int)") and cb(41) == 42
    cb2 = ffi.callback("unsigned int bar(unsigned int, long)", lambda x, y: x + y)
    assert ffi.typeof(cb2) is ffi.typeof("unsigned int(*)(unsigned int, long)") and cb2(1, 2) == 3
    assert ffi.callback("int(int)", lambda x: 2 * x)(4) == 8
    ffi.cdef("struct wide { char x: 9; };")
    with pytest.raises(TypeError, match="exceeds the width of the type"):
        ffi.new("struct wide *")


def test_duplicate_field_names_are_refused():
    # cffi refuses them with a KeyError when the type is first used; jitffi at cdef()
    f = real_cffi.FFI()
    f.cdef("struct d { int x; int x; };")
    with pytest.raises(KeyError, match="duplicate field name 'x'"):
        f.new("struct d *")
    with pytest.raises(jitffi.CDefError, match="duplicate field name 'x' in struct d"):
        jitffi.FFI().cdef("struct d { int x; int x; };")


@pytest.mark.parametrize("mod", [jitffi, real_cffi], ids=["jitffi", "cffi"])
def test_ffi_attributes_libraries_read(mod):
    ffi = mod.FFI()
    assert ffi.BVoidP is ffi.typeof("void *") and ffi.BCharA is ffi.typeof("char[]")
    data = b"abc\0"
    p = ffi.from_buffer(ffi.BVoidP, data)  # what pyvex passes to its lifter
    assert ffi.string(ffi.cast("char *", p)) == b"abc"


@pytest.mark.parametrize("mod", [jitffi, real_cffi], ids=["jitffi", "cffi"])
def test_line_directives_in_error_locations(mod):
    ffi = mod.FFI()
    with pytest.raises(mod.CDefError) as e:
        ffi.cdef('int a;\n# 42 "foo.h"\nint b;\nunknown_t c;\n')
    assert "foo.h:43" in str(e.value)


CDEF_KEYS = """typedef struct { int a; } s_t; struct p { int x; }; union u { int i; };
enum e { E1, E2 }; int f(int); extern int v;
#define M 5
#define U ...
static const int K = 3; typedef int myint; extern "Python" int cb(int); typedef int (*fp)(int);
"""


def test_declaration_keys_as_cffi_names_them():
    # code that lists ffi._parser._declarations (e.g. every "function " key) sees cffi's keys
    f = real_cffi.FFI()
    f.cdef(CDEF_KEYS)
    j = jitffi.FFI()
    j.cdef(CDEF_KEYS)
    assert sorted(j._parser._declarations.keys()) == sorted(f._parser._declarations.keys())
    funcs = [k[len("function "):] for k in j._parser._declarations if k.startswith("function ")]
    assert funcs == ["f"]


PACKED_WIDE = [
    (dict(packed=True), 1, "a1", "unsigned long f: 63; unsigned long g: 3; char c;"),
    (dict(packed=True), 1, "a2", "char c; unsigned long f: 63; int x: 5;"),
    (dict(pack=2), 2, "b1", "unsigned long f: 63; unsigned long g: 3; char c;"),
    (dict(pack=2), 2, "b2", "char c; unsigned long f: 63; int x: 5;"),
    (dict(pack=4), 4, "c2", "char c; unsigned long f: 63; int x: 5; short s;"),
]


def test_packed_structs_with_wide_bitfields_as_gcc_lays_them_out():
    c = ["#include <stdio.h>"]
    for _, n, name, body in PACKED_WIDE:
        c.append("#pragma pack(push,%d)\nstruct %s { %s };\n#pragma pack(pop)" % (n, name, body))
    c.append("int main(void) { printf(\"%s\\n\", %s); return 0; }" % (
        " ".join(["%zu %zu"] * len(PACKED_WIDE)),
        ", ".join("sizeof(struct %s), _Alignof(struct %s)" % (x[2], x[2]) for x in PACKED_WIDE)))
    expect = run_c_program("packed_wide", "\n".join(c)).split()
    got = []
    for opts, _, name, body in PACKED_WIDE:
        ffi = jitffi.FFI()
        ffi.cdef("struct %s { %s };" % (name, body), **opts)
        got += [str(ffi.sizeof("struct " + name)), str(ffi.alignof("struct " + name))]
    assert got == expect


def test_real_cffi_ctypes_backend_is_refused():
    from cffi.backend_ctypes import CTypesBackend as RealCTypesBackend  # real cffi's
    with pytest.raises(TypeError, match="real cffi's backend"):
        jitffi.FFI(backend=RealCTypesBackend())


def test_ctypes_backend_under_the_switch_is_jitffis(site_env):
    # cffi's own tests and older programs ask for the ctypes backend by name: under the
    # switch it gives an FFI on jitffi's backend, calling real libm.
    out = run(site_env, """
        import cffi
        from cffi.backend_ctypes import CTypesBackend
        ffi = cffi.FFI(backend=CTypesBackend())
        ffi.cdef("double sqrt(double); union u { int i; float f; };")
        m = ffi.dlopen("libm.so.6")
        u = ffi.new("union u *", {"i": 0x3f800000})
        print(type(ffi).__module__.split(".")[0], m.sqrt(2.25), u.f,
              CTypesBackend().__version__ == __import__("_cffi_backend").__version__)
    """, switch="1", never_real=True)
    assert out[0] == "jitffi 1.5 1.0 True"


BUILD_SCRIPT = """
    import os, sys
    from cffi import FFI, recompiler, ffiplatform
    out = sys.argv[1]
    c = os.path.join(out, "_rec.c")
    with open(c, "w") as f:
        f.write("int add42(int x) { return x + 42; }\\n"
                "void PyInit__rec(void) { }\\n")
    ext = ffiplatform.get_extension(c, "_rec", export_symbols=["add42"])
    so = ffiplatform.compile(out, ext)
    ffi = FFI()
    ffi.cdef("int add42(int); struct s { int a; char b[3]; }; enum e { A, B = -3 };"
             "\\n#define K 7\\n")
    path = recompiler.recompile(ffi, "pkg._rec_py", None, tmpdir=out, compiler_verbose=0)
    assert path == os.path.join(out, "pkg", "_rec_py.py"), path
    assert recompiler.make_py_source(ffi, "pkg._rec_py", path) is False  # up to date
    sys.path.insert(0, out)
    os.makedirs(os.path.join(out, "pkg"), exist_ok=True)
    open(os.path.join(out, "pkg", "__init__.py"), "a").close()
    from pkg._rec_py import ffi as built
    lib = built.dlopen(so)
    print(lib.add42(-2), built.sizeof("struct s"), lib.B, lib.K)
    print(open(path).read())
"""


def test_build_script_with_recompiler_and_ffiplatform(site_env, tmp_path):
    # cffi.recompiler and cffi.ffiplatform, as build scripts and cffi's own tests use
    # them: the same module text as real cffi writes, and a library built with setuptools.
    (tmp_path / "j").mkdir()
    (tmp_path / "c").mkdir()
    got = run(site_env, BUILD_SCRIPT, tmp_path / "j", switch="1", cwd=tmp_path, never_real=True)
    want = run(site_env, BUILD_SCRIPT, tmp_path / "c", cwd=tmp_path)
    assert got[0] == "40 8 -3 7"
    assert got == want
    assert got[1:3] == ["# auto-generated file", "import _cffi_backend"]
    # Without the switch, jitffi's own builder names its backend explicitly.
    ffi = jitffi.FFI()
    ffi.cdef("int add42(int);")
    ffi.set_source("_rec_own", None)
    with open(ffi.compile(tmpdir=str(tmp_path))) as f:
        assert f.read().split("\n")[1] == "import jitffi._cffi_backend"


MODEL_SCRIPT = """
    from cffi import model as m
    i = m.PrimitiveType("int")
    fp = m.FunctionPtrType([i, m.PrimitiveType("double")], i, True)
    types = [m.void_type, i, m.PointerType(i), m.ConstPointerType(m.ArrayType(i, 5)),
             m.PointerType(m.ArrayType(m.ConstPointerType(i), 5), m.Q_VOLATILE),
             m.PointerType(m.PrimitiveType("long long"), m.Q_RESTRICT | m.Q_CONST),
             m.RawFunctionType([], i, False), m.RawFunctionType([i], fp, True), fp,
             m.ArrayType(fp, 3), m.ArrayType(i, None), m.ArrayType(m.ArrayType(i, 2), "..."),
             m.unknown_type("foo_t"), m.unknown_ptr_type("foo_p"),
             m.StructType("s", None, None, None), m.UnionType("u", None, None, None),
             m.EnumType("e", [], []), m.const_voidp_type, m.voidp_type]
    for t in types:
        print(repr(t), "|", " | ".join(t.get_c_name(d) for d in ("", "x", "*x", " *x", "[4]")))
    print(m.PrimitiveType("int") == i, hash(m.PrimitiveType("int")) == hash(i),
          m.PointerType(i) != m.PointerType(i, m.Q_CONST), i.is_integer_type(),
          m.PrimitiveType("double").is_float_type(), m.PrimitiveType("char").is_char_type())
    try:
        m.StructType("$1", None, None, None).get_c_name("y")  # a name C cannot spell
    except Exception as e:
        print(type(e).__name__)
"""


def test_cffi_model_types_spell_c_names_as_cffi(site_env):
    # cffi.model's types under the switch build the same C spellings as cffi's own.
    got = run(site_env, MODEL_SCRIPT, switch="1", never_real=True)
    want = run(site_env, MODEL_SCRIPT)
    assert got == want
    assert "int(* x[3])(int, double, ...)" in got[9]
    assert got[-2] == "VerificationError"  # (the last item: the empty line after it)

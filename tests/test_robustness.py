"""Bad input never crashes the interpreter: a battery of operations on cdata of many
types with wrong/odd values runs in a subprocess, which must exit normally (every
failure a Python exception), and no failure may be a caught panic (jitffi.InternalError),
raised or reported as unraisable."""
import os
import subprocess
import textwrap

import jitffi
from conftest import PYTHON

SCRIPT = textwrap.dedent(r'''
    import itertools, gc, sys
    import jitffi
    internal = []
    def unraisable(u, _default=sys.unraisablehook):
        if isinstance(u.exc_value, jitffi.InternalError):
            internal.append("unraisable: %r" % (u.exc_value,))
        _default(u)
    sys.unraisablehook = unraisable
    ffi = jitffi.FFI()
    ffi.cdef("""
        struct pt { int x, y; }; struct bf { int a:3; unsigned b:2; };
        union u { int i; double d; }; struct fl { int n; char a[]; };
        struct opaque; enum e { A, B };
        typedef int (*fn_t)(int);
    """)
    types = ["int", "char", "_Bool", "double", "long double", "float _Complex", "wchar_t",
             "char16_t", "enum e", "int *", "char *", "void *", "struct pt *", "struct pt",
             "union u *", "struct bf *", "struct fl *", "struct opaque *", "int[3]", "int[]",
             "char[]", "struct pt[2]", "fn_t", "int(*)[3]", "int **"]
    values = [None, 0, 1, -1, 2**70, 3.5, "x", "xy", b"x", b"xyz", [1, 2], [[1], 2],
              {"x": 1}, {"q": 1}, (1,), object(), ffi.NULL, ffi.new("int *"),
              ffi.new("struct pt *"), ffi.new("int[2]"), ffi.cast("int", 3), float("nan"), True]
    ops = [
        lambda c, v: c[0], lambda c, v: c[1], lambda c, v: c[-1], lambda c, v: c[v],
        lambda c, v: c.__setitem__(0, v), lambda c, v: c[0:1], lambda c, v: c.__setitem__(slice(0, 1), v),
        lambda c, v: c.x, lambda c, v: setattr(c, "x", v), lambda c, v: setattr(c, "a", v),
        lambda c, v: len(c), lambda c, v: list(c), lambda c, v: int(c), lambda c, v: float(c),
        lambda c, v: complex(c), lambda c, v: bool(c), lambda c, v: hash(c), lambda c, v: c == v,
        lambda c, v: c < v, lambda c, v: c + v, lambda c, v: c - v, lambda c, v: repr(c),
        lambda c, v: ffi.string(c), lambda c, v: ffi.unpack(c, 2), lambda c, v: ffi.buffer(c)[:],
        lambda c, v: ffi.addressof(c), lambda c, v: ffi.addressof(c, "x"), lambda c, v: ffi.sizeof(c),
        lambda c, v: ffi.cast("int", c), lambda c, v: ffi.cast("char *", c), lambda c, v: ffi.from_handle(c),
        lambda c, v: ffi.release(c), lambda c, v: ffi.gc(c, None), lambda c, v: c(v),
        lambda c, v: ffi.memmove(c, v, 1), lambda c, v: dir(c),
    ]
    n = 0
    for t in types:
        for v in values:
            cds = []
            for make in (lambda: ffi.new(t, v), lambda: ffi.cast(t, v)):
                try:
                    cds.append(make())
                except Exception:
                    pass
            cds.append(ffi.cast(t, 0) if t not in ("struct pt", "int[]", "char[]", "struct pt[2]") and "[" not in t and t != "struct pt" else None)
            for c in cds:
                if c is None:
                    continue
                for op in ops:
                    try:
                        op(c, v)
                    except jitffi.InternalError as e:
                        internal.append("%s with %r: %r" % (t, v, e))
                    except Exception:
                        pass
                    n += 1
    # Malformed declarations are CDefErrors (or other user errors), never a caught panic.
    for text in ["int f(", "struct { int x; ", "int a[1<<70];", "enum e { A = 1/0 };",
                 "typedef int (*)(int);", "int f(int x[-1]);", "#define X (", "\x00",
                 "struct s { int x : 99; };", "int " + "*" * 5000 + "p;", "(" * 10000]:
        try:
            jitffi.FFI().cdef(text)
        except jitffi.InternalError as e:
            internal.append("cdef %r: %r" % (text[:40], e))
        except Exception:
            pass
    gc.collect()
    print("ok", n, len(internal))
    for line in internal[:20]:
        print(line)
''')


def test_battery_does_not_crash():
    env = dict(os.environ)
    # the jitffi this interpreter imported (the source tree's, or the target's build)
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(jitffi.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([package_dir, env.get("PYTHONPATH", "")])
    r = subprocess.run(PYTHON + ["-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("ok ")
    words = r.stdout.split()
    assert int(words[1]) > 10000
    assert words[2] == "0", "caught panics (InternalError):\n" + r.stdout

"""ffi.callback and extern "Python": C code (compiled in the test setup, and libc's qsort)
calling Python through JIT thunks."""
import gc
import math
import os
import sys
import threading
import weakref

import pytest

import jitffi

sys.path.insert(0, os.path.dirname(__file__))
import clib_callbacks  # noqa: E402


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    path = clib_callbacks.build(str(tmp_path_factory.mktemp("cbtest")))
    ffi = jitffi.FFI()
    ffi.cdef(clib_callbacks.CDEF)
    lib = ffi.dlopen(path)
    return ffi, lib


class Unraisable:
    """Collects what reaches sys.unraisablehook."""

    def __init__(self):
        self.seen = []

    def __enter__(self):
        self.old = sys.unraisablehook
        sys.unraisablehook = self.seen.append
        return self

    def __exit__(self, *a):
        sys.unraisablehook = self.old


INT_LIMITS = [
    ("schar", "signed char", -128, 127),
    ("uchar", "unsigned char", 0, 255),
    ("short", "short", -(2**15), 2**15 - 1),
    ("ushort", "unsigned short", 0, 2**16 - 1),
    ("int", "int", -(2**31), 2**31 - 1),
    ("uint", "unsigned int", 0, 2**32 - 1),
    ("long", "long", -(2**63), 2**63 - 1),
    ("ulong", "unsigned long", 0, 2**64 - 1),
    ("llong", "long long", -(2**63), 2**63 - 1),
    ("ullong", "unsigned long long", 0, 2**64 - 1),
    ("i8", "int8_t", -128, 127),
    ("u8", "uint8_t", 0, 255),
    ("i16", "int16_t", -(2**15), 2**15 - 1),
    ("u16", "uint16_t", 0, 2**16 - 1),
    ("i32", "int32_t", -(2**31), 2**31 - 1),
    ("u32", "uint32_t", 0, 2**32 - 1),
    ("i64", "int64_t", -(2**63), 2**63 - 1),
    ("u64", "uint64_t", 0, 2**64 - 1),
    ("size", "size_t", 0, 2**64 - 1),
    ("ssize", "ptrdiff_t", -(2**63), 2**63 - 1),
]


@pytest.mark.parametrize("name,ctype,lo,hi", INT_LIMITS)
def test_integers_at_their_limits(env, name, ctype, lo, hi):
    ffi, lib = env
    seen = []

    def f(x):
        seen.append(x)
        return x

    cb = ffi.callback("%s(%s)" % (ctype, ctype), f)
    call = getattr(lib, "call_" + name)
    for v in (lo, hi, 0, 1, lo + 1, hi - 1):
        assert call(cb, v) == v
    assert seen == [lo, hi, 0, 1, lo + 1, hi - 1]
    assert all(type(x) is int for x in seen)


@pytest.mark.parametrize("name,ctype,lo,hi", INT_LIMITS)
def test_integer_result_overflow_returns_error_value(env, name, ctype, lo, hi):
    ffi, lib = env
    cb = ffi.callback("%s(%s)" % (ctype, ctype), lambda x: hi + 1, error=lo)
    with Unraisable() as u:
        assert getattr(lib, "call_" + name)(cb, 0) == lo
    assert len(u.seen) == 1
    assert u.seen[0].exc_type is OverflowError
    assert "trying to convert the result back to C" in u.seen[0].err_msg


def test_small_integer_arguments_are_extended_by_the_thunk(env):
    ffi, lib = env
    cb = ffi.callback("int(short)", lambda s: s)
    assert lib.call_short_dirty(cb) == -1


def test_floats(env):
    ffi, lib = env
    cbf = ffi.callback("float(float)", lambda x: x * 2)
    assert lib.call_float(cbf, 1.5) == 3.0
    assert lib.call_float(cbf, 2e38) == math.inf  # float overflow is C's business
    assert lib.call_float(cbf, -0.0) == 0.0 and math.copysign(1, lib.call_float(cbf, -0.0)) < 0
    cbd = ffi.callback("double(double)", lambda x: x)
    for v in (1.7976931348623157e308, 5e-324, -2.5, math.inf, -math.inf):
        assert lib.call_double(cbd, v) == v
    assert math.isnan(lib.call_double(cbd, math.nan))
    got = []
    cbd2 = ffi.callback("double(double)", lambda x: got.append(x) or 7)  # int result accepted
    assert lib.call_double(cbd2, 0.1) == 7.0
    assert got == [0.1] and type(got[0]) is float


def test_bool_char_wchar_pointer(env):
    ffi, lib = env
    seen = []
    cbb = ffi.callback("_Bool(_Bool)", lambda b: seen.append(b) or (not b))
    assert lib.call_bool(cbb, True) is False
    assert lib.call_bool(cbb, False) is True
    assert seen == [True, False]
    cbc = ffi.callback("char(char)", lambda c: bytes([c[0] ^ 0xFF]))
    assert lib.call_char(cbc, b"\x00") == b"\xff"
    assert lib.call_char(cbc, b"a") == bytes([ord("a") ^ 0xFF])
    cbw = ffi.callback("wchar_t(wchar_t)", lambda c: c.upper())
    assert lib.call_wchar(cbw, "x") == "X"
    cbw2 = ffi.callback("wchar_t(wchar_t)", lambda c: c)
    assert lib.call_wchar(cbw2, "\U0001F600") == "\U0001F600"
    ptrs = []
    cbp = ffi.callback("void*(void*)", lambda p: ptrs.append(p) or p)
    p = ffi.cast("void *", 0x12345678)
    r = lib.call_ptr(cbp, p)
    assert int(ffi.cast("intptr_t", r)) == 0x12345678
    assert lib.call_ptr(cbp, ffi.NULL) == ffi.NULL
    assert ffi.typeof(ptrs[0]) is ffi.typeof("void *")


def test_many_mixed_arguments(env):
    ffi, lib = env
    got = []

    @ffi.callback("double(int, double, long, float, char, short, double, long long,"
                  " int, double, int, double, float, long)")
    def cb(*args):
        got.append(args)
        return 42.5

    assert lib.call_many(cb, 7) == 42.5
    assert got == [(7, 1.5, 3, 2.25, b"a", -7, 1e10, -9000000000, 11, -0.5, 13, 0.125, 4.5, 15)]


def test_structs_by_value(env):
    ffi, lib = env

    @ffi.callback("struct pt(struct pt, int)")
    def scale(p, k):
        assert ffi.typeof(p) is ffi.typeof("struct pt")
        return (p.x * k, p.y * k)

    assert lib.check_pt(scale) == 1

    @ffi.callback("struct big(struct big, struct big)")
    def add(a, b):
        return {"a": a.a + b.a, "b": a.b + b.b, "c": a.c + b.c, "d": a.d + b.d}

    assert lib.check_big(add) == 1
    assert lib.check_small(ffi.callback("struct small(struct small)", lambda s: (b"y", s.s - 1))) == 1
    def add_chars(x, y):
        return bytes([x[0] + y[0]])

    odd = ffi.callback("struct odd3(struct odd3, struct odd3)",
                       lambda a, b: [add_chars(a.a, b.a), add_chars(a.b, b.b), add_chars(a.c, b.c)])
    assert lib.check_odd3(odd) == 1

    @ffi.callback("struct mixed(int, struct mixed, double)")
    def mixed(i, m, d):
        r = ffi.new("struct mixed *", [m.i + i, m.f + 1.0, m.d + d])
        return r[0]  # a struct cdata is accepted as result too

    assert lib.check_mixed(mixed) == 1
    assert lib.check_f3(ffi.callback("struct f3(struct f3)", lambda v: (v.a * 2, v.b * 2, v.c * 2))) == 1


def test_aggregates_on_the_stack(env):
    ffi, lib = env

    @ffi.callback("double(long, long, long, long, long, long, struct big, struct pt,"
                  " double, double, double, double, double, double, double, double, struct pt)")
    def cb(l1, l2, l3, l4, l5, l6, big, p, d1, d2, d3, d4, d5, d6, d7, d8, q):
        return (l1 + l2 + l3 + l4 + l5 + l6 + big.a + big.b + big.c + big.d + p.x + p.y
                + d1 + d2 + d3 + d4 + d5 + d6 + d7 + d8 + q.x + q.y)

    assert lib.check_pt_stack(cb) == 1


def test_union_long_double_complex_by_value(env):
    # cffi (libffi) refuses these; jitffi's own lowering handles them.
    ffi, lib = env

    @ffi.callback("union u(union u)")
    def u(v):
        r = ffi.new("union u *")
        r.i = v.i + 1
        return r[0]

    assert lib.check_union(u) == 1
    assert lib.check_long_double(ffi.callback("long double(long double, int)", lambda x, k: float(x) * k)) == 1
    assert lib.check_complex(ffi.callback("double _Complex(double _Complex)", lambda z: z * 2)) == 1
    assert lib.check_fcomplex(ffi.callback("float _Complex(float _Complex)", lambda z: z * 3)) == 1


def test_called_100000_times(env):
    ffi, lib = env
    cb = ffi.callback("int(int)", lambda i: i * 2)
    assert lib.call_cb_n(cb, 100000) == 100000 * 99999


def test_qsort_with_python_comparator(env):
    ffi, _ = env
    ffi2 = jitffi.FFI()
    ffi2.cdef("void qsort(void *base, size_t nmemb, size_t size,"
              " int (*compar)(const void *, const void *));")
    libc = ffi2.dlopen(None)
    import random
    rnd = random.Random(1234)
    data = [rnd.randint(-10**6, 10**6) for _ in range(5000)]
    arr = ffi2.new("int[]", data)
    calls = [0]

    @ffi2.callback("int(const void *, const void *)")
    def cmp(a, b):
        calls[0] += 1
        x = ffi2.cast("int *", a)[0]
        y = ffi2.cast("int *", b)[0]
        return (x > y) - (x < y)

    libc.qsort(arr, len(data), ffi2.sizeof("int"), cmp)
    assert list(arr) == sorted(data)
    assert calls[0] > len(data)


def test_callbacks_from_four_c_threads_at_once(env):
    ffi, lib = env
    idents = set()
    lock = threading.Lock()

    def f(i):
        with lock:
            idents.add(threading.get_ident())
        return i

    cb = ffi.callback("int(int)", f)
    n = 20000
    assert lib.run_threads(cb, 4, n) == sum(range(4 * n))
    assert threading.get_ident() not in idents  # called from C threads only
    assert len(idents) >= 2


def test_callbacks_while_other_python_threads_call_c(env):
    ffi, lib = env
    cb = ffi.callback("int(int)", lambda i: i + 1)
    results = []

    def work():
        results.append(lib.call_cb_n(cb, 20000))

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert results == [sum(range(1, 20001))] * 4


def test_reentrancy_python_c_python_c_python(env):
    ffi, lib = env
    depths = []

    @ffi.callback("int(int)")
    def cb(d):
        depths.append(d)
        if d == 0:
            return 100
        return lib.nest(cb, d - 1) + 1

    assert lib.nest(cb, 4) == 104
    assert depths == [4, 3, 2, 1, 0]


def test_exception_is_reported_and_error_returned(env):
    ffi, lib = env

    def boom(x):
        raise ValueError("boom %d" % x)

    cb = ffi.callback("int(int)", boom, error=-7)
    with Unraisable() as u:
        assert lib.call_cb_once(cb, 3) == -7
    (a,) = u.seen
    assert a.exc_type is ValueError and str(a.exc_value) == "boom 3"
    assert a.err_msg == "Exception ignored from cffi callback %r" % (boom,)
    assert a.exc_traceback is not None
    cb0 = ffi.callback("int(int)", boom)
    with Unraisable() as u:
        assert lib.call_cb_once(cb0, 3) == 0  # default error value
    assert len(u.seen) == 1


def test_unconvertible_result_is_reported(env):
    ffi, lib = env

    def f(x):
        return "not an int"

    cb = ffi.callback("int(int)", f, error=5)
    with Unraisable() as u:
        assert lib.call_cb_once(cb, 1) == 5
    (a,) = u.seen
    assert a.exc_type is TypeError
    assert a.err_msg == "Exception ignored from cffi callback %r, trying to convert the result back to C" % (f,)
    v = ffi.callback("void(int)", lambda x: 42)
    with Unraisable() as u:
        lib.call_void(v, 1)
    assert u.seen[0].exc_type is TypeError
    assert "must return None" in str(u.seen[0].exc_value)


def test_error_value_is_checked_at_creation(env):
    ffi, _ = env
    with pytest.raises(TypeError):
        ffi.callback("int(int)", lambda x: x, error="x")
    with pytest.raises(OverflowError):
        ffi.callback("unsigned char(int)", lambda x: x, error=256)


def test_onerror(env):
    ffi, lib = env
    got = []

    def onerror(exc, value, tb):
        got.append((exc, type(value), tb is not None))
        return 42

    cb = ffi.callback("int(int)", lambda x: 1 / 0, error=-1, onerror=onerror)
    with Unraisable() as u:
        assert lib.call_cb_once(cb, 1) == 42
    assert u.seen == []
    assert got == [(ZeroDivisionError, ZeroDivisionError, True)]
    # onerror returning None: the error value, nothing reported.
    cb2 = ffi.callback("int(int)", lambda x: 1 / 0, error=3, onerror=lambda *a: None)
    with Unraisable() as u:
        assert lib.call_cb_once(cb2, 1) == 3
    assert u.seen == []
    # onerror also sees unconvertible results.
    cb3 = ffi.callback("int(int)", lambda x: "bad", onerror=lambda e, v, t: 9)
    assert lib.call_cb_once(cb3, 1) == 9

    # onerror failing: both exceptions are reported, error value returned.
    def bad_onerror(exc, value, tb):
        raise KeyError("x")

    cb4 = ffi.callback("int(int)", lambda x: 1 / 0, error=3, onerror=bad_onerror)
    with Unraisable() as u:
        assert lib.call_cb_once(cb4, 1) == 3
    assert [a.exc_type for a in u.seen] == [ZeroDivisionError, KeyError]
    assert u.seen[1].err_msg == "Exception ignored during handling of the above exception by 'onerror'"
    cb5 = ffi.callback("int(int)", lambda x: 1 / 0, error=3, onerror=lambda *a: "bad")
    with Unraisable() as u:
        assert lib.call_cb_once(cb5, 1) == 3
    assert [a.exc_type for a in u.seen] == [ZeroDivisionError, TypeError]


def test_bad_arguments(env):
    ffi, _ = env
    with pytest.raises(NotImplementedError):
        ffi.callback("int(int, ...)", lambda x: x)
    with pytest.raises(TypeError, match="not callable"):
        ffi.callback("int(int)", 42)
    with pytest.raises(TypeError, match="onerror"):
        ffi.callback("int(int)", lambda x: x, onerror=42)
    with pytest.raises(TypeError):
        ffi.callback("int", lambda x: x)


def test_decorator_repr_typeof_and_python_call(env):
    ffi, _ = env

    @ffi.callback("int(*)(int)")
    def twice(x):
        return 2 * x

    assert repr(twice).startswith("<cdata 'int(*)(int)' calling <function ")
    assert "twice" in repr(twice)
    assert ffi.typeof(twice) is ffi.typeof("int(*)(int)")
    assert twice(21) == 42  # callable from Python too, through C
    assert ffi.cast("intptr_t", twice) != 0

    def thrice(x):
        return 3 * x

    class Callable:
        def __call__(self, x):
            return x

        def __repr__(self):
            return "<my callable>"

    assert repr(ffi.callback("int(int)", thrice)) == "<cdata 'int(*)(int)' calling %r>" % (thrice,)
    assert repr(ffi.callback("int(int)", Callable())) == "<cdata 'int(*)(int)' calling <my callable>>"


def test_callback_keeps_callable_alive_and_frees_its_slot(env):
    ffi, lib = env

    class F:
        def __call__(self, x):
            return x + 1

    f = F()
    ref = weakref.ref(f)
    cb = ffi.callback("int(int)", f)
    del f
    gc.collect()
    assert ref() is not None
    assert lib.call_cb_once(cb, 1) == 2
    del cb
    gc.collect()
    assert ref() is None


def test_entry_slots_are_reused(env):
    ffi, _ = env
    addrs = set()
    for i in range(2000):
        cb = ffi.callback("int(int)", lambda x: x)
        addrs.add(int(ffi.cast("intptr_t", cb)))
        del cb
    assert len(addrs) < 20


def _rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def test_memory_flat_over_100k_create_drop(env):
    ffi, lib = env

    def round_(n):
        for i in range(n):
            cb = ffi.callback("int(int)", lambda x, i=i: x + i)
            if i % 1000 == 0:
                assert lib.call_cb_once(cb, 1) == 1 + i

    round_(20000)
    gc.collect()
    before = _rss_kb()
    round_(100000)
    gc.collect()
    grown = _rss_kb() - before
    assert grown < 2048, "RSS grew by %d KiB" % grown


def test_extern_python_in_abi_mode(env):
    _, _ = env
    path = clib_callbacks.build()
    ffi = jitffi.FFI()
    ffi.cdef(clib_callbacks.CDEF)
    ffi.cdef('extern "Python" int on_event(int);')
    lib = ffi.dlopen(path)
    fp = lib.on_event
    assert ffi.typeof(fp) is ffi.typeof("int(*)(int)")
    # Not bound yet: reported, error value (0) returned.
    with Unraisable() as u:
        assert lib.call_cb_once(fp, 5) == 0
    assert len(u.seen) == 1
    assert "on_event" in u.seen[0].err_msg + str(u.seen[0].exc_value)

    @ffi.def_extern()
    def on_event(x):
        return x * 10

    assert lib.call_cb_once(lib.on_event, 5) == 50
    assert lib.call_cb_once(ffi.addressof(lib, "on_event"), 6) == 60
    # Same C function pointer before and after binding: C may have stored it.
    assert lib.call_cb_once(fp, 7) == 70

    @ffi.def_extern(name="on_event", error=-1)
    def other(x):
        raise ValueError

    with Unraisable() as u:
        assert lib.call_cb_once(fp, 7) == -1
    assert u.seen[0].exc_type is ValueError
    with pytest.raises(Exception):
        ffi.def_extern(name="not_declared")(lambda x: x)


def test_exceptions_in_c_threads_are_reported(env):
    ffi, lib = env
    seen = []
    lock = threading.Lock()

    def f(i):
        if i % 1000 == 7:
            raise KeyError(i)
        return 1

    cb = ffi.callback("int(int)", f, error=0)

    def hook(a):
        with lock:
            seen.append(a.exc_type)

    old = sys.unraisablehook
    sys.unraisablehook = hook
    try:
        total = lib.run_threads(cb, 4, 5000)
    finally:
        sys.unraisablehook = old
    assert total == 4 * 5000 - 20
    assert seen == [KeyError] * 20


def test_struct_result_error_value_is_zeroed(env):
    ffi, lib = env

    @ffi.callback("struct pt(struct pt, int)")
    def bad(p, k):
        raise ValueError

    # check_pt compares against (4.5, -6.75): a zeroed struct fails the check.
    with Unraisable() as u:
        assert lib.check_pt(bad) == 0
    assert u.seen[0].exc_type is ValueError


def test_with_the_gil_kept_during_the_c_call(env):
    ffi, _ = env
    lib2 = ffi.dlopen(clib_callbacks.build(), release_gil=False)

    @ffi.callback("int(int)")
    def cb(d):
        return 100 if d == 0 else lib2.nest(cb, d - 1) + 1

    assert lib2.nest(cb, 3) == 103
    assert lib2.call_cb_n(ffi.callback("int(int)", lambda i: i), 1000) == 499500
    # (Callbacks from other threads while the caller keeps the GIL would deadlock: that
    # is what release_gil=False means.)


def test_released_callback_gives_its_slot_back(env):
    ffi, lib = env
    cb = ffi.callback("int(int)", lambda x: x + 1)
    addr = int(ffi.cast("intptr_t", cb))
    assert lib.call_cb_once(cb, 1) == 2
    ffi.release(cb)
    cb2 = ffi.callback("int(int)", lambda x: x + 2)
    assert int(ffi.cast("intptr_t", cb2)) == addr
    assert lib.call_cb_once(cb2, 1) == 3


def test_extern_python_lives_as_long_as_its_ffi(env):
    path = clib_callbacks.build()

    def make():
        ffi = jitffi.FFI()
        ffi.cdef('extern "Python" int on_event(int); int call_cb_once(int (*)(int), int);')
        lib = ffi.dlopen(path)

        @ffi.def_extern()
        def on_event(x):
            return x + 1

        assert lib.call_cb_once(lib.on_event, 1) == 2
        return weakref.ref(ffi), weakref.ref(on_event)

    ffi_ref, fn_ref = make()
    gc.collect()
    assert ffi_ref() is None
    assert fn_ref() is None


def test_callback_released_during_its_own_call(env):
    ffi, lib = env
    holder = {}

    def f(x):
        ffi.release(holder.pop("cb"))  # a one-shot callback freeing itself
        gc.collect()
        # Its entry slot is free again: a new callback may take it meanwhile.
        holder["other"] = ffi.callback("int(int)", lambda y: y * 3)
        return x + 1

    holder["cb"] = ffi.callback("int(int)", f)
    assert lib.call_cb_once(holder["cb"], 41) == 42
    assert lib.call_cb_once(holder["other"], 5) == 15
    del holder["other"]
    gc.collect()


# --- the two callback tiers (JITFFI_TIER=generic|compiled|auto) --------------------------

TIER = os.environ.get("JITFFI_TIER", "auto") or "auto"

# Runs in a fresh interpreter, so the shapes it uses were never compiled or promoted in
# it: argv = jitffi's directory, this directory, a build directory.
TIER_SCRIPT = r"""
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import jitffi, clib_callbacks
from jitffi import _jitffi
ffi = jitffi.FFI()
ffi.cdef(clib_callbacks.CDEF)
lib = ffi.dlopen(clib_callbacks.build(sys.argv[3]))
out = {"before": _jitffi._jit_stats(calls=True)}
cb = ffi.callback("int(int)", lambda i: i * 3)
n = 20000
# Four C threads call at once: under auto the shape is promoted while the others are
# inside the callback.
out["threads"] = lib.run_threads(cb, 4, n) == 3 * sum(range(4 * n))
out["after_threads"] = _jitffi._jit_stats(calls=True)
# A callback created after that, of the same shape.
cb2 = ffi.callback("int(int)", lambda i: i - 1)
out["later"] = [lib.call_cb_once(cb2, k) for k in range(100)] == [k - 1 for k in range(100)]
out["old"] = lib.call_cb_n(cb, 50)
out["end"] = _jitffi._jit_stats(calls=True)
print(json.dumps(out))
"""


def _run_tier_script(tmp_path, script, tier=None):
    import json
    import subprocess
    from conftest import PYTHON
    env = dict(os.environ)
    if tier is not None:
        env["JITFFI_TIER"] = tier
    py_dir = os.path.dirname(os.path.dirname(os.path.abspath(jitffi.__file__)))
    r = subprocess.run(PYTHON + ["-c", script, py_dir, os.path.dirname(__file__), str(tmp_path)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_callback_tier_counters_follow_the_tier(tmp_path):
    out = _run_tier_script(tmp_path, TIER_SCRIPT)
    assert out["threads"] and out["later"]
    assert out["old"] == 3 * sum(range(50))
    before, mid, end = out["before"], out["after_threads"], out["end"]
    total = 4 * 20000 + 100 + 50
    generic = end["generic_callbacks"] - before["generic_callbacks"]
    compiled = end["callback_shapes_compiled"] - before["callback_shapes_compiled"]
    promotions = end["callback_promotions"] - before["callback_promotions"]
    if TIER == "generic":
        assert end["callback_shapes_compiled"] == 0 and end["callback_code_bytes"] == 0
        assert generic == total and promotions == 0
    elif TIER == "compiled":
        assert generic == 0 and promotions == 0 and compiled == 1
        assert end["callback_code_bytes"] > 0
    else:
        # Promoted once, during the threaded run; every callback moved to the compiled
        # thunk (the new one at once, the old one at its next call).
        assert promotions == 1 and compiled == 1
        assert 0 < mid["generic_callbacks"] - before["generic_callbacks"] < 4 * 20000
        assert end["generic_callbacks"] - mid["generic_callbacks"] <= 1


# Every observable of a callback (results, errors and their reports, onerror) for a set
# of shapes, printed as one JSON list.
AGREE_SCRIPT = r"""
import json, re, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import jitffi, clib_callbacks
ffi = jitffi.FFI()
ffi.cdef(clib_callbacks.CDEF)
lib = ffi.dlopen(clib_callbacks.build(sys.argv[3]))
seen = []
sys.unraisablehook = lambda u: seen.append([re.sub(" at 0x[0-9a-f]+", "", u.err_msg), type(u.exc_value).__name__, str(u.exc_value)])
out = []
def rec(tag, v):
    out.append([tag, repr(v), list(seen)])
    seen.clear()
if True:
    rec("int", lib.call_int(ffi.callback("int(int)", lambda x: x * 2), 21))
    rec("int_overflow", lib.call_int(ffi.callback("int(int)", lambda x: 2**40, error=-7), 1))
    rec("u8", lib.call_u8(ffi.callback("uint8_t(uint8_t)", lambda x: x + 1), 254))
    rec("double", lib.call_double(ffi.callback("double(double)", lambda x: x / 3), 1.0))
    rec("float", lib.call_float(ffi.callback("float(float)", lambda x: x * 1.5), 0.1))
    rec("raise", lib.call_int(ffi.callback("int(int)", lambda x: 1 // 0, error=5), 1))
    rec("onerror", lib.call_int(ffi.callback("int(int)", lambda x: 1 // 0,
                                             onerror=lambda t, v, tb: 99), 1))
    rec("void_ret", lib.call_void(ffi.callback("void(int)", lambda x: 3), 1))
    rec("pt", lib.check_pt(ffi.callback("struct pt(struct pt, int)",
                                        lambda p, k: {"x": p.x + k, "y": p.y * k})))
    rec("big", lib.check_big(ffi.callback("struct big(struct big, struct big)",
        lambda a, b: {"a": a.a + b.a, "b": a.b + b.b, "c": a.c + b.c, "d": a.d + b.d})))
    rec("ld", lib.check_long_double(ffi.callback("long double(long double, int)",
                                                 lambda x, k: float(x) * k)))
    rec("ld_err", lib.check_long_double(ffi.callback("long double(long double, int)",
                                                     lambda x, k: x * k)))
    rec("cplx", lib.check_complex(ffi.callback("double _Complex(double _Complex)",
                                               lambda z: z * 2)))
    rec("fcplx", lib.check_fcomplex(ffi.callback("float _Complex(float _Complex)",
                                                 lambda z: z * 3)))
    rec("small", lib.check_small(ffi.callback("struct small(struct small)",
                                              lambda s: {"c": s.c, "s": s.s})))
    rec("f3", lib.check_f3(ffi.callback("struct f3(struct f3)", lambda f: f)))
    rec("many", lib.call_many(ffi.callback(
        "double(int, double, long, float, char, short, double, long long, int, double, int,"
        " double, float, long)", lambda *a: sum(x if not isinstance(x, bytes) else ord(x) for x in a)), 3))
    rec("bad_type", lib.call_int(ffi.callback("int(int)", lambda x: "no", error=-1), 1))
print(json.dumps(out))
"""


def test_callback_tiers_agree_exactly(tmp_path):
    runs = {t: _run_tier_script(tmp_path, AGREE_SCRIPT, t)
            for t in ("generic", "compiled", "auto")}
    assert runs["generic"] == runs["compiled"] == runs["auto"]
    tags = [r[0] for r in runs["compiled"]]
    assert "ld" in tags and "raise" in tags
    results = {r[0]: r[1] for r in runs["compiled"]}
    assert results["ld"] == results["cplx"] == results["fcplx"] == results["big"] == "1"
    # The error cases were reported, with cffi's wording.
    reports = {r[0]: r[2] for r in runs["compiled"]}
    assert reports["raise"][0][1] == "ZeroDivisionError"
    assert reports["int_overflow"][0][0].startswith("Exception ignored from cffi callback")
    assert reports["onerror"] == []


def test_callback_spellings_resolve_like_cffi():
    # cffi's function-type spelling, the pointer spelling, typedef names (which may read
    # as parenthesized declarators) and a typedef'd pointer all give the same types.
    import cffi  # a test dependency: a missing cffi must fail, not skip
    spellings = ["int(int)", "T(T)", "int(*)(int)", "fp", "T (*)(T, fp)", "fp(int)",
                 "long(int, double, fp)"]
    got = {}
    for name, F in (("cffi", cffi.FFI), ("jitffi", jitffi.FFI)):
        ffi = F()
        ffi.cdef("typedef int T; typedef int (*fp)(int);")
        got[name] = [ffi.getctype(ffi.typeof(ffi.callback(s, lambda *a: 0))) for s in spellings]
        with pytest.raises(TypeError, match="expected a function ctype, got 'int'"):
            ffi.callback("int", lambda: 0)
    assert got["jitffi"] == got["cffi"]


ERRNO_SRC = r"""
#include <errno.h>
int errno_around(int (*cb)(int)) { errno = 7; int r = cb(1); return r * 1000 + errno; }
"""


def test_errno_in_callbacks_like_cffi():
    # Inside the callback ffi.errno is C's errno at entry; what the callback leaves in
    # ffi.errno is C's errno after it returns; without that, C's errno is unchanged.
    import cffi  # a test dependency: a missing cffi must fail, not skip
    from conftest import build_clib
    path = build_clib("errcb", ERRNO_SRC)
    got = {}
    for name, F in (("cffi", cffi.FFI), ("jitffi", jitffi.FFI)):
        ffi = F()
        ffi.cdef("int errno_around(int (*cb)(int));")
        lib = ffi.dlopen(path)
        seen = []

        def sets(x):
            seen.append(ffi.errno)
            ffi.errno = 33
            return 5

        def leaves(x):
            seen.append(ffi.errno)
            try:  # the interpreter's own C calls set errno meanwhile
                os.stat("/nonexistent/jitffi-errno-test")
            except OSError:
                pass
            return 4

        got[name] = (lib.errno_around(ffi.callback("int(int)", sets)),
                     lib.errno_around(ffi.callback("int(int)", leaves)), seen)
    assert got["jitffi"] == got["cffi"] == (5033, 4007, [7, 7])

"""C -> Python callbacks: jitffi against a hand-written C-API callback (the limit), cffi
(ABI mode `ffi.callback`, libffi closures) and ctypes (CFUNCTYPE), all in one run.

  python benches/bench_callbacks.py [--quick]

Measures (median of repeats, ns):
  round trip   `call_cb_n(cb, N) / N`: C loop calling an `int(int)` callback N times
  once         `call_cb_once(cb, 1)`: one Python -> C -> Python -> C -> Python call
  qsort        libc qsort of 100 000 ints with a Python comparator (ms per sort)
  creation     making one `int(int)` callback object from a Python function
  first        creating a callback of a signature not seen before and its first call
               from C (median over many distinct signatures)

The hand-written extension calls the Python callable with vectorcall from C; for qsort
its comparator receives the two ints directly (the others read them through `int *`
arguments: qsort is declared with a typed comparator for jitffi, cffi and ctypes alike).
"hand-written, GIL re-taken" is the same loop done the way a C library's callback must do
it: the C call releases the GIL (Py_BEGIN_ALLOW_THREADS) and the C trampoline takes it
back for each call (PyGILState_Ensure), which is what jitffi's callbacks do.

jitffi runs in this process with its default tier policy (a callback shape starts on the
generic thunk and is compiled once hot: the round trips measure the promoted thunk). The
generic-tier rows and the first-callback rows under JITFFI_TIER=generic / compiled come
from child processes of this script (`--child TIER`), which measure cffi beside them.
"""
import ctypes
import json
import os
import random
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

import cffi
import jitffi

from bench_build import cc, iterations, mode_args, python_cmd

C_LIB = r"""
long call_cb_n(int (*cb)(int), int n) {
    long total = 0;
    for (int i = 0; i < n; i++) total += cb(i);
    return total;
}
int call_cb_once(int (*cb)(int), int x) { return cb(x); }
int call_vp(void *cb, int x) { return ((int (*)(int))cb)(x); }
"""

C_EXT = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>

static PyObject *call_cb_n(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *cb = args[0];
    long n = PyLong_AsLong(args[1]);
    long total = 0;
    for (long i = 0; i < n; i++) {
        PyObject *arg = PyLong_FromLong(i);
        PyObject *r = PyObject_Vectorcall(cb, &arg, 1, NULL);
        Py_DECREF(arg);
        if (!r) return NULL;
        total += PyLong_AsLong(r);
        Py_DECREF(r);
    }
    return PyLong_FromLong(total);
}

static PyObject *call_cb_once(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *r = PyObject_Vectorcall(args[0], &args[1], 1, NULL);
    if (!r) return NULL;
    long v = PyLong_AsLong(r);
    Py_DECREF(r);
    return PyLong_FromLong(v);
}

static PyObject *g_cmp;
static int cmp_ints(const void *a, const void *b) {
    PyObject *argv[2] = {PyLong_FromLong(*(const int *)a), PyLong_FromLong(*(const int *)b)};
    PyObject *r = PyObject_Vectorcall(g_cmp, argv, 2, NULL);
    Py_DECREF(argv[0]); Py_DECREF(argv[1]);
    int v = r ? (int)PyLong_AsLong(r) : 0;
    Py_XDECREF(r);
    return v;
}
/* qsort_ints(buffer_address, n, cmp) */
static PyObject *qsort_ints(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    void *p = PyLong_AsVoidPtr(args[0]);
    size_t n = PyLong_AsSize_t(args[1]);
    g_cmp = args[2];
    qsort(p, n, sizeof(int), cmp_ints);
    Py_RETURN_NONE;
}

/* The GIL-correct hand-written callback: the C loop runs without the GIL, the C
   trampoline takes it back for each call. */
static PyObject *g_cb;
__attribute__((noinline)) static int gil_tramp(int i) {
    PyGILState_STATE st = PyGILState_Ensure();
    PyObject *arg = PyLong_FromLong(i);
    PyObject *r = PyObject_Vectorcall(g_cb, &arg, 1, NULL);
    Py_DECREF(arg);
    int v = r ? (int)PyLong_AsLong(r) : 0;
    Py_XDECREF(r);
    PyGILState_Release(st);
    return v;
}
__attribute__((noinline)) static long c_loop(int (*volatile cb)(int), long n) {
    long total = 0;
    for (long i = 0; i < n; i++) total += cb((int)i);
    return total;
}
static PyObject *call_cb_n_gil(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    g_cb = args[0];
    long n = PyLong_AsLong(args[1]);
    long total;
    Py_BEGIN_ALLOW_THREADS
    total = c_loop(gil_tramp, n);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(total);
}

static PyMethodDef methods[] = {
    {"call_cb_n_gil", (PyCFunction)(void (*)(void))call_cb_n_gil, METH_FASTCALL, NULL},
    {"call_cb_n", (PyCFunction)(void (*)(void))call_cb_n, METH_FASTCALL, NULL},
    {"call_cb_once", (PyCFunction)(void (*)(void))call_cb_once, METH_FASTCALL, NULL},
    {"qsort_ints", (PyCFunction)(void (*)(void))qsort_ints, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_handcb", NULL, -1, methods};
PyMODINIT_FUNC PyInit__handcb(void) { return PyModule_Create(&mod); }
"""

CDEF = """
long call_cb_n(int (*cb)(int), int n);
int call_cb_once(int (*cb)(int), int x);
int call_vp(void *cb, int x);
void qsort(int *base, size_t nmemb, size_t size, int (*compar)(const int *, const int *));
"""


def build(tmp):
    lib = os.path.join(tmp, "libcbbench.so")
    src = os.path.join(tmp, "cbbench.c")
    open(src, "w").write(C_LIB)
    subprocess.check_call([*cc(), "-O2", "-shared", "-fPIC", "-o", lib, src])
    ext_src = os.path.join(tmp, "handcb.c")
    open(ext_src, "w").write(C_EXT)
    ext = os.path.join(tmp, "_handcb" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.check_call([*cc(), "-O2", "-shared", "-fPIC", "-I", sysconfig.get_paths()["include"],
                           "-o", ext, ext_src])
    sys.path.insert(0, tmp)
    import _handcb
    return lib, _handcb


def median_ns(fn, inner, repeats):
    """Median over `repeats` of the time of `fn()` divided by `inner`, in ns."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / inner)
    return statistics.median(times)


# Argument types for signatures `int(int, ...)` that differ from each other (each one
# a new callback shape) but that C can call as `int(int)`: the extra arguments are
# whatever the registers hold, which the callable ignores.
EXTRA = [("int", ctypes.c_int), ("long", ctypes.c_long), ("short", ctypes.c_short),
         ("signed char", ctypes.c_byte), ("double", ctypes.c_double), ("float", ctypes.c_float),
         ("unsigned int", ctypes.c_uint), ("unsigned short", ctypes.c_ushort)]


def signatures(count):
    out = []
    for n in (1, 2, 3):
        def rec(prefix):
            if len(prefix) == n:
                out.append(prefix)
                return
            for e in EXTRA:
                rec(prefix + [e])
        rec([])
    return out[:count]


def first_callbacks(libpath, count):
    """Median ns of creating a callback of a signature not seen before plus its first
    call from C, for jitffi, cffi and ctypes (each over the same `count` signatures)."""
    sigs = signatures(count)

    def f(*a):
        return a[0]

    jffi = jitffi.FFI()
    jffi.cdef(CDEF)
    jlib = jffi.dlopen(libpath)
    cffi_ffi = cffi.FFI()
    cffi_ffi.cdef(CDEF)
    clib = cffi_ffi.dlopen(libpath)
    tlib = ctypes.CDLL(libpath)
    tlib.call_vp.argtypes = [ctypes.c_void_p, ctypes.c_int]
    tlib.call_vp.restype = ctypes.c_int
    # Warm the C call itself and the first-use machinery of each library with one
    # signature that is not measured.
    warm = "int(int, long long)"
    assert jlib.call_vp(jffi.callback(warm, f), 3) == 3
    assert clib.call_vp(cffi_ffi.callback(warm, f), 3) == 3
    WCB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_longlong)
    keep = [WCB(f)]
    assert tlib.call_vp(ctypes.cast(keep[0], ctypes.c_void_p), 3) == 3
    res = {"jitffi": [], "cffi": [], "ctypes": []}
    for extra in sigs:
        text = "int(int%s)" % "".join(", " + e[0] for e in extra)
        t0 = time.perf_counter_ns()
        cb = jffi.callback(text, f)
        r = jlib.call_vp(cb, 7)
        res["jitffi"].append(time.perf_counter_ns() - t0)
        assert r == 7
        t0 = time.perf_counter_ns()
        cb = cffi_ffi.callback(text, f)
        r = clib.call_vp(cb, 7)
        res["cffi"].append(time.perf_counter_ns() - t0)
        assert r == 7
        t0 = time.perf_counter_ns()
        T = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, *[e[1] for e in extra])
        cb = T(f)
        r = tlib.call_vp(ctypes.cast(cb, ctypes.c_void_p), 7)
        res["ctypes"].append(time.perf_counter_ns() - t0)
        assert r == 7
        keep.append(cb)
    return {k: statistics.median(v) for k, v in res.items()}


def child(tier):
    """This script under JITFFI_TIER=tier: first callbacks, then the round trips of one
    callback, for jitffi and cffi; prints JSON."""
    tmp = tempfile.mkdtemp(prefix="jitffi_cbbench_child_")
    libpath, _hand = build(tmp)
    out = {"first": first_callbacks(libpath, iterations(300, 60, 10))}
    N = iterations(200_000, 20_000, 100)
    R = iterations(11, 5)
    jffi = jitffi.FFI()
    jffi.cdef(CDEF)
    jlib = jffi.dlopen(libpath)
    cffi_ffi = cffi.FFI()
    cffi_ffi.cdef(CDEF)
    clib = cffi_ffi.dlopen(libpath)

    def f(i):
        return i

    jcb = jffi.callback("int(int)", f)
    ccb = cffi_ffi.callback("int(int)", f)
    out["round trip"] = {"jitffi": median_ns(lambda: jlib.call_cb_n(jcb, N), N, R),
                         "cffi": median_ns(lambda: clib.call_cb_n(ccb, N), N, R)}
    M = iterations(100_000, 20_000, 100)

    def loop(call, cb):
        def run():
            for _ in range(M):
                call(cb, 1)
        return run

    out["once"] = {"jitffi": median_ns(loop(jlib.call_cb_once, jcb), M, R),
                   "cffi": median_ns(loop(clib.call_cb_once, ccb), M, R)}
    from jitffi import _jitffi
    out["stats"] = _jitffi._jit_stats(calls=True)
    print(json.dumps(out))


def run_child(tier):
    env = dict(os.environ, JITFFI_TIER=tier)
    args = python_cmd() + [os.path.abspath(__file__), "--child", tier] + mode_args()
    r = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    if "--child" in sys.argv:
        return child(sys.argv[sys.argv.index("--child") + 1])
    tmp = tempfile.mkdtemp(prefix="jitffi_cbbench_")
    libpath, hand = build(tmp)
    N = iterations(200_000, 20_000, 100)
    R = iterations(11, 5)
    SORT_N = iterations(100_000, 100_000, 1000)

    def f(i):
        return i

    # -- jitffi
    jffi = jitffi.FFI()
    jffi.cdef(CDEF)
    jlib = jffi.dlopen(libpath)
    # jitffi's opt-out: the C call keeps the GIL, so each callback finds it held.
    jlib_keep = jffi.dlopen(libpath, release_gil=False)
    jlibc = jffi.dlopen(None)
    jcb = jffi.callback("int(int)", f)
    # -- cffi (ABI mode)
    cffi_ffi = cffi.FFI()
    cffi_ffi.cdef(CDEF)
    clib = cffi_ffi.dlopen(libpath)
    clibc = cffi_ffi.dlopen(None)
    ccb = cffi_ffi.callback("int(int)", f)
    # -- ctypes
    CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)
    tlib = ctypes.CDLL(libpath)
    tlib.call_cb_n.argtypes = [CB, ctypes.c_int]
    tlib.call_cb_n.restype = ctypes.c_long
    tlib.call_cb_once.argtypes = [CB, ctypes.c_int]
    tlib.call_cb_once.restype = ctypes.c_int
    tcb = CB(f)
    expect = N * (N - 1) // 2
    assert hand.call_cb_n(f, N) == jlib.call_cb_n(jcb, N) == clib.call_cb_n(ccb, N) == tlib.call_cb_n(tcb, N) == expect

    rows = []  # (measure, {impl: value})

    def round_trip():
        return {
            "hand-written": median_ns(lambda: hand.call_cb_n(f, N), N, R),
            "hand GIL": median_ns(lambda: hand.call_cb_n_gil(f, N), N, R),
            "jitffi": median_ns(lambda: jlib.call_cb_n(jcb, N), N, R),
            "jitffi GIL kept": median_ns(lambda: jlib_keep.call_cb_n(jcb, N), N, R),
            "cffi": median_ns(lambda: clib.call_cb_n(ccb, N), N, R),
            "ctypes": median_ns(lambda: tlib.call_cb_n(tcb, N), N, R),
        }

    rows.append(("round trip call_cb_n/N (ns)", round_trip()))

    M = iterations(100_000, 20_000, 100)

    def loop(call, cb):
        def run():
            for _ in range(M):
                call(cb, 1)
        return run

    rows.append(("call_cb_once (ns)", {
        "hand-written": median_ns(loop(hand.call_cb_once, f), M, R),
        "hand GIL": None,
        "jitffi": median_ns(loop(jlib.call_cb_once, jcb), M, R),
        "jitffi GIL kept": median_ns(loop(jlib_keep.call_cb_once, jcb), M, R),
        "cffi": median_ns(loop(clib.call_cb_once, ccb), M, R),
        "ctypes": median_ns(loop(tlib.call_cb_once, tcb), M, R),
    }))

    # -- qsort of 100 000 ints
    rnd = random.Random(42)
    data = [rnd.randint(-10**9, 10**9) for _ in range(SORT_N)]
    want = sorted(data)

    def hand_sort():
        arr = (ctypes.c_int * SORT_N)(*data)
        hand.qsort_ints(ctypes.addressof(arr), SORT_N, lambda a, b: (a > b) - (a < b))
        assert arr[0] == want[0] and arr[-1] == want[-1]

    # Same footing for jitffi, cffi and ctypes: qsort declared with a typed comparator,
    # which reads the ints through its pointer arguments.
    @jffi.callback("int(const int *, const int *)")
    def jcmp(a, b):
        x = a[0]
        y = b[0]
        return (x > y) - (x < y)

    def jit_sort():
        arr = jffi.new("int[]", data)
        jlibc.qsort(arr, SORT_N, 4, jcmp)
        assert arr[0] == want[0] and arr[SORT_N - 1] == want[-1]

    @cffi_ffi.callback("int(const int *, const int *)")
    def ccmp(a, b):
        x = a[0]
        y = b[0]
        return (x > y) - (x < y)

    def cffi_sort():
        arr = cffi_ffi.new("int[]", data)
        clibc.qsort(arr, SORT_N, 4, ccmp)
        assert arr[0] == want[0] and arr[SORT_N - 1] == want[-1]

    libc = ctypes.CDLL(None)
    CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))

    def tcmp_py(a, b):
        x = a[0]
        y = b[0]
        return (x > y) - (x < y)

    tcmp = CMP(tcmp_py)

    def ctypes_sort():
        arr = (ctypes.c_int * SORT_N)(*data)
        libc.qsort(arr, SORT_N, 4, tcmp)
        assert arr[0] == want[0] and arr[-1] == want[-1]

    RS = iterations(5, 3)
    rows.append(("qsort 100k ints (ms)", {
        "hand-written": median_ns(hand_sort, 1e6, RS),
        "hand GIL": None,
        "jitffi": median_ns(jit_sort, 1e6, RS),
        "jitffi GIL kept": None,
        "cffi": median_ns(cffi_sort, 1e6, RS),
        "ctypes": median_ns(ctypes_sort, 1e6, RS),
    }))

    # -- creation (and drop) of one callback
    C = iterations(100_000, 20_000, 100)

    # Same loop shape for each: one call of the creating function per iteration.
    jcallback = jffi.callback
    ccallback = cffi_ffi.callback

    def make_jit():
        for _ in range(C):
            jcallback("int(int)", f)

    def make_cffi():
        for _ in range(C):
            ccallback("int(int)", f)

    def make_ctypes():
        for _ in range(C):
            CB(f)

    rows.append(("create int(int) callback (ns)", {
        "hand-written": None,
        "hand GIL": None,
        "jitffi": median_ns(make_jit, C, R),
        "jitffi GIL kept": None,
        "cffi": median_ns(make_cffi, C, R),
        "ctypes": median_ns(make_ctypes, C, R),
    }))

    assert hand.call_cb_n_gil(f, 1000) == 499500
    impls = ["hand-written", "hand GIL", "jitffi", "jitffi GIL kept", "cffi", "ctypes"]
    print("| measure | " + " | ".join(impls)
          + " | jitffi / hand | jitffi / hand GIL | jitffi GIL kept / hand | cffi / jitffi | ctypes / jitffi |")
    print("|---" * (len(impls) + 6) + "|")

    def ratio(a, b):
        return "%.2f" % (a / b) if a is not None and b else "n/a"

    for name, vals in rows:
        cells = ["%.1f" % vals[i] if vals[i] is not None else "n/a" for i in impls]
        j = vals["jitffi"]
        h = vals["hand-written"]
        ratios = [ratio(j, h), ratio(j, vals.get("hand GIL")), ratio(vals["jitffi GIL kept"], h),
                  ratio(vals["cffi"], j), ratio(vals["ctypes"], j)]
        print("| %s | %s | %s |" % (name, " | ".join(cells), " | ".join(ratios)))

    # The hot-path target, measured round-robin (pairs of runs back to back, median of
    # the per-pair ratios) so that the machine's drift cancels out.
    pairs = []
    for _ in range(R * 2):
        t0 = time.perf_counter_ns()
        hand.call_cb_n_gil(f, N)
        t1 = time.perf_counter_ns()
        jlib.call_cb_n(jcb, N)
        t2 = time.perf_counter_ns()
        pairs.append((t2 - t1) / (t1 - t0))
    print()
    print("round trip, round-robin: jitffi (promoted thunk) / hand-written GIL re-taken = %.2f"
          % statistics.median(pairs))

    # -- the tiers: first callbacks of new shapes, and the generic tier's round trip
    here = first_callbacks(libpath, iterations(300, 60, 10))
    kids = {t: run_child(t) for t in ("generic", "compiled")}
    print()
    print("| callback tiers (ns, medians) | jitffi | cffi | ctypes | jitffi / cffi | jitffi / ctypes |")
    print("|---|---:|---:|---:|---:|---:|")

    def line(name, j, c, t=None):
        print("| %s | %.0f | %.0f | %s | %s | %s |" % (
            name, j, c, "%.0f" % t if t is not None else "n/a", ratio(j, c), ratio(j, t)))

    line("first callback of a new shape: create + first call (default tier)",
         here["jitffi"], here["cffi"], here["ctypes"])
    for t in ("generic", "compiled"):
        k = kids[t]["first"]
        line("first callback of a new shape (JITFFI_TIER=%s)" % t, k["jitffi"], k["cffi"], k["ctypes"])
    for t in ("generic", "compiled"):
        k = kids[t]
        line("round trip call_cb_n/N (JITFFI_TIER=%s)" % t, k["round trip"]["jitffi"], k["round trip"]["cffi"])
        line("call_cb_once (JITFFI_TIER=%s)" % t, k["once"]["jitffi"], k["once"]["cffi"])
    g = kids["generic"]["stats"]
    print()
    print("JITFFI_TIER=generic child: %d callback shapes compiled, %d generic callback calls"
          % (g["callback_shapes_compiled"], g["generic_callbacks"]))


if __name__ == "__main__":
    main()

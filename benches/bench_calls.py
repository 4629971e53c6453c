"""ns per call of small C functions, all variants measured in the same run.

Variants:
  hw         hand-written METH_FASTCALL CPython extension (compiled here): the physical limit
  hw_gil     the same, releasing the GIL and saving errno around the call (as cffi does)
  cffi_api   cffi out-of-line API mode (compiled here with set_source/compile)
  cffi_abi   cffi ABI mode (ffi.dlopen)
  ctypes     ctypes with argtypes/restype
  jitffi     jitffi default (GIL released, errno saved)
  jit_keep   jitffi with dlopen(..., release_gil=False)

Usage: PYTHONPATH=python python3 benches/bench_calls.py [--quick | --check]
Build the extension in release mode first: .ci/dev-build --release
"""
import ctypes
import os
import statistics
import sys
import sysconfig
import tempfile
import time
import timeit

from bench_build import build_c_library, build_cffi_api, cc, iterations, sh

BENCH_C = r"""
#include <string.h>
#include <stddef.h>
int add_i(int a, int b) { return a + b; }
int g_bench;
long long add_ll(long long a, long long b) { return a + b; }
double add_d(double a, double b) { return a + b; }
void noop(void) {}
int sum8(int a, int b, int c, int d, int e, int f, int g, int h) { return a+b+c+d+e+f+g+h; }
int is_null(void *p) { return p == NULL; }
size_t my_strlen(const char *s) { return strlen(s); }
long sum_ints(const int *p, int n) { long s = 0; for (int i = 0; i < n; i++) s += p[i]; return s; }
#include <stdarg.h>
long sum_va(int n, ...) { va_list ap; va_start(ap, n); long s = 0; for (int i = 0; i < n; i++) s += va_arg(ap, int); va_end(ap); return s; }
"""

BENCH_H = """
int add_i(int a, int b);
long long add_ll(long long a, long long b);
double add_d(double a, double b);
void noop(void);
int sum8(int a, int b, int c, int d, int e, int f, int g, int h);
int is_null(void *p);
size_t my_strlen(const char *s);
long sum_ints(const int *p, int n);
long sum_va(int n, ...);
"""

# The hand-written extension. GIL_AND_ERRNO wraps each call like cffi/ctypes do.
HW_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include "bench.h"

#ifdef GIL_AND_ERRNO
static __thread int saved_errno;
#define CALL(stmt) do { PyThreadState *_ts = PyEval_SaveThread(); errno = saved_errno; \
    stmt; saved_errno = errno; PyEval_RestoreThread(_ts); } while (0)
#define MODNAME "hw_gil"
#define INITNAME PyInit_hw_gil
#else
#define CALL(stmt) do { stmt; } while (0)
#define MODNAME "hw"
#define INITNAME PyInit_hw
#endif

static int nargs_ok(Py_ssize_t n, Py_ssize_t want) {
    if (n != want) { PyErr_Format(PyExc_TypeError, "expected %zd arguments, got %zd", want, n); return 0; }
    return 1;
}

static int as_int(PyObject *o, int *out) {
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < INT_MIN || v > INT_MAX) { PyErr_SetString(PyExc_OverflowError, "int overflow"); return -1; }
    *out = (int)v; return 0;
}

static PyObject *w_add_i(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    int a, b, r;
    if (!nargs_ok(n, 2) || as_int(args[0], &a) || as_int(args[1], &b)) return NULL;
    CALL(r = add_i(a, b));
    return PyLong_FromLong(r);
}
static PyObject *w_add_ll(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    long long a, b, r;
    if (!nargs_ok(n, 2)) return NULL;
    a = PyLong_AsLongLong(args[0]); if (a == -1 && PyErr_Occurred()) return NULL;
    b = PyLong_AsLongLong(args[1]); if (b == -1 && PyErr_Occurred()) return NULL;
    CALL(r = add_ll(a, b));
    return PyLong_FromLongLong(r);
}
static PyObject *w_add_d(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    double a, b, r;
    if (!nargs_ok(n, 2)) return NULL;
    a = PyFloat_AsDouble(args[0]); if (a == -1.0 && PyErr_Occurred()) return NULL;
    b = PyFloat_AsDouble(args[1]); if (b == -1.0 && PyErr_Occurred()) return NULL;
    CALL(r = add_d(a, b));
    return PyFloat_FromDouble(r);
}
static PyObject *w_noop(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    if (!nargs_ok(n, 0)) return NULL;
    CALL(noop());
    Py_RETURN_NONE;
}
static PyObject *w_sum8(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    int v[8], r;
    if (!nargs_ok(n, 8)) return NULL;
    for (int i = 0; i < 8; i++) if (as_int(args[i], &v[i])) return NULL;
    CALL(r = sum8(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]));
    return PyLong_FromLong(r);
}
static PyObject *w_is_null(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    void *p; int r;
    if (!nargs_ok(n, 1)) return NULL;
    p = PyLong_AsVoidPtr(args[0]); if (p == NULL && PyErr_Occurred()) return NULL;
    CALL(r = is_null(p));
    return PyLong_FromLong(r);
}
static PyObject *w_strlen(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    const char *s; size_t r;
    if (!nargs_ok(n, 1)) return NULL;
    s = PyBytes_AsString(args[0]); if (!s) return NULL;
    CALL(r = my_strlen(s));
    return PyLong_FromSize_t(r);
}
static PyObject *w_sum_ints(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    int cnt; long r; int stackbuf[64]; int *buf = stackbuf; Py_buffer view; int have_view = 0;
    if (!nargs_ok(n, 2) || as_int(args[1], &cnt)) return NULL;
    if (PyList_Check(args[0]) || PyTuple_Check(args[0])) {
        PyObject *fast = PySequence_Fast(args[0], "list"); if (!fast) return NULL;
        Py_ssize_t len = PySequence_Fast_GET_SIZE(fast);
        if (len > 64) { buf = PyMem_Malloc(len * sizeof(int)); }
        for (Py_ssize_t i = 0; i < len; i++)
            if (as_int(PySequence_Fast_GET_ITEM(fast, i), &buf[i])) { Py_DECREF(fast); return NULL; }
        Py_DECREF(fast);
    } else {
        if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
        buf = view.buf; have_view = 1;
    }
    CALL(r = sum_ints(buf, cnt));
    if (have_view) PyBuffer_Release(&view);
    else if (buf != stackbuf) PyMem_Free(buf);
    return PyLong_FromLong(r);
}

static PyMethodDef methods[] = {
    {"add_i", (PyCFunction)(void(*)(void))w_add_i, METH_FASTCALL, NULL},
    {"add_ll", (PyCFunction)(void(*)(void))w_add_ll, METH_FASTCALL, NULL},
    {"add_d", (PyCFunction)(void(*)(void))w_add_d, METH_FASTCALL, NULL},
    {"noop", (PyCFunction)(void(*)(void))w_noop, METH_FASTCALL, NULL},
    {"sum8", (PyCFunction)(void(*)(void))w_sum8, METH_FASTCALL, NULL},
    {"is_null", (PyCFunction)(void(*)(void))w_is_null, METH_FASTCALL, NULL},
    {"my_strlen", (PyCFunction)(void(*)(void))w_strlen, METH_FASTCALL, NULL},
    {"sum_ints", (PyCFunction)(void(*)(void))w_sum_ints, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL}
};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, MODNAME, NULL, -1, methods};
PyMODINIT_FUNC INITNAME(void) { return PyModule_Create(&mod); }
"""


def build_all(tmp):
    so = build_c_library(tmp, "bench", BENCH_C, BENCH_H)
    with open(os.path.join(tmp, "hw.c"), "w") as f:
        f.write(HW_C)
    inc = sysconfig.get_paths()["include"]
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for name, defs in (("hw", []), ("hw_gil", ["-DGIL_AND_ERRNO"])):
        sh(*cc(), "-O2", "-shared", "-fPIC", *defs, "-I", inc, "-I", tmp, "-o",
           os.path.join(tmp, name + suffix), os.path.join(tmp, "hw.c"),
           "-L", tmp, "-lbench", "-Wl,-rpath," + tmp)
    build_cffi_api(tmp, "_bench_cffi_api", "bench", BENCH_H)
    return so


def main():
    tmp = tempfile.mkdtemp(prefix="jitffi-bench-")
    so = build_all(tmp)

    import hw
    import hw_gil
    import _bench_cffi_api
    import cffi
    import jitffi

    array_len = 10
    ints = list(range(array_len))

    variants = {}

    # hand-written
    import array
    for name, mod in (("hw", hw), ("hw_gil", hw_gil)):
        arr = array.array("i", ints)
        variants[name] = dict(lib=mod, NULL=0, P=id(arr), ARR=arr, M=mod)

    # cffi API / ABI
    api_lib, api_ffi = _bench_cffi_api.lib, _bench_cffi_api.ffi
    variants["cffi_api"] = dict(lib=api_lib, ffi=api_ffi, NULL=api_ffi.NULL, P=api_ffi.new("int *"),
                                ARR=api_ffi.new("int[]", ints), M=api_lib)
    abi_ffi = cffi.FFI()
    abi_ffi.cdef(BENCH_H)
    abi_lib = abi_ffi.dlopen(so)
    variants["cffi_abi"] = dict(lib=abi_lib, ffi=abi_ffi, NULL=abi_ffi.NULL, P=abi_ffi.new("int *"),
                                ARR=abi_ffi.new("int[]", ints), M=abi_lib)

    # ctypes
    cl = ctypes.CDLL(so)
    C = ctypes
    for fname, args, res in (
        ("add_i", [C.c_int, C.c_int], C.c_int), ("add_ll", [C.c_longlong] * 2, C.c_longlong),
        ("add_d", [C.c_double] * 2, C.c_double), ("noop", [], None),
        ("sum8", [C.c_int] * 8, C.c_int), ("is_null", [C.c_void_p], C.c_int),
        ("my_strlen", [C.c_char_p], C.c_size_t), ("sum_ints", [C.POINTER(C.c_int), C.c_int], C.c_long),
    ):
        fn = getattr(cl, fname)
        fn.argtypes = args
        fn.restype = res
    IntArr = C.c_int * array_len
    cint = C.c_int(0)
    variants["ctypes"] = dict(lib=cl, NULL=None, P=C.byref(cint), ARR=IntArr(*ints), M=cl,
                              LISTCONV=lambda lst: IntArr(*lst))

    # jitffi
    for name, keep in (("jitffi", True), ("jit_keep", False)):
        jf = jitffi.FFI()
        jf.cdef(BENCH_H)
        jl = jf.dlopen(so, release_gil=keep)
        variants[name] = dict(lib=jl, ffi=jf, NULL=jf.NULL, P=jf.new("int *"), ARR=jf.new("int[]", ints), M=jl)

    order = ["hw", "hw_gil", "cffi_api", "cffi_abi", "ctypes", "jitffi", "jit_keep"]
    calls = [
        ("add_i(1, 2)", "f(1, 2)", "add_i"),
        ("add_ll(1, 2)", "f(1, 2)", "add_ll"),
        ("add_d(1.0, 2.0)", "f(1.0, 2.0)", "add_d"),
        ("noop()", "f()", "noop"),
        ("sum8(1..8)", "f(1, 2, 3, 4, 5, 6, 7, 8)", "sum8"),
        ("is_null(NULL)", "f(NULL)", "is_null"),
        ("is_null(cdata)", "f(P)", "is_null"),
        ('strlen(b"hello world")', 'f(b"hello world")', "my_strlen"),
        ("sum_ints(list, 10)", "f(LIST, 10)", "sum_ints"),
        ("sum_ints(cdata, 10)", "f(ARR, 10)", "sum_ints"),
        ("lib.add_i(1, 2)", "M.add_i(1, 2)", "add_i"),
        ("f  (load a global)", "f", "add_i"),
        ("lib.add_i  (load attr)", "M.add_i", "add_i"),
    ]
    number = iterations(200000, 20000)
    repeat = iterations(9, 5)
    table = {}
    # Variants are measured round-robin (one timing of each per round) so that load from
    # other processes spreads evenly over them; each cell is the median over the rounds.
    for label, stmt, fname in calls:
        timers = {}
        for v in order:
            env = dict(variants[v])
            env["f"] = getattr(env["lib"], fname)
            env["LIST"] = ints
            s = stmt
            if v == "ctypes" and "LIST" in stmt:
                s = stmt.replace("LIST", "LISTCONV(LIST)")
            n = number if v not in ("cffi_abi", "ctypes") else max(1, number // 4)
            timer = timeit.Timer(s, globals=env)
            timer.src, timer.globals = s, env
            timers[v] = (timer, n)
        if stmt.endswith(")"):  # a call, not an attribute load
            # Every variant computes the same result (else the row compares different work).
            results = {v: eval(t.src, t.globals) for v, (t, _) in timers.items()}
            assert all(r == results["hw"] for r in results.values()), (label, results)
        samples = {v: [] for v in order}
        for _ in range(repeat):
            for v in order:
                t, n = timers[v]
                samples[v].append(t.timeit(n) / n * 1e9)
        table[label] = {v: statistics.median(samples[v]) for v in order}

    head = f"{'call':26s}" + "".join(f"{v:>10s}" for v in order) + f"{'jit/hw_gil':>12s}{'keep/hw':>10s}{'api/jit':>9s}{'abi/jit':>9s}"
    print(f"Python {sys.version.split()[0]}, ns per call (median of {repeat} round-robin rounds of {number} calls; cffi_abi/ctypes {number // 4})")
    print(head)
    print("-" * len(head))
    for label, row in table.items():
        line = f"{label:26s}" + "".join(f"{row[v]:10.1f}" for v in order)
        line += f"{row['jitffi'] / row['hw_gil']:12.2f}{row['jit_keep'] / row['hw']:10.2f}"
        line += f"{row['cffi_api'] / row['jitffi']:9.2f}{row['cffi_abi'] / row['jitffi']:9.2f}"
        print(line)
    print()
    print("jit/hw_gil: jitffi default vs hand-written releasing the GIL (target <= 1.25)")
    print("keep/hw:    jitffi release_gil=False vs plain hand-written (target <= 1.25)")
    print("api/jit, abi/jit: how many times slower cffi API / ABI mode are than jitffi")
    print("(hw/hw_gil take the pointer as an int address and the cdata array as a buffer)")
    g, a = table["f  (load a global)"], table["lib.add_i  (load attr)"]
    print("lib.f over a module's attribute (hw.add_i, target <= 5 ns): " + ", ".join(
        f"{v} {a[v] - a['hw']:+.1f} ns" for v in ("cffi_api", "cffi_abi", "jitffi", "jit_keep")))
    print("any attribute load over a global name `f`: " + ", ".join(
        f"{v} {a[v] - g[v]:+.1f} ns" for v in ("hw", "cffi_api", "cffi_abi", "jitffi", "jit_keep")))
    print()
    variadic(variants, ctypes_lib=cl, repeat=repeat, number=max(1, number // 4))
    lib_with_a_global(so, variants["jitffi"]["lib"], repeat=repeat, number=number)
    print()
    first_access()


def variadic(variants, ctypes_lib, repeat, number):
    """`sum_va(2, <int cdata>, <int cdata>)`: the variadic part must be cdata in cffi."""
    row = {}
    samples = {}
    timers = {}
    for v in ("cffi_api", "cffi_abi", "jitffi", "jit_keep"):
        lib = variants[v]["lib"]
        ffi = variants[v]["ffi"]
        timers[v] = timeit.Timer("f(2, a, b)", globals=dict(f=lib.sum_va, a=ffi.cast("int", 1), b=ffi.cast("int", 2)))
    timers["ctypes"] = timeit.Timer("f(2, a, b)", globals=dict(f=ctypes_lib.sum_va, a=ctypes.c_int(1), b=ctypes.c_int(2)))
    for v in timers:
        samples[v] = []
    for _ in range(repeat):
        for v, t in timers.items():
            samples[v].append(t.timeit(number) / number * 1e9)
    for v in timers:
        row[v] = statistics.median(samples[v])
    print("variadic sum_va(2, int cdata, int cdata), ns per call: " + ", ".join(f"{v} {t:.0f}" for v, t in row.items()))


def lib_with_a_global(so, plain_lib, repeat, number):
    """A lib whose ffi declares a global variable takes the module-__getattr__ path
    (cffi's semantics for globals), which CPython does not specialize."""
    import jitffi
    ffi = jitffi.FFI()
    ffi.cdef(BENCH_H + "int g_bench;")
    hooked = ffi.dlopen(so)
    stmts = {"lib.add_i(1, 2)": "M.add_i(1, 2)", "lib.add_i": "M.add_i"}
    out = []
    for label, stmt in stmts.items():
        timers = {k: timeit.Timer(stmt, globals=dict(M=m)) for k, m in (("plain", plain_lib), ("global", hooked))}
        samples = {k: [] for k in timers}
        for _ in range(repeat):
            for k, t in timers.items():
                samples[k].append(t.timeit(number) / number * 1e9)
        med = {k: statistics.median(v) for k, v in samples.items()}
        out.append(f"{label}: {med['global']:.1f} ns vs {med['plain']:.1f} ({med['global'] - med['plain']:+.1f})")
    print("jitffi lib of an ffi declaring a global variable (module __getattr__): " + "; ".join(out))


def first_access():
    """The cold path (`bench_tiers.cold_first_calls`: fresh processes, cdef + dlopen + one
    attribute access per function untimed, then one call of each of 2000 functions)."""
    from bench_tiers import cold_first_calls
    n, med, stats = cold_first_calls(rounds=iterations(5, 5))
    c, j = med["cffi"], med["jitffi"]
    print(f"cdef + dlopen + first access of {n} functions (ms, untimed below): "
          f"cffi ABI {c['setup'] * 1e3:.1f}, jitffi {j['setup'] * 1e3:.1f}")
    print(f"first call of each of {n} functions (fresh process, us per function): "
          f"cffi ABI {c['first'] / n * 1e6:.2f}, jitffi {j['first'] / n * 1e6:.2f} "
          f"({j['first'] / c['first']:.2f}x, median of {len(med['ratios'])} pairs, each "
          f"{med['ratios'][0]:.2f}-{med['ratios'][-1]:.2f}x; jitffi's generic tier compiles nothing: "
          f"{stats['shapes']} shapes, {stats['code_bytes']} bytes of code afterwards)")

if __name__ == "__main__":
    main()

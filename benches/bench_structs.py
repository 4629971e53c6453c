"""ns per call of C functions taking or returning a struct by value, all variants measured
in the same run.

  pt_norm2(struct pt)        by-value argument (a struct cdata; also a list for cffi/jitffi)
  pt_make(double, double)    by-value result (a new owning struct cdata per call)
  big_sum / big_make         the same with a 32-byte struct (memory class, hidden result pointer)
  noop()                     the fixed cost of a call, for reference

Variants:
  cffi_api   cffi out-of-line API mode (compiled here with set_source/compile)
  cffi_abi   cffi ABI mode (ffi.dlopen)
  ctypes     ctypes with argtypes/restype (a ctypes.Structure)
  jitffi     jitffi default (GIL released, errno saved, as cffi)
  jit_keep   jitffi with dlopen(..., release_gil=False)

Usage: PYTHONPATH=python python3 benches/bench_structs.py [--quick | --check]
Build the extension in release mode first: .ci/dev-build --release
"""
import ctypes
import os
import statistics
import sys
import tempfile
import timeit

from bench_build import build_c_library, build_cffi_api, iterations

BENCH_C = r"""
struct pt { double x, y; };
double pt_norm2(struct pt p) { return p.x * p.x + p.y * p.y; }
struct pt pt_make(double x, double y) { struct pt p = { x, y }; return p; }
struct big { long a, b, c, d; };
long big_sum(struct big b) { return b.a + b.b + b.c + b.d; }
struct big big_make(long a) { struct big b = { a, a, a, a }; return b; }
void noop(void) { }
"""

BENCH_H = """
struct pt { double x, y; };
double pt_norm2(struct pt p);
struct pt pt_make(double x, double y);
struct big { long a, b, c, d; };
long big_sum(struct big b);
struct big big_make(long a);
void noop(void);
"""


def build_all(tmp):
    so = build_c_library(tmp, "benchstructs", BENCH_C, BENCH_H)
    build_cffi_api(tmp, "_bench_structs_cffi_api", "benchstructs", BENCH_H)
    return so


def main():
    tmp = tempfile.mkdtemp(prefix="jitffi-bench-structs-")
    so = build_all(tmp)

    import _bench_structs_cffi_api
    import cffi
    import jitffi

    variants = {}
    api_lib, api_ffi = _bench_structs_cffi_api.lib, _bench_structs_cffi_api.ffi
    variants["cffi_api"] = dict(lib=api_lib, P=api_ffi.new("struct pt *", [1.0, 2.0])[0],
                                B=api_ffi.new("struct big *", [1, 2, 3, 4])[0])
    abi_ffi = cffi.FFI()
    abi_ffi.cdef(BENCH_H)
    abi_lib = abi_ffi.dlopen(so)
    variants["cffi_abi"] = dict(lib=abi_lib, P=abi_ffi.new("struct pt *", [1.0, 2.0])[0],
                                B=abi_ffi.new("struct big *", [1, 2, 3, 4])[0])

    class Pt(ctypes.Structure):
        _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double)]

    class Big(ctypes.Structure):
        _fields_ = [(n, ctypes.c_long) for n in "abcd"]

    cl = ctypes.CDLL(so)
    cl.pt_norm2.argtypes, cl.pt_norm2.restype = [Pt], ctypes.c_double
    cl.pt_make.argtypes, cl.pt_make.restype = [ctypes.c_double] * 2, Pt
    cl.big_sum.argtypes, cl.big_sum.restype = [Big], ctypes.c_long
    cl.big_make.argtypes, cl.big_make.restype = [ctypes.c_long], Big
    cl.noop.argtypes, cl.noop.restype = [], None
    variants["ctypes"] = dict(lib=cl, P=Pt(1.0, 2.0), B=Big(1, 2, 3, 4))

    for name, release in (("jitffi", True), ("jit_keep", False)):
        jf = jitffi.FFI()
        jf.cdef(BENCH_H)
        jl = jf.dlopen(so, release_gil=release)
        variants[name] = dict(lib=jl, P=jf.new("struct pt *", [1.0, 2.0])[0],
                              B=jf.new("struct big *", [1, 2, 3, 4])[0])

    # sanity: every variant computes the same thing
    for v, env in variants.items():
        lib = env["lib"]
        assert lib.pt_norm2(env["P"]) == 5.0, v
        r = lib.pt_make(1.0, 2.0)
        assert (r.x, r.y) == (1.0, 2.0), v
        assert lib.big_sum(env["B"]) == 10, v
        assert lib.big_make(3).d == 3, v

    order = ["cffi_api", "cffi_abi", "ctypes", "jitffi", "jit_keep"]
    calls = [
        ("pt_norm2(struct cdata)", "f(P)", "pt_norm2", order),
        ("pt_make(1.0, 2.0)", "f(1.0, 2.0)", "pt_make", order),
        ("pt_norm2([1.0, 2.0])", "f([1.0, 2.0])", "pt_norm2", ["cffi_api", "cffi_abi", "jitffi", "jit_keep"]),
        ("big_sum(32-byte cdata)", "f(B)", "big_sum", order),
        ("big_make(1) 32 bytes", "f(1)", "big_make", order),
        ("noop() (reference)", "f()", "noop", order),
    ]
    number = iterations(50000, 20000)
    repeat = iterations(31, 7)
    table = {}
    for label, stmt, fname, which in calls:
        # Round robin over the variants, so that the machine's load changes hit all alike.
        timers = {}
        for v in which:
            env = dict(variants[v])
            env["f"] = getattr(env["lib"], fname)
            n = number if v not in ("cffi_abi", "ctypes") else max(1, number // 4)
            timers[v] = (timeit.Timer(stmt, globals=env), n)
        samples = {v: [] for v in which}
        for _ in range(repeat):
            for v in which:
                t, n = timers[v]
                samples[v].append(t.timeit(n) / n * 1e9)
        table[label] = {v: statistics.median(xs) for v, xs in samples.items()}

    head = f"{'call':26s}" + "".join(f"{v:>10s}" for v in order) + f"{'api/jit':>9s}{'abi/jit':>9s}{'ctypes/jit':>11s}"
    print(f"Python {sys.version.split()[0]}, ns per call (median of {repeat} x {number})")
    print(head)
    print("-" * len(head))
    for label, row in table.items():
        line = f"{label:26s}" + "".join(f"{row[v]:10.1f}" if v in row else f"{'-':>10s}" for v in order)
        j = row["jitffi"]
        line += f"{row['cffi_api'] / j:9.2f}{row['cffi_abi'] / j:9.2f}"
        line += f"{row['ctypes'] / j:11.2f}" if "ctypes" in row else f"{'-':>11s}"
        print(line)
    print()
    print("api/jit, abi/jit, ctypes/jit: how many times slower than jitffi (> 1: jitffi faster)")


if __name__ == "__main__":
    main()

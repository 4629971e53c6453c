"""cdata micro-benchmarks: jitffi vs cffi vs ctypes, measured in the same run.

Prints a table of median ns per operation (timeit, several repeats) and the ratio
jitffi/ctypes and jitffi/cffi. Before timing, every operation's result is compared
between jitffi and cffi (and ctypes where it is a plain value).
Usage: PYTHONPATH=python python3 benches/bench_cdata.py [--quick | --check]
"""
import ctypes
import statistics
import sys
import timeit

import cffi
import jitffi
from bench_build import iterations

CDEF = "struct pt { int x, y; };"


class PT(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int)]


def setups():
    out = {}
    for name, mod in (("jitffi", jitffi), ("cffi", cffi)):
        ffi = mod.FFI()
        ffi.cdef(CDEF)
        p = ffi.new("struct pt *")
        a = ffi.new("int[]", 100)
        s = ffi.new("char[]", b"x" * 99)
        out[name] = {"ffi": ffi, "p": p, "a": a, "s": s}
    out["ctypes"] = {
        "ctypes": ctypes, "PT": PT, "p": PT(), "a": (ctypes.c_int * 100)(),
        "s": ctypes.create_string_buffer(b"x" * 99), "IA": ctypes.c_int * 100,
        "c_int": ctypes.c_int,
    }
    return out


CASES = [
    ("new struct pt *", 'ffi.new("struct pt *")', "PT()"),
    ('new int[] 100', 'ffi.new("int[]", 100)', "IA()"),
    ("p.x read", "p.x", "p.x"),
    ("p.x write", "p.x = 5", "p.x = 5"),
    ("a[5] read", "a[5]", "a[5]"),
    ("a[5] write", "a[5] = 7", "a[5] = 7"),
    ('cast("int", 5)', 'ffi.cast("int", 5)', "c_int(5)"),
    ("string(char[100])", "ffi.string(s)", "s.value"),
    ("buffer(a)[:]", "ffi.buffer(a)[:]", "bytes(a)"),
]


def measure_interleaved(stmts, number, repeat):
    """Times each (stmt, namespace) once per round, round-robin, so load changes on a
    shared machine hit all implementations alike; returns the median ns per op of each."""
    timers = [timeit.Timer(stmt, globals=ns) for stmt, ns in stmts]
    runs = [[] for _ in timers]
    for _ in range(repeat):
        for i, t in enumerate(timers):
            runs[i].append(t.timeit(number))
    return [statistics.median(r) / number * 1e9 for r in runs]


def value_of(x, ffi):
    """What an operation produced, comparable across libraries: a cdata's type and
    contents, or the plain value."""
    if ffi is not None and isinstance(x, ffi.CData):
        t = ffi.typeof(x)
        if t.kind == "pointer":
            return (t.cname, ffi.sizeof(t.item), bytes(ffi.buffer(x, ffi.sizeof(t.item))))
        if t.kind == "array":
            return (t.cname, bytes(ffi.buffer(x)))
        return (t.cname, int(x))
    return x


def check_results(envs):
    """Every operation gives the same result in jitffi as in cffi (a benchmark of
    different work would measure nothing)."""
    for label, fstmt, cstmt in CASES:
        got = {}
        for name in ("jitffi", "cffi"):
            ns = dict(envs[name])
            exec("r = " + fstmt if "=" not in fstmt else fstmt, ns)
            got[name] = value_of(ns.get("r"), ns["ffi"])
        assert got["jitffi"] == got["cffi"], (label, got)
        ns = dict(envs["ctypes"])
        exec("r = " + cstmt if "=" not in cstmt else cstmt, ns)
        r = ns.get("r")
        if isinstance(r, (int, bytes)) and not isinstance(got["jitffi"], tuple):
            assert r == got["jitffi"], (label, r, got["jitffi"])
    # The writes landed where the reads look.
    for name in ("jitffi", "cffi"):
        assert envs[name]["p"].x == 5 and envs[name]["a"][5] == 7, name


def main():
    number = iterations(100000, 20000)
    repeat = iterations(11, 5)
    envs = setups()
    check_results(envs)
    rows = []
    for label, fstmt, cstmt in CASES:
        j, c, t = measure_interleaved(
            [(fstmt, envs["jitffi"]), (fstmt, envs["cffi"]), (cstmt, envs["ctypes"])], number, repeat)
        rows.append((label, j, c, t))
    print("%-20s %10s %10s %10s %12s %12s" % ("operation (median ns)", "jitffi", "cffi", "ctypes", "jitffi/ctypes", "jitffi/cffi"))
    for label, j, c, t in rows:
        print("%-20s %10.1f %10.1f %10.1f %12.2f %12.2f" % (label, j, c, t, j / t, j / c))


if __name__ == "__main__":
    main()

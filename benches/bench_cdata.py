"""cdata micro-benchmarks: jitffi vs cffi vs ctypes, measured in the same run.

Prints a table of median ns per operation (timeit, several repeats) and the ratio
jitffi/ctypes and jitffi/cffi. Usage: PYTHONPATH=python python3 benches/bench_cdata.py
"""
import ctypes
import statistics
import sys
import timeit

import cffi
import jitffi

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


def main():
    quick = "--quick" in sys.argv
    number = 20000 if quick else 100000
    repeat = 5 if quick else 11
    envs = setups()
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

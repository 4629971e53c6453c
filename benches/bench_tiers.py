"""The call tiers: what a cold call costs, what the generic tier costs per call, and what
promotion costs a hot function. Every figure is measured in this run, beside its peer.

1. Cold: in a fresh process per library, after cdef, dlopen and one attribute access per
   function (untimed, reported beside), one call of each of 2000 generated functions
   (jitffi: generic tier, nothing compiled) against cffi ABI mode; and the executable
   code jitffi holds afterwards.
2. Promotion: in a fresh process, a hot function's first 10,000 calls (generic until
   promoted, then compiled) against 10,000 calls of a function whose shape was compiled.
3. Per call on the generic tier (JITFFI_TIER=generic) against cffi ABI mode, round-robin
   in one process: add_i, sum8, a struct by value, strlen.

Usage: PYTHONPATH=python python3 benches/bench_tiers.py [--quick | --check]
Build the extension in release mode first: .ci/dev-build --release
"""
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile

from bench_build import cc, iterations, python_cmd, sh

HERE = os.path.dirname(os.path.abspath(__file__))


def many_functions(n_funcs=2000, seed=1):
    """The generated header of `bench_calls.first_access`: n functions of 0-5 arguments."""
    rnd = random.Random(seed)
    types = ["int", "long", "double", "char *", "void *", "unsigned int", "float", "short"]
    decls, defs, sigs = [], [], []
    for i in range(n_funcs):
        nargs = rnd.randint(0, 5)
        args = [rnd.choice(types) for _ in range(nargs)]
        ret = rnd.choice(types + ["void"])
        params = ", ".join(f"{t} a{k}" for k, t in enumerate(args)) or "void"
        decls.append(f"{ret} f{i}({params});")
        sigs.append(args)
        body = "" if ret == "void" else "return 0;"
        defs.append(f"{ret} f{i}({params}) {{ {body} }}")
    tmp = tempfile.mkdtemp(prefix="jitffi-tiers-")
    c = os.path.join(tmp, "many.c")
    with open(c, "w") as f:
        f.write("\n".join(defs))
    so = os.path.join(tmp, "libmany.so")
    sh(*cc(), "-O0", "-shared", "-fPIC", "-o", so, c)
    return "\n".join(decls), sigs, so


COLD = r"""
import json, sys, time
mod = __import__(sys.argv[1])
header, so = open(sys.argv[2]).read(), sys.argv[3]
sigs = json.loads(open(sys.argv[4]).read())
t0 = time.perf_counter()
ffi = mod.FFI()
ffi.cdef(header)
lib = ffi.dlopen(so)
funcs = [getattr(lib, "f%d" % i) for i in range(len(sigs))]
setup = time.perf_counter() - t0
argvals = [[ffi.NULL if "*" in t else (0.0 if t in ("double", "float") else 0) for t in a] for a in sigs]
t0 = time.perf_counter()
for fn, a in zip(funcs, argvals):
    fn(*a)
first = time.perf_counter() - t0
t0 = time.perf_counter()
for fn, a in zip(funcs, argvals):
    fn(*a)
second = time.perf_counter() - t0
stats = {}
if sys.argv[1] == "jitffi":
    from jitffi import _jitffi
    stats = _jitffi._jit_stats()
print(json.dumps(dict(setup=setup, first=first, second=second, stats=stats)))
"""


def run_child(script, args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(python_cmd() + ["-c", script] + args, env=e, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return r.stdout


def cold_first_calls(rounds=3):
    """Medians over `rounds` fresh processes per library (alternating)."""
    header, sigs, so = many_functions()
    tmp = os.path.dirname(so)
    hpath, spath = os.path.join(tmp, "many.h"), os.path.join(tmp, "sigs.json")
    with open(hpath, "w") as f:
        f.write(header)
    with open(spath, "w") as f:
        json.dump(sigs, f)
    res = {"cffi": [], "jitffi": []}
    for _ in range(rounds):
        for mod in res:
            res[mod].append(json.loads(run_child(COLD, [mod, hpath, so, spath], {"JITFFI_TIER": "auto"})))
    med = {m: {k: statistics.median(r[k] for r in rs) for k in ("setup", "first", "second")} for m, rs in res.items()}
    # Each round's ratio, for the spread: this machine's timings vary run to run.
    med["ratios"] = sorted(j["first"] / c["first"] for c, j in zip(res["cffi"], res["jitffi"]))
    return len(sigs), med, res["jitffi"][-1]["stats"]


PROMOTE = r"""
import sys, time, jitffi
ffi = jitffi.FFI()
ffi.cdef("int add_i(int, int);")
f1 = ffi.dlopen(sys.argv[1]).add_i
t0 = time.perf_counter()
for _ in range(10000):
    f1(1, 2)
hot = time.perf_counter() - t0
ffi2 = jitffi.FFI()
ffi2.cdef("int add_i(int, int);")
f2 = ffi2.dlopen(sys.argv[1]).add_i
f2(1, 2)
t0 = time.perf_counter()
for _ in range(10000):
    f2(1, 2)
compiled = time.perf_counter() - t0
print(hot, compiled)
"""

PER_CALL = r"""
import sys, timeit, statistics, cffi, jitffi
from jitffi import _jitffi
H = "int add_i(int, int); int sum8(int,int,int,int,int,int,int,int); struct pt { int x, y; }; int pt_sum(struct pt); unsigned long my_strlen(const char *);"
so, number, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
env = {}
for name, mod in (("cffi_abi", cffi), ("jitffi", jitffi)):
    ffi = mod.FFI()
    ffi.cdef(H)
    lib = ffi.dlopen(so)
    env[name] = dict(lib=lib, P=ffi.new("struct pt *", [3, 4])[0])
stmts = [("add_i(1, 2)", "lib.add_i(1, 2)"), ("sum8(1..8)", "lib.sum8(1, 2, 3, 4, 5, 6, 7, 8)"),
         ("pt_sum(struct cdata)", "lib.pt_sum(P)"), ('strlen(b"hello world")', 'lib.my_strlen(b"hello world")')]
out = {}
for label, s in stmts:
    timers = {k: timeit.Timer(s, globals=dict(v)) for k, v in env.items()}
    samples = {k: [] for k in timers}
    for _ in range(repeat):
        for k, t in timers.items():
            samples[k].append(t.timeit(number) / number * 1e9)
    out[label] = {k: statistics.median(v) for k, v in samples.items()}
print(repr((out, _jitffi._jit_stats()["tier"], _jitffi._jit_stats()["shapes"])))
"""

PER_CALL_C = r"""
#include <string.h>
int add_i(int a, int b) { return a + b; }
int sum8(int a, int b, int c, int d, int e, int f, int g, int h) { return a+b+c+d+e+f+g+h; }
struct pt { int x, y; };
int pt_sum(struct pt p) { return p.x + p.y; }
unsigned long my_strlen(const char *s) { return strlen(s); }
"""


def main():
    n, med, stats = cold_first_calls(rounds=iterations(5, 5))
    c, j = med["cffi"], med["jitffi"]
    print(f"cold process, {n} functions: cdef + dlopen + one attribute access each (untimed part, ms): "
          f"cffi ABI {c['setup'] * 1e3:.1f}, jitffi {j['setup'] * 1e3:.1f}")
    print(f"first call of each: cffi ABI {c['first'] * 1e3:.2f} ms, jitffi {j['first'] * 1e3:.2f} ms "
          f"({j['first'] / c['first']:.2f}x cffi, median of {len(med['ratios'])} fresh-process pairs, "
          f"each pair {med['ratios'][0]:.2f}-{med['ratios'][-1]:.2f}x; target <= 2x); second call of each: "
          f"cffi ABI {c['second'] * 1e3:.2f} ms, jitffi {j['second'] * 1e3:.2f} ms")
    print(f"code held afterwards: {stats['shapes']} trampoline shapes, {stats['code_bytes']} bytes "
          f"(tier {stats['tier']}, promotions {stats['promotions']})")

    tmp = tempfile.mkdtemp(prefix="jitffi-tiers-")
    c_path = os.path.join(tmp, "pc.c")
    with open(c_path, "w") as f:
        f.write(PER_CALL_C)
    so = os.path.join(tmp, "libpc.so")
    sh(*cc(), "-O2", "-shared", "-fPIC", "-o", so, c_path)

    rounds = iterations(7, 3)
    hots, comps = [], []
    for _ in range(rounds):
        hot, comp = map(float, run_child(PROMOTE, [so], {"JITFFI_TIER": "auto"}).split())
        hots.append(hot)
        comps.append(comp)
    hot, comp = statistics.median(hots), statistics.median(comps)
    print(f"add_i, first 10,000 calls of a new shape (generic, promoted after the threshold): "
          f"{hot * 1e3:.2f} ms; 10,000 calls of a compiled one: {comp * 1e3:.2f} ms ({hot / comp:.2f}x)")

    number, repeat = iterations(100000, 20000, 10), iterations(9, 5)
    rows = {}
    for tier in ("generic", "compiled"):
        out, got_tier, shapes = eval(run_child(PER_CALL, [so, str(number), str(repeat)], {"JITFFI_TIER": tier}))
        assert got_tier == tier and (shapes == 0) == (tier == "generic")
        rows[tier] = out
    print(f"ns per call (median of {repeat} round-robin rounds of {number}; cffi ABI measured in each process)")
    head = f"{'call':26s}{'cffi_abi':>10s}{'generic':>10s}{'gen/abi':>9s}{'cffi_abi':>10s}{'compiled':>10s}{'comp/abi':>9s}"
    print(head)
    print("-" * len(head))
    for label in rows["generic"]:
        g, k = rows["generic"][label], rows["compiled"][label]
        print(f"{label:26s}{g['cffi_abi']:10.1f}{g['jitffi']:10.1f}{g['jitffi'] / g['cffi_abi']:9.2f}"
              f"{k['cffi_abi']:10.1f}{k['jitffi']:10.1f}{k['jitffi'] / k['cffi_abi']:9.2f}")
    print("gen/abi: generic tier vs cffi ABI (target <= 1.0); comp/abi: compiled tier vs cffi ABI")


if __name__ == "__main__":
    main()

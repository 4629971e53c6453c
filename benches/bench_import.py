"""Start-up of an out-of-line ABI module: import + dlopen + first access of every function.

The header is bench_cdef.py's (2000 prototypes, 200 structs). The same run writes the
module with real cffi and with jitffi, then times, each in fresh interpreters
(round-robin, medians):

    cffi/cffi      cffi's module, cffi's _cffi_backend
    cffi/jitffi    cffi's module unchanged, `_cffi_backend` resolving to jitffi's
    jitffi/jitffi  jitffi's module (it imports jitffi._cffi_backend)
    cffi API       (unless --no-api) cffi's compiled out-of-line API module, for scale

Each row: importing the backend alone, importing the module (with the .pyc cached, and
without: the interpreter compiles the module text), `ffi.dlopen`, and the first
`getattr(lib, name)` of the 2000 functions. Ratios are cffi/cffi's total over each
row's total (module import + dlopen + access; the backend import is shown apart).

    python3 benches/bench_import.py [--quick | --check] [--rounds N] [--no-api]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_cdef import make_header  # noqa: E402
from bench_build import cc, python_cmd  # noqa: E402

N_FUNCS = 2000

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import %(backend)s
t1 = time.perf_counter()
from %(module)s import %(ffi)s
t2 = time.perf_counter()
lib = %(dlopen)s
t3 = time.perf_counter()
for n in NAMES:
    getattr(lib, n)
t4 = time.perf_counter()
assert ffi.sizeof("struct s57") > 0
print(json.dumps([t1 - t0, t2 - t1, t3 - t2, t4 - t3]))
"""


def write_modules(tmp, header):
    import cffi
    import jitffi
    for name, mod in (("_cf_mod", cffi), ("_jf_mod", jitffi)):
        b = mod.FFI()
        b.cdef(header)
        b.set_source(name, None)
        b.emit_python_code(os.path.join(tmp, name + ".py"))
    # `import _cffi_backend` resolving to jitffi's backend, for cffi's module
    shim = os.path.join(tmp, "shim")
    os.makedirs(shim)
    with open(os.path.join(shim, "_cffi_backend.py"), "w") as f:
        f.write("from jitffi._cffi_backend import *\nfrom jitffi._cffi_backend import __version__\n")
    c = os.path.join(tmp, "many.c")
    with open(c, "w") as f:
        for i in range(N_FUNCS):
            f.write("void func_%d(void) {}\n" % i)
    so = os.path.join(tmp, "libmany.so")
    subprocess.check_call([*cc(), "-O0", "-shared", "-fPIC", "-o", so, c])
    return shim, so


def build_api(tmp, header):
    """cffi's compiled out-of-line API module over a library defining every function
    of the header (each returns zero)."""
    import cffi
    defs = []
    for line in header.splitlines():
        if " func_" not in line or not line.endswith(");"):
            continue
        ret, rest = line.split(" func_", 1)
        num, params = rest[:-2].split("(", 1)
        parts, depth, cur = [], 0, ""
        for ch in params:
            if ch == "," and depth == 0:
                parts.append(cur.strip())
                cur = ""
                continue
            depth += (ch == "(") - (ch == ")")
            cur += ch
        parts.append(cur.strip())
        named = [q if q in ("void", "...") or "(*" in q else "%s p%d" % (q, k)
                 for k, q in enumerate(parts)]
        body = "{}" if ret == "void" else "{ return 0; }"
        defs.append("%s func_%s(%s) %s" % (ret, num, ", ".join(named), body))
    with open(os.path.join(tmp, "api.h"), "w") as fh:
        fh.write("#include <stddef.h>\n#include <stdint.h>\n" + header)
    with open(os.path.join(tmp, "api.c"), "w") as fh:
        fh.write('#include "api.h"\n' + "\n".join(defs) + "\n")
    so = os.path.join(tmp, "libapimany.so")
    subprocess.check_call([*cc(), "-O0", "-shared", "-fPIC", "-w", "-o", so, os.path.join(tmp, "api.c")])
    b = cffi.FFI()
    b.cdef(header)
    b.set_source("_api_mod", '#include "api.h"', include_dirs=[tmp], library_dirs=[tmp],
                 libraries=["apimany"], extra_link_args=["-Wl,-rpath," + tmp],
                 extra_compile_args=["-O0", "-w"])
    b.compile(tmpdir=tmp, verbose=False)


def child_code(backend, module, ffi, dlopen):
    names = ["func_%d" % i for i in range(N_FUNCS)]
    return ("NAMES = %r\n" % (names,)) + CHILD % dict(backend=backend, module=module, ffi=ffi,
                                                         dlopen=dlopen)


def run(code, path, cache, pyc):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(path)
    env["PYTHONPYCACHEPREFIX"] = cache
    args = python_cmd()
    if pyc:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        # a fresh, empty cache and no writing: every module compiled from its text
        shutil.rmtree(cache, ignore_errors=True)
        args.append("-B")
    r = subprocess.run(args + ["-c", code], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("child failed:\n" + r.stderr)
    return json.loads(r.stdout)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="3 rounds, no API mode")
    p.add_argument("--check", action="store_true", help="1 round: the checks, no timing, no API mode")
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--no-api", action="store_true")
    args = p.parse_args()
    rounds = 1 if args.check else 3 if args.quick else args.rounds
    import jitffi
    jit_path = os.path.dirname(os.path.dirname(os.path.abspath(jitffi.__file__)))
    header = make_header()
    tmp = tempfile.mkdtemp(prefix="jitffi-import-")
    try:
        shim, so = write_modules(tmp, header)
        rows = {
            "cffi/cffi": ([tmp], child_code("_cffi_backend", "_cf_mod", "ffi",
                                            "ffi.dlopen(%r)" % so)),
            "cffi/jitffi": ([shim, jit_path, tmp], child_code("_cffi_backend", "_cf_mod", "ffi",
                                                              "ffi.dlopen(%r)" % so)),
            "jitffi/jitffi": ([jit_path, tmp], child_code("jitffi._cffi_backend", "_jf_mod", "ffi",
                                                          "ffi.dlopen(%r)" % so)),
        }
        # (cffi's API-mode row is a timing reference only: --check, which checks
        # jitffi's rows, does not spend a C build of 2000 functions on it)
        if not (args.no_api or args.quick or args.check):
            build_api(tmp, header)
            rows["cffi API"] = ([tmp], child_code("_cffi_backend", "_api_mod", "ffi, lib", "lib"))
        caches = {k: os.path.join(tmp, "pyc-" + str(i)) for i, k in enumerate(rows)}
        nopyc = {k: os.path.join(tmp, "nopyc-" + str(i)) for i, k in enumerate(rows)}
        for k, (path, code) in rows.items():
            run(code, path, caches[k], True)  # writes the .pyc files
        samples = {k: {"pyc": [], "nopyc": []} for k in rows}
        for _ in range(rounds):
            for k, (path, code) in rows.items():
                samples[k]["pyc"].append(run(code, path, caches[k], True))
                samples[k]["nopyc"].append(run(code, path, nopyc[k], False))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(k, mode, i):
        return statistics.median(s[i] for s in samples[k][mode]) * 1e3

    def total(k, mode):
        # per round, so that the ratios compare the same machine state
        return [s[1] + s[2] + s[3] for s in samples[k][mode]]

    print("out-of-line ABI module of %d functions / 200 structs: fresh interpreters, medians "
          "of %d rounds (ms)" % (N_FUNCS, rounds))
    print("%-14s %8s | %9s %8s | %8s %9s | %9s %9s | %8s %8s" % (
        "module/backend", "backend", "import", "import", "dlopen", "access", "total", "total",
        "vs cffi", "vs cffi"))
    print("%-14s %8s | %9s %8s | %8s %9s | %9s %9s | %8s %8s" % (
        "", "import", "(.pyc)", "(text)", "", "(2000)", "(.pyc)", "(text)", "(.pyc)", "(text)"))
    ref = {m: total("cffi/cffi", m) for m in ("pyc", "nopyc")}
    for k in rows:
        ratios = {}
        for m in ("pyc", "nopyc"):
            ratios[m] = statistics.median(r / t for r, t in zip(ref[m], total(k, m)))
        print("%-14s %8.2f | %9.2f %8.2f | %8.2f %9.2f | %9.2f %9.2f | %7.1fx %7.1fx" % (
            k, med(k, "pyc", 0), med(k, "pyc", 1), med(k, "nopyc", 1), med(k, "pyc", 2),
            med(k, "pyc", 3), statistics.median(total(k, "pyc")) * 1e3,
            statistics.median(total(k, "nopyc")) * 1e3, ratios["pyc"], ratios["nopyc"]))
    print("(total = module import + dlopen + first access; 'vs cffi' = cffi/cffi's total "
          "over this row's, per round; target for jitffi's rows: >= 10x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

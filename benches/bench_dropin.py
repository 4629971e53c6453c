"""The JITFFI_AS_CFFI switch's costs, same run: (1) what jitffi_as_cffi.pth adds to every
interpreter start when the variable is unset: the .pth line itself, timed in-process,
and `python -c pass` with and without the .pth in the user site, interleaved; (2) `import
cffi` in a fresh interpreter under the switch (jitffi) against the real cffi.

Uses the jitffi that is importable (installed, or PYTHONPATH=python). If the installed
jitffi put its .pth into the interpreter's own site-packages, both startup runs carry it
and (1b) shows no difference by construction; (1a) still times the line.
Usage: python benches/bench_dropin.py [--quick]"""
import os
import statistics
import subprocess
import sys
import tempfile
import timeit

import jitffi

QUICK = "--quick" in sys.argv
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(jitffi.__file__)))
PTH = os.path.join(ROOT, "jitffi_as_cffi.pth")


def pth_line_cost():
    with open(PTH) as f:
        line = f.read().strip()
    env = os.environ.pop("JITFFI_AS_CFFI", None)
    try:
        code = compile(line, PTH, "exec")
        n = 20000 if QUICK else 200000
        best = min(timeit.repeat(lambda: exec(code, {}), number=n, repeat=5)) / n
    finally:
        if env is not None:
            os.environ["JITFFI_AS_CFFI"] = env
    return best


def startup(rounds):
    base = dict(os.environ)
    base.pop("JITFFI_AS_CFFI", None)
    base.pop("PYTHONNOUSERSITE", None)
    base["PYTHONPATH"] = ROOT
    dirs = {}
    for kind in ("with", "without"):
        d = tempfile.mkdtemp(prefix="jitffi-bench-%s-" % kind)
        env = dict(base, PYTHONUSERBASE=d)
        site = subprocess.run([sys.executable, "-c", "import site; print(site.getusersitepackages())"],
                              env=env, capture_output=True, text=True, check=True).stdout.strip()
        os.makedirs(site)
        if kind == "with":
            with open(PTH) as src, open(os.path.join(site, "jitffi_as_cffi.pth"), "w") as dst:
                dst.write(src.read())
        dirs[kind] = env
    times = {"with": [], "without": []}
    for _ in range(rounds):
        for kind in ("with", "without"):
            t = timeit.default_timer()
            subprocess.run([sys.executable, "-c", "pass"], env=dirs[kind], check=True)
            times[kind].append(timeit.default_timer() - t)
    return {k: statistics.median(v) for k, v in times.items()}


IMPORT_TIME = ("import time; t = time.perf_counter(); import cffi; "
               "print(time.perf_counter() - t)")


def import_cffi(rounds):
    base = dict(os.environ)
    base["PYTHONPATH"] = ROOT
    switched = dict(base, JITFFI_AS_CFFI="1")
    real = dict(base)
    real.pop("JITFFI_AS_CFFI", None)
    # under the switch the finder must be installed: the .pth (installed jitffi) or -c
    prefix = "import _jitffi_as_cffi; _jitffi_as_cffi.install(); "
    out = {"jitffi": [], "cffi": []}
    for _ in range(rounds):
        for kind, env, code in (("jitffi", switched, prefix + IMPORT_TIME), ("cffi", real, IMPORT_TIME)):
            r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                               text=True, check=True)
            out[kind].append(float(r.stdout))
    return {k: statistics.median(v) for k, v in out.items()}


def main():
    rounds = 10 if QUICK else 60
    line = pth_line_cost()
    print("(1a) the .pth line, variable unset: %.0f ns per interpreter start" % (line * 1e9))
    s = startup(rounds)
    print("(1b) python -c pass, medians of %d interleaved: with .pth %.2f ms, without %.2f ms, "
          "difference %+.2f ms" % (rounds, s["with"] * 1e3, s["without"] * 1e3,
                                   (s["with"] - s["without"]) * 1e3))
    i = import_cffi(rounds // 2)
    print("(2) import cffi in a fresh interpreter, medians: jitffi under the switch %.2f ms, "
          "real cffi %.2f ms (ratio %.2f)" % (i["jitffi"] * 1e3, i["cffi"] * 1e3,
                                              i["jitffi"] / i["cffi"]))


if __name__ == "__main__":
    main()

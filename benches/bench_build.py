"""What the benchmarks share: how they run (`--quick`, `--check`), the C compiler and the
interpreter for subprocesses, and what they build before measuring: the C library under
test (with its header) and cffi's out-of-line API-mode module for it.

`--check` runs every measurement once: the benchmarks' correctness parts (each compares
the peers' results) without their timings, which is how CI runs them for aarch64 under
qemu. `CC` (and `CFLAGS`) name the compiler for the target, `JITFFI_BENCH_PYTHON` the
command that starts the target's interpreter (default: this one)."""
import os
import shlex
import subprocess
import sys

CHECK = "--check" in sys.argv
QUICK = CHECK or "--quick" in sys.argv
if CHECK:
    print("(--check: every measurement runs once; the numbers below measure nothing)")


def iterations(full, quick, check=1):
    """How many times a measurement repeats (or how much work it does): `check` under
    --check."""
    return check if CHECK else (quick if QUICK else full)


def mode_args():
    """The run-mode flags to pass on to benchmark subprocesses."""
    return ["--check"] if CHECK else (["--quick"] if QUICK else [])


def python_cmd():
    """The command that starts the target's interpreter."""
    cmd = os.environ.get("JITFFI_BENCH_PYTHON")
    return shlex.split(cmd) if cmd else [sys.executable]


def cc():
    """The target's C compiler with the user's CFLAGS."""
    return shlex.split(os.environ.get("CC", "cc")) + shlex.split(os.environ.get("CFLAGS", ""))


def sh(*cmd, cwd=None):
    subprocess.check_call(cmd, cwd=cwd, stdout=subprocess.DEVNULL)


def build_c_library(tmp, libname, source, header):
    """Writes bench.c/bench.h into `tmp` and compiles lib<libname>.so; returns its path."""
    with open(os.path.join(tmp, "bench.c"), "w") as f:
        f.write(source)
    with open(os.path.join(tmp, "bench.h"), "w") as f:
        f.write(header)
    so = os.path.join(tmp, "lib%s.so" % libname)
    sh(*cc(), "-O2", "-shared", "-fPIC", "-o", so, os.path.join(tmp, "bench.c"))
    return so


def build_cffi_api(tmp, module, libname, header):
    """Compiles cffi's API-mode (out-of-line) module `module` over lib<libname>.so and
    makes it importable."""
    import cffi
    builder = cffi.FFI()
    builder.cdef(header)
    builder.set_source(module, '#include "bench.h"', include_dirs=[tmp],
                       library_dirs=[tmp], libraries=[libname],
                       extra_link_args=["-Wl,-rpath," + tmp])
    builder.compile(tmpdir=tmp, verbose=False)
    if tmp not in sys.path:
        sys.path.insert(0, tmp)

"""What the call benchmarks build before measuring: the C library under test (with its
header) and cffi's out-of-line API-mode module for it."""
import os
import subprocess
import sys


def sh(*cmd, cwd=None):
    subprocess.check_call(cmd, cwd=cwd, stdout=subprocess.DEVNULL)


def build_c_library(tmp, libname, source, header):
    """Writes bench.c/bench.h into `tmp` and compiles lib<libname>.so; returns its path."""
    with open(os.path.join(tmp, "bench.c"), "w") as f:
        f.write(source)
    with open(os.path.join(tmp, "bench.h"), "w") as f:
        f.write(header)
    so = os.path.join(tmp, "lib%s.so" % libname)
    sh("cc", "-O2", "-shared", "-fPIC", "-o", so, os.path.join(tmp, "bench.c"))
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

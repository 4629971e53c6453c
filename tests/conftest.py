"""Shared test helpers: import jitffi from the working tree, and compile small C
libraries with the system compiler (`build_clib`) for layout/value comparisons and calls."""
import hashlib
import os
import subprocess
import sys
import tempfile

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    import jitffi  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(_ROOT, "python"))

_BUILD_DIR = tempfile.mkdtemp(prefix="jitffi-clib-")


def build_clib(name, c_source, extra_args=()):
    """Compiles `c_source` with `cc -shared -fPIC` into a temporary directory and returns
    the path of the shared library (cached per source text within the test session)."""
    digest = hashlib.sha1((c_source + repr(tuple(extra_args))).encode()).hexdigest()[:12]
    so_path = os.path.join(_BUILD_DIR, "lib%s_%s.so" % (name, digest))
    if not os.path.exists(so_path):
        c_path = os.path.join(_BUILD_DIR, "%s_%s.c" % (name, digest))
        with open(c_path, "w") as f:
            f.write(c_source)
        cmd = ["cc", "-shared", "-fPIC", "-O1", "-o", so_path, c_path] + list(extra_args)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("cc failed:\n%s\n%s" % (" ".join(cmd), r.stderr))
    return so_path


def run_c_program(name, c_source, extra_args=()):
    """Compiles and runs a C program, returning its stdout (for printing sizeof/offsetof)."""
    digest = hashlib.sha1((c_source + repr(tuple(extra_args))).encode()).hexdigest()[:12]
    exe = os.path.join(_BUILD_DIR, "%s_%s" % (name, digest))
    c_path = exe + ".c"
    with open(c_path, "w") as f:
        f.write(c_source)
    subprocess.run(["cc", "-O1", "-o", exe, c_path] + list(extra_args), check=True)
    return subprocess.run([exe], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def clib():
    return build_clib


@pytest.fixture
def ffi():
    import jitffi
    return jitffi.FFI()

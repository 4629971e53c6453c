"""Shared test helpers: import jitffi from the working tree, and compile small C
libraries with the target's compiler (`build_clib`) for layout/value comparisons and calls.

The target is set here and only here. By default it is this machine: `cc`, programs started
directly. `.ci/aarch64` runs the suite with an aarch64 CPython under qemu-user and sets
JITFFI_TEST_CC (the cross compiler), JITFFI_TEST_RUN (the emulator command that starts an
aarch64 program: without binfmt the kernel cannot start one itself) and JITFFI_TEST_ARCH
(the machine the run is for, checked). Expectations that differ
per target test `ARCH`, which is the machine the interpreter runs on (qemu reports the
emulated one)."""
import hashlib
import os
import platform
import shlex
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

# The C compiler for the target, as an argument list.
CC = shlex.split(os.environ.get("JITFFI_TEST_CC", "cc"))
# What starts a program built for the target (empty: the kernel starts it).
RUN = shlex.split(os.environ.get("JITFFI_TEST_RUN", ""))
# The interpreter running these tests, started as a subprocess.
PYTHON = RUN + [sys.executable]
# "x86_64" or "aarch64": what the per-target expectations are keyed on.
ARCH = platform.machine()
if ARCH not in ("x86_64", "aarch64"):
    raise RuntimeError("tests know the expectations of x86_64 and aarch64, not %r" % ARCH)
# A run meant for one target (JITFFI_TEST_ARCH) must not pass on another unseen.
if os.environ.get("JITFFI_TEST_ARCH", ARCH) != ARCH:
    raise RuntimeError("JITFFI_TEST_ARCH=%s, but the interpreter runs on %s"
                       % (os.environ["JITFFI_TEST_ARCH"], ARCH))


def build_clib(name, c_source, extra_args=()):
    """Compiles `c_source` with `CC -shared -fPIC` into a temporary directory and returns
    the path of the shared library (cached per source text within the test session)."""
    digest = hashlib.sha1((c_source + repr(tuple(extra_args))).encode()).hexdigest()[:12]
    so_path = os.path.join(_BUILD_DIR, "lib%s_%s.so" % (name, digest))
    if not os.path.exists(so_path):
        c_path = os.path.join(_BUILD_DIR, "%s_%s.c" % (name, digest))
        with open(c_path, "w") as f:
            f.write(c_source)
        cmd = CC + ["-shared", "-fPIC", "-O1", "-o", so_path, c_path] + list(extra_args)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("the C compiler failed:\n%s\n%s" % (" ".join(cmd), r.stderr))
    return so_path


def run_c_program(name, c_source, extra_args=()):
    """Compiles and runs a C program, returning its stdout (for printing sizeof/offsetof)."""
    digest = hashlib.sha1((c_source + repr(tuple(extra_args))).encode()).hexdigest()[:12]
    exe = os.path.join(_BUILD_DIR, "%s_%s" % (name, digest))
    c_path = exe + ".c"
    with open(c_path, "w") as f:
        f.write(c_source)
    subprocess.run(CC + ["-O1", "-o", exe, c_path] + list(extra_args), check=True)
    return subprocess.run(RUN + [exe], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def clib():
    return build_clib


@pytest.fixture
def ffi():
    import jitffi
    return jitffi.FFI()


@pytest.fixture(scope="session", autouse=True)
def _forced_generic_tier_compiles_nothing():
    """Under JITFFI_TIER=generic the session ends by checking that no call trampoline
    shape was compiled (the generic tier alone served every call)."""
    yield
    if os.environ.get("JITFFI_TIER") == "generic":
        from jitffi import _jitffi
        stats = _jitffi._jit_stats()
        assert stats["tier"] == "generic"
        assert stats["shapes"] == 0, stats
        assert stats["callback_shapes_compiled"] == 0, stats

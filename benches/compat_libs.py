"""Published cffi ABI-mode libraries, their own test suites, on real cffi and under
JITFFI_AS_CFFI=1, pass counts side by side.

Downloads from PyPI (pip download; needs network once), into a work directory:
- cairocffi (in-line cdef + dlopen of the system libcairo), its sdist's tests;
- soundfile (an out-of-line module cffi wrote, `import _cffi_backend`, and the libsndfile
  its wheel bundles), the sdist's tests run against the wheel's files;
- weasyprint (in-line cdef + dlopen of pango, harfbuzz, fontconfig, gobject), the sdist's
  tests;
- pyvex (its wheel bundles libpyvex.so; caches its cdef() parse by pickling
  `ffi._parser._declarations`, reads `ffi.BVoidP`): no test suite in the wheel, so a lift of
  one block, run twice (writing, then reading the parse cache) in a fresh TMPDIR.
System libraries (Debian): libcairo2, libpango-1.0-0, libpangoft2-1.0-0, libharfbuzz0b,
libfontconfig1. Test dependencies (numpy, pikepdf, weasyprint's) are pip-installed into a
venv with the system site-packages (pytest, the real cffi) visible.

The switch comes from `python -m jitffi run -m pytest`, with the jitffi given by
--jitffi-path (default: this checkout's python/, built in place by .ci/dev-build).
Usage: python benches/compat_libs.py [--workdir DIR] [--jitffi-path DIR] [--quick]
(--quick: cairocffi and soundfile only)."""
import argparse
import glob
import os
import re
import subprocess
import sys
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def sh(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, **kw)


def fetch(work, py):
    pip = [py, "-m", "pip"]
    dl = os.path.join(work, "dl")
    os.makedirs(dl, exist_ok=True)
    sh(*pip, "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", dl,
       "cairocffi==1.7.1", "soundfile==0.14.0", "weasyprint==70.0")
    sh(*pip, "download", "-q", "--no-deps", "--only-binary", ":all:", "-d", dl, "soundfile==0.14.0")
    for sd in glob.glob(os.path.join(dl, "*.tar.gz")):
        with tarfile.open(sd) as t:
            t.extractall(work, filter="data")
    wheel = glob.glob(os.path.join(dl, "soundfile-*.whl"))[0]
    with zipfile.ZipFile(wheel) as z:
        z.extractall(os.path.join(work, "soundfile-wheel"))
    sh(*pip, "install", "-q", "numpy", "pikepdf", "archinfo", "bitarray", "bitstring<4.3")
    sh(*pip, "install", "-q", "--no-deps", "pyvex==9.2.213")
    sh(*pip, "install", "-q", "weasyprint==70.0")
    sh(*pip, "uninstall", "-q", "-y", "weasyprint")  # its sdist's tree is tested


def suites(work, quick):
    s = [
        ("cairocffi 1.7.1", os.path.join(work, "cairocffi-1.7.1"), ["."],
         ["cairocffi/test_cairo.py", "cairocffi/test_numpy.py", "cairocffi/test_pixbuf.py"]),
        ("soundfile 0.14.0", os.path.join(work, "soundfile-0.14.0"),
         [os.path.join(work, "soundfile-wheel")], ["tests"]),
    ]
    if not quick:
        s.append(("weasyprint 70.0", os.path.join(work, "weasyprint-70.0"), ["."], ["tests"]))
    return s


def count(out):
    m = {k: 0 for k in ("passed", "failed", "error", "xfailed", "skipped")}
    tail = out.strip().splitlines()[-1] if out.strip() else ""
    for n, k in re.findall(r"(\d+) (passed|failed|errors?|xfailed|skipped)", tail):
        m["error" if k.startswith("error") else k] = int(n)
    return m, tail


def run(py, cwd, path, tests, jitffi_path):
    env = dict(os.environ)
    env.pop("JITFFI_AS_CFFI", None)
    if jitffi_path is None:
        cmd = [py, "-m", "pytest"]
    else:
        path = path + [jitffi_path]
        cmd = [py, "-m", "jitffi", "run", "-m", "pytest"]
    env["PYTHONPATH"] = os.pathsep.join(path)
    r = subprocess.run(cmd + tests + ["-q", "-p", "no:cacheprovider", "-rfE"], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=1800)
    return count(r.stdout)


PYVEX_USE = """
import archinfo, pyvex
irsb = pyvex.lift(b"\\x55\\x48\\x89\\xe5\\x48\\x83\\xc0\\x01\\x5d\\xc3", 0x400400,
                  archinfo.ArchAMD64())
print(irsb.size, len(irsb.statements), irsb.jumpkind)
"""


def pyvex_usage(py, work, jitffi_path):
    """'2 of 2 runs' when a fresh parse and a cached one both lift the block as expected."""
    tmp = os.path.join(work, "pyvex-tmp-%s" % ("jitffi" if jitffi_path else "cffi"))
    os.makedirs(tmp, exist_ok=True)
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    env = dict(os.environ, TMPDIR=tmp)
    env.pop("JITFFI_AS_CFFI", None)
    cmd = [py, "-c", PYVEX_USE]
    if jitffi_path:
        env["PYTHONPATH"] = jitffi_path
        script = os.path.join(tmp, "..", "pyvex_use.py")
        with open(script, "w") as f:
            f.write(PYVEX_USE)
        cmd = [py, "-m", "jitffi", "run", script]
    ok = 0
    for _ in range(2):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        ok += r.returncode == 0 and r.stdout.split() == ["10", "28", "Ijk_Ret"]
    return "%d of 2 runs" % ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default="/tmp/jitffi-compat")
    ap.add_argument("--jitffi-path", default=os.path.join(os.path.dirname(HERE), "python"))
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    work = os.path.abspath(a.workdir)
    venv = os.path.join(work, "venv")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        os.makedirs(work, exist_ok=True)
        sh(sys.executable, "-m", "venv", "--system-site-packages", venv)
        fetch(work, py)
    print("%-18s %-40s %s" % ("library", "real cffi", "jitffi (JITFFI_AS_CFFI)"))
    for name, cwd, path, tests in suites(work, a.quick):
        (real, rtail) = run(py, cwd, path, tests, None)
        (jit, jtail) = run(py, cwd, path, tests, a.jitffi_path)
        same = "same" if (real["passed"], real["failed"], real["error"]) == \
            (jit["passed"], jit["failed"], jit["error"]) else "DIFFERENT"
        print("%-18s %-40s %s  [%s]" % (name, rtail.strip("= "), jtail.strip("= "), same))
    real, jit = pyvex_usage(py, work, None), pyvex_usage(py, work, a.jitffi_path)
    print("%-18s %-40s %s  [%s]" % ("pyvex 9.2.213", real, jit, "same" if real == jit else "DIFFERENT"))


if __name__ == "__main__":
    main()

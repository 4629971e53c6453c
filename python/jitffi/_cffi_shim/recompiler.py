"""`cffi.recompiler` under the switch: the entry points build scripts and tests call to
write an out-of-line module. The ABI mode (no C source: a `.py` module holding cffi's
pre-parsed tables) is jitffi's writer (jitffi/_builder.py); the API mode, which generates
C for a compiler, is refused with a VerificationError that says so."""
from jitffi import VerificationError
from jitffi import _builder

__jitffi__ = True


def _no_api_mode(what):
    return VerificationError(
        "%s: jitffi has no out-of-line API mode (a module built from C source by a C "
        "compiler); pass preamble=None for the out-of-line ABI mode" % (what,))


def make_py_source(ffi, module_name, target_py_file, verbose=False):
    """Writes the out-of-line ABI module `module_name` for `ffi`'s declarations to
    `target_py_file` (a path or a file-like object). Returns False when the file already
    had that content (it is then left alone), else True."""
    return _builder.write_module(ffi, target_py_file, verbose, module_name)


def make_c_source(ffi, module_name, preamble, target_c_file, verbose=False):
    raise _no_api_mode("make_c_source()")


def recompile(ffi, module_name, preamble, tmpdir='.', call_c_compiler=True,
              c_file=None, source_extension='.c', extradir=None,
              compiler_verbose=1, target=None, debug=None,
              uses_ffiplatform=True, **kwds):
    """cffi's `recompile()`: with `preamble=None`, writes the module as
    `tmpdir/<dotted path>.py` (or to `c_file`) and returns the path, or with
    `call_c_compiler=False` the pair `(None, updated)`."""
    if preamble is not None:
        raise _no_api_mode("recompile(%r, <C source>)" % (module_name,))
    if c_file is None:
        c_file = _builder.module_path(tmpdir, module_name)
    updated = make_py_source(ffi, module_name, c_file, verbose=compiler_verbose)
    if call_c_compiler:
        return c_file
    return None, updated

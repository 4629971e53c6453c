"""The build side of the out-of-line ABI mode: `ffi.set_source(name, None)`, then
`ffi.emit_python_code(path)` or `ffi.compile()` write a module holding the declarations
as cffi's pre-parsed tables (the text comes from Rust: src/py/ops/outofline.rs), which a
program imports instead of parsing C again. The errors for misuse are cffi's."""
import os


def _not_api_mode(what):
    from ._jitffi import VerificationError
    return VerificationError(
        "%s: jitffi has no out-of-line API mode (set_source() with a C source string, "
        "which needs a C compiler); use set_source(module_name, None) for the "
        "out-of-line ABI mode" % (what,))


def set_source(ffi, module_name, source, source_extension, kwds):
    if hasattr(ffi, "_assigned_source"):
        raise ValueError("set_source() cannot be called several times per ffi object")
    if not isinstance(module_name, str):
        raise TypeError("'module_name' must be a string")
    if os.sep in module_name or (os.altsep and os.altsep in module_name):
        raise ValueError("'module_name' must not contain '/': use a dotted "
                         "name to make a 'package.module' location")
    # A C source is recorded as cffi does: the API mode's steps (compile(),
    # emit_c_code(), distutils_extension()) refuse it, so that a build script's
    # set_source() call at import time does not stop the program that imports it.
    ffi._assigned_source = (str(module_name), source, source_extension, kwds)


def _assigned(ffi, method):
    try:
        return ffi._assigned_source
    except AttributeError:
        raise ValueError("set_source() must be called before %s()" % (method,)) from None


def module_text(ffi, module_name=None):
    """The text of the module named `module_name` (default: set_source()'s name), for
    what `ffi` declared up to now."""
    from ._jitffi import VerificationError
    if module_name is None:
        module_name = ffi._assigned_source[0]
    included = []
    for other in ffi._included_ffis:
        if any(other is o for o, _ in included):
            continue  # included twice: imported once
        try:
            name, source = other._assigned_source[:2]
        except AttributeError:
            raise VerificationError(
                "ffi object %r includes %r, but the latter has not been prepared "
                "with set_source()" % (ffi, other)) from None
        if source is not None:
            raise VerificationError(
                "not implemented yet: ffi.include() of a C-based ffi inside a "
                "Python-based ffi")
        included.append((other, name))
    return ffi._emit_python_module(module_name, backend_module(), included)


def backend_module():
    """The backend the written module imports: jitffi's own by its name, so the module
    works without the switch; under the switch (JITFFI_AS_CFFI), `_cffi_backend`, the
    text cffi writes, which the switch resolves to jitffi and real cffi to its own."""
    import sys
    finder = sys.modules.get("_jitffi_as_cffi")
    if finder is not None and finder.installed():
        return "_cffi_backend"
    return "jitffi._cffi_backend"


def write_module(ffi, target, verbose, module_name=None):
    """Writes the module to `target` (a path or a file-like object); returns whether
    the file changed. An up-to-date file is left alone (its mtime too), as cffi does."""
    output = module_text(ffi, module_name)
    if verbose:
        print("generating %s" % (target,))
    if hasattr(target, "write"):
        target.write(output)
        return True
    try:
        with open(target, "r") as f:
            if f.read(len(output) + 1) == output:
                if verbose:
                    print("(already up-to-date)")
                return False
    except OSError:
        pass
    tmp = "%s.~%d" % (target, os.getpid())
    with open(tmp, "w") as f:
        f.write(output)
    os.replace(tmp, target)
    return True


def emit_python_code(ffi, filename):
    if not hasattr(ffi, "_assigned_source"):
        # (cffi names emit_c_code() here too)
        raise ValueError("set_source() must be called before emit_c_code()")
    if ffi._assigned_source[1] is not None:
        raise TypeError("emit_python_code() is only for dlopen()-style "
                        "pure Python modules, not for C extension modules")
    write_module(ffi, filename, True)  # (cffi says what it generates here)


def emit_c_code(ffi, filename):
    _, source, _, _ = _assigned(ffi, "emit_c_code")
    if source is None:
        raise TypeError("emit_c_code() is only for C extension modules, "
                        "not for dlopen()-style pure Python modules")
    raise _not_api_mode("emit_c_code()")


def distutils_extension(ffi, tmpdir, verbose):
    _, source, _, _ = _assigned(ffi, "distutils_extension")
    if source is None:
        raise TypeError("distutils_extension() is only for C extension "
                        "modules, not for dlopen()-style pure Python modules")
    raise _not_api_mode("distutils_extension()")


def compile(ffi, tmpdir, verbose, target, debug):
    module_name, source, _, _ = _assigned(ffi, "compile")
    if source is not None:
        raise _not_api_mode("compile()")
    path = module_path(tmpdir, module_name)
    write_module(ffi, path, verbose)
    return path


def module_path(tmpdir, module_name):
    """Where module `module_name` goes under `tmpdir` (created as needed): a dotted name
    is a module inside packages, pkg.sub._foo -> tmpdir/pkg/sub/_foo.py."""
    parts = module_name.split(".")
    os.makedirs(os.path.join(tmpdir, *parts[:-1]), exist_ok=True)
    return os.path.join(tmpdir, *parts[:-1], parts[-1] + ".py")

"""jitffi: cffi's API in ABI mode, calling C through Cranelift-compiled trampolines.

`import jitffi as cffi` works: FFI, CDefError, FFIError, VerificationError,
VerificationMissing, PkgConfigError, __version__, __version_info__. Type stubs: __init__.pyi.

For code that imports cffi itself (libraries): JITFFI_AS_CFFI=1 in the environment, or
install_as_cffi(), or `python -m jitffi run script.py` (README, "Drop-in for cffi").
"""
import sys as _sys
import threading as _threading
import types as _types
import weakref as _weakref

from . import _builder, _decl_cache, _jitffi, _lib
from ._lib import _LibWithGlobals  # noqa: F401  (its home before _lib.py; shown as jitffi._LibWithGlobals)
# InternalError (a SystemError): a caught Rust panic, a bug in jitffi, never a user error.
from ._jitffi import (CDefError, FFIError, VerificationError, VerificationMissing,
                      InternalError, CType, CData, CField)

# The version of cffi's API that jitffi emulates (what code written for cffi checks),
# not the version of the jitffi package itself (pyproject.toml / Cargo.toml: 0.1.0).
__version__ = "2.0.0"
__version_info__ = (2, 0, 0)

__all__ = ["FFI", "CDefError", "FFIError", "VerificationError", "VerificationMissing", "InternalError",
           "PkgConfigError", "install_as_cffi", "__version__", "__version_info__"]


class PkgConfigError(Exception):
    """cffi's error for a pkg-config lookup that failed (cffi.pkgconfig)."""


def install_as_cffi():
    """Makes `import cffi`, its submodules and `import _cffi_backend` give jitffi from now
    on, in this interpreter and (through JITFFI_AS_CFFI=1 in os.environ) in subprocesses
    started after this call. Raises ImportError if the real cffi is already imported."""
    import _jitffi_as_cffi
    _jitffi_as_cffi.install()


def _check_backend(backend):
    # cffi takes a backend module; jitffi has one (what `import _cffi_backend` gives under
    # the switch) and ignores the argument, except for real cffi's own backends: taking
    # one would promise cdata that mix with real cffi's, which jitffi's never do.
    if backend is None:
        return
    module = getattr(type(backend), "__module__", "") if not isinstance(backend, _types.ModuleType) \
        else getattr(backend, "__name__", "")
    real = (module == "_cffi_backend" and not getattr(backend, "__jitffi__", False)
            and backend is not _sys.modules.get("jitffi._cffi_backend"))
    if real or (module == "cffi.backend_ctypes" and not getattr(backend, "__jitffi__", False)):
        raise TypeError("FFI(backend=...): jitffi cannot use real cffi's backend %r; it has "
                        "its own (jitffi._cffi_backend)" % (backend,))


class FFI(_jitffi.FFI):
    """The FFI object. Hot methods (new, cast, typeof, sizeof, string, buffer, ...) are
    implemented in Rust by the base class; this subclass adds the slow-path ones."""

    def __new__(cls, *args, **kwargs):
        # A backend object of the caller's own that builds the types (cffi's tests
        # pass such fakes) gets cffi's front end over it: _foreign_backend.py. (The
        # compiled FFI, a subclass, is given a module's tables instead.)
        # (`FFI()`, the usual call, goes straight to the base: no lookups, no import)
        if cls is FFI and (args or kwargs):
            backend = kwargs.get("backend", args[0] if args else None)
            if backend is not None:
                _check_backend(backend)
                from . import _foreign_backend
                if _foreign_backend.is_foreign(backend):
                    return _foreign_backend.ForeignBackendFFI(backend)
        return super().__new__(cls)

    def __init__(self, backend=None):
        _check_backend(backend)
        # What cdef() was given, in order: ffi._parser._declarations (_decl_cache.py).
        self._cdef_log = []
        self._pending_int_constants = None
        # cffi's FFI has these two ctypes as attributes; libraries use them
        # (`ffi.from_buffer(ffi.BVoidP, data)` in pyvex).
        self.BVoidP = self.typeof("void *")
        self.BCharA = self.typeof("char[]")
        self._init_once_lock = _threading.Lock()
        self._init_once_cache = {}
        self._libs = _weakref.WeakKeyDictionary()  # lib module -> its state
        self._libraries = []  # every lib opened, kept alive as cffi does
        self._included_ffis = []  # what include() gave, for the written module's imports

    @property
    def _backend(self):
        from . import _cffi_backend
        return _cffi_backend

    @property
    def _parser(self):
        """What code caching cdef() results reads and assigns: `_declarations` (a
        picklable snapshot) and `_int_constants` (see _decl_cache.py)."""
        return _decl_cache.Parser(self)

    def cdef(self, csource, override=False, packed=False, pack=None):
        """Parse C declarations (see the README for the accepted language)."""
        if packed not in (False, True):  # as cffi: 0/1 pass, other values are refused
            raise ValueError("'packed' should be False or True; use 'pack' to give another value")
        super().cdef(csource, override=override, packed=bool(packed), pack=pack)
        self._cdef_log.append((csource, bool(override), bool(packed), pack))
        if self._libs:
            _lib.sync(self)

    def include(self, ffi_to_include):
        """Makes the types, constants and enums that another FFI declared usable here
        (shared, as in cffi: the same records); libs opened later see them."""
        super().include(ffi_to_include)
        self._included_ffis.append(ffi_to_include)
        if self._libs:
            _lib.sync(self)

    def dlopen(self, name, flags=0, *, release_gil=True):
        """Open a C library; names without '/' are also searched with
        ctypes.util.find_library. release_gil=False keeps the GIL during calls
        (and then does not save errno for ffi.errno)."""
        if isinstance(name, str) and not name:
            # as cffi: "" is not a path, and find_library("") finds nothing
            raise OSError("ctypes.util.find_library() did not manage to locate a library "
                          "called ''")
        return _lib.dlopen(self, name, flags, release_gil)

    def dlclose(self, lib):
        """Close a library opened by dlopen(); later accesses to it raise."""
        _lib.dlclose(self, lib)

    def init_once(self, func, tag):
        """Run `func()` once per `tag` (thread-safe); later calls return the cached
        result. If func raises, nothing is cached and the exception propagates."""
        try:
            done, result = self._init_once_cache[tag]
            if done:
                return result
        except KeyError:
            pass
        with self._init_once_lock:
            entry = self._init_once_cache.get(tag)
            if entry is None:
                entry = self._init_once_cache[tag] = (False, _threading.Lock())
        done, lock = entry
        if done:
            return lock
        with lock:
            done, result = self._init_once_cache[tag]
            if done:
                return result
            result = func()
            self._init_once_cache[tag] = (True, result)
            return result

    def set_unicode(self, enabled_flag):
        """Windows' TCHAR switch; only recorded on Linux (once, as in cffi)."""
        if getattr(self, "_windows_unicode", None) is not None:
            raise ValueError("set_unicode() can only be called once")
        self._windows_unicode = bool(enabled_flag)

    # The out-of-line ABI mode's build side: _builder.py.
    def set_source(self, module_name, source, source_extension=".c", **kwds):
        """`set_source(module_name, None)`: prepares compile() / emit_python_code() to
        write the module `module_name` (a dotted name writes into packages). jitffi has
        no API mode: a C source string is a VerificationError."""
        _builder.set_source(self, module_name, source, source_extension, kwds)

    def emit_python_code(self, filename):
        """Writes the out-of-line module to `filename` (a path or a file-like object)."""
        _builder.emit_python_code(self, filename)

    def emit_c_code(self, filename):
        """API mode's C source: jitffi has no API mode yet; for an ABI-mode module
        (`set_source(name, None)`) a TypeError, as in cffi."""
        _builder.emit_c_code(self, filename)

    def distutils_extension(self, tmpdir="build", verbose=True):
        """API mode's extension: not built in jitffi (see emit_c_code)."""
        return _builder.distutils_extension(self, tmpdir, verbose)

    def compile(self, tmpdir=".", verbose=0, target=None, debug=None):
        """Writes the out-of-line module under `tmpdir` (`pkg._foo` -> tmpdir/pkg/_foo.py)
        and returns its path; an up-to-date file is left untouched."""
        return _builder.compile(self, tmpdir, verbose, target, debug)

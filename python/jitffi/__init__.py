"""jitffi: cffi's API in ABI mode, calling C through Cranelift-compiled trampolines.

`import jitffi as cffi` works: FFI, CDefError, FFIError, VerificationError,
VerificationMissing, __version__, __version_info__.
"""
import threading as _threading
import types as _types
import weakref as _weakref

from . import _jitffi
from ._jitffi import (CDefError, FFIError, VerificationError, VerificationMissing,
                      CType, CData, CField)

__version__ = "2.0.0"
__version_info__ = (2, 0, 0)

__all__ = ["FFI", "CDefError", "FFIError", "VerificationError", "VerificationMissing",
           "__version__", "__version_info__"]


class _LibWithGlobals(_types.ModuleType):
    """A lib whose ffi declares global variables. `lib.x = v` must write C memory, which
    needs `__setattr__`, which only a module subclass can have; libs without globals stay
    exact modules, whose attribute loads CPython specializes (see src/py/lib_object.rs)."""
    __slots__ = ()

    def __setattr__(self, name, value):
        _types.ModuleType.__getattribute__(self, "__loader__")._setattr(name, value)

    def __delattr__(self, name):
        raise AttributeError("cannot delete attribute %r of a library object" % (name,))


class FFI(_jitffi.FFI):
    """The FFI object. Hot methods (new, cast, typeof, sizeof, string, buffer, ...) are
    implemented in Rust by the base class; this subclass adds the slow-path ones."""

    def __init__(self, backend=None):
        # cffi accepts a backend module; jitffi has a single built-in backend.
        self._init_once_lock = _threading.Lock()
        self._init_once_cache = {}
        self._libs = _weakref.WeakKeyDictionary()  # lib module -> its state

    def cdef(self, csource, override=False, packed=False, pack=None):
        """Parse C declarations (see the README for the accepted language)."""
        super().cdef(csource, override=override, packed=packed, pack=pack)
        if self._libs:
            self._sync_libs()

    def include(self, ffi_to_include):
        super().include(ffi_to_include)
        if self._libs:
            self._sync_libs()

    def dlopen(self, name, flags=0, *, release_gil=True):
        """Open a C library; names without '/' are also searched with
        ctypes.util.find_library. release_gil=False keeps the GIL during calls."""
        lib = super().dlopen(name, flags, release_gil=release_gil)  # filled in already
        self._libs[lib] = lib.__loader__
        if self._declares_globals():
            lib.__class__ = _LibWithGlobals
        return lib

    def _sync_libs(self):
        # Libs see declarations made after dlopen, as in cffi.
        with_globals = self._declares_globals()
        for lib, state in list(self._libs.items()):
            state._sync()
            if with_globals and type(lib) is _types.ModuleType:
                lib.__class__ = _LibWithGlobals

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
        if getattr(self, "_windows_unicode", None) is not None:
            raise ValueError("set_unicode() can only be called once")
        self._windows_unicode = bool(enabled_flag)

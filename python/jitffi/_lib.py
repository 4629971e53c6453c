"""The cold glue around libs: opening (with the ctypes.util.find_library fallback),
making the module users get, emptying it at dlclose, and giving it __setattr__ once its
ffi declares global variables.

The hot parts are Rust (src/py/lib_object.rs): the lib's state (the module's
__loader__), which fills the module dict with the declared functions, so that `lib.f`
is a plain module attribute load CPython specializes; and __getattr__ for what needs
work at each access.
"""
import os as _os
import types as _types

_RTLD_NOW, _RTLD_LAZY = _os.RTLD_NOW, _os.RTLD_LAZY


class _LibWithGlobals(_types.ModuleType):
    """A lib whose ffi declares global variables. `lib.x = v` must write C memory, which
    needs `__setattr__`, which only a module subclass can have; libs without globals stay
    exact modules, whose attribute loads CPython specializes."""
    __slots__ = ()
    __module__ = "jitffi"  # where it has always been shown (and is re-exported)

    def __setattr__(self, name, value):
        _types.ModuleType.__getattribute__(self, "__loader__")._setattr(name, value)

    def __delattr__(self, name):
        raise AttributeError("cannot delete attribute %r of a library object" % (name,))


def dlopen(ffi, name, flags, release_gil, find_library=True):
    """`ffi.dlopen()`: the lib module for `name`, registered with `ffi` so that later
    declarations reach it. Without `find_library` (an out-of-line module's ffi, as in
    cffi) the name goes to dlopen() as it is."""
    if not flags & (_RTLD_NOW | _RTLD_LAZY):
        flags |= _RTLD_NOW  # as cffi: dlopen() refuses a mode with neither
    if find_library:
        state = _open(ffi, name, flags, release_gil)
    else:
        state = ffi._dlopen(name, flags, release_gil)
    # An exact module: any other type, even a module subclass, takes CPython's generic
    # attribute path for `lib.f`.
    lib = _types.ModuleType(state._name)
    namespace = lib.__dict__
    namespace["__loader__"] = state
    namespace["__dir__"] = state._dir
    state._attach(namespace)
    ffi._libs[lib] = state
    # As cffi: the ffi keeps every lib it opened alive (a function taken from a lib
    # works after the lib module itself is dropped).
    ffi._libraries.append(lib)
    if ffi._declares_globals():
        lib.__class__ = _LibWithGlobals
    return lib


def _open(ffi, name, flags, release_gil):
    # As in cffi: a name without '/' that dlopen does not find is looked up with
    # ctypes.util.find_library; the lib keeps the name it was asked for.
    try:
        return ffi._dlopen(name, flags, release_gil)
    except OSError as e:
        if not isinstance(name, str) or "/" in name:
            raise
        first = str(e)
    import ctypes.util
    path = ctypes.util.find_library(name)
    if path is None:
        raise OSError("%s.  Additionally, ctypes.util.find_library() did not manage "
                      "to locate a library called '%s'" % (first, name))
    return ffi._dlopen(name, flags, release_gil, path)


def dlclose(ffi, lib):
    """`ffi.dlclose(lib)`: later accesses raise; functions already taken keep the code
    mapped until they are gone."""
    ffi._dlclose(lib)  # checks `lib`, closes its handle
    # Forget the cached functions and constants, keep the module's own dunders, and send
    # every later access to __getattr__, which reports the library as closed.
    namespace = lib.__dict__
    namespace["__getattr__"] = namespace["__loader__"]._getattr
    for key in [k for k in namespace
                if not (isinstance(k, str) and k.startswith("__") and k.endswith("__"))]:
        del namespace[key]


def sync(ffi):
    """After a cdef/include: libs see declarations made after dlopen, as in cffi."""
    with_globals = ffi._declares_globals()
    for lib, state in list(ffi._libs.items()):
        state._sync()
        if with_globals and type(lib) is _types.ModuleType:
            lib.__class__ = _LibWithGlobals

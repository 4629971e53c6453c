"""jitffi's stand-in for cffi's `_cffi_backend`, the module out-of-line ABI modules
import: the module `ffi.compile()` writes imports it as `jitffi._cffi_backend`, and one
that cffi wrote (`import _cffi_backend`) works with it when that name resolves here.

`FFI(module_name, _version=..., _types=b'...', ...)` is the compiled FFI: the tables are
decoded and checked in Rust (src/py/ops/outofline.rs, src/ool/), and a normal jitffi FFI
declares each of their names when it is first used (a type string naming it, a lib
attribute), so every runtime method is the in-line one. A malformed table raises (an
ImportError, as cffi's reader gives for a wrong version); no FFI is returned then.
"""
import types as _types

from . import FFI as _InlineFFI
from . import _jitffi, _lib
from ._jitffi import CType, CField, FFIError  # noqa: F401  (part of the module's API)

__version__ = "2.0.0"

buffer = _jitffi.FFI.buffer
FFI_DEFAULT_ABI = _jitffi.FFI_DEFAULT_ABI
FFI_CDECL = _jitffi.FFI_CDECL
RTLD_LAZY = _jitffi.FFI.RTLD_LAZY
RTLD_NOW = _jitffi.FFI.RTLD_NOW
RTLD_GLOBAL = _jitffi.FFI.RTLD_GLOBAL
RTLD_LOCAL = _jitffi.FFI.RTLD_LOCAL
RTLD_NODELETE = _jitffi.FFI.RTLD_NODELETE
RTLD_NOLOAD = _jitffi.FFI.RTLD_NOLOAD
RTLD_DEEPBIND = _jitffi.FFI.RTLD_DEEPBIND

_NO_TABLES = b""
_NO_NAME = object()  # FFI() without a module name (None is refused, as in cffi)


_BUILDER_ONLY = frozenset(("cdef", "include", "set_source", "emit_python_code", "emit_c_code",
                           "distutils_extension", "compile", "set_unicode"))

# Public names the in-line FFI's __init__ sets on the instance (cffi has them as
# attributes too); any other public name is refused on a compiled FFI, as in cffi.
_INSTANCE_NAMES = frozenset(("BVoidP", "BCharA"))


def _class_has(name):
    # A descriptor of the class (ffi.errno) decides itself what setting it does.
    return any(name in k.__dict__ and name not in _BUILDER_ONLY for k in FFI.__mro__)


class _BuilderOnly:
    """A method of the builder FFI that a compiled FFI does not have (as in cffi)."""

    def __set_name__(self, owner, name):
        self._name = name

    def __get__(self, obj, objtype=None):
        raise AttributeError("'%s' object has no attribute '%s'"
                             % ((objtype or type(obj)).__name__, self._name))


class _CompiledFFIType(type):
    """The compiled FFI's metaclass: dir() leaves out the builder-only methods, which
    the class refuses (cffi's compiled FFI has no such names)."""

    def __dir__(cls):
        return [n for n in super().__dir__() if n not in _BUILDER_ONLY]


class FFI(_InlineFFI, metaclass=_CompiledFFIType):
    """The FFI of an out-of-line module: its declarations come from the tables the
    module passes, not from cdef()."""

    error = FFIError

    def __init__(self, module_name=_NO_NAME, _version=-1, _types=None, _globals=None,
                 _struct_unions=None, _enums=None, _typenames=None, _includes=None):
        # cffi's compiled FFI takes the module name as a str, or nothing.
        if module_name is _NO_NAME:
            module_name = None
        elif not isinstance(module_name, str):
            raise TypeError("FFI() argument 1 must be str, not %s"
                            % ("None" if module_name is None else type(module_name).__name__,))
        super().__init__()
        if _version == -1:
            _version = None
        includes = () if _includes is None else tuple(_includes)
        tables = []
        for inc in includes:
            if not isinstance(inc, FFI):
                raise TypeError("_includes: expected the ffi objects of out-of-line "
                                "modules, got %r" % (type(inc).__name__,))
            tables.append(inc._ool)
        name = "" if module_name is None else str(module_name)
        self._module_name = name
        self._ool = self._load_tables(name, _version, _NO_TABLES if _types is None else _types,
                                      _globals, _struct_unions, _enums, _typenames, tables)
        # (the included modules' typedefs, tags and constants are looked up through
        # their tables when first named, as this module's own are)
        self._ool_includes = includes

    cdef = _BuilderOnly()
    include = _BuilderOnly()
    set_source = _BuilderOnly()
    emit_python_code = _BuilderOnly()
    emit_c_code = _BuilderOnly()
    distutils_extension = _BuilderOnly()
    compile = _BuilderOnly()
    set_unicode = _BuilderOnly()

    def __setattr__(self, name, value):
        # cffi's compiled FFI has no instance dict; a subclass's instances have one.
        if (type(self) is FFI and not name.startswith("_") and name not in _INSTANCE_NAMES
                and not _class_has(name)):
            raise AttributeError("'_cffi_backend.FFI' object has no attribute '%s'" % (name,))
        _InlineFFI.__setattr__(self, name, value)

    def __delattr__(self, name):
        if type(self) is FFI and not name.startswith("_") and not _class_has(name):
            raise AttributeError("'_cffi_backend.FFI' object has no attribute '%s'" % (name,))
        _InlineFFI.__delattr__(self, name)

    def dlopen(self, name, flags=0, *, release_gil=True):
        """Opens the library: `name` goes to dlopen() as it is (no find_library), as
        with cffi's compiled FFI."""
        return _lib.dlopen(self, name, flags, release_gil, find_library=False)

    def sizeof(self, cdecl):
        """As in-line, but a type of unknown size is `ffi.error` here, as with cffi's
        compiled FFI."""
        try:
            return _InlineFFI.sizeof(self, cdecl)
        except ValueError:
            if isinstance(cdecl, str):
                ct = self.typeof(cdecl)
            elif isinstance(cdecl, CType):
                ct = cdecl
            else:
                raise
            raise FFIError("don't know the size of ctype '%s'" % (ct.cname,)) from None

    def list_types(self):
        """The names the module declares: (typedef names, struct names, union names),
        each sorted; nothing is realized to answer."""
        return self._ool.list_types()

    def integer_const(self, name):
        """The value of the integer constant or enumerator `name`."""
        for ffi in self._search_order():
            v = ffi._ool.integer_const(name)
            if v is not None:
                return v
        raise AttributeError("integer constant '%s' not found" % (name,))

    def _search_order(self):
        yield self
        for inc in self._ool_includes:
            yield from inc._search_order()

    def __repr__(self):
        return "<jitffi._cffi_backend.FFI object for %r>" % (self._module_name,)


# What `ffi.dlopen()` gives is a module in jitffi (attribute loads CPython specializes).
Lib = _types.ModuleType


def _get_common_types(d):
    """Fills `d` with the type names cffi knows without a cdef that are not C keywords,
    each mapped to the C type it stands for (as cffi's backend does on Linux)."""
    d["FILE"] = "struct _IO_FILE"
    d["bool"] = "_Bool"

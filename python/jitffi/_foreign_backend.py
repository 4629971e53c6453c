"""`FFI(backend=obj)` with a backend object of the caller's own (cffi's tests pass fake
backends that build strings): jitffi parses the declarations, and each type and library
object is then made by calling `obj`'s methods as cffi's front end calls them
(`new_primitive_type`, `new_pointer_type`, `new_array_type`, `new_function_type`,
`new_struct_type` + `complete_struct_or_union`, `load_library`, `load_function`...).
jitffi's own calls never go through such an FFI: it is the protocol, not a call path.
"""
import os

__all__ = ["is_foreign", "ForeignBackendFFI"]


def is_foreign(backend):
    """Whether `backend` is an object of the caller's that builds the types itself (not
    jitffi's backend, nor a stand-in marked `__jitffi__`)."""
    if backend is None or getattr(backend, "__jitffi__", False):
        return False
    import sys
    if backend is sys.modules.get("jitffi._cffi_backend"):
        return False
    return hasattr(backend, "new_primitive_type") and hasattr(backend, "new_pointer_type")


class ForeignBackendFFI:
    """The runtime surface of cffi's FFI over a foreign backend: cdef, typeof, sizeof,
    cast, dlopen (attributes: functions, variables, constants)."""

    def __init__(self, backend):
        from . import FFI
        self._backend = backend
        self._declarations = FFI()   # parses and checks; never called through
        self._btypes = {}            # id(CType) -> (CType, backend type)
        # (what cffi's FFI makes at its creation, in its order)
        self.BVoidP = self.typeof("void *")
        self.BCharA = self.typeof("char[]")
        self.NULL = self.cast(self.BVoidP, 0)

    def cdef(self, csource, override=False, packed=False, pack=None):
        self._declarations.cdef(csource, override=override, packed=packed, pack=pack)
        self._btypes.clear()  # a redeclared name may name another type now

    def typeof(self, cdecl):
        """The backend's type for a C type string (or a jitffi CType); a backend type is
        returned as it is."""
        from . import CType
        if isinstance(cdecl, str):
            cdecl = self._declarations.typeof(cdecl)
        if isinstance(cdecl, CType):
            return self._btype(cdecl)
        return cdecl

    def sizeof(self, cdecl):
        return self._backend.sizeof(self.typeof(cdecl))

    def cast(self, cdecl, source):
        return self._backend.cast(self.typeof(cdecl), source)

    def _btype(self, ct):
        known = self._btypes.get(id(ct))
        if known is not None:
            return known[1]
        b = self._backend
        kind = ct.kind
        if kind == "void":
            bt = b.new_void_type()
        elif kind == "primitive":
            bt = b.new_primitive_type(ct.cname)
        elif kind == "pointer":
            bt = b.new_pointer_type(self._btype(ct.item))
        elif kind == "array":
            bt = b.new_array_type(b.new_pointer_type(self._btype(ct.item)), ct.length)
        elif kind == "function":
            # (array parameters arrive as pointers: ct.args are already decayed)
            bt = b.new_function_type(tuple(self._btype(a) for a in ct.args),
                                     self._btype(ct.result), ct.ellipsis)
        elif kind in ("struct", "union"):
            # (named as cffi names it: "struct s", or a typedef's name for an anonymous one)
            maker = b.new_struct_type if kind == "struct" else b.new_union_type
            bt = maker(ct.cname)
            self._btypes[id(ct)] = (ct, bt)  # before the fields: they may point back
            if ct.fields is not None:
                fields = [(fname, self._btype(f.type), f.bitsize) for fname, f in ct.fields]
                b.complete_struct_or_union(bt, fields, None, -1, -1)
            return bt
        elif kind == "enum":
            # (the enumerators in declaration order: `relements` keeps it)
            names = tuple(n for n, _ in ct._enumerators)
            values = tuple(v for _, v in ct._enumerators)
            base = _enum_base(b, lambda c: self._btype(self._declarations.typeof(c)), values)
            bt = b.new_enum_type(ct.cname, names, values, base)
        else:
            raise TypeError("FFI(backend=...): cannot build the type %r" % (ct,))
        self._btypes[id(ct)] = (ct, bt)
        return bt

    def dlopen(self, name, flags=0):
        return _ForeignLib(self, _load_library(self._backend, name, flags))


def _enum_base(backend, bt_of, values):
    """The integer type cffi gives an enum: int or long when a value is negative, else
    unsigned int or unsigned long, the first whose size (as the backend says) holds all
    `values`."""
    lo, hi = (min(values), max(values)) if values else (0, 0)
    signed = lo < 0
    for cname in (("int", "long") if signed else ("unsigned int", "unsigned long")):
        bt = bt_of(cname)
        bits = 8 * backend.sizeof(bt)
        if lo >= -(1 << (bits - 1)) and hi < (1 << (bits - signed)):
            return bt
    from . import CDefError
    raise CDefError("values don't all fit into either 'long' or 'unsigned long'")


def _load_library(backend, name, flags):
    """cffi's library lookup: a path (or None) as given, else `find_library(name)`."""
    if not isinstance(name, str):
        return backend.load_library(name, flags)
    first_error = None
    if "." in name or "/" in name or os.sep in name:
        try:
            return backend.load_library(name, flags)
        except OSError as e:
            first_error = e
    import ctypes.util  # (only here: a slow import that in-line use does not need)
    path = ctypes.util.find_library(name)
    if path is None:
        if first_error is not None:
            raise first_error
        raise OSError("ctypes.util.find_library() did not manage to locate a library "
                      "called %r" % (name,))
    return backend.load_library(path, flags)


class _ForeignLib:
    """Attributes looked up at each access, as declared now (cdef(override=True) can
    change them)."""

    def __init__(self, ffi, backendlib):
        self.__dict__["_ffi"] = ffi
        self.__dict__["_lib"] = backendlib

    def _declared(self, name):
        found = self._ffi._declarations._declared(name)
        if found is None:
            raise AttributeError(name)
        return found

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        kind, what = self._declared(name)
        if kind == "constant":
            return what
        bt = self._ffi._btype(what)
        if kind == "function":
            return self._lib.load_function(bt, name)
        return self._lib.read_variable(bt, name)

    def __setattr__(self, name, value):
        kind, what = self._declared(name)
        if kind != "variable":
            raise AttributeError("cannot assign to %r: not a global variable" % (name,))
        self._lib.write_variable(self._ffi._btype(what), name, value)

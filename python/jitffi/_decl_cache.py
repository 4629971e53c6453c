"""`ffi._parser`: what code that caches cdef() results reaches into.

Published libraries pickle `ffi._parser._declarations` and `ffi._parser._int_constants`
after cdef() and, in a later process, assign them back instead of calling cdef(). In
jitffi the declarations live in Rust, so `_declarations` is a DeclarationsSnapshot: the
cdef() calls that made them (source and options), picklable with nothing but the class
and plain values; assigning it back replays those calls, so the ffi ends up exactly as
declared (jitffi's parser is fast enough that this replaces what the cache saved).

A cache that real cffi wrote holds cffi.model objects: assigning it is refused with an
FFIError, before anything is declared, never leaving a half-declared ffi.
"""
import sys

from ._jitffi import FFIError


class ForeignModelObject:
    """Base of the stand-in cffi.model classes (under JITFFI_AS_CFFI): what unpickling a
    cache written by real cffi gives. jitffi cannot declare anything from them."""


class DeclarationsSnapshot:
    """The cdef() calls that made an ffi's declarations, in order, each as
    (csource, override, packed, pack); also a read-only mapping keyed as cffi's parser
    keys its declarations (`"function f"`, `"typedef t"`, `"struct s"`, `"macro M"`, ...)
    for code that lists them. Its values are `(None, 0)`: jitffi has no cffi.model types
    to give."""

    __slots__ = ("_cdefs", "_keys")

    def __init__(self, cdefs=(), keys=()):
        cdefs = tuple(cdefs)
        for entry in cdefs:
            if not (isinstance(entry, tuple) and len(entry) == 4 and isinstance(entry[0], str)):
                raise TypeError("DeclarationsSnapshot: expected (csource, override, packed, "
                                "pack) tuples, got %r" % (entry,))
        self._cdefs = cdefs
        self._keys = tuple(str(k) for k in keys)

    def __reduce__(self):
        # Under the switch pickles name `cffi.model.DeclarationsSnapshot` (what a cache
        # restricted to cffi.model classes accepts); otherwise this class.
        model = sys.modules.get("cffi.model")
        cls = DeclarationsSnapshot
        if model is not None and getattr(model, "__jitffi__", False):
            cls = model.DeclarationsSnapshot
        return (cls, (self._cdefs, self._keys))

    def __eq__(self, other):
        if not isinstance(other, DeclarationsSnapshot):
            return NotImplemented
        return self._cdefs == other._cdefs

    def __hash__(self):
        return hash(self._cdefs)

    def __len__(self):
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys)

    def __contains__(self, key):
        return key in self._keys

    def __getitem__(self, key):
        if key not in self._keys:
            raise KeyError(key)
        return (None, 0)

    def get(self, key, default=None):
        return self[key] if key in self._keys else default

    def keys(self):
        return list(self._keys)

    def values(self):
        return [(None, 0)] * len(self._keys)

    def items(self):
        return [(k, (None, 0)) for k in self._keys]

    def __repr__(self):
        return "<jitffi declarations snapshot: %d declaration(s) from %d cdef() call(s)>" % (
            len(self._keys), len(self._cdefs))


def _is_real_cffi_cache(value):
    if not isinstance(value, dict):
        return False
    for v in value.values():
        obj = v[0] if isinstance(v, tuple) and v else v
        if isinstance(obj, ForeignModelObject) or type(obj).__module__ == "cffi.model":
            return True
    return False


class Parser:
    """`ffi._parser`: `_declarations` and `_int_constants`, readable and assignable."""

    __slots__ = ("_ffi",)

    def __init__(self, ffi):
        self._ffi = ffi

    @property
    def _declarations(self):
        return DeclarationsSnapshot(self._ffi._cdef_log, self._ffi._declared_keys())

    @_declarations.setter
    def _declarations(self, value):
        ffi = self._ffi
        if isinstance(value, DeclarationsSnapshot):
            done = tuple(ffi._cdef_log)
            wanted = value._cdefs
            if wanted[:len(done)] != done:
                raise FFIError("ffi._parser._declarations: this ffi already has declarations "
                               "that the snapshot assigned does not start with; assign it to "
                               "a fresh FFI()")
            for csource, override, packed, pack in wanted[len(done):]:
                ffi.cdef(csource, override=override, packed=packed, pack=pack)
            _check_constants(ffi)
            return
        if isinstance(value, dict) and not value and not ffi._cdef_log:
            return
        if _is_real_cffi_cache(value):
            raise FFIError("ffi._parser._declarations: this value holds cffi.model objects "
                           "(a parse cache written by real cffi); jitffi cannot declare from "
                           "it. Delete the cache so that the program calls ffi.cdef() again.")
        raise FFIError("ffi._parser._declarations: expected what reading it from a jitffi "
                       "ffi gave (a DeclarationsSnapshot), got %s" % (type(value).__name__,))

    @property
    def _int_constants(self):
        return dict(self._ffi._int_constants())

    @_int_constants.setter
    def _int_constants(self, value):
        if not isinstance(value, dict):
            raise TypeError("ffi._parser._int_constants: expected a dict, got %s"
                            % (type(value).__name__,))
        # Checked against the declarations (now, and again once they are assigned):
        # the values come from them, they cannot be set on their own.
        self._ffi._pending_int_constants = dict(value)
        if self._ffi._cdef_log:
            _check_constants(self._ffi)


def _check_constants(ffi):
    pending = ffi._pending_int_constants
    if pending is None:
        return
    actual = dict(ffi._int_constants())
    if pending != actual:
        raise FFIError("ffi._parser._int_constants: the value assigned does not match the "
                       "declarations (it belongs to another cdef)")
    ffi._pending_int_constants = None

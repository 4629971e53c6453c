"""FFI(backend=obj) with a backend object of the caller's own: the types and library
objects are what `obj` builds when called as cffi's front end calls it. Compared with
real cffi over the same backend class."""
import pytest

import cffi as real_cffi  # installed by .ci/setup
import jitffi


class T:
    """A backend type: its description (cffi keeps backend types in weak caches)."""

    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text


class StringBackend:
    """Builds every type as a string describing it, and records the calls made."""

    def __init__(self):
        self.calls = []

    def nonstandard_integer_types(self):
        return {}

    def sizeof(self, bt):
        return len(str(bt))

    def load_library(self, name, flags):
        self.calls.append(("load_library", name is None or "libm" in name, flags))
        return StringLibrary(self)

    def new_void_type(self):
        return T("<void>")

    def new_primitive_type(self, name):
        return T("<%s>" % name)

    def new_pointer_type(self, item):
        return T("<pointer to %s>" % (item,))

    def new_array_type(self, ptr, length):
        return T("<array %s x %s>" % (ptr, length))

    def new_function_type(self, args, result, ellipsis, *abi):
        return T("<func (%s), %s, %s>" % (", ".join(map(str, args)), result, ellipsis))

    def new_struct_type(self, name):
        return Record("struct", name)

    def new_union_type(self, name):
        return Record("union", name)

    def complete_struct_or_union(self, rec, fields, tp=None, totalsize=-1,
                                 totalalignment=-1, *flags):
        rec.fields = [(n, str(t), b) for n, t, b in fields]

    def new_enum_type(self, name, names, values, base):
        return T("<%s %s %s %s>" % (name, list(names), list(values), base))

    def cast(self, bt, value):
        return ("cast", bt, value)

    def _get_types(self):
        return "CData", "CType"

    buffer = "buffer type"


class Record:
    def __init__(self, kind, name):
        self.kind, self.name, self.fields = kind, name, None

    def __str__(self):
        return "<%s %s %s>" % (self.kind, self.name, self.fields)


class StringLibrary:
    def __init__(self, backend):
        self.backend = backend

    def load_function(self, bt, name):
        return ("function", name, str(bt))

    def read_variable(self, bt, name):
        return ("variable", name, str(bt))

    def write_variable(self, bt, name, value):
        self.backend.calls.append(("write_variable", name, str(bt), value))


CDEF = """
    typedef unsigned int UInt;
    typedef UInt UIntReally;
    typedef struct { int a, b; } foo_t, *foo_p;
    struct node { struct node *next; long v[3]; };
    union u { int i; double d; };
    enum color { RED, GREEN = 5, BLUE = -2 };
    enum big { HUGE = 0x100000000 };
    double sin(double x);
    int pipe(int pipefd[2]);
    short vfoo(int, ...);
    UInt none(void);
    int takes(foo_p[], struct node *, union u *, int (*cb)(char, float));
    extern long counter;
    #define ANSWER 42
    static const int SEVEN = 7;
"""

TYPES = ["enum color", "enum big", "int", "UIntReally", "foo_t", "foo_p", "struct node", "union u", "char *[4]",
         "int(*)(int, ...)", "void *", "double(*[2])(void)"]
NAMES = ["sin", "pipe", "vfoo", "none", "takes", "counter", "ANSWER", "SEVEN"]


def observe(module):
    backend = StringBackend()
    ffi = module.FFI(backend=backend)
    ffi.cdef(CDEF)
    out = [str(ffi.typeof(t)) for t in TYPES]
    out += [str(ffi.BVoidP), str(ffi.BCharA), (ffi.NULL[0], str(ffi.NULL[1]), ffi.NULL[2])]
    out.append(ffi.sizeof("UInt"))
    kind, bt, value = ffi.cast("foo_p", 5)
    out.append((kind, str(bt), value))
    lib = ffi.dlopen("m")
    out += [getattr(lib, n) for n in NAMES]
    lib.counter = 9
    with pytest.raises(AttributeError):
        lib.not_declared
    ffi.cdef("long none(void);", override=True)
    out.append(lib.none)
    return out, backend.calls


def test_types_and_lib_over_a_foreign_backend_as_cffi():
    got = observe(jitffi)
    want = observe(real_cffi)
    assert got == want
    assert got[0][3] == "<unsigned int>"
    assert got[0][15 + 2][0] == "function"
    assert got[0][12] == "<pointer to <void>>"


def test_foreign_backend_errors_are_cdef_errors():
    ffi = jitffi.FFI(backend=StringBackend())
    with pytest.raises(jitffi.CDefError):
        ffi.cdef("int f(")
    with pytest.raises(jitffi.CDefError):
        ffi.typeof("no_such_t")
    # jitffi's own FFI is not affected by the foreign one
    assert isinstance(jitffi.FFI(), jitffi.FFI)

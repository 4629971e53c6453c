"""Calls into a C library compiled in the test setup, through JIT trampolines."""
import gc
import math
import struct
import sys
import threading
import time

import pytest

sys.path.insert(0, __import__("os").path.dirname(__file__))
import clib_calls  # noqa: E402

import jitffi  # noqa: E402
from conftest import ARCH, build_clib  # noqa: E402


@pytest.fixture(scope="module")
def ffi():
    f = jitffi.FFI()
    f.cdef(clib_calls.CDEF)
    return f


@pytest.fixture(scope="module")
def lib(ffi):
    return ffi.dlopen(clib_calls.calls_lib_path())


INT_TYPES = [
    # (function, bits, signed)
    ("id_schar", 8, True), ("id_uchar", 8, False), ("id_short", 16, True),
    ("id_ushort", 16, False), ("id_int", 32, True), ("id_uint", 32, False),
    ("id_long", 64, True), ("id_ulong", 64, False), ("id_llong", 64, True),
    ("id_ullong", 64, False), ("id_i8", 8, True), ("id_u8", 8, False),
    ("id_i16", 16, True), ("id_u16", 16, False), ("id_i32", 32, True),
    ("id_u32", 32, False), ("id_i64", 64, True), ("id_u64", 64, False),
    ("id_size", 64, False), ("id_ssize", 64, True), ("id_intptr", 64, True),
]


def bounds(bits, signed):
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


@pytest.mark.parametrize("name,bits,signed", INT_TYPES)
def test_integer_limits_round_trip(lib, name, bits, signed):
    f = getattr(lib, name)
    lo, hi = bounds(bits, signed)
    for v in (lo, lo + 1, 0, 1, 2, 1 << 29, (1 << 30) + 5, hi - 1, hi):
        if lo <= v <= hi:
            assert f(v) == v, (name, v)
            assert type(f(v)) is int


@pytest.mark.parametrize("name,bits,signed", INT_TYPES)
def test_integer_overflow_raises(lib, name, bits, signed):
    f = getattr(lib, name)
    lo, hi = bounds(bits, signed)
    with pytest.raises(OverflowError):
        f(hi + 1)
    with pytest.raises(OverflowError):
        f(lo - 1)
    with pytest.raises(OverflowError):
        f(1 << 200)


@pytest.mark.parametrize("name,bits,signed", INT_TYPES[:6])
def test_integer_rejects_float_and_str(lib, name, bits, signed):
    f = getattr(lib, name)
    with pytest.raises(TypeError):
        f(1.0)
    with pytest.raises(TypeError):
        f("1")
    with pytest.raises(TypeError):
        f(None)


def test_integer_accepts_index_objects(lib):
    class Idx:
        def __index__(self):
            return 77
    assert lib.id_int(Idx()) == 77
    assert lib.id_int(True) == 1


def test_narrow_arguments_are_extended_correctly(lib):
    assert lib.widen_schar(-1) == -1
    assert lib.widen_schar(-128) == -128
    assert lib.widen_uchar(255) == 255
    assert lib.widen_short(-32768) == -32768
    assert lib.widen_int(-(2**31)) == -(2**31)
    assert lib.id_uint(2**32 - 1) == 2**32 - 1


def test_bool(lib):
    assert lib.id_bool(True) is True
    assert lib.id_bool(False) is False
    assert lib.id_bool(1) is True
    assert lib.bool_to_int(True) == 1
    assert lib.bool_to_int(0) == 0
    with pytest.raises(OverflowError):
        lib.id_bool(2)
    with pytest.raises(OverflowError):
        lib.id_bool(-1)


def test_char(lib):
    assert lib.id_char(b"a") == b"a"
    assert lib.next_char(b"a") == b"b"
    assert lib.char_code(b"\xff") == 255
    assert lib.id_char(b"\x00") == b"\x00"
    with pytest.raises(TypeError):
        lib.id_char(b"ab")
    with pytest.raises(TypeError):
        lib.id_char(97)


def test_wchar(lib):
    assert lib.id_wchar("x") == "x"
    assert lib.id_wchar("\u20ac") == "\u20ac"
    assert lib.id_wchar("\U0001F600") == "\U0001F600"


PLAIN_C = r"""
#include <wchar.h>
int char_is_signed(void) { return (char)-1 < 0; }
int wchar_is_signed(void) { return (wchar_t)-1 < 0; }
int char_as_int(char c) { return c; }
long wchar_as_long(wchar_t w) { return w; }
int call_char_cb(char (*cb)(void)) { return cb(); }
long call_wchar_cb(wchar_t (*cb)(void)) { return cb(); }
"""


def test_plain_char_and_wchar_signedness_per_target():
    # Linux: plain char and wchar_t are signed on x86_64 and unsigned on aarch64; the byte
    # and the code unit cross the call unchanged, and C widens them by its own rule.
    f = jitffi.FFI()
    f.cdef("""int char_is_signed(void); int wchar_is_signed(void); int char_as_int(char c);
              long wchar_as_long(wchar_t w); int call_char_cb(char (*cb)(void));
              long call_wchar_cb(wchar_t (*cb)(void));""")
    lib = f.dlopen(build_clib("plain_char", PLAIN_C))
    signed = {"x86_64": True, "aarch64": False}[ARCH]
    assert lib.char_is_signed() == signed
    assert lib.wchar_is_signed() == signed
    assert lib.char_as_int(b"\xff") == (-1 if signed else 255)
    assert lib.char_as_int(b"\x7f") == 127
    assert lib.call_char_cb(f.callback("char(void)", lambda: b"\x80")) == (-128 if signed else 128)
    assert int(f.cast("wchar_t", -1)) == (-1 if signed else 2**32 - 1)  # as cffi
    assert int(f.cast("char", 255)) == 255  # as cffi: the byte's value on both
    assert lib.wchar_as_long("\U0010FFFF") == 0x10FFFF
    assert lib.call_wchar_cb(f.callback("wchar_t(void)", lambda: "\u20ac")) == 0x20AC


def test_floats(lib):
    assert lib.id_double(1.5) == 1.5
    assert lib.id_double(-0.0) == 0.0 and math.copysign(1, lib.id_double(-0.0)) == -1
    assert lib.id_double(1e308) == 1e308
    assert lib.id_double(5e-324) == 5e-324
    assert math.isinf(lib.id_double(float("inf")))
    assert math.isnan(lib.id_double(float("nan")))
    assert lib.id_double(3) == 3.0  # ints accepted
    f32 = struct.unpack("f", struct.pack("f", 0.1))[0]
    assert lib.id_float(0.1) == f32
    assert lib.float_to_double(0.1) == f32
    assert lib.id_float(3.4028234663852886e38) == 3.4028234663852886e38
    assert lib.add_f(1.25, 2.5) == 3.75
    assert lib.add_d(1.0, 2.0) == 3.0
    with pytest.raises(TypeError):
        lib.id_double("1.0")
    with pytest.raises(TypeError):
        lib.id_double(None)


def test_basic_calls(lib):
    assert lib.add_i(1, 2) == 3
    assert lib.add_i(-5, 3) == -2
    assert lib.add_i(2**31 - 1, 0) == 2**31 - 1
    assert lib.add_ll(2**62, 2**62 - 1) == 2**63 - 1
    assert lib.noop() is None
    assert lib.sum8(1, 2, 3, 4, 5, 6, 7, 8) == 36


def test_more_arguments_than_registers(lib):
    ints = [3, -7, 11, 100000, -2**31, 2**31 - 1, 0, 9, -1, 42]
    dbls = [0.5, -1.25, 3e10, 7.0, -2.5, 1e-3, 123.456, -9.75, 0.0, 8.5]
    args = []
    for i, d in zip(ints, dbls):
        args += [i, d]
    expected = sum((k + 1) * i + (k + 1) * 0.5 * d for k, (i, d) in enumerate(zip(ints, dbls)))
    assert lib.mix20(*args) == pytest.approx(expected, rel=1e-15)
    longs = [1, -2, 3, -4, 5, -6, 7, -8, 2**40, -(2**40)]
    assert lib.many_longs(*longs) == sum((k + 1) * v for k, v in enumerate(longs))
    assert lib.narrow_stack(1, 2, 3, 4, 5, 6, -3, -300, 200, -7) == 21 - 3000 - 3000 + 200 * 100000 - 7
    assert lib.floats_many(*([0.5] * 9 + [2.0])) == 0.5 * 9 + 20.0


def test_wrong_argument_count(lib):
    with pytest.raises(TypeError) as e:
        lib.add_i(1)
    assert "2 arguments" in str(e.value) and "got 1" in str(e.value)
    with pytest.raises(TypeError):
        lib.add_i(1, 2, 3)
    with pytest.raises(TypeError):
        lib.noop(1)


def test_pointers_round_trip_and_out_params(ffi, lib):
    assert lib.is_null(ffi.NULL) == 1
    p = ffi.new("int *", 5)
    assert lib.is_null(p) == 0
    assert lib.deref_int(p) == 5
    lib.set_int(p, -9)
    assert p[0] == -9
    q = lib.int_ptr_id(p)
    assert ffi.typeof(q) is ffi.typeof("int *")
    assert q == p and q[0] == -9
    v = lib.void_ptr_id(p)
    assert ffi.typeof(v) is ffi.typeof("void *")
    assert int(ffi.cast("intptr_t", v)) == int(ffi.cast("intptr_t", p))
    qq, rr = ffi.new("int *"), ffi.new("int *")
    lib.divmod(17, 5, qq, rr)
    assert (qq[0], rr[0]) == (3, 2)
    arr = ffi.new("double[5]")
    lib.fill_doubles(arr, 5)
    assert list(arr) == [0.0, 1.5, 3.0, 4.5, 6.0]
    assert lib.int_ptr_id(ffi.NULL) == ffi.NULL


def test_arrays_from_lists_and_cdata(ffi, lib):
    assert lib.sum_ints([1, 2, 3, 4], 4) == 10
    assert lib.sum_ints((10, 20, 30), 3) == 60
    assert lib.sum_ints(ffi.new("int[]", list(range(100))), 100) == 4950
    assert lib.sum_doubles([0.5, 0.25], 2) == 0.75
    with pytest.raises(OverflowError):
        lib.sum_ints([1, 2**40], 2)
    with pytest.raises(TypeError):
        lib.sum_ints([1, "x"], 2)


def test_pointer_type_errors(ffi, lib):
    with pytest.raises(TypeError):
        lib.deref_int(ffi.new("double *"))
    with pytest.raises(TypeError):
        lib.deref_int(5)
    with pytest.raises(TypeError):
        lib.is_null(None)
    # void * takes any pointer
    assert lib.is_null(ffi.new("double *")) == 0


def test_strings(ffi, lib):
    assert lib.my_strlen(b"hello world") == 11
    assert lib.my_strlen(b"") == 0
    s = lib.greeting()
    assert ffi.typeof(s) is ffi.typeof("char *")
    assert ffi.string(s) == b"hello from C"
    buf = ffi.new("char[32]")
    r = lib.upcase_into(buf, b"abc-xyz")
    assert ffi.string(buf) == b"ABC-XYZ"
    assert ffi.string(r) == b"ABC-XYZ"
    assert lib.wide_len("h\u00e9llo") == 5
    with pytest.raises(TypeError):
        lib.my_strlen("text")


def test_function_pointers(ffi, lib):
    add = lib.get_add()
    assert ffi.typeof(add) is ffi.typeof("int(*)(int, int)")
    assert add(20, 22) == 42
    with pytest.raises(TypeError):
        add(1)
    assert lib.apply(add, 3, 4) == 7
    assert lib.apply(ffi.addressof(lib, "add_i"), 5, 6) == 11
    assert lib.apply(lib.add_i, 1, 1) == 2
    f = ffi.cast("int(*)(int, int)", add)
    assert f(1, 2) == 3
    ffi2 = jitffi.FFI()
    ffi2.cdef("size_t strlen(const char *);")
    libc = ffi2.dlopen(None)
    strlen_ptr = ffi2.addressof(libc, "strlen")
    assert strlen_ptr(b"abcd") == 4


def test_enums(lib):
    assert lib.RED == 0 and lib.GREEN == 5 and lib.BLUE == 6
    assert lib.next_color(lib.RED) == 5
    assert lib.next_color(5) == 6
    assert lib.color_value(lib.BLUE) == 6


def test_varargs(ffi, lib):
    c = ffi.cast
    assert lib.sum_va(3, c("int", 1), c("int", 2), c("int", 39)) == 42
    assert lib.sum_va(0) == 0
    # char and short cdata are promoted to int
    assert lib.sum_va(3, c("char", 5), c("short", -7), c("unsigned char", 250)) == 248
    assert lib.sum_va_d(2, c("double", 1.5), c("float", 2.25)) == 3.75
    p = ffi.new("int *", 1000)
    assert lib.sum_va_mixed(b"ildp", c("int", 1), c("long", 2**40), c("double", 0.5), p) == int(1 + 2**40 + 0.5 + 1000)
    # many varargs: past the registers
    many = [c("double", float(i)) for i in range(12)]
    assert lib.sum_va_d(12, *many) == sum(range(12))
    with pytest.raises(TypeError) as e:
        lib.sum_va(1, 5)
    assert "argument 2 passed in the variadic part needs to be a cdata object (got int)" in str(e.value)
    with pytest.raises(TypeError):
        lib.sum_va()


def test_snprintf_from_libc(ffi):
    f = jitffi.FFI()
    f.cdef("int snprintf(char *buf, size_t n, const char *fmt, ...);")
    libc = f.dlopen(None)
    buf = f.new("char[100]")
    n = libc.snprintf(buf, 100, b"%d|%s|%.2f|%ld|%c", f.cast("int", -42), f.new("char[]", b"str"),
                      f.cast("double", 3.14159), f.cast("long", 2**40), f.cast("int", ord("Z")))
    assert f.string(buf) == b"-42|str|3.14|1099511627776|Z"
    assert n == len(b"-42|str|3.14|1099511627776|Z")
    p = f.new("int *")
    libc.snprintf(buf, 100, b"%p", p)
    assert int(f.string(buf), 16) == int(f.cast("intptr_t", p))


def test_global_variables(ffi, lib):
    assert lib.g_counter == 42
    lib.g_counter = 10
    assert lib.get_counter() == 10
    lib.bump()
    assert lib.g_counter == 11
    lib.g_counter = 42
    assert lib.g_const == 7
    with pytest.raises(AttributeError):
        lib.g_const = 8
    assert lib.g_ratio == 0.5
    lib.g_ratio = 0.25
    assert lib.g_ratio == 0.25
    t = lib.g_table
    assert ffi.typeof(t) is ffi.typeof("int[4]")
    assert list(t) == [1, 2, 3, 4]
    t[1] = 20
    assert lib.g_table[1] == 20
    t[1] = 2
    assert ffi.string(lib.g_name) == b"jitffi"
    with pytest.raises(OverflowError):
        lib.g_counter = 2**40
    with pytest.raises(AttributeError):
        lib.not_declared = 3


def test_constants_and_dir(lib):
    assert lib.ANSWER == 42
    assert lib.MASK == 0xFF
    assert lib.LIMIT == 100
    names = dir(lib)
    for n in ("add_i", "g_counter", "ANSWER", "LIMIT", "sum_va"):
        assert n in names


def test_addressof_lib(ffi, lib):
    p = ffi.addressof(lib, "g_counter")
    assert ffi.typeof(p) is ffi.typeof("int *")
    assert p[0] == lib.g_counter
    f = ffi.addressof(lib, "add_i")
    assert ffi.typeof(f) is ffi.typeof("int(*)(int, int)")
    assert f(2, 2) == 4
    with pytest.raises(AttributeError):
        ffi.addressof(lib, "nothing_like_this")


def test_missing_symbols(ffi, lib):
    with pytest.raises(AttributeError) as e:
        lib.missing_function
    assert "missing_function" in str(e.value)
    # cffi looks declared variables up by key: a missing one is its KeyError
    with pytest.raises(KeyError, match="variable 'missing_variable' not found in library"):
        lib.missing_variable
    with pytest.raises(KeyError, match="missing_variable"):
        lib.missing_variable = 3
    with pytest.raises(AttributeError):
        lib.never_declared


def test_function_attribute_is_cached(lib):
    assert lib.add_i is lib.add_i
    assert "add_i" in vars(lib)


def test_dlopen_errors(ffi):
    with pytest.raises(OSError) as e:
        ffi.dlopen("/nonexistent/libnothing.so")
    assert "libnothing" in str(e.value)
    with pytest.raises(OSError) as e:
        ffi.dlopen("surely_no_such_library_xyz")
    assert "surely_no_such_library_xyz" in str(e.value)
    with pytest.raises(TypeError):
        ffi.dlopen(42)


def test_dlopen_by_name_and_libm():
    f = jitffi.FFI()
    f.cdef("double sqrt(double); double cos(double); double pow(double, double);")
    m = f.dlopen("m")
    assert m.sqrt(2.0) == math.sqrt(2.0)
    assert m.cos(1.0) == math.cos(1.0)
    assert m.pow(2.0, 0.5) == 2.0 ** 0.5


def test_dlopen_handle_cdata():
    import ctypes
    f = jitffi.FFI()
    f.cdef("size_t strlen(const char *);")
    h = ctypes.CDLL(None)._handle
    libc = f.dlopen(f.cast("void *", h))
    assert libc.strlen(b"four") == 4


def test_rtld_constants():
    import os
    f = jitffi.FFI
    assert f.RTLD_NOW == os.RTLD_NOW and f.RTLD_LAZY == os.RTLD_LAZY
    assert f.RTLD_GLOBAL == os.RTLD_GLOBAL and f.RTLD_LOCAL == os.RTLD_LOCAL
    assert f.RTLD_NODELETE == os.RTLD_NODELETE and f.RTLD_NOLOAD == os.RTLD_NOLOAD
    assert f.RTLD_DEEPBIND == os.RTLD_DEEPBIND


def test_dlclose():
    f = jitffi.FFI()
    f.cdef(clib_calls.CDEF)
    lib = f.dlopen(clib_calls.calls_lib_path(), f.RTLD_NOW)
    add = lib.add_i
    f.dlclose(lib)
    with pytest.raises(ValueError):
        lib.add_i
    with pytest.raises(ValueError):
        lib.g_counter
    # a function taken before dlclose keeps the code mapped
    assert add(1, 2) == 3
    f.dlclose(lib)  # closing again does nothing, as in cffi (test_lib_glue compares)
    with pytest.raises(ValueError):
        lib.add_i


def test_lib_keeps_ffi_alive():
    f = jitffi.FFI()
    f.cdef("int add_i(int, int); int *int_ptr_id(int *p);")
    lib = f.dlopen(clib_calls.calls_lib_path())
    del f
    gc.collect()
    assert lib.add_i(2, 3) == 5
    assert lib.int_ptr_id.__self__ is not None


def test_lib_is_a_module_holding_its_functions():
    import types
    f = jitffi.FFI()
    f.cdef("int add_i(int, int);\nint no_such_function_in_lib(int);\n#define ANSWER2 42")
    lib = f.dlopen(clib_calls.calls_lib_path())
    # an exact module without __getattr__: CPython specializes its attribute loads
    assert type(lib) is types.ModuleType
    assert "__getattr__" not in lib.__dict__
    add = lib.__dict__["add_i"]
    assert lib.add_i is add and add(2, 3) == 5 and lib.add_i is add
    assert lib.ANSWER2 == 42
    assert repr(lib).startswith("<jitffi.Lib object for '") and clib_calls.calls_lib_path() in repr(lib)
    assert sorted(dir(lib)) == ["ANSWER2", "add_i", "no_such_function_in_lib"]
    # declared but missing from the library: AttributeError at access, as in cffi
    with pytest.raises(AttributeError) as e:
        lib.no_such_function_in_lib
    assert "no_such_function_in_lib" in str(e.value)
    with pytest.raises(AttributeError) as e:
        lib.not_declared_anywhere
    assert "not_declared_anywhere" in str(e.value)
    # a declaration added after dlopen is visible
    f.cdef("long long add_ll(long long, long long);")
    assert lib.add_ll(2**40, 1) == 2**40 + 1
    assert "add_ll" in dir(lib) and "__getattr__" not in lib.__dict__
    with pytest.raises(AttributeError):
        lib.__wrapped__


def test_lib_function_used_as_cdata_before_any_call():
    f = jitffi.FFI()
    f.cdef("int add_i(int, int);")
    lib = f.dlopen(clib_calls.calls_lib_path())
    assert f.typeof(lib.add_i) is f.typeof("int(*)(int, int)")
    p = f.cast("int(*)(int, int)", lib.add_i)
    assert p(20, 22) == 42 and lib.add_i(1, 2) == 3


def test_lib_unsupported_signature_raises_at_access():
    f = jitffi.FFI()
    # add_ll exists in the library; declared with an incomplete return type
    f.cdef("struct opaque_s; struct opaque_s add_ll(void); int add_i(int, int);")
    lib = f.dlopen(clib_calls.calls_lib_path())
    # cffi's error at access needs the lazy __getattr__ path for this lib
    assert "__getattr__" in lib.__dict__
    with pytest.raises(TypeError) as e:
        lib.add_ll
    assert "incomplete" in str(e.value)
    assert lib.add_i(1, 2) == 3


def test_lib_gets_setattr_when_globals_are_declared_later():
    import types
    f = jitffi.FFI()
    f.cdef("int get_counter(void);")
    lib = f.dlopen(clib_calls.calls_lib_path())
    assert type(lib) is types.ModuleType
    f.cdef("int g_counter; const int g_const;")
    assert type(lib) is not types.ModuleType and isinstance(lib, types.ModuleType)
    old = lib.g_counter
    lib.g_counter = old + 5
    assert lib.get_counter() == old + 5 and lib.g_counter == old + 5
    assert "g_counter" not in lib.__dict__
    lib.g_counter = old
    with pytest.raises(AttributeError):
        lib.g_const = 1
    with pytest.raises(AttributeError):
        lib.get_counter = None
    with pytest.raises(AttributeError):
        lib.undeclared = 1
    with pytest.raises(AttributeError):
        del lib.get_counter
    assert lib.get_counter() == old
    # a second lib of an ffi that already declares globals starts with __setattr__
    lib2 = f.dlopen(clib_calls.calls_lib_path())
    with pytest.raises(AttributeError):
        lib2.undeclared = 1


def test_lib_module_is_collected_with_its_cycle():
    import weakref
    f = jitffi.FFI()
    f.cdef("int add_i(int, int);")
    lib = f.dlopen(clib_calls.calls_lib_path())
    assert lib.add_i(1, 1) == 2
    f.lib = lib  # ffi -> lib -> state -> ffi
    ref = weakref.ref(lib)
    del f, lib
    gc.collect()
    assert ref() is None


def test_lib_dunders_tampered_with_do_not_break_the_ffi():
    f = jitffi.FFI()
    f.cdef("int add_i(int, int);")
    lib = f.dlopen(clib_calls.calls_lib_path())
    del lib.__loader__
    f.cdef("long long add_ll(long long, long long);")  # still syncs the lib
    assert lib.add_ll(1, 2) == 3
    with pytest.raises(TypeError):
        f.dlclose(lib)


def test_addressof_and_dlclose_reject_non_libs(ffi):
    import types
    with pytest.raises(TypeError):
        ffi.dlclose(types.ModuleType("m"))
    with pytest.raises(TypeError):
        ffi.addressof(types.ModuleType("m"), "x")
    with pytest.raises(TypeError):
        ffi.dlclose(42)


def test_errno_saved_and_restored(ffi, lib):
    lib.set_errno_to(33)
    assert ffi.errno == 33
    ffi.errno = 12
    assert lib.read_errno() == 12


def test_real_libc_and_libm():
    f = jitffi.FFI()
    f.cdef("""
        size_t strlen(const char *);
        int abs(int);
        long labs(long);
        int atoi(const char *);
        double sqrt(double);
        double frexp(double, int *);
    """)
    c = f.dlopen(None)
    assert c.strlen(b"hello world") == 11
    assert c.abs(-2**31 + 1) == 2**31 - 1
    assert c.labs(-(2**62)) == 2**62
    assert c.atoi(b"  -1234xyz") == -1234
    m = f.dlopen("m")
    e = f.new("int *")
    assert m.frexp(48.0, e) == 0.75 and e[0] == 6


def test_threads_release_the_gil(lib):
    n = 8
    def run(out):
        t = threading.Thread(target=lambda: out.append(lib.sleep_ms(200)))
        return t
    results = []
    threads = [run(results) for _ in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    assert results == [200] * n
    # about the time of one call: far below 8 sequential calls (1.6 s)
    assert elapsed < 0.8, elapsed


def test_keep_gil_option_holds_the_gil():
    f = jitffi.FFI()
    f.cdef("int sleep_ms(int); int add_i(int, int); int set_errno_to(int);")
    lib = f.dlopen(clib_calls.calls_lib_path(), release_gil=False)
    assert lib.add_i(2, 2) == 4
    threads = [threading.Thread(target=lib.sleep_ms, args=(100,)) for _ in range(4)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the GIL stays held: the calls run one after another
    assert time.perf_counter() - t0 >= 0.38


def test_long_double(ffi, lib):
    r = lib.id_ldouble(1.5)
    assert ffi.typeof(r) is ffi.typeof("long double")
    assert float(r) == 1.5
    assert float(lib.add_ld(0.25, 2, ffi.cast("long double", 0.5))) == 2.75
    assert lib.ld_to_double(1e300) == 1e300
    with pytest.raises(TypeError):
        lib.id_ldouble("x")


def test_complex(lib):
    assert lib.cmul(1 + 2j, 3 - 1j) == (1 + 2j) * (3 - 1j)
    assert lib.fconj(1.5 - 2.5j) == 1.5 + 2.5j
    assert lib.creal_of(7.25 + 1j) == 7.25


def test_structs_and_unions_by_value(ffi, lib):
    p = lib.pt_make(3, -4)
    assert ffi.typeof(p) is ffi.typeof("struct pt")
    assert (p.x, p.y) == (3, -4)
    assert lib.pt_sum(p) == -1
    assert lib.pt_sum([10, 20]) == 30
    assert lib.pt_sum({"x": 1, "y": 2}) == 3
    q = lib.pt3_scale([1.0, 2.0, 3.5], 2.0)          # 24 bytes: in memory
    assert (q.x, q.y, q.z) == (2.0, 4.0, 7.0)
    assert lib.mixed_sum([1, 0.5, 0.25]) == 1.75       # INTEGER + SSE eightbytes
    m = lib.mixed_make(-2, 1.5, 1e100)
    assert (m.i, m.f, m.d) == (-2, 1.5, 1e100)
    assert lib.tiny_next([b"a"]).c == b"b"
    assert lib.num_as_int([0x12345]) == 0x12345
    assert lib.pt_after_regs(1, 2, 3, 4, 5, 6, [7, 8], 9.0) == 21 + 700 + 80000 + 9
    with pytest.raises(TypeError):
        lib.pt_sum(5)


def test_unsupported_signatures_raise_cleanly():
    f = jitffi.FFI()
    f.cdef("struct opaque; int add_i(struct opaque, int); struct part { int x; ...; }; int pt_sum(struct part);")
    lib = f.dlopen(clib_calls.calls_lib_path())
    with pytest.raises(TypeError, match="ctype 'struct opaque' has incomplete type"):  # as cffi
        lib.add_i
    with pytest.raises(Exception) as e:
        lib.pt_sum
    assert e.type.__name__ in ("NotImplementedError", "VerificationMissing")


def test_trampolines_are_shared_per_shape(lib):
    from jitffi import _jitffi
    lib.add_i
    before = _jitffi._jit_stats()
    f = jitffi.FFI()
    f.cdef("int add_i(int, int); int sum8(int,int,int,int,int,int,int,int);")
    lib2 = f.dlopen(clib_calls.calls_lib_path())
    assert lib2.add_i(1, 2) == 3
    # same shape as lib.add_i: no new code
    assert _jitffi._jit_stats() == before


def test_pointer_fast_and_slow_paths_agree(ffi, lib):
    # exact ctype (inline path), other FFI's equal type and void * (converter path)
    p = ffi.new("int *", 31)
    assert lib.deref_int(p) == 31
    other = jitffi.FFI()
    q = other.new("int *", 32)
    assert lib.deref_int(q) == 32
    assert lib.is_null(ffi.cast("void *", p)) == 0
    assert lib.deref_int(ffi.cast("int *", ffi.cast("void *", p))) == 31
    # an array cdata decays to a pointer to its first item
    a = ffi.new("int[3]", [7, 8, 9])
    assert lib.deref_int(a) == 7
    # bytes: accepted for char * and void *, refused for int *
    assert lib.my_strlen(b"abc\x00def") == 3
    assert lib.is_null(b"x") == 0
    with pytest.raises(TypeError):
        lib.deref_int(b"abcd")
    with pytest.raises(TypeError):
        lib.my_strlen(ffi.new("int *"))


def test_char_array_for_char_pointer(ffi, lib):
    buf = ffi.new("char[]", b"hello")
    assert lib.my_strlen(buf) == 5
    assert lib.my_strlen(ffi.cast("char *", buf)) == 5


def test_no_memory_growth_over_many_calls(ffi, lib):
    import resource
    ints = list(range(10))
    p = ffi.new("int *", 3)
    one, two = ffi.cast("int", 1), ffi.cast("int", 2)

    def run(n):
        for _ in range(n):
            lib.sum_ints(ints, 10)          # temporary array
            lib.deref_int(p)
            lib.greeting()                  # pointer result
            lib.sum_va(2, one, two)         # variadic path
            try:
                lib.divmod(1, 2, [1], "x")  # error after a temporary was made
            except TypeError:
                pass

    run(20000)
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run(200000)
    gc.collect()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after - before < 2048, (before, after)  # KB


def test_pointer_inline_cache_stays_exact(ffi, lib):
    other = jitffi.FFI()
    ip = other.new("int *", 5)
    dp = ffi.new("double *")
    for _ in range(3):
        assert lib.is_null(ip) == 0          # int * from another FFI into void *: cached
        assert lib.is_null(dp) == 0          # another ctype replaces the cache entry
        assert lib.deref_int(ip) == 5        # same spelling, other FFI: cached for int *
        with pytest.raises(TypeError):
            lib.deref_int(dp)                # never accepted, cached or not
        with pytest.raises(TypeError):
            lib.is_null(ffi.cast("int", 0))  # a primitive cdata is not a pointer
        with pytest.raises(TypeError):
            lib.deref_int(ffi.cast("char *", ip))
    arr = ffi.new("int[2]", [4, 5])
    assert lib.deref_int(arr) == 4
    ffi.release(arr)
    with pytest.raises(Exception):
        lib.deref_int(arr)                   # released arrays are refused (not cached)


def test_qsort_from_libc_with_a_callback():
    f = jitffi.FFI()
    f.cdef("void qsort(void *base, size_t nmemb, size_t size,"
           " int (*compar)(const void *, const void *));")
    libc = f.dlopen(None)

    @f.callback("int(const void *, const void *)")
    def by_value(a, b):
        x, y = f.cast("int *", a)[0], f.cast("int *", b)[0]
        return (x > y) - (x < y)

    values = [5, -3, 9, 1, 7, 2**31 - 1, -2**31, 0]
    arr = f.new("int[]", values)
    libc.qsort(arr, len(values), f.sizeof("int"), by_value)
    assert list(arr) == sorted(values)


def test_array_inline_cache_checks_release_every_call(ffi, lib):
    for _ in range(3):
        a = ffi.new("int[]", [11, 12])
        assert lib.deref_int(a) == 11
        assert lib.deref_int(a) == 11       # second call: cached array ctype
        ffi.release(a)
        with pytest.raises(ValueError):
            lib.deref_int(a)


def test_list_mutated_during_conversion_does_not_crash(lib):
    items = [1, 2, 3, 4]

    class Shrinker:
        def __index__(self):
            del items[2:]
            return 10

    items[1] = Shrinker()
    # items 2 and 3 vanish while item 1 converts: the temporary array keeps zeros there
    assert lib.sum_ints(items, 4) == 11


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 200])
def test_int_list_argument_around_the_stack_array_limit(lib, n):
    # Lists of up to 64 ints are converted into a stack array inside the trampoline,
    # longer ones through a temporary; both must give C the same values.
    values = [(-1) ** i * (2**31 - 1 - i) for i in range(n)]
    assert lib.sum_ints(values, n) == sum(values)
    assert lib.sum_ints(values + [0], n) == sum(values)


@pytest.mark.parametrize("n", [3, 100])
def test_int_list_argument_errors_match_cffi(lib, n):
    import cffi
    cf = cffi.FFI()
    cf.cdef("long sum_ints(const int *p, int n);")
    clib = cf.dlopen(clib_calls.calls_lib_path())
    for bad in ([1] * (n - 1) + [2**31], [1] * (n - 1) + [-2**31 - 1], [1] * (n - 1) + ["x"],
                [1] * (n - 1) + [1.5], [True] * n):
        try:
            expected = clib.sum_ints(bad, n)
        except Exception as e:  # the same exception type and message as cffi
            with pytest.raises(type(e)) as got:
                lib.sum_ints(bad, n)
            assert str(got.value) == str(e)
        else:
            assert lib.sum_ints(bad, n) == expected

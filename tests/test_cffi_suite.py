"""What cffi's own test suite (testing/cffi1/test_ffi_obj.py, test_commontypes.py) checks
of the compiled FFI type and the backend module, run here against jitffi's
`_cffi_backend` and compared with real cffi's in the same process (the two modules have
different names, so both load)."""
import importlib.util
import os
import subprocess
import sys

import pytest

import _cffi_backend as real_backend  # real cffi, installed by .ci/setup
import jitffi
from jitffi import _cffi_backend as backend
from conftest import PYTHON, build_clib

PY_DIR = os.path.dirname(os.path.dirname(os.path.abspath(jitffi.__file__)))


def outcome(fn, *args, **kwargs):
    """(exception type name or None, text) of a call, for side-by-side comparison."""
    try:
        return None, repr(fn(*args, **kwargs))
    except Exception as e:
        return type(e).__name__, str(e)


@pytest.mark.parametrize("args,kwargs", [((42,), {}), ((None,), {}), ((b"m",), {}),
                                         ((), {"foobar": 42})])
def test_constructor_arguments_refused_as_cffi(args, kwargs):
    got = outcome(backend.FFI, *args, **kwargs)
    want = outcome(real_backend.FFI, *args, **kwargs)
    assert got[0] == want[0] == "TypeError"
    if not kwargs:
        assert got[1] == want[1]


def test_no_instance_attributes_but_subclasses_have_them():
    for mod in (backend, real_backend):
        ffi = mod.FFI()
        with pytest.raises(AttributeError):
            ffi.no_such_name
        with pytest.raises(AttributeError):
            ffi.no_such_name = 42
        with pytest.raises(AttributeError):
            del ffi.no_such_name
        # a data descriptor of the class still works
        ffi.errno = 7
        assert ffi.errno == 7

        class Sub(mod.FFI):
            def __init__(self, x):
                self.x = x
        s = Sub(42)
        assert s.x == 42 and s.new("int *")[0] == 0
        s.y = 1
        del s.y


def test_builder_methods_absent_and_methods_documented():
    for name in ("cdef", "set_source", "compile", "emit_python_code", "include"):
        assert name not in dir(backend.FFI), name
        assert name not in dir(real_backend.FFI), name
        with pytest.raises(AttributeError):
            getattr(backend.FFI(), name)
    check_type = type(backend.FFI.new)
    checked = 0
    for name in dir(backend.FFI):
        if not name.startswith("_"):
            method = getattr(backend.FFI, name)
            if isinstance(method, check_type):
                checked += 1
                assert method.__doc__, name
    assert checked > 10


BAD_TYPES = ["", "struct struct", "struct never_heard_of_s", "\t\n\x01\x1f~\x7f\x80\xff",
             "X" * 600, "foo_t", "int int", "int *(", "int[-1]", "unsigned float", "enum e",
             "enum", "union u", "int(int)", "int x y", "struct", "const", "int[", "int[5",
             "int (*)(foo)", "struct s *", "foo_t *", "long long long", "*", "int)",
             "int[1000000000000000000000000]", "signed char char", "int(*)(struct nope *)"]


@pytest.mark.parametrize("text", BAD_TYPES)
def test_bad_type_strings_are_ffi_error_with_cffi_text(text):
    ffi = backend.FFI()
    rffi = real_backend.FFI()
    with pytest.raises(rffi.error) as want:
        rffi.cast(text, 0)
    with pytest.raises(ffi.error) as got:
        ffi.cast(text, 0)
    assert str(got.value) == str(want.value)
    # typeof and sizeof go through the same parse
    with pytest.raises(ffi.error) as got2:
        ffi.typeof(text)
    assert str(got2.value) == str(want.value)


def test_inline_ffi_keeps_cdef_errors():
    ffi = jitffi.FFI()
    for text in ["", "foo_t", "int *(", "int(int)"]:
        with pytest.raises(jitffi.CDefError):
            ffi.typeof(text)
    # the in-line FFI still declares an unknown tag as opaque, as cffi's in-line FFI
    assert ffi.typeof("struct never_heard_of_s *").cname == "struct never_heard_of_s *"


def test_good_type_strings_still_work_on_the_compiled_ffi():
    ffi = backend.FFI()
    rffi = real_backend.FFI()
    for text in ["int", "unsigned", "long long", "unsigned long long int", "int *x",
                 "int(*)(int, ...)", "char[]", "int[10][20]", "int(*[5])(int)", "void *",
                 "const char * const *", "long double", "FILE *", "bool", "size_t",
                 "double(*(*)(int))[3]", "int[0x10]", "unsigned short int **"]:
        assert ffi.typeof(text).cname == rffi.typeof(text).cname, text
    assert ffi.cast("int(*)(int)", 0) == ffi.NULL
    ffi.callback("int(int)")
    with pytest.raises(ffi.error):
        ffi.cast("int(int)", 0)
    with pytest.raises(ffi.error) as e:
        ffi.sizeof("int[]")
    assert str(e.value) == "don't know the size of ctype 'int[]'"


def test_get_common_types():
    got, want = {}, {}
    backend._get_common_types(got)
    real_backend._get_common_types(want)
    assert got == want


def test_imp_emulation_load_dynamic_under_the_switch(tmp_path):
    """cffi's tests import `cffi._imp_emulation.load_dynamic`; under the switch it loads
    an extension module from its path (here one of the interpreter's own)."""
    script = (
        "import importlib.util, sys\n"
        "from cffi._imp_emulation import load_dynamic, get_suffixes\n"
        "import cffi; assert cffi.__jitffi__\n"
        "origin = importlib.util.find_spec('_json').origin\n"
        "assert origin.endswith(tuple(s for s, _, _ in get_suffixes())), origin\n"
        "m = load_dynamic('_json', origin)\n"
        "assert sys.modules['_json'] is m and m.__file__ == origin\n"
        "print(m.encode_basestring('a\"'))\n"
    )
    spec = importlib.util.find_spec("_json")
    if spec is None or spec.origin in (None, "built-in"):
        pytest.skip("_json is built into this interpreter, no extension file to load")
    (tmp_path / "s.py").write_text(script)
    env = dict(os.environ, PYTHONPATH=PY_DIR)
    r = subprocess.run(PYTHON + ["-m", "jitffi", "run", str(tmp_path / "s.py")], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '"a\\""'


def outcome_type(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        return None
    except Exception as e:
        return type(e).__name__, str(e)


@pytest.mark.parametrize("kwargs", [dict(pack=3), dict(packed=2), dict(packed=True, pack=1),
                                    dict(pack=0), dict(pack=None), dict(packed=1), dict(pack=16),
                                    dict(pack=-1), dict(packed=True, pack=0)])
def test_cdef_pack_arguments_as_cffi(kwargs):
    import cffi
    assert outcome_type(jitffi.FFI().cdef, "", **kwargs) == outcome_type(cffi.FFI().cdef, "", **kwargs)


def test_negative_array_length_is_value_error_as_cffi():
    import cffi
    for text in ["int[-5]", "int[-1][2]"]:
        for op in ("cast", "typeof"):
            args = (text, 0) if op == "cast" else (text,)
            got = outcome_type(getattr(jitffi.FFI(), op), *args)
            want = outcome_type(getattr(cffi.FFI(), op), *args)
            assert got == want == ("ValueError", "negative array length"), (text, op)
    # the compiled FFI words it as cffi's compiled FFI does
    with pytest.raises(backend.FFI.error) as got:
        backend.FFI().cast("int[-5]", 0)
    with pytest.raises(real_backend.FFI.error) as want:
        real_backend.FFI().cast("int[-5]", 0)
    assert str(got.value) == str(want.value)


ARRAY_SOURCE = "int my_array[7] = {0, 1, 2, 3, 4, 5, 6};\n"


def test_global_array_of_unknown_length_reads_as_pointer():
    """cffi's test_ownlib.test_my_array_no_length: `extern int my_array[];` gives an
    `int *` to the library's items, which can be indexed and assigned through."""
    import cffi
    so = build_clib("cffisuite_arr", ARRAY_SOURCE)
    results = []
    for mod in (jitffi, cffi):
        ffi = mod.FFI()
        ffi.cdef("extern int my_array[];")
        lib = ffi.dlopen(so)
        a = lib.my_array
        got = [ffi.typeof(a).cname, [a[i] for i in range(7)], outcome(len, a)[0]]
        lib.my_array = list(range(10, 17))
        got.append([lib.my_array[i] for i in range(7)])
        lib.my_array = list(range(7))
        got.append(ffi.typeof(ffi.addressof(lib, "my_array")).cname)
        results.append(got)
    assert results[0] == results[1]
    assert results[0][:3] == ["int *", list(range(7)), "TypeError"]


def test_array_initializer_from_an_array_cdata_needs_the_same_type():
    """cffi's backend_tests.test_ffi_array_as_init: an array cdata initializes only an
    array of exactly its type (length included); other arrays want a list or tuple."""
    import cffi
    results = []
    for mod in (jitffi, cffi):
        ffi = mod.FFI()
        ffi.cdef("struct a { int x[4]; };")
        p = ffi.new("int[4]", [10, 20, 30, 400])
        two = ffi.new("int[2]", [1, 2])
        got = [list(ffi.new("int[4]", p)), ffi.new("struct a *", [p]).x[3]]
        for t, init in [("int[3]", p), ("int[5]", p), ("int16_t[4]", p), ("long[4]", p)]:
            got.append(outcome(ffi.new, t, init))
        got.append(outcome(ffi.new, "struct a *", [two]))
        results.append(got)
    assert results[0] == results[1]
    assert results[0][0] == [10, 20, 30, 400]
    assert all(r[0] == "TypeError" for r in results[0][2:])


def test_addressof_through_a_pointer():
    """cffi's backend_tests.test_addressof_field / _pointer: a pointer cdata takes a path
    (a field of the struct it points to, or an index), never none."""
    import cffi
    results = []
    for mod in (jitffi, cffi):
        ffi = mod.FFI()
        ffi.cdef("struct foo_s { int x, y; struct foo_s *n; int a[3]; };")
        p = ffi.new("struct foo_s *")
        base = int(ffi.cast("uintptr_t", p))

        def where(c):
            return ffi.typeof(c).cname, int(ffi.cast("uintptr_t", c)) - base
        q = ffi.cast("int *", p)
        got = [where(ffi.addressof(p, "y")), where(ffi.addressof(p, 0)),
               where(ffi.addressof(p, 1, "y")), where(ffi.addressof(p, "a", 2)),
               ffi.addressof(p[0], "y") == ffi.addressof(p, "y"), where(ffi.addressof(q, 25)),
               ffi.addressof(q, 25) == q + 25]
        for args in [(q,), (q, "x"), (ffi.new("struct foo_s **"), "x"), (ffi.cast("int", 3), 0)]:
            got.append(outcome(ffi.addressof, *args)[0])
        results.append(got)
    assert results[0] == results[1]
    assert results[0][0] == ("int *", 4) and results[0][-4:] == ["TypeError"] * 4


def test_function_returning_an_array_is_type_error_as_cffi():
    """cffi's backend_tests.test_array_of_func_ptr: `int(*)(int)[5]` is a function
    returning an array, which cffi's backend refuses with a TypeError."""
    import cffi
    for text in ["int(*)(int)[5]", "int(int)[5]"]:
        got = outcome(jitffi.FFI().typeof, text)
        want = outcome(cffi.FFI().typeof, text)
        assert got == want == ("TypeError", "invalid result type: 'int[5]'"), text
    got = outcome(backend.FFI().cast, "int(*)(int)[5]", 0)
    want = outcome(real_backend.FFI().cast, "int(*)(int)[5]", 0)
    assert got == want

"""The lib glue: find_library fallback, module making, dlclose, borrowed handles."""
import ctypes
import gc
import os
import types

import pytest

import jitffi
from conftest import build_clib

SOURCE = "int glue_answer(void) { return 42; }\nint glue_var = 7;\n"


def test_a_name_found_by_find_library_keeps_the_name_asked_for():
    f = jitffi.FFI()
    f.cdef("double sqrt(double);")
    m = f.dlopen("m")
    assert m.__name__ == "m"
    assert repr(m) == "<jitffi.Lib object for 'm'>"
    assert m.sqrt(4.0) == 2.0


def test_a_name_not_found_anywhere():
    f = jitffi.FFI()
    with pytest.raises(OSError) as e:
        f.dlopen("surely_no_such_library_xyz")
    text = str(e.value)
    assert text.startswith("cannot load library 'surely_no_such_library_xyz': ")
    assert text.endswith(".  Additionally, ctypes.util.find_library() did not manage to "
                         "locate a library called 'surely_no_such_library_xyz'")
    assert e.value.__context__ is None


def test_a_path_is_not_searched_for():
    f = jitffi.FFI()
    with pytest.raises(OSError) as e:
        f.dlopen("/nonexistent/libnothing.so")
    assert str(e.value).startswith("cannot load library '/nonexistent/libnothing.so': ")
    assert "Additionally" not in str(e.value)


def test_nul_in_a_path():
    f = jitffi.FFI()
    with pytest.raises(OSError) as e:
        f.dlopen("/tmp/a\0b")
    assert str(e.value) == "cannot load library '/tmp/a\0b': library name contains a NUL byte"


def test_dlclose_empties_the_namespace_but_keeps_the_dunders():
    path = build_clib("glue", SOURCE)
    f = jitffi.FFI()
    f.cdef("int glue_answer(void);\n#define GLUE_K 3")
    lib = f.dlopen(path)
    assert lib.glue_answer() == 42 and lib.GLUE_K == 3
    f.dlclose(lib)
    ns = vars(lib)
    assert "glue_answer" not in ns and "GLUE_K" not in ns
    assert ns["__name__"] == path and "__loader__" in ns and "__getattr__" in ns
    with pytest.raises(ValueError) as e:
        lib.GLUE_K
    assert str(e.value) == "library '%s' has already been closed" % path
    f.dlclose(lib)  # again: nothing happens, as in cffi


def test_closed_library_errors_as_cffi():
    import cffi
    path = build_clib("glue", SOURCE)
    out = []
    for mod in (cffi, jitffi):
        f = mod.FFI()
        f.cdef("int glue_answer(void);")
        lib = f.dlopen(path)
        assert lib.glue_answer() == 42
        f.dlclose(lib)
        with pytest.raises(ValueError) as e:
            lib.glue_answer
        f.dlclose(lib)
        out.append(str(e.value))
    assert out[0] == out[1]


def test_a_lib_state_takes_one_module():
    f = jitffi.FFI()
    lib = f.dlopen(None)
    with pytest.raises(ValueError):
        lib.__loader__._attach({})


def test_the_globals_class_keeps_its_name():
    path = build_clib("glue", SOURCE)
    f = jitffi.FFI()
    f.cdef("int glue_var;")
    lib = f.dlopen(path)
    assert type(lib) is jitffi._LibWithGlobals
    assert type(lib).__module__ == "jitffi" and isinstance(lib, types.ModuleType)
    assert lib.glue_var == 7


def test_a_borrowed_handle_is_not_closed(tmp_path):
    # A copy only ctypes opens: if jitffi dlclosed the handle it was given, the library
    # would be unmapped, and RTLD_NOLOAD would not find it any more.
    copy = tmp_path / "libglue_borrowed.so"
    copy.write_bytes(open(build_clib("glue", SOURCE), "rb").read())
    owner = ctypes.CDLL(str(copy))
    f = jitffi.FFI()
    f.cdef("int glue_answer(void);")
    lib = f.dlopen(f.cast("void *", owner._handle))
    assert lib.glue_answer() == 42
    f.dlclose(lib)
    del lib
    gc.collect()
    ctypes.CDLL(str(copy), mode=os.RTLD_NOLOAD)  # still loaded
    assert owner.glue_answer() == 42

"""Allocation paths of cdata objects: small `ffi.new` blocks live inside the object, larger
ones in a separate block; both zeroed, both kept alive by views, both freed once."""
import gc
import weakref

import pytest

import jitffi


@pytest.fixture
def ffi():
    f = jitffi.FFI()
    f.cdef("struct pt { int x, y; }; struct big { char data[2000]; };")
    return f


# around the two-store zeroing (16 bytes) and the inline/separate limits (object within a
# 512-byte pymalloc block: a few hundred bytes of data, depending on the object size)
SIZES = [0, 1, 8, 15, 16, 17, 100, 127, 128, 129] + list(range(368, 420, 8)) + [1023, 1024, 1025, 5000]


@pytest.mark.parametrize("n", SIZES)
def test_new_is_zeroed_even_over_reused_memory(ffi, n):
    for _ in range(3):
        a = ffi.new("unsigned char[]", n)
        assert len(a) == n
        assert bytes(ffi.buffer(a)) == b"\0" * n
        assert ffi.sizeof(a) == n
        assert repr(a) == "<cdata 'unsigned char[]' owning %d bytes>" % n
        for i in range(n):
            a[i] = 0xFF
        del a
        gc.collect()


@pytest.mark.parametrize("n", SIZES)
def test_views_keep_the_memory_alive(ffi, n):
    a = ffi.new("unsigned char[]", n + 2)
    a[n + 1] = 7
    view = a + (n + 1)          # pointer into the block
    part = a[1:n + 2]           # slice of it
    buf = ffi.buffer(a)
    del a
    gc.collect()
    assert view[0] == 7
    assert part[n] == 7
    assert buf[n + 1] == b"\x07"


def test_struct_view_keeps_inline_block_alive(ffi):
    p = ffi.new("struct pt *", [3, 4])
    s = p[0]
    del p
    gc.collect()
    assert (s.x, s.y) == (3, 4)
    assert repr(s) == "<cdata 'struct pt' owning 8 bytes>"


def test_release_of_inline_and_separate_blocks(ffi):
    for decl in ("struct pt *", "struct big *"):
        p = ffi.new(decl)
        ffi.release(p)
        assert "released" in repr(p)
        with pytest.raises(ValueError):
            p[0]
        ffi.release(p)  # twice is harmless


def test_weakref_callbacks_run_on_collection(ffi):
    seen = []
    objs = [ffi.new("struct pt *"), ffi.new("int[]", 1000), ffi.cast("int", 5),
            ffi.new("struct pt *")[0]]
    refs = [weakref.ref(o, lambda r, i=i: seen.append(i)) for i, o in enumerate(objs)]
    b = ffi.buffer(objs[1])
    rb = weakref.ref(b, lambda r: seen.append("buf"))
    del objs, b
    gc.collect()
    assert sorted(map(str, seen)) == ["0", "1", "2", "3", "buf"]
    assert all(r() is None for r in refs) and rb() is None


def test_buffer_full_slice_fast_path(ffi):
    a = ffi.new("int[]", [1, 2])
    b = ffi.buffer(a)
    assert b[:] == bytes(b) == b"\x01\0\0\0\x02\0\0\0"
    assert b[1:3] == b"\0\0"
    assert ffi.buffer(ffi.new("char[]", 0))[:] == b""
    with pytest.raises(TypeError):
        b["x"]
    ffi.release(a)
    with pytest.raises(ValueError):
        b[:]


def test_gc_destructor_once_with_raw_dealloc(ffi):
    calls = []
    p = ffi.gc(ffi.new("int *", 5), lambda q: calls.append(q[0]))
    del p
    gc.collect()
    assert calls == [5]


def test_type_string_memo_follows_cdef_override():
    f = jitffi.FFI()
    f.cdef("typedef int T;")
    s = "T *"
    assert f.typeof(f.new(s)) is f.typeof("int *")
    assert f.typeof(f.cast(s, 0)) is f.typeof("int *")
    f.cdef("typedef double T;", override=True)
    assert f.typeof(f.new(s)) is f.typeof("double *")
    assert f.typeof(f.cast(s, 0)) is f.typeof("double *")


def test_type_string_memo_releases_its_references():
    import sys
    key = "".join(["in", "t *"])
    before = sys.getrefcount(key)
    f = jitffi.FFI()
    f.new(key)
    f.cast(key, 0)
    del f
    gc.collect()
    assert sys.getrefcount(key) == before

"""Ownership and memory: owned memory freed exactly once (counting allocator), flat RSS
over a million ffi.new, gc destructors once, no leak when an initializer raises,
release/with, handles, from_buffer locking, init_once, errno."""
import gc
import os
import threading

import pytest

import jitffi


@pytest.fixture
def ffi():
    f = jitffi.FFI()
    f.cdef("struct pt { int x, y; };")
    return f


class CountingAllocator:
    """alloc/free as Python callables over memory owned by a second FFI."""

    def __init__(self, ffi):
        self.ffi = ffi
        self.live = {}
        self.allocs = 0
        self.frees = 0

    def alloc(self, size):
        block = self.ffi.new("char[]", max(size, 1))
        self.ffi.buffer(block)[:] = b"\xaa" * len(block)
        p = self.ffi.cast("void *", block)
        self.live[int(self.ffi.cast("uintptr_t", p))] = block
        self.allocs += 1
        return p

    def free(self, p):
        addr = int(self.ffi.cast("uintptr_t", p))
        assert addr in self.live, "free() of unknown or already freed pointer"
        del self.live[addr]
        self.frees += 1


def test_allocator_frees_exactly_once(ffi):
    ca = CountingAllocator(jitffi.FFI())
    new = ffi.new_allocator(ca.alloc, ca.free)
    objs = [new("struct pt *", [i, i]) for i in range(100)]
    assert ca.allocs == 100 and ca.frees == 0
    assert objs[7].x == 7 and objs[7].y == 7
    del objs
    gc.collect()
    assert ca.frees == 100 and not ca.live
    p = new("int[10]")
    assert list(p) == [0] * 10  # cleared after alloc by default
    ffi.release(p)
    assert ca.frees == 101
    ffi.release(p)
    del p
    gc.collect()
    assert ca.frees == 101
    with new("int *") as q:
        q[0] = 5
    assert ca.frees == 102 and ca.allocs == 102


def test_allocator_no_clear_and_null(ffi):
    ca = CountingAllocator(jitffi.FFI())
    new = ffi.new_allocator(ca.alloc, ca.free, should_clear_after_alloc=False)
    p = new("unsigned char[4]")
    assert list(p) == [0xAA] * 4
    null_new = ffi.new_allocator(lambda n: ffi.NULL, None)
    with pytest.raises(MemoryError):
        null_new("int *")
    del p
    gc.collect()
    assert ca.frees == ca.allocs == 1


def test_initializer_error_does_not_leak(ffi):
    ca = CountingAllocator(jitffi.FFI())
    new = ffi.new_allocator(ca.alloc, ca.free)
    for _ in range(50):
        with pytest.raises(TypeError):
            new("int[]", [1, 2, "x"])
        with pytest.raises(OverflowError):
            new("struct pt *", [1, 2**40])
    gc.collect()
    assert ca.allocs == 100 and ca.frees == 100


def _rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_million_new_flat_rss(ffi):
    for _ in range(100000):
        ffi.new("struct pt *", [1, 2])
    gc.collect()
    before = _rss_kb()
    for _ in range(1000000):
        ffi.new("struct pt *", [1, 2])
        ffi.new("int[]", 4)
    gc.collect()
    after = _rss_kb()
    assert after - before < 8 * 1024, (before, after)


def test_gc_destructor_runs_once(ffi):
    calls = []
    p = ffi.new("int *", 42)
    g = ffi.gc(p, lambda x: calls.append(x[0]))
    assert g[0] == 42 and g == p
    del g
    gc.collect()
    assert calls == [42]
    g2 = ffi.gc(ffi.new("int *", 7), calls.append)
    ffi.release(g2)
    ffi.release(g2)
    del g2
    gc.collect()
    assert len(calls) == 2
    g3 = ffi.gc(ffi.new("int *", 9), calls.append)
    assert ffi.gc(g3, None) is None  # as cffi 2.0: removing the destructor returns None
    del g3
    gc.collect()
    assert len(calls) == 2


def test_gc_destructor_exception_is_unraisable(ffi):
    seen = []
    import sys
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(u.exc_type)
    try:
        g = ffi.gc(ffi.new("int *"), lambda x: 1 / 0)
        del g
        gc.collect()
    finally:
        sys.unraisablehook = old
    assert seen == [ZeroDivisionError]


def test_handles(ffi):
    class Obj:
        pass
    o = Obj()
    h = ffi.new_handle(o)
    assert ffi.typeof(h) is ffi.typeof("void *")
    assert ffi.from_handle(h) is o
    assert ffi.from_handle(ffi.cast("void *", h)) is o
    assert repr(h).startswith("<cdata 'void *' handle to <")
    h2 = ffi.new_handle(o)
    assert h2 != h
    import weakref
    r = weakref.ref(o)
    addr = ffi.cast("void *", h)
    del o, h, h2
    gc.collect()
    assert r() is None
    with pytest.raises(RuntimeError):
        ffi.from_handle(addr)
    with pytest.raises(RuntimeError):
        ffi.from_handle(ffi.NULL)


def test_from_buffer_locks_and_keeps_alive(ffi):
    ba = bytearray(b"hello")
    c = ffi.from_buffer(ba)
    assert len(c) == 5 and c[1] == b"e"
    c[0] = b"J"
    assert ba == bytearray(b"Jello")
    with pytest.raises(BufferError):
        ba.extend(b"x")
    ffi.release(c)
    ba.extend(b"!")
    assert ba == bytearray(b"Jello!")
    arr = ffi.from_buffer("int[]", bytearray(8), require_writable=True)
    assert len(arr) == 2
    with pytest.raises(BufferError):
        ffi.from_buffer(b"ro", require_writable=True)
    tmp = ffi.from_buffer(bytearray(b"xyz"))
    gc.collect()
    assert ffi.string(tmp, 3) == b"xyz"


def test_buffer_protocol_and_memmove(ffi):
    a = ffi.new("char[]", b"abcdef")
    b = ffi.buffer(a)
    assert len(b) == 7 and b[:] == b"abcdef\x00" and bytes(b) == b"abcdef\x00"
    mv = memoryview(b)
    assert mv[0] == ord("a")
    mv[1] = ord("B")
    assert a[1] == b"B"
    b[2:4] = b"CD"
    assert ffi.string(a) == b"aBCDef"
    ints = ffi.new("int[4]", [1, 2, 3, 4])
    ffi.memmove(ints + 1, ints, 2 * ffi.sizeof("int"))
    assert list(ints) == [1, 1, 2, 4]
    target = bytearray(8)
    ffi.memmove(target, ints, 8)
    assert target == bytes(ffi.buffer(ints, 8))
    ffi.memmove(ints, b"\x05\x00\x00\x00", 4)
    assert ints[0] == 5
    del a
    gc.collect()
    assert b[0] == b"a"  # the buffer keeps its cdata alive
    import io
    f = io.BytesIO()
    f.write(ffi.buffer(ints))
    assert f.getvalue() == bytes(ffi.buffer(ints))


def test_init_once(ffi):
    calls = []

    def init():
        calls.append(1)
        return "ready"

    results = []
    threads = [threading.Thread(target=lambda: results.append(ffi.init_once(init, "tag"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["ready"] * 8 and calls == [1]

    def failing():
        calls.append(2)
        raise ValueError("no")

    with pytest.raises(ValueError):
        ffi.init_once(failing, "other")
    with pytest.raises(ValueError):
        ffi.init_once(failing, "other")
    assert calls.count(2) == 2


def test_errno_thread_local(ffi):
    ffi.errno = 42
    assert ffi.errno == 42
    seen = []

    def other():
        seen.append(ffi.errno)
        ffi.errno = 7
        seen.append(ffi.errno)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == [0, 7]
    assert ffi.errno == 42
    ffi.errno = 0

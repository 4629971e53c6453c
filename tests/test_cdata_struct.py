"""Struct/union/bitfield/packed cdata compared with gcc: a C helper compiled with `cc`
fills (or checks) the memory, jitffi reads (or writes) it through cdata. The helper is
called with ctypes only as a way to run C code on an address."""
import ctypes

import pytest

import jitffi

DECLS = r"""
struct inner { short s; double d; };
struct mix { char c; int i; long long ll; float f; double d; unsigned char uc;
             struct inner in; int arr[4]; char name[8]; void *p; };
struct bits { int a:3; unsigned int b:5; int c:7; unsigned int d:1; long long e:40; signed char f:2; unsigned short g:9; };
union un { int i; float f; unsigned char bytes[4]; };
struct packed_s { char c; int i; short s; } __attribute__((packed));
struct anon { int tag; union { int iv; float fv; }; struct { short lo, hi; }; };
"""

CDEFS = DECLS.replace(" __attribute__((packed))", "")

C_SOURCE = DECLS + r"""
#include <string.h>
#include <stddef.h>
void fill_mix(struct mix *m) {
    m->c = 'Q'; m->i = -123456; m->ll = -9000000000LL; m->f = 1.5f; m->d = -2.25;
    m->uc = 250; m->in.s = -7; m->in.d = 3.5;
    for (int k = 0; k < 4; k++) m->arr[k] = k * 11;
    strcpy(m->name, "gcc"); m->p = (void *)m;
}
int check_mix(struct mix *m) {
    return m->c == 'z' && m->i == 77 && m->ll == 1234567890123LL && m->f == 0.5f &&
           m->d == 6.125 && m->uc == 3 && m->in.s == 300 && m->in.d == -1.0 &&
           m->arr[0] == 1 && m->arr[3] == 4 && strcmp(m->name, "abc") == 0;
}
void fill_bits(struct bits *b) {
    memset(b, 0, sizeof *b);
    b->a = -3; b->b = 29; b->c = -60; b->d = 1; b->e = -549755813000LL; b->f = -2; b->g = 511;
}
int check_bits(struct bits *b) {
    return b->a == 2 && b->b == 17 && b->c == 63 && b->d == 0 && b->e == 12345678901LL &&
           b->f == 1 && b->g == 300;
}
void fill_packed(struct packed_s *p) { p->c = 'x'; p->i = 0x11223344; p->s = -2; }
void fill_anon(struct anon *a) { a->tag = 9; a->fv = 2.5f; a->lo = 1; a->hi = -1; }
size_t sizes(int which) {
    switch (which) {
    case 0: return sizeof(struct mix); case 1: return sizeof(struct bits);
    case 2: return sizeof(union un); case 3: return sizeof(struct packed_s);
    case 4: return sizeof(struct anon); case 5: return offsetof(struct mix, in);
    case 6: return offsetof(struct mix, arr); case 7: return offsetof(struct mix, p);
    case 8: return offsetof(struct anon, hi); case 9: return offsetof(struct packed_s, s);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def env():
    from conftest import build_clib
    lib = ctypes.CDLL(build_clib("structs", C_SOURCE))
    lib.sizes.restype = ctypes.c_size_t
    ffi = jitffi.FFI()
    ffi.cdef(CDEFS)
    ffi.cdef("struct packed_s2 { char c; int i; short s; };", packed=True)
    return ffi, lib


def addr(ffi, p):
    return ctypes.c_void_p(int(ffi.cast("uintptr_t", p)))


def test_sizes_and_offsets_match_gcc(env):
    ffi, lib = env
    assert ffi.sizeof("struct mix") == lib.sizes(0)
    assert ffi.sizeof("struct bits") == lib.sizes(1)
    assert ffi.sizeof("union un") == lib.sizes(2)
    assert ffi.sizeof("struct packed_s2") == lib.sizes(3)
    assert ffi.sizeof("struct anon") == lib.sizes(4)
    assert ffi.offsetof("struct mix", "in") == lib.sizes(5)
    assert ffi.offsetof("struct mix", "arr") == lib.sizes(6)
    assert ffi.offsetof("struct mix", "p") == lib.sizes(7)
    assert ffi.offsetof("struct anon", "hi") == lib.sizes(8)
    assert ffi.offsetof("struct packed_s2", "s") == lib.sizes(9)


def test_read_struct_filled_by_c(env):
    ffi, lib = env
    m = ffi.new("struct mix *")
    lib.fill_mix(addr(ffi, m))
    assert m.c == b"Q" and m.i == -123456 and m.ll == -9000000000
    assert m.f == 1.5 and m.d == -2.25 and m.uc == 250
    assert m.in_ if False else getattr(m, "in").s == -7
    assert getattr(m, "in").d == 3.5
    assert list(m.arr) == [0, 11, 22, 33]
    assert ffi.string(m.name) == b"gcc"
    assert m.p == ffi.cast("void *", m)
    assert ffi.typeof(m.p) is ffi.typeof("void *")


def test_write_struct_checked_by_c(env):
    ffi, lib = env
    m = ffi.new("struct mix *", {"c": b"z", "i": 77, "ll": 1234567890123, "f": 0.5, "d": 6.125,
                                 "uc": 3, "in": [300, -1.0], "arr": [1, 2, 3, 4], "name": b"abc"})
    assert lib.check_mix(addr(ffi, m)) == 1
    m.i = 78
    assert lib.check_mix(addr(ffi, m)) == 0


def test_bitfields_read_with_sign_extension(env):
    ffi, lib = env
    b = ffi.new("struct bits *")
    lib.fill_bits(addr(ffi, b))
    assert (b.a, b.b, b.c, b.d, b.e, b.f, b.g) == (-3, 29, -60, 1, -549755813000, -2, 511)


def test_bitfields_written_like_gcc(env):
    ffi, lib = env
    b = ffi.new("struct bits *")
    b.a, b.b, b.c, b.d, b.e, b.f, b.g = 2, 17, 63, 0, 12345678901, 1, 300
    assert lib.check_bits(addr(ffi, b)) == 1
    with pytest.raises(OverflowError):
        b.a = 4
    with pytest.raises(OverflowError):
        b.b = -1
    with pytest.raises(OverflowError):
        b.g = 512
    assert b.a == 2  # unchanged after the failed writes


def test_bitfield_ctype_fields(env):
    ffi, _ = env
    fields = dict(ffi.typeof("struct bits").fields)
    assert fields["a"].bitsize == 3 and fields["a"].bitshift == 0
    assert fields["b"].bitshift == 3
    assert fields["a"].type is ffi.typeof("int")
    assert dict(ffi.typeof("struct mix").fields)["i"].bitshift == -1


def test_packed_unaligned_fields(env):
    ffi, lib = env
    p = ffi.new("struct packed_s2 *")
    lib.fill_packed(addr(ffi, p))
    assert p.c == b"x" and p.i == 0x11223344 and p.s == -2
    p.i = -5
    assert p.i == -5 and p.s == -2
    assert ffi.offsetof("struct packed_s2", "i") == 1


def test_anonymous_members_flattened(env):
    ffi, lib = env
    a = ffi.new("struct anon *")
    lib.fill_anon(addr(ffi, a))
    assert a.tag == 9 and a.fv == 2.5 and a.lo == 1 and a.hi == -1
    names = [n for n, _ in ffi.typeof("struct anon").fields]
    assert names == ["tag", "iv", "fv", "lo", "hi"]


def test_union_views_same_memory(env):
    ffi, _ = env
    u = ffi.new("union un *", {"f": 1.0})
    assert u.i == 0x3F800000
    assert list(u.bytes) == [0, 0, 0x80, 0x3F]
    u2 = ffi.new("union un *", [0x01020304])
    assert u2.bytes[0] == 4


def test_struct_assignment_copies(env):
    ffi, _ = env
    a = ffi.new("struct inner *", [1, 2.0])
    m = ffi.new("struct mix *")
    setattr(m, "in", a[0])
    a.s = 99
    assert getattr(m, "in").s == 1
    arr = ffi.new("struct inner[2]")
    arr[1] = a[0]
    assert arr[1].s == 99
    arr[0] = {"d": 4.5}
    assert arr[0].d == 4.5


def test_nested_views_share_memory(env):
    ffi, _ = env
    m = ffi.new("struct mix *")
    inner = getattr(m, "in")
    inner.s = 12
    assert getattr(m, "in").s == 12
    arr = m.arr
    arr[2] = 5
    assert m.arr[2] == 5
    assert repr(inner).startswith("<cdata 'struct inner &' 0x")


def test_views_keep_owner_alive(env):
    ffi, _ = env
    import gc
    arr = ffi.new("struct mix *", {"arr": [1, 2, 3, 4]}).arr
    gc.collect()
    junk = [ffi.new("struct mix *", {"arr": [9, 9, 9, 9]}) for _ in range(50)]
    assert list(arr) == [1, 2, 3, 4]
    del junk


def test_p0_keeps_memory_alive(env):
    ffi, _ = env
    s = ffi.new("struct inner *", [5, 6.5])[0]
    junk = [ffi.new("struct inner *", [1, 1.0]) for _ in range(50)]
    assert s.s == 5 and s.d == 6.5
    assert repr(s) == "<cdata 'struct inner' owning 16 bytes>"
    del junk


def test_null_struct_pointer_raises(env):
    ffi, _ = env
    p = ffi.cast("struct mix *", 0)
    with pytest.raises(RuntimeError):
        p.i
    with pytest.raises(RuntimeError):
        p.i = 3
    with pytest.raises(RuntimeError):
        getattr(p, "in")
    with pytest.raises(RuntimeError):
        p[0]
    q = ffi.new("struct mix *")
    q.p = ffi.NULL
    with pytest.raises(RuntimeError):
        ffi.cast("struct mix *", q.p).arr


def test_opaque_struct(env):
    ffi, _ = env
    ffi2 = jitffi.FFI()
    ffi2.cdef("struct opaque; struct opaque *mk(void);")
    p = ffi2.cast("struct opaque *", 64)
    with pytest.raises(AttributeError):
        p.x
    with pytest.raises(TypeError):
        ffi2.new("struct opaque *")
    with pytest.raises(TypeError):
        p[0]
    ffi2.cdef("struct opaque { int x; };")
    assert ffi2.new("struct opaque *", [3]).x == 3

"""FFI type API (issue 2 item 6): typeof caching/identity, CType attributes, sizeof,
alignof, offsetof (checked against gcc), getctype, list_types, include, cdef options
and the exception classes."""
import pytest

import jitffi
import jitffi as cffi_like


def test_package_names():
    assert jitffi.__version__ == "2.0.0" and jitffi.__version_info__ == (2, 0, 0)
    for name in ("FFI", "CDefError", "FFIError", "VerificationError", "VerificationMissing"):
        assert hasattr(cffi_like, name)
    assert issubclass(jitffi.CDefError, Exception)
    ffi = jitffi.FFI(backend=object())
    assert isinstance(ffi, jitffi.FFI)


def test_typeof_identity_and_cache():
    ffi = jitffi.FFI()
    ffi.cdef("struct s { int a; }; typedef struct s s_t;")
    assert ffi.typeof("int *") is ffi.typeof("int*")
    assert ffi.typeof("struct s") is ffi.typeof("s_t")
    assert ffi.typeof(ffi.new("s_t *")) is ffi.typeof("struct s *")
    assert ffi.typeof("int[5]").item is ffi.typeof("int")
    assert ffi.typeof("long int") is ffi.typeof("long")
    other = jitffi.FFI()
    other.cdef("struct s { int a; };")
    assert other.typeof("struct s") is not ffi.typeof("struct s")
    with pytest.raises(jitffi.CDefError):
        ffi.typeof("int(int)")
    with pytest.raises(jitffi.CDefError):
        ffi.typeof("unknown_t")
    with pytest.raises(TypeError):
        ffi.typeof(42)


def test_ctype_attributes():
    ffi = jitffi.FFI()
    ffi.cdef("struct s { int a; char b[3]; long c:4; }; enum e { X = 1, Y = -2 };")
    t = ffi.typeof("struct s")
    assert t.kind == "struct" and t.cname == "struct s" and repr(t) == "<ctype 'struct s'>"
    names = [n for n, _ in t.fields]
    assert names == ["a", "b", "c"]
    fa, fb, fc = (f for _, f in t.fields)
    assert (fa.offset, fa.bitshift, fa.bitsize, fa.type) == (0, -1, -1, ffi.typeof("int"))
    assert fb.type is ffi.typeof("char[3]") and fb.offset == 4
    assert fc.bitsize == 4 and fc.type is ffi.typeof("long")
    f = ffi.typeof("int(*)(long, char *, ...)")
    assert f.kind == "function" and f.args == (ffi.typeof("long"), ffi.typeof("char *"))
    assert f.result is ffi.typeof("int") and f.ellipsis is True and isinstance(f.abi, int)
    assert f.cname == "int(*)(long, char *, ...)"
    e = ffi.typeof("enum e")
    assert e.elements == {1: "X", -2: "Y"} and e.relements == {"X": 1, "Y": -2}
    a = ffi.typeof("int[]")
    assert a.length is None and a.kind == "array" and ffi.typeof("int[4]").length == 4
    assert ffi.typeof("void").kind == "void"
    with pytest.raises(AttributeError):
        ffi.typeof("int").fields
    ffi.cdef("struct opaque;")
    assert ffi.typeof("struct opaque").fields is None


def test_sizeof_alignof_offsetof_match_gcc():
    from conftest import run_c_program
    decl = """
    struct a { char c; double d; int i[3]; };
    struct b { short s; struct a in[2]; char tail; };
    union c { char x[5]; int y; };
    """
    out = run_c_program("offsets", """
    #include <stdio.h>
    #include <stddef.h>
    %s
    int main(void) {
        printf("%%zu %%zu %%zu %%zu %%zu %%zu %%zu %%zu\\n", sizeof(struct a), _Alignof(struct a),
               sizeof(struct b), offsetof(struct b, in), offsetof(struct b, in[1].i[2]),
               offsetof(struct b, tail), sizeof(union c), _Alignof(union c));
        return 0;
    }""" % decl)
    expected = [int(x) for x in out.split()]
    ffi = jitffi.FFI()
    ffi.cdef(decl)
    got = [ffi.sizeof("struct a"), ffi.alignof("struct a"), ffi.sizeof("struct b"),
           ffi.offsetof("struct b", "in"), ffi.offsetof("struct b", "in", 1, "i", 2),
           ffi.offsetof("struct b", "tail"), ffi.sizeof("union c"), ffi.alignof("union c")]
    assert got == expected
    with pytest.raises(KeyError):
        ffi.offsetof("struct a", "nope")
    with pytest.raises(TypeError):
        ffi.offsetof("int", "x")


def test_getctype():
    ffi = jitffi.FFI()
    assert ffi.getctype("char[80]", "a") == "char a[80]"
    assert ffi.getctype("int[5]", "*") == "int(*)[5]"
    assert ffi.getctype("int *", "*") == "int * *"
    assert ffi.getctype("int(*)(int)", "fn") == "int(* fn)(int)"
    assert ffi.getctype(ffi.typeof("long long")) == "long long"


def test_list_types_and_include():
    base = jitffi.FFI()
    base.cdef("typedef int myint; struct s1 { myint a; }; union u1 { int x; }; enum col { RED }; int f(int);")
    ffi = jitffi.FFI()
    ffi.include(base)
    ffi.cdef("typedef struct s1 s1_t;")
    assert ffi.sizeof("s1_t") == 4
    assert ffi.list_types() == (["myint", "s1_t"], ["s1"], ["u1"])
    with pytest.raises(ValueError):
        ffi.include(ffi)
    with pytest.raises(TypeError):
        ffi.include("nope")


def test_cdef_options_and_errors():
    ffi = jitffi.FFI()
    with pytest.raises(TypeError):
        ffi.cdef(b"int x;")
    with pytest.raises(ValueError):
        ffi.cdef("struct p3 { char c; int i; };", pack=3)
    ffi.cdef("struct p1 { char c; int i; };", packed=True)
    assert ffi.sizeof("struct p1") == 5
    ffi.cdef("struct p2 { char c; int i; };", pack=2)
    assert ffi.sizeof("struct p2") == 6
    with pytest.raises(jitffi.CDefError):
        ffi.cdef("int x")
    ffi.cdef("typedef int t1;")
    with pytest.raises(jitffi.FFIError):
        ffi.cdef("typedef long t1;")
    ffi.cdef("typedef long t1;", override=True)
    assert ffi.typeof("t1") is ffi.typeof("long")
    with pytest.raises(jitffi.CDefError):
        ffi.typeof("struct nope_never_declared_ *")[0] if False else ffi.new("undeclared_t *")


def test_new_requires_pointer_or_array():
    ffi = jitffi.FFI()
    with pytest.raises(TypeError):
        ffi.new("int")
    with pytest.raises(TypeError):
        ffi.new("void *")

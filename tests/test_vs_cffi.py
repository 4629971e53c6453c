"""Differential tests: the same expression evaluated with jitffi and with the installed
cffi 2.0.0 must give the same result (repr with addresses masked) or raise the same
exception type with the same message."""
import re

import pytest

import cffi  # installed by .ci/setup; a missing cffi must fail, not skip
import jitffi

CDEF = """
struct pt { int x, y; };
typedef struct { char a; double b; } tt;
union u { int i; char c[8]; };
struct bf { int a:3; unsigned b:5; signed char c:2; };
enum e { A, B=5, C=-1 };
struct fl { int n; int a[]; };
struct nest { struct pt p; int arr[3]; tt t; };
struct anon_s { struct { int a, b; }; union { int c, d; }; };
union anon_u { struct { int a, b; }; union { int c, d; }; };
struct anon2 { int a; union { int b; union { int c, d; }; }; int e; };
union plain_u { int i; int j; struct { int x:2; int y:3; } s; };
struct zlen { int len; short data[0]; };
struct mid0 { int x; short d[0]; int y; };
struct vtail { int len[3]; short data[]; }; struct vouter { int abc[2]; struct vtail tail; };
struct bfret { int a; int x:1; };
enum pe { PA, ... }; enum pb { PB, PC };
int abs(int); struct fps { int (*f)(int); void *v; };
extern int jitffi_no_such_global; int jitffi_no_such_function(int);
void qsort(void *, size_t, size_t, int(*)(const void *, const void *));
"""

EXPRS = [
    # integers and ranges
    'ffi.new("unsigned char*", 300)', 'ffi.new("int*", 3.5)', 'ffi.new("int*", "a")',
    'ffi.new("signed char*", -129)', 'ffi.new("signed char*", -128)[0]', 'ffi.new("short*", 32768)',
    'ffi.new("unsigned short*", 65535)[0]', 'ffi.new("unsigned short*", 65536)',
    'ffi.new("int*", 2**31)', 'ffi.new("int*", -2**31)[0]', 'ffi.new("unsigned int*", -1)',
    'ffi.new("unsigned int*", 2**32-1)[0]', 'ffi.new("long long*", 2**63)', 'ffi.new("long long*", -2**63)[0]',
    'ffi.new("unsigned long long*", 2**64)', 'ffi.new("unsigned long long*", 2**64-1)[0]',
    'ffi.new("unsigned char*", -1)', 'ffi.new("int8_t*", 127)[0]', 'ffi.new("uint16_t*", 70000)',
    'ffi.new("size_t*", 5)[0]', 'ffi.new("ssize_t*", -5)[0]', 'ffi.new("int*", True)[0]',
    'ffi.new("int*", ffi.cast("int", 5))[0]', 'ffi.new("long*", ffi.cast("char", b"A"))[0]',
    # bool, char, wide chars
    'ffi.new("_Bool*", 2)', 'ffi.new("_Bool*", True)[0]', 'ffi.new("_Bool*", 1)[0]', 'ffi.new("_Bool*", -1)',
    'ffi.new("char*", b"ab")', 'ffi.new("char*", 65)', 'ffi.new("char*", "a")', 'ffi.new("char*", b"Z")[0]',
    'ffi.new("char16_t*", "\\U00012345")', 'ffi.new("char32_t*", "\\U00012345")[0]', 'ffi.new("char16_t*", "\\u1234")[0]',
    'ffi.new("wchar_t*", "x")[0]',
    # floats
    'ffi.new("double*", "x")', 'ffi.new("double*", 1.5)[0]', 'ffi.new("float*", 1.1)[0]', 'ffi.new("double*", 7)[0]',
    'ffi.new("double*", ffi.cast("long double", 2.5))[0]', 'ffi.new("long double*", 3)[0]',
    'float(ffi.new("long double*", 1e300)[0])', 'ffi.new("float _Complex*", 1+2j)[0]', 'ffi.new("double _Complex*", 3)[0]',
    # pointers
    'ffi.new("int*", None)', 'ffi.new("int**", None)', 'ffi.new("int**", 0)', 'ffi.new("int**", ffi.new("long*"))',
    'ffi.new("int**", ffi.new("char*"))', 'ffi.new("char**", ffi.new("int*"))', 'ffi.new("void**", ffi.new("int*"))',
    'ffi.new("int**", ffi.cast("void*",0))', 'ffi.new("int**", ffi.new("int[3]"))', 'ffi.new("int**", ffi.NULL)[0]',
    'ffi.new("int**", ffi.NULL)[0] == None', 'ffi.new("int**", ffi.NULL)[0] == ffi.NULL',
    'ffi.new("int(**)(int)", ffi.cast("int(*)(int)", 0))[0]', 'ffi.new("int(**)(int)", ffi.cast("int(*)(long)", 0))',
    # new: kinds, sizes, initializers
    'ffi.new("int")', 'ffi.new("struct pt")', 'ffi.new("struct pt*")', 'ffi.new("struct pt*")[0]', 'ffi.new("tt*")',
    'ffi.new("tt*")[0]', 'ffi.new("int[3]", [1,2,3,4])', 'ffi.new("int[]", 5)', 'ffi.new("int[]", [1,2])',
    'ffi.new("char[]", b"abc")', 'ffi.new("char[3]", b"abc")', 'ffi.new("char[2]", b"abc")', 'ffi.new("int[]", -1)',
    'ffi.new("int[]", 2.0)', 'ffi.new("int[]")', 'ffi.new("void*")', 'ffi.new("void **")', 'ffi.new("int(*)(int)")',
    'list(ffi.new("int[4]", [1,2]))', 'list(ffi.new("int[]", (7,8,9)))', 'ffi.new("char[]", "ab")', 'ffi.new("wchar_t[]", b"ab")',
    'ffi.new("struct pt*", [1,2,3])', 'ffi.new("struct pt*", {"z":1})', 'ffi.new("struct pt*", 5)',
    'ffi.new("union u*", [1])', 'ffi.new("union u*", [1, 2])', 'ffi.new("union u*", {"i":1,"c":b"a"})',
    'ffi.new("struct pt*", {"y": 4}).y', 'ffi.new("struct pt*", (1, 2)).x', 'ffi.new("struct pt*", [1]).y',
    'ffi.new("struct nest*", [[1,2],[3,4,5],[b"q", 2.5]]).t.b', 'list(ffi.new("struct nest*", {"arr": [9]}).arr)',
    'ffi.new("struct nest*", [[1,2],[3,4,5,6]])', 'ffi.new("struct nest*", {"p": ffi.new("struct pt*", [5,6])[0]}).p.y',
    'ffi.new("struct pt[2]", [[1,2],{"y":3}])[1].y', 'ffi.new("int[2][3]", [[1,2,3],[4]])[1][0]', 'ffi.new("int[2][3]")[1]',
    'ffi.new("_Bool[]", b"\\x00\\x02")', 'ffi.new("_Bool[]", b"\\x00\\x01")', 'list(ffi.new("_Bool[]", b"\\x00\\x01"))',
    'ffi.new("char16_t[]", "a\\U00012345")', 'ffi.new("wchar_t[]", "ab")', 'ffi.new("wchar_t[2]", "abc")',
    # flexible arrays
    'ffi.new("struct fl*", [3, [1,2,3]])', 'ffi.sizeof(ffi.new("struct fl*", [3, [1,2,3]])[0])', 'ffi.new("struct fl*", [3, 4]).a',
    'ffi.new("struct fl*", {"a":4})', 'ffi.new("struct fl*").a', 'ffi.new("struct fl*", [2, [5, 6]]).a[1]',
    # bitfields
    'ffi.new("struct bf*", [-1, 31])[0].a', 'ffi.new("struct bf*", [4, 31])', 'ffi.new("struct bf*", [3, 32])',
    'ffi.new("struct bf*", [-4, 0, -2]).c', 'ffi.new("struct bf*", [0, 0, 2])', 'ffi.new("struct bf*", [3, 17, 1]).b',
    # fields
    'ffi.new("struct pt*").z', 'ffi.new("struct pt*")[0].z', 'ffi.new("struct pt*").x', 'dir(ffi.new("struct pt*"))',
    'ffi.new("struct nest*").arr', 'ffi.new("struct nest*").p', 'ffi.new("int*").x',
    # indexing / slicing
    'ffi.new("int[2]")[2]', 'ffi.new("int[2]")[-1]', 'ffi.new("int[]", 3)[0:2]', 'ffi.new("int[]", 3)[0:2:1]',
    'ffi.new("int[]", 3)[2:1]', 'ffi.new("int*")[0:2]', 'ffi.new("int[3]")[1:3]', 'ffi.new("int[3]")[1:4]',
    'list(ffi.new("int[]", [1,2,3])[1:3])', 'ffi.new("int[]", 3)[:]', 'ffi.new("int*")[:2]',
    'ffi.new("int[]", [1,2,3])["a"]',
    # len/iter/int/float/bool
    'len(ffi.new("int*"))', 'list(ffi.new("int*"))', 'len(ffi.new("int[7]"))', 'int(ffi.new("int*"))',
    'int(ffi.cast("int*",5))', 'float(ffi.cast("int",5))', 'int(ffi.cast("double",5.7))', 'int(ffi.cast("double",-5.7))',
    'bool(ffi.cast("int*",0))', 'bool(ffi.cast("int*",1))', 'bool(ffi.cast("int",0))', 'bool(ffi.cast("double",0.5))',
    'int(ffi.cast("char", 65))', 'int(ffi.cast("_Bool", 1))', 'int(ffi.cast("enum e", 5))', 'float(ffi.cast("float", 0.5))',
    'complex(ffi.cast("int",1))', 'complex(ffi.cast("double _Complex", 1+2j))', 'int(ffi.cast("wchar_t", 66))', 'int(ffi.cast("wchar_t", -1))', 'int(ffi.cast("wchar_t", 2**31))', 'int(ffi.cast("char", 255))',
    'ffi.cast("int", ffi.cast("char", 200))', 'int(ffi.cast("char32_t", -1))', 'ffi.cast("double", ffi.cast("char", 200))',
    'ffi.new("int*", ffi.cast("char", 200))[0]', 'ffi.cast("long", ffi.cast("wchar_t", -1))', 'ffi.alignof("long double")',
    # arithmetic / comparisons
    'ffi.cast("int*",8)+1', '1+ffi.cast("int*",8)', 'ffi.cast("int*",8)-1', 'ffi.cast("int*",8)-ffi.cast("int*",0)',
    'ffi.cast("int*",8)-ffi.cast("long*",0)', 'ffi.cast("void*",8)+1', 'ffi.cast("struct pt*",8)+1',
    'ffi.cast("int",3)==3', 'ffi.cast("int",3)==ffi.cast("long",3)', 'hash(ffi.cast("int",3))', 'ffi.cast("int",3) < 4',
    'ffi.cast("int*",8)<ffi.cast("int*",9)', 'ffi.cast("int*",8)==ffi.cast("long*",8)', 'ffi.cast("int*",8)==8',
    'ffi.cast("double", 1.5) == 1.5', 'ffi.cast("char", b"a") == b"a"', 'hash(ffi.cast("int*",8)) == hash(ffi.cast("int*",8))',
    'ffi.cast("int", 3) + 1',
    # cast
    'ffi.cast("int", 5)', 'ffi.cast("int*", 5)', 'ffi.cast("int*", 0)', 'ffi.cast("char", 65)', 'ffi.cast("double", 1.5)',
    'ffi.cast("long double", 1.5)', 'ffi.cast("float", 1.1)', 'ffi.cast("_Bool", 3)', 'ffi.cast("enum e", 5)',
    'ffi.cast("enum e", 7)', 'ffi.cast("enum e", -1)', 'ffi.cast("int[3]", 0)', 'ffi.cast("struct pt", 0)', 'ffi.cast("int", b"a")',
    'ffi.cast("char", b"a")', 'ffi.cast("int", 2**70)', 'ffi.cast("unsigned char", 300)', 'ffi.cast("int", 2.7)',
    'ffi.cast("int", -2.7)', 'ffi.cast("float", ffi.cast("int", 3))', 'ffi.cast("int", ffi.cast("double", 3.9))',
    'ffi.cast("wchar_t", 65)', 'ffi.cast("int", "a")', 'ffi.cast("char16_t", "\\u1234")', 'ffi.cast("intptr_t", ffi.cast("int*", 5))',
    'ffi.cast("int", None)', 'ffi.cast("int*", 1.5)', 'ffi.cast("float", b"a")', 'ffi.cast("char", 300)',
    'ffi.cast("unsigned int", -1)', 'ffi.cast("signed char", 255)', 'ffi.cast("uint64_t", -1)', 'ffi.cast("int(*)(int)", 0)',
    'ffi.cast("long double", ffi.cast("long double", 0.1)) == ffi.cast("long double", 0.1)', 'ffi.cast("double", ffi.cast("long double", 0.1))',
    'ffi.cast("_Bool", 0.5)', 'ffi.cast("short", 65537)',
    # string / unpack
    'ffi.string(ffi.cast("enum e", 5))', 'ffi.string(ffi.cast("enum e", 7))', 'ffi.string(ffi.cast("char*",0))',
    'ffi.unpack(ffi.new("char[]", b"ab\\0c"), 4)', 'ffi.unpack(ffi.new("int[]", [1,2,3]), 3)',
    'ffi.unpack(ffi.new("wchar_t[]", "abc"), 2)', 'ffi.string(ffi.new("char[]", b"abc"), 2)', 'ffi.string(ffi.new("int[]",3))',
    'ffi.string(ffi.cast("int",3))', 'ffi.string(ffi.cast("char", 65))', 'ffi.string(ffi.new("wchar_t[]", "ab"))',
    'ffi.string(ffi.new("char16_t[]", "a\\U00012345"))', 'ffi.string(ffi.new("char[]", b"ab\\0cd"))', 'ffi.string(ffi.new("char[3]", b"abc"))',
    'ffi.string(ffi.new("unsigned char[]", [65,66]))', 'ffi.string(ffi.new("signed char[]", [65,66]))', 'ffi.unpack(ffi.cast("int*",0), 0)',
    'ffi.unpack(ffi.new("struct pt[2]", [[1,2],[3,4]]), 2)[1].x', 'ffi.string(ffi.new("wchar_t*", "z"))', 'ffi.string(ffi.new("char[]",b"ab"), -1)',
    'ffi.string(ffi.new("char*", b"q"))', 'ffi.string(ffi.cast("wchar_t", 0x41))',
    # typeof / sizeof / offsetof / getctype
    'ffi.typeof("int(int)")', 'ffi.typeof(ffi.new("int*"))', 'ffi.typeof(3)', 'ffi.sizeof(3)', 'ffi.sizeof("struct pt*")',
    'ffi.sizeof("void")', 'ffi.sizeof(ffi.new("int[]",5))', 'ffi.sizeof(ffi.cast("int",3))', 'ffi.sizeof(ffi.new("struct pt*")[0])',
    'ffi.alignof("tt")', 'ffi.alignof("struct bf")', 'ffi.offsetof("struct nest", "arr", 2)', 'ffi.offsetof("struct nest*", "t")',
    'ffi.offsetof("int*", 3)', 'ffi.offsetof("int[5]", 3)', 'ffi.offsetof("struct nest", "t", "b")', 'ffi.offsetof("struct pt", "z")',
    'ffi.getctype("int","x")', 'ffi.getctype("int*","x")', 'ffi.getctype("int[5]","*")', 'ffi.getctype("int*[5]","*x")',
    'ffi.getctype("int(*)(int)","f")', 'ffi.getctype("int","[3]")', 'ffi.getctype(ffi.typeof("int*"))', 'ffi.getctype("struct pt", "*p")',
    'ffi.getctype("int[2][3]", "*")', 'ffi.getctype("char*", "  x ")',
    'ffi.typeof("int *").cname', 'ffi.typeof("long int").cname', 'ffi.typeof("int(*)(long, ...)").cname', 'ffi.typeof("int(*)[5]").item',
    'ffi.typeof("int[5]").length', 'ffi.typeof("int[]").length', 'ffi.typeof("enum e").elements', 'ffi.typeof("enum e").relements',
    'ffi.typeof("int(*)(int, ...)").args', 'ffi.typeof("int(*)(int, ...)").ellipsis', 'ffi.typeof("void(*)(void)").result',
    'ffi.typeof("int(*)(int)").abi', 'ffi.typeof("int").item', 'ffi.typeof("int").fields', 'dir(ffi.typeof("struct pt"))',
    'dir(ffi.typeof("int(*)(int)"))', '[(n, f.offset, f.bitshift, f.bitsize, f.type) for n, f in ffi.typeof("struct bf").fields]',
    'ffi.typeof("struct pt").kind', 'ffi.typeof("union u").kind', 'ffi.typeof("enum e").kind', 'ffi.typeof("void").kind',
    'ffi.typeof("int(*)(int)").kind', 'ffi.typeof("int[2]").kind', 'ffi.typeof("tt")', 'ffi.typeof("struct pt") is ffi.typeof("struct pt")',
    'ffi.typeof("int*") is ffi.typeof("int  *")', 'ffi.list_types()',
    # misc API
    'ffi.release(ffi.cast("int*",0))', 'ffi.from_handle(ffi.cast("void*",0))', 'ffi.from_handle(3)', 
    'ffi.new_handle(3)', 'ffi.new_handle(3) == ffi.new_handle(3)', 'ffi.gc(ffi.new("int*"), None)',
    'ffi.addressof(ffi.new("struct pt*"))', 'ffi.typeof(ffi.addressof(ffi.new("struct nest*")[0], "t", "b"))',
    '(lambda s: ffi.addressof(s, "arr", 2) - ffi.addressof(s, "arr", 0))(ffi.new("struct nest*")[0])',
    'ffi.from_buffer(bytearray(b"abc"))', 'ffi.from_buffer(b"abc")', 'ffi.from_buffer("abc")', 'ffi.from_buffer("int[]", bytearray(10))',
    'ffi.from_buffer("int[4]", bytearray(10))', 'ffi.from_buffer("int*", bytearray(10))', 'ffi.from_buffer(bytes(3), require_writable=True)',
    'ffi.buffer(ffi.new("char[]", b"ab"))[:]', 'ffi.buffer(ffi.new("int*"))[:]', 'ffi.buffer(ffi.new("int*"), 2)[:]',
    'len(ffi.buffer(ffi.new("int[]", 5)))', 'ffi.buffer(ffi.cast("int",0))', 'ffi.buffer(ffi.new("char[]", b"abc"))[1]',
    'ffi.buffer(ffi.new("char[]", b"abc")) == b"abc\\x00"', 'bytes(ffi.buffer(ffi.new("int[]", [1, 2])))',
    'ffi.buffer(ffi.new("char[]", b"abcd"))[1:3]', 'ffi.buffer(ffi.new("char[]", b"abcd"))[-1]', 'ffi.buffer(ffi.new("char[]", b"abcd"))[9]',
    'ffi.memmove(ffi.new("char[]",3), b"ab", 2)', 'ffi.NULL', 'ffi.cast("int*", 0) == ffi.NULL',
    # more shapes
    'ffi.new("int[][3]", 2)', 'ffi.new("int[][3]", [[1,2,3],[4]])[1][0]', 'len(ffi.new("int[][3]", 4))', 'ffi.sizeof(ffi.new("int[][3]", 4))',
    'ffi.new("int(*)[3]")', 'ffi.new("int(*)[3]")[0]', 'ffi.typeof(ffi.new("int[2][3]")[1])', 'ffi.new("int*[2]")[0]',
    'ffi.new("struct pt*", ffi.new("struct pt*", [3, 4])[0]).y', 'ffi.new("struct pt*", ffi.new("struct pt*"))',
    'ffi.new("struct nest*", {"t": {"a": b"z"}}).t.a', 'ffi.new("struct nest*", [[1]]).p.y', 'ffi.new("union u*", {"c": b"ab"}).c[1]',
    'ffi.new("union u*", {"c": [1, 2]}).i', 'ffi.new("char[4]", [b"a", b"b"])[1]', 'ffi.new("char[4]", [1])',
    'ffi.new("signed char[]", b"ab")', 'ffi.new("unsigned char[]", [1, 300])', 'ffi.new("double[2]", [1, 2.5])[0]',
    'ffi.new("float[]", [1e40])[0]', 'ffi.new("int8_t[]", [-128, 127])[0]', 'ffi.new("_Bool[]", [True, 0])[0]',
    'ffi.cast("int[3]", ffi.new("int[3]"))', 'ffi.cast("char *", ffi.new("int[3]"))', 'ffi.cast("int", ffi.cast("enum e", 5))',
    'ffi.cast("enum e", ffi.cast("int", 5))', 'ffi.cast("double", ffi.cast("char", b"a"))', 'ffi.cast("float", ffi.cast("_Bool", 1))',
    'ffi.cast("int*", ffi.cast("long", 64))', 'ffi.cast("struct pt*", ffi.cast("void*", 64)) == ffi.cast("int*", 64)',
    'ffi.cast("int(*)(int)", ffi.cast("void*", 64))', 'ffi.cast("void*", ffi.cast("int(*)(int)", 64))',
    'ffi.new("void*[2]", [ffi.new("int*"), ffi.NULL])[1]', 'ffi.new("int**", [ffi.new("int*")])',
    'ffi.new("char**", [b"abc"])', 'ffi.new("struct pt**", [[1,2]])', 'ffi.new("int*", [5])', 'ffi.new("int*", (5,))',
    'ffi.string(ffi.new("char[]", b""))', 'ffi.unpack(ffi.new("char16_t[]", "ab"), 1)', 'ffi.unpack(ffi.new("_Bool[]", [1, 0]), 2)',
    'ffi.unpack(ffi.new("double[]", [1.5]), 1)', 'ffi.unpack(ffi.new("int*"), -1)', 'ffi.unpack(ffi.cast("int", 1), 1)',
    'ffi.string(ffi.new("int*"))', 'ffi.string(ffi.new("struct pt*")[0])', 'ffi.string(ffi.cast("_Bool", 1))',
    'ffi.new("struct bf*", {"b": 3}).b', 'ffi.new("struct bf*", {"c": -2}).c', 'ffi.new("struct bf*", [1.5])',
    'ffi.typeof(ffi.new("struct bf*")[0])', 'ffi.new("tt[2]")[1]', 'ffi.new("tt*", {"b": 2}).b', 'ffi.new("tt*", [b"q"]).a',
    'ffi.new("enum e[2]", [5, -1])[1]', 'ffi.new("enum e*", 2**40)', 'ffi.cast("enum e", 2**40)',
    'ffi.new("int[2]") == ffi.new("int[2]")', 'bool(ffi.new("struct pt*")[0])', 'ffi.new("int[3]")[1:1]',
    '(lambda a: (a + 3) - a)(ffi.new("int[3]"))', '[1, 2, 3][ffi.cast("int", 1)]', 'ffi.cast("int*", 0) < 5', 'ffi.new("uint8_t[]", b"ab")', 'ffi.new("int8_t[2]", b"abc")', 'ffi.sizeof(ffi.new("int[3]")[0:2])',
    # arrays of unsized arrays; what an allocator's alloc() may return
    'ffi.typeof("int[10][]")', 'ffi.sizeof("int[][3]")', 'ffi.new_allocator(alloc=lambda n: 42)("int[10]")',
    'ffi.new_allocator(alloc=lambda n: ffi.cast("int", 3))("int[10]")',
    'ffi.new_allocator(alloc=lambda n: ffi.new("struct pt*")[0])("int[10]")',
    # anonymous members: positional initializers skip union members after the first
    '[(n, f.offset, f.flags) for n, f in ffi.typeof("struct anon2").fields]',
    '[(n, f.flags) for n, f in ffi.typeof("union anon_u").fields]', '[(n, f.flags) for n, f in ffi.typeof("union plain_u").fields]',
    'ffi.new("struct anon_s *", [1, 2, 3]).d', 'ffi.new("struct anon_s *", [0, 0, 0, 0])',
    'ffi.new("union anon_u *", [123, 456]).b', 'ffi.new("union anon_u *", [0, 0, 0])', 'ffi.new("union plain_u *", [1, 2])',
    'ffi.new("struct anon2 *", [11, 22, 33]).e', 'ffi.new("struct anon2 *", [11, 22, 33, 44])',
    # a pointer from ffi.new points to one item
    'ffi.new("struct pt *")[1]', 'ffi.new("struct pt *")[-1]', 'ffi.new("int *")[1]', 'ffi.new("int *", 7)[0]',
    '(lambda p: p.__setitem__(1, 5))(ffi.new("int *"))', 'ffi.cast("int *", ffi.new("int[2]"))[1]', '(ffi.new("int *") + 1) - 1 == ffi.NULL',
    # zero-length array fields read as pointers; flexible arrays at the end of a last struct field
    'ffi.cast("struct zlen *", ffi.new("char[]", 16)).data', 'ffi.cast("struct mid0 *", ffi.new("char[]", 16)).d',
    'ffi.typeof("struct zlen").fields[1][1].type', 'ffi.new("struct zlen *", [1, [1, 2, 3]])',
    'ffi.new("struct vouter *", [[10], [[20], [3, 4, 5, 6, 7]]]).tail.data[4]',
    'ffi.sizeof(ffi.new("struct vouter *", {"tail": {"data": [1, 2, 3]}})[0])',
    # callbacks cffi refuses; functions without parameters print as ()
    'ffi.callback("struct bfret f(void)", lambda: 0)', 'ffi.callback("int f(struct bfret)", lambda x: 0)',
    'ffi.callback("int f(int, ...)", lambda *a: 0)', 'ffi.typeof("int(*)(void)")', 'ffi.typeof("void(*(*)(void))(void)")',
    'ffi.cast("struct bfret(*)(void)", 0)',
    # enums: '...' ones have no known values in ABI mode
    '(lambda lib: lib.PB)(ffi.dlopen(None))', '(lambda lib: lib.PC)(ffi.dlopen(None))', '(lambda lib: lib.PA)(ffi.dlopen(None))',
    # struct and union definitions inside a type string; ffi.gc(p, None)
    'ffi.sizeof("struct { int a; }")', 'ffi.new("struct { int i[4]; } *", {"i": ffi.new("int[4]", [1, 2, 3, 4])}).i[3]',
    'ffi.sizeof("union { int a; double b; } [3]")', 'ffi.gc(ffi.gc(ffi.new("int *"), lambda p: 0), None)',
    'ffi.gc(ffi.new("int *"), None)',
    # a function taken from a lib used where a function pointer goes, compared with one
    '(lambda lib: ffi.new("struct fps *", [lib.abs]).f(-3))(ffi.dlopen(None))',
    '(lambda lib: ffi.new("struct fps *", {"v": lib.abs}).v == ffi.cast("void *", lib.abs))(ffi.dlopen(None))',
    '(lambda lib: ffi.new("int(*[2])(int)", [lib.abs])[0](-4))(ffi.dlopen(None))',
    '(lambda lib: ffi.new("int(**)(int)", lib.abs)[0](-5))(ffi.dlopen(None))',
    '(lambda lib: ffi.new("long(**)(int)", lib.abs))(ffi.dlopen(None))',
    '(lambda lib: ffi.cast("int(*)(int)", lib.abs) == lib.abs)(ffi.dlopen(None))',
    '(lambda lib: lib.abs == ffi.cast("int(*)(int)", lib.abs))(ffi.dlopen(None))',
    '(lambda lib: ffi.addressof(lib, "abs") != lib.abs)(ffi.dlopen(None))',
    '(lambda lib: ffi.cast("void *", 0) == lib.abs)(ffi.dlopen(None))',
    # a function from a lib as a function-pointer argument: the types must agree
    '(lambda lib: lib.qsort(ffi.NULL, 0, 1, lib.abs))(ffi.dlopen(None))',
    '(lambda lib: lib.qsort(ffi.NULL, 0, 1, ffi.cast("int(*)(const void *, const void *)", lib.abs)))(ffi.dlopen(None))',
    '(lambda lib: lib.qsort(ffi.NULL, 0, 1, None))(ffi.dlopen(None))',
    # declared but missing from the library
    '(lambda lib: lib.jitffi_no_such_global)(ffi.dlopen(None))',
    '(lambda lib: setattr(lib, "jitffi_no_such_global", 1))(ffi.dlopen(None))',
    '(lambda lib: lib.jitffi_no_such_function)(ffi.dlopen(None))',
    '(lambda lib: ffi.addressof(lib, "jitffi_no_such_global"))(ffi.dlopen(None))',
    '(lambda lib: ffi.addressof(lib, "jitffi_no_such_function"))(ffi.dlopen(None))',
]


def test_uncleared_allocator_really_does_not_clear():
    # As cffi's own test: memory from an allocator that does not clear shows what the
    # previous owner wrote, at least once in a few hundred tries (a clearing one never).
    for mod in (cffi, jitffi):
        ffi = mod.FFI()
        clearing, raw = ffi.new_allocator(), ffi.new_allocator(should_clear_after_alloc=False)
        for retry in range(400):
            p1, p2 = clearing("int[10]"), raw("int[]", 10 + retry * 13)
            assert list(p1) == [0] * 10
            seen = any(p2[i] for i in range(10))
            for i in range(10):
                p1[i], p2[i] = -42, -43
            if seen:
                break
        else:
            raise AssertionError("%s: should_clear_after_alloc=False memory was always zero" % mod.__name__)


def test_every_ffi_method_has_a_docstring():
    import jitffi._cffi_backend as backend
    for cls in (jitffi.FFI, backend.FFI):
        for name in dir(cls):
            if name.startswith("_"):
                continue
            m = getattr(cls, name, None)
            if callable(m) and not isinstance(m, (type, jitffi.FFI.CData)):
                assert m.__doc__, "%s.%s has no docstring" % (cls.__name__, name)


def _run(mod, expr):
    ffi = mod.FFI()
    ffi.cdef(CDEF)
    try:
        r = eval(expr, {"ffi": ffi})
        if isinstance(r, list):
            r = [x for x in r]
        text = repr(r)
    except Exception as e:
        text = "!! %s: %s" % (type(e).__name__, e)
    text = re.sub(r"0x[0-9a-f]+", "0x?", text)
    # the cdata class is named differently (type name only, in Python's own messages)
    text = text.replace("_cffi_backend._CDataBase", "CDATA").replace("jitffi._jitffi.CData", "CDATA")
    text = re.sub(r"<_cffi_backend\.|<jitffi\.|<jitffi\._jitffi\.", "<MOD.", text)
    text = re.sub(r"MOD\.CField object at 0x\?", "MOD.CField", text)
    text = re.sub(r"<CField '[^>]*>", "<MOD.CField>", text)
    return text


@pytest.mark.parametrize("expr", EXPRS)
def test_same_as_cffi(expr):
    expected = _run(cffi, expr)
    got = _run(jitffi, expr)
    assert got == expected


def test_abi_constants_same_as_cffi():
    import _cffi_backend
    from jitffi import _jitffi
    for name in ("FFI_DEFAULT_ABI", "FFI_CDECL"):
        assert getattr(_jitffi, name) == getattr(_cffi_backend, name), name


def _opaque_enum_warnings(mod):
    import warnings
    ffi = mod.FFI()
    ffi.cdef("enum op;")
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        n = int(ffi.cast("enum op", -1))
        ffi.cast("enum op", 1)  # once per ffi: the type is built once
    return n, [(w.category.__name__, str(w.message)) for w in log]


def test_opaque_enum_warns_as_cffi():
    assert _opaque_enum_warnings(jitffi) == _opaque_enum_warnings(cffi)
    assert _opaque_enum_warnings(jitffi)[1][0][1].startswith("'enum op' has no values")


def _lib_kept_alive_by_ffi(mod):
    import gc
    import weakref
    ffi = mod.FFI()
    ffi.cdef("int abs(int);")
    lib = ffi.dlopen(None)
    lib_r = weakref.ref(lib)
    f = lib.abs
    del lib
    gc.collect()
    return lib_r() is not None, f(-2)


def test_ffi_keeps_its_libs_alive_as_cffi():
    assert _lib_kept_alive_by_ffi(jitffi) == _lib_kept_alive_by_ffi(cffi) == (True, 2)


def _shared_types(mod):
    # Types that depend on no declaration are one CType object for all FFIs, held only
    # while used; declared ones stay per FFI.
    import gc
    import weakref
    ffi1, ffi2 = mod.FFI(), mod.FFI()
    ffi1.cdef("typedef int myint_t; struct foo { int x; };")
    ffi2.cdef("struct foo { int x; };")
    same = [ffi1.typeof(a) is ffi2.typeof(b) for a, b in [
        ("char", "char "), ("long", "signed long int"), ("double *", "double*"),
        ("int ***", " int * * *"), ("int[]", "signed int[]"), ("signed int*[17]", "int *[17]"),
        ("void", "void"), ("int(*)(int,int)", "int(*)(int, int)"), ("myint_t *", "int *"),
        ("struct foo", "struct foo"), ("struct foo *", "struct foo*")]]
    same.append(ffi1.typeof(ffi1.new("int *")) is ffi2.typeof("int *"))
    same.append(ffi1.typeof(ffi1.NULL) is ffi2.typeof("void *"))
    ffi = mod.FFI()
    t1 = ffi.typeof("unsigned short int **")
    t2 = ffi.typeof("unsigned short int *")
    w1, w2 = weakref.ref(t1), weakref.ref(t2)
    del t1, ffi
    gc.collect()
    lifetimes = [w1() is None, w2() is t2]
    ffi = mod.FFI()
    lifetimes.append(ffi.typeof(ffi.new("unsigned short int **")[0]) is t2)
    t3 = ffi.typeof("long ***")
    w4 = weakref.ref(ffi.typeof("long **"))
    del ffi
    gc.collect()
    lifetimes.append(w4() is not None)  # kept alive by the pointer type to it
    return same, lifetimes


def test_declaration_free_types_are_shared_across_ffis_as_cffi():
    got = _shared_types(jitffi)
    assert got == _shared_types(cffi)
    assert got[0][:9] == [True] * 9 and got[0][9:11] == [False, False] and all(got[1])


def test_line_comment_continuations_as_cffi():
    # A backslash at the end of a `//` comment continues it on the next line; `\\` does
    # not (cffi's comment rule); both FFIs declare the same names.
    src = ("double // blah \\\n    more comments\nx(void);\n"
           "double // blah // blah\\\\\ny(void);\n"
           "double // blah\\   etc\nz(void);\n")
    keys = []
    for lib in (cffi, jitffi):
        ffi = lib.FFI()
        ffi.cdef(src)
        keys.append(sorted(ffi._parser._declarations))
    assert keys[0] == keys[1] == ["function x", "function y", "function z"]

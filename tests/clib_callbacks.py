"""C test library for tests/test_callbacks.py: C code that calls function pointers
(scalars at their limits, aggregates by value, many calls, threads, re-entrancy)."""
import os
import subprocess
import tempfile

from conftest import CC

C_SOURCE = r"""
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <complex.h>
#include <pthread.h>
#include <string.h>
#include <wchar.h>

#define PASS(name, T) T call_##name(T (*cb)(T), T x) { return cb(x); }
PASS(schar, signed char)
PASS(uchar, unsigned char)
PASS(char, char)
PASS(short, short)
PASS(ushort, unsigned short)
PASS(int, int)
PASS(uint, unsigned int)
PASS(long, long)
PASS(ulong, unsigned long)
PASS(llong, long long)
PASS(ullong, unsigned long long)
PASS(i8, int8_t)
PASS(u8, uint8_t)
PASS(i16, int16_t)
PASS(u16, uint16_t)
PASS(i32, int32_t)
PASS(u32, uint32_t)
PASS(i64, int64_t)
PASS(u64, uint64_t)
PASS(size, size_t)
PASS(ssize, ptrdiff_t)
PASS(bool, _Bool)
PASS(float, float)
PASS(double, double)
PASS(wchar, wchar_t)
PASS(ptr, void *)

/* The callback sees small integers correctly extended whatever the upper register bits
   hold: call through a pointer typed with a wider argument that has junk upper bits. */
int call_short_dirty(int (*cb)(short)) {
    int (*wide)(long) = (int (*)(long))cb;
    return wide(0x123456780000FFFFL);    /* low 16 bits: -1 */
}

double call_many(double (*cb)(int, double, long, float, char, short, double, long long,
                              int, double, int, double, float, long),
                 int base) {
    return cb(base, 1.5, 3L, 2.25f, 'a', -7, 1e10, -9000000000LL, 11, -0.5, 13, 0.125, 4.5f, 15L);
}

struct pt { double x, y; };
struct big { long a, b, c, d; };
struct small { char c; short s; };
struct odd3 { char a, b, c; };
struct mixed { int i; float f; double d; };
struct f3 { float a, b, c; };
union u { int i; float f; long long l; };

/* Calls cb with known values, checks what it returns; returns 1 when all is right. */
int check_pt(struct pt (*cb)(struct pt, int)) {
    struct pt p = {1.5, -2.25};
    struct pt r = cb(p, 3);
    return r.x == 4.5 && r.y == -6.75;
}
int check_big(struct big (*cb)(struct big, struct big)) {
    struct big a = {1, 2, 3, 4}, b = {10, 20, 30, 40};
    struct big r = cb(a, b);
    return r.a == 11 && r.b == 22 && r.c == 33 && r.d == 44;
}
int check_small(struct small (*cb)(struct small)) {
    struct small s = {'x', -300};
    struct small r = cb(s);
    return r.c == 'y' && r.s == -301;
}
int check_odd3(struct odd3 (*cb)(struct odd3, struct odd3)) {
    struct odd3 a = {1, 2, 3}, b = {10, 20, 30};
    struct odd3 r = cb(a, b);
    return r.a == 11 && r.b == 22 && r.c == 33;
}
int check_mixed(struct mixed (*cb)(int, struct mixed, double)) {
    struct mixed m = {7, 0.5f, 2.0};
    struct mixed r = cb(1, m, 0.25);
    return r.i == 8 && r.f == 1.5f && r.d == 2.25;
}
int check_f3(struct f3 (*cb)(struct f3)) {
    struct f3 v = {1.0f, 2.0f, 3.0f};
    struct f3 r = cb(v);
    return r.a == 2.0f && r.b == 4.0f && r.c == 6.0f;
}
int check_union(union u (*cb)(union u)) {
    union u v; v.l = 0; v.i = 41;
    union u r = cb(v);
    return r.i == 42;
}
/* Aggregates after the argument registers are used up (they go to the stack). */
int check_pt_stack(double (*cb)(long, long, long, long, long, long, struct big, struct pt,
                                double, double, double, double, double, double, double, double,
                                struct pt)) {
    struct big b = {1, 2, 3, 4};
    struct pt p = {0.5, 0.25}, q = {100, 200};
    double r = cb(1, 2, 3, 4, 5, 6, b, p, 1, 2, 3, 4, 5, 6, 7, 8, q);
    return r == 21 + 10 + 0.75 + 36 + 300;
}
int check_long_double(long double (*cb)(long double, int)) {
    long double r = cb(1.5L, 2);
    return r == 3.0L;
}
int check_complex(double _Complex (*cb)(double _Complex)) {
    double _Complex r = cb(1.0 + 2.0 * I);
    return creal(r) == 2.0 && cimag(r) == 4.0;
}
int check_fcomplex(float _Complex (*cb)(float _Complex)) {
    float _Complex r = cb(1.0f - 2.0f * I);
    return crealf(r) == 3.0f && cimagf(r) == -6.0f;
}

long call_cb_n(int (*cb)(int), int n) {
    long total = 0;
    for (int i = 0; i < n; i++) total += cb(i);
    return total;
}
int call_cb_once(int (*cb)(int), int x) { return cb(x); }
void call_void(void (*cb)(int), int x) { cb(x); }

/* Threads created by C, never seen by Python. */
struct job { int (*cb)(int); int base, count; long sum; };
static void *worker(void *arg) {
    struct job *j = arg;
    for (int i = 0; i < j->count; i++) j->sum += j->cb(j->base + i);
    return NULL;
}
long run_threads(int (*cb)(int), int nthreads, int per_thread) {
    pthread_t t[16];
    struct job jobs[16];
    if (nthreads > 16) nthreads = 16;
    for (int k = 0; k < nthreads; k++) {
        jobs[k].cb = cb; jobs[k].base = k * per_thread; jobs[k].count = per_thread; jobs[k].sum = 0;
        pthread_create(&t[k], NULL, worker, &jobs[k]);
    }
    long total = 0;
    for (int k = 0; k < nthreads; k++) { pthread_join(t[k], NULL); total += jobs[k].sum; }
    return total;
}

/* Re-entrancy: Python -> C -> Python -> C -> Python. */
int nest(int (*cb)(int), int depth) { return cb(depth); }
"""

_cache = {}


def build(tmpdir=None):
    """Compiles the library once per process; returns its path."""
    if "path" in _cache:
        return _cache["path"]
    d = tmpdir or tempfile.mkdtemp(prefix="jitffi_cb_")
    src = os.path.join(d, "cbtest.c")
    out = os.path.join(d, "libcbtest.so")
    with open(src, "w") as f:
        f.write(C_SOURCE)
    subprocess.check_call(CC + ["-O1", "-shared", "-fPIC", "-pthread", "-o", out, src])
    _cache["path"] = out
    return out


CDEF = r"""
signed char call_schar(signed char(*)(signed char), signed char);
unsigned char call_uchar(unsigned char(*)(unsigned char), unsigned char);
char call_char(char(*)(char), char);
short call_short(short(*)(short), short);
unsigned short call_ushort(unsigned short(*)(unsigned short), unsigned short);
int call_int(int(*)(int), int);
unsigned int call_uint(unsigned int(*)(unsigned int), unsigned int);
long call_long(long(*)(long), long);
unsigned long call_ulong(unsigned long(*)(unsigned long), unsigned long);
long long call_llong(long long(*)(long long), long long);
unsigned long long call_ullong(unsigned long long(*)(unsigned long long), unsigned long long);
int8_t call_i8(int8_t(*)(int8_t), int8_t);
uint8_t call_u8(uint8_t(*)(uint8_t), uint8_t);
int16_t call_i16(int16_t(*)(int16_t), int16_t);
uint16_t call_u16(uint16_t(*)(uint16_t), uint16_t);
int32_t call_i32(int32_t(*)(int32_t), int32_t);
uint32_t call_u32(uint32_t(*)(uint32_t), uint32_t);
int64_t call_i64(int64_t(*)(int64_t), int64_t);
uint64_t call_u64(uint64_t(*)(uint64_t), uint64_t);
size_t call_size(size_t(*)(size_t), size_t);
ptrdiff_t call_ssize(ptrdiff_t(*)(ptrdiff_t), ptrdiff_t);
_Bool call_bool(_Bool(*)(_Bool), _Bool);
float call_float(float(*)(float), float);
double call_double(double(*)(double), double);
wchar_t call_wchar(wchar_t(*)(wchar_t), wchar_t);
void *call_ptr(void *(*)(void *), void *);
int call_short_dirty(int (*cb)(short));
double call_many(double (*cb)(int, double, long, float, char, short, double, long long,
                              int, double, int, double, float, long), int base);

struct pt { double x, y; };
struct big { long a, b, c, d; };
struct small { char c; short s; };
struct odd3 { char a, b, c; };
struct mixed { int i; float f; double d; };
struct f3 { float a, b, c; };
union u { int i; float f; long long l; };
int check_pt(struct pt (*cb)(struct pt, int));
int check_big(struct big (*cb)(struct big, struct big));
int check_small(struct small (*cb)(struct small));
int check_odd3(struct odd3 (*cb)(struct odd3, struct odd3));
int check_mixed(struct mixed (*cb)(int, struct mixed, double));
int check_f3(struct f3 (*cb)(struct f3));
int check_union(union u (*cb)(union u));
int check_pt_stack(double (*cb)(long, long, long, long, long, long, struct big, struct pt,
                                double, double, double, double, double, double, double, double,
                                struct pt));
int check_long_double(long double (*cb)(long double, int));
int check_complex(double _Complex (*cb)(double _Complex));
int check_fcomplex(float _Complex (*cb)(float _Complex));

long call_cb_n(int (*cb)(int), int n);
int call_cb_once(int (*cb)(int), int x);
void call_void(void (*cb)(int), int x);
long run_threads(int (*cb)(int), int nthreads, int per_thread);
int nest(int (*cb)(int), int depth);
"""

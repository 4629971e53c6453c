"""C library for the call tests, compiled with the target's C compiler (conftest.CC) into a
temporary directory."""
import os
import subprocess
import tempfile

from conftest import CC

C_SOURCE = r"""
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <string.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <unistd.h>
#include <wchar.h>

signed char    id_schar(signed char x)       { return x; }
unsigned char  id_uchar(unsigned char x)     { return x; }
short          id_short(short x)             { return x; }
unsigned short id_ushort(unsigned short x)   { return x; }
int            id_int(int x)                 { return x; }
unsigned int   id_uint(unsigned int x)       { return x; }
long           id_long(long x)               { return x; }
unsigned long  id_ulong(unsigned long x)     { return x; }
long long      id_llong(long long x)         { return x; }
unsigned long long id_ullong(unsigned long long x) { return x; }
int8_t   id_i8(int8_t x)   { return x; }
uint8_t  id_u8(uint8_t x)  { return x; }
int16_t  id_i16(int16_t x) { return x; }
uint16_t id_u16(uint16_t x){ return x; }
int32_t  id_i32(int32_t x) { return x; }
uint32_t id_u32(uint32_t x){ return x; }
int64_t  id_i64(int64_t x) { return x; }
uint64_t id_u64(uint64_t x){ return x; }
size_t   id_size(size_t x) { return x; }
ssize_t  id_ssize(ssize_t x) { return x; }
intptr_t id_intptr(intptr_t x) { return x; }
_Bool    id_bool(_Bool x)  { return x; }
char     id_char(char x)   { return x; }
float    id_float(float x) { return x; }
double   id_double(double x) { return x; }
wchar_t  id_wchar(wchar_t x) { return x; }

/* Results computed from narrow arguments: a wrong extension of the argument shows. */
int  widen_schar(signed char x) { return x; }
unsigned int widen_uchar(unsigned char x) { return x; }
int  widen_short(short x) { return x; }
long widen_int(int x) { return x; }
int  bool_to_int(_Bool b) { return b ? 1 : 0; }
int  char_code(char c) { return (unsigned char)c; }
char next_char(char c) { return (char)(c + 1); }
double float_to_double(float f) { return f; }

int add_i(int a, int b) { return a + b; }
long long add_ll(long long a, long long b) { return a + b; }
double add_d(double a, double b) { return a + b; }
float add_f(float a, float b) { return a + b; }
void noop(void) {}
int sum8(int a, int b, int c, int d, int e, int f, int g, int h) { return a+b+c+d+e+f+g+h; }

/* 10 ints and 10 doubles interleaved: registers run out on both x86_64 and aarch64. */
double mix20(int i0, double d0, int i1, double d1, int i2, double d2, int i3, double d3,
             int i4, double d4, int i5, double d5, int i6, double d6, int i7, double d7,
             int i8, double d8, int i9, double d9) {
    double w = 0;
    int is[10] = {i0,i1,i2,i3,i4,i5,i6,i7,i8,i9};
    double ds[10] = {d0,d1,d2,d3,d4,d5,d6,d7,d8,d9};
    for (int k = 0; k < 10; k++) w += (k + 1) * (double)is[k] + (k + 1) * 0.5 * ds[k];
    return w;
}
long many_longs(long a, long b, long c, long d, long e, long f, long g, long h, long i, long j) {
    return a + 2*b + 3*c + 4*d + 5*e + 6*f + 7*g + 8*h + 9*i + 10*j;
}
/* Small ints on the stack: each must be read at its own width. */
long narrow_stack(long a, long b, long c, long d, long e, long f, signed char g, short h, unsigned char i, int j) {
    return a + b + c + d + e + f + g * 1000L + h * 10L + i * 100000L + j;
}
float floats_many(float a, float b, float c, float d, float e, float f, float g, float h, float i, float j) {
    return a + b + c + d + e + f + g + h + i + 10 * j;
}

/* pointers */
int  is_null(void *p) { return p == NULL; }
int *int_ptr_id(int *p) { return p; }
void *void_ptr_id(void *p) { return p; }
int  deref_int(const int *p) { return *p; }
void set_int(int *out, int v) { *out = v; }
void divmod(int a, int b, int *q, int *r) { *q = a / b; *r = a % b; }
void fill_doubles(double *out, int n) { for (int i = 0; i < n; i++) out[i] = i * 1.5; }
long sum_ints(const int *p, int n) { long s = 0; for (int i = 0; i < n; i++) s += p[i]; return s; }
double sum_doubles(const double *p, int n) { double s = 0; for (int i = 0; i < n; i++) s += p[i]; return s; }
size_t my_strlen(const char *s) { return strlen(s); }
const char *greeting(void) { return "hello from C"; }
char *upcase_into(char *buf, const char *s) { size_t i; for (i = 0; s[i]; i++) buf[i] = (s[i] >= 'a' && s[i] <= 'z') ? s[i] - 32 : s[i]; buf[i] = 0; return buf; }
size_t wide_len(const wchar_t *s) { return wcslen(s); }

/* function pointers */
int apply(int (*f)(int, int), int a, int b) { return f(a, b); }
typedef int (*binop)(int, int);
binop get_add(void) { return add_i; }

/* enums */
enum color { RED, GREEN = 5, BLUE };
enum color next_color(enum color c) { return c == RED ? GREEN : BLUE; }
int color_value(enum color c) { return (int)c; }

/* varargs */
long sum_va(int n, ...) {
    va_list ap; va_start(ap, n); long s = 0;
    for (int i = 0; i < n; i++) s += va_arg(ap, int);
    va_end(ap); return s;
}
double sum_va_d(int n, ...) {
    va_list ap; va_start(ap, n); double s = 0;
    for (int i = 0; i < n; i++) s += va_arg(ap, double);
    va_end(ap); return s;
}
long sum_va_mixed(const char *fmt, ...) {
    /* fmt: 'i' int, 'l' long, 'd' double, 'p' pointer to int (adds *p) */
    va_list ap; va_start(ap, fmt); double s = 0;
    for (const char *c = fmt; *c; c++) {
        if (*c == 'i') s += va_arg(ap, int);
        else if (*c == 'l') s += va_arg(ap, long);
        else if (*c == 'd') s += va_arg(ap, double);
        else if (*c == 'p') s += *va_arg(ap, int *);
    }
    va_end(ap); return (long)s;
}

/* globals */
int g_counter = 42;
const int g_const = 7;
double g_ratio = 0.5;
int g_table[4] = {1, 2, 3, 4};
const char *g_name = "jitffi";

int get_counter(void) { return g_counter; }
int bump(void) { return ++g_counter; }

/* long double and complex */
long double id_ldouble(long double x) { return x; }
long double add_ld(long double a, int b, long double c) { return a + b + c; }
double ld_to_double(long double x) { return (double)x; }
double _Complex cmul(double _Complex a, double _Complex b) { return a * b; }
float _Complex fconj(float _Complex a) { return ~a; }
double creal_of(double _Complex a) { return __real__ a; }

/* structs and unions by value */
struct pt { int x, y; };
struct pt3 { double x, y, z; };
struct mixed { int i; float f; double d; };
struct tiny { char c; };
union num { int i; float f; };
struct pt pt_make(int x, int y) { struct pt p = {x, y}; return p; }
int pt_sum(struct pt p) { return p.x + p.y; }
struct pt3 pt3_scale(struct pt3 p, double k) { p.x *= k; p.y *= k; p.z *= k; return p; }
double mixed_sum(struct mixed m) { return m.i + m.f + m.d; }
struct mixed mixed_make(int i, float f, double d) { struct mixed m = {i, f, d}; return m; }
struct tiny tiny_next(struct tiny t) { t.c++; return t; }
int num_as_int(union num u) { return u.i; }
long pt_after_regs(long a, long b, long c, long d, long e, long f, struct pt p, double g) {
    return a + b + c + d + e + f + p.x * 100 + p.y * 10000 + (long)g;
}

/* errno */
int set_errno_to(int v) { errno = v; return -1; }
int read_errno(void) { return errno; }

/* blocking */
int sleep_ms(int ms) { usleep(ms * 1000); return ms; }
"""

CDEF = r"""
signed char    id_schar(signed char x);
unsigned char  id_uchar(unsigned char x);
short          id_short(short x);
unsigned short id_ushort(unsigned short x);
int            id_int(int x);
unsigned int   id_uint(unsigned int x);
long           id_long(long x);
unsigned long  id_ulong(unsigned long x);
long long      id_llong(long long x);
unsigned long long id_ullong(unsigned long long x);
int8_t   id_i8(int8_t x);
uint8_t  id_u8(uint8_t x);
int16_t  id_i16(int16_t x);
uint16_t id_u16(uint16_t x);
int32_t  id_i32(int32_t x);
uint32_t id_u32(uint32_t x);
int64_t  id_i64(int64_t x);
uint64_t id_u64(uint64_t x);
size_t   id_size(size_t x);
ssize_t  id_ssize(ssize_t x);
intptr_t id_intptr(intptr_t x);
_Bool    id_bool(_Bool x);
char     id_char(char x);
float    id_float(float x);
double   id_double(double x);
wchar_t  id_wchar(wchar_t x);

int  widen_schar(signed char x);
unsigned int widen_uchar(unsigned char x);
int  widen_short(short x);
long widen_int(int x);
int  bool_to_int(_Bool b);
int  char_code(char c);
char next_char(char c);
double float_to_double(float f);

int add_i(int a, int b);
long long add_ll(long long a, long long b);
double add_d(double a, double b);
float add_f(float a, float b);
void noop(void);
int sum8(int a, int b, int c, int d, int e, int f, int g, int h);
double mix20(int i0, double d0, int i1, double d1, int i2, double d2, int i3, double d3,
             int i4, double d4, int i5, double d5, int i6, double d6, int i7, double d7,
             int i8, double d8, int i9, double d9);
long many_longs(long a, long b, long c, long d, long e, long f, long g, long h, long i, long j);
long narrow_stack(long a, long b, long c, long d, long e, long f, signed char g, short h, unsigned char i, int j);
float floats_many(float a, float b, float c, float d, float e, float f, float g, float h, float i, float j);

int  is_null(void *p);
int *int_ptr_id(int *p);
void *void_ptr_id(void *p);
int  deref_int(const int *p);
void set_int(int *out, int v);
void divmod(int a, int b, int *q, int *r);
void fill_doubles(double *out, int n);
long sum_ints(const int *p, int n);
double sum_doubles(const double *p, int n);
size_t my_strlen(const char *s);
const char *greeting(void);
char *upcase_into(char *buf, const char *s);
size_t wide_len(const wchar_t *s);

int apply(int (*f)(int, int), int a, int b);
typedef int (*binop)(int, int);
binop get_add(void);

enum color { RED, GREEN = 5, BLUE };
enum color next_color(enum color c);
int color_value(enum color c);

long sum_va(int n, ...);
double sum_va_d(int n, ...);
long sum_va_mixed(const char *fmt, ...);

extern int g_counter;
extern const int g_const;
extern double g_ratio;
extern int g_table[4];
extern const char *g_name;
int get_counter(void);
int bump(void);

long double id_ldouble(long double x);
long double add_ld(long double a, int b, long double c);
double ld_to_double(long double x);
double _Complex cmul(double _Complex a, double _Complex b);
float _Complex fconj(float _Complex a);
double creal_of(double _Complex a);

struct pt { int x, y; };
struct pt3 { double x, y, z; };
struct mixed { int i; float f; double d; };
struct tiny { char c; };
union num { int i; float f; };
struct pt pt_make(int x, int y);
int pt_sum(struct pt p);
struct pt3 pt3_scale(struct pt3 p, double k);
double mixed_sum(struct mixed m);
struct mixed mixed_make(int i, float f, double d);
struct tiny tiny_next(struct tiny t);
int num_as_int(union num u);
long pt_after_regs(long a, long b, long c, long d, long e, long f, struct pt p, double g);

int set_errno_to(int v);
int read_errno(void);
int sleep_ms(int ms);

int missing_function(int);
extern int missing_variable;

#define ANSWER 42
#define MASK 0xff
static const int LIMIT = 100;
"""

_cache = {}


def build(name, source, extra_args=()):
    """Compiles `source` into a shared library; returns its path (cached per name)."""
    key = (name, source, tuple(extra_args))
    if key in _cache:
        return _cache[key]
    d = tempfile.mkdtemp(prefix="jitffi-calls-")
    c = os.path.join(d, name + ".c")
    so = os.path.join(d, "lib" + name + ".so")
    with open(c, "w") as f:
        f.write(source)
    subprocess.check_call(CC + ["-O1", "-shared", "-fPIC", "-o", so, c, *extra_args])
    _cache[key] = so
    return so


def calls_lib_path():
    return build("calls", C_SOURCE)

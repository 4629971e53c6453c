"""jitffi demo: declare C in cdef, dlopen real system libraries, call them — no compiler,
no libffi — then print the benchmark tables against cffi and ctypes.

Run from the repository with `bash .ci/demo` (installs jitffi first)."""
import os
import subprocess
import sys

import jitffi
from bench_build import mode_args, python_cmd

HERE = os.path.dirname(os.path.abspath(__file__))


def section(title):
    print()
    print(title)
    print("-" * len(title))


def demo_libc_libm():
    ffi = jitffi.FFI()
    ffi.cdef("""
        size_t strlen(const char *);
        int snprintf(char *buf, size_t n, const char *fmt, ...);
        double sqrt(double);
        double pow(double, double);
        void qsort(void *base, size_t nmemb, size_t size,
                   int (*compar)(const void *, const void *));
        struct tm { int tm_sec, tm_min, tm_hour, tm_mday, tm_mon, tm_year,
                    tm_wday, tm_yday, tm_isdst; long tm_gmtoff; const char *tm_zone; };
    """)
    libc = ffi.dlopen(None)
    libm = ffi.dlopen("m")
    section("libc / libm")
    print("strlen(b'hello world') =", libc.strlen(b"hello world"))
    buf = ffi.new("char[64]")
    n = libc.snprintf(buf, 64, b"%s %d %.3f", ffi.new("char[]", b"pi~"), ffi.cast("int", 3), ffi.cast("double", 3.14159))
    print("snprintf ->", n, ffi.string(buf))
    print("sqrt(2) =", libm.sqrt(2.0), " pow(2, 10) =", libm.pow(2.0, 10.0))
    print("sizeof(struct tm) =", ffi.sizeof("struct tm"), " offsetof(tm_zone) =", ffi.offsetof("struct tm", "tm_zone"))
    @ffi.callback("int(const void *, const void *)")
    def cmp(a, b):
        x, y = ffi.cast("int *", a)[0], ffi.cast("int *", b)[0]
        return (x > y) - (x < y)
    arr = ffi.new("int[]", [5, 3, 9, 1, 7, 2])
    libc.qsort(arr, 6, ffi.sizeof("int"), cmp)
    print("qsort with a Python comparator ->", list(arr))
    assert list(arr) == [1, 2, 3, 5, 7, 9] and libc.strlen(b"hello world") == 11
    assert ffi.string(buf) == b"pi~ 3 3.142" and libm.pow(2.0, 10.0) == 1024.0


def demo_zlib():
    ffi = jitffi.FFI()
    ffi.cdef("""
        typedef unsigned long uLong;
        unsigned long crc32(unsigned long crc, const unsigned char *buf, unsigned int len);
        int compress(unsigned char *dest, unsigned long *destLen, const unsigned char *source, unsigned long sourceLen);
        const char *zlibVersion(void);
    """)
    z = ffi.dlopen("z")
    section("zlib")
    data = b"jitffi " * 100
    print("zlibVersion() =", ffi.string(z.zlibVersion()).decode())
    print("crc32 =", hex(z.crc32(0, data, len(data))))
    dest = ffi.new("unsigned char[]", 1024)
    dlen = ffi.new("unsigned long *", 1024)
    rc = z.compress(dest, dlen, data, len(data))
    print(f"compress rc={rc}: {len(data)} bytes -> {dlen[0]} bytes")
    import zlib  # Python's own binding of the same library, as the reference
    assert z.crc32(0, data, len(data)) == zlib.crc32(data)
    assert rc == 0 and zlib.decompress(ffi.buffer(dest, dlen[0])[:]) == data


def demo_sqlite():
    ffi = jitffi.FFI()
    ffi.cdef("""
        typedef struct sqlite3 sqlite3;
        const char *sqlite3_libversion(void);
        int sqlite3_open(const char *filename, sqlite3 **ppDb);
        int sqlite3_exec(sqlite3*, const char *sql, void *cb, void *arg, char **errmsg);
        long long sqlite3_last_insert_rowid(sqlite3*);
        int sqlite3_close(sqlite3*);
    """)
    s = ffi.dlopen("sqlite3")
    section("sqlite3")
    print("sqlite3_libversion() =", ffi.string(s.sqlite3_libversion()).decode())
    pdb = ffi.new("sqlite3 **")
    assert s.sqlite3_open(b":memory:", pdb) == 0
    db = pdb[0]
    s.sqlite3_exec(db, b"create table t(x); insert into t values (1),(2),(3);", ffi.NULL, ffi.NULL, ffi.NULL)
    print("last_insert_rowid =", s.sqlite3_last_insert_rowid(db))
    assert s.sqlite3_last_insert_rowid(db) == 3
    s.sqlite3_close(db)


def demo_cairo():
    ffi = jitffi.FFI()
    ffi.cdef("""
        typedef struct _cairo_surface cairo_surface_t;
        typedef struct _cairo cairo_t;
        cairo_surface_t *cairo_image_surface_create(int format, int width, int height);
        cairo_t *cairo_create(cairo_surface_t *);
        void cairo_set_source_rgb(cairo_t *, double, double, double);
        void cairo_rectangle(cairo_t *, double, double, double, double);
        void cairo_fill(cairo_t *);
        int cairo_image_surface_get_stride(cairo_surface_t *);
        unsigned char *cairo_image_surface_get_data(cairo_surface_t *);
        void cairo_surface_flush(cairo_surface_t *);
        void cairo_destroy(cairo_t *);
        void cairo_surface_destroy(cairo_surface_t *);
        const char *cairo_version_string(void);
    """)
    c = ffi.dlopen("cairo")
    section("cairo")
    surf = c.cairo_image_surface_create(0, 16, 16)  # CAIRO_FORMAT_ARGB32
    cr = c.cairo_create(surf)
    c.cairo_set_source_rgb(cr, 1.0, 0.0, 0.0)
    c.cairo_rectangle(cr, 0.0, 0.0, 8.0, 8.0)
    c.cairo_fill(cr)
    c.cairo_surface_flush(surf)
    data = c.cairo_image_surface_get_data(surf)
    px = ffi.cast("uint32_t *", data)
    print("cairo", ffi.string(c.cairo_version_string()).decode(), "pixel(0,0) = %#010x, pixel(15,15) = %#010x" % (px[0], px[15 * 16 + 15]))
    # Premultiplied ARGB32: opaque red inside the filled rectangle, transparent outside.
    assert (px[0], px[15 * 16 + 15]) == (0xFFFF0000, 0)
    c.cairo_destroy(cr)
    c.cairo_surface_destroy(surf)


def run_benches():
    for script in ("bench_cdef.py", "bench_cdata.py", "bench_calls.py", "bench_structs.py", "bench_callbacks.py",
                   "bench_import.py"):
        path = os.path.join(HERE, script)
        if os.path.exists(path):
            section(f"benchmark: {script}")
            sys.stdout.flush()
            subprocess.run(python_cmd() + [path] + mode_args(), check=True)


def main():
    # The benches measure the installed package: a source-tree import would measure
    # whatever build was last left there (or fail on a fresh clone).
    print("jitffi", jitffi.__version__, "from", os.path.dirname(jitffi.__file__))
    failed = []
    for demo in (demo_libc_libm, demo_zlib, demo_sqlite, demo_cairo):
        try:
            demo()
        except Exception as e:  # show the other demos too, then fail
            print(f"{demo.__name__} failed: {type(e).__name__}: {e}")
            failed.append(demo.__name__)
    run_benches()
    if failed:
        print("demo FAILED:", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

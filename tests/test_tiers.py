"""The two call tiers: the generic tier (one stub per target, driven by the ABI plan,
nothing compiled per signature) and the compiled trampolines, chosen by JITFFI_TIER
(auto: start generic, promote hot functions). Both must give the same results, the same
exceptions and messages, and the same errno behaviour; each case here runs in fresh
processes under each forced tier and the outputs are compared line by line."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import clib_calls  # noqa: E402
import clib_structs  # noqa: E402
from conftest import PYTHON, build_clib  # noqa: E402

import jitffi  # noqa: E402
from jitffi import _jitffi  # noqa: E402

_TESTS = os.path.dirname(os.path.abspath(__file__))
_PKG = os.path.dirname(os.path.abspath(jitffi.__file__))


def run(script, tier, *argv):
    env = dict(os.environ)
    env["JITFFI_TIER"] = tier
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(_PKG), _TESTS] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    r = subprocess.run(PYTHON + ["-c", script] + list(argv), env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stdout


# Calls with good and bad arguments of every kind the call path converts: each line is
# the result's repr or the exception's type and message.
AGREE = r'''
import sys, jitffi, clib_calls
ffi = jitffi.FFI()
ffi.cdef(clib_calls.CDEF)
lib = ffi.dlopen(sys.argv[1])
out = []
def t(label, f, *a):
    try:
        r = f(*a)
        if isinstance(r, ffi.CData):
            r = ffi.typeof(r).cname
        out.append("%s -> %r" % (label, r))
    except Exception as e:
        out.append("%s !! %s: %s" % (label, type(e).__name__, e))
p = ffi.new("int *", 31)
arr = ffi.new("int[4]", [1, 2, 3, 4])
buf = ffi.new("char[32]")
cases = [
    ("add_i", lib.add_i, 2, 3), ("add_i big", lib.add_i, 2**31, 1), ("add_i str", lib.add_i, "x", 1),
    ("add_i arity", lib.add_i, 1), ("add_i float", lib.add_i, 1.5, 2),
    ("id_schar", lib.id_schar, -128), ("id_schar over", lib.id_schar, 128),
    ("id_uchar neg", lib.id_uchar, -1), ("id_ushort", lib.id_ushort, 65535),
    ("id_ullong", lib.id_ullong, 2**64 - 1), ("id_llong", lib.id_llong, -2**63),
    ("id_float", lib.id_float, 1.1), ("id_double int", lib.id_double, 3),
    ("id_char", lib.id_char, b"a"), ("id_char bad", lib.id_char, "a"),
    ("id_wchar", lib.id_wchar, "z"), ("bool", lib.bool_to_int, True),
    ("sum8", lib.sum8, 1, 2, 3, 4, 5, 6, 7, 8),
    ("mix20", lib.mix20, *[i if k % 2 == 0 else i + 0.5 for k, i in enumerate(range(20))]),
    ("many_longs", lib.many_longs, *range(10)), ("narrow_stack", lib.narrow_stack, 1, 2, 3, 4, 5, 6, -7, -8, 9, 10),
    ("floats_many", lib.floats_many, *[x / 4 for x in range(10)]),
    ("is_null", lib.is_null, ffi.NULL), ("deref", lib.deref_int, p), ("deref arr", lib.deref_int, arr),
    ("deref list", lib.deref_int, [7, 8]), ("deref bad", lib.deref_int, 5),
    ("sum_ints", lib.sum_ints, [1, 2, 3, 40], 4), ("sum_doubles", lib.sum_doubles, [0.5, 1.5], 2),
    ("strlen", lib.my_strlen, b"hello"), ("strlen str", lib.my_strlen, "hello"),
    ("greeting", lambda: ffi.string(lib.greeting())), ("upcase", lambda: ffi.string(lib.upcase_into(buf, b"abc"))),
    ("ptr id", lib.int_ptr_id, p), ("void ptr id", lib.void_ptr_id, p),
    ("apply", lib.apply, lib.add_i, 4, 5), ("get_add", lambda: lib.get_add()(6, 7)),
    ("next_color", lib.next_color, 0), ("color_value", lib.color_value, "BLUE"),
    ("sum_va", lib.sum_va, 3, ffi.cast("int", 1), ffi.cast("long", 2), ffi.cast("short", 3)),
    ("sum_va_d", lib.sum_va_d, 2, ffi.cast("double", 1.5), ffi.cast("float", 2.25)),
    ("sum_va bad", lib.sum_va, 1, 5), ("sum_va few", lib.sum_va),
    ("id_ldouble", lambda: float(lib.id_ldouble(2.5))), ("add_ld", lambda: float(lib.add_ld(1.25, 3, 2.5))),
    ("cmul", lib.cmul, 1 + 2j, 3 - 1j), ("fconj", lib.fconj, 1.5 + 2j), ("creal", lib.creal_of, 4 - 1j),
    ("pt_make", lambda: (lambda s: (s.x, s.y))(lib.pt_make(3, 4))), ("pt_sum", lib.pt_sum, [5, 6]),
    ("pt_sum dict", lib.pt_sum, {"y": 2}), ("pt_sum bad", lib.pt_sum, [1, 2, 3]),
    ("pt3_scale", lambda: (lambda s: (s.x, s.y, s.z))(lib.pt3_scale([1, 2, 3], 1.5))),
    ("mixed_sum", lib.mixed_sum, [1, 2.5, 3.25]), ("tiny_next", lambda: lib.tiny_next([b"a"]).c),
    ("num_as_int", lib.num_as_int, {"i": 9}), ("pt_after_regs", lib.pt_after_regs, 1, 2, 3, 4, 5, 6, [7, 8], 9.5),
    ("fnptr cdata", ffi.cast("int(*)(int, int)", ffi.cast("void *", ffi.addressof(lib, "add_i"))), 20, 22),
    ("noop", lib.noop),
]
for c in cases:
    t(*c)
lib.set_errno_to(17)
out.append("errno after call %d" % ffi.errno)
ffi.errno = 23
out.append("errno seen by C %d" % lib.read_errno())
from jitffi import _jitffi
st = _jitffi._jit_stats(calls=True)
out.append("STATS tier=%s shapes=%d generic_calls=%d" % (st["tier"], st["shapes"], st["generic_calls"]))
print("\n".join(out))
'''


def _split(output):
    lines = output.splitlines()
    return [x for x in lines if not x.startswith("STATS")], [x for x in lines if x.startswith("STATS")]


def test_generic_and_compiled_tiers_agree():
    so = clib_calls.calls_lib_path()
    gen, gstats = _split(run(AGREE, "generic", so))
    comp, cstats = _split(run(AGREE, "compiled", so))
    assert len(gen) > 60
    assert gen == comp
    # The cases really ran (and failed where they must).
    assert "add_i -> 5" in gen
    assert "sum8 -> 36" in gen
    assert "pt_sum -> 11" in gen
    assert "fnptr cdata -> 42" in gen
    assert "errno after call 17" in gen and "errno seen by C 23" in gen
    assert any(x.startswith("add_i arity !! TypeError: ") for x in gen)
    assert any(x.startswith("sum_va bad !! TypeError: ") for x in gen)
    assert any(x.startswith("add_i big !! OverflowError: ") for x in gen)
    # Generic: every call generic, nothing compiled; compiled: no generic call.
    g = dict(kv.split("=") for kv in gstats[0].split()[1:])
    c = dict(kv.split("=") for kv in cstats[0].split()[1:])
    assert g["tier"] == "generic" and g["shapes"] == "0" and int(g["generic_calls"]) > 40
    assert c["tier"] == "compiled" and int(c["shapes"]) > 20 and c["generic_calls"] == "0"


STRUCTS = r'''
import sys, random, jitffi
import clib_structs
import test_structs_byvalue as tsb
ffi = jitffi.FFI()
ffi.cdef(clib_structs.cdef_source(tsb.GEN, tsb.FUNCS))
lib = ffi.dlopen(sys.argv[1])
bad = 0
n = 0
for f in tsb.FUNCS:
    fn = getattr(lib, f.name)
    rng = random.Random(f.name)
    for style in ("list", "dict", "cdata"):
        values, args = tsb.make_args(ffi, f, rng, style)
        n += 1
        r = fn(*args)
        if f.ret_index is None:
            ok = r == f.expected_hash(values)
        else:
            t = f.args[f.ret_index]
            ok = (lib.get_last_hash() == f.expected_hash(values)
                  and tsb.from_cdata(ffi, t, r) == values[f.ret_index])
        if not ok:
            bad += 1
            print("MISMATCH", f.name, style)
from jitffi import _jitffi
st = _jitffi._jit_stats(calls=True)
print("calls", n, "bad", bad, "shapes", st["shapes"], "generic", st["generic_calls"])
'''


@pytest.mark.parametrize("tier", ["generic", "auto"])
def test_generated_by_value_functions_on_the_generic_tier(tier):
    so = build_clib("structs_gen", clib_structs.c_source(*_gen()))
    last = run(STRUCTS, tier, so).splitlines()[-1].split()
    stats = dict(zip(last[::2], map(int, last[1::2])))
    assert stats["calls"] >= 3 * 300
    assert stats["bad"] == 0
    # Called three times each, far below the promotion threshold: all generic.
    assert stats["shapes"] == 0
    assert stats["generic"] >= stats["calls"]


def _gen():
    gen, _aggs, funcs = clib_structs.generate()
    return gen, funcs


PROMOTE = r'''
import sys, jitffi
from jitffi import _jitffi
ffi = jitffi.FFI()
ffi.cdef("long many_longs(long, long, long, long, long, long, long, long, long, long);"
         "long narrow_stack(long a, long b, long c, long d, long e, long f, signed char g, short h, unsigned char i, int j);")
lib = ffi.dlopen(sys.argv[1])
n = _jitffi._jit_stats()["promote_after"]
s0 = _jitffi._jit_stats(calls=True)
results = set()
for i in range(n - 1):
    results.add(lib.many_longs(*range(10)))
s1 = _jitffi._jit_stats(calls=True)
for i in range(5):
    results.add(lib.many_longs(*range(10)))
s2 = _jitffi._jit_stats(calls=True)
# A second function object of a shape now compiled: compiled at once.
ffi2 = jitffi.FFI()
ffi2.cdef("long many_longs(long, long, long, long, long, long, long, long, long, long);")
lib2 = ffi2.dlopen(sys.argv[1])
results.add(lib2.many_longs(*range(10)))
s3 = _jitffi._jit_stats(calls=True)
print(sorted(results))
for a, b in ((s0, s1), (s1, s2), (s2, s3)):
    print(b["shapes"] - a["shapes"], b["promotions"] - a["promotions"], b["generic_calls"] - a["generic_calls"])
'''


def test_hot_functions_are_promoted_once():
    lines = run(PROMOTE, "auto", clib_calls.calls_lib_path()).splitlines()
    assert lines[0] == "[330]"
    n = _jitffi._jit_stats()["promote_after"]
    # Below the threshold: generic, nothing compiled.
    assert lines[1] == "0 0 %d" % (n - 1)
    # The threshold call compiles (and is served compiled), later calls are compiled.
    assert lines[2] == "1 1 0"
    # Same shape, another function object: used compiled at once.
    assert lines[3] == "0 0 0"


def test_variadic_call_shapes_are_promoted_per_shape():
    script = r'''
import sys, jitffi
from jitffi import _jitffi
ffi = jitffi.FFI()
ffi.cdef("long sum_va(int n, ...);")
lib = ffi.dlopen(sys.argv[1])
n = _jitffi._jit_stats()["promote_after"]
one, two = ffi.cast("int", 1), ffi.cast("long", 2)
s0 = _jitffi._jit_stats(calls=True)
r = {lib.sum_va(2, one, two) for _ in range(n + 3)}
r |= {lib.sum_va(1, one) for _ in range(3)}
s1 = _jitffi._jit_stats(calls=True)
print(sorted(r), s1["shapes"] - s0["shapes"], s1["promotions"] - s0["promotions"],
      s1["generic_calls"] - s0["generic_calls"])
'''
    out = run(script, "auto", clib_calls.calls_lib_path()).split("]")
    assert out[0] == "[1, 3"
    n = _jitffi._jit_stats()["promote_after"]
    # (int, long) promoted after n calls; (int) stays generic.
    assert out[1].split() == ["1", "1", str(n - 1 + 3)]


def test_invalid_tier_fails_the_import():
    env = dict(os.environ)
    env["JITFFI_TIER"] = "fastest"
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(_PKG)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    r = subprocess.run(PYTHON + ["-c", "import jitffi"], env=env, capture_output=True, text=True)
    assert r.returncode != 0
    assert "JITFFI_TIER" in r.stderr and "'auto', 'generic' or 'compiled'" in r.stderr


def test_stats_name_the_tier():
    st = _jitffi._jit_stats()
    assert st["tier"] == (os.environ.get("JITFFI_TIER") or "auto")
    assert st["promote_after"] > 0
    assert {"generic_calls", "generic_callbacks"} <= set(_jitffi._jit_stats(calls=True))

"""Generated C library for the by-value aggregate tests (tests/test_structs_byvalue.py).

A fixed-seed PRNG draws aggregate shapes (structs and unions of 1-6 fields of mixed
integer, float, double and pointer types, nested, with arrays, homogeneous float/double
aggregates, odd sizes) and functions passing them in every position, before and after the
integer and vector argument registers are used up. Every function hashes all of its
arguments in C (FNV-style, over the bits of each scalar leaf); the tests recompute the hash
in Python from the values they passed. Echo functions also return one aggregate argument,
compared field by field. Unions are hashed through their first largest member, which is
the member the tests initialize (the other bytes start zeroed).
"""
import random
import struct

SEED = 20261122
MASK = (1 << 64) - 1
PRIME = 0x100000001B3
H0 = 0xCBF29CE484222325

# (C name, kind, size): kind i = signed, u = unsigned, f = float, d = double, p = pointer
SCALARS = [
    ("signed char", "i", 1), ("unsigned char", "u", 1), ("short", "i", 2),
    ("unsigned short", "u", 2), ("int", "i", 4), ("unsigned int", "u", 4),
    ("long", "i", 8), ("unsigned long", "u", 8), ("long long", "i", 8),
    ("unsigned long long", "u", 8), ("float", "f", 4), ("double", "d", 8),
    ("void *", "p", 8),
]
SCALAR_BY_NAME = {s[0]: s for s in SCALARS}


class Scalar:
    def __init__(self, name):
        self.name, self.kind, self.size = SCALAR_BY_NAME[name]
        self.align = self.size

    def decl(self, field):
        return "%s %s" % (self.name, field)


class Array:
    def __init__(self, item, n):
        self.item, self.n = item, n
        self.size, self.align = item.size * n, item.align

    def decl(self, field):
        return self.item.decl("%s[%d]" % (field, self.n))


class Record:
    def __init__(self, name, fields, union=False):
        self.name, self.fields, self.union = name, fields, union
        off, size, align = 0, 0, 1
        for _, t in fields:
            align = max(align, t.align)
            if union:
                size = max(size, t.size)
            else:
                off = (off + t.align - 1) // t.align * t.align + t.size
        self.align = align
        raw = size if union else off
        self.size = (raw + align - 1) // align * align
        if union:
            big = max(t.size for _, t in fields)
            self.main = next(i for i, (_, t) in enumerate(fields) if t.size == big)

    @property
    def ctype(self):
        return ("union " if self.union else "struct ") + self.name

    def decl(self, field):
        return "%s %s" % (self.ctype, field)

    def definition(self):
        body = " ".join("%s;" % t.decl(f) for f, t in self.fields)
        return "%s { %s };" % (self.ctype, body)


# ---------------------------------------------------------------------------------------
# Shapes

class Gen:
    def __init__(self, seed=SEED):
        self.rng = random.Random(seed)
        self.records = []  # in definition order (nested ones first)

    def _new(self, fields, union=False):
        r = Record("%s%d" % ("u" if union else "s", len(self.records)), fields, union)
        self.records.append(r)
        return r

    def scalar(self):
        r = self.rng.random()
        if r < 0.22:
            return Scalar("double")
        if r < 0.42:
            return Scalar("float")
        if r < 0.50:
            return Scalar("void *")
        return Scalar(self.rng.choice([s[0] for s in SCALARS if s[1] in "iu"]))

    def field_type(self, depth):
        r = self.rng.random()
        if r < 0.62 or depth >= 2:
            return self.scalar()
        if r < 0.78:
            return Array(self.scalar(), self.rng.randint(1, 5))
        if r < 0.92:
            return self.record(depth + 1)
        return self.union(depth + 1)

    def record(self, depth=0):
        n = self.rng.randint(1, 6 if depth == 0 else 3)
        return self._new([("f%d" % i, self.field_type(depth)) for i in range(n)])

    def union(self, depth=0):
        n = self.rng.randint(2, 4)
        return self._new([("m%d" % i, self.field_type(max(depth, 1))) for i in range(n)], union=True)

    def hfa(self):
        base = Scalar(self.rng.choice(["float", "double"]))
        n = self.rng.randint(1, 4)
        if self.rng.random() < 0.3:
            return self._new([("v", Array(base, n))])
        return self._new([("f%d" % i, Scalar(base.name)) for i in range(n)])

    def odd(self, which=None):
        uc, sc, sh, i, f = (Scalar(n) for n in ("unsigned char", "signed char", "short", "int", "float"))
        shapes = [
            [("a", sc)],
            [("a", Array(uc, 2)), ("b", uc)],
            [("b", Array(uc, 3))],
            [("a", sc), ("b", Array(uc, 4))],
            [("a", Array(sh, 3))],
            [("b", Array(uc, 7))],
            [("a", sh), ("b", sc), ("c", uc), ("d", sh)],
            [("a", i), ("b", f), ("c", i)],
            [("a", Array(f, 3))],
            [("a", f), ("b", sh), ("c", uc), ("d", i)],
            [("a", Array(sh, 5)), ("b", uc)],
            [("a", Array(uc, 5))],
            [("a", sh), ("b", Array(uc, 4))],
        ]
        if which is not None:
            return self._new(shapes[which]) if which < len(shapes) else None
        return self._new(self.rng.choice(shapes))

    def aggregate(self):
        while True:
            mark = len(self.records)
            r = self.rng.random()
            if r < 0.18:
                t = self.hfa()
            elif r < 0.33:
                t = self.odd()
            elif r < 0.45:
                t = self.union()
            else:
                t = self.record()
            if 1 <= t.size <= 64:
                return t
            del self.records[mark:]  # drop the rejected shape (and what it nested)


def value(rng, t):
    """A random value of type `t`: ints over their whole range, floats exact in binary32,
    pointers as ints; lists for structs and arrays; a union's value is its main member's."""
    if isinstance(t, Scalar):
        if t.kind == "i":
            b = 8 * t.size
            return rng.randint(-(1 << (b - 1)), (1 << (b - 1)) - 1)
        if t.kind == "u":
            return rng.randint(0, (1 << (8 * t.size)) - 1)
        if t.kind == "f":
            return rng.randint(-(1 << 20), 1 << 20) / 8.0
        if t.kind == "d":
            return rng.randint(-(1 << 52), 1 << 52) / float(1 << 20)
        return rng.getrandbits(47) & ~7
    if isinstance(t, Array):
        return [value(rng, t.item) for _ in range(t.n)]
    if t.union:
        return value(rng, t.fields[t.main][1])
    return [value(rng, ft) for _, ft in t.fields]


def _mix(h, x):
    return ((h ^ (x & MASK)) * PRIME) & MASK


def py_hash(h, t, v):
    """The C side's hash of value `v` (as produced by `Gen.value`) of type `t`."""
    if isinstance(t, Scalar):
        if t.kind == "f":
            return _mix(h, struct.unpack("<I", struct.pack("<f", v))[0])
        if t.kind == "d":
            return _mix(h, struct.unpack("<Q", struct.pack("<d", v))[0])
        return _mix(h, v)
    if isinstance(t, Array):
        for x in v:
            h = py_hash(h, t.item, x)
        return h
    if t.union:
        return py_hash(h, t.fields[t.main][1], v)
    for (_, ft), x in zip(t.fields, v):
        h = py_hash(h, ft, x)
    return h


# ---------------------------------------------------------------------------------------
# C source

def _c_hash_fn(r):
    lines = ["static inline uint64_t h_%s(uint64_t h, const %s *v) {" % (r.name, r.ctype)]

    def leaf(t, expr, depth=0):
        if isinstance(t, Scalar):
            fn = {"i": "HI", "u": "HU", "f": "HF", "d": "HD", "p": "HP"}[t.kind]
            lines.append("  h = %s(h, %s);" % (fn, expr))
        elif isinstance(t, Array):
            var = "i%d" % depth
            lines.append("  for (int %s = 0; %s < %d; %s++) {" % (var, var, t.n, var))
            leaf(t.item, "%s[%s]" % (expr, var), depth + 1)
            lines.append("  }")
        else:
            lines.append("  h = h_%s(h, &%s);" % (t.name, expr))

    if r.union:
        f, t = r.fields[r.main]
        leaf(t, "v->" + f)
    else:
        for f, t in r.fields:
            leaf(t, "v->" + f)
    lines.append("  return h;")
    lines.append("}")
    return "\n".join(lines)


C_PRELUDE = r"""
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#define MIX(h, x) (((h) ^ (uint64_t)(x)) * 0x100000001b3ULL)
static inline uint64_t HI(uint64_t h, int64_t x) { return MIX(h, x); }
static inline uint64_t HU(uint64_t h, uint64_t x) { return MIX(h, x); }
static inline uint64_t HP(uint64_t h, const void *p) { return MIX(h, (uintptr_t)p); }
static inline uint64_t HF(uint64_t h, float f) { uint32_t u; memcpy(&u, &f, 4); return MIX(h, u); }
static inline uint64_t HD(uint64_t h, double d) { uint64_t u; memcpy(&u, &d, 8); return MIX(h, u); }
static uint64_t last_hash;
uint64_t get_last_hash(void) { return last_hash; }
"""

ARG_SCALARS = ["int", "long", "double", "float", "unsigned char", "short"]


class Func:
    def __init__(self, name, args, ret_index):
        self.name = name
        self.args = args  # list of types
        self.ret_index = ret_index  # None: returns the hash; else echoes that argument

    def c_decl(self):
        params = ", ".join(t.decl("a%d" % i) for i, t in enumerate(self.args))
        ret = "uint64_t" if self.ret_index is None else self.args[self.ret_index].ctype
        return "%s %s(%s)" % (ret, self.name, params)

    def c_body(self):
        lines = [self.c_decl() + " {", "  uint64_t h = 0x%xULL;" % H0]
        for i, t in enumerate(self.args):
            if isinstance(t, Scalar):
                fn = {"i": "HI", "u": "HU", "f": "HF", "d": "HD", "p": "HP"}[t.kind]
                lines.append("  h = %s(h, a%d);" % (fn, i))
            else:
                lines.append("  h = h_%s(h, &a%d);" % (t.name, i))
        if self.ret_index is None:
            lines.append("  return h;")
        else:
            lines.append("  last_hash = h;")
            lines.append("  return a%d;" % self.ret_index)
        lines.append("}")
        return "\n".join(lines)

    def expected_hash(self, values):
        h = H0
        for t, v in zip(self.args, values):
            h = py_hash(h, t, v)
        return h


def _arg_list(gen, aggs):
    """Arguments around the aggregates `aggs`, in one of several register-pressure modes."""
    rng = gen.rng
    S = Scalar
    mode = rng.choice(["first", "exhaust_int", "exhaust_sse", "exhaust_both", "one_left", "random"])
    if mode == "first":
        return aggs + [S(rng.choice(ARG_SCALARS)) for _ in range(rng.randint(0, 3))]
    if mode == "exhaust_int":
        pre = [S(rng.choice(["int", "long", "short"])) for _ in range(rng.choice([5, 6, 7]))]
        return pre + aggs + [S("double"), S("int")]
    if mode == "exhaust_sse":
        pre = [S(rng.choice(["double", "float"])) for _ in range(rng.choice([7, 8, 9]))]
        return pre + aggs + [S("int"), S("double")]
    if mode == "exhaust_both":
        pre = [S("long")] * 6 + [S("double")] * 8
        rng.shuffle(pre)
        return pre + aggs + [S("int"), S("float")]
    if mode == "one_left":
        # one integer and one vector register left: mixed aggregates must go to the stack
        pre = [S("long")] * 5 + [S("double")] * 7
        return pre + aggs + [S("long"), S("double")]
    args = aggs + [S(rng.choice(ARG_SCALARS)) for _ in range(rng.randint(0, 8))]
    rng.shuffle(args)
    return args


def generate(seed=SEED, n_types=160, n_multi=30):
    """(records, funcs): every aggregate type gets a hashing and an echo function; `n_multi`
    more functions take several aggregates."""
    gen = Gen(seed)
    aggs = []
    k = 0
    while gen.odd(k) is not None:  # every odd shape at least once
        aggs.append(gen.records[-1])
        k += 1
    aggs += [gen.aggregate() for _ in range(n_types - len(aggs))]
    funcs = []
    for k, t in enumerate(aggs):
        args = _arg_list(gen, [t])
        funcs.append(Func("hash_%d" % k, args, None))
        args = _arg_list(gen, [t])
        funcs.append(Func("echo_%d" % k, args, args.index(t)))
    for k in range(n_multi):
        picked = [gen.rng.choice(aggs) for _ in range(gen.rng.randint(2, 4))]
        args = _arg_list(gen, picked)
        ret = None if k % 2 == 0 else args.index(picked[-1])
        funcs.append(Func("multi_%d" % k, args, ret))
    return gen, aggs, funcs


def c_source(gen, funcs):
    parts = [C_PRELUDE]
    parts += [r.definition() for r in gen.records]
    parts += [_c_hash_fn(r) for r in gen.records]
    parts += [f.c_body() for f in funcs]
    sizes = ", ".join("sizeof(%s)" % r.ctype for r in gen.records)
    parts.append("const size_t agg_sizes[] = { %s };" % sizes)
    return "\n".join(parts) + "\n"


def cdef_source(gen, funcs):
    parts = [r.definition() for r in gen.records]
    parts += [f.c_decl() + ";" for f in funcs]
    parts.append("uint64_t get_last_hash(void);")
    parts.append("const size_t agg_sizes[%d];" % len(gen.records))
    return "\n".join(parts) + "\n"

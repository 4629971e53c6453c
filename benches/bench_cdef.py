"""cdef speed: jitffi.FFI().cdef(header) against cffi.FFI().cdef(header), same run.

The header is generated (fixed seed): 2000 function prototypes and 200 structs with
scalars, pointers, function pointers, nested structs and arrays.

    python3 benches/bench_cdef.py                 # medians of round-robin rounds and the ratio
    python3 benches/bench_cdef.py --write-header h.h   # just write the header
"""

import argparse
import random
import statistics
import sys
import time

SCALARS = [
    "int", "unsigned int", "char", "signed char", "unsigned char", "short", "unsigned short",
    "long", "unsigned long", "long long", "unsigned long long", "float", "double", "size_t",
    "int8_t", "uint16_t", "int32_t", "uint64_t", "_Bool", "long double",
]


def make_header(n_funcs=2000, n_structs=200, seed=20240601, named=False):
    """named=True gives every parameter its own name (`p12_3`), so that no parameter
    text repeats: the worst case for jitffi, which parses each distinct parameter once."""
    rng = random.Random(seed)
    out = []
    structs = []
    typedefs = []
    for i in range(n_structs):
        name = "s%d" % i
        fields = []
        for j in range(rng.randint(3, 10)):
            roll = rng.random()
            f = "f%d" % j
            if roll < 0.35:
                fields.append("%s %s;" % (rng.choice(SCALARS), f))
            elif roll < 0.5:
                fields.append("%s *%s;" % (rng.choice(SCALARS + ["void", "char"]), f))
            elif roll < 0.65:
                fields.append("%s (*%s)(%s, %s);" % (
                    rng.choice(SCALARS + ["void"]), f, rng.choice(SCALARS), rng.choice(SCALARS) + " *"))
            elif roll < 0.8 and structs:
                fields.append("struct %s %s;" % (rng.choice(structs), f))
            elif roll < 0.9:
                fields.append("%s %s[%d];" % (rng.choice(SCALARS), f, rng.randint(1, 16)))
            elif structs:
                fields.append("struct %s *%s[%d];" % (rng.choice(structs), f, rng.randint(1, 4)))
            else:
                fields.append("int %s;" % f)
        out.append("struct %s {\n    %s\n};" % (name, "\n    ".join(fields)))
        structs.append(name)
        if i % 4 == 0:
            out.append("typedef struct %s %s_t;" % (name, name))
            typedefs.append(name + "_t")
    arg_types = SCALARS + ["const char *", "void *"] + ["struct %s *" % s for s in structs[:50]] + \
        [t + " *" for t in typedefs]
    for i in range(n_funcs):
        nargs = rng.randint(0, 6)
        picked = [rng.choice(arg_types) for _ in range(nargs)]
        if named:
            picked = ["%s p%d_%d" % (t, i, j) for j, t in enumerate(picked)]
        args = ", ".join(picked) or "void"
        if rng.random() < 0.1:
            args = (args if nargs else "int") + ", ..."
        if rng.random() < 0.1:
            args = args.replace("void", "int", 1) if nargs == 0 else args
            args = "int (*cb)(void *, int), " + args
        ret = rng.choice(SCALARS + ["void", "char *", "void *"] + ["struct %s *" % s for s in structs[:20]])
        out.append("%s func_%d(%s);" % (ret, i, args))
    return "\n".join(out) + "\n"


def cdef_times(make_ffi, header, n):
    """n times of `ffi.cdef(header)`, each on a new FFI made before and freed after the
    timed call, so that neither FFI() nor freeing the declarations is counted (for
    either library): the time is that of the cdef call itself."""
    times = []
    for _ in range(n):
        ffi = make_ffi()
        t0 = time.perf_counter()
        ffi.cdef(header)
        times.append(time.perf_counter() - t0)
        del ffi
    return times


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--write-header")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--repeat", type=int, help="same as --rounds (older name)")
    p.add_argument("--quick", action="store_true", help="3 rounds")
    p.add_argument("--check", action="store_true", help="1 round: the sanity checks, no timing")
    args = p.parse_args()
    rounds = 1 if args.check else 3 if args.quick else (args.repeat or args.rounds)
    header = make_header()
    if args.write_header:
        with open(args.write_header, "w") as f:
            f.write(header)
        return
    import cffi
    import jitffi
    # Sanity: both accept the header and agree on a few sizes.
    a, b = jitffi.FFI(), cffi.FFI()
    a.cdef(header)
    b.cdef(header)
    for t in ("struct s0", "struct s57", "struct s199", "s4_t"):
        assert a.sizeof(t) == b.sizeof(t), (t, a.sizeof(t), b.sizeof(t))
    named = make_header(named=True)
    # Round-robin: the machine's speed drifts by 2x over seconds, so each round times
    # jitffi (median of 20 calls) and cffi (one call) back to back, and the ratio is
    # taken per round.
    jit, cf, jit_named, ratios = [], [], [], []
    for _ in range(rounds):
        j = statistics.median(cdef_times(jitffi.FFI, header, 20))
        c = cdef_times(cffi.FFI, header, 1)[0]
        jit.append(j)
        cf.append(c)
        ratios.append(c / j)
        jit_named.append(statistics.median(cdef_times(jitffi.FFI, named, 5)))
    t_jit, t_cffi = statistics.median(jit), statistics.median(cf)
    ratio = statistics.median(ratios)
    print("cdef of %d bytes (2000 prototypes, 200 structs): medians of %d round-robin rounds" % (len(header), rounds))
    print("%-10s %10.2f ms   (rounds: %.1f-%.1f)" % ("jitffi", t_jit * 1e3, min(jit) * 1e3, max(jit) * 1e3))
    print("%-10s %10.2f ms   (rounds: %.0f-%.0f)" % ("cffi", t_cffi * 1e3, min(cf) * 1e3, max(cf) * 1e3))
    print("ratio      %10.1fx faster   (per round: %.1f-%.1fx)" % (ratio, min(ratios), max(ratios)))
    print("jitffi, every parameter named (%d bytes, no parameter text repeats): %.2f ms" % (len(named), statistics.median(jit_named) * 1e3))
    ok = t_jit <= 0.010 and ratio >= 50
    print("target (<= 10 ms and >= 50x): %s" % ("met" if ok else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

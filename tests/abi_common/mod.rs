//! Shared by the ABI run tests (x86_64 in-process, aarch64 under qemu): a generated C
//! library of functions over random aggregate shapes (fixed seed), the matching jitffi
//! types, and the Cranelift code that calls those functions (`jcall_*`) and implements
//! them as callbacks (`jthunk_*`) through `jit::native_call`.
//!
//! Every generated function `fN` hashes its arguments field by field (in `impl_fN`, which
//! reads them from memory) and derives its result from the hash. The C side also provides
//! `args_fN` (fills argument memory from a seed), `check_fN` (direct C call, hash of the
//! result), `via_fN` (same through a function pointer: used on the thunks) and
//! `rethash_fN` (hash of a result in memory). A call through generated code is right when
//! `rethash_fN` of what it wrote equals `check_fN` for the same seed.
#![allow(dead_code)]

use std::fmt::Write;

use cranelift_codegen::ir::{
    AbiParam, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind,
};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{FuncId, Linkage, Module};

use jitffi::abi::test_layout::{bitfield, field, record, FieldSpec};
use jitffi::abi::{lower, CallPlan};
use jitffi::jit::native_call::{
    c_signature, c_signature_x87_entry, emit_call_from_memory, emit_return_from_memory,
    emit_store_incoming, needs_x87_entry,
};
use jitffi::jit::stubs::stub_bytes;
use jitffi::types::model::{Kind, Prim, TypeRef, TypeTable};
use jitffi::types::target::Target;

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sc {
    SChar,
    UChar,
    Short,
    UShort,
    Int,
    UInt,
    Long,
    ULong,
    Float,
    Double,
    Ptr,
    LongDouble,
    FComplex,
    DComplex,
}

impl Sc {
    pub fn c_name(self) -> &'static str {
        self.c()
    }
    fn c(self) -> &'static str {
        match self {
            Sc::SChar => "signed char",
            Sc::UChar => "unsigned char",
            Sc::Short => "short",
            Sc::UShort => "unsigned short",
            Sc::Int => "int",
            Sc::UInt => "unsigned int",
            Sc::Long => "long",
            Sc::ULong => "unsigned long",
            Sc::Float => "float",
            Sc::Double => "double",
            Sc::Ptr => "void *",
            Sc::LongDouble => "long double",
            Sc::FComplex => "float _Complex",
            Sc::DComplex => "double _Complex",
        }
    }
    fn ty(self, t: &mut TypeTable) -> TypeRef {
        let p = match self {
            Sc::SChar => Prim::SChar,
            Sc::UChar => Prim::UChar,
            Sc::Short => Prim::Short,
            Sc::UShort => Prim::UShort,
            Sc::Int => Prim::Int,
            Sc::UInt => Prim::UInt,
            Sc::Long => Prim::Long,
            Sc::ULong => Prim::ULong,
            Sc::Float => Prim::Float,
            Sc::Double => Prim::Double,
            Sc::Ptr => {
                let v = t.void();
                return t.pointer(&v);
            }
            Sc::LongDouble => Prim::LongDouble,
            Sc::FComplex => Prim::FloatComplex,
            Sc::DComplex => Prim::DoubleComplex,
        };
        t.prim(p)
    }
    /// C statement assigning a seed-derived value to `lv` (`s` is the seed state).
    fn fill(self, lv: &str) -> String {
        match self {
            Sc::Float => format!("{lv} = (float)(int32_t)sm(&s) / 8.0f;"),
            Sc::Double => format!("{lv} = (double)(int32_t)sm(&s) / 8.0;"),
            Sc::LongDouble => format!("{lv} = (long double)(int32_t)sm(&s) / 8.0L;"),
            Sc::Ptr => format!("{lv} = (void *)(uintptr_t)sm(&s);"),
            Sc::FComplex => format!("{{ float re = (float)(int16_t)sm(&s), im = (float)(int16_t)sm(&s); {lv} = __builtin_complex(re, im); }}"),
            Sc::DComplex => format!("{{ double re = (double)(int32_t)sm(&s), im = (double)(int32_t)sm(&s); {lv} = __builtin_complex(re, im); }}"),
            _ => format!("{lv} = ({})sm(&s);", self.c()),
        }
    }
    /// C statement mixing the value `rv` into `h`.
    fn hash(self, rv: &str) -> String {
        match self {
            Sc::Float => format!("h = mixf(h, {rv});"),
            Sc::Double => format!("h = mixd(h, {rv});"),
            Sc::LongDouble => format!("h = mixd(h, (double)({rv}));"),
            Sc::Ptr => format!("h = mix(h, (uint64_t)(uintptr_t)({rv}));"),
            Sc::FComplex => format!("h = mixf(mixf(h, __real__ ({rv})), __imag__ ({rv}));"),
            Sc::DComplex => format!("h = mixd(mixd(h, __real__ ({rv})), __imag__ ({rv}));"),
            _ => format!("h = mix(h, (uint64_t)({rv}));"),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Ft {
    S(Sc),
    Arr(Sc, usize),
    Rec(usize),
    /// int/unsigned bitfield
    Bits(Sc, u32),
}

pub struct Shape {
    pub is_union: bool,
    pub packed: bool,
    pub fields: Vec<Ft>,
    pub ty: TypeRef,
}

#[derive(Clone, Debug)]
pub enum Val {
    S(Sc),
    Rec(usize),
}

pub struct Func {
    pub name: String,
    /// Symbol actually called (a shared variadic function for variadic calls).
    pub callee: String,
    pub args: Vec<Val>,
    pub ret: Option<Val>,
    pub variadic: bool,
    pub plan: CallPlan,
}

pub struct Library {
    pub shapes: Vec<Shape>,
    pub funcs: Vec<Func>,
    pub c_source: String,
    pub target: Target,
}

const INT_SCALARS: &[Sc] = &[
    Sc::SChar,
    Sc::UChar,
    Sc::Short,
    Sc::UShort,
    Sc::Int,
    Sc::UInt,
    Sc::Long,
    Sc::ULong,
    Sc::Ptr,
];

fn random_scalar(rng: &mut Rng, exotic: bool) -> Sc {
    if exotic && rng.chance(6) {
        return [Sc::LongDouble, Sc::FComplex, Sc::DComplex][rng.below(3)];
    }
    match rng.below(10) {
        0..=3 => INT_SCALARS[rng.below(INT_SCALARS.len())],
        4..=6 => Sc::Double,
        _ => Sc::Float,
    }
}

fn field_type(ft: &Ft, t: &mut TypeTable, shapes: &[Shape]) -> TypeRef {
    match ft {
        Ft::S(s) | Ft::Bits(s, _) => s.ty(t),
        Ft::Arr(s, n) => {
            let e = s.ty(t);
            t.array(&e, Some(*n))
        }
        Ft::Rec(k) => shapes[*k].ty.clone(),
    }
}

fn val_type(v: &Val, t: &mut TypeTable, shapes: &[Shape]) -> TypeRef {
    match v {
        Val::S(s) => s.ty(t),
        Val::Rec(k) => shapes[*k].ty.clone(),
    }
}

fn val_c(v: &Val) -> String {
    match v {
        Val::S(s) => s.c().to_string(),
        Val::Rec(k) => format!("t{k}"),
    }
}

fn gen_shape(rng: &mut Rng, t: &mut TypeTable, shapes: &[Shape], k: usize) -> Option<Shape> {
    let mut is_union = false;
    let mut packed = false;
    let fields: Vec<Ft> = match rng.below(12) {
        0 | 1 => {
            // homogeneous float/double aggregates, sometimes as an array
            let s = if rng.chance(50) {
                Sc::Float
            } else {
                Sc::Double
            };
            let n = 1 + rng.below(4);
            if rng.chance(30) {
                vec![Ft::Arr(s, n)]
            } else {
                vec![Ft::S(s); n]
            }
        }
        2 => {
            // odd sizes: 1..16 bytes of chars, or shorts
            if rng.chance(60) {
                vec![Ft::Arr(Sc::UChar, 1 + rng.below(16))]
            } else {
                vec![Ft::Arr(Sc::Short, 1 + rng.below(7))]
            }
        }
        3 => {
            is_union = true;
            (0..2 + rng.below(2))
                .map(|_| random_field(rng, shapes))
                .collect()
        }
        4 => {
            packed = true;
            (0..2 + rng.below(4))
                .map(|_| random_field(rng, shapes))
                .collect()
        }
        5 => {
            let mut v: Vec<Ft> = (0..1 + rng.below(4))
                .map(|_| {
                    Ft::Bits(
                        if rng.chance(50) { Sc::Int } else { Sc::UInt },
                        1 + rng.below(15) as u32,
                    )
                })
                .collect();
            if rng.chance(50) {
                v.insert(rng.below(v.len() + 1), Ft::S(random_scalar(rng, false)));
            }
            v
        }
        _ => (0..1 + rng.below(6))
            .map(|_| random_field(rng, shapes))
            .collect(),
    };
    let shape = build_shape(t, shapes, k, is_union, packed, fields);
    (1..=64)
        .contains(&shape.ty.size().unwrap())
        .then_some(shape)
}

fn build_shape(
    t: &mut TypeTable,
    shapes: &[Shape],
    k: usize,
    is_union: bool,
    packed: bool,
    fields: Vec<Ft>,
) -> Shape {
    let specs: Vec<FieldSpec> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let ty = field_type(f, t, shapes);
            match f {
                Ft::Bits(_, b) => bitfield(&format!("f{i}"), &ty, *b),
                _ => field(&format!("f{i}"), &ty),
            }
        })
        .collect();
    let cname = format!("{} s{k}", if is_union { "union" } else { "struct" });
    let ty = record(t, &cname, is_union, packed, specs);
    Shape {
        is_union,
        packed,
        fields,
        ty,
    }
}

/// Shapes every run must contain, whatever the random ones turn out to be.
fn special_shapes() -> Vec<(bool, bool, Vec<Ft>)> {
    use Sc::*;
    vec![
        (true, false, vec![Ft::S(LongDouble), Ft::S(Long)]), // 16-aligned, 16 bytes, not homogeneous
        (false, false, vec![Ft::S(LongDouble)]),
        (false, false, vec![Ft::S(LongDouble), Ft::S(LongDouble)]),
        (false, false, vec![Ft::S(FComplex), Ft::S(Float)]),
        (false, false, vec![Ft::S(DComplex)]),
        (false, false, vec![Ft::S(Double), Ft::S(Long)]),
        (false, true, vec![Ft::S(SChar), Ft::S(Int)]),
        (false, true, vec![Ft::S(Short), Ft::S(Double)]),
        (false, false, vec![Ft::Arr(UChar, 3)]),
        (false, false, vec![Ft::Arr(UChar, 5)]),
        (false, false, vec![Ft::Arr(Short, 3)]),
        (false, false, vec![Ft::Arr(UChar, 7)]),
        (false, false, vec![Ft::S(Float), Ft::S(Float), Ft::S(Float)]),
        (false, false, vec![Ft::S(Long), Ft::Arr(UChar, 3)]),
        (false, false, vec![Ft::Arr(Double, 4)]),
        (false, false, vec![Ft::Arr(Float, 5)]),
        (true, false, vec![Ft::S(Float), Ft::Arr(Float, 2)]),
        (true, false, vec![Ft::S(Double), Ft::S(Long)]),
        (
            false,
            false,
            vec![
                Ft::Bits(Int, 3),
                Ft::Bits(UInt, 5),
                Ft::S(SChar),
                Ft::Bits(Int, 12),
            ],
        ),
        (false, false, vec![]), // empty struct (GNU C)
    ]
}

fn random_field(rng: &mut Rng, shapes: &[Shape]) -> Ft {
    match rng.below(10) {
        0 | 1 if !shapes.is_empty() => Ft::Rec(rng.below(shapes.len())),
        2 => Ft::Arr(random_scalar(rng, false), 1 + rng.below(4)),
        _ => {
            let exotic = rng.chance(30);
            Ft::S(random_scalar(rng, exotic))
        }
    }
}

fn fill_ft(out: &mut String, lv: &str, ft: &Ft) {
    match ft {
        Ft::S(s) | Ft::Bits(s, _) => out.push_str(&s.fill(lv)),
        Ft::Arr(s, n) => {
            for i in 0..*n {
                out.push_str(&s.fill(&format!("{lv}[{i}]")));
            }
        }
        Ft::Rec(k) => {
            let _ = write!(out, "make_t{k}(&{lv}, sm(&s));");
        }
    }
    out.push('\n');
}

fn hash_ft(out: &mut String, rv: &str, ft: &Ft) {
    match ft {
        Ft::S(s) | Ft::Bits(s, _) => out.push_str(&s.hash(rv)),
        Ft::Arr(s, n) => {
            for i in 0..*n {
                out.push_str(&s.hash(&format!("{rv}[{i}]")));
            }
        }
        Ft::Rec(k) => {
            let _ = write!(out, "h = hash_t{k}(h, &{rv});");
        }
    }
    out.push('\n');
}

const PRELUDE: &str = r#"
#include <stdint.h>
#include <stddef.h>
#include <stdarg.h>
#include <string.h>
static uint64_t sm(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static uint64_t mix(uint64_t h, uint64_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); return h * 0xff51afd7ed558ccdULL; }
static uint64_t mixd(uint64_t h, double d) { uint64_t u; memcpy(&u, &d, 8); return mix(h, u); }
static uint64_t mixf(uint64_t h, float f) { uint32_t u; memcpy(&u, &f, 4); return mix(h, u); }
uint64_t g_last;
/* printf-like: hashes its variadic arguments as the format says */
uint64_t vfmt(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    uint64_t h = 77;
    for (const char *c = fmt; *c; c++) switch (*c) {
        case 'i': h = mix(h, (uint64_t)va_arg(ap, int)); break;
        case 'l': h = mix(h, (uint64_t)va_arg(ap, long)); break;
        case 'd': h = mixd(h, va_arg(ap, double)); break;
        case 'p': h = mix(h, (uint64_t)(uintptr_t)va_arg(ap, void *)); break;
    }
    va_end(ap);
    return h;
}
/* the same, returning long double (x87 st(0) on x86_64, q0 on aarch64) */
long double vld(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    uint64_t h = 78;
    for (const char *c = fmt; *c; c++) switch (*c) {
        case 'i': h = mix(h, (uint64_t)va_arg(ap, int)); break;
        case 'l': h = mix(h, (uint64_t)va_arg(ap, long)); break;
        case 'd': h = mixd(h, va_arg(ap, double)); break;
        case 'p': h = mix(h, (uint64_t)(uintptr_t)va_arg(ap, void *)); break;
    }
    va_end(ap);
    return (long double)(int32_t)h / 16.0L;
}
"#;

/// Generates the library: `nshapes` aggregate shapes and `nfuncs` functions over them plus
/// `nvariadic` calls of the variadic `vfmt`, everything derived from `seed`.
pub fn generate(
    target: Target,
    seed: u64,
    nshapes: usize,
    nfuncs: usize,
    nvariadic: usize,
) -> Library {
    let mut rng = Rng::new(seed);
    let mut t = TypeTable::new(target);
    let mut shapes: Vec<Shape> = Vec::new();
    for (is_union, packed, fields) in special_shapes() {
        let k = shapes.len();
        let shape = build_shape(&mut t, &shapes, k, is_union, packed, fields);
        shapes.push(shape);
    }
    let nspecial = shapes.len();
    while shapes.len() < nshapes {
        let k = shapes.len();
        if let Some(s) = gen_shape(&mut rng, &mut t, &shapes, k) {
            shapes.push(s);
        }
    }
    let mut c = String::from(PRELUDE);
    // Types, makers and hashers.
    for (k, s) in shapes.iter().enumerate() {
        let kw = if s.is_union { "union" } else { "struct" };
        let attr = if s.packed {
            "__attribute__((packed)) "
        } else {
            ""
        };
        let _ = write!(c, "typedef {kw} {attr}s{k} {{");
        for (i, f) in s.fields.iter().enumerate() {
            let _ = match f {
                Ft::S(x) => write!(c, " {} f{i};", x.c()),
                Ft::Arr(x, n) => write!(c, " {} f{i}[{n}];", x.c()),
                Ft::Rec(j) => write!(c, " t{j} f{i};"),
                Ft::Bits(x, b) => write!(c, " {} f{i} : {b};", x.c()),
            };
        }
        let _ = writeln!(c, " }} t{k};");
        let members: Vec<(usize, &Ft)> = if s.is_union {
            vec![(0, &s.fields[0])]
        } else {
            s.fields.iter().enumerate().collect()
        };
        let _ = writeln!(
            c,
            "static void make_t{k}(t{k} *p, uint64_t seed) {{ uint64_t s = seed;"
        );
        for (i, f) in &members {
            fill_ft(&mut c, &format!("p->f{i}"), f);
        }
        let _ = writeln!(
            c,
            "}}\nstatic uint64_t hash_t{k}(uint64_t h, const t{k} *p) {{"
        );
        for (i, f) in &members {
            hash_ft(&mut c, &format!("p->f{i}"), f);
        }
        let _ = writeln!(c, "return h; }}");
    }
    // Layout table: gcc's size, alignment and field offsets, to check the test's layouts.
    let _ = writeln!(c, "const unsigned long layout_table[] = {{");
    for (k, s) in shapes.iter().enumerate() {
        let _ = write!(c, "sizeof(t{k}), _Alignof(t{k}),");
        for (i, f) in s.fields.iter().enumerate() {
            if !matches!(f, Ft::Bits(..)) {
                let _ = write!(c, " offsetof(t{k}, f{i}),");
            }
        }
        c.push('\n');
    }
    let _ = writeln!(c, "0 }};");

    let mut funcs = Vec::new();
    // Each special shape as the only argument, after an odd number of integer registers,
    // after all registers are used, and returned.
    for k in 0..nspecial {
        use Sc::*;
        let v = Val::Rec(k);
        let lists = [
            vec![v.clone()],
            vec![Val::S(Int), v.clone(), Val::S(Int)],
            vec![
                Val::S(Long),
                Val::S(Long),
                Val::S(Long),
                Val::S(Long),
                Val::S(Long),
                v.clone(),
                Val::S(Int),
            ],
            vec![
                Val::S(Long),
                Val::S(Long),
                Val::S(Long),
                Val::S(Long),
                Val::S(Long),
                Val::S(Long),
                Val::S(Long),
                v.clone(),
                Val::S(Long),
            ],
            [
                vec![Val::S(Double); 7],
                vec![v.clone(), Val::S(Float), v.clone()],
            ]
            .concat(),
            [
                vec![Val::S(Long); 9],
                vec![Val::S(Double); 9],
                vec![v.clone(), Val::S(Int), v.clone()],
            ]
            .concat(),
        ];
        for (i, args) in lists.into_iter().enumerate() {
            let ret = if i % 2 == 0 {
                Some(v.clone())
            } else {
                Some(Val::S(ULong))
            };
            let name = format!("x{k}_{i}");
            funcs.push(make_func(
                &mut t,
                &shapes,
                name.clone(),
                name,
                args,
                ret,
                false,
            ));
        }
    }
    for j in 0..nfuncs {
        let mut args: Vec<Val> = Vec::new();
        let nmain = 1 + rng.below(4);
        let mut main: Vec<Val> = (0..nmain)
            .map(|_| {
                if rng.chance(65) {
                    Val::Rec(rng.below(shapes.len()))
                } else {
                    Val::S(random_scalar(&mut rng, true))
                }
            })
            .collect();
        // Use up registers first, in some functions.
        let (nint, nflt) = match rng.below(6) {
            0 => (4 + rng.below(5), 0),
            1 => (0, 6 + rng.below(4)),
            2 => (5 + rng.below(4), 6 + rng.below(4)),
            3 => (rng.below(4), rng.below(4)),
            _ => (0, 0),
        };
        for _ in 0..nint {
            args.push(Val::S(INT_SCALARS[rng.below(INT_SCALARS.len())]));
        }
        for _ in 0..nflt {
            let s = if rng.chance(50) {
                Sc::Double
            } else {
                Sc::Float
            };
            args.insert(rng.below(args.len() + 1), Val::S(s));
        }
        // aggregates both among and after the register fillers
        while let Some(v) = main.pop() {
            let at = if rng.chance(60) {
                args.len()
            } else {
                rng.below(args.len() + 1)
            };
            args.insert(at, v);
        }
        let ret = match rng.below(10) {
            0..=3 => Some(Val::Rec(rng.below(shapes.len()))),
            4..=6 => Some(Val::S(Sc::ULong)),
            7 | 8 => Some(Val::S(random_scalar(&mut rng, true))),
            _ => None,
        };
        let name = format!("f{j}");
        funcs.push(make_func(
            &mut t,
            &shapes,
            name.clone(),
            name,
            args,
            ret,
            false,
        ));
    }
    for j in 0..nvariadic {
        let n = 1 + rng.below(14);
        let mut args = vec![Val::S(Sc::Ptr)];
        for _ in 0..n {
            args.push(Val::S(
                [Sc::Int, Sc::Long, Sc::Double, Sc::Ptr][rng.below(4)],
            ));
        }
        if j % 8 == 7 {
            funcs.push(make_func(
                &mut t,
                &shapes,
                format!("v{j}"),
                "vld".into(),
                args,
                Some(Val::S(Sc::LongDouble)),
                true,
            ));
        } else {
            funcs.push(make_func(
                &mut t,
                &shapes,
                format!("v{j}"),
                "vfmt".into(),
                args,
                Some(Val::S(Sc::ULong)),
                true,
            ));
        }
    }
    for f in &funcs {
        emit_func_c(&mut c, f);
    }
    Library {
        shapes,
        funcs,
        c_source: c,
        target,
    }
}

fn make_func(
    t: &mut TypeTable,
    shapes: &[Shape],
    name: String,
    callee: String,
    args: Vec<Val>,
    ret: Option<Val>,
    variadic: bool,
) -> Func {
    let arg_tys: Vec<TypeRef> = args.iter().map(|a| val_type(a, t, shapes)).collect();
    let ret_ty = match &ret {
        Some(v) => val_type(v, t, shapes),
        None => t.void(),
    };
    let fty = t.func_ptr(arg_tys, &ret_ty, variadic);
    let Kind::FuncPtr(sig) = &fty.kind else {
        unreachable!()
    };
    let plan = lower(sig, &t.target).unwrap_or_else(|e| panic!("{name}: {e}"));
    Func {
        name,
        callee,
        args,
        ret,
        variadic,
        plan,
    }
}

fn emit_func_c(c: &mut String, f: &Func) {
    let n = &f.name;
    let rty = f.ret.as_ref().map_or("void".to_string(), val_c);
    let params: Vec<String> = f
        .args
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{} a{i}", val_c(a)))
        .collect();
    let names: Vec<String> = (0..f.args.len()).map(|i| format!("a{i}")).collect();
    let ptrs: Vec<String> = (0..f.args.len()).map(|i| format!("&a{i}")).collect();
    let decls: String = params.iter().map(|p| format!("{p}; ")).collect();
    // args_fN: argument memory from a seed.
    let _ = writeln!(
        c,
        "void args_{n}(void **p, uint64_t seed) {{ uint64_t s = seed;"
    );
    for (i, a) in f.args.iter().enumerate() {
        match a {
            Val::Rec(k) => {
                let _ = writeln!(c, "make_t{k}((t{k} *)p[{i}], sm(&s));");
            }
            Val::S(sc) if f.variadic && i == 0 => {
                let fmt: String = f.args[1..]
                    .iter()
                    .map(|a| match a {
                        Val::S(Sc::Int) => 'i',
                        Val::S(Sc::Long) => 'l',
                        Val::S(Sc::Double) => 'd',
                        _ => 'p',
                    })
                    .collect();
                let _ = writeln!(
                    c,
                    "{{ {} v = (void *)\"{fmt}\"; memcpy(p[0], &v, sizeof v); }}",
                    sc.c()
                );
            }
            Val::S(sc) => {
                let _ = writeln!(
                    c,
                    "{{ {} v; {} memcpy(p[{i}], &v, sizeof v); }}",
                    sc.c(),
                    sc.fill("v")
                );
            }
        }
    }
    let _ = writeln!(c, "}}");
    // rethash_fN: hash of a result in memory.
    let _ = write!(c, "uint64_t rethash_{n}(const void *r) {{ uint64_t h = 0; ");
    match &f.ret {
        None => {
            let _ = write!(c, "(void)r; h = g_last;");
        }
        Some(Val::Rec(k)) => {
            let _ = write!(c, "h = hash_t{k}(h, (const t{k} *)r);");
        }
        Some(Val::S(sc)) => {
            let _ = write!(c, "{} v; memcpy(&v, r, sizeof v); {}", sc.c(), sc.hash("v"));
        }
    }
    let _ = writeln!(c, " return h; }}");
    let call_args = names.join(", ");
    if !f.variadic {
        // impl_fN: the function's behaviour, on arguments in memory.
        let _ = writeln!(
            c,
            "void impl_{n}(void **p, void *ret) {{ uint64_t h = 0x1234; (void)p;"
        );
        for (i, a) in f.args.iter().enumerate() {
            match a {
                Val::Rec(k) => {
                    let _ = writeln!(c, "h = hash_t{k}(h, (const t{k} *)p[{i}]);");
                }
                Val::S(sc) => {
                    let _ = writeln!(
                        c,
                        "{{ {} v; memcpy(&v, p[{i}], sizeof v); {} }}",
                        sc.c(),
                        sc.hash("v")
                    );
                }
            }
        }
        match &f.ret {
            None => {
                let _ = writeln!(c, "(void)ret; g_last = h;");
            }
            Some(Val::Rec(k)) => {
                let _ = writeln!(c, "make_t{k}((t{k} *)ret, h);");
            }
            Some(Val::S(sc)) => {
                let _ = writeln!(
                    c,
                    "{{ uint64_t s = h; {} v; {} memcpy(ret, &v, sizeof v); }}",
                    sc.c(),
                    sc.fill("v")
                );
            }
        }
        let _ = writeln!(c, "}}");
        let pl = if params.is_empty() {
            "void".to_string()
        } else {
            params.join(", ")
        };
        let parr = if ptrs.is_empty() {
            "0".to_string()
        } else {
            ptrs.join(", ")
        };
        match &f.ret {
            None => {
                let _ = writeln!(
                    c,
                    "void {n}({pl}) {{ void *p[] = {{{parr}}}; impl_{n}(p, 0); }}"
                );
            }
            Some(_) => {
                let _ = writeln!(c, "{rty} {n}({pl}) {{ void *p[] = {{{parr}}}; {rty} r; impl_{n}(p, &r); return r; }}");
            }
        }
    }
    // check_fN (direct call) and via_fN (through a pointer).
    let ptypes: Vec<String> = f.args.iter().map(val_c).collect();
    let fptr = if f.variadic {
        format!("{rty} (*)({}, ...)", ptypes[0])
    } else if ptypes.is_empty() {
        format!("{rty} (*)(void)")
    } else {
        format!("{rty} (*)({})", ptypes.join(", "))
    };
    let parr = if ptrs.is_empty() {
        "0".to_string()
    } else {
        ptrs.join(", ")
    };
    for (fname, target) in [("check", f.callee.clone()), ("via", format!("(({fptr})g)"))] {
        let gparam = if fname == "via" { "void *g, " } else { "" };
        let _ = writeln!(c, "uint64_t {fname}_{n}({gparam}uint64_t seed) {{ {decls}void *p[] = {{{parr}}}; args_{n}(p, seed);");
        match &f.ret {
            None => {
                let _ = writeln!(c, "{target}({call_args}); return rethash_{n}(0); }}");
            }
            Some(_) => {
                let _ = writeln!(
                    c,
                    "{rty} r = {target}({call_args}); return rethash_{n}(&r); }}"
                );
            }
        }
    }
}

/// Checks the test's layouts against gcc's `layout_table` (size, align, field offsets).
pub fn check_layouts(lib: &Library, table: &[u64]) {
    let mut i = 0;
    for (k, s) in lib.shapes.iter().enumerate() {
        let l = s.ty.record_layout().unwrap();
        assert_eq!(table[i], l.size as u64, "sizeof(t{k})");
        assert_eq!(table[i + 1], l.align as u64, "_Alignof(t{k})");
        i += 2;
        for (fi, f) in s.fields.iter().enumerate() {
            if !matches!(f, Ft::Bits(..)) {
                assert_eq!(
                    table[i], l.fields[fi].offset as u64,
                    "offsetof(t{k}, f{fi})"
                );
                i += 1;
            }
        }
    }
}

/// `jcall_<name>(callee, argv, ret)`: calls `callee` per `plan` with the arguments at
/// `argv[i]`, writing the result to `ret`. `stub` is the function holding the plan's
/// stub bytes, if it needs one.
pub fn define_jcall<M: Module>(
    m: &mut M,
    isa: &OwnedTargetIsa,
    name: &str,
    plan: &CallPlan,
    stub: Option<FuncId>,
) -> FuncId {
    let isa = isa.clone();
    let ptr = isa.pointer_type();
    let mut sig = Signature::new(isa.default_call_conv());
    sig.params = vec![AbiParam::new(ptr); 3];
    let id = m.declare_function(name, Linkage::Export, &sig).unwrap();
    let mut ctx = Context::new();
    ctx.func.signature = sig;
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let (callee, argv, ret) = {
            let p = b.block_params(entry);
            (p[0], p[1], p[2])
        };
        let arg_ptrs: Vec<_> = (0..plan.args.len())
            .map(|i| {
                b.ins()
                    .load(ptr, MemFlagsData::trusted(), argv, (8 * i) as i32)
            })
            .collect();
        let stub_addr = stub.map(|s| {
            let fr = m.declare_func_in_func(s, b.func);
            b.ins().func_addr(ptr, fr)
        });
        emit_call_from_memory(&mut b, &*isa, plan, callee, stub_addr, &arg_ptrs, Some(ret));
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize(isa.frontend_config());
    }
    m.define_function(id, &mut ctx)
        .unwrap_or_else(|e| panic!("{name}: {e:?}\n{}", ctx.func.display()));
    id
}

/// The plan's stub as a local function, when it needs one.
pub fn define_stub<M: Module>(m: &mut M, name: &str, plan: &CallPlan) -> Option<FuncId> {
    let kind = plan.stub?;
    let sig = Signature::new(m.isa().default_call_conv());
    let id = m.declare_function(name, Linkage::Local, &sig).unwrap();
    m.define_function_bytes(id, 16, &stub_bytes(&kind), &[])
        .unwrap();
    Some(id)
}

/// `jthunk_<name>`: a function with the C signature of the plan that stores its arguments
/// to memory, lets `impl_fn(void **argv, void *ret)` compute the result, and returns it.
pub fn define_thunk<M: Module>(
    m: &mut M,
    isa: &OwnedTargetIsa,
    name: &str,
    plan: &CallPlan,
    impl_name: &str,
) -> Result<FuncId, String> {
    let isa = isa.clone();
    let ptr = isa.pointer_type();
    // An x86_64 x87 result: the thunk sits behind `stubs::x87_callback_entry`.
    let csig = if needs_x87_entry(plan) {
        c_signature_x87_entry(plan, &*isa)?
    } else {
        c_signature(plan, &*isa)?
    };
    let mut isig = Signature::new(isa.default_call_conv());
    isig.params = vec![AbiParam::new(ptr); 2];
    let impl_id = m
        .declare_function(impl_name, Linkage::Import, &isig)
        .unwrap();
    let id = m.declare_function(name, Linkage::Export, &csig).unwrap();
    let mut ctx = Context::new();
    ctx.func.signature = csig;
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry).to_vec();
        let slot = |b: &mut FunctionBuilder, size: u32| {
            let ss = b.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                size.max(16),
                4,
            ));
            b.ins().stack_addr(ptr, ss, 0)
        };
        let arg_ptrs: Vec<_> = plan.args.iter().map(|a| slot(&mut b, a.size)).collect();
        let argv = slot(&mut b, 8 * plan.args.len() as u32);
        for (i, p) in arg_ptrs.iter().enumerate() {
            b.ins()
                .store(MemFlagsData::trusted(), *p, argv, (8 * i) as i32);
        }
        let ret = slot(&mut b, plan.ret_size);
        emit_store_incoming(&mut b, plan, &params, &arg_ptrs);
        let fr = m.declare_func_in_func(impl_id, b.func);
        b.ins().call(fr, &[argv, ret]);
        emit_return_from_memory(&mut b, plan, &params, ret);
        b.seal_all_blocks();
        b.finalize(isa.frontend_config());
    }
    m.define_function(id, &mut ctx)
        .unwrap_or_else(|e| panic!("{name}: {e:?}\n{}", ctx.func.display()));
    Ok(id)
}

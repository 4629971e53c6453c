//! Malformed out-of-line tables: each kind of damage gives its typed error, and
//! thousands of random mutations of real tables give `Ok` or `Err`, never a panic.

#[path = "ool_support.rs"]
mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use jitffi::cdef::{CdefOptions, Namespace};
use jitffi::ool::lazy::resolve_type_string;
use jitffi::ool::tables::{word, Op};
use jitffi::ool::{self, DecodeError, RawTables, RealizeError, Realizer};
use jitffi::types::target::Target;

fn encoded(text: &str, packed: bool) -> RawTables {
    let mut ns = Namespace::new(Target::host());
    ns.cdef(
        text,
        &CdefOptions {
            packed,
            ..Default::default()
        },
    )
    .unwrap();
    ool::encode(&mut ns).unwrap().to_raw()
}

fn types(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// Decodes, then realizes every slot and every name.
fn exercise(raw: &RawTables) -> Result<(), String> {
    let module = ool::decode(raw).map_err(|e| e.to_string())?;
    let n = module.tables.types.len();
    let module = Arc::new(module);
    let mut r = Realizer::new(module.clone(), Target::host(), Vec::new());
    let mut first_err = None;
    for i in 0..n {
        if !module_is_type(&r, i) {
            assert!(r.slot(i).is_err());
            continue;
        }
        match r.slot(i) {
            Err(e) => {
                first_err.get_or_insert(e.to_string());
            }
            Ok((t, _)) => touch(&t),
        }
    }
    let mut r = Realizer::new(module.clone(), Target::host(), Vec::new());
    match r.declarations() {
        Err(e) => {
            first_err.get_or_insert(e.to_string());
        }
        Ok((d, _)) => {
            d.typedefs
                .values()
                .chain(d.structs.values())
                .chain(d.unions.values())
                .for_each(touch);
        }
    }
    for t in [
        "int",
        "struct point *",
        "point_t[3]",
        "myint",
        "callback_t",
        "vec3 *",
    ] {
        // The compiled FFI's path: a fresh namespace declaring what each string names.
        let inc = Arc::new(Mutex::new(Realizer::new(
            module.clone(),
            Target::host(),
            Vec::new(),
        )));
        let mut ns = Namespace::new(Target::host());
        if let Ok(t) = resolve_type_string(&inc, &mut ns, t) {
            touch(&t);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Everything a user could ask of a type: its size, alignment, name and fields.
fn touch(t: &jitffi::types::model::TypeRef) {
    let _ = (t.size(), t.align(), t.cname());
    if let Some(l) = t.record_layout() {
        for f in &l.fields {
            let _ = (f.ty.size(), f.ty.align(), f.ty.cname());
        }
    }
    if let jitffi::types::model::Kind::Pointer(item) = &t.kind {
        let _ = (item.size(), item.align());
    }
}

fn module_is_type(r: &Realizer, i: usize) -> bool {
    r.module().is_type_slot(i)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate_bytes(rng: &mut Rng, b: &mut Vec<u8>) {
    match rng.below(5) {
        0 if !b.is_empty() => {
            let i = rng.below(b.len());
            b[i] = rng.next() as u8;
        }
        1 => {
            let keep = rng.below(b.len() + 1);
            b.truncate(keep);
        }
        2 => {
            let i = rng.below(b.len() + 1);
            b.insert(i, rng.next() as u8);
        }
        3 if b.len() >= 4 => {
            // A plausible word: a known or unknown opcode with a small index.
            let at = rng.below(b.len() / 4) * 4;
            let ops = [
                1u8, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 31, 33, 35, 37, 41, 0, 2, 255,
            ];
            let op = ops[rng.below(ops.len())];
            let arg = (rng.below(40) as i32) - 2;
            b[at..at + 4].copy_from_slice(&word_raw(op, arg).to_be_bytes());
        }
        _ if !b.is_empty() => {
            let i = rng.below(b.len());
            b[i] ^= 1 << rng.below(8);
        }
        _ => {}
    }
}

fn word_raw(op: u8, arg: i32) -> u32 {
    ((arg as u32) << 8) | op as u32
}

fn mutate(rng: &mut Rng, raw: &mut RawTables) {
    for _ in 0..1 + rng.below(3) {
        match rng.below(9) {
            0..=2 => mutate_bytes(rng, &mut raw.types),
            3 if !raw.globals.is_empty() => {
                let i = rng.below(raw.globals.len());
                if rng.below(3) == 0 {
                    let values = [
                        0i128,
                        -1,
                        1 << 70,
                        -(1 << 70),
                        u64::MAX as i128,
                        i64::MIN as i128,
                        1 << 40,
                    ];
                    raw.globals[i].1 = values[rng.below(values.len())];
                } else {
                    mutate_bytes(rng, &mut raw.globals[i].0);
                }
            }
            4 if !raw.struct_unions.is_empty() => {
                let i = rng.below(raw.struct_unions.len());
                let s = &mut raw.struct_unions[i];
                match rng.below(4) {
                    0 if !s.is_empty() => {
                        let j = rng.below(s.len());
                        s.remove(j);
                    }
                    1 => s.push(types(&[word(Op::Noop, rng.below(30) as i32)])),
                    _ if !s.is_empty() => {
                        let j = rng.below(s.len());
                        mutate_bytes(rng, &mut s[j]);
                    }
                    _ => {}
                }
            }
            5 if !raw.enums.is_empty() => {
                let i = rng.below(raw.enums.len());
                mutate_bytes(rng, &mut raw.enums[i]);
            }
            6 if !raw.typenames.is_empty() => {
                let i = rng.below(raw.typenames.len());
                mutate_bytes(rng, &mut raw.typenames[i]);
            }
            7 => {
                // Reorder or drop whole items.
                match rng.below(4) {
                    0 if raw.globals.len() >= 2 => {
                        let i = rng.below(raw.globals.len());
                        raw.globals.swap(0, i);
                    }
                    1 if !raw.globals.is_empty() => {
                        let i = rng.below(raw.globals.len());
                        raw.globals.remove(i);
                    }
                    2 if !raw.struct_unions.is_empty() => {
                        let i = rng.below(raw.struct_unions.len());
                        raw.struct_unions.remove(i);
                    }
                    _ if !raw.enums.is_empty() => {
                        let i = rng.below(raw.enums.len());
                        raw.enums.remove(i);
                    }
                    _ => {}
                }
            }
            _ => {
                let keep = rng.below(raw.types.len() / 4 + 1) * 4;
                raw.types.truncate(keep);
            }
        }
    }
}

#[test]
fn random_corruption_never_panics() {
    let mut seeds: Vec<RawTables> = support::CORPUS
        .iter()
        .map(|(t, p)| encoded(t, *p))
        .collect();
    if support::python_has_cffi() {
        for r in support::run_cffi(support::CORPUS) {
            if let support::CffiResult::Module(m) = r {
                seeds.push(m.raw);
            }
        }
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut err) = (0, 0);
    for round in 0..20000 {
        let mut raw = seeds[round % seeds.len()].clone();
        mutate(&mut rng, &mut raw);
        match catch_unwind(AssertUnwindSafe(|| {
            let _ = ool::render_module("m", "_cffi_backend", &raw, &[]);
            exercise(&raw)
        })) {
            Ok(Ok(())) => ok += 1,
            Ok(Err(_)) => err += 1,
            Err(_) => panic!("round {round}: panicked on {raw:?}"),
        }
    }
    // Both outcomes occur: the mutations are neither all harmless nor all fatal.
    assert!(ok > 300 && err > 3000, "ok={ok} err={err}");
}

#[test]
fn every_seed_is_valid() {
    for (t, p) in support::CORPUS {
        exercise(&encoded(t, *p)).unwrap_or_else(|e| panic!("{t}: {e}"));
    }
}

fn raw_types(words: &[u32]) -> RawTables {
    RawTables {
        types: types(words),
        ..Default::default()
    }
}

fn decode_err(raw: &RawTables) -> DecodeError {
    ool::decode(raw).expect_err("must be rejected")
}

#[test]
fn typed_errors() {
    let int = word(Op::Primitive, 7);
    assert!(matches!(
        decode_err(&RawTables {
            types: vec![0, 0, 7],
            ..Default::default()
        }),
        DecodeError::TypesLength { len: 3 }
    ));
    assert!(matches!(
        decode_err(&raw_types(&[0x0000_0002])),
        DecodeError::UnknownOp { slot: 0, op: 2 }
    ));
    assert!(matches!(
        decode_err(&raw_types(&[word(Op::Primitive, 52)])),
        DecodeError::BadPrimitive { .. }
    ));
    assert!(matches!(
        decode_err(&raw_types(&[word(Op::Pointer, 5)])),
        DecodeError::IndexOutOfRange { .. }
    ));
    assert!(matches!(
        decode_err(&raw_types(&[word(Op::Pointer, -1)])),
        DecodeError::IndexOutOfRange { .. }
    ));
    assert!(matches!(
        decode_err(&raw_types(&[word(Op::Pointer, 0)])),
        DecodeError::TypeCycle { .. }
    ));
    assert!(matches!(
        decode_err(&raw_types(&[word(Op::Noop, 1), word(Op::Array, 0), 3])),
        DecodeError::TypeCycle { .. }
    ));
    assert!(matches!(
        decode_err(&raw_types(&[word(Op::Array, 0)])),
        DecodeError::Truncated { .. }
    ));
    assert!(matches!(
        decode_err(&raw_types(&[
            int,
            word(Op::Pointer, 2),
            int,
            word(Op::Array, 0),
            1 << 31
        ])),
        DecodeError::ArrayTooLong { .. }
    ));
    // A pointer at an array's length slot.
    assert!(matches!(
        decode_err(&raw_types(&[
            word(Op::Array, 2),
            4,
            int,
            word(Op::Pointer, 1)
        ])),
        DecodeError::NotAType { .. }
    ));
    assert!(matches!(
        decode_err(&raw_types(&[word(Op::Function, 1), int])),
        DecodeError::UnterminatedFunction { .. }
    ));
    assert!(matches!(
        decode_err(&raw_types(&[
            word(Op::Function, 2),
            word(Op::FunctionEnd, 4),
            int
        ])),
        DecodeError::BadFunctionEnd { .. }
    ));
    assert!(matches!(
        decode_err(&raw_types(&[word(Op::FunctionEnd, 0)])),
        DecodeError::MisplacedOp { .. }
    ));
    assert!(matches!(
        decode_err(&raw_types(&[word(Op::GlobalVar, 0)])),
        DecodeError::MisplacedOp { .. }
    ));
    assert!(matches!(
        decode_err(&raw_types(&[word(Op::StructUnion, 0)])),
        DecodeError::IndexOutOfRange { .. }
    ));

    let base = encoded(
        "struct s { int a; struct s *n; }; enum e { X, Y }; int f(int); int v;",
        false,
    );
    let mut raw = base.clone();
    raw.globals.swap(0, 1);
    assert!(matches!(decode_err(&raw), DecodeError::NotSorted { .. }));
    let mut raw = base.clone();
    raw.globals.retain(|(b, _)| &b[4..] != b"X");
    assert!(matches!(
        decode_err(&raw),
        DecodeError::EnumeratorMissing { .. }
    ));
    let mut raw = base.clone();
    let at = raw
        .globals
        .iter()
        .position(|(b, _)| &b[4..] > b"Z".as_slice())
        .unwrap();
    raw.globals.insert(
        at,
        (
            types(&[word(Op::Enum, -1)])
                .into_iter()
                .chain(*b"Z")
                .collect(),
            0,
        ),
    );
    assert!(matches!(
        decode_err(&raw),
        DecodeError::OrphanEnumerator { .. }
    ));
    let mut raw = base.clone();
    raw.globals[0].1 = 1 << 64;
    assert!(matches!(
        decode_err(&raw),
        DecodeError::ValueOutOfRange { .. }
    ));
    let mut raw = base.clone();
    raw.struct_unions[0][0][7] |= 0x10;
    assert!(matches!(
        decode_err(&raw),
        DecodeError::FieldsOnOpaque { .. }
    ));
    let mut raw = base.clone();
    raw.struct_unions[0][0][7] = 0x40;
    assert!(matches!(decode_err(&raw), DecodeError::BadFlags { .. }));
    let mut raw = base.clone();
    raw.struct_unions[0][1][3] = Op::Pointer as u8;
    assert!(matches!(decode_err(&raw), DecodeError::BadFieldOp { .. }));
    let mut raw = base.clone();
    let dup = raw.struct_unions[0][1].clone();
    raw.struct_unions[0].push(dup);
    assert!(matches!(
        decode_err(&raw),
        DecodeError::DuplicateField { .. }
    ));
    let mut raw = base.clone();
    let nul = 8 + raw.enums[0][8..].iter().position(|c| *c == 0).unwrap();
    raw.enums[0].remove(nul);
    assert!(matches!(decode_err(&raw), DecodeError::MissingNul { .. }));
    let mut raw = base.clone();
    raw.enums[0][7] = 13;
    assert!(matches!(decode_err(&raw), DecodeError::BadEnumPrim { .. }));
    let mut raw = base.clone();
    raw.struct_unions[0][0][3] ^= 1;
    assert!(matches!(
        decode_err(&raw),
        DecodeError::WrongTypeIndex { .. }
    ));
    let mut raw = base.clone();
    raw.globals[0].0.push(b'-');
    assert!(matches!(
        decode_err(&raw),
        DecodeError::BadName { .. } | DecodeError::NotSorted { .. }
    ));
    let mut raw = base.clone();
    raw.globals[0].0[3] = Op::CpythonBltnV as u8;
    assert!(matches!(decode_err(&raw), DecodeError::BadGlobalOp { .. }));

    // struct s { struct s inner; }: by value in itself.
    let mut raw = base.clone();
    let s_slot = u32::from_be_bytes(raw.struct_unions[0][0][..4].try_into().unwrap());
    raw.struct_unions[0][1] = types(&[word(Op::Noop, s_slot as i32)])
        .into_iter()
        .chain(*b"a")
        .collect();
    assert!(matches!(decode_err(&raw), DecodeError::ByValueCycle { .. }));

    assert!(matches!(
        ool::check_version(Some(0x2500), false),
        Err(DecodeError::UnknownVersion { .. })
    ));
    assert!(matches!(
        ool::check_version(None, false),
        Err(DecodeError::UnknownVersion { version: None })
    ));
    assert_eq!(ool::check_version(None, true), Ok(false));
    assert_eq!(ool::check_version(Some(0x28FF), false), Ok(true));
}

#[test]
fn realize_errors() {
    let int = word(Op::Primitive, 7);
    let void = word(Op::Primitive, 0);
    let realize_slot = |words: &[u32], slot: usize| -> Result<(), RealizeError> {
        let module = Arc::new(ool::decode(&raw_types(words)).unwrap());
        Realizer::new(module, Target::host(), Vec::new())
            .slot(slot)
            .map(|_| ())
    };
    // An array of a function type, of void.
    let f = [word(Op::Function, 2), word(Op::FunctionEnd, 0), int];
    let mut w = f.to_vec();
    w.extend([word(Op::Array, 0), 3]);
    assert!(matches!(
        realize_slot(&w, 3),
        Err(RealizeError::FunctionType { .. })
    ));
    assert!(matches!(
        realize_slot(&[word(Op::OpenArray, 1), void], 0),
        Err(RealizeError::VoidValue { .. })
    ));
    // Too large: [2**31-1][2**31-1] of int.
    let w = [
        word(Op::Array, 2),
        0x7FFF_FFFF,
        word(Op::Array, 4),
        0x7FFF_FFFF,
        int,
    ];
    assert!(matches!(
        realize_slot(&w, 0),
        Err(RealizeError::TooLarge { .. })
    ));
}

#[test]
fn deep_chains_end_in_an_error_not_a_stack_overflow() {
    // 5000 pointers deep: no cycle, but deeper than the reader goes. Run on a thread
    // with a small stack, as Python threads may have.
    let mut words: Vec<u32> = (0..5000).map(|i| word(Op::Pointer, i + 1)).collect();
    words.push(word(Op::Primitive, 7));
    let raw = raw_types(&words);
    let h = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let module = Arc::new(ool::decode(&raw).unwrap());
            let mut r = Realizer::new(module, Target::host(), Vec::new());
            let deep = r.slot(0).map(|_| ());
            // Realizing from the far end first builds the chain bit by bit.
            let mut r2 = Realizer::new(r.module().clone(), Target::host(), Vec::new());
            for i in (4001..=5000).rev() {
                r2.slot(i).unwrap();
            }
            let far = r2.slot(0).map(|_| ());
            (deep, far)
        })
        .unwrap();
    let (deep, far) = h.join().expect("no stack overflow");
    assert!(matches!(deep, Err(RealizeError::TooDeep { .. })));
    assert!(matches!(far, Err(RealizeError::TooDeep { .. })));
}

#[test]
fn includes_share_records() {
    // Module B refers to A's `struct pt` through an external entry.
    let a_raw = encoded("struct pt { int x, y; }; typedef struct pt pt_t;", false);
    let a = Arc::new(ool::decode(&a_raw).unwrap());
    let a_real = Arc::new(std::sync::Mutex::new(Realizer::new(
        a,
        Target::host(),
        Vec::new(),
    )));
    let slot = |op: Op, arg: i32| word(op, arg);
    let b_raw = RawTables {
        types: types(&[slot(Op::Pointer, 1), slot(Op::StructUnion, 0)]),
        struct_unions: vec![vec![[0u32.to_be_bytes(), 0u32.to_be_bytes()].concat()]],
        typenames: vec![[0u32.to_be_bytes().to_vec(), b"ptp".to_vec()].concat()],
        ..Default::default()
    };
    // Entry 0 at slot 1, external.
    let mut b_raw = b_raw;
    b_raw.struct_unions[0][0] = [1u32.to_be_bytes(), 0x08u32.to_be_bytes()].concat();
    b_raw.struct_unions[0][0].extend_from_slice(b"pt");
    let b = Arc::new(ool::decode(&b_raw).unwrap());
    let mut b_real = Realizer::new(b.clone(), Target::host(), vec![a_real.clone()]);
    let (ptp, _) = b_real.typename("ptp").unwrap().unwrap();
    let theirs = a_real.lock().unwrap().record("pt", false).unwrap().unwrap();
    let jitffi::types::model::Kind::Pointer(item) = &ptp.kind else {
        panic!()
    };
    let (jitffi::types::model::Kind::Record(r1), jitffi::types::model::Kind::Record(r2)) =
        (&item.kind, &theirs.kind)
    else {
        panic!()
    };
    assert!(Arc::ptr_eq(r1, r2));
    assert_eq!(item.size(), Some(8));
    // Without the include: a clean error.
    let mut alone = Realizer::new(b, Target::host(), Vec::new());
    assert!(matches!(
        alone.typename("ptp"),
        Err(RealizeError::NotInIncludes { .. })
    ));
}

#[test]
fn sizes_checked_once_structs_are_laid_out() {
    // struct S { char a[2**31-1]; }; then S[2**31-1] and S[2**31-1][2**31-1]: their
    // sizes are only known after S's layout, and must still be refused, not overflow.
    let big = 0x7FFF_FFFF;
    let words = [
        word(Op::Primitive, 2),
        word(Op::Array, 0),
        big,
        word(Op::StructUnion, 0),
        word(Op::Array, 3),
        big,
        word(Op::Array, 4),
        big,
    ];
    let mut head = 3u32.to_be_bytes().to_vec();
    head.extend(0u32.to_be_bytes());
    head.extend(b"S");
    let mut field = word(Op::Noop, 1).to_be_bytes().to_vec();
    field.extend(b"a");
    let raw = RawTables {
        types: types(&words),
        struct_unions: vec![vec![head, field]],
        ..Default::default()
    };
    let module = Arc::new(ool::decode(&raw).unwrap());
    for first in [6usize, 4] {
        let mut r = Realizer::new(module.clone(), Target::host(), Vec::new());
        let got = r.slot(first);
        assert!(
            matches!(got, Err(RealizeError::TooLarge { .. })),
            "{first}: {:?}",
            got.map(|t| t.0.cname())
        );
        // Nothing built afterwards may hand out the oversized types either.
        assert!(r.slot(6).is_err() && r.slot(4).is_err());
        // Built on its own, struct S is fine.
        let mut r = Realizer::new(module.clone(), Target::host(), Vec::new());
        assert_eq!(r.slot(3).unwrap().0.size(), Some(big as usize));
        assert!(matches!(r.slot(first), Err(RealizeError::TooLarge { .. })));
    }
}

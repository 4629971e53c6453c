//! x86_64 System V (psABI §3.2.3): eightbyte classification of aggregates.

use cranelift_codegen::ir::types;

use super::*;
use crate::types::model::{FuncSig, Kind, TypeNode};

const GPRS: u8 = 6;
const VREGS: u8 = 8;

/// The psABI's classes, with its names.
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    NoClass,
    Integer,
    Sse,
    X87,
    X87Up,
    Memory,
}

fn merge(a: Class, b: Class) -> Class {
    use Class::*;
    match (a, b) {
        _ if a == b => a,
        (NoClass, x) | (x, NoClass) => x,
        (Memory, _) | (_, Memory) => Memory,
        (Integer, _) | (_, Integer) => Integer,
        (X87 | X87Up, _) | (_, X87 | X87Up) => Memory,
        _ => Sse,
    }
}

/// Classes of the eightbytes of an aggregate (or complex / long double), or `[Memory]`.
fn classify(ty: &TypeNode, size: u32) -> Result<Vec<Class>, LowerError> {
    if size == 0 {
        return Ok(Vec::new());
    }
    if size > 16 {
        return Ok(vec![Class::Memory]);
    }
    let mut leaves = Vec::new();
    flatten(ty, 0, &mut leaves)?;
    if leaves.iter().any(|l| l.unaligned) {
        return Ok(vec![Class::Memory]);
    }
    let n = size.div_ceil(8) as usize;
    let mut classes = vec![Class::NoClass; n];
    for l in &leaves {
        let eb = (l.offset / 8) as usize;
        match l.leaf {
            Leaf::Int(_) => classes[eb] = merge(classes[eb], Class::Integer),
            Leaf::Float | Leaf::Double => classes[eb] = merge(classes[eb], Class::Sse),
            Leaf::LongDouble => {
                classes[eb] = merge(classes[eb], Class::X87);
                classes[eb + 1] = merge(classes[eb + 1], Class::X87Up);
            }
        }
    }
    let memory = classes.contains(&Class::Memory)
        || classes
            .iter()
            .enumerate()
            .any(|(i, c)| *c == Class::X87Up && (i == 0 || classes[i - 1] != Class::X87));
    if memory {
        return Ok(vec![Class::Memory]);
    }
    Ok(classes)
}

struct State {
    gpr: u8,
    vreg: u8,
    stack: u32,
}

impl State {
    fn stack_slot(&mut self, size: u32, align: u32) -> u32 {
        self.stack = align_to(self.stack, align.max(8));
        let off = self.stack;
        self.stack += align_to(size.max(1), 8);
        off
    }

    /// The value's memory image as 8-byte chunks in the stack argument area.
    fn memory_parts(&mut self, size: u32, align: u32) -> Parts {
        let base = self.stack_slot(size, align);
        chunks(size)
            .map(|(off, sz)| Part {
                offset: off,
                size: sz,
                ty: int_type_for(sz),
                loc: Loc::Stack(base + off),
                ext: Ext::None,
            })
            .collect()
    }
}

/// (offset, size) of the 8-byte pieces of a `size`-byte value.
pub(crate) fn chunks(size: u32) -> impl Iterator<Item = (u32, u32)> {
    (0..size.div_ceil(8)).map(move |i| (i * 8, (size - i * 8).min(8)))
}

fn eightbyte_parts(classes: &[Class], size: u32) -> Vec<(u32, u32, Class)> {
    classes
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != Class::NoClass)
        .map(|(i, c)| {
            let off = i as u32 * 8;
            (off, (size - off).min(8), *c)
        })
        .collect()
}

fn sse_type(size: u32) -> Type {
    if size <= 4 {
        types::F32
    } else {
        types::F64
    }
}

fn lower_arg(st: &mut State, ty: &TypeNode) -> Result<ArgPlan, LowerError> {
    let (size, align) = arg_size_align(ty)?;
    let single = |st: &mut State, ty: Type, is_int: bool, ext: Ext, size: u32| -> Parts {
        let loc = if is_int && st.gpr < GPRS {
            st.gpr += 1;
            Loc::Gpr(st.gpr - 1)
        } else if !is_int && st.vreg < VREGS {
            st.vreg += 1;
            Loc::Vec(st.vreg - 1)
        } else {
            Loc::Stack(st.stack_slot(8, 8))
        };
        smallvec::smallvec![Part {
            offset: 0,
            size,
            ty,
            loc,
            ext,
        }]
    };
    let parts = match scalar_of(ty) {
        Some(Scalar::Int { size, signed }) => {
            single(st, int_type_for(size), true, int_ext(size, signed), size)
        }
        Some(Scalar::Float) => single(st, types::F32, false, Ext::None, 4),
        Some(Scalar::Double) => single(st, types::F64, false, Ext::None, 8),
        Some(Scalar::LongDouble) => st.memory_parts(16, 16),
        _ => {
            let classes = classify(ty, size)?;
            // X87 classes are passed in memory (they only matter for results).
            if classes
                .iter()
                .any(|c| matches!(c, Class::Memory | Class::X87 | Class::X87Up))
            {
                st.memory_parts(size, align)
            } else {
                let ebs = eightbyte_parts(&classes, size);
                let need_int = ebs.iter().filter(|e| e.2 == Class::Integer).count() as u8;
                let need_sse = ebs.iter().filter(|e| e.2 == Class::Sse).count() as u8;
                if st.gpr + need_int > GPRS || st.vreg + need_sse > VREGS {
                    // All or nothing: the whole aggregate goes to the stack, and the
                    // registers stay available for later arguments.
                    st.memory_parts(size, align)
                } else {
                    ebs.iter()
                        .map(|&(off, sz, c)| {
                            let (ty, loc) = if c == Class::Integer {
                                st.gpr += 1;
                                (int_type_for(sz), Loc::Gpr(st.gpr - 1))
                            } else {
                                st.vreg += 1;
                                (sse_type(sz), Loc::Vec(st.vreg - 1))
                            };
                            Part {
                                offset: off,
                                size: sz,
                                ty,
                                loc,
                                ext: Ext::None,
                            }
                        })
                        .collect()
                }
            }
        }
    };
    Ok(ArgPlan {
        size,
        align,
        pass: ArgPass::Parts(parts),
    })
}

fn lower_ret(ty: &TypeNode) -> Result<(RetPass, u32, u32), LowerError> {
    if matches!(ty.kind, Kind::Void) {
        return Ok((RetPass::Void, 0, 1));
    }
    if let Kind::Array(..) = ty.kind {
        return Err(LowerError::ArrayResult);
    }
    let (size, align) = size_align(ty)?;
    let one = |ty: Type, loc: Loc, ext: Ext| {
        RetPass::Parts(smallvec::smallvec![Part {
            offset: 0,
            size,
            ty,
            loc,
            ext,
        }])
    };
    let ret = match scalar_of(ty) {
        Some(Scalar::Int { size, signed }) => {
            one(int_type_for(size), Loc::Gpr(0), int_ext(size, signed))
        }
        Some(Scalar::Float) => one(types::F32, Loc::Vec(0), Ext::None),
        Some(Scalar::Double) => one(types::F64, Loc::Vec(0), Ext::None),
        Some(Scalar::LongDouble) => RetPass::X87,
        _ => {
            let classes = classify(ty, size)?;
            if classes.is_empty() {
                RetPass::Void
            } else if classes == [Class::Memory] {
                RetPass::Sret
            } else if classes == [Class::X87, Class::X87Up] {
                RetPass::X87
            } else {
                let (mut gi, mut vi) = (0u8, 0u8);
                RetPass::Parts(
                    eightbyte_parts(&classes, size)
                        .into_iter()
                        .map(|(off, sz, c)| {
                            let (ty, loc) = if c == Class::Integer {
                                gi += 1;
                                (int_type_for(sz), Loc::Gpr(gi - 1))
                            } else {
                                vi += 1;
                                (sse_type(sz), Loc::Vec(vi - 1))
                            };
                            Part {
                                offset: off,
                                size: sz,
                                ty,
                                loc,
                                ext: Ext::None,
                            }
                        })
                        .collect(),
                )
            }
        }
    };
    Ok((ret, size, align))
}

pub(super) fn lower(sig: &FuncSig) -> Result<CallPlan, LowerError> {
    let (ret, ret_size, ret_align) = lower_ret(&sig.result)?;
    let mut st = State {
        gpr: 0,
        vreg: 0,
        stack: 0,
    };
    if ret == RetPass::Sret {
        st.gpr = 1;
    }
    let args = sig
        .args
        .iter()
        .map(|a| lower_arg(&mut st, a))
        .collect::<Result<Vec<_>, _>>()?;
    let variadic = sig.variadic.then_some(VariadicInfo {
        vector_regs: st.vreg,
    });
    let stub = match (&ret, variadic) {
        (RetPass::X87, v) => Some(StubKind::X87Return {
            al: v.map(|v| v.vector_regs),
            stack_size: st.stack,
        }),
        (_, Some(v)) => Some(StubKind::Variadic {
            al: v.vector_regs,
            stack_size: st.stack,
        }),
        _ => None,
    };
    Ok(CallPlan {
        arch: Arch::X86_64,
        args,
        ret,
        ret_size,
        ret_align,
        stack_size: st.stack,
        gprs_used: st.gpr,
        vregs_used: st.vreg,
        variadic,
        stub,
    })
}

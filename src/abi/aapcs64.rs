//! aarch64 AAPCS64 (Linux): HFA/HVA in v registers, composites ≤ 16 bytes in x registers,
//! larger ones copied and passed by reference, result pointer in x8.

use cranelift_codegen::ir::types;

use super::sysv_x64::chunks;
use super::*;
use crate::types::model::{FuncSig, Kind, TypeNode};

const GPRS: u8 = 8;
const VREGS: u8 = 8;

fn leaf_float_type(l: Leaf) -> Option<(Type, u32)> {
    match l {
        Leaf::Float => Some((types::F32, 4)),
        Leaf::Double => Some((types::F64, 8)),
        Leaf::LongDouble => Some((types::F128, 16)),
        Leaf::Int(_) => None,
    }
}

/// Homogeneous floating-point aggregate: (member type, member size, count 1..=4).
fn hfa(ty: &TypeNode, size: u32) -> Result<Option<(Type, u32, u32)>, LowerError> {
    let mut leaves = Vec::new();
    flatten(ty, 0, &mut leaves)?;
    let Some(first) = leaves.first() else {
        return Ok(None);
    };
    let Some((fty, esize)) = leaf_float_type(first.leaf) else {
        return Ok(None);
    };
    if leaves
        .iter()
        .any(|l| l.leaf != first.leaf || !l.offset.is_multiple_of(esize))
        || !size.is_multiple_of(esize)
    {
        return Ok(None);
    }
    let count = size / esize;
    if !(1..=4).contains(&count) {
        return Ok(None);
    }
    let mut covered = vec![false; count as usize];
    for l in &leaves {
        covered[(l.offset / esize) as usize] = true;
    }
    Ok(covered.iter().all(|c| *c).then_some((fty, esize, count)))
}

struct State {
    ngrn: u8,
    nsrn: u8,
    nsaa: u32,
}

impl State {
    fn stack_slot(&mut self, size: u32, align: u32) -> u32 {
        self.nsaa = align_to(self.nsaa, if align > 8 { 16 } else { 8 });
        let off = self.nsaa;
        self.nsaa += align_to(size.max(1), 8);
        off
    }

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

    fn gpr_or_stack(&mut self, ty: Type, size: u32, ext: Ext) -> Part {
        let loc = if self.ngrn < GPRS {
            self.ngrn += 1;
            Loc::Gpr(self.ngrn - 1)
        } else {
            Loc::Stack(self.stack_slot(8, 8))
        };
        Part {
            offset: 0,
            size,
            ty,
            loc,
            ext,
        }
    }

    fn vreg_or_stack(&mut self, ty: Type, size: u32) -> Part {
        let loc = if self.nsrn < VREGS {
            self.nsrn += 1;
            Loc::Vec(self.nsrn - 1)
        } else {
            Loc::Stack(self.stack_slot(size, size))
        };
        Part {
            offset: 0,
            size,
            ty,
            loc,
            ext: Ext::None,
        }
    }
}

fn lower_arg(st: &mut State, ty: &TypeNode) -> Result<ArgPlan, LowerError> {
    let (size, align) = arg_size_align(ty)?;
    let pass = match scalar_of(ty) {
        Some(Scalar::Int { size, signed }) => ArgPass::Parts(smallvec::smallvec![st.gpr_or_stack(
            int_type_for(size),
            size,
            int_ext(size, signed),
        )]),
        Some(Scalar::Float) => ArgPass::Parts(smallvec::smallvec![st.vreg_or_stack(types::F32, 4)]),
        Some(Scalar::Double) => {
            ArgPass::Parts(smallvec::smallvec![st.vreg_or_stack(types::F64, 8)])
        }
        Some(Scalar::LongDouble) => {
            ArgPass::Parts(smallvec::smallvec![st.vreg_or_stack(types::F128, 16)])
        }
        _ => {
            if size == 0 {
                ArgPass::Parts(Parts::new())
            } else if let Some((fty, esize, count)) = hfa(ty, size)? {
                if st.nsrn as u32 + count <= VREGS as u32 {
                    let parts = (0..count)
                        .map(|k| Part {
                            offset: k * esize,
                            size: esize,
                            ty: fty,
                            loc: Loc::Vec(st.nsrn + k as u8),
                            ext: Ext::None,
                        })
                        .collect();
                    st.nsrn += count as u8;
                    ArgPass::Parts(parts)
                } else {
                    // C.3: no partial HFA in registers, and later float arguments go to
                    // the stack too.
                    st.nsrn = VREGS;
                    ArgPass::Parts(st.memory_parts(size, align))
                }
            } else if size > 16 {
                // B.4: the caller's copy, passed by address.
                let p = st.gpr_or_stack(types::I64, 8, Ext::None);
                ArgPass::ByRef {
                    ptr: p.loc,
                    size,
                    align,
                }
            } else {
                let n = size.div_ceil(8) as u8;
                if align == 16 && st.ngrn % 2 == 1 {
                    st.ngrn += 1; // C.8
                }
                if st.ngrn + n <= GPRS {
                    let parts = chunks(size)
                        .enumerate()
                        .map(|(k, (off, sz))| Part {
                            offset: off,
                            size: sz,
                            ty: int_type_for(sz),
                            loc: Loc::Gpr(st.ngrn + k as u8),
                            ext: Ext::None,
                        })
                        .collect();
                    st.ngrn += n;
                    ArgPass::Parts(parts)
                } else {
                    st.ngrn = GPRS; // C.13
                    ArgPass::Parts(st.memory_parts(size, align))
                }
            }
        }
    };
    Ok(ArgPlan { size, align, pass })
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
        Some(Scalar::LongDouble) => one(types::F128, Loc::Vec(0), Ext::None),
        _ => {
            if size == 0 {
                RetPass::Void
            } else if let Some((fty, esize, count)) = hfa(ty, size)? {
                RetPass::Parts(
                    (0..count)
                        .map(|k| Part {
                            offset: k * esize,
                            size: esize,
                            ty: fty,
                            loc: Loc::Vec(k as u8),
                            ext: Ext::None,
                        })
                        .collect(),
                )
            } else if size > 16 {
                RetPass::Sret
            } else {
                RetPass::Parts(
                    chunks(size)
                        .enumerate()
                        .map(|(k, (off, sz))| Part {
                            offset: off,
                            size: sz,
                            ty: int_type_for(sz),
                            loc: Loc::Gpr(k as u8),
                            ext: Ext::None,
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
    // The result pointer travels in x8, which is not an argument register.
    let mut st = State {
        ngrn: 0,
        nsrn: 0,
        nsaa: 0,
    };
    let args = sig
        .args
        .iter()
        .map(|a| lower_arg(&mut st, a))
        .collect::<Result<Vec<_>, _>>()?;
    // Linux passes variadic arguments exactly like named ones (Apple would not).
    let variadic = sig.variadic.then_some(VariadicInfo {
        vector_regs: st.nsrn,
    });
    Ok(CallPlan {
        arch: Arch::Aarch64,
        args,
        ret,
        ret_size,
        ret_align,
        stack_size: st.nsaa,
        gprs_used: st.ngrn,
        vregs_used: st.nsrn,
        variadic,
        stub: None,
    })
}

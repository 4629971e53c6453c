//! The machine state of a call as plain memory, and moving C values in and out of it per a
//! plan: the data side of the generic call tier (one call stub and one callback thunk per
//! target, driven by `CallPlan`s instead of code compiled per signature).
//!
//! A caller fills a `RegFile` (argument registers, `%al`, the outgoing stack-argument
//! area), the target's generic stub loads it into the machine registers, calls, and
//! stores the result registers back. A generic callback thunk does the reverse: it saves
//! the incoming argument registers and the address of the incoming stack arguments, and
//! returns whatever was left in the result registers. Everything here is plain data and
//! unit-tested without running code; where a value's bytes go comes from the plan's
//! `Part`s only.

use super::{Ext, Loc, Part};

/// Integer argument registers kept (x86_64 uses the first six, aarch64 eight).
pub const GPRS: usize = 8;
/// Vector argument registers kept (xmm0..7 / v0..7, low 128 bits).
pub const VREGS: usize = 8;
/// Result registers kept: rax, rdx / x0, x1; xmm0, xmm1 / v0..v3 (a four-member HFA).
pub const RET_GPRS: usize = 2;
pub const RET_VREGS: usize = 4;

/// What a generic stub or thunk exchanges with Rust. `repr(C)`: the stubs address the
/// fields at the offsets below.
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct RegFile {
    pub gpr: [u64; GPRS],
    pub vec: [[u8; 16]; VREGS],
    /// aarch64: x8, the address of result memory for results returned in memory.
    /// (x86_64 passes that address as the first integer argument, `gpr[0]`.)
    pub x8: u64,
    /// x86_64 variadic calls: `%al`, an upper bound of vector registers used.
    pub al: u64,
    /// The function called (calls) or 0 (callbacks).
    pub target: u64,
    /// Calls: the outgoing stack-argument area to copy below the stack pointer;
    /// callbacks: where the incoming stack arguments start.
    pub stack: u64,
    /// Bytes of `stack` (calls: a multiple of 16).
    pub stack_size: u64,
    pub ret_gpr: [u64; RET_GPRS],
    pub ret_vec: [[u8; 16]; RET_VREGS],
    /// x86_64 `long double` results: `st(0)` stored as its 10 significant bytes.
    pub x87: [u8; 16],
    /// Callbacks (x86_64): nonzero when the result is an x87 `long double` that the
    /// generic thunk loads from `x87` into `st(0)` (the thunk clears it before the call).
    pub ret_x87: u64,
    /// Calls on x86_64: nonzero when the callee returns in x87 `st(0)` (`RetPass::X87`),
    /// which the stub then pops into `x87`; the x87 stack must be left balanced, and
    /// popping an empty one would fault, so the stub has to be told.
    pub x87_result: u64,
}

/// Field offsets for hand-assembled or generated stubs.
pub mod offsets {
    use super::RegFile;
    use std::mem::offset_of;
    pub const GPR: usize = offset_of!(RegFile, gpr);
    pub const VEC: usize = offset_of!(RegFile, vec);
    pub const X8: usize = offset_of!(RegFile, x8);
    pub const AL: usize = offset_of!(RegFile, al);
    pub const TARGET: usize = offset_of!(RegFile, target);
    pub const STACK: usize = offset_of!(RegFile, stack);
    pub const STACK_SIZE: usize = offset_of!(RegFile, stack_size);
    pub const RET_GPR: usize = offset_of!(RegFile, ret_gpr);
    pub const RET_VEC: usize = offset_of!(RegFile, ret_vec);
    pub const X87: usize = offset_of!(RegFile, x87);
    pub const RET_X87: usize = offset_of!(RegFile, ret_x87);
    pub const X87_RESULT: usize = offset_of!(RegFile, x87_result);
}

/// Registers (and stack bytes) one side of a transfer reads or writes: argument
/// registers with the stack-argument area, or result registers (no stack).
pub struct Regs<'a> {
    pub gpr: &'a mut [u64],
    pub vec: &'a mut [[u8; 16]],
    pub stack: &'a mut [u8],
}

/// Why a part does not fit the registers or stack area given (a plan for a different
/// register file, or a stack area too small): a bug in the caller, reported, not a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    pub loc: Loc,
}

impl RegFile {
    /// The argument registers with `stack` as the stack-argument area.
    pub fn args<'a>(&'a mut self, stack: &'a mut [u8]) -> Regs<'a> {
        Regs {
            gpr: &mut self.gpr,
            vec: &mut self.vec,
            stack,
        }
    }

    /// The result registers.
    pub fn results(&mut self) -> Regs<'_> {
        Regs {
            gpr: &mut self.ret_gpr,
            vec: &mut self.ret_vec,
            stack: &mut [],
        }
    }
}

/// The low `size` bytes of `bytes` (little-endian) as an integer, extended per `ext`.
fn extend(bytes: &[u8], ext: Ext) -> u64 {
    let mut raw = [0u8; 8];
    raw[..bytes.len()].copy_from_slice(bytes);
    let v = u64::from_le_bytes(raw);
    let bits = bytes.len() as u32 * 8;
    match ext {
        Ext::Sext if bits > 0 && bits < 64 => {
            let shift = 64 - bits;
            (((v << shift) as i64) >> shift) as u64
        }
        _ => v,
    }
}

/// Puts the C value `value` (its whole C representation) where `parts` say. Integer
/// pieces fill their whole register (and extended ones their 8-byte slot), extended as
/// the convention asks;
/// vector pieces fill the low bytes of their register with the rest zeroed.
pub fn store_value(parts: &[Part], value: &[u8], regs: &mut Regs<'_>) -> Result<(), OutOfRange> {
    for p in parts {
        let (off, size) = (p.offset as usize, p.size as usize);
        let bytes = value
            .get(off..off + size)
            .ok_or(OutOfRange { loc: p.loc })?;
        match p.loc {
            Loc::Gpr(n) => {
                let r = regs
                    .gpr
                    .get_mut(n as usize)
                    .ok_or(OutOfRange { loc: p.loc })?;
                *r = extend(bytes, p.ext);
            }
            Loc::Vec(n) => {
                let r = regs
                    .vec
                    .get_mut(n as usize)
                    .ok_or(OutOfRange { loc: p.loc })?;
                *r = [0; 16];
                r.get_mut(..size)
                    .ok_or(OutOfRange { loc: p.loc })?
                    .copy_from_slice(bytes);
            }
            Loc::Stack(at) => {
                let at = at as usize;
                // A scalar the convention extends fills its 8-byte slot; any other piece
                // writes its own bytes only (the caller zeroes the area).
                if p.ext != Ext::None && size < 8 {
                    let word = extend(bytes, p.ext).to_le_bytes();
                    let dst = regs
                        .stack
                        .get_mut(at..at + 8)
                        .ok_or(OutOfRange { loc: p.loc })?;
                    dst.copy_from_slice(&word);
                } else {
                    let dst = regs
                        .stack
                        .get_mut(at..at + size)
                        .ok_or(OutOfRange { loc: p.loc })?;
                    dst.copy_from_slice(bytes);
                }
            }
        }
    }
    Ok(())
}

/// Reads the C value `parts` describe into `out` (its whole C representation): the low
/// `size` bytes of each register or slot; bytes no part covers are left as they are.
pub fn load_value(parts: &[Part], regs: &Regs<'_>, out: &mut [u8]) -> Result<(), OutOfRange> {
    for p in parts {
        let (off, size) = (p.offset as usize, p.size as usize);
        let oor = OutOfRange { loc: p.loc };
        let dst = out.get_mut(off..off + size).ok_or(oor)?;
        match p.loc {
            Loc::Gpr(n) => {
                let r = regs.gpr.get(n as usize).ok_or(oor)?;
                dst.copy_from_slice(r.to_le_bytes().get(..size).ok_or(oor)?);
            }
            Loc::Vec(n) => {
                let r = regs.vec.get(n as usize).ok_or(oor)?;
                dst.copy_from_slice(r.get(..size).ok_or(oor)?);
            }
            Loc::Stack(at) => {
                let at = at as usize;
                dst.copy_from_slice(regs.stack.get(at..at + size).ok_or(oor)?);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::test_layout::{field, record};
    use crate::abi::{lower, ArgPass, RetPass};
    use crate::types::model::{Kind, Prim, TypeTable};
    use crate::types::target::Target;
    use cranelift_codegen::ir::types;

    fn part(offset: u32, size: u32, ty: cranelift_codegen::ir::Type, loc: Loc, ext: Ext) -> Part {
        Part {
            offset,
            size,
            ty,
            loc,
            ext,
        }
    }

    #[test]
    fn small_ints_are_extended_in_registers_and_slots() {
        let mut rf = RegFile::default();
        let mut stack = [0xAAu8; 16];
        let parts = [part(0, 1, types::I8, Loc::Gpr(2), Ext::Sext)];
        store_value(&parts, &[0xFF], &mut rf.args(&mut stack)).unwrap();
        assert_eq!(rf.gpr[2], u64::MAX);
        let parts = [part(0, 2, types::I16, Loc::Gpr(3), Ext::Uext)];
        store_value(&parts, &[0xFF, 0xFF], &mut rf.args(&mut stack)).unwrap();
        assert_eq!(rf.gpr[3], 0xFFFF);
        let parts = [part(0, 1, types::I8, Loc::Stack(8), Ext::Sext)];
        store_value(&parts, &[0x80], &mut rf.args(&mut stack)).unwrap();
        assert_eq!(
            &stack[8..],
            &[0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(&stack[..8], &[0xAA; 8], "bytes of other slots untouched");
    }

    #[test]
    fn vector_pieces_fill_low_bytes_and_zero_the_rest() {
        let mut rf = RegFile::default();
        rf.vec[1] = [0x55; 16];
        let parts = [part(4, 4, types::F32, Loc::Vec(1), Ext::None)];
        let v = [0, 0, 0, 0, 1, 2, 3, 4];
        store_value(&parts, &v, &mut rf.args(&mut [])).unwrap();
        assert_eq!(&rf.vec[1][..4], &[1, 2, 3, 4]);
        assert_eq!(&rf.vec[1][4..], &[0; 12]);
        let mut out = [9u8; 8];
        load_value(&parts, &rf.args(&mut []), &mut out).unwrap();
        assert_eq!(out, [9, 9, 9, 9, 1, 2, 3, 4]);
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        let mut rf = RegFile::default();
        let parts = [part(0, 8, types::I64, Loc::Stack(8), Ext::None)];
        let e = store_value(&parts, &[0; 8], &mut rf.args(&mut [0; 8])).unwrap_err();
        assert_eq!(e.loc, Loc::Stack(8));
        let parts = [part(0, 8, types::I64, Loc::Gpr(9), Ext::None)];
        assert!(store_value(&parts, &[0; 8], &mut rf.args(&mut [])).is_err());
        let parts = [part(4, 8, types::I64, Loc::Gpr(0), Ext::None)];
        assert!(store_value(&parts, &[0; 8], &mut rf.args(&mut [])).is_err());
    }

    /// A 12-byte struct of three floats on x86_64 travels in two vector registers; every
    /// byte goes out and comes back through the plan's parts.
    #[test]
    fn round_trip_through_a_real_plan() {
        let mut t = TypeTable::new(Target::X86_64_LINUX);
        let f = t.prim(Prim::Float);
        let fields = vec![field("a", &f), field("b", &f), field("c", &f)];
        let f3 = record(&mut t, "struct f3", false, false, fields);
        let fp = t.func_ptr(vec![f3.clone()], &f3, false);
        let Kind::FuncPtr(sig) = &fp.kind else {
            unreachable!()
        };
        let plan = lower(sig, &Target::X86_64_LINUX).unwrap();
        let value: Vec<u8> = (1..=12).collect();
        let mut rf = RegFile::default();
        let ArgPass::Parts(parts) = &plan.args[0].pass else {
            panic!("struct f3 goes in registers")
        };
        store_value(parts, &value, &mut rf.args(&mut [])).unwrap();
        let mut back = vec![0u8; 12];
        load_value(parts, &rf.args(&mut []), &mut back).unwrap();
        assert_eq!(back, value);
        let RetPass::Parts(ret) = &plan.ret else {
            panic!("struct f3 comes back in registers")
        };
        rf.ret_vec[0][..8].copy_from_slice(&value[..8]);
        rf.ret_vec[1][..4].copy_from_slice(&value[8..]);
        let mut out = vec![0u8; 12];
        load_value(ret, &rf.results(), &mut out).unwrap();
        assert_eq!(out, value);
    }
}

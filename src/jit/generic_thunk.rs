//! The generic callback thunk: one piece of hand-assembled machine code per target and
//! process, entered from C for callbacks of any signature, so that creating or first
//! calling a callback of a new shape compiles nothing.
//!
//! It saves the incoming argument registers (x86_64 rdi..r9, xmm0..7; aarch64 x0..x7,
//! q0..q7, x8) and the address of the incoming stack arguments into a [`RegFile`] on its
//! own stack, calls a [`GenericDispatcher`] with the closure pointer and that register
//! file, then loads the result registers the dispatcher filled (rax/rdx, xmm0/xmm1 and,
//! when asked, x87 `st(0)`; x0/x1, q0..q3) and returns. What the registers mean is the
//! ABI plan's business: [`load_args`] and [`store_result`] move values between the
//! register file and the argument/result buffers the compiled thunks use (the same
//! layout, `callback_thunk::thunk_layout`), so one dispatcher serves both tiers.
//!
//! Entry stubs (`entry_pool`) put the closure pointer where the compiled thunk of the
//! callback's shape expects it: in the first argument register the signature leaves
//! free, or on the stack. So the generic thunk has one short entry per such place, which
//! moves the closure pointer to a scratch register and notes where the stack arguments
//! start, then joins the common body. An entry stub can therefore switch between the
//! generic entry of its closure register and the shape's compiled thunk by rewriting one
//! aligned word, safely while other threads are inside the callback.

use std::sync::Mutex;

use super::entry_pool::ClosureReg;
use crate::abi::regfile::{load_value, offsets, store_value, OutOfRange, RegFile, Regs};
use crate::abi::{ArgPass, CallPlan, Loc, RetPass};
use crate::types::target::Arch;

/// What the generic thunk calls: `(closure, register file)`. It reads the arguments
/// from the register file and leaves the result registers (and `ret_x87`) in it.
pub type GenericDispatcher = unsafe extern "C" fn(*const (), *mut RegFile);

/// Integer argument registers of `arch`.
fn int_regs(arch: Arch) -> u8 {
    match arch {
        Arch::X86_64 => 6,
        Arch::Aarch64 => 8,
    }
}

/// The position of `reg`'s entry among the thunk's entries.
pub fn entry_index(arch: Arch, reg: ClosureReg) -> usize {
    let ni = int_regs(arch) as usize;
    match reg {
        ClosureReg::Int(n) => n as usize,
        ClosureReg::Float(n) => ni + n as usize,
        ClosureReg::Stack => ni + 8,
    }
}

/// Every closure place of `arch`, in entry order.
pub fn closure_regs(arch: Arch) -> Vec<ClosureReg> {
    (0..int_regs(arch))
        .map(ClosureReg::Int)
        .chain((0..8).map(ClosureReg::Float))
        .chain([ClosureReg::Stack])
        .collect()
}

/// The thunk's bytes for one target.
#[derive(Clone, Debug)]
pub struct GenericCode {
    pub bytes: Vec<u8>,
    /// Offset of each entry, in [`entry_index`] order.
    pub entries: Vec<usize>,
    /// aarch64: offset of the 8-byte dispatcher address the code loads (already written
    /// with the address given; a harness that links later may overwrite it).
    pub literal: Option<usize>,
}

/// The register file's size on the thunk's stack (16-byte multiple).
fn frame_size() -> u32 {
    (std::mem::size_of::<RegFile>() as u32).div_ceil(16) * 16
}

/// The generic thunk for `arch`, calling `dispatcher` (an absolute address).
pub fn code(arch: Arch, dispatcher: u64) -> GenericCode {
    match arch {
        Arch::X86_64 => code_x86_64(dispatcher),
        Arch::Aarch64 => code_aarch64(dispatcher),
    }
}

/// `op [rsp + disp32]` with `modrm_reg` in the ModRM reg field.
fn x64_rsp(c: &mut Vec<u8>, prefix: &[u8], modrm_reg: u8, disp: usize) {
    c.extend_from_slice(prefix);
    c.push(0x84 | ((modrm_reg & 7) << 3));
    c.push(0x24);
    c.extend_from_slice(&(disp as u32).to_le_bytes());
}

fn code_x86_64(dispatcher: u64) -> GenericCode {
    use offsets::*;
    let regs = closure_regs(Arch::X86_64);
    // Entries first, each ending in a `jmp rel32` to the body; patched once the body's
    // offset is known.
    let mut c: Vec<u8> = Vec::new();
    let mut entries = Vec::new();
    let mut jumps = Vec::new();
    // Register numbers of rdi rsi rdx rcx r8 r9.
    const ARG: [u8; 6] = [7, 6, 2, 1, 8, 9];
    for reg in &regs {
        entries.push(c.len());
        match *reg {
            ClosureReg::Int(n) => {
                // mov r11, <reg>
                let src = ARG[n as usize];
                c.extend_from_slice(&[0x49 | if src >= 8 { 4 } else { 0 }, 0x89]);
                c.push(0xC0 | ((src & 7) << 3) | 3);
                c.extend_from_slice(&[0x4C, 0x8D, 0x54, 0x24, 0x08]); // lea r10, [rsp+8]
            }
            ClosureReg::Float(n) => {
                // movq r11, xmmN
                c.extend_from_slice(&[0x66, 0x49, 0x0F, 0x7E, 0xC0 | (n << 3) | 3]);
                c.extend_from_slice(&[0x4C, 0x8D, 0x54, 0x24, 0x08]); // lea r10, [rsp+8]
            }
            ClosureReg::Stack => {
                // The stack stub called us: [rsp] returns into it, [rsp+8] is the
                // closure, [rsp+16] the C caller's return address, then the arguments.
                c.extend_from_slice(&[0x4C, 0x8B, 0x5C, 0x24, 0x08]); // mov r11, [rsp+8]
                c.extend_from_slice(&[0x4C, 0x8D, 0x54, 0x24, 0x18]); // lea r10, [rsp+24]
            }
        }
        c.push(0xE9); // jmp rel32
        jumps.push(c.len());
        c.extend_from_slice(&[0; 4]);
    }
    while !c.len().is_multiple_of(16) {
        c.push(0xCC);
    }
    let body = c.len();
    for at in jumps {
        let rel = body as i32 - (at as i32 + 4);
        c[at..at + 4].copy_from_slice(&rel.to_le_bytes());
    }
    // At the body rsp is 8 below a 16-byte boundary (a return address was pushed).
    c.push(0x55); // push rbp
    c.extend_from_slice(&[0x48, 0x89, 0xE5]); // mov rbp, rsp
    c.extend_from_slice(&[0x48, 0x81, 0xEC]); // sub rsp, imm32
    c.extend_from_slice(&frame_size().to_le_bytes());
    for (i, &r) in ARG.iter().enumerate() {
        // mov [rsp + GPR + 8i], <reg>
        let rex = if r >= 8 { 0x4C } else { 0x48 };
        x64_rsp(&mut c, &[rex, 0x89], r, GPR + 8 * i);
    }
    for i in 0..8u8 {
        // movdqu [rsp + VEC + 16i], xmm_i
        x64_rsp(&mut c, &[0xF3, 0x0F, 0x7F], i, VEC + 16 * i as usize);
    }
    x64_rsp(&mut c, &[0x4C, 0x89], 2, STACK); // mov [rsp + STACK], r10
    x64_rsp(&mut c, &[0x48, 0xC7], 0, RET_X87); // mov qword [rsp + RET_X87], 0
    c.extend_from_slice(&[0; 4]);
    c.extend_from_slice(&[0x4C, 0x89, 0xDF]); // mov rdi, r11
    c.extend_from_slice(&[0x48, 0x89, 0xE6]); // mov rsi, rsp
    c.extend_from_slice(&[0x48, 0xB8]); // movabs rax, dispatcher
    c.extend_from_slice(&dispatcher.to_le_bytes());
    c.extend_from_slice(&[0xFF, 0xD0]); // call rax
    x64_rsp(&mut c, &[0x48, 0x8B], 0, RET_GPR); // mov rax, [rsp + RET_GPR]
    x64_rsp(&mut c, &[0x48, 0x8B], 2, RET_GPR + 8); // mov rdx, [rsp + RET_GPR + 8]
    x64_rsp(&mut c, &[0xF3, 0x0F, 0x6F], 0, RET_VEC); // movdqu xmm0, [rsp + RET_VEC]
    x64_rsp(&mut c, &[0xF3, 0x0F, 0x6F], 1, RET_VEC + 16); // movdqu xmm1, ...
    x64_rsp(&mut c, &[0x48, 0x83], 7, RET_X87); // cmp qword [rsp + RET_X87], 0
    c.push(0);
    c.extend_from_slice(&[0x74, 0x07]); // je over the fld
    x64_rsp(&mut c, &[0xDB], 5, X87); // fld tword [rsp + X87]
    c.push(0xC9); // leave
    c.push(0xC3); // ret
    GenericCode {
        bytes: c,
        entries,
        literal: None,
    }
}

fn code_aarch64(dispatcher: u64) -> GenericCode {
    use offsets::*;
    let regs = closure_regs(Arch::Aarch64);
    let mut w: Vec<u32> = Vec::new();
    let mut entries = Vec::new();
    let mut branches = Vec::new();
    const MOV_X16_SP: u32 = 0x9100_03F0; // add x16, sp, #0
    for reg in &regs {
        entries.push(w.len() * 4);
        match *reg {
            ClosureReg::Int(n) => {
                w.push(0xAA00_03E0 | ((n as u32) << 16) | 17); // mov x17, xN
                w.push(MOV_X16_SP);
            }
            ClosureReg::Float(n) => {
                w.push(0x9E66_0000 | ((n as u32) << 5) | 17); // fmov x17, dN
                w.push(MOV_X16_SP);
            }
            ClosureReg::Stack => {
                // The stack stub pushed (closure, its lr) and called us: the C
                // arguments start 16 bytes up.
                w.push(0xF940_03F1); // ldr x17, [sp]
                w.push(0x9100_0000 | (16 << 10) | (31 << 5) | 16); // add x16, sp, #16
            }
        }
        branches.push(w.len());
        w.push(0x1400_0000); // b body
    }
    let body = w.len();
    for at in branches {
        w[at] |= ((body - at) as u32) & 0x03FF_FFFF;
    }
    let fs = frame_size();
    let stp64 = |rt: u32, rt2: u32, rn: u32, off: usize| {
        0xA900_0000 | (((off / 8) as u32 & 0x7F) << 15) | (rt2 << 10) | (rn << 5) | rt
    };
    let ldp64 = |rt: u32, rt2: u32, rn: u32, off: usize| stp64(rt, rt2, rn, off) | (1 << 22);
    let stpq = |rt: u32, rt2: u32, rn: u32, off: usize| {
        0xAD00_0000 | (((off / 16) as u32 & 0x7F) << 15) | (rt2 << 10) | (rn << 5) | rt
    };
    let ldpq = |rt: u32, rt2: u32, rn: u32, off: usize| stpq(rt, rt2, rn, off) | (1 << 22);
    let str64 =
        |rt: u32, rn: u32, off: usize| 0xF900_0000 | (((off / 8) as u32) << 10) | (rn << 5) | rt;
    let add_imm =
        |rd: u32, rn: u32, imm: usize| 0x9100_0000 | ((imm as u32) << 10) | (rn << 5) | rd;
    w.push(0xA9BF_7BFD); // stp x29, x30, [sp, #-16]!
    w.push(0x9100_03FD); // mov x29, sp
    w.push(0xD100_03FF | (fs << 10)); // sub sp, sp, #frame
    for i in 0..4u32 {
        w.push(stp64(2 * i, 2 * i + 1, 31, GPR + 16 * i as usize)); // stp x2i, x2i+1
    }
    w.push(add_imm(9, 31, VEC)); // add x9, sp, #VEC
    for i in 0..4u32 {
        w.push(stpq(2 * i, 2 * i + 1, 9, 32 * i as usize)); // stp q2i, q2i+1, [x9, #32i]
    }
    w.push(str64(8, 31, X8)); // str x8, [sp, #X8]
    w.push(str64(16, 31, STACK)); // str x16, [sp, #STACK]
    w.push(0xAA11_03E0); // mov x0, x17
    w.push(0x9100_03E1); // mov x1, sp
    let ldr_lit = w.len();
    w.push(0x5800_0009); // ldr x9, literal (patched)
    w.push(0xD63F_0120); // blr x9
    w.push(ldp64(0, 1, 31, RET_GPR)); // ldp x0, x1, [sp, #RET_GPR]
    w.push(add_imm(9, 31, RET_VEC)); // add x9, sp, #RET_VEC
    w.push(ldpq(0, 1, 9, 0)); // ldp q0, q1, [x9]
    w.push(ldpq(2, 3, 9, 32)); // ldp q2, q3, [x9, #32]
    w.push(0x9100_03BF); // mov sp, x29
    w.push(0xA8C1_7BFD); // ldp x29, x30, [sp], #16
    w.push(0xD65F_03C0); // ret
    if !w.len().is_multiple_of(2) {
        w.push(0xD503_201F); // nop: the literal is 8-byte aligned
    }
    let lit = w.len();
    w[ldr_lit] |= (((lit - ldr_lit) as u32) & 0x7_FFFF) << 5;
    let mut bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
    bytes.extend_from_slice(&dispatcher.to_le_bytes());
    GenericCode {
        bytes,
        entries,
        literal: Some(lit * 4),
    }
}

/// The host's generic thunk, installed in executable memory.
#[derive(Debug)]
pub struct GenericThunk {
    base: usize,
    entries: Vec<usize>,
    arch: Arch,
    /// Bytes of code it holds.
    pub size: usize,
}

impl GenericThunk {
    /// Where an entry stub whose closure travels in `reg` jumps.
    pub fn entry(&self, reg: ClosureReg) -> *const u8 {
        (self.base + self.entries[entry_index(self.arch, reg)]) as *const u8
    }
}

fn host_arch() -> Arch {
    if cfg!(target_arch = "aarch64") {
        Arch::Aarch64
    } else {
        Arch::X86_64
    }
}

/// The host's generic thunk calling `dispatcher`, built the first time it is asked for
/// (one per dispatcher: the runtime has one, tests may bring their own).
pub fn host(dispatcher: GenericDispatcher) -> Result<&'static GenericThunk, String> {
    static BUILT: Mutex<Vec<(usize, &'static GenericThunk)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let key = dispatcher as usize;
    if let Some((_, t)) = built.iter().find(|(k, _)| *k == key) {
        return Ok(t);
    }
    let arch = host_arch();
    let GenericCode { bytes, entries, .. } = code(arch, key as u64);
    let base = super::execmem::install(&bytes)? as usize;
    let t: &'static GenericThunk = Box::leak(Box::new(GenericThunk {
        base,
        entries,
        arch,
        size: bytes.len(),
    }));
    built.push((key, t));
    Ok(t)
}

/// The incoming registers and stack arguments of `rf` (which the generic thunk filled).
///
/// # Safety
/// `rf.stack` points at `plan.stack_size` readable bytes (the caller's stack arguments).
unsafe fn incoming<'a>(plan: &CallPlan, rf: &'a mut RegFile) -> Regs<'a> {
    let stack: &'a mut [u8] = if plan.stack_size == 0 || rf.stack == 0 {
        &mut []
    } else {
        // SAFETY: the caller's contract; nothing else writes the area during the call.
        unsafe { std::slice::from_raw_parts_mut(rf.stack as *mut u8, plan.stack_size as usize) }
    };
    rf.args(stack)
}

/// Reads an incoming pointer-sized value at `loc`.
fn word_at(regs: &Regs<'_>, loc: Loc) -> Result<u64, OutOfRange> {
    let oor = OutOfRange { loc };
    match loc {
        Loc::Gpr(n) => regs.gpr.get(n as usize).copied().ok_or(oor),
        Loc::Vec(_) => Err(oor),
        Loc::Stack(at) => {
            let at = at as usize;
            let b = regs.stack.get(at..at + 8).ok_or(oor)?;
            Ok(u64::from_le_bytes(b.try_into().map_err(|_| oor)?))
        }
    }
}

/// Copies every incoming argument of `plan` from `rf` into `buf` at `arg_offsets` (the
/// compiled thunks' argument buffer layout). Bytes no part covers are left as they are.
///
/// # Safety
/// `rf` was filled by the generic thunk for a call with this plan (its stack pointer and
/// the by-reference copies it names are readable).
pub unsafe fn load_args(
    plan: &CallPlan,
    arg_offsets: &[u32],
    rf: &mut RegFile,
    buf: &mut [u8],
) -> Result<(), OutOfRange> {
    // SAFETY: the caller's contract.
    let regs = unsafe { incoming(plan, rf) };
    for (a, &off) in plan.args.iter().zip(arg_offsets) {
        let (off, size) = (off as usize, a.size as usize);
        let oor = OutOfRange {
            loc: Loc::Stack(off as u32),
        };
        let dst = buf.get_mut(off..off + size).ok_or(oor)?;
        match &a.pass {
            ArgPass::Parts(parts) => load_value(parts, &regs, dst)?,
            ArgPass::ByRef { ptr, .. } => {
                let src = word_at(&regs, *ptr)? as *const u8;
                // SAFETY: the caller passed the address of a copy of `size` bytes there
                // (the convention; the caller's contract).
                unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), size) };
            }
        }
    }
    Ok(())
}

/// Where the dispatcher must write the callback's result: the hidden result pointer for
/// results returned in memory, else `buf` (then [`store_result`] moves it into the result
/// registers).
pub fn result_ptr(plan: &CallPlan, rf: &RegFile, buf: *mut u8) -> *mut u8 {
    match (&plan.ret, plan.arch) {
        (RetPass::Sret, Arch::X86_64) => rf.gpr[0] as *mut u8,
        (RetPass::Sret, Arch::Aarch64) => rf.x8 as *mut u8,
        _ => buf,
    }
}

/// Puts the result the dispatcher wrote (`buf` unless returned in memory) into the result
/// registers of `rf`.
pub fn store_result(plan: &CallPlan, rf: &mut RegFile, buf: &[u8]) -> Result<(), OutOfRange> {
    match &plan.ret {
        RetPass::Void => Ok(()),
        RetPass::Parts(parts) => store_value(parts, buf, &mut rf.results()),
        RetPass::Sret => {
            // x86_64 returns the hidden pointer in rax (aarch64 returns nothing).
            rf.ret_gpr[0] = rf.gpr[0];
            Ok(())
        }
        RetPass::X87 => {
            let n = buf.len().min(16);
            rf.x87[..n].copy_from_slice(&buf[..n]);
            rf.ret_x87 = 1;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_distinct_and_inside_the_code() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let c = code(arch, 0x1122_3344_5566_7788);
            let regs = closure_regs(arch);
            assert_eq!(c.entries.len(), regs.len());
            for (i, r) in regs.iter().enumerate() {
                assert_eq!(entry_index(arch, *r), i);
                assert!(c.entries[i] < c.bytes.len());
            }
            let mut e = c.entries.clone();
            e.dedup();
            assert_eq!(e.len(), regs.len());
        }
        let a = code(Arch::Aarch64, 0x1122_3344_5566_7788);
        let lit = a.literal.unwrap();
        assert_eq!(lit % 8, 0);
        assert_eq!(
            &a.bytes[lit..lit + 8],
            &0x1122_3344_5566_7788u64.to_le_bytes()
        );
    }
}

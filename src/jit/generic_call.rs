//! The generic call stub: one piece of hand-assembled machine code per target, built once
//! per process, that calls any C function described by a `RegFile` (`abi::regfile`).
//! Nothing is compiled per signature: the ABI plan, read by Rust code (`prepare`,
//! `finish`), says which bytes go to which register or stack slot, and the stub only
//! moves the whole register file in and out.
//!
//! Cranelift cannot express what this needs: an outgoing stack-argument area whose size
//! is only known at run time, `%al` for variadic callees, an x87 `st(0)` result. So the
//! bytes are assembled here (as in `stubs`), with every `RegFile` field addressed
//! through `regfile::offsets`.
//!
//! The stub is `void stub(RegFile *rf)`, C calling convention. It keeps `rf` in a
//! callee-saved register, copies `rf->stack_size` bytes (a multiple of 16) from
//! `rf->stack` to the bottom of its frame, loads the argument registers (x86_64: rdi..r9,
//! xmm0..7, rax for `%al`; aarch64: x0..x7, q0..q7, x8), calls `rf->target` and stores the
//! result registers (rax, rdx, xmm0, xmm1 and, when `rf->x87_result` is set, `st(0)` as
//! 10 bytes; aarch64: x0, x1, q0..q3).

use std::sync::OnceLock;

use super::error::CompileError;
use super::execmem;
use crate::abi::regfile::{self, offsets, RegFile};
use crate::abi::{align_to, ArgPass, CallPlan, Ext, Part, RetPass};
use crate::types::target::Arch;

/// The stub's C signature.
pub type Stub = unsafe extern "C" fn(*mut RegFile);

/// x86_64: `[rbx + disp32]` as a ModRM byte for register field `reg`, then the disp32.
fn rbx_disp(c: &mut Vec<u8>, reg: u8, disp: usize) {
    c.push(0x80 | ((reg & 7) << 3) | 3);
    c.extend_from_slice(&(disp as u32).to_le_bytes());
}

/// x86_64: `mov reg, [rbx + disp]` (`store`: `mov [rbx + disp], reg`), 64-bit.
fn mov_rbx(c: &mut Vec<u8>, reg: u8, disp: usize, store: bool) {
    c.push(if reg >= 8 { 0x4c } else { 0x48 });
    c.push(if store { 0x89 } else { 0x8b });
    rbx_disp(c, reg, disp);
}

/// x86_64: `movups xmmN, [rbx + disp]` (`store`: the other way).
fn movups_rbx(c: &mut Vec<u8>, xmm: u8, disp: usize, store: bool) {
    c.extend_from_slice(&[0x0f, if store { 0x11 } else { 0x10 }]);
    rbx_disp(c, xmm, disp);
}

fn x86_64_bytes() -> Vec<u8> {
    const RDI: u8 = 7;
    const RSI: u8 = 6;
    const RDX: u8 = 2;
    const RCX: u8 = 1;
    const RAX: u8 = 0;
    let mut c = Vec::new();
    // Frame: at entry rsp is 8 mod 16; after push rbp, push rbx, sub 8 it is 16-aligned,
    // and stays so below the stack-argument area (a multiple of 16).
    c.push(0x55); // push rbp
    c.extend_from_slice(&[0x48, 0x89, 0xe5]); // mov rbp, rsp
    c.push(0x53); // push rbx
    c.extend_from_slice(&[0x48, 0x83, 0xec, 0x08]); // sub rsp, 8
    c.extend_from_slice(&[0x48, 0x89, 0xfb]); // mov rbx, rdi
    mov_rbx(&mut c, RCX, offsets::STACK_SIZE, false);
    c.extend_from_slice(&[0x48, 0x29, 0xcc]); // sub rsp, rcx
    mov_rbx(&mut c, RSI, offsets::STACK, false);
    c.extend_from_slice(&[0x48, 0x89, 0xe7]); // mov rdi, rsp
    c.extend_from_slice(&[0xf3, 0xa4]); // rep movsb (the direction flag is clear by ABI)
    for x in 0..8u8 {
        movups_rbx(&mut c, x, offsets::VEC + 16 * x as usize, false);
    }
    for (i, r) in [RDI, RSI, RDX, RCX, 8, 9].into_iter().enumerate() {
        mov_rbx(&mut c, r, offsets::GPR + 8 * i, false);
    }
    mov_rbx(&mut c, RAX, offsets::AL, false);
    c.push(0xff); // call qword [rbx + TARGET]
    rbx_disp(&mut c, 2, offsets::TARGET);
    mov_rbx(&mut c, RAX, offsets::RET_GPR, true);
    mov_rbx(&mut c, RDX, offsets::RET_GPR + 8, true);
    movups_rbx(&mut c, 0, offsets::RET_VEC, true);
    movups_rbx(&mut c, 1, offsets::RET_VEC + 16, true);
    c.push(0x48); // cmp qword [rbx + X87_RESULT], 0
    c.push(0x83);
    rbx_disp(&mut c, 7, offsets::X87_RESULT);
    c.push(0x00);
    c.extend_from_slice(&[0x74, 0x06]); // je over the fstp (6 bytes)
    c.push(0xdb); // fstp tword [rbx + X87]
    rbx_disp(&mut c, 7, offsets::X87);
    c.extend_from_slice(&[0x48, 0x8b, 0x5d, 0xf8]); // mov rbx, [rbp - 8]
    c.push(0xc9); // leave
    c.push(0xc3); // ret
    c
}

/// aarch64 load/store-pair of x registers: `op` base, scaled signed 7-bit offset.
fn pair(op: u32, rt: u32, rt2: u32, rn: u32, off: usize, scale: usize) -> u32 {
    assert!(
        off.is_multiple_of(scale) && off / scale < 64,
        "pair offset {off}"
    );
    op | (((off / scale) as u32 & 0x7f) << 15) | (rt2 << 10) | (rn << 5) | rt
}

/// aarch64 `ldr xt, [xn, #off]` (unsigned scaled offset).
fn ldr_x(rt: u32, rn: u32, off: usize) -> u32 {
    assert!(off.is_multiple_of(8) && off / 8 < 4096, "ldr offset {off}");
    0xf940_0000 | (((off / 8) as u32) << 10) | (rn << 5) | rt
}

/// aarch64 `add xd, xn, #imm`.
fn add_imm(rd: u32, rn: u32, imm: usize) -> u32 {
    assert!(imm < 4096, "add immediate {imm}");
    0x9100_0000 | ((imm as u32) << 10) | (rn << 5) | rd
}

fn aarch64_bytes() -> Vec<u8> {
    const LDP_X: u32 = 0xa940_0000;
    const STP_X: u32 = 0xa900_0000;
    const LDP_Q: u32 = 0xad40_0000;
    const STP_Q: u32 = 0xad00_0000;
    let rf = 19; // x19: callee-saved, holds `rf`
    let mut w: Vec<u32> = vec![
        0xa9be_7bfd, // stp x29, x30, [sp, #-32]!
        0x9100_03fd, // mov x29, sp
        0xf900_0bf3, // str x19, [sp, #16]
        0xaa00_03f3, // mov x19, x0
        ldr_x(9, rf, offsets::STACK_SIZE),
        0xcb29_63ff, // sub sp, sp, x9
        ldr_x(10, rf, offsets::STACK),
        0x9100_03eb, // mov x11, sp
        // copy loop, 8 bytes at a time (the size is a multiple of 16)
        0xb400_00a9,                  // 1: cbz x9, 2f (+5 instructions)
        0xf840_854c,                  // ldr x12, [x10], #8
        0xf800_856c,                  // str x12, [x11], #8
        0xd100_2129,                  // sub x9, x9, #8
        0x17ff_fffc,                  // b 1b
        add_imm(9, rf, offsets::VEC), // 2:
    ];
    for k in 0..4 {
        w.push(pair(LDP_Q, 2 * k, 2 * k + 1, 9, 32 * k as usize, 16));
    }
    for k in 0..4 {
        w.push(pair(
            LDP_X,
            2 * k,
            2 * k + 1,
            rf,
            offsets::GPR + 16 * k as usize,
            8,
        ));
    }
    w.push(ldr_x(8, rf, offsets::X8));
    w.push(ldr_x(16, rf, offsets::TARGET));
    w.push(0xd63f_0200); // blr x16
    w.push(pair(STP_X, 0, 1, rf, offsets::RET_GPR, 8));
    w.push(add_imm(9, rf, offsets::RET_VEC));
    w.push(pair(STP_Q, 0, 1, 9, 0, 16));
    w.push(pair(STP_Q, 2, 3, 9, 32, 16));
    w.extend_from_slice(&[
        0x9100_03bf, // mov sp, x29
        0xf940_0bf3, // ldr x19, [sp, #16]
        0xa8c2_7bfd, // ldp x29, x30, [sp], #32
        0xd65f_03c0, // ret
    ]);
    w.iter().flat_map(|i| i.to_le_bytes()).collect()
}

/// The stub's machine code for `arch` (position independent, relocation free).
pub fn stub_bytes(arch: Arch) -> Vec<u8> {
    match arch {
        Arch::X86_64 => x86_64_bytes(),
        Arch::Aarch64 => aarch64_bytes(),
    }
}

/// The host's stub, placed in executable memory at its first use.
pub fn host_stub() -> Result<Stub, CompileError> {
    static STUB: OnceLock<Result<usize, String>> = OnceLock::new();
    let arch = crate::types::target::Target::host().arch;
    match STUB.get_or_init(|| execmem::install(&stub_bytes(arch)).map(|p| p as usize)) {
        // SAFETY: the bytes are the stub for this machine, with the `Stub` signature.
        Ok(p) => Ok(unsafe { std::mem::transmute::<usize, Stub>(*p) }),
        Err(e) => Err(CompileError::Memory(e.clone())),
    }
}

/// Bytes of the outgoing stack-argument area a call per `plan` needs (what `prepare`
/// expects `stack` to be).
pub fn stack_bytes(plan: &CallPlan) -> usize {
    align_to(plan.stack_size, 16) as usize
}

/// Fills `rf` (zeroed by the caller) and `stack` (`stack_bytes(plan)` zeroed bytes) for a
/// call of `target` per `plan`: argument `i`'s C representation is at `args[i]`
/// (`plan.args[i].size` bytes), and a result in memory goes to `ret`.
///
/// By-reference arguments (aarch64 composites over 16 bytes) are passed as `args[i]`
/// itself: the callee may modify it, so it must be the call's own copy.
///
/// # Safety
/// Every `args[i]` is readable for its argument's size, `ret` writable for
/// `plan.ret_size` bytes when the result is not void.
pub unsafe fn prepare(
    plan: &CallPlan,
    target: usize,
    args: &[*const u8],
    ret: *mut u8,
    rf: &mut RegFile,
    stack: &mut [u8],
) -> Result<(), regfile::OutOfRange> {
    rf.target = target as u64;
    rf.stack = stack.as_ptr() as u64;
    rf.stack_size = stack.len() as u64;
    let mut regs = rf.args(stack);
    for (a, &p) in plan.args.iter().zip(args) {
        match &a.pass {
            ArgPass::Parts(parts) => {
                // SAFETY: `p` is readable for the argument's size (contract).
                let value = unsafe { std::slice::from_raw_parts(p, a.size as usize) };
                regfile::store_value(parts, value, &mut regs)?;
            }
            ArgPass::ByRef { ptr, .. } => {
                let part = Part {
                    offset: 0,
                    size: 8,
                    ty: cranelift_codegen::ir::types::I64,
                    loc: *ptr,
                    ext: Ext::None,
                };
                regfile::store_value(&[part], &(p as u64).to_le_bytes(), &mut regs)?;
            }
        }
    }
    match plan.ret {
        RetPass::Sret => match plan.arch {
            Arch::X86_64 => rf.gpr[0] = ret as u64,
            Arch::Aarch64 => rf.x8 = ret as u64,
        },
        RetPass::X87 => rf.x87_result = 1,
        RetPass::Void | RetPass::Parts(_) => {}
    }
    if let Some(v) = plan.variadic {
        rf.al = v.vector_regs as u64;
    }
    Ok(())
}

/// After the stub returned: the result registers of `rf` into `ret` per `plan`.
///
/// # Safety
/// `ret` is writable for `plan.ret_size` bytes when the result is not void.
pub unsafe fn finish(
    plan: &CallPlan,
    rf: &mut RegFile,
    ret: *mut u8,
) -> Result<(), regfile::OutOfRange> {
    match &plan.ret {
        RetPass::Parts(parts) => {
            // SAFETY: `ret` is writable for the result's size (contract).
            let out = unsafe { std::slice::from_raw_parts_mut(ret, plan.ret_size as usize) };
            regfile::load_value(parts, &rf.results(), out)
        }
        RetPass::X87 => {
            // SAFETY: an x87 result's memory holds at least the 10 bytes stored.
            unsafe { std::ptr::copy_nonoverlapping(rf.x87.as_ptr(), ret, 10) };
            Ok(())
        }
        RetPass::Void | RetPass::Sret => Ok(()),
    }
}

/// Why a generic call could not be made (never a crash).
#[derive(Debug)]
pub enum GenericCallError {
    /// The plan does not fit the register file (a bug, reported).
    OutOfRange(regfile::OutOfRange),
    /// The stub could not be placed in executable memory.
    Stub(CompileError),
}

impl std::fmt::Display for GenericCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GenericCallError::OutOfRange(o) => {
                write!(f, "generic call: {:?} outside the register file", o.loc)
            }
            GenericCallError::Stub(e) => write!(f, "generic call stub: {e}"),
        }
    }
}

impl From<regfile::OutOfRange> for GenericCallError {
    fn from(e: regfile::OutOfRange) -> Self {
        GenericCallError::OutOfRange(e)
    }
}

/// Per-call scratch that needs no allocation for the usual calls: the register file and
/// a small stack-argument area.
pub struct Frame {
    pub rf: RegFile,
    small: [u128; SMALL_STACK / 16],
    big: Vec<u128>,
}

/// Stack-argument bytes a `Frame` holds without allocating.
const SMALL_STACK: usize = 128;

impl Default for Frame {
    fn default() -> Self {
        Frame::new()
    }
}

impl Frame {
    pub fn new() -> Frame {
        Frame {
            rf: RegFile::default(),
            small: [0; SMALL_STACK / 16],
            big: Vec::new(),
        }
    }

    /// Calls `target` per `plan` with the host stub (see `prepare` for `args` and `ret`).
    /// `around` runs the call it is given exactly once (to release a lock or the GIL
    /// around it, or to save errno right after it).
    ///
    /// # Safety
    /// As for `prepare`; `target` is a C function of the signature `plan` was lowered from
    /// for the host, and `plan` was lowered for the host.
    pub unsafe fn call(
        &mut self,
        plan: &CallPlan,
        target: usize,
        args: &[*const u8],
        ret: *mut u8,
        around: impl FnOnce(&mut dyn FnMut()),
    ) -> Result<(), GenericCallError> {
        let stub = host_stub().map_err(GenericCallError::Stub)?;
        let n = stack_bytes(plan);
        let stack: &mut [u8] = if n <= SMALL_STACK {
            // SAFETY: plain bytes reinterpreted; `n` within the array.
            unsafe { std::slice::from_raw_parts_mut(self.small.as_mut_ptr() as *mut u8, n) }
        } else {
            self.big = vec![0; n / 16];
            // SAFETY: as above, `n` bytes of the vector.
            unsafe { std::slice::from_raw_parts_mut(self.big.as_mut_ptr() as *mut u8, n) }
        };
        // SAFETY: per the contract.
        unsafe { prepare(plan, target, args, ret, &mut self.rf, stack)? };
        let rf: *mut RegFile = &mut self.rf;
        // SAFETY: `rf` is filled per the plan for `target`; the stack area it names lives
        // in `self` for the call.
        around(&mut || unsafe { stub(rf) });
        // SAFETY: per the contract.
        unsafe { finish(plan, &mut self.rf, ret)? };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_stub_matches_its_assembly() {
        // A few anchors of the encoding (checked against an assembler once): the frame,
        // the indirect call through [rbx + TARGET] and the tail.
        let c = x86_64_bytes();
        assert_eq!(
            &c[..9],
            &[0x55, 0x48, 0x89, 0xe5, 0x53, 0x48, 0x83, 0xec, 0x08]
        );
        let call = [0xff, 0x93];
        assert!(c.windows(2).any(|w| w == call));
        assert_eq!(&c[c.len() - 6..], &[0x48, 0x8b, 0x5d, 0xf8, 0xc9, 0xc3]);
    }

    #[test]
    fn aarch64_encodings() {
        assert_eq!(ldr_x(9, 19, 224), 0xf940_7269);
        assert_eq!(add_imm(9, 19, 0x40), 0x9101_0269);
        assert_eq!(pair(0xa940_0000, 2, 3, 19, 16, 8), 0xa941_0e62);
        assert_eq!(pair(0xa900_0000, 0, 1, 19, 232, 8), 0xa90e_8660);
        assert_eq!(pair(0xad40_0000, 2, 3, 9, 32, 16), 0xad41_0d22);
        assert_eq!(aarch64_bytes().len() % 4, 0);
    }
}

//! Hand-assembled x86_64 stubs for what Cranelift cannot express in a call (see
//! `abi::StubKind`): setting `%al` for variadic callees, and taking an x87 `st(0)` result.
//! The bytes are position-independent; the code generator places them in executable
//! memory and calls them instead of the callee, with the extra stack arguments that
//! `jit::native_call::param_slots` adds after the real ones.

use crate::abi::StubKind;

fn rsp_disp32(out: &mut Vec<u8>, disp: u32) {
    out.push(0x24); // SIB: base = rsp, no index
    out.extend_from_slice(&disp.to_le_bytes());
}

/// Machine code for `kind`.
pub fn stub_bytes(kind: &StubKind) -> Vec<u8> {
    let mut c = Vec::new();
    match *kind {
        StubKind::Variadic { al, stack_size } => {
            // At entry [rsp] is the return address, the stack arguments follow, then the
            // callee's address: set %al and jump, leaving the frame exactly as the callee
            // expects it.
            let n = crate::abi::align_to(stack_size, 8);
            c.extend_from_slice(&[0xb0, al]); // mov al, imm8
            c.extend_from_slice(&[0xff, 0xa4]); // jmp qword [rsp + disp32]
            rsp_disp32(&mut c, 8 + n);
        }
        StubKind::X87Return { al, stack_size } => {
            // Extra stack arguments: callee address (8+n), result pointer (16+n), scratch
            // (24+n). The caller's rbx is parked in the scratch slot; rbx (callee-saved)
            // holds our return address across the call, whose return address takes the
            // place of ours so the callee sees its stack arguments where it expects them.
            let n = crate::abi::align_to(stack_size, 8);
            c.extend_from_slice(&[0x48, 0x89, 0x9c]); // mov [rsp + 24+n], rbx
            rsp_disp32(&mut c, 24 + n);
            c.push(0x5b); // pop rbx
            if let Some(al) = al {
                c.extend_from_slice(&[0xb0, al]); // mov al, imm8
            }
            c.extend_from_slice(&[0xff, 0x94]); // call qword [rsp + n]
            rsp_disp32(&mut c, n);
            c.extend_from_slice(&[0x4c, 0x8b, 0x9c]); // mov r11, [rsp + 8+n]
            rsp_disp32(&mut c, 8 + n);
            c.extend_from_slice(&[0x41, 0xdb, 0x3b]); // fstp tword [r11]
            c.push(0x53); // push rbx
            c.extend_from_slice(&[0x48, 0x8b, 0x9c]); // mov rbx, [rsp + 24+n]
            rsp_disp32(&mut c, 24 + n);
            c.push(0xc3); // ret
        }
    }
    c
}

/// C entry point of a callback thunk whose plan returns an x87 `long double`
/// (`native_call::needs_x87_entry`): calls `thunk` (absolute address) with 16 extra bytes
/// on the stack (keeping it 16-byte aligned; the thunk's signature accounts for them),
/// then loads the 16 bytes it returned in rax:rdx into `st(0)`.
pub fn x87_callback_entry(thunk: u64) -> Vec<u8> {
    let mut c = Vec::new();
    c.extend_from_slice(&[0x48, 0x83, 0xec, 0x08]); // sub rsp, 8
    c.extend_from_slice(&[0x49, 0xbb]); // movabs r11, thunk
    c.extend_from_slice(&thunk.to_le_bytes());
    c.extend_from_slice(&[0x41, 0xff, 0xd3]); // call r11
    c.extend_from_slice(&[0x48, 0x89, 0x44, 0x24, 0xf0]); // mov [rsp-16], rax
    c.extend_from_slice(&[0x48, 0x89, 0x54, 0x24, 0xf8]); // mov [rsp-8], rdx
    c.extend_from_slice(&[0xdb, 0x6c, 0x24, 0xf0]); // fld tword [rsp-16]
    c.extend_from_slice(&[0x48, 0x83, 0xc4, 0x08]); // add rsp, 8
    c.push(0xc3); // ret
    c
}

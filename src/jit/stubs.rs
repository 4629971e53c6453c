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

//! A pool of tiny per-callback entry stubs ("static trampolines").
//!
//! A C function pointer handed out for a callback must be unique per callback, but
//! compiling machine code per callback is too slow (creation must cost less than
//! ctypes). So code is compiled once per signature *shape* (the thunk, see
//! `callback_thunk`) and each callback only gets a 16-byte stub that loads its own
//! closure pointer into one argument register and jumps to the shape's thunk.
//!
//! Stubs live on a code page that is written once and then made read+execute; each
//! stub reads its data (closure pointer, thunk address) PC-relatively from the same
//! offset on the page that follows, which stays read+write. Because the distance from
//! stub *i* to data slot *i* is the same for every *i*, all stubs of a page are the same
//! bytes and handing out a slot only writes two words of data: no code is written, no
//! instruction cache needs flushing, nothing is compiled.
//!
//! The register that receives the closure pointer is the first argument register the
//! shape's C signature leaves free (the thunk declares the closure as an extra trailing
//! parameter, which the calling convention puts exactly there), so there is one pool per
//! such register. Freed slots are reused; pages are never unmapped, so memory stays flat
//! however many callbacks are created and dropped.

use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Bytes per stub on the code page and per slot on the data page (register stubs).
pub const SLOT_SIZE: usize = 16;
/// Stack stubs are longer.
pub const STACK_SLOT_SIZE: usize = 32;

/// Where a stub puts the closure pointer before jumping to the thunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClosureReg {
    /// The n-th integer argument register (x86_64: rdi rsi rdx rcx r8 r9; aarch64: x0..x7).
    Int(u8),
    /// The n-th floating-point argument register (x86_64: xmm0..7; aarch64: d0..d7).
    Float(u8),
    /// Every argument register carries C arguments: the stub pushes the closure pointer
    /// (plus the caller's return address) in front of the stack arguments and *calls*
    /// the thunk, which sees them as two extra leading stack arguments, then returns to C.
    Stack,
}

impl ClosureReg {
    pub const INT_REGS: u8 = if cfg!(target_arch = "aarch64") { 8 } else { 6 };
    pub const FLOAT_REGS: u8 = 8;

    fn pool_index(self) -> usize {
        match self {
            ClosureReg::Int(n) => n as usize,
            ClosureReg::Float(n) => Self::INT_REGS as usize + n as usize,
            ClosureReg::Stack => Self::INT_REGS as usize + Self::FLOAT_REGS as usize,
        }
    }

    fn is_valid(self) -> bool {
        match self {
            ClosureReg::Int(n) => n < Self::INT_REGS,
            ClosureReg::Float(n) => n < Self::FLOAT_REGS,
            ClosureReg::Stack => true,
        }
    }
}

const POOLS: usize = ClosureReg::INT_REGS as usize + ClosureReg::FLOAT_REGS as usize + 1;

fn slot_size(reg: ClosureReg) -> usize {
    if reg == ClosureReg::Stack {
        STACK_SLOT_SIZE
    } else {
        SLOT_SIZE
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n <= 0 {
        4096
    } else {
        n as usize
    }
}

/// The machine code of one stub. `data_distance` is how far ahead of the stub its data
/// slot lies (one page).
fn stub_code(reg: ClosureReg, data_distance: usize) -> Vec<u8> {
    if cfg!(target_arch = "aarch64") {
        stub_code_aarch64(reg, data_distance)
    } else {
        stub_code_x86_64(reg, data_distance)
    }
}

/// x86_64: `mov reg, [rip+d]` (or `movq xmm, [rip+d]`); `jmp [rip+d+8]`.
pub fn stub_code_x86_64(reg: ClosureReg, data_distance: usize) -> Vec<u8> {
    let d = data_distance as i32;
    if reg == ClosureReg::Stack {
        let mut code = vec![0xCCu8; STACK_SLOT_SIZE];
        code[0..2].copy_from_slice(&[0xFF, 0x35]); // push qword [rip + d]
        code[2..6].copy_from_slice(&(d - 6).to_le_bytes());
        code[6..8].copy_from_slice(&[0xFF, 0x15]); // call qword [rip + d + 8]
        code[8..12].copy_from_slice(&(d + 8 - 12).to_le_bytes());
        code[12..16].copy_from_slice(&[0x48, 0x83, 0xC4, 0x08]); // add rsp, 8
        code[16] = 0xC3; // ret
        return code;
    }
    let mut code = vec![0xCCu8; SLOT_SIZE]; // int3 padding
    let first_len: usize = match reg {
        ClosureReg::Int(n) => {
            // mov reg64, [rip + disp32]
            let (rex, regno) = match n {
                0 => (0x48, 7), // rdi
                1 => (0x48, 6), // rsi
                2 => (0x48, 2), // rdx
                3 => (0x48, 1), // rcx
                4 => (0x4C, 0), // r8
                _ => (0x4C, 1), // r9
            };
            code[0] = rex;
            code[1] = 0x8B;
            code[2] = 0x05 | (regno << 3);
            code[3..7].copy_from_slice(&(d - 7).to_le_bytes());
            7
        }
        ClosureReg::Float(n) => {
            // movq xmmN, [rip + disp32]
            code[0] = 0xF3;
            code[1] = 0x0F;
            code[2] = 0x7E;
            code[3] = 0x05 | (n << 3);
            code[4..8].copy_from_slice(&(d - 8).to_le_bytes());
            8
        }
        ClosureReg::Stack => unreachable!(),
    };
    // jmp [rip + disp32] to the thunk address in the second data word.
    let at = first_len;
    code[at] = 0xFF;
    code[at + 1] = 0x25;
    let disp = d + 8 - (at as i32 + 6);
    code[at + 2..at + 6].copy_from_slice(&disp.to_le_bytes());
    code
}

/// aarch64: `adr x16, d`; `ldr xN|dN, [x16]`; `ldr x16, [x16, 8]`; `br x16`.
pub fn stub_code_aarch64(reg: ClosureReg, data_distance: usize) -> Vec<u8> {
    let imm = data_distance as u32;
    // adr x16, #data_distance
    let adr = ((imm & 3) << 29) | (0b10000 << 24) | (((imm >> 2) & 0x7FFFF) << 5) | 16;
    let load_thunk = 0xF940_0000 | (1 << 10) | (16 << 5) | 16; // ldr x16, [x16, #8]
    let words: Vec<u32> = match reg {
        ClosureReg::Stack => vec![
            adr,
            0xF940_0000 | (16 << 5) | 17, // ldr x17, [x16]
            load_thunk,
            0xA980_0000 | (0x7E << 15) | (30 << 10) | (31 << 5) | 17, // stp x17, x30, [sp, #-16]!
            0xD63F_0000 | (16 << 5),                                  // blr x16
            0xA8C0_0000 | (2 << 15) | (30 << 10) | (31 << 5) | 17,    // ldp x17, x30, [sp], #16
            0xD65F_03C0,                                              // ret
            0xD503_201F,                                              // nop
        ],
        ClosureReg::Int(n) => vec![
            adr,
            0xF940_0000 | (16 << 5) | n as u32,
            load_thunk,
            0xD61F_0000 | (16 << 5),
        ],
        ClosureReg::Float(n) => vec![
            adr,
            0xFD40_0000 | (16 << 5) | n as u32,
            load_thunk,
            0xD61F_0000 | (16 << 5),
        ],
    };
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[cfg(target_arch = "aarch64")]
extern "C" {
    fn __clear_cache(start: *mut libc::c_char, end: *mut libc::c_char);
}

/// One C entry point: a stub and its data slot. Freed (returned to the pool) on drop.
#[derive(Debug)]
pub struct EntrySlot {
    code: *const u8,
    reg: ClosureReg,
}

// SAFETY: a slot is a pair of addresses into pool pages that live forever; the pool's
// free lists are behind a Mutex.
unsafe impl Send for EntrySlot {}
// SAFETY: as for `Send`: the slot is only read (its addresses) or given back under the pool
// lock.
unsafe impl Sync for EntrySlot {}

impl EntrySlot {
    /// The C function pointer.
    pub fn code_ptr(&self) -> *const u8 {
        self.code
    }

    fn data(&self) -> *mut [usize; 2] {
        (self.code as usize + page_size()) as *mut [usize; 2]
    }

    /// Points the slot at another closure/thunk (both words written before the C
    /// function pointer is published to any other thread).
    pub fn set(&self, closure: *const (), thunk: *const u8) {
        // SAFETY: the data slot belongs to this EntrySlot until drop.
        unsafe { ptr::write_volatile(self.data(), [closure as usize, thunk as usize]) }
    }

    /// Points the slot at another thunk for the same closure (a tier switch): one aligned
    /// word, so a C call on another thread going through the stub meanwhile jumps to
    /// either the old or the new thunk, and both take the closure from the same place.
    pub fn set_thunk(&self, thunk: *const u8) {
        // SAFETY: the data slot belongs to this EntrySlot until drop; its second word is
        // 8-byte aligned (slots are 16-byte aligned on the data page).
        let word = unsafe { &*((self.data() as *mut usize).add(1) as *const AtomicUsize) };
        word.store(thunk as usize, Ordering::Release);
    }

    /// The thunk the slot currently jumps to.
    pub fn thunk(&self) -> *const u8 {
        // SAFETY: as for `set_thunk`.
        let word = unsafe { &*((self.data() as *mut usize).add(1) as *const AtomicUsize) };
        word.load(Ordering::Acquire) as *const u8
    }

    pub fn closure_reg(&self) -> ClosureReg {
        self.reg
    }
}

impl Drop for EntrySlot {
    fn drop(&mut self) {
        // A late call through a dead function pointer lands in `dead_callback` (returns
        // zero) instead of jumping into a freed closure.
        self.set(ptr::null(), dead_callback as *const u8);
        let mut pools = POOL.lock().unwrap_or_else(|e| e.into_inner());
        pools.free[self.reg.pool_index()].push(self.code as usize);
    }
}

/// Where the slots of freed callbacks point, in case C keeps calling them.
extern "C" fn dead_callback() -> usize {
    0
}

struct Pools {
    /// Free stub addresses per closure register.
    free: Vec<Vec<usize>>,
    /// Number of page pairs mapped per closure register (for tests and diagnostics).
    pages: Vec<usize>,
}

static POOL: Mutex<Pools> = Mutex::new(Pools {
    free: Vec::new(),
    pages: Vec::new(),
});

/// Maps one page pair for `reg` and returns its stub addresses.
fn map_page_pair(reg: ClosureReg) -> Result<Vec<usize>, String> {
    let page = page_size();
    // SAFETY: anonymous private mapping, checked for failure.
    let base = unsafe {
        libc::mmap(
            ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(format!(
            "mmap of callback stub pages failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    let base = base as *mut u8;
    let stub = stub_code(reg, page);
    let size = slot_size(reg);
    let count = page / size;
    // SAFETY: both pages were just mapped read+write and belong to us.
    unsafe {
        for i in 0..count {
            ptr::copy_nonoverlapping(stub.as_ptr(), base.add(i * size), size);
            let data = base.add(page + i * size) as *mut [usize; 2];
            *data = [0, dead_callback as *const u8 as usize];
        }
        #[cfg(target_arch = "aarch64")]
        __clear_cache(
            base as *mut libc::c_char,
            base.add(page) as *mut libc::c_char,
        );
        if libc::mprotect(
            base as *mut libc::c_void,
            page,
            libc::PROT_READ | libc::PROT_EXEC,
        ) != 0
        {
            let err = std::io::Error::last_os_error();
            libc::munmap(base as *mut libc::c_void, 2 * page);
            return Err(format!("mprotect of callback stub page failed: {err}"));
        }
    }
    // Hand out low addresses first (pop from the end).
    Ok((0..count).rev().map(|i| base as usize + i * size).collect())
}

/// Takes a free entry slot whose stub loads the closure pointer into `reg`, pointing it
/// at `closure` and `thunk`.
pub fn alloc(reg: ClosureReg, closure: *const (), thunk: *const u8) -> Result<EntrySlot, String> {
    if !reg.is_valid() {
        return Err(format!("no entry stubs for {reg:?}"));
    }
    let code = {
        let mut pools = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if pools.free.is_empty() {
            pools.free = (0..POOLS).map(|_| Vec::new()).collect();
            pools.pages = vec![0; POOLS];
        }
        let idx = reg.pool_index();
        if pools.free[idx].is_empty() {
            let fresh = map_page_pair(reg)?;
            pools.free[idx] = fresh;
            pools.pages[idx] += 1;
        }
        pools.free[idx].pop().expect("fresh page has slots")
    };
    let slot = EntrySlot {
        code: code as *const u8,
        reg,
    };
    slot.set(closure, thunk);
    Ok(slot)
}

/// How many page pairs the pool has mapped so far for stubs loading into `reg`.
pub fn mapped_page_pairs(reg: ClosureReg) -> usize {
    let pools = POOL.lock().unwrap_or_else(|e| e.into_inner());
    pools.pages.get(reg.pool_index()).copied().unwrap_or(0)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod aarch64_tests {
    use super::*;
    use std::process::Command;

    /// Runs the aarch64 stubs under qemu: a C harness maps the stub page and its data
    /// page, and calls through stubs whose targets expect the closure in x2 / d1.
    #[test]
    fn aarch64_stubs_run_under_qemu() {
        let dir = std::env::temp_dir().join(format!("jitffi_a64_stub_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let page = 4096usize;
        let hex = |b: Vec<u8>| {
            b.iter()
                .map(|x| format!("0x{x:02x}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let int2 = hex(stub_code_aarch64(ClosureReg::Int(2), page));
        let flt1 = hex(stub_code_aarch64(ClosureReg::Float(1), page));
        let stk = hex(stub_code_aarch64(ClosureReg::Stack, page));
        let src = format!(
            r#"
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
static const unsigned char s_int2[16] = {{{int2}}};
static const unsigned char s_flt1[16] = {{{flt1}}};
static const unsigned char s_stk[32] = {{{stk}}};
struct cl {{ long k; }};
static long t_int2(long a, long b, struct cl *c) {{ return a + b + c->k; }}
static double t_flt1(double a, double c) {{ struct cl *p; memcpy(&p, &c, 8); return a * p->k; }}
/* x0..x7 taken: the closure and the stub's return address precede the stack arguments. */
static long t_stk(long a0, long a1, long a2, long a3, long a4, long a5, long a6, long a7,
                  struct cl *c, long lr, long a8, long a9) {{
    (void)lr; return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 * 100 + a9 * 1000 + c->k;
}}
int main(void) {{
    unsigned char *m = mmap(0, 2 * {page}, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(m, s_int2, 16); memcpy(m + 16, s_flt1, 16); memcpy(m + 32, s_stk, 32);
    struct cl c1 = {{7}}, c2 = {{3}};
    uintptr_t *d = (uintptr_t *)(m + {page});
    d[0] = (uintptr_t)&c1; d[1] = (uintptr_t)t_int2;
    d[2] = (uintptr_t)&c2; d[3] = (uintptr_t)t_flt1;
    d[4] = (uintptr_t)&c1; d[5] = (uintptr_t)t_stk;
    __builtin___clear_cache((char *)m, (char *)m + 64);
    mprotect(m, {page}, PROT_READ | PROT_EXEC);
    long r1 = ((long (*)(long, long))m)(10, 20);
    double r2 = ((double (*)(double))(m + 16))(1.5);
    long r3 = ((long (*)(long, long, long, long, long, long, long, long, long, long))(m + 32))(1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    printf("%ld %g %ld\n", r1, r2, r3);
    return !(r1 == 37 && r2 == 4.5 && r3 == 36 + 900 + 10000 + 7);
}}
"#
        );
        let c = dir.join("h.c");
        std::fs::write(&c, src).unwrap();
        let exe = dir.join("h");
        let st = Command::new("aarch64-linux-gnu-gcc")
            .args(["-O1", "-o"])
            .arg(&exe)
            .arg(&c)
            .status()
            .expect("aarch64-linux-gnu-gcc (CI installs gcc-aarch64-linux-gnu)");
        assert!(st.success());
        let out = Command::new("qemu-aarch64")
            .args(["-L", "/usr/aarch64-linux-gnu"])
            .arg(&exe)
            .output()
            .expect("qemu-aarch64 (CI installs qemu-user)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "37 4.5 10943");
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[repr(C)]
    struct Closure {
        k: i64,
    }

    extern "C" fn target_int0(c: &Closure) -> i64 {
        c.k * 1000
    }
    extern "C" fn target_int2(a: i64, b: i64, c: &Closure) -> i64 {
        a + b + c.k
    }
    extern "C" fn target_int5(a: i64, b: i64, c: i64, d: i64, e: i64, cl: &Closure) -> i64 {
        a + b + c + d + e + cl.k
    }
    extern "C" fn target_float1(a: f64, c: f64) -> f64 {
        // SAFETY: the stub passed the address of a live `Closure` in this register.
        let cl = unsafe { &*(c.to_bits() as *const Closure) };
        a * cl.k as f64
    }
    extern "C" fn target_mixed(
        a: i64,
        b: i64,
        c: i64,
        d: i64,
        e: i64,
        f: i64,
        x: f64,
        cl: f64,
    ) -> f64 {
        // SAFETY: the stub passed the address of a live `Closure` in this register.
        let cl = unsafe { &*(cl.to_bits() as *const Closure) };
        (a + b + c + d + e + f) as f64 + x + cl.k as f64
    }

    #[test]
    fn stubs_pass_their_closure_in_the_chosen_register() {
        let c1 = Box::new(Closure { k: 7 });
        let c2 = Box::new(Closure { k: 9 });
        let s1 = alloc(
            ClosureReg::Int(0),
            &*c1 as *const Closure as *const (),
            target_int0 as *const u8,
        )
        .unwrap();
        let s2 = alloc(
            ClosureReg::Int(0),
            &*c2 as *const Closure as *const (),
            target_int0 as *const u8,
        )
        .unwrap();
        assert_ne!(s1.code_ptr(), s2.code_ptr());
        // SAFETY: a stub in front of a function with exactly this signature.
        let f1: extern "C" fn() -> i64 = unsafe { std::mem::transmute(s1.code_ptr()) };
        // SAFETY: a stub in front of a function with exactly this signature.
        let f2: extern "C" fn() -> i64 = unsafe { std::mem::transmute(s2.code_ptr()) };
        assert_eq!(f1(), 7000);
        assert_eq!(f2(), 9000);

        let s3 = alloc(
            ClosureReg::Int(2),
            &*c1 as *const Closure as *const (),
            target_int2 as *const u8,
        )
        .unwrap();
        // SAFETY: a stub in front of a function with exactly this signature.
        let f3: extern "C" fn(i64, i64) -> i64 = unsafe { std::mem::transmute(s3.code_ptr()) };
        assert_eq!(f3(100, 20), 127);

        let s4 = alloc(
            ClosureReg::Int(5),
            &*c2 as *const Closure as *const (),
            target_int5 as *const u8,
        )
        .unwrap();
        // SAFETY: a stub in front of a function with exactly this signature.
        let f4: extern "C" fn(i64, i64, i64, i64, i64) -> i64 =
            unsafe { std::mem::transmute(s4.code_ptr()) };
        assert_eq!(f4(1, 2, 3, 4, 5), 24);

        let s5 = alloc(
            ClosureReg::Float(1),
            &*c2 as *const Closure as *const (),
            target_float1 as *const u8,
        )
        .unwrap();
        // SAFETY: a stub in front of a function with exactly this signature.
        let f5: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(s5.code_ptr()) };
        assert_eq!(f5(1.5), 13.5);

        let s6 = alloc(
            ClosureReg::Float(1),
            &*c1 as *const Closure as *const (),
            target_mixed as *const u8,
        )
        .unwrap();
        // SAFETY: a stub in front of a function with exactly this signature.
        let f6: extern "C" fn(i64, i64, i64, i64, i64, i64, f64) -> f64 =
            unsafe { std::mem::transmute(s6.code_ptr()) };
        assert_eq!(f6(1, 2, 3, 4, 5, 6, 0.5), 28.5);
    }

    #[test]
    fn freed_slots_are_reused_and_pages_stay_bounded() {
        let c = Box::new(Closure { k: 3 });
        let cp = &*c as *const Closure as *const ();
        // Use a register no other test uses, so the reuse check is deterministic.
        let reg = ClosureReg::Int(3);
        let first = alloc(reg, cp, target_int0 as *const u8).unwrap();
        let addr = first.code_ptr();
        drop(first);
        let again = alloc(reg, cp, target_int0 as *const u8).unwrap();
        assert_eq!(again.code_ptr(), addr);
        drop(again);
        let before = mapped_page_pairs(reg);
        for _ in 0..100_000 {
            let s = alloc(reg, cp, target_int0 as *const u8).unwrap();
            drop(s);
        }
        assert_eq!(mapped_page_pairs(reg), before);
        let many: Vec<_> = (0..1000)
            .map(|_| alloc(reg, cp, target_int0 as *const u8).unwrap())
            .collect();
        let mut addrs: Vec<_> = many.iter().map(|s| s.code_ptr() as usize).collect();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), 1000);
    }

    /// A tier switch rewrites the thunk word while another thread keeps calling through
    /// the stub: every call lands in one of the two targets, with its closure.
    #[test]
    fn switching_the_thunk_under_a_running_caller() {
        extern "C" fn plus(a: i64, c: &Closure) -> i64 {
            a + c.k
        }
        extern "C" fn times(a: i64, c: &Closure) -> i64 {
            a * c.k
        }
        let c = Box::leak(Box::new(Closure { k: 5 }));
        let s = alloc(
            ClosureReg::Int(1),
            &*c as *const Closure as *const (),
            plus as *const u8,
        )
        .unwrap();
        // SAFETY: a stub in front of functions with exactly this signature.
        let f: extern "C" fn(i64) -> i64 = unsafe { std::mem::transmute(s.code_ptr()) };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let caller = std::thread::spawn(move || {
            let (mut p, mut t) = (0, 0);
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                match f(3) {
                    8 => p += 1,
                    15 => t += 1,
                    other => panic!("call through a switching stub returned {other}"),
                }
            }
            (p, t)
        });
        for i in 0..20_000 {
            s.set_thunk(if i % 2 == 0 { times } else { plus } as *const u8);
        }
        s.set_thunk(times as *const u8);
        assert_eq!(s.thunk(), times as *const u8);
        std::thread::sleep(std::time::Duration::from_millis(20));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (p, t) = caller.join().unwrap();
        assert!(p + t > 0 && t > 0);
        assert_eq!(f(4), 20);
    }

    #[test]
    fn dropped_slot_calls_the_dead_callback() {
        let c = Box::new(Closure { k: 3 });
        extern "C" fn target_int4(a: i64, b: i64, c: i64, d: i64, cl: &Closure) -> i64 {
            a + b + c + d + cl.k
        }
        let s = alloc(
            ClosureReg::Int(4),
            &*c as *const Closure as *const (),
            target_int4 as *const u8,
        )
        .unwrap();
        // SAFETY: a stub in front of a function with exactly this signature.
        let f: extern "C" fn(i64, i64, i64, i64) -> i64 =
            unsafe { std::mem::transmute(s.code_ptr()) };
        assert_eq!(f(1, 2, 3, 4), 13);
        drop(s);
        assert_eq!(f(1, 2, 3, 4), 0);
    }
}

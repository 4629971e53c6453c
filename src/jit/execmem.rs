//! Executable memory managed by jitffi itself (not cranelift-jit, which can neither free
//! single functions nor pack small ones: it spends a fresh page per finalization).
//!
//! One shared-memory file is mapped twice: a writable view where code is copied and an
//! executable view where it runs. Pages are never writable and executable at once, and
//! code already running (possibly on a thread that released the GIL) is never
//! re-protected while new code is appended next to it.
//!
//! The arena is bounded: code is compiled per signature *shape*, so its total size is
//! bounded by the number of distinct shapes; the cap only guards against runaway growth.

use std::sync::Mutex;

/// Reserved address space per chunk; pages are only backed once written.
const CHUNK_SIZE: usize = 4 << 20;
/// Upper bound for all generated code of the process.
pub const MAX_TOTAL: usize = 64 << 20;
const CODE_ALIGN: usize = 16;

struct Chunk {
    rw: *mut u8,
    rx: *const u8,
    used: usize,
}

// SAFETY: the pointers refer to process-wide mappings that are never unmapped, and chunks
// are only touched behind the arena's Mutex.
unsafe impl Send for Chunk {}

pub struct ExecArena {
    chunks: Vec<Chunk>,
    total: usize,
}

fn map_chunk() -> Result<Chunk, String> {
    // SAFETY: plain system calls on a fresh descriptor; every failure is checked and cleans
    // up what was made.
    unsafe {
        let name = b"jitffi-code\0";
        let fd = libc::memfd_create(name.as_ptr() as *const libc::c_char, libc::MFD_CLOEXEC);
        if fd < 0 {
            return Err(format!(
                "memfd_create failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        let fail = |what: &str| {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            Err(format!("{what} failed: {e}"))
        };
        if libc::ftruncate(fd, CHUNK_SIZE as libc::off_t) != 0 {
            return fail("ftruncate");
        }
        let rw = libc::mmap(
            std::ptr::null_mut(),
            CHUNK_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        if rw == libc::MAP_FAILED {
            return fail("mmap (rw)");
        }
        let rx = libc::mmap(
            std::ptr::null_mut(),
            CHUNK_SIZE,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_SHARED,
            fd,
            0,
        );
        if rx == libc::MAP_FAILED {
            libc::munmap(rw, CHUNK_SIZE);
            return fail("mmap (rx)");
        }
        libc::close(fd);
        Ok(Chunk {
            rw: rw as *mut u8,
            rx: rx as *const u8,
            used: 0,
        })
    }
}

#[cfg(target_arch = "aarch64")]
fn flush_icache(start: *const u8, len: usize) {
    extern "C" {
        fn __clear_cache(start: *mut libc::c_char, end: *mut libc::c_char);
    }
    // SAFETY: `start..start+len` is code this process just wrote.
    unsafe { __clear_cache(start as *mut _, start.add(len) as *mut _) }
}

#[cfg(not(target_arch = "aarch64"))]
fn flush_icache(_start: *const u8, _len: usize) {}

impl ExecArena {
    pub const fn new() -> ExecArena {
        ExecArena {
            chunks: Vec::new(),
            total: 0,
        }
    }

    /// Copies `code` (position-independent, relocation-free) into executable memory and
    /// returns its executable address. The memory lives until the process exits.
    pub fn install(&mut self, code: &[u8]) -> Result<*const u8, String> {
        let len = code.len().max(1);
        if len > CHUNK_SIZE {
            return Err("generated code larger than a code chunk".into());
        }
        if self.total + len > MAX_TOTAL {
            return Err(format!(
                "jitffi executable memory limit ({MAX_TOTAL} bytes) reached"
            ));
        }
        let need_new = match self.chunks.last() {
            Some(c) => c.used + len > CHUNK_SIZE,
            None => true,
        };
        if need_new {
            match map_chunk() {
                Ok(c) => self.chunks.push(c),
                // No shared-memory file (seccomp, old kernel): private pages per install,
                // written then flipped to read+execute.
                Err(_) => return self.install_private(code),
            }
        }
        let chunk = self.chunks.last_mut().unwrap();
        let off = chunk.used;
        // SAFETY: `off + code.len()` fits the chunk (checked above) and the writable view
        // is ours alone (arena lock).
        unsafe {
            std::ptr::copy_nonoverlapping(code.as_ptr(), chunk.rw.add(off), code.len());
        }
        chunk.used = (off + len + CODE_ALIGN - 1) & !(CODE_ALIGN - 1);
        self.total += len;
        // SAFETY: `off` is within the chunk.
        let addr = unsafe { chunk.rx.add(off) };
        flush_icache(addr, len);
        Ok(addr)
    }

    fn install_private(&mut self, code: &[u8]) -> Result<*const u8, String> {
        // SAFETY: `sysconf` has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let len = code.len().max(1).div_ceil(page) * page;
        // SAFETY: a fresh private mapping of `len` bytes, written then made read+execute;
        // failures are checked.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return Err(format!("mmap failed: {}", std::io::Error::last_os_error()));
            }
            std::ptr::copy_nonoverlapping(code.as_ptr(), p as *mut u8, code.len());
            if libc::mprotect(p, len, libc::PROT_READ | libc::PROT_EXEC) != 0 {
                let e = std::io::Error::last_os_error();
                libc::munmap(p, len);
                return Err(format!("mprotect failed: {e}"));
            }
            self.total += len;
            flush_icache(p as *const u8, code.len());
            Ok(p as *const u8)
        }
    }

    pub fn bytes_used(&self) -> usize {
        self.total
    }
}

impl Default for ExecArena {
    fn default() -> ExecArena {
        ExecArena::new()
    }
}

pub static ARENA: Mutex<ExecArena> = Mutex::new(ExecArena::new());

pub fn install(code: &[u8]) -> Result<*const u8, String> {
    ARENA
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .install(code)
}

pub fn bytes_used() -> usize {
    ARENA.lock().unwrap_or_else(|e| e.into_inner()).bytes_used()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn private_pages_fallback_runs() {
        let mut a = ExecArena::new();
        let p = a.install_private(&[0xb8, 9, 0, 0, 0, 0xc3]).unwrap();
        // SAFETY: the installed bytes are a complete function of this signature.
        let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(p) };
        assert_eq!(f(), 9);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn installed_code_runs() {
        // mov eax, 42; ret
        let code = [0xb8, 42, 0, 0, 0, 0xc3];
        let p = install(&code).unwrap();
        // SAFETY: the installed bytes are a complete function of this signature.
        let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(p) };
        assert_eq!(f(), 42);
        let p2 = install(&[0xb8, 7, 0, 0, 0, 0xc3]).unwrap();
        assert_eq!(p2 as usize % CODE_ALIGN, 0);
        // SAFETY: the installed bytes are a complete function of this signature.
        let f2: extern "C" fn() -> i32 = unsafe { std::mem::transmute(p2) };
        assert_eq!(f2(), 7);
        assert_eq!(f(), 42);
    }
}

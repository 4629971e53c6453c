//! The one ISA configuration every piece of generated code is compiled with.
//!
//! Trampolines and callback thunks share it: addresses are baked in as constants
//! (`is_pic=false`, no colocated libcalls), so the compiled bytes are position
//! independent and relocation free; no unwind information is emitted, since nothing
//! unwinds through generated frames (every Rust entry catches panics) and the code is
//! never registered with an unwinder. The optimization level is the one setting that
//! differs: `JITFFI_JIT_OPT=fast-compile` trades code quality for faster compiles (no
//! optimization, single-pass register allocation) for call trampolines, of which a
//! program may need many; callback thunks are always optimized, since there is one per
//! callback signature and each sits on every C→Python call of its callbacks.

use std::sync::OnceLock;

use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};

/// How much the compiler optimizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptLevel {
    /// `opt_level=speed`: the default.
    Speed,
    /// `opt_level=none` with single-pass register allocation.
    FastCompile,
}

impl OptLevel {
    /// What `JITFFI_JIT_OPT` asks for.
    pub fn from_env() -> OptLevel {
        if std::env::var("JITFFI_JIT_OPT").is_ok_and(|v| v == "fast-compile") {
            OptLevel::FastCompile
        } else {
            OptLevel::Speed
        }
    }
}

/// The Cranelift settings of generated code (for any target: tests emit aarch64 code
/// into object files with these).
pub fn flags(opt: OptLevel, verify: bool) -> settings::Flags {
    let mut b = settings::builder();
    let mut set = |k: &str, v: &str| {
        b.set(k, v)
            .unwrap_or_else(|e| panic!("cranelift setting {k}={v}: {e}"))
    };
    match opt {
        OptLevel::Speed => set("opt_level", "speed"),
        OptLevel::FastCompile => {
            set("opt_level", "none");
            set("regalloc_algorithm", "single_pass");
        }
    }
    set("enable_verifier", if verify { "true" } else { "false" });
    set("is_pic", "false");
    set("use_colocated_libcalls", "false");
    set("unwind_info", "false");
    settings::Flags::new(b)
}

/// The host ISA at `opt`, built once per process.
pub fn host(opt: OptLevel) -> &'static OwnedTargetIsa {
    static SPEED: OnceLock<OwnedTargetIsa> = OnceLock::new();
    static FAST_COMPILE: OnceLock<OwnedTargetIsa> = OnceLock::new();
    let cell = match opt {
        OptLevel::Speed => &SPEED,
        OptLevel::FastCompile => &FAST_COMPILE,
    };
    cell.get_or_init(|| {
        let builder = cranelift_native::builder().expect("host ISA supported by Cranelift");
        builder.finish(flags(opt, false)).expect("valid ISA flags")
    })
}

/// The ISA call trampolines are compiled with (`JITFFI_JIT_OPT`).
pub fn trampolines() -> &'static OwnedTargetIsa {
    static OPT: OnceLock<OptLevel> = OnceLock::new();
    host(*OPT.get_or_init(OptLevel::from_env))
}

/// The ISA callback thunks are compiled with.
pub fn thunks() -> &'static OwnedTargetIsa {
    host(OptLevel::Speed)
}

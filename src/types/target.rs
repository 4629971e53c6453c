//! The C data model of a target: which built-in types have which size, alignment and
//! signedness. Layout and ABI lowering read everything target-specific from here, so
//! aarch64 layouts can be computed (and tested) on an x86_64 host.

use target_lexicon::{Architecture, Triple};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub arch: Arch,
    /// Plain `char` is signed on x86_64 and unsigned on aarch64 Linux.
    pub char_signed: bool,
    /// `wchar_t` is `int` on x86_64 Linux and `unsigned int` on aarch64 Linux.
    pub wchar_signed: bool,
}

impl Target {
    pub const X86_64_LINUX: Target = Target {
        arch: Arch::X86_64,
        char_signed: true,
        wchar_signed: true,
    };
    pub const AARCH64_LINUX: Target = Target {
        arch: Arch::Aarch64,
        char_signed: false,
        wchar_signed: false,
    };

    pub fn from_triple(triple: &Triple) -> Result<Target, String> {
        match triple.architecture {
            Architecture::X86_64 => Ok(Self::X86_64_LINUX),
            Architecture::Aarch64(_) => Ok(Self::AARCH64_LINUX),
            other => Err(format!("unsupported target architecture {other}")),
        }
    }

    pub fn host() -> Target {
        Self::from_triple(&Triple::host()).expect("jitffi supports x86_64 and aarch64 hosts")
    }
}

//! ABI lowering as pure data: where each C argument and result lives for a call.
//!
//! `lower` turns a C function type into a `CallPlan` for one target. The plan says, for each
//! argument, which bytes of its C representation travel in which register or stack slot
//! (as a Cranelift scalar type), or that a copy is passed by reference; and how the result
//! comes back. Code generation (`jit::native_call`) follows the plan literally, for calls
//! and for callbacks alike, so everything convention-specific is decided (and unit-tested)
//! here without running code.
//!
//! Default argument promotions of variadic arguments (float → double, small ints → int)
//! are the caller's concern: the plan passes each argument with the type it is given.
//!
//! Using a plan: `jit::native_call::emit_call` (or `emit_call_from_memory`) calls C per
//! plan; when `plan.stub` is set (x86_64 only: variadic `%al`, x87 results) the call goes
//! through `jit::stubs::stub_bytes(&kind)` placed in executable memory, one per distinct
//! `StubKind`. Callback thunks use `c_signature`, `emit_store_incoming` and
//! `emit_return_from_memory` (x87 results: `c_signature_x87_entry` behind
//! `stubs::x87_callback_entry`).
//!
//! Not covered (not in the type model or not Linux): Apple arm64 and Windows conventions,
//! `__int128`, vector types (HVA), `_Float16`, `long double _Complex`, over-aligned types.

mod aapcs64;
mod error;
pub mod regfile;
mod sysv_x64;
#[doc(hidden)]
pub mod test_layout;

use cranelift_codegen::ir::{types, Type};

use crate::types::model::{FuncSig, Kind, PrimClass, TypeNode};
use crate::types::target::{Arch, Target};

pub use error::LowerError;

/// Where one part of a value lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loc {
    /// n-th integer argument (or result) register: rdi, rsi, rdx, rcx, r8, r9 / x0..x7;
    /// results rax, rdx / x0, x1.
    Gpr(u8),
    /// n-th vector register: xmm0..7 / v0..7.
    Vec(u8),
    /// Byte offset in the outgoing stack argument area (from the stack pointer at the call).
    Stack(u32),
}

/// The pieces of one value; one or two in the common cases, kept inline.
pub type Parts = smallvec::SmallVec<[Part; 2]>;

/// Integer extension the convention expects of a small integer scalar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ext {
    None,
    Sext,
    Uext,
}

/// One register- or slot-sized piece of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Part {
    /// Byte offset of the piece inside the value's C representation.
    pub offset: u32,
    /// Bytes of the value this piece carries. Smaller than `ty.bytes()` for the tail of an
    /// odd-sized aggregate: only `size` bytes are read or written, never past the end.
    pub size: u32,
    /// The Cranelift type the piece travels as.
    pub ty: Type,
    pub loc: Loc,
    pub ext: Ext,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ArgPass {
    /// The value's bytes travel in these parts (nothing at all for an empty struct).
    Parts(Parts),
    /// The caller makes a copy of the value (`size` bytes, aligned to `align`) and passes
    /// its address at `ptr` (aarch64 composites larger than 16 bytes).
    ByRef { ptr: Loc, size: u32, align: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArgPlan {
    /// Size and alignment of the C representation.
    pub size: u32,
    pub align: u32,
    pub pass: ArgPass,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RetPass {
    Void,
    /// Result pieces in result registers (`Loc::Gpr`/`Loc::Vec` index return registers).
    Parts(Parts),
    /// The caller passes the address of result memory as a hidden argument (rdi on x86_64,
    /// taking the first integer register; x8 on aarch64), the callee fills it in.
    Sret,
    /// x86_64 `long double` (or a struct holding just one): returned in x87 `st(0)`.
    /// Needs the stub from `jit::stubs`; the 10 significant bytes are stored.
    X87,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VariadicInfo {
    /// x86_64: value for `%al`, an upper bound of vector registers used.
    pub vector_regs: u8,
}

/// Calls that Cranelift alone cannot make need a small machine-code stub between the
/// generated code and the callee (x86_64 only); see `jit::stubs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StubKind {
    /// Set `%al` then jump to the callee. The callee's address travels as an extra stack
    /// argument after the real ones (at `stack_size`), which the callee ignores.
    Variadic { al: u8, stack_size: u32 },
    /// Call the callee, store `st(0)` to the result pointer, return. Extra stack arguments
    /// after the real ones: callee address, result pointer, one scratch slot.
    X87Return { al: Option<u8>, stack_size: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallPlan {
    pub arch: Arch,
    pub args: Vec<ArgPlan>,
    pub ret: RetPass,
    pub ret_size: u32,
    pub ret_align: u32,
    /// Bytes of stack arguments (not rounded to 16).
    pub stack_size: u32,
    /// Argument registers taken (highest index + 1, including skipped ones).
    pub gprs_used: u8,
    pub vregs_used: u8,
    pub variadic: Option<VariadicInfo>,
    pub stub: Option<StubKind>,
}

impl CallPlan {
    /// Every stack-located part of the arguments, with its argument index.
    pub fn stack_parts(&self) -> impl Iterator<Item = (usize, &Part)> {
        self.args
            .iter()
            .enumerate()
            .flat_map(|(i, a)| match &a.pass {
                ArgPass::Parts(ps) => ps
                    .iter()
                    .filter(|p| matches!(p.loc, Loc::Stack(_)))
                    .map(move |p| (i, p))
                    .collect::<Vec<_>>(),
                ArgPass::ByRef { .. } => Vec::new(),
            })
    }
}

/// Lowers a C function type for `target`. For a variadic function, `sig.args` must be the
/// call site's actual argument types (declared ones followed by the already promoted
/// variadic ones): each call shape gets its own plan. The error names what cannot be
/// passed; `LowerError::is_not_implemented` tells valid C that jitffi cannot call.
pub fn lower(sig: &FuncSig, target: &Target) -> Result<CallPlan, LowerError> {
    match target.arch {
        Arch::X86_64 => sysv_x64::lower(sig),
        Arch::Aarch64 => aapcs64::lower(sig),
    }
}

// ---------------------------------------------------------------------------------------
// Shared helpers: flattening a C type into its scalar leaves.

/// What one scalar leaf of a value is, for classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Leaf {
    /// Integer, pointer, bool, enum, char (size in bytes).
    Int(u32),
    Float,
    Double,
    /// `long double`: x87 80-bit on x86_64, binary128 on aarch64.
    LongDouble,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct LeafAt {
    pub offset: u32,
    pub leaf: Leaf,
    /// The leaf sits at an offset that is not a multiple of its natural alignment.
    pub unaligned: bool,
}

pub(crate) fn size_align(ty: &TypeNode) -> Result<(u32, u32), LowerError> {
    if let Kind::Record(r) = &ty.kind {
        match r.layout.get() {
            None => return Err(LowerError::Opaque { cname: ty.cname() }),
            Some(Err(e)) => return Err(LowerError::Layout(e.clone())),
            Some(Ok(l)) if l.partial => {
                return Err(LowerError::PartialLayout { cname: ty.cname() })
            }
            Some(Ok(_)) => {}
        }
    }
    match (ty.size(), ty.align()) {
        (Some(s), Some(a)) => Ok((s as u32, a as u32)),
        _ => Err(LowerError::UnknownSize { cname: ty.cname() }),
    }
}

/// Appends the scalar leaves of `ty` placed at `base`. Unions contribute all members
/// (overlapping); arrays every element; bitfields their declared type at the storage
/// unit's offset.
pub(crate) fn flatten(ty: &TypeNode, base: u32, out: &mut Vec<LeafAt>) -> Result<(), LowerError> {
    let push = |out: &mut Vec<LeafAt>, off: u32, leaf: Leaf, align: u32| {
        out.push(LeafAt {
            offset: off,
            leaf,
            unaligned: align > 1 && !off.is_multiple_of(align),
        });
    };
    match &ty.kind {
        Kind::Void => return Err(LowerError::VoidMember),
        Kind::Prim(p) => match p.class {
            PrimClass::Float => {
                let leaf = if p.size == 4 {
                    Leaf::Float
                } else {
                    Leaf::Double
                };
                push(out, base, leaf, p.align as u32)
            }
            PrimClass::LongDouble => push(out, base, Leaf::LongDouble, 16),
            PrimClass::Complex => {
                let (leaf, half) = if p.size == 8 {
                    (Leaf::Float, 4)
                } else {
                    (Leaf::Double, 8)
                };
                push(out, base, leaf, half);
                push(out, base + half, leaf, half);
            }
            _ => push(out, base, Leaf::Int(p.size as u32), p.align as u32),
        },
        Kind::Enum(e) => {
            let i = e.underlying_info();
            push(out, base, Leaf::Int(i.size as u32), i.align as u32)
        }
        Kind::Pointer(_) | Kind::FuncPtr(_) => push(out, base, Leaf::Int(8), 8),
        Kind::Array(item, Some(n)) => {
            let (isz, _) = size_align(item)?;
            for k in 0..*n as u32 {
                flatten(item, base + k * isz, out)?;
            }
        }
        Kind::Array(_, None) => {}
        Kind::Record(_) => {
            let layout = ty
                .record_layout()
                .ok_or_else(|| LowerError::OpaqueMember { cname: ty.cname() })?;
            for f in &layout.fields {
                flatten(&f.ty, base + f.offset as u32, out)?;
            }
        }
    }
    Ok(())
}

/// The integer type a `size`-byte piece travels as (assembled from narrower loads when
/// `size` is 3, 5, 6 or 7).
pub fn int_type_for(size: u32) -> Type {
    match size {
        1 => types::I8,
        2 => types::I16,
        3 | 4 => types::I32,
        _ => types::I64,
    }
}

/// Scalar (non-aggregate) info of an argument or result type.
pub(crate) enum Scalar {
    Int {
        size: u32,
        signed: bool,
    },
    Float,
    Double,
    LongDouble,
    /// float/double _Complex: classified like a struct of two floats/doubles.
    Complex,
}

pub(crate) fn scalar_of(ty: &TypeNode) -> Option<Scalar> {
    match &ty.kind {
        Kind::Prim(p) => Some(match p.class {
            PrimClass::Float => {
                if p.size == 4 {
                    Scalar::Float
                } else {
                    Scalar::Double
                }
            }
            PrimClass::LongDouble => Scalar::LongDouble,
            PrimClass::Complex => Scalar::Complex,
            _ => Scalar::Int {
                size: p.size as u32,
                signed: p.signed,
            },
        }),
        Kind::Enum(e) => {
            let i = e.underlying_info();
            Some(Scalar::Int {
                size: i.size as u32,
                signed: i.signed,
            })
        }
        // Array parameters decay to pointers: the argument memory holds the pointer.
        Kind::Pointer(_) | Kind::FuncPtr(_) | Kind::Array(..) => Some(Scalar::Int {
            size: 8,
            signed: false,
        }),
        _ => None,
    }
}

pub(crate) fn int_ext(size: u32, signed: bool) -> Ext {
    if size >= 4 {
        Ext::None
    } else if signed {
        Ext::Sext
    } else {
        Ext::Uext
    }
}

pub fn align_to(x: u32, a: u32) -> u32 {
    x.div_ceil(a) * a
}

/// Size/alignment of an argument's C representation as the plan records it (array
/// parameters are pointers).
pub(crate) fn arg_size_align(ty: &TypeNode) -> Result<(u32, u32), LowerError> {
    match &ty.kind {
        Kind::Array(..) => Ok((8, 8)),
        Kind::Void => Err(LowerError::VoidArgument),
        _ => size_align(ty),
    }
}

#[cfg(test)]
mod tests;

//! What the call trampoline of a signature looks like, as the code generator receives
//! it: per argument the machine scalar, the inline recognizers to emit and the fallback
//! helper; the result's boxing; the ABI plan. Equal shapes share one trampoline.

use cranelift_codegen::ir::{types, Type};

use crate::abi::CallPlan;

/// How one C value travels through registers: its machine type and, for integers
/// narrower than a register, how the ABI extends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scalar {
    Int {
        size: u8,
        signed: bool,
    },
    F32,
    F64,
    /// A value only ever handled in memory by the trampoline (long double, complex): the
    /// Python layer converts it, the ABI plan moves its bytes.
    Bytes(u32),
}

impl Scalar {
    pub fn ir_type(self) -> Type {
        match self {
            Scalar::Int { size: 1, .. } => types::I8,
            Scalar::Int { size: 2, .. } => types::I16,
            Scalar::Int { size: 4, .. } => types::I32,
            Scalar::Int { .. } | Scalar::Bytes(_) => types::I64,
            Scalar::F32 => types::F32,
            Scalar::F64 => types::F64,
        }
    }

    pub fn size(self) -> u32 {
        match self {
            Scalar::Int { size, .. } => size as u32,
            Scalar::F32 => 4,
            Scalar::F64 => 8,
            Scalar::Bytes(n) => n,
        }
    }
}

/// What the code tries inline for one argument before calling the runtime's converter:
/// recognizers of an exact object type whose value needs no call. Which C types get
/// which recognizers is the Python layer's policy (`py::function::shape`); this only
/// says what code to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Inline {
    None,
    /// An object of type `long_type` with at most one digit (only when
    /// `Runtime::inline_small_ints`): its value, range-checked for the `Scalar::Int`.
    SmallInt,
    /// An object of type `float_type`: its double (demoted for `F32`).
    Float,
    /// An object of type `cdata_type` whose ctype is the parameter's own, the cached
    /// pointer ctype or `void_ptr_ctype`: its address; the cached array ctype: the
    /// address from `array_data`. Otherwise, with `int_list`, an exact list of ints
    /// stored by `small_int_list` into a stack buffer of that item type; with `buffer`,
    /// an object of type `bytes_type`: the address of its characters.
    Address {
        int_list: Option<Scalar>,
        buffer: bool,
    },
    /// An object of type `cdata_type` whose ctype is the parameter's own: the
    /// `Scalar::Bytes` its data address (from `array_data`) points to, copied.
    CopyBytes,
}

/// The runtime helper that converts an argument no inline path took.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fallback {
    /// `convert_arg`, without a temporary slot.
    Convert,
    /// `convert_arg` with a slot for a temporary released after the call.
    ConvertWithTemp,
    /// `convert_vararg` (an argument of the variadic part).
    Vararg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArgShape {
    pub scalar: Scalar,
    pub inline: Inline,
    pub fallback: Fallback,
}

impl ArgShape {
    /// An argument of the variadic part travelling as `scalar`.
    pub fn vararg(scalar: Scalar) -> ArgShape {
        ArgShape {
            scalar,
            inline: Inline::None,
            fallback: Fallback::Vararg,
        }
    }

    /// The conversion may leave a temporary to release after the call.
    pub fn may_need_temp(self) -> bool {
        self.fallback == Fallback::ConvertWithTemp
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetShape {
    Void,
    /// Boxed as int (`PyLong_FromLongLong`/`PyLong_FromUnsignedLongLong`).
    Int {
        size: u8,
        signed: bool,
    },
    Bool,
    /// Boxed as float.
    Float(Scalar),
    /// Boxed by the Python layer's reader (char, wide chars, pointers).
    Generic(Scalar),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    pub args: Vec<ArgShape>,
    pub ret: RetShape,
    /// Release the GIL and save/restore errno around the call (cffi's semantics).
    pub release_gil: bool,
    /// Where the arguments and the result travel (from `abi::lower`).
    pub plan: CallPlan,
}

// The plan follows from the C types, which `args`/`ret` summarize; hashing the summary is
// enough (equal shapes have equal summaries).
impl std::hash::Hash for Shape {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.args.hash(h);
        self.ret.hash(h);
        self.release_gil.hash(h);
        self.plan.stub.is_some().hash(h);
    }
}

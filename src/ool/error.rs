//! What reading, realizing or writing out-of-line tables can fail with.

use std::fmt;

/// A malformed table. cffi's own reader checks almost none of this (a bad index
/// crashes it); these tables come from files on disk, so every case is an error here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// `_version` missing (with non-empty `_types`) or outside what the reader knows.
    UnknownVersion {
        version: Option<i64>,
    },
    /// `_types` is not a whole number of 4-byte words.
    TypesLength {
        len: usize,
    },
    /// More slots than a 24-bit argument can index.
    TooManySlots {
        len: usize,
    },
    UnknownOp {
        slot: usize,
        op: u8,
    },
    /// An opcode that is valid in cffi but not at this place (API-mode ops, `BITFIELD`
    /// in `_types`, a second `FUNCTION` inside a parameter list...).
    MisplacedOp {
        slot: usize,
        op: &'static str,
    },
    BadPrimitive {
        slot: usize,
        index: i32,
    },
    /// An index pointing outside its table.
    IndexOutOfRange {
        table: &'static str,
        at: usize,
        index: i64,
        len: usize,
    },
    /// An index pointing at a slot that holds no type (an array length, a
    /// `FUNCTION_END`).
    NotAType {
        table: &'static str,
        at: usize,
        target: usize,
    },
    BadFunctionEnd {
        slot: usize,
        flags: i32,
    },
    UnterminatedFunction {
        slot: usize,
    },
    ArrayTooLong {
        slot: usize,
        length: u32,
    },
    /// Types that refer to themselves without a struct or union in between.
    TypeCycle {
        slot: usize,
    },
    /// A struct or union that contains itself by value.
    ByValueCycle {
        name: String,
    },
    Truncated {
        table: &'static str,
        index: usize,
        len: usize,
    },
    BadName {
        table: &'static str,
        index: usize,
        name: String,
    },
    NotSorted {
        table: &'static str,
        index: usize,
        name: String,
    },
    /// A global whose opcode is not one of a dlopen()ed module's.
    BadGlobalOp {
        name: String,
        op: u8,
    },
    /// A `DLOPEN_FUNC` whose slot holds no `FUNCTION`.
    NotAFunction {
        name: String,
        slot: usize,
    },
    ValueOutOfRange {
        name: String,
        value: i128,
    },
    BadFlags {
        name: String,
        flags: u32,
    },
    /// A struct/enum entry whose `type_index` slot does not hold its own index.
    WrongTypeIndex {
        table: &'static str,
        name: String,
        type_index: u32,
    },
    FieldsOnOpaque {
        name: String,
    },
    BadFieldOp {
        owner: String,
        index: usize,
        op: u8,
    },
    /// A bitfield wider than any C type.
    BadBitWidth {
        owner: String,
        index: usize,
        width: u32,
    },
    DuplicateField {
        owner: String,
        field: String,
    },
    BadEnumPrim {
        name: String,
        prim: i32,
    },
    /// An enum entry without the NUL between its name and enumerators.
    MissingNul {
        name: String,
    },
    DuplicateEnumerator {
        name: String,
    },
    /// An enumerator listed by an enum but absent from `_globals`.
    EnumeratorMissing {
        owner: String,
        name: String,
    },
    /// An `ENUM` global no enum lists.
    OrphanEnumerator {
        name: String,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DecodeError::*;
        match self {
            UnknownVersion { version: Some(v) } => write!(f, "unknown version 0x{v:x}"),
            UnknownVersion { version: None } => write!(f, "unknown version -1"),
            TypesLength { len } => write!(f, "_types has {len} bytes, not a multiple of 4"),
            TooManySlots { len } => {
                write!(f, "_types has {len} slots, more than a table can index")
            }
            UnknownOp { slot, op } => write!(f, "_types[{slot}]: unknown op={op}"),
            MisplacedOp { slot, op } => write!(f, "_types[{slot}]: op {op} is not valid here"),
            BadPrimitive { slot, index } => write!(f, "_types[{slot}]: unknown prim={index}"),
            IndexOutOfRange {
                table,
                at,
                index,
                len,
            } => {
                write!(
                    f,
                    "{table}[{at}]: index {index} out of range (table has {len} items)"
                )
            }
            NotAType { table, at, target } => {
                write!(f, "{table}[{at}]: _types[{target}] is not a type")
            }
            BadFunctionEnd { slot, flags } => {
                write!(f, "_types[{slot}]: abi number {flags} not supported")
            }
            UnterminatedFunction { slot } => {
                write!(f, "_types[{slot}]: FUNCTION without FUNCTION_END")
            }
            ArrayTooLong { slot, length } => {
                write!(f, "_types[{slot}]: array length {length} too large")
            }
            TypeCycle { slot } => write!(
                f,
                "_types[{slot}]: type-building recursion too deep or infinite"
            ),
            ByValueCycle { name } => write!(f, "'{name}' contains itself by value"),
            Truncated { table, index, len } => {
                write!(f, "{table}[{index}]: truncated item ({len} bytes)")
            }
            BadName { table, index, name } => write!(f, "{table}[{index}]: bad name {name:?}"),
            NotSorted { table, index, name } => {
                write!(f, "{table}[{index}]: '{name}' is out of order or repeated (tables must be sorted)")
            }
            BadGlobalOp { name, op } => {
                write!(f, "global '{name}': op={op} is not valid in an ABI module")
            }
            NotAFunction { name, slot } => {
                write!(f, "function '{name}': _types[{slot}] is not a FUNCTION")
            }
            ValueOutOfRange { name, value } => write!(
                f,
                "constant '{name}': value {value} does not fit in 64 bits"
            ),
            BadFlags { name, flags } => write!(f, "struct/union '{name}': bad flags 0x{flags:x}"),
            WrongTypeIndex {
                table,
                name,
                type_index,
            } => {
                write!(
                    f,
                    "{table} '{name}': _types[{type_index}] does not refer back to this entry"
                )
            }
            FieldsOnOpaque { name } => write!(
                f,
                "struct/union '{name}' is opaque or external but lists fields"
            ),
            BadFieldOp { owner, index, op } => write!(f, "'{owner}' field {index}: field op={op}"),
            BadBitWidth {
                owner,
                index,
                width,
            } => {
                write!(
                    f,
                    "'{owner}' field {index}: bitfield width {width} too large"
                )
            }
            DuplicateField { owner, field } => {
                write!(f, "'{owner}' has two fields named '{field}'")
            }
            BadEnumPrim { name, prim } => {
                write!(f, "enum '{name}': prim={prim} is not an integer type")
            }
            MissingNul { name } => write!(f, "enum '{name}': no NUL between name and enumerators"),
            DuplicateEnumerator { name } => write!(f, "enumerator '{name}' listed twice"),
            EnumeratorMissing { owner, name } => {
                write!(f, "enum '{owner}': enumerator '{name}' is not in _globals")
            }
            OrphanEnumerator { name } => write!(f, "enumerator '{name}' belongs to no enum"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A well-formed table that still does not give a C type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RealizeError {
    /// A function type used where a value type is needed (cffi's FFIError "... is a
    /// function type, not a pointer-to-function type").
    FunctionType { slot: usize },
    /// `void` where a value is needed (parameter, array item, field).
    VoidValue { slot: usize },
    /// Types nested deeper than cffi's reader allows (1000 levels).
    TooDeep { slot: usize },
    /// A type whose size does not fit.
    TooLarge { slot: usize },
    /// The layout computation refused the struct (the message is the in-line one).
    Layout { name: String, message: String },
    /// An anonymous field whose type is not a struct or union, or a named `:0`.
    BadField {
        owner: String,
        index: usize,
        why: &'static str,
    },
    /// An `F_EXTERNAL` entry none of the included modules defines.
    NotInIncludes { cname: String },
    /// Included modules nested too deeply (or including each other).
    IncludeDepth { cname: String },
    /// No table entry of that name.
    NoSuchName { name: String },
}

impl fmt::Display for RealizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RealizeError::*;
        match self {
            FunctionType { slot } => {
                write!(
                    f,
                    "_types[{slot}] is a function type, not a pointer-to-function type"
                )
            }
            VoidValue { slot } => write!(f, "_types[{slot}]: void used as a value type"),
            TooDeep { slot } => write!(
                f,
                "_types[{slot}]: type-building recursion too deep or infinite"
            ),
            TooLarge { slot } => write!(f, "_types[{slot}]: type too large"),
            Layout { name, message } => write!(f, "{name}: {message}"),
            BadField { owner, index, why } => write!(f, "'{owner}' field {index}: {why}"),
            NotInIncludes { cname } => write!(
                f,
                "'{cname}' should come from ffi.include() but was not found"
            ),
            IncludeDepth { cname } => write!(f, "'{cname}': ffi.include() nested too deeply"),
            NoSuchName { name } => write!(f, "no table entry named '{name}'"),
        }
    }
}

impl std::error::Error for RealizeError {}

/// Declarations cffi's ABI-mode writer refuses (it raises the same way), or that the
/// type model cannot express exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// `extern "Python"` (cffi: "cannot use 'extern "Python"' in the ABI mode").
    ExternPython { name: String },
    /// `#define N ...`, `static const double D = 1.5;`...: only a compiler knows.
    UnknownConstant { name: String },
    /// `enum e { A, ... }` or `enum e { A = ... }`: values only a compiler knows
    /// (cffi's VerificationMissing).
    PartialEnum { cname: String },
    /// `typedef int... t;`: a size only a compiler knows.
    UnknownNumType { name: String },
    /// An array length of 2**31 or more (cffi's OverflowError).
    ArrayTooLong { length: usize },
    /// A struct whose declared members cannot be recovered from its layout.
    Members { cname: String },
    /// A field whose type is opaque.
    OpaqueField { cname: String, field: String },
    /// More than a table can index.
    TooMany,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use EncodeError::*;
        match self {
            ExternPython { name } => write!(
                f,
                "extern_python {name}: cannot use 'extern \"Python\"' in the ABI mode"
            ),
            UnknownConstant { name } => {
                write!(
                    f,
                    "macro {name}: cannot use the syntax '...' in '#define {name} ...' when using the ABI mode"
                )
            }
            // (cffi's text: the type's name, where it is, and the type's name)
            PartialEnum { cname } => write!(f, "{cname}: {cname}"),
            UnknownNumType { name } => {
                write!(f, "cannot emit to Python: '{name}' has an unknown size")
            }
            ArrayTooLong { length } => write!(f, "cannot emit '{length}': limited to 2**31-1"),
            Members { cname } => write!(
                f,
                "'{cname}': its declared members cannot be recovered from its layout"
            ),
            OpaqueField { cname, field } => {
                write!(
                    f,
                    "field '{cname}.{field}' is of an opaque type (not declared in cdef())"
                )
            }
            TooMany => write!(f, "too many types for one module"),
        }
    }
}

impl std::error::Error for EncodeError {}

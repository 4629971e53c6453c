//! The vocabulary of cffi's out-of-line tables (opcodes, primitive indexes, flags) and
//! the plain-data form of one module's tables.
//!
//! A `_types` word is 32 bits, big-endian: the opcode in the low 8 bits and a signed
//! 24-bit argument above it. The slot after an `ARRAY` holds the raw length instead.

use crate::types::model::Prim;

/// The opcodes cffi defines. All are odd: cffi's reader replaces slots in place by
/// (even) pointers to realized objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Op {
    Primitive = 1,
    Pointer = 3,
    Array = 5,
    OpenArray = 7,
    StructUnion = 9,
    Enum = 11,
    Function = 13,
    FunctionEnd = 15,
    Noop = 17,
    Bitfield = 19,
    Typename = 21,
    CpythonBltnV = 23,
    CpythonBltnN = 25,
    CpythonBltnO = 27,
    Constant = 29,
    ConstantInt = 31,
    GlobalVar = 33,
    DlopenFunc = 35,
    DlopenConst = 37,
    GlobalVarF = 39,
    ExternPython = 41,
}

impl Op {
    pub const ALL: &'static [Op] = &[
        Op::Primitive,
        Op::Pointer,
        Op::Array,
        Op::OpenArray,
        Op::StructUnion,
        Op::Enum,
        Op::Function,
        Op::FunctionEnd,
        Op::Noop,
        Op::Bitfield,
        Op::Typename,
        Op::CpythonBltnV,
        Op::CpythonBltnN,
        Op::CpythonBltnO,
        Op::Constant,
        Op::ConstantInt,
        Op::GlobalVar,
        Op::DlopenFunc,
        Op::DlopenConst,
        Op::GlobalVarF,
        Op::ExternPython,
    ];

    pub fn from_u8(b: u8) -> Option<Op> {
        // (a table: every slot of a module is decoded through this)
        const TABLE: [Option<Op>; 256] = {
            let mut t = [None; 256];
            let mut i = 0;
            while i < Op::ALL.len() {
                t[Op::ALL[i] as usize] = Some(Op::ALL[i]);
                i += 1;
            }
            t
        };
        TABLE[b as usize]
    }

    /// cffi's spelling (`_CFFI_OP_<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Op::Primitive => "PRIMITIVE",
            Op::Pointer => "POINTER",
            Op::Array => "ARRAY",
            Op::OpenArray => "OPEN_ARRAY",
            Op::StructUnion => "STRUCT_UNION",
            Op::Enum => "ENUM",
            Op::Function => "FUNCTION",
            Op::FunctionEnd => "FUNCTION_END",
            Op::Noop => "NOOP",
            Op::Bitfield => "BITFIELD",
            Op::Typename => "TYPENAME",
            Op::CpythonBltnV => "CPYTHON_BLTN_V",
            Op::CpythonBltnN => "CPYTHON_BLTN_N",
            Op::CpythonBltnO => "CPYTHON_BLTN_O",
            Op::Constant => "CONSTANT",
            Op::ConstantInt => "CONSTANT_INT",
            Op::GlobalVar => "GLOBAL_VAR",
            Op::DlopenFunc => "DLOPEN_FUNC",
            Op::DlopenConst => "DLOPEN_CONST",
            Op::GlobalVarF => "GLOBAL_VAR_F",
            Op::ExternPython => "EXTERN_PYTHON",
        }
    }
}

/// One `_types` word: `(arg << 8) | op`.
pub fn word(op: Op, arg: i32) -> u32 {
    ((arg as u32) << 8) | op as u32
}

/// The opcode byte of a word (not necessarily a known opcode).
pub fn word_op(w: u32) -> u8 {
    (w & 0xFF) as u8
}

/// The signed 24-bit argument of a word.
pub fn word_arg(w: u32) -> i32 {
    (w as i32) >> 8
}

/// cffi's primitive indexes, in index order: entry `i` is `PRIM` index `i`; `None` is
/// `void` (index 0).
pub const PRIMS: [Option<Prim>; 52] = [
    None,
    Some(Prim::Bool),
    Some(Prim::Char),
    Some(Prim::SChar),
    Some(Prim::UChar),
    Some(Prim::Short),
    Some(Prim::UShort),
    Some(Prim::Int),
    Some(Prim::UInt),
    Some(Prim::Long),
    Some(Prim::ULong),
    Some(Prim::LongLong),
    Some(Prim::ULongLong),
    Some(Prim::Float),
    Some(Prim::Double),
    Some(Prim::LongDouble),
    Some(Prim::WChar),
    Some(Prim::Int8),
    Some(Prim::UInt8),
    Some(Prim::Int16),
    Some(Prim::UInt16),
    Some(Prim::Int32),
    Some(Prim::UInt32),
    Some(Prim::Int64),
    Some(Prim::UInt64),
    Some(Prim::IntPtr),
    Some(Prim::UIntPtr),
    Some(Prim::PtrDiff),
    Some(Prim::Size),
    Some(Prim::SSize),
    Some(Prim::IntLeast8),
    Some(Prim::UIntLeast8),
    Some(Prim::IntLeast16),
    Some(Prim::UIntLeast16),
    Some(Prim::IntLeast32),
    Some(Prim::UIntLeast32),
    Some(Prim::IntLeast64),
    Some(Prim::UIntLeast64),
    Some(Prim::IntFast8),
    Some(Prim::UIntFast8),
    Some(Prim::IntFast16),
    Some(Prim::UIntFast16),
    Some(Prim::IntFast32),
    Some(Prim::UIntFast32),
    Some(Prim::IntFast64),
    Some(Prim::UIntFast64),
    Some(Prim::IntMax),
    Some(Prim::UIntMax),
    Some(Prim::FloatComplex),
    Some(Prim::DoubleComplex),
    Some(Prim::Char16),
    Some(Prim::Char32),
];

pub const PRIM_VOID: i32 = 0;
pub const PRIM_INT8: i32 = 17;
pub const PRIM_UINT8: i32 = 18;
pub const PRIM_INT16: i32 = 19;
pub const PRIM_UINT16: i32 = 20;
pub const PRIM_INT32: i32 = 21;
pub const PRIM_UINT32: i32 = 22;
pub const PRIM_INT64: i32 = 23;
pub const PRIM_UINT64: i32 = 24;

/// The `PRIM` index of a built-in type.
pub fn prim_index(p: Prim) -> i32 {
    PRIMS
        .iter()
        .position(|q| *q == Some(p))
        .map_or(-1, |i| i as i32)
}

/// The fixed-width `PRIM` index cffi writes for an enum's base type of this size and
/// signedness.
pub fn enum_prim_index(size: usize, signed: bool) -> Option<i32> {
    Some(match (size, signed) {
        (1, true) => PRIM_INT8,
        (1, false) => PRIM_UINT8,
        (2, true) => PRIM_INT16,
        (2, false) => PRIM_UINT16,
        (4, true) => PRIM_INT32,
        (4, false) => PRIM_UINT32,
        (8, true) => PRIM_INT64,
        (8, false) => PRIM_UINT64,
        _ => return None,
    })
}

/// `_struct_unions` flags.
pub const F_UNION: u32 = 0x01;
pub const F_CHECK_FIELDS: u32 = 0x02;
pub const F_PACKED: u32 = 0x04;
pub const F_EXTERNAL: u32 = 0x08;
pub const F_OPAQUE: u32 = 0x10;
pub const F_ALL: u32 = F_UNION | F_CHECK_FIELDS | F_PACKED | F_EXTERNAL | F_OPAQUE;

/// `FUNCTION_END` argument bits.
pub const END_VARIADIC: i32 = 0x01;
pub const END_STDCALL: i32 = 0x02;

/// The only `_version` cffi's ABI-mode writer produces, and the range its reader takes.
pub const VERSION_BASE: u32 = 0x2601;
pub const VERSION_MIN: u32 = 0x2601;
pub const VERSION_MAX: u32 = 0x28FF;

/// What a `_globals` name stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobalKind {
    /// `DLOPEN_FUNC`: a function; `slot` holds its `FUNCTION`.
    Function { slot: u32 },
    /// `GLOBAL_VAR`: a variable of the type at `slot`.
    Variable { slot: u32 },
    /// `DLOPEN_CONST`: a constant read from the library once.
    Constant { slot: u32 },
    /// `CONSTANT_INT`: `#define N 42`, `static const int N = 42;`.
    IntConstant { value: i128 },
    /// `ENUM -1`: an enumerator.
    Enumerator { value: i128 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Global {
    pub name: String,
    pub kind: GlobalKind,
}

impl Global {
    /// The opcode word cffi writes before the name.
    pub fn op_word(&self) -> u32 {
        match self.kind {
            GlobalKind::Function { slot } => word(Op::DlopenFunc, slot as i32),
            GlobalKind::Variable { slot } => word(Op::GlobalVar, slot as i32),
            GlobalKind::Constant { slot } => word(Op::DlopenConst, slot as i32),
            GlobalKind::IntConstant { .. } => word(Op::ConstantInt, -1),
            GlobalKind::Enumerator { .. } => word(Op::Enum, -1),
        }
    }

    /// The int that follows the name in `_globals` (0 where unused).
    pub fn value(&self) -> i128 {
        match self.kind {
            GlobalKind::IntConstant { value } | GlobalKind::Enumerator { value } => value,
            _ => 0,
        }
    }
}

/// One field of a `_struct_unions` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldEntry {
    /// Empty for an anonymous struct/union member or an unnamed bitfield.
    pub name: String,
    /// The type's slot.
    pub slot: u32,
    /// Width of a bitfield (`BITFIELD` op), `None` for a plain field (`NOOP`).
    pub bits: Option<u32>,
}

/// One `_struct_unions` entry. ABI mode writes no sizes or offsets: layouts are
/// computed by the reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructEntry {
    /// `point` (struct point), `$foo_t` (typedef'd anonymous), `$1`, `_IO_FILE`.
    pub name: String,
    /// The slot holding `STRUCT_UNION` with this entry's index.
    pub type_index: u32,
    pub flags: u32,
    pub fields: Vec<FieldEntry>,
}

impl StructEntry {
    pub fn is_union(&self) -> bool {
        self.flags & F_UNION != 0
    }
    pub fn is_opaque(&self) -> bool {
        self.flags & F_OPAQUE != 0
    }
    pub fn is_external(&self) -> bool {
        self.flags & F_EXTERNAL != 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumEntry {
    /// `color` (enum color), `$foo` (typedef'd anonymous), `$1`.
    pub name: String,
    pub type_index: u32,
    /// The base type's `PRIM` index (fixed width).
    pub prim: i32,
    /// Enumerator names in declaration order; their values are in `_globals`.
    pub enumerators: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypenameEntry {
    pub name: String,
    pub type_index: u32,
}

/// All tables of one module, as plain data. Tables are sorted by name (the reader
/// binary-searches them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tables {
    pub types: Vec<u32>,
    pub globals: Vec<Global>,
    pub struct_unions: Vec<StructEntry>,
    pub enums: Vec<EnumEntry>,
    pub typenames: Vec<TypenameEntry>,
    /// How many included modules `_includes` lists (they are objects on the Python side).
    pub num_includes: usize,
}

/// The tables in the form the module text carries them: what `_cffi_backend.FFI(...)`
/// receives, converted to Rust data by the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawTables {
    pub types: Vec<u8>,
    /// `_globals` items in pairs: the `b'<op><name>'` bytes and the int after them.
    pub globals: Vec<(Vec<u8>, i128)>,
    /// One inner list per entry: the header bytes, then one bytes item per field.
    pub struct_unions: Vec<Vec<Vec<u8>>>,
    pub enums: Vec<Vec<u8>>,
    pub typenames: Vec<Vec<u8>>,
    pub num_includes: usize,
}

fn push_word(out: &mut Vec<u8>, w: u32) {
    out.extend_from_slice(&w.to_be_bytes());
}

impl Tables {
    /// The bytes of each table, as cffi's writer lays them out.
    pub fn to_raw(&self) -> RawTables {
        let mut types = Vec::with_capacity(self.types.len() * 4);
        for w in &self.types {
            push_word(&mut types, *w);
        }
        let globals = self
            .globals
            .iter()
            .map(|g| {
                let mut b = Vec::with_capacity(4 + g.name.len());
                push_word(&mut b, g.op_word());
                b.extend_from_slice(g.name.as_bytes());
                (b, g.value())
            })
            .collect();
        let struct_unions = self
            .struct_unions
            .iter()
            .map(|s| {
                let mut head = Vec::with_capacity(8 + s.name.len());
                push_word(&mut head, s.type_index);
                push_word(&mut head, s.flags);
                head.extend_from_slice(s.name.as_bytes());
                let mut items = vec![head];
                for f in &s.fields {
                    let mut b = Vec::with_capacity(8 + f.name.len());
                    match f.bits {
                        None => push_word(&mut b, word(Op::Noop, f.slot as i32)),
                        Some(w) => {
                            push_word(&mut b, word(Op::Bitfield, f.slot as i32));
                            push_word(&mut b, w);
                        }
                    }
                    b.extend_from_slice(f.name.as_bytes());
                    items.push(b);
                }
                items
            })
            .collect();
        let enums = self
            .enums
            .iter()
            .map(|e| {
                let mut b = Vec::new();
                push_word(&mut b, e.type_index);
                push_word(&mut b, e.prim as u32);
                b.extend_from_slice(e.name.as_bytes());
                b.push(0);
                b.extend_from_slice(e.enumerators.join(",").as_bytes());
                b
            })
            .collect();
        let typenames = self
            .typenames
            .iter()
            .map(|t| {
                let mut b = Vec::with_capacity(4 + t.name.len());
                push_word(&mut b, t.type_index);
                b.extend_from_slice(t.name.as_bytes());
                b
            })
            .collect();
        RawTables {
            types,
            globals,
            struct_unions,
            enums,
            typenames,
            num_includes: self.num_includes,
        }
    }
}

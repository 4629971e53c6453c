//! The C type model: one immutable, interned node per distinct C type.
//!
//! Nodes refer to each other by `Arc`, so the hot paths (cdata field access, call
//! argument conversion) follow pointers instead of looking anything up in a table.
//! The only mutable state is a record's layout, set once when the struct/union is
//! completed (it may be declared opaque first and completed by a later `cdef`).
//!
//! Pure Rust: no pyo3 here. The Python `CType` objects wrap these nodes.

use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use super::target::Target;

pub type TypeRef = Arc<TypeNode>;

/// Built-in arithmetic types. Each is a distinct type (cffi keeps `int32_t` apart from
/// `int` even where they have the same representation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prim {
    Char,
    SChar,
    UChar,
    Short,
    UShort,
    Int,
    UInt,
    Long,
    ULong,
    LongLong,
    ULongLong,
    Bool,
    Float,
    Double,
    LongDouble,
    FloatComplex,
    DoubleComplex,
    WChar,
    Char16,
    Char32,
    Int8,
    UInt8,
    Int16,
    UInt16,
    Int32,
    UInt32,
    Int64,
    UInt64,
    IntLeast8,
    UIntLeast8,
    IntLeast16,
    UIntLeast16,
    IntLeast32,
    UIntLeast32,
    IntLeast64,
    UIntLeast64,
    IntFast8,
    UIntFast8,
    IntFast16,
    UIntFast16,
    IntFast32,
    UIntFast32,
    IntFast64,
    UIntFast64,
    IntPtr,
    UIntPtr,
    IntMax,
    UIntMax,
    PtrDiff,
    Size,
    SSize,
}

/// How values of a primitive convert to and from Python.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrimClass {
    SignedInt,
    UnsignedInt,
    /// `char`: bytes of length 1 (its signedness only matters when widened).
    Char,
    Bool,
    Float,
    LongDouble,
    Complex,
    /// wchar_t / char16_t / char32_t: str of length 1.
    WideChar,
}

impl Prim {
    pub const ALL: &'static [Prim] = &[
        Prim::Char,
        Prim::SChar,
        Prim::UChar,
        Prim::Short,
        Prim::UShort,
        Prim::Int,
        Prim::UInt,
        Prim::Long,
        Prim::ULong,
        Prim::LongLong,
        Prim::ULongLong,
        Prim::Bool,
        Prim::Float,
        Prim::Double,
        Prim::LongDouble,
        Prim::FloatComplex,
        Prim::DoubleComplex,
        Prim::WChar,
        Prim::Char16,
        Prim::Char32,
        Prim::Int8,
        Prim::UInt8,
        Prim::Int16,
        Prim::UInt16,
        Prim::Int32,
        Prim::UInt32,
        Prim::Int64,
        Prim::UInt64,
        Prim::IntLeast8,
        Prim::UIntLeast8,
        Prim::IntLeast16,
        Prim::UIntLeast16,
        Prim::IntLeast32,
        Prim::UIntLeast32,
        Prim::IntLeast64,
        Prim::UIntLeast64,
        Prim::IntFast8,
        Prim::UIntFast8,
        Prim::IntFast16,
        Prim::UIntFast16,
        Prim::IntFast32,
        Prim::UIntFast32,
        Prim::IntFast64,
        Prim::UIntFast64,
        Prim::IntPtr,
        Prim::UIntPtr,
        Prim::IntMax,
        Prim::UIntMax,
        Prim::PtrDiff,
        Prim::Size,
        Prim::SSize,
    ];

    /// The canonical spelling, as cffi prints it in `cname`.
    pub fn name(self) -> &'static str {
        use Prim::*;
        match self {
            Char => "char",
            SChar => "signed char",
            UChar => "unsigned char",
            Short => "short",
            UShort => "unsigned short",
            Int => "int",
            UInt => "unsigned int",
            Long => "long",
            ULong => "unsigned long",
            LongLong => "long long",
            ULongLong => "unsigned long long",
            Bool => "_Bool",
            Float => "float",
            Double => "double",
            LongDouble => "long double",
            FloatComplex => "float _Complex",
            DoubleComplex => "double _Complex",
            WChar => "wchar_t",
            Char16 => "char16_t",
            Char32 => "char32_t",
            Int8 => "int8_t",
            UInt8 => "uint8_t",
            Int16 => "int16_t",
            UInt16 => "uint16_t",
            Int32 => "int32_t",
            UInt32 => "uint32_t",
            Int64 => "int64_t",
            UInt64 => "uint64_t",
            IntLeast8 => "int_least8_t",
            UIntLeast8 => "uint_least8_t",
            IntLeast16 => "int_least16_t",
            UIntLeast16 => "uint_least16_t",
            IntLeast32 => "int_least32_t",
            UIntLeast32 => "uint_least32_t",
            IntLeast64 => "int_least64_t",
            UIntLeast64 => "uint_least64_t",
            IntFast8 => "int_fast8_t",
            UIntFast8 => "uint_fast8_t",
            IntFast16 => "int_fast16_t",
            UIntFast16 => "uint_fast16_t",
            IntFast32 => "int_fast32_t",
            UIntFast32 => "uint_fast32_t",
            IntFast64 => "int_fast64_t",
            UIntFast64 => "uint_fast64_t",
            IntPtr => "intptr_t",
            UIntPtr => "uintptr_t",
            IntMax => "intmax_t",
            UIntMax => "uintmax_t",
            PtrDiff => "ptrdiff_t",
            Size => "size_t",
            SSize => "ssize_t",
        }
    }

    /// Size, alignment and conversion class on `target` (both supported targets are LP64
    /// Linux; they differ in the signedness of `char` and `wchar_t`, and in what the 16
    /// bytes of `long double` hold: x87 80-bit on x86_64, IEEE binary128 on aarch64).
    pub fn info(self, target: &Target) -> PrimInfo {
        use Prim::*;
        use PrimClass as C;
        let (size, class) = match self {
            Char => (1, C::Char),
            SChar | Int8 | IntLeast8 | IntFast8 => (1, C::SignedInt),
            UChar | UInt8 | UIntLeast8 | UIntFast8 => (1, C::UnsignedInt),
            Short | Int16 | IntLeast16 => (2, C::SignedInt),
            UShort | UInt16 | UIntLeast16 => (2, C::UnsignedInt),
            Int | Int32 | IntLeast32 => (4, C::SignedInt),
            UInt | UInt32 | UIntLeast32 => (4, C::UnsignedInt),
            // glibc: int_fast16_t/int_fast32_t are `long` on 64-bit targets.
            Long | LongLong | Int64 | IntLeast64 | IntFast16 | IntFast32 | IntFast64 | IntPtr
            | IntMax | PtrDiff | SSize => (8, C::SignedInt),
            ULong | ULongLong | UInt64 | UIntLeast64 | UIntFast16 | UIntFast32 | UIntFast64
            | UIntPtr | UIntMax | Size => (8, C::UnsignedInt),
            Bool => (1, C::Bool),
            Float => (4, C::Float),
            Double => (8, C::Float),
            LongDouble => (16, C::LongDouble),
            FloatComplex => (8, C::Complex),
            DoubleComplex => (16, C::Complex),
            WChar | Char32 => (4, C::WideChar),
            Char16 => (2, C::WideChar),
        };
        let align = match self {
            FloatComplex => 4,
            DoubleComplex => 8,
            _ => size,
        };
        let signed = match self {
            Char => target.char_signed,
            WChar => target.wchar_signed,
            _ => class == C::SignedInt,
        };
        PrimInfo {
            prim: self,
            size,
            align,
            class,
            signed,
        }
    }

    /// Looks a built-in type up by its canonical name (after the parser normalized
    /// `long int`, `unsigned`, `signed short int`, ... to one spelling).
    pub fn from_name(name: &str) -> Option<Prim> {
        Prim::ALL.iter().copied().find(|p| p.name() == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PrimInfo {
    pub prim: Prim,
    pub size: usize,
    pub align: usize,
    pub class: PrimClass,
    /// Whether the integer value is signed (chars and wide chars included).
    pub signed: bool,
}

/// A struct or union. Its layout is set once, when its body is known.
#[derive(Debug)]
pub struct Record {
    /// Unique in the process (so `ffi.include` can share records between FFIs); also
    /// the interning key.
    pub id: u32,
    pub is_union: bool,
    /// How cffi prints it: `struct s`, `union u`, or the typedef name of an anonymous one.
    pub cname: String,
    /// The tag as written (`s` of `struct s`), `None` when anonymous.
    pub tag: Option<String>,
    pub layout: OnceLock<Result<RecordLayout, String>>,
}

#[derive(Debug, Clone)]
pub struct RecordLayout {
    pub size: usize,
    pub align: usize,
    /// Named fields in declaration order, anonymous members' fields flattened in.
    pub fields: Vec<Field>,
    /// Has a flexible array member (`int a[];`) as last field.
    pub has_flexible_array: bool,
    /// Declared with `...;`: the layout is only known to a compiler (API mode).
    pub partial: bool,
    /// Was laid out with `packed`/`pack=N`.
    pub packed: bool,
}

impl RecordLayout {
    /// Ends in a flexible array member, its own or its last field's (a struct ending in
    /// one): instances are sized from their initializer.
    pub fn ends_in_flexible_array(&self) -> bool {
        self.has_flexible_array
            || self.fields.last().is_some_and(|f| {
                matches!(f.ty.kind, Kind::Record(_))
                    && f.ty
                        .record_layout()
                        .is_some_and(|l| l.ends_in_flexible_array())
            })
    }
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub ty: TypeRef,
    pub offset: usize,
    /// Bit offset inside the storage unit at `offset` (little-endian), -1 if not a bitfield.
    pub bitshift: i32,
    /// Width in bits, -1 if not a bitfield.
    pub bitsize: i32,
    /// `IGNORE_IN_CTOR` or 0 (cffi's `CField.flags`).
    pub flags: u32,
}

/// A field a positional (list or tuple) initializer skips: a union member after the
/// first, or a field flattened in from one.
pub const IGNORE_IN_CTOR: u32 = 1;

#[derive(Debug)]
pub struct EnumDef {
    pub id: u32,
    /// `enum e`, or the typedef name of an anonymous enum.
    pub cname: String,
    pub tag: Option<String>,
    /// Enumerators in declaration order.
    pub items: Vec<(String, i128)>,
    /// The integer type gcc would pick (`unsigned int`, `int`, `unsigned long`, `long`).
    pub underlying: Prim,
    /// Declared with `...`: values only known to a compiler.
    pub partial: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallConv {
    /// The platform's C convention (FFI_DEFAULT_ABI).
    Default,
}

#[derive(Debug)]
pub struct FuncSig {
    pub args: Vec<TypeRef>,
    pub result: TypeRef,
    pub variadic: bool,
    pub abi: CallConv,
}

#[derive(Debug)]
pub enum Kind {
    Void,
    Prim(PrimInfo),
    Pointer(TypeRef),
    /// `None` length: `T[]`, the length comes from each cdata.
    Array(TypeRef, Option<usize>),
    Record(Arc<Record>),
    Enum(Arc<EnumDef>),
    /// A pointer to a function; cffi has no separate "function" values.
    FuncPtr(FuncSig),
}

#[derive(Debug)]
pub struct TypeNode {
    /// Index in the owning `TypeTable`; stable for the FFI's lifetime.
    pub id: u32,
    pub kind: Kind,
    /// Normalized C spelling with the declarator position marked by `&`,
    /// e.g. `int(*&)[5]`, `char *&`; `cname()` removes the mark.
    pub cname_template: String,
    /// What a later layer works out once per type and keeps with it (the call layer:
    /// a function type's shapes and ABI plan), so that everything using one interned type
    /// shares it without a global table. Opaque here: the type model knows nothing of
    /// what is stored.
    pub memo: OnceLock<Box<dyn std::any::Any + Send + Sync>>,
    /// For a type that depends on no declaration (primitives, `void`, and pointers,
    /// arrays and function types made of them), its node in the table every FFI shares
    /// for such types; `None` for the others. Worked out once, by the Python layer (which
    /// gives all FFIs one CType per such type, as cffi does).
    pub canonical: OnceLock<Option<TypeRef>>,
}

impl TypeNode {
    pub fn cname(&self) -> String {
        self.cname_template.replacen('&', "", 1)
    }

    /// Inserts `decl` at the declarator position (`int(*)[5]` + `x` → `int(*x)[5]`).
    pub fn cname_with(&self, decl: &str) -> String {
        self.cname_template.replacen('&', decl, 1)
    }

    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Void => "void",
            Kind::Prim(_) => "primitive",
            Kind::Pointer(_) => "pointer",
            Kind::Array(..) => "array",
            Kind::Record(r) => {
                if r.is_union {
                    "union"
                } else {
                    "struct"
                }
            }
            Kind::Enum(_) => "enum",
            Kind::FuncPtr(_) => "function",
        }
    }

    /// Size in bytes; `None` for void, opaque records and `T[]`.
    pub fn size(&self) -> Option<usize> {
        match &self.kind {
            Kind::Void => None,
            Kind::Prim(p) => Some(p.size),
            Kind::Pointer(_) | Kind::FuncPtr(_) => Some(8),
            Kind::Array(item, Some(n)) => item.size().map(|s| s * n),
            Kind::Array(_, None) => None,
            Kind::Record(r) => match r.layout.get() {
                Some(Ok(l)) if !l.partial => Some(l.size),
                _ => None,
            },
            Kind::Enum(e) => Some(e.underlying_info().size),
        }
    }

    pub fn align(&self) -> Option<usize> {
        match &self.kind {
            Kind::Void => None,
            Kind::Prim(p) => Some(p.align),
            Kind::Pointer(_) | Kind::FuncPtr(_) => Some(8),
            Kind::Array(item, _) => item.align(),
            Kind::Record(r) => match r.layout.get() {
                Some(Ok(l)) if !l.partial => Some(l.align),
                _ => None,
            },
            Kind::Enum(e) => Some(e.underlying_info().align),
        }
    }

    /// The layout of a complete struct/union.
    pub fn record_layout(&self) -> Option<&RecordLayout> {
        match &self.kind {
            Kind::Record(r) => match r.layout.get() {
                Some(Ok(l)) => Some(l),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn is_pointer_like(&self) -> bool {
        matches!(self.kind, Kind::Pointer(_) | Kind::FuncPtr(_))
    }
}

impl EnumDef {
    pub fn underlying_info(&self) -> PrimInfo {
        // Both supported targets agree on every candidate underlying type.
        self.underlying.info(&Target::X86_64_LINUX)
    }
}

/// `template` with its (first) `&` replaced by the concatenation of `parts`, built in one
/// allocation (cdef of a big header builds thousands of these).
fn fill_template(template: &str, parts: &[&str]) -> String {
    let Some((before, after)) = template.split_once('&') else {
        return template.to_string();
    };
    let len = before.len() + after.len() + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut out = String::with_capacity(len);
    out.push_str(before);
    for p in parts {
        out.push_str(p);
    }
    out.push_str(after);
    out
}

/// Structural identity of a type, for interning.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Void,
    Prim(Prim),
    Pointer(u32),
    Array(u32, Option<usize>),
    Record(u32),
    Enum(u32),
    FuncPtr(Vec<u32>, u32, bool, CallConv),
}

static NEXT_RECORD_ID: AtomicU32 = AtomicU32::new(0);
static NEXT_ENUM_ID: AtomicU32 = AtomicU32::new(0);

/// All types of one FFI, interned: building the same type twice gives the same node,
/// so `ffi.typeof("int *") is ffi.typeof("int*")` holds.
pub struct TypeTable {
    pub target: Target,
    nodes: Vec<TypeRef>,
    index: HashMap<Key, u32>,
    next_record: u32,
    next_enum: u32,
}

impl TypeTable {
    pub fn new(target: Target) -> TypeTable {
        TypeTable {
            target,
            nodes: Vec::new(),
            index: HashMap::default(),
            next_record: 0,
            next_enum: 0,
        }
    }

    /// Forgets every node from the `len`th on (a cdef undoing what it declared).
    pub fn truncate(&mut self, len: usize) {
        self.nodes.truncate(len);
        self.index.retain(|_, id| (*id as usize) < len);
    }

    pub fn get(&self, id: u32) -> &TypeRef {
        &self.nodes[id as usize]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn intern(&mut self, key: Key, make: impl FnOnce() -> (Kind, String)) -> TypeRef {
        if let Some(&id) = self.index.get(&key) {
            return self.nodes[id as usize].clone();
        }
        let (kind, cname_template) = make();
        let id = self.nodes.len() as u32;
        let node = Arc::new(TypeNode {
            id,
            kind,
            cname_template,
            memo: OnceLock::new(),
            canonical: OnceLock::new(),
        });
        self.nodes.push(node.clone());
        self.index.insert(key, id);
        node
    }

    pub fn void(&mut self) -> TypeRef {
        self.intern(Key::Void, || (Kind::Void, "void&".to_string()))
    }

    pub fn prim(&mut self, p: Prim) -> TypeRef {
        let info = p.info(&self.target);
        self.intern(Key::Prim(p), || {
            (Kind::Prim(info), format!("{}&", p.name()))
        })
    }

    pub fn pointer(&mut self, item: &TypeRef) -> TypeRef {
        let item2 = item.clone();
        self.intern(Key::Pointer(item.id), || {
            // Pointers to arrays need parentheses: `int(*)[5]`; pointers to function
            // pointers and to pointers-to-arrays already have them: `int(* *)(long)`.
            let insert = match &item2.kind {
                Kind::Array(..) => "(*&)",
                _ => " *&",
            };
            let tmpl = fill_template(&item2.cname_template, &[insert]);
            (Kind::Pointer(item2), tmpl)
        })
    }

    pub fn array(&mut self, item: &TypeRef, len: Option<usize>) -> TypeRef {
        let item2 = item.clone();
        self.intern(Key::Array(item.id, len), || {
            let tmpl = match len {
                Some(n) => fill_template(&item2.cname_template, &["&[", &n.to_string(), "]"]),
                None => fill_template(&item2.cname_template, &["&[]"]),
            };
            (Kind::Array(item2, len), tmpl)
        })
    }

    pub fn func_ptr(&mut self, args: Vec<TypeRef>, result: &TypeRef, variadic: bool) -> TypeRef {
        let key = Key::FuncPtr(
            args.iter().map(|a| a.id).collect(),
            result.id,
            variadic,
            CallConv::Default,
        );
        let result2 = result.clone();
        self.intern(key, || {
            // One allocation: `result-prefix(*&)(arg, arg, ...)result-suffix`, each
            // argument's cname being its template without the `&`.
            let Some((before, after)) = result2.cname_template.split_once('&') else {
                let tmpl = result2.cname_template.clone();
                return (
                    Kind::FuncPtr(FuncSig {
                        args,
                        result: result2,
                        variadic,
                        abi: CallConv::Default,
                    }),
                    tmpl,
                );
            };
            let params_len: usize = args
                .iter()
                .map(|a| a.cname_template.len() + 1)
                .sum::<usize>()
                + 2 * args.len()
                + 5;
            let mut tmpl = String::with_capacity(before.len() + after.len() + params_len + 6);
            tmpl.push_str(before);
            tmpl.push_str("(*&)(");
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    tmpl.push_str(", ");
                }
                let (b, e) = a
                    .cname_template
                    .split_once('&')
                    .unwrap_or((&a.cname_template, ""));
                tmpl.push_str(b);
                tmpl.push_str(e);
            }
            // No parameters print as `()`, as cffi's backend names the type.
            if variadic {
                tmpl.push_str(if args.is_empty() { "..." } else { ", ..." });
            }
            tmpl.push(')');
            tmpl.push_str(after);
            (
                Kind::FuncPtr(FuncSig {
                    args,
                    result: result2,
                    variadic,
                    abi: CallConv::Default,
                }),
                tmpl,
            )
        })
    }

    /// A new, still opaque struct or union; complete it with `Record::layout.set(..)`.
    pub fn new_record(&mut self, is_union: bool, tag: Option<String>, cname: String) -> TypeRef {
        let id = NEXT_RECORD_ID.fetch_add(1, Ordering::Relaxed);
        self.next_record += 1;
        let rec = Arc::new(Record {
            id,
            is_union,
            cname: cname.clone(),
            tag,
            layout: OnceLock::new(),
        });
        self.intern(Key::Record(id), || (Kind::Record(rec), format!("{cname}&")))
    }

    pub fn new_enum(
        &mut self,
        tag: Option<String>,
        cname: String,
        items: Vec<(String, i128)>,
        underlying: Prim,
        partial: bool,
    ) -> TypeRef {
        let id = NEXT_ENUM_ID.fetch_add(1, Ordering::Relaxed);
        self.next_enum += 1;
        let def = Arc::new(EnumDef {
            id,
            cname: cname.clone(),
            tag,
            items,
            underlying,
            partial,
        });
        self.intern(Key::Enum(id), || (Kind::Enum(def), format!("{cname}&")))
    }

    /// This table's node for a record created by another FFI's table (`ffi.include`).
    pub fn adopt_record(&mut self, rec: &Arc<Record>) -> TypeRef {
        let rec2 = rec.clone();
        self.intern(Key::Record(rec.id), || {
            let tmpl = format!("{}&", rec2.cname);
            (Kind::Record(rec2), tmpl)
        })
    }

    /// This table's node for an enum created by another FFI's table (`ffi.include`).
    pub fn adopt_enum(&mut self, def: &Arc<EnumDef>) -> TypeRef {
        let def2 = def.clone();
        self.intern(Key::Enum(def.id), || {
            let tmpl = format!("{}&", def2.cname);
            (Kind::Enum(def2), tmpl)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cnames_follow_cffi_spelling() {
        let mut t = TypeTable::new(Target::X86_64_LINUX);
        let int = t.prim(Prim::Int);
        let long = t.prim(Prim::Long);
        let p = t.pointer(&int);
        assert_eq!(p.cname(), "int *");
        assert_eq!(t.pointer(&p).cname(), "int * *");
        let a5 = t.array(&int, Some(5));
        assert_eq!(t.pointer(&a5).cname(), "int(*)[5]");
        let f = t.func_ptr(vec![long.clone()], &int, false);
        assert_eq!(f.cname(), "int(*)(long)");
        assert_eq!(t.pointer(&f).cname(), "int(* *)(long)");
        assert_eq!(t.array(&f, Some(3)).cname(), "int(*[3])(long)");
        let ch = t.prim(Prim::Char);
        let cp = t.pointer(&ch);
        assert_eq!(t.array(&cp, None).cname(), "char *[]");
        assert_eq!(t.array(&a5, Some(2)).cname(), "int[2][5]");
        let v = t.void();
        assert_eq!(t.func_ptr(vec![], &v, false).cname(), "void(*)()");
        assert_eq!(
            t.func_ptr(vec![int.clone()], &int, true).cname(),
            "int(*)(int, ...)"
        );
        assert!(Arc::ptr_eq(&t.pointer(&int), &p));
    }

    #[test]
    fn char_and_wchar_signedness_depend_on_target() {
        assert!(Prim::Char.info(&Target::X86_64_LINUX).signed);
        assert!(!Prim::Char.info(&Target::AARCH64_LINUX).signed);
        assert!(Prim::WChar.info(&Target::X86_64_LINUX).signed);
        assert!(!Prim::WChar.info(&Target::AARCH64_LINUX).signed);
    }
}

//! What one FFI has declared through `cdef`: the names a user can look up.
//! Filled by `cdef::resolve`, read by `typeof`/`new`/`dlopen`.

use rustc_hash::FxHashMap as HashMap;

use super::model::TypeRef;

#[derive(Clone, Debug)]
pub enum Decl {
    /// A function; its type is a `Kind::FuncPtr` node.
    Function(TypeRef),
    /// A global variable; const ones are read-only from `lib`.
    Variable { ty: TypeRef, is_const: bool },
    /// `#define N 42`, `static const int N = 42;`, and enumerators.
    IntConstant { value: i128, ty: Option<TypeRef> },
    /// `extern "Python" int f(int);`
    ExternPython(TypeRef),
    /// A constant whose value only a compiler knows: `#define N ...`,
    /// `static const int N;`, non-integer `static const double D = 1.5;`, `A = ...` in
    /// an enum. Reading it from a dlopen()ed lib is a NotImplementedError.
    UnknownConstant { ty: Option<TypeRef> },
}

#[derive(Default, Clone)]
pub struct Declarations {
    pub typedefs: HashMap<String, TypeRef>,
    pub structs: HashMap<String, TypeRef>,
    pub unions: HashMap<String, TypeRef>,
    pub enums: HashMap<String, TypeRef>,
    /// Functions, variables and constants, by name (the `lib` namespace).
    pub names: HashMap<String, Decl>,
    /// Declaration order of `names`, for stable `dir(lib)`.
    pub order: Vec<String>,
}

//! An out-of-line module's declarations made in an FFI's namespace on first use: a
//! type string declares the typedefs, tags and constants it names just before the
//! in-line parser reads it, and a `lib` name declares that one global. So importing a
//! module of 2000 functions builds no type at all, and the parser, its errors and every
//! runtime method stay the in-line ones.
//!
//! The realizer builds in its own table; what it hands over is adopted into the
//! namespace's table (`Namespace::adopt_declarations`), records and enums shared, as
//! `ffi.include` shares them. Names a module does not define are looked up in the
//! modules it includes (typedefs, tags and integer constants, as `include` gives them).

use std::sync::{Arc, MutexGuard};

use super::decode::Module;
use super::error::RealizeError;
use super::realize::{Include, Realizer};
use super::tables::{word_arg, word_op, GlobalKind, Op, StructEntry, F_OPAQUE};
use crate::cdef::Namespace;
use crate::types::decls::{Decl, Declarations};
use crate::types::model::TypeRef;

/// How deep the search for a name may go through `_includes`.
const MAX_INCLUDE_DEPTH: usize = 100;

fn lock(r: &Include) -> MutexGuard<'_, Realizer> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one name gives the namespace.
#[derive(Default)]
struct Found {
    decls: Declarations,
    fn_typedefs: Vec<(String, TypeRef)>,
}

impl Found {
    fn is_empty(&self) -> bool {
        let d = &self.decls;
        self.fn_typedefs.is_empty()
            && d.typedefs.is_empty()
            && d.structs.is_empty()
            && d.unions.is_empty()
            && d.enums.is_empty()
            && d.names.is_empty()
    }

    fn add_name(&mut self, name: &str, decl: Decl) {
        self.decls.order.push(name.to_string());
        self.decls.names.insert(name.to_string(), decl);
    }
}

fn visible_tag(e: &StructEntry) -> bool {
    !e.name.starts_with('$') && e.name != "_IO_FILE"
}

/// The typedef `name` of `r`'s module or, failing that, of its includes.
fn find_typedef(
    r: &Include,
    name: &str,
    depth: usize,
    out: &mut Found,
) -> Result<bool, RealizeError> {
    let includes = {
        let mut g = lock(r);
        if let Some((t, func)) = g.typename(name)? {
            if func {
                out.fn_typedefs.push((name.to_string(), t));
            } else {
                out.decls.typedefs.insert(name.to_string(), t);
            }
            return Ok(true);
        }
        g.includes().to_vec()
    };
    search_includes(&includes, depth, |inc, d| find_typedef(inc, name, d, out))
}

/// `struct tag` / `union tag` / `enum tag` (whichever the module has).
fn find_tag(
    r: &Include,
    tag: &str,
    is_enum: bool,
    depth: usize,
    out: &mut Found,
) -> Result<bool, RealizeError> {
    let includes = {
        let mut g = lock(r);
        if is_enum {
            if let Some(t) = g.enum_tag(tag)? {
                out.decls.enums.insert(tag.to_string(), t);
                return Ok(true);
            }
        } else if let Some(i) = g.module().struct_index(tag) {
            let m = g.module().clone();
            let e = &m.tables.struct_unions[i];
            // An external entry is the included module's record: realized through it.
            let node = g.struct_at(i)?;
            if visible_tag(e) {
                let map = if e.is_union() {
                    &mut out.decls.unions
                } else {
                    &mut out.decls.structs
                };
                map.insert(tag.to_string(), node);
            }
            return Ok(true);
        }
        g.includes().to_vec()
    };
    search_includes(&includes, depth, |inc, d| {
        find_tag(inc, tag, is_enum, d, out)
    })
}

/// The global `name` of the module; of an include only an integer constant (what
/// `ffi.include` gives a lib).
fn find_global(
    r: &Include,
    name: &str,
    own: bool,
    depth: usize,
    out: &mut Found,
) -> Result<bool, RealizeError> {
    let includes = {
        let mut g = lock(r);
        if let Some(gi) = g.module().global_index(name) {
            let kind = g.module().tables.globals[gi].kind;
            let constant = matches!(
                kind,
                GlobalKind::IntConstant { .. } | GlobalKind::Enumerator { .. }
            );
            if own || constant {
                if let Some(d) = g.global(name)? {
                    out.add_name(name, d);
                    return Ok(true);
                }
            }
        }
        g.includes().to_vec()
    };
    search_includes(&includes, depth, |inc, d| {
        find_global(inc, name, false, d, out)
    })
}

fn search_includes(
    includes: &[Include],
    depth: usize,
    mut f: impl FnMut(&Include, usize) -> Result<bool, RealizeError>,
) -> Result<bool, RealizeError> {
    if includes.is_empty() {
        return Ok(false);
    }
    if depth >= MAX_INCLUDE_DEPTH {
        return Err(RealizeError::IncludeDepth {
            cname: "(include chain)".to_string(),
        });
    }
    for inc in includes {
        if f(inc, depth + 1)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn adopt(r: &Include, ns: &mut Namespace, found: Found) -> Result<(), RealizeError> {
    if found.is_empty() {
        return Ok(());
    }
    let file = lock(r).file_type()?;
    ns.adopt_declarations(&found.decls, &found.fn_typedefs, &file);
    Ok(())
}

/// The identifiers of a type string, each with whether a `struct`/`union`/`enum`
/// keyword comes before it (`Some(true)` for `enum`).
fn identifiers(text: &str) -> impl Iterator<Item = (&str, Option<bool>)> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut after: Option<bool> = None;
    std::iter::from_fn(move || {
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                let w = &text[start..i];
                match w {
                    "struct" | "union" => after = Some(false),
                    "enum" => after = Some(true),
                    _ => return Some((w, after.take())),
                }
            } else if c.is_ascii_digit() {
                while i < b.len() && b[i].is_ascii_alphanumeric() {
                    i += 1;
                }
            } else {
                i += 1;
            }
        }
        None
    })
}

/// Declares in `ns` what the type string `text` names from the module behind `r` (and
/// its includes), unless `ns` has it already.
pub fn declare_for_type_string(
    r: &Include,
    ns: &mut Namespace,
    text: &str,
) -> Result<(), RealizeError> {
    let mut found = Found::default();
    for (w, tag) in identifiers(text) {
        match tag {
            Some(is_enum) => {
                let d = &ns.decls;
                if d.structs.contains_key(w) || d.unions.contains_key(w) || d.enums.contains_key(w)
                {
                    continue;
                }
                find_tag(r, w, is_enum, 0, &mut found)?;
            }
            None => {
                if ns.decls.typedefs.contains_key(w) || ns.decls.names.contains_key(w) {
                    continue;
                }
                if !find_typedef(r, w, 0, &mut found)? {
                    // array lengths may be constants; other names give the parser's error
                    find_global(r, w, true, 0, &mut found)?;
                }
            }
        }
    }
    adopt(r, ns, found)
}

/// Declares the global `name` of the module behind `r` in `ns` (a constant of an include
/// too); `false` if there is none.
pub fn declare_global(r: &Include, ns: &mut Namespace, name: &str) -> Result<bool, RealizeError> {
    let mut found = Found::default();
    if !find_global(r, name, true, 0, &mut found)? {
        return Ok(false);
    }
    adopt(r, ns, found)?;
    Ok(true)
}

/// What a `lib` needs to know of one global of the module without realizing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LibEntry {
    /// A function whose signature can be checked at its first call.
    Function,
    /// A function taking or returning an opaque struct or union by value: an error at
    /// access, as the in-line `lib` gives it.
    BadFunction,
    /// An integer constant or enumerator.
    Int(i128),
    /// A variable or a constant read from the library.
    Variable,
}

/// Whether the type at `slot` is an opaque struct or union (by value).
fn opaque_by_value(m: &Module, mut slot: usize) -> bool {
    for _ in 0..=m.tables.types.len() {
        let w = m.tables.types[slot];
        let arg = word_arg(w) as usize;
        match Op::from_u8(word_op(w)) {
            Some(Op::Noop) => slot = arg,
            Some(Op::Typename) => slot = m.tables.typenames[arg].type_index as usize,
            Some(Op::StructUnion) => {
                let e = &m.tables.struct_unions[arg];
                // (an external one is decided by its include: realized at access)
                return e.flags & F_OPAQUE != 0 || e.is_external();
            }
            _ => return false,
        }
    }
    false
}

/// What a `lib` needs to know of global `gi` of the module, without realizing it.
pub fn lib_entry(m: &Module, gi: usize) -> LibEntry {
    match m.tables.globals[gi].kind {
        GlobalKind::Function { slot } => {
            let s = slot as usize;
            let ret = word_arg(m.tables.types[s]) as usize;
            let (params, _) = m.params(s);
            if opaque_by_value(m, ret) || params.into_iter().any(|p| opaque_by_value(m, p)) {
                LibEntry::BadFunction
            } else {
                LibEntry::Function
            }
        }
        GlobalKind::IntConstant { value } | GlobalKind::Enumerator { value } => {
            LibEntry::Int(value)
        }
        GlobalKind::Variable { .. } | GlobalKind::Constant { .. } => LibEntry::Variable,
    }
}

/// The integer constants and enumerators of the modules `r`'s module includes (and
/// theirs, nearest first), which its lib shows too, as cffi's compiled libs do.
pub fn included_constants(r: &Include) -> Vec<(String, i128)> {
    let mut out = Vec::new();
    let mut todo: Vec<(Include, usize)> =
        lock(r).includes().iter().map(|i| (i.clone(), 1)).collect();
    todo.reverse();
    while let Some((inc, depth)) = todo.pop() {
        let m = module_of(&inc);
        for g in &m.tables.globals {
            if let GlobalKind::IntConstant { value } | GlobalKind::Enumerator { value } = g.kind {
                out.push((g.name.clone(), value));
            }
        }
        if depth < MAX_INCLUDE_DEPTH {
            let more: Vec<Include> = lock(&inc).includes().to_vec();
            todo.extend(more.into_iter().rev().map(|i| (i, depth + 1)));
        }
    }
    out
}

/// The module behind `r` (its globals are `lib_entry`'s indexes).
pub fn module_of(r: &Include) -> Arc<Module> {
    lock(r).module().clone()
}

/// Every global of the module, in table order, as a `lib` sets itself up: no type is
/// realized.
pub fn lib_entries(r: &Include) -> Vec<(String, LibEntry)> {
    let m = module_of(r);
    (0..m.tables.globals.len())
        .map(|gi| (m.tables.globals[gi].name.clone(), lib_entry(&m, gi)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::identifiers;

    #[test]
    fn identifiers_of_type_strings() {
        let got: Vec<_> =
            identifiers("struct s *(*)(pt_t, enum e[N], int[0x10], union $u)").collect();
        assert_eq!(
            got,
            [
                ("s", Some(false)),
                ("pt_t", None),
                ("e", Some(true)),
                ("N", None),
                ("int", None),
                ("$u", Some(false)),
            ]
        );
    }
}

/// Why a compiled FFI refuses a type string.
#[derive(Debug)]
pub enum TypeStringError {
    /// A table entry the string needs does not realize.
    Realize(RealizeError),
    /// cffi's compiled FFI refuses it, with this message.
    Cffi1(crate::cdef::cffi1_diag::Cffi1Error),
    /// The in-line parser refuses it and cffi's wording is not known for it.
    Parse(crate::cdef::CdefError),
}

/// The type a type string names in a compiled FFI whose module is `r`: the names it uses
/// are declared from the module first (`declare_for_type_string`); names neither the
/// module nor its includes declare are refused (in-line, an unknown tag would be declared
/// opaque), and errors take cffi's compiled FFI's wording where it is known.
pub fn resolve_type_string(
    r: &Include,
    ns: &mut Namespace,
    text: &str,
) -> Result<TypeRef, TypeStringError> {
    use crate::cdef::ErrorKind;
    declare_for_type_string(r, ns, text).map_err(TypeStringError::Realize)?;
    let diag = ns.cffi1_diagnose(text);
    if let Some(d) = diag.as_ref().filter(|d| d.undefined) {
        return Err(TypeStringError::Cffi1(d.clone()));
    }
    ns.parse_type(text).map_err(|e| match (e.kind, diag) {
        (ErrorKind::CDef | ErrorKind::FFI | ErrorKind::Value, Some(d)) => TypeStringError::Cffi1(d),
        _ => TypeStringError::Parse(e),
    })
}

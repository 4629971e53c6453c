//! The cdef language: pest grammar (grammar/cdef.pest) → declarations and types.
//!
//! `preprocess` blanks comments and `#` lines, `parser` runs the pest grammar,
//! `resolve` walks the parse tree into the type model (`types::model`) and the
//! declaration tables (`types::decls`), `consteval` evaluates constant expressions, and
//! record layouts come from `types::layout` once every member type is known. `error` is
//! what a cdef or a type string gives back when it fails.

pub mod cffi1_diag;
mod consteval;
mod error;
mod parser;
mod preprocess;
mod resolve;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::types::decls::{Decl, Declarations};
use crate::types::layout::{MemberSpec, Packing};
use crate::types::model::{Kind, Prim, TypeRef, TypeTable};
use crate::types::target::Target;

pub use error::{CdefError, ErrorDetail, ErrorKind, SourceLocation};
pub use preprocess::parse_int_literal;

#[derive(Debug, Clone, Default)]
pub struct CdefOptions {
    pub override_: bool,
    pub packed: bool,
    pub pack: Option<u32>,
}

/// A struct/union body waiting for its layout: computed at the end of the `cdef` call
/// that gave it (members may name records completed later in the same call), or of a
/// later call if a by-value member's type is still opaque.
struct PendingBody {
    node: TypeRef,
    members: Vec<MemberSpec>,
    partial: bool,
    packing: Packing,
}

/// Everything one FFI has declared.
pub struct Namespace {
    pub table: TypeTable,
    pub decls: Declarations,
    /// `typedef int fn_t(int);`: the function-pointer node of each function typedef.
    fn_typedefs: HashMap<String, TypeRef>,
    /// `typedef int... t;` / `typedef float... t;` (true for float): sizes only a
    /// compiler knows.
    unknown_num_typedefs: HashMap<String, bool>,
    /// The predeclared opaque `FILE`.
    file_type: TypeRef,
    /// Record ids whose body has been given (laid out or pending).
    has_body: HashSet<u32>,
    pending: HashMap<u32, PendingBody>,
    pending_order: Vec<u32>,
    /// The members of each laid-out record as declared (unnamed bitfields and anonymous
    /// members kept), for the out-of-line writer.
    pub declared_members: HashMap<u32, Vec<MemberSpec>>,
    /// Numbers anonymous structs, unions and enums: `struct $1`.
    anon_counter: u32,
    /// Built-in type nodes by `Prim as usize`, to skip the interning hash on the hot path.
    prim_nodes: Vec<Option<TypeRef>>,
    /// `void`, the starting point of every declaration's specifiers.
    void_node: TypeRef,
    /// Pointer nodes by the id of the pointed-to node (ids are dense indexes of the
    /// table), also to skip the interning hash.
    pointer_nodes: Vec<Option<TypeRef>>,
    /// How many type nodes a new namespace has (`FILE`, `void`).
    initial_nodes: usize,
}

impl Namespace {
    pub fn new(target: Target) -> Namespace {
        let mut table = TypeTable::new(target);
        let file_type = table.new_record(false, None, "FILE".to_string());
        let void_node = table.void();
        let initial_nodes = table.len();
        Namespace {
            table,
            decls: Declarations::default(),
            fn_typedefs: HashMap::default(),
            unknown_num_typedefs: HashMap::default(),
            file_type,
            has_body: HashSet::default(),
            pending: HashMap::default(),
            pending_order: Vec::new(),
            declared_members: HashMap::default(),
            anon_counter: 0,
            prim_nodes: vec![None; Prim::ALL.len()],
            void_node,
            pointer_nodes: Vec::new(),
            initial_nodes,
        }
    }

    /// Nothing declared and no type built yet: the state `reset_to_empty` restores.
    fn is_empty(&self) -> bool {
        let d = &self.decls;
        self.table.len() == self.initial_nodes
            && d.names.is_empty()
            && d.order.is_empty()
            && d.typedefs.is_empty()
            && d.structs.is_empty()
            && d.unions.is_empty()
            && d.enums.is_empty()
            && self.fn_typedefs.is_empty()
            && self.unknown_num_typedefs.is_empty()
            && self.has_body.is_empty()
            && self.pending.is_empty()
            && self.pending_order.is_empty()
            && self.anon_counter == 0
    }

    /// Back to the state of a new namespace, keeping its `FILE` and `void` nodes.
    fn reset_to_empty(&mut self) {
        self.table.truncate(self.initial_nodes);
        self.decls = Declarations::default();
        self.fn_typedefs.clear();
        self.unknown_num_typedefs.clear();
        self.has_body.clear();
        self.pending.clear();
        self.pending_order.clear();
        self.declared_members.clear();
        self.anon_counter = 0;
        self.prim_nodes.iter_mut().for_each(|p| *p = None);
        self.pointer_nodes.clear();
    }

    fn void(&self) -> TypeRef {
        self.void_node.clone()
    }

    fn pointer(&mut self, item: &TypeRef) -> TypeRef {
        let slot = item.id as usize;
        if let Some(Some(t)) = self.pointer_nodes.get(slot) {
            return t.clone();
        }
        let t = self.table.pointer(item);
        if slot >= self.pointer_nodes.len() {
            self.pointer_nodes.resize(slot + 1, None);
        }
        self.pointer_nodes[slot] = Some(t.clone());
        t
    }

    fn prim(&mut self, p: Prim) -> TypeRef {
        let slot = p as usize;
        if let Some(t) = &self.prim_nodes[slot] {
            return t.clone();
        }
        let t = self.table.prim(p);
        self.prim_nodes[slot] = Some(t.clone());
        t
    }

    /// The predeclared opaque `FILE` (what a Python file object converts to, as in cffi).
    pub fn file_type(&self) -> &TypeRef {
        &self.file_type
    }

    pub fn target(&self) -> Target {
        self.table.target
    }

    /// Parses `source` and adds its declarations. On error, declarations before the
    /// failing one may already have been added (as with cffi).
    pub fn cdef(&mut self, source: &str, opts: &CdefOptions) -> Result<(), CdefError> {
        if let Some(p) = opts.pack {
            if p == 0 || !p.is_power_of_two() {
                return Err(CdefError::new(
                    ErrorKind::Value,
                    format!("'pack' must be a power of two, not {p}"),
                ));
            }
        }
        if opts.packed && opts.pack.is_some_and(|p| p != 1) {
            return Err(CdefError::new(
                ErrorKind::Value,
                "'packed' should be False if 'pack' is given",
            ));
        }
        let result = catch_unwind(AssertUnwindSafe(|| resolve::run_cdef(self, source, opts)));
        let result = result.unwrap_or_else(|payload| Err(CdefError::from_panic(payload, "cdef")));
        // Whatever was completed before an error still gets its layout.
        self.finish_pending();
        result
    }

    /// The type named by a C type string (`"int(*)[5]"`, `"struct s *"`, `"size_t"`).
    pub fn parse_type(&mut self, text: &str) -> Result<TypeRef, CdefError> {
        let result = catch_unwind(AssertUnwindSafe(|| resolve::run_type_string(self, text)));
        // A struct or union defined inside the type string (`"struct { int a; } *"`)
        // gets its layout as a cdef's would.
        self.finish_pending();
        result.unwrap_or_else(|payload| Err(CdefError::from_panic(payload, "typeof")))
    }

    /// Where and why cffi's compiled FFI would refuse the type string `text` here
    /// (`cffi1_diag`).
    pub fn cffi1_diagnose(&self, text: &str) -> Option<cffi1_diag::Cffi1Error> {
        let result = catch_unwind(AssertUnwindSafe(|| cffi1_diag::diagnose(self, text)));
        result.unwrap_or(None)
    }

    /// `ffi.include(other)`: typedefs, structs, unions, enums and constants of `other`
    /// (not functions or variables). Records are shared, so both FFIs see one layout.
    pub fn include(&mut self, other: &Namespace) -> Result<(), CdefError> {
        let mut memo: HashMap<u32, TypeRef> = HashMap::default();
        let mut typedefs: Vec<(&String, &TypeRef)> = other.decls.typedefs.iter().collect();
        typedefs.sort_by(|a, b| a.0.cmp(b.0));
        for (name, ty) in typedefs {
            let mine = self.adopt(ty, &mut memo);
            if let Some(old) = self.decls.typedefs.get(name) {
                if old.cname() != mine.cname() || old.kind_name() != mine.kind_name() {
                    return Err(CdefError::new(
                        ErrorKind::FFI,
                        format!("multiple declarations of typedef {name} (for interactive usage, try cdef(xx, override=True))"),
                    ));
                }
            }
            self.decls.typedefs.insert(name.clone(), mine);
        }
        for (name, ty) in &other.fn_typedefs {
            let mine = self.adopt(ty, &mut memo);
            self.fn_typedefs.insert(name.clone(), mine);
        }
        for (name, f) in &other.unknown_num_typedefs {
            self.unknown_num_typedefs.insert(name.clone(), *f);
        }
        for (map_name, src) in [
            ("struct", &other.decls.structs),
            ("union", &other.decls.unions),
            ("enum", &other.decls.enums),
        ] {
            for (tag, ty) in src {
                let mine = self.adopt(ty, &mut memo);
                let dst = match map_name {
                    "struct" => &mut self.decls.structs,
                    "union" => &mut self.decls.unions,
                    _ => &mut self.decls.enums,
                };
                dst.entry(tag.clone()).or_insert(mine);
            }
        }
        for name in &other.decls.order {
            let Some(d) = other.decls.names.get(name) else {
                continue;
            };
            let mine = match d {
                Decl::IntConstant { value, ty } => Decl::IntConstant {
                    value: *value,
                    ty: ty.as_ref().map(|t| self.adopt(t, &mut memo)),
                },
                Decl::UnknownConstant { ty } => Decl::UnknownConstant {
                    ty: ty.as_ref().map(|t| self.adopt(t, &mut memo)),
                },
                _ => continue,
            };
            if !self.decls.names.contains_key(name) {
                self.decls.order.push(name.clone());
            }
            self.decls.names.insert(name.clone(), mine);
        }
        for id in &other.has_body {
            self.has_body.insert(*id);
        }
        Ok(())
    }

    /// Declarations built in another table (an out-of-line module's, `ool::Realizer`),
    /// every kind of name included, as if this namespace had declared them; `fn_typedefs`
    /// are the typedefs naming function types, with their pointer-to-function nodes.
    /// Records are shared with that table, so both agree on every layout. `file` is that
    /// table's `FILE`, which the name `FILE` then means here too.
    pub fn adopt_declarations(
        &mut self,
        decls: &Declarations,
        fn_typedefs: &[(String, TypeRef)],
        file: &TypeRef,
    ) {
        let mut memo: HashMap<u32, TypeRef> = HashMap::default();
        self.file_type = self.adopt(file, &mut memo);
        let mut typedefs: Vec<(&String, &TypeRef)> = decls.typedefs.iter().collect();
        typedefs.sort_by(|a, b| a.0.cmp(b.0));
        for (name, ty) in typedefs {
            let mine = self.adopt(ty, &mut memo);
            self.decls.typedefs.insert(name.clone(), mine);
        }
        for (name, ty) in fn_typedefs {
            let mine = self.adopt(ty, &mut memo);
            self.fn_typedefs.insert(name.clone(), mine);
        }
        for (src, is) in [(&decls.structs, 0), (&decls.unions, 1), (&decls.enums, 2)] {
            let mut entries: Vec<(&String, &TypeRef)> = src.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (tag, ty) in entries {
                let mine = self.adopt(ty, &mut memo);
                if let Kind::Record(r) = &mine.kind {
                    self.has_body.insert(r.id);
                }
                let dst = match is {
                    0 => &mut self.decls.structs,
                    1 => &mut self.decls.unions,
                    _ => &mut self.decls.enums,
                };
                dst.insert(tag.clone(), mine);
            }
        }
        for name in &decls.order {
            let Some(d) = decls.names.get(name) else {
                continue;
            };
            let mut ad = |t: &TypeRef| self.adopt(t, &mut memo);
            let mine = match d {
                Decl::Function(t) => Decl::Function(ad(t)),
                Decl::Variable { ty, is_const } => Decl::Variable {
                    ty: ad(ty),
                    is_const: *is_const,
                },
                Decl::IntConstant { value, ty } => Decl::IntConstant {
                    value: *value,
                    ty: ty.as_ref().map(ad),
                },
                Decl::ExternPython(t) => Decl::ExternPython(ad(t)),
                Decl::UnknownConstant { ty } => Decl::UnknownConstant {
                    ty: ty.as_ref().map(ad),
                },
            };
            if !self.decls.names.contains_key(name) {
                self.decls.order.push(name.clone());
            }
            self.decls.names.insert(name.clone(), mine);
        }
    }

    /// This table's node for `ty`, which may be a node of another table (a field of a
    /// record shared through `include`); `ty` itself if it is one of this table's.
    pub fn own_node(&mut self, ty: &TypeRef) -> TypeRef {
        let id = ty.id as usize;
        if id < self.table.len() && std::sync::Arc::ptr_eq(self.table.get(ty.id), ty) {
            return ty.clone();
        }
        self.adopt(ty, &mut HashMap::default())
    }

    /// The node of this table for a type of another namespace's table.
    fn adopt(&mut self, ty: &TypeRef, memo: &mut HashMap<u32, TypeRef>) -> TypeRef {
        if let Some(t) = memo.get(&ty.id) {
            return t.clone();
        }
        let mine = match &ty.kind {
            Kind::Void => self.table.void(),
            Kind::Prim(p) => self.table.prim(p.prim),
            Kind::Pointer(item) => {
                let item = self.adopt(item, memo);
                self.table.pointer(&item)
            }
            Kind::Array(item, len) => {
                let item = self.adopt(item, memo);
                self.table.array(&item, *len)
            }
            Kind::Record(r) => self.table.adopt_record(r),
            Kind::Enum(e) => self.table.adopt_enum(e),
            Kind::FuncPtr(sig) => {
                let args: Vec<TypeRef> = sig.args.iter().map(|a| self.adopt(a, memo)).collect();
                let result = self.adopt(&sig.result, memo);
                self.table.func_ptr(args, &result, sig.variadic)
            }
        };
        memo.insert(ty.id, mine.clone());
        mine
    }

    /// Sorted typedef, struct and union names (`ffi.list_types()`).
    pub fn list_types(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let mut t: Vec<String> = self.decls.typedefs.keys().cloned().collect();
        t.extend(self.fn_typedefs.keys().cloned());
        t.extend(self.unknown_num_typedefs.keys().cloned());
        let mut s: Vec<String> = self.decls.structs.keys().cloned().collect();
        let mut u: Vec<String> = self.decls.unions.keys().cloned().collect();
        t.sort();
        t.dedup();
        s.sort();
        u.sort();
        (t, s, u)
    }

    /// Lays out every pending record whose member types are all known.
    fn finish_pending(&mut self) {
        let order = std::mem::take(&mut self.pending_order);
        let mut visiting = HashSet::default();
        for id in &order {
            self.finish_record(*id, &mut visiting);
        }
        self.pending_order = order
            .into_iter()
            .filter(|id| self.pending.contains_key(id))
            .collect();
    }

    fn finish_record(&mut self, id: u32, visiting: &mut HashSet<u32>) {
        if !self.pending.contains_key(&id) {
            return;
        }
        if !visiting.insert(id) {
            return;
        }
        let deps: Vec<u32> = self.pending[&id]
            .members
            .iter()
            .filter_map(|m| by_value_record(&m.ty))
            .collect();
        for dep in deps {
            if dep != id {
                self.finish_record(dep, visiting);
            }
        }
        visiting.remove(&id);
        let body = &self.pending[&id];
        let Kind::Record(rec) = &body.node.kind else {
            unreachable!("pending bodies are records")
        };
        let self_contained = body
            .members
            .iter()
            .any(|m| by_value_record(&m.ty) == Some(id));
        let waiting = body.members.iter().any(|m| match by_value_record(&m.ty) {
            Some(dep) => dep != id && self.pending.contains_key(&dep),
            None => false,
        }) || body.members.iter().any(|m| is_opaque_record(&m.ty));
        if waiting && !self_contained {
            // A member's struct is still opaque (or part of a by-value cycle): try again
            // after the next cdef.
            return;
        }
        let layout = if self_contained {
            Err(format!("{} contains itself by value", rec.cname))
        } else {
            crate::types::layout::layout_record(
                &rec.cname,
                rec.is_union,
                &body.members,
                body.partial,
                body.packing,
                &self.table.target,
            )
        };
        let _ = rec.layout.set(layout);
        if let Some(body) = self.pending.remove(&id) {
            self.declared_members.insert(id, body.members);
        }
    }
}

/// The record a member of type `ty` embeds by value (through arrays).
fn by_value_record(ty: &TypeRef) -> Option<u32> {
    match &ty.kind {
        Kind::Record(r) if r.layout.get().is_none() => Some(r.id),
        Kind::Array(item, _) => by_value_record(item),
        _ => None,
    }
}

fn is_opaque_record(ty: &TypeRef) -> bool {
    match &ty.kind {
        Kind::Record(r) => r.layout.get().is_none(),
        Kind::Array(item, _) => is_opaque_record(item),
        _ => false,
    }
}

/// Canonical primitive for a run of built-in type keywords, order-insensitive
/// (`long unsigned int` = `unsigned long`).
pub(crate) fn prim_from_keywords(words: &[&str]) -> Result<Option<Prim>, String> {
    let (
        mut unsigned,
        mut signed,
        mut short,
        mut long,
        mut int,
        mut char_,
        mut float,
        mut double,
        mut void,
        mut boolean,
        mut complex,
    ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    for w in words {
        match *w {
            "unsigned" => unsigned += 1,
            "signed" => signed += 1,
            "short" => short += 1,
            "long" => long += 1,
            "int" => int += 1,
            "char" => char_ += 1,
            "float" => float += 1,
            "double" => double += 1,
            "void" => void += 1,
            "_Bool" | "bool" => boolean += 1,
            "_Complex" | "__complex__" => complex += 1,
            _ => return Err(format!("unknown type keyword '{w}'")),
        }
    }
    let bad = || Err(format!("Unsupported type: '{}'", words.join(" ")));
    let sign = unsigned + signed;
    if unsigned > 1
        || signed > 1
        || (unsigned == 1 && signed == 1)
        || int > 1
        || short > 1
        || long > 2
    {
        return bad();
    }
    if void > 0 {
        return if words.len() == 1 { Ok(None) } else { bad() };
    }
    if boolean > 0 {
        return if words.len() == 1 {
            Ok(Some(Prim::Bool))
        } else {
            bad()
        };
    }
    if float > 0 || double > 0 {
        if sign > 0 || short > 0 || int > 0 || char_ > 0 || float + double > 1 || complex > 1 {
            return bad();
        }
        return match (float, double, long, complex) {
            (1, 0, 0, 0) => Ok(Some(Prim::Float)),
            (0, 1, 0, 0) => Ok(Some(Prim::Double)),
            (0, 1, 1, 0) => Ok(Some(Prim::LongDouble)),
            (1, 0, 0, 1) => Ok(Some(Prim::FloatComplex)),
            (0, 1, 0, 1) => Ok(Some(Prim::DoubleComplex)),
            _ => bad(),
        };
    }
    if complex > 0 {
        return bad();
    }
    if char_ > 0 {
        if char_ > 1 || short > 0 || long > 0 || int > 0 {
            return bad();
        }
        return Ok(Some(if unsigned > 0 {
            Prim::UChar
        } else if signed > 0 {
            Prim::SChar
        } else {
            Prim::Char
        }));
    }
    if short > 0 && long > 0 {
        return bad();
    }
    let u = unsigned > 0;
    Ok(Some(match (short, long) {
        (1, _) => {
            if u {
                Prim::UShort
            } else {
                Prim::Short
            }
        }
        (_, 1) => {
            if u {
                Prim::ULong
            } else {
                Prim::Long
            }
        }
        (_, 2) => {
            if u {
                Prim::ULongLong
            } else {
                Prim::LongLong
            }
        }
        _ => {
            if u {
                Prim::UInt
            } else {
                Prim::Int
            }
        }
    }))
}

#[cfg(test)]
mod tests;

/// Measuring aid for benches/cdef_phases.rs: preprocess and pest-parse only, returning
/// the number of top-level items.
#[doc(hidden)]
pub fn parse_only(source: &str) -> Result<usize, CdefError> {
    let pre = preprocess::preprocess(source)?;
    let pos = preprocess::Positions {
        source,
        markers: &pre.markers,
    };
    parser::check_nesting(&pre.text, &pos, "declaration")?;
    // What `cdef` parses for a text given to an empty namespace: the raw-piece parse,
    // pieces checked as the resolver meets them (not measured here).
    let tree = match parser::parse(parser::Rule::cdef, &pre.text) {
        Ok(tree) => tree,
        Err(_) => parser::parse_cdef(&pre.text, &pos)?,
    };
    Ok(tree.into_inner().count())
}

/// Measuring aid for benches/cdef_phases.rs: preprocess only, returning the length of
/// the blanked text.
#[doc(hidden)]
pub fn preprocess_only(source: &str) -> Result<usize, CdefError> {
    Ok(preprocess::preprocess(source)?.text.len())
}

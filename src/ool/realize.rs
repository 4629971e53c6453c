//! Turning a validated module into the type model (`TypeTable` nodes and
//! `Declarations`), lazily: each slot, struct and enum is built on first use and cached,
//! so a program touching three names of a big header builds three names' types.
//!
//! Layouts come from `types::layout`, the code the in-line `cdef` uses, so an
//! out-of-line module and an in-line cdef of the same declarations agree on every size
//! and offset. As in cffi's ABI mode, a struct is laid out as soon as it is built.

use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap as HashMap;

use super::decode::{Module, SlotKind};
use super::error::RealizeError;
use super::tables::*;
use crate::types::decls::{Decl, Declarations};
use crate::types::layout::{layout_record, MemberSpec, Packing};
use crate::types::model::{Kind, Prim, Record, TypeRef, TypeTable};
use crate::types::target::Target;

/// An included module (`_includes`), shared by every module that includes it.
pub type Include = Arc<Mutex<Realizer>>;

/// cffi's reader gives up at this nesting depth.
const MAX_DEPTH: usize = 1000;
/// How deep `F_EXTERNAL` entries may chain through includes.
const MAX_INCLUDE_DEPTH: usize = 100;
/// No type may be larger (keeps every layout computation far from overflow).
const MAX_SIZE: usize = 1 << 40;

/// A realized slot: the node, and whether the slot is a function type (the node is
/// then the pointer-to-function node, as in the in-line model).
#[derive(Clone)]
struct SlotType {
    node: TypeRef,
    func: bool,
}

pub struct Realizer {
    module: Arc<Module>,
    pub table: TypeTable,
    slots: Vec<Option<SlotType>>,
    structs: Vec<Option<TypeRef>>,
    enums: Vec<Option<TypeRef>>,
    /// The enum entry listing each enumerator (by `_globals` index).
    enumerator_owner: HashMap<usize, usize>,
    includes: Vec<Include>,
    /// Nesting depth of each built slot (structs count as 1).
    depth: Vec<u32>,
    /// Structs whose node exists but whose layout is still to compute.
    pending: Vec<usize>,
    record_index: HashMap<u32, usize>,
    failed: HashMap<usize, RealizeError>,
    /// The built-in opaque `FILE`, when the module has no entry for it.
    file: Option<TypeRef>,
    /// Sized arrays built while their item's size was unknown (a struct still to lay
    /// out): checked once the layouts are done.
    unchecked: Vec<usize>,
    /// Set when such an array turns out too large: the nodes built with it may already
    /// be referred to, so nothing more is handed out.
    poisoned: Option<RealizeError>,
}

/// The C name and tag the in-line cdef gives the record or enum of a table name.
fn names_of(kw: &str, name: &str) -> (String, Option<String>) {
    if name == "_IO_FILE" && kw == "struct" {
        return ("FILE".to_string(), None);
    }
    match name.strip_prefix('$') {
        Some(rest) if rest.bytes().all(|c| c.is_ascii_digit()) || rest.starts_with('$') => {
            (format!("{kw} {name}"), None)
        }
        Some(rest) => (rest.to_string(), None),
        None => (format!("{kw} {name}"), Some(name.to_string())),
    }
}

/// The size of `t` computed without overflow: `Err` if a sized array is larger than
/// any type may be, `Ok(None)` if unknown (opaque, `T[]`).
fn checked_size(t: &TypeRef) -> Result<Option<usize>, ()> {
    let mut lens = Vec::new();
    let mut base = t;
    while let Kind::Array(item, len) = &base.kind {
        lens.push(*len);
        base = item;
    }
    let Some(mut size) = base.size() else {
        return Ok(None);
    };
    for len in lens.iter().rev() {
        match len {
            Some(n) => size = size.checked_mul(*n).filter(|s| *s <= MAX_SIZE).ok_or(())?,
            None => return Ok(None),
        }
    }
    Ok(Some(size))
}

fn enum_underlying(prim: i32) -> Prim {
    // The in-line cdef picks among int, unsigned int, long and unsigned long; the table
    // gives the fixed-width type of the same size and sign.
    match prim {
        PRIM_INT8 => Prim::Int8,
        PRIM_UINT8 => Prim::UInt8,
        PRIM_INT16 => Prim::Int16,
        PRIM_UINT16 => Prim::UInt16,
        PRIM_INT32 => Prim::Int,
        PRIM_UINT32 => Prim::UInt,
        PRIM_INT64 => Prim::Long,
        _ => Prim::ULong,
    }
}

impl Realizer {
    pub fn new(module: Arc<Module>, target: Target, includes: Vec<Include>) -> Realizer {
        let t = &module.tables;
        let mut enumerator_owner = HashMap::default();
        for (ei, e) in t.enums.iter().enumerate() {
            for item in &e.enumerators {
                if let Some(gi) = module.global_index(item) {
                    enumerator_owner.insert(gi, ei);
                }
            }
        }
        let (n_slots, n_structs, n_enums) = (t.types.len(), t.struct_unions.len(), t.enums.len());
        Realizer {
            slots: vec![None; n_slots],
            depth: vec![0; n_slots],
            structs: vec![None; n_structs],
            enums: vec![None; n_enums],
            module,
            table: TypeTable::new(target),
            enumerator_owner,
            includes,
            pending: Vec::new(),
            record_index: HashMap::default(),
            failed: HashMap::default(),
            file: None,
            unchecked: Vec::new(),
            poisoned: None,
        }
    }

    pub fn module(&self) -> &Arc<Module> {
        &self.module
    }

    /// The realizers of the modules in `_includes`, in order.
    pub fn includes(&self) -> &[Include] {
        &self.includes
    }

    /// The type of slot `i` (a function type gives its pointer-to-function node and
    /// `true`). Structs reached on the way are laid out before this returns.
    pub fn slot(&mut self, i: usize) -> Result<(TypeRef, bool), RealizeError> {
        if self.module.kinds.get(i) != Some(&SlotKind::Type) {
            return Err(RealizeError::NoSuchName {
                name: format!("_types[{i}]"),
            });
        }
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        let built = self.build(i);
        let laid_out = self.drain_layouts();
        self.finish()?;
        let s = built?;
        laid_out?;
        Ok((s.node, s.func))
    }

    /// Checks the arrays whose size could only be known after the layouts.
    fn finish(&mut self) -> Result<(), RealizeError> {
        for i in std::mem::take(&mut self.unchecked) {
            if let Some(s) = &self.slots[i] {
                if checked_size(&s.node).is_err() && self.poisoned.is_none() {
                    self.poisoned = Some(RealizeError::TooLarge { slot: i });
                }
            }
        }
        match &self.poisoned {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// A value type: not a function type, not void.
    fn value_of(s: &SlotType, i: usize) -> Result<TypeRef, RealizeError> {
        if s.func {
            return Err(RealizeError::FunctionType { slot: i });
        }
        if matches!(s.node.kind, Kind::Void) {
            return Err(RealizeError::VoidValue { slot: i });
        }
        Ok(s.node.clone())
    }

    fn public_value(&mut self, i: usize) -> Result<TypeRef, RealizeError> {
        let (node, func) = self.slot(i)?;
        Self::value_of(&SlotType { node, func }, i)
    }

    fn value_slot(&mut self, i: usize) -> Result<TypeRef, RealizeError> {
        let s = self.build(i)?;
        Self::value_of(&s, i)
    }

    /// The slots slot `i` is built from (structs have none: their fields come later).
    fn deps(&self, i: usize, out: &mut Vec<usize>) {
        let t = &self.module.tables;
        let w = t.types[i];
        let arg = word_arg(w) as usize;
        match Op::from_u8(word_op(w)) {
            Some(Op::Pointer | Op::Array | Op::OpenArray | Op::Noop) => out.push(arg),
            Some(Op::Typename) => out.push(t.typenames[arg].type_index as usize),
            Some(Op::Function) => {
                out.push(arg);
                out.extend(self.module.params(i).0);
            }
            _ => {}
        }
    }

    /// Builds slot `i` and what it needs, with an explicit stack (tables may nest
    /// types deeply; the stack of the calling thread may be small). Structs met on the
    /// way get their node at once and their layout in `drain_layouts`.
    fn build(&mut self, i: usize) -> Result<SlotType, RealizeError> {
        if let Some(s) = &self.slots[i] {
            return Ok(s.clone());
        }
        let mut stack = vec![i];
        let mut deps = Vec::new();
        while let Some(&top) = stack.last() {
            if self.slots[top].is_some() {
                stack.pop();
                continue;
            }
            deps.clear();
            self.deps(top, &mut deps);
            if let Some(&missing) = deps.iter().find(|d| self.slots[**d].is_none()) {
                // Validation rejected cycles, so this ends; the bound is cffi's.
                if stack.len() >= MAX_DEPTH {
                    return Err(RealizeError::TooDeep { slot: missing });
                }
                stack.push(missing);
                continue;
            }
            let depth = 1 + deps.iter().map(|d| self.depth[*d]).max().unwrap_or(0);
            if depth > MAX_DEPTH as u32 {
                return Err(RealizeError::TooDeep { slot: top });
            }
            let s = self.build_one(top)?;
            self.depth[top] = depth;
            self.slots[top] = Some(s);
            stack.pop();
        }
        Ok(self.slots[i].clone().expect("built above"))
    }

    /// Builds slot `i` from its already built dependencies.
    fn build_one(&mut self, i: usize) -> Result<SlotType, RealizeError> {
        let m = self.module.clone();
        let w = m.tables.types[i];
        let arg = word_arg(w);
        let dep = |r: &Self, j: usize| r.slots[j].clone().expect("dependencies are built first");
        let plain = |node: TypeRef| Ok(SlotType { node, func: false });
        // Validation has checked every opcode and index used below.
        match Op::from_u8(word_op(w)) {
            Some(Op::Primitive) => match PRIMS[arg as usize] {
                None => plain(self.table.void()),
                Some(p) => plain(self.table.prim(p)),
            },
            Some(Op::Pointer) => {
                let t = dep(self, arg as usize);
                if t.func {
                    plain(t.node)
                } else {
                    plain(self.table.pointer(&t.node))
                }
            }
            Some(Op::Array) => {
                let item = Self::value_of(&dep(self, arg as usize), arg as usize)?;
                let len = m.tables.types[i + 1] as usize;
                match checked_size(&item) {
                    Err(()) => return Err(RealizeError::TooLarge { slot: i }),
                    Ok(Some(s)) if s.checked_mul(len).is_none_or(|t| t > MAX_SIZE) => {
                        return Err(RealizeError::TooLarge { slot: i })
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => self.unchecked.push(i),
                }
                plain(self.table.array(&item, Some(len)))
            }
            Some(Op::OpenArray) => {
                let item = Self::value_of(&dep(self, arg as usize), arg as usize)?;
                plain(self.table.array(&item, None))
            }
            Some(Op::StructUnion) => plain(self.create_struct(arg as usize)?),
            Some(Op::Enum) => plain(self.enum_at(arg as usize)?),
            Some(Op::Function) => {
                let result = dep(self, arg as usize);
                if result.func {
                    return Err(RealizeError::FunctionType { slot: arg as usize });
                }
                let (params, end) = m.params(i);
                let mut args = Vec::with_capacity(params.len());
                for p in params {
                    let mut t = Self::value_of(&dep(self, p), p)?;
                    // Parameters decay, as in a C declaration.
                    if let Kind::Array(item, _) = &t.kind {
                        let item = item.clone();
                        t = self.table.pointer(&item);
                    }
                    args.push(t);
                }
                // The stdcall bit only means something on 32-bit Windows; cffi ignores
                // it elsewhere.
                let variadic = word_arg(m.tables.types[end]) & END_VARIADIC != 0;
                Ok(SlotType {
                    node: self.table.func_ptr(args, &result.node, variadic),
                    func: true,
                })
            }
            Some(Op::Noop) => Ok(dep(self, arg as usize)),
            Some(Op::Typename) => Ok(dep(
                self,
                m.tables.typenames[arg as usize].type_index as usize,
            )),
            _ => unreachable!("validated: only type opcodes at type slots"),
        }
    }

    /// The record of `_struct_unions[idx]`, laid out (unless opaque).
    pub fn struct_at(&mut self, idx: usize) -> Result<TypeRef, RealizeError> {
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        if idx >= self.structs.len() {
            return Err(RealizeError::NoSuchName {
                name: format!("_struct_unions[{idx}]"),
            });
        }
        let node = self.create_struct(idx);
        let laid_out = self.drain_layouts();
        self.finish()?;
        let node = node?;
        laid_out?;
        if let Some(e) = self.failed.get(&idx) {
            return Err(e.clone());
        }
        Ok(node)
    }

    /// The node of `_struct_unions[idx]`; its layout is queued.
    fn create_struct(&mut self, idx: usize) -> Result<TypeRef, RealizeError> {
        if let Some(t) = &self.structs[idx] {
            return Ok(t.clone());
        }
        let m = self.module.clone();
        let e = &m.tables.struct_unions[idx];
        let kw = if e.is_union() { "union" } else { "struct" };
        let (cname, tag) = names_of(kw, &e.name);
        if e.is_external() {
            let Some(rec) = self.find_external(&e.name, e.is_union(), 0, &cname)? else {
                return Err(RealizeError::NotInIncludes { cname });
            };
            let node = self.table.adopt_record(&rec);
            self.structs[idx] = Some(node.clone());
            return Ok(node);
        }
        let node = self.table.new_record(e.is_union(), tag, cname);
        if let Kind::Record(r) = &node.kind {
            self.record_index.insert(r.id, idx);
        }
        self.structs[idx] = Some(node.clone());
        if !e.is_opaque() {
            self.pending.push(idx);
        }
        Ok(node)
    }

    /// Lays out every queued struct, by-value members first (explicit stack again).
    fn drain_layouts(&mut self) -> Result<(), RealizeError> {
        let mut first_err = None;
        while let Some(root) = self.pending.pop() {
            let mut stack = vec![root];
            while let Some(&idx) = stack.last() {
                let node = self.structs[idx]
                    .clone()
                    .expect("queued structs have nodes");
                let Kind::Record(rec) = &node.kind else {
                    unreachable!("struct entries are records")
                };
                if rec.layout.get().is_some() {
                    stack.pop();
                    continue;
                }
                let m = self.module.clone();
                let e = &m.tables.struct_unions[idx];
                let members = match self.members(e, &rec.cname) {
                    Ok(members) => members,
                    Err(err) => {
                        let _ = rec.layout.set(Err(err.to_string()));
                        self.failed.insert(idx, err.clone());
                        first_err.get_or_insert(err);
                        stack.pop();
                        continue;
                    }
                };
                // Members embedded by value must be laid out first.
                let waiting = members.iter().find_map(|mspec| {
                    let mut t = &mspec.ty;
                    while let Kind::Array(item, _) = &t.kind {
                        t = item;
                    }
                    match &t.kind {
                        Kind::Record(r) if r.layout.get().is_none() => self
                            .record_index
                            .get(&r.id)
                            .copied()
                            .filter(|j| !m.tables.struct_unions[*j].is_opaque()),
                        _ => None,
                    }
                });
                if let Some(j) = waiting {
                    if stack.contains(&j) || stack.len() > self.structs.len() {
                        // Validation rejects by-value cycles; this is a guard.
                        let err = RealizeError::Layout {
                            name: rec.cname.clone(),
                            message: "contains itself by value".into(),
                        };
                        let _ = rec.layout.set(Err(err.to_string()));
                        first_err.get_or_insert(err);
                        stack.pop();
                    } else {
                        stack.push(j);
                    }
                    continue;
                }
                let packing = Packing {
                    packed: e.flags & F_PACKED != 0,
                    pack: None,
                };
                let layout = layout_record(
                    &rec.cname,
                    e.is_union(),
                    &members,
                    false,
                    packing,
                    &self.table.target,
                );
                if let Err(message) = &layout {
                    let err = RealizeError::Layout {
                        name: rec.cname.clone(),
                        message: message.clone(),
                    };
                    self.failed.insert(idx, err.clone());
                    first_err.get_or_insert(err);
                }
                let _ = rec.layout.set(layout);
                stack.pop();
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn members(&mut self, e: &StructEntry, cname: &str) -> Result<Vec<MemberSpec>, RealizeError> {
        let mut members = Vec::with_capacity(e.fields.len());
        let mut total: usize = 0;
        for (j, f) in e.fields.iter().enumerate() {
            let ty = self.value_slot(f.slot as usize)?;
            if f.name.is_empty() && f.bits.is_none() && !matches!(ty.kind, Kind::Record(_)) {
                return Err(RealizeError::BadField {
                    owner: cname.to_string(),
                    index: j,
                    why: "an unnamed field must be a struct or union",
                });
            }
            let size = checked_size(&ty).map_err(|()| RealizeError::TooLarge {
                slot: f.slot as usize,
            })?;
            total = total.saturating_add(size.unwrap_or(0));
            if total > MAX_SIZE {
                return Err(RealizeError::TooLarge {
                    slot: f.slot as usize,
                });
            }
            members.push(MemberSpec {
                name: (!f.name.is_empty()).then(|| f.name.clone()),
                ty,
                bits: f.bits.map(i128::from),
            });
        }
        Ok(members)
    }

    /// Looks an `F_EXTERNAL` entry up in the included modules, in order.
    fn find_external(
        &mut self,
        name: &str,
        is_union: bool,
        depth: usize,
        cname: &str,
    ) -> Result<Option<Arc<Record>>, RealizeError> {
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(RealizeError::IncludeDepth {
                cname: cname.to_string(),
            });
        }
        for inc in &self.includes {
            // An include is made before the module that includes it, so the includes
            // form no cycle and these locks are always taken newer module first: waiting
            // here (for another thread realizing that module) cannot deadlock.
            let mut other = inc.lock().unwrap_or_else(|p| p.into_inner());
            let Some(i) = other.module.struct_index(name) else {
                continue;
            };
            let e = &other.module.tables.struct_unions[i];
            if e.is_external() {
                if let Some(r) = other.find_external(name, is_union, depth + 1, cname)? {
                    return Ok(Some(r));
                }
                continue;
            }
            if e.is_union() != is_union {
                continue;
            }
            let node = other.struct_at(i)?;
            if let Kind::Record(r) = &node.kind {
                return Ok(Some(r.clone()));
            }
        }
        Ok(None)
    }

    pub fn enum_at(&mut self, idx: usize) -> Result<TypeRef, RealizeError> {
        if let Some(Some(t)) = self.enums.get(idx) {
            return Ok(t.clone());
        }
        if idx >= self.enums.len() {
            return Err(RealizeError::NoSuchName {
                name: format!("_enums[{idx}]"),
            });
        }
        let m = self.module.clone();
        let e = &m.tables.enums[idx];
        let (cname, tag) = names_of("enum", &e.name);
        let mut items = Vec::with_capacity(e.enumerators.len());
        for item in &e.enumerators {
            let value = match m.global_index(item).map(|g| &m.tables.globals[g].kind) {
                Some(GlobalKind::Enumerator { value }) => *value,
                _ => unreachable!("validated: every enumerator is in _globals"),
            };
            items.push((item.clone(), value));
        }
        let node = self
            .table
            .new_enum(tag, cname, items, enum_underlying(e.prim), false);
        self.enums[idx] = Some(node.clone());
        Ok(node)
    }

    /// A typedef: its type and whether it names a function type.
    pub fn typename(&mut self, name: &str) -> Result<Option<(TypeRef, bool)>, RealizeError> {
        let Some(i) = self.module.typename_index(name) else {
            return Ok(None);
        };
        let slot = self.module.tables.typenames[i].type_index as usize;
        self.slot(slot).map(Some)
    }

    /// `struct <tag>` / `union <tag>` (tag as written; `None` if absent or the other
    /// kind).
    pub fn record(&mut self, tag: &str, is_union: bool) -> Result<Option<TypeRef>, RealizeError> {
        match self.module.struct_index(tag) {
            Some(i) if self.module.tables.struct_unions[i].is_union() == is_union => {
                self.struct_at(i).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// `FILE`: the module's `_IO_FILE` entry, or else one opaque record of its own.
    pub fn file_type(&mut self) -> Result<TypeRef, RealizeError> {
        if let Some(i) = self.module.struct_index("_IO_FILE") {
            return self.struct_at(i);
        }
        if let Some(t) = &self.file {
            return Ok(t.clone());
        }
        let t = self.table.new_record(false, None, "FILE".to_string());
        self.file = Some(t.clone());
        Ok(t)
    }

    pub fn enum_tag(&mut self, tag: &str) -> Result<Option<TypeRef>, RealizeError> {
        match self.module.enum_index(tag) {
            Some(i) => self.enum_at(i).map(Some),
            None => Ok(None),
        }
    }

    /// A `lib` name, as the in-line model declares it. `DLOPEN_CONST` (`static const T
    /// x;`, `const T x;`) is a read-only variable read from the library.
    pub fn global(&mut self, name: &str) -> Result<Option<Decl>, RealizeError> {
        let Some(gi) = self.module.global_index(name) else {
            return Ok(None);
        };
        self.global_at(gi).map(Some)
    }

    fn global_at(&mut self, gi: usize) -> Result<Decl, RealizeError> {
        let kind = self.module.tables.globals[gi].kind;
        Ok(match kind {
            GlobalKind::Function { slot } => Decl::Function(self.slot(slot as usize)?.0),
            GlobalKind::Variable { slot } => Decl::Variable {
                ty: self.public_value(slot as usize)?,
                is_const: false,
            },
            GlobalKind::Constant { slot } => Decl::Variable {
                ty: self.public_value(slot as usize)?,
                is_const: true,
            },
            GlobalKind::IntConstant { value } => Decl::IntConstant { value, ty: None },
            GlobalKind::Enumerator { value } => {
                let owner = self.enumerator_owner[&gi];
                Decl::IntConstant {
                    value,
                    ty: Some(self.enum_at(owner)?),
                }
            }
        })
    }

    /// Everything, as the in-line cdef would have declared it, plus the names of the
    /// typedefs that name function types (`typedef int fn_t(int);`).
    pub fn declarations(&mut self) -> Result<(Declarations, Vec<String>), RealizeError> {
        let m = self.module.clone();
        let mut d = Declarations::default();
        let mut fn_typedefs = Vec::new();
        for t in &m.tables.typenames {
            let (node, func) = self.slot(t.type_index as usize)?;
            if func {
                fn_typedefs.push(t.name.clone());
            } else {
                d.typedefs.insert(t.name.clone(), node);
            }
        }
        for (i, e) in m.tables.struct_unions.iter().enumerate() {
            let node = self.struct_at(i)?;
            if e.name.starts_with('$') || e.name == "_IO_FILE" {
                continue;
            }
            let map = if e.is_union() {
                &mut d.unions
            } else {
                &mut d.structs
            };
            map.insert(e.name.clone(), node);
        }
        for (i, e) in m.tables.enums.iter().enumerate() {
            let node = self.enum_at(i)?;
            if !e.name.starts_with('$') {
                d.enums.insert(e.name.clone(), node);
            }
        }
        for (gi, g) in m.tables.globals.iter().enumerate() {
            let decl = self.global_at(gi)?;
            d.names.insert(g.name.clone(), decl);
            d.order.push(g.name.clone());
        }
        Ok((d, fn_typedefs))
    }

    /// Sorted typedef, struct and union names, as cffi's compiled `ffi.list_types()`
    /// gives them: names with `$` are cffi's internal ones and hidden; `FILE` and
    /// `_IO_FILE` show when the module uses them.
    pub fn list_types(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let t = &self.module.tables;
        let typedefs = t.typenames.iter().map(|e| e.name.clone()).collect();
        let visible = |u: bool| {
            t.struct_unions
                .iter()
                .filter(|e| e.is_union() == u && !e.name.starts_with('$'))
                .map(|e| e.name.clone())
                .collect()
        };
        (typedefs, visible(false), visible(true))
    }
}

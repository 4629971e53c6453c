//! Writing the tables of a namespace (what an FFI declared through `cdef`) as cffi's
//! ABI-mode writer does: the same slot order, the same table order, so the same
//! declarations give the same bytes as cffi's `emit_python_code`.
//!
//! The writer's order: every reachable type sorted by its C name in angle brackets;
//! first each function type's FUNCTION, parameter and END slots (a parameter type
//! without a slot yet takes that one as its own), then one slot per remaining type (two
//! for a sized array); struct and enum indexes by table name; globals and typenames by
//! name.
//!
//! What the type model does not keep, this cannot write: qualifiers inside types
//! (`const char *` is written as `char *`, which realizes the same but may sort
//! elsewhere than in cffi's output), and the declared member list of a struct, which is
//! recovered from its layout (anonymous members are recognized; a struct whose layout
//! the recovered members do not reproduce, e.g. with unnamed bitfields, is refused
//! rather than written wrong).

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use super::error::EncodeError;
use super::members::{recover, Member};
use super::tables::*;
use crate::cdef::{ErrorDetail, ErrorKind, Namespace};
use crate::types::decls::Decl;
use crate::types::layout::MemberSpec;
use crate::types::model::{Kind, Prim, TypeRef};
use crate::types::target::Target;

/// A type as cffi's writer distinguishes them: a node, or the function type of a
/// function-pointer node (`raw`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Key {
    id: u32,
    raw: bool,
}

struct Collector {
    target: Target,
    /// Ids of the records that come from included namespaces.
    external: HashSet<u32>,
    nodes: HashMap<u32, TypeRef>,
    seen: HashMap<Key, ()>,
    order: Vec<Key>,
    members: HashMap<u32, Vec<Member>>,
    /// The members of the namespace's records as declared (by record id).
    declared: HashMap<u32, Vec<MemberSpec>>,
    /// Anonymous records (`struct $N`), candidates for anonymous members.
    anonymous: Vec<(u32, TypeRef)>,
}

/// cffi's C name with the declarator position marked by `&`.
/// `forced`: cffi names a tagged struct, union or enum after the first typedef that
/// names it directly (`typedef struct pt pt_t;` makes its C name `pt_t`).
fn c_marker(ty: &TypeRef, raw: bool, forced: &Names) -> String {
    match &ty.kind {
        Kind::Void => "void&".to_string(),
        Kind::Prim(p) => match p.prim {
            Prim::FloatComplex => "_cffi_float_complex_t&".to_string(),
            Prim::DoubleComplex => "_cffi_double_complex_t&".to_string(),
            other => format!("{}&", other.name()),
        },
        Kind::Pointer(_) if forced.contains_key(&ty.id) => format!("{}&", forced[&ty.id]),
        Kind::Pointer(item) => {
            let extra = if matches!(item.kind, Kind::Array(..)) {
                "(*&)"
            } else {
                " *&"
            };
            c_marker(item, false, forced).replacen('&', extra, 1)
        }
        Kind::Array(item, len) => {
            let brackets = match len {
                Some(n) => format!("&[{n}]"),
                None => "&[]".to_string(),
            };
            c_marker(item, false, forced).replacen('&', &brackets, 1)
        }
        Kind::Record(r) => format!("{}&", forced.get(&ty.id).unwrap_or(&r.cname)),
        Kind::Enum(e) => format!("{}&", forced.get(&ty.id).unwrap_or(&e.cname)),
        Kind::FuncPtr(sig) => {
            let mut args: Vec<String> = sig
                .args
                .iter()
                .map(|a| c_marker(a, false, forced).replacen('&', "", 1))
                .collect();
            if sig.variadic {
                args.push("...".to_string());
            }
            if args.is_empty() {
                args.push("void".to_string());
            }
            let pattern = if raw { "(&)(" } else { "(*&)(" };
            let with = format!("{pattern}{})", args.join(", "));
            c_marker(&sig.result, false, forced).replacen('&', &with, 1)
        }
    }
}

type Names = HashMap<u32, String>;

fn sort_key(ty: &TypeRef, raw: bool, forced: &Names) -> String {
    format!("<{}>", c_marker(ty, raw, forced).replacen('&', "", 1))
}

/// The `_struct_unions` name of a record.
fn record_table_name(cname: &str, tag: Option<&str>) -> String {
    if let Some(t) = tag {
        return t.to_string();
    }
    if cname == "FILE" {
        return "_IO_FILE".to_string();
    }
    for kw in ["struct $", "union $"] {
        if let Some(rest) = cname.strip_prefix(kw) {
            return format!("${rest}");
        }
    }
    format!("${cname}")
}

fn enum_table_name(cname: &str, tag: Option<&str>) -> String {
    if let Some(t) = tag {
        return t.to_string();
    }
    match cname.strip_prefix("enum $") {
        Some(rest) => format!("${rest}"),
        None => format!("${cname}"),
    }
}

fn is_anonymous_cname(cname: &str) -> bool {
    ["struct $", "union $"].iter().any(|kw| {
        cname
            .strip_prefix(kw)
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|c| c.is_ascii_digit()))
    })
}

impl Collector {
    fn collect(&mut self, ty: &TypeRef, raw: bool) -> Result<(), EncodeError> {
        let key = Key { id: ty.id, raw };
        if self.seen.contains_key(&key) {
            return Ok(());
        }
        self.seen.insert(key, ());
        self.order.push(key);
        self.nodes.insert(ty.id, ty.clone());
        match &ty.kind {
            Kind::Pointer(item) | Kind::Array(item, _) => {
                if let Kind::Array(_, Some(n)) = &ty.kind {
                    if *n >= 1 << 31 {
                        return Err(EncodeError::ArrayTooLong { length: *n });
                    }
                }
                self.collect(item, false)?
            }
            Kind::FuncPtr(sig) => {
                if !raw {
                    self.collect(ty, true)?;
                }
                for a in &sig.args {
                    self.collect(a, false)?;
                }
                self.collect(&sig.result, false)?;
            }
            Kind::Record(r) => {
                if self.external.contains(&r.id) {
                    // Laid out by the module that declared it.
                    return Ok(());
                }
                let members = self.members_of(ty)?;
                let types: Vec<TypeRef> = members.iter().map(|m| m.ty.clone()).collect();
                self.members.insert(ty.id, members);
                for t in types {
                    self.collect(&t, false)?;
                }
            }
            Kind::Enum(e) => {
                if e.partial {
                    return Err(EncodeError::PartialEnum {
                        cname: e.cname.clone(),
                    });
                }
            }
            Kind::Void | Kind::Prim(_) => {}
        }
        Ok(())
    }

    /// The declared members of a record, recovered from its layout.
    fn members_of(&self, ty: &TypeRef) -> Result<Vec<Member>, EncodeError> {
        let declared = match &ty.kind {
            Kind::Record(r) => self.declared.get(&r.id).map(|v| v.as_slice()),
            _ => None,
        };
        recover(ty, &self.anonymous, declared, &self.target)
    }
}

/// The tables cffi's ABI-mode writer produces for what `ns` declared.
pub fn encode(ns: &mut Namespace) -> Result<Tables, EncodeError> {
    encode_with_includes(ns, &[])
}

/// The same for a namespace that `include()`d `included` (in that order): their
/// records become `F_EXTERNAL` entries, their typedefs and enums are copied, their
/// constants and functions are left to them.
pub fn encode_with_includes(
    ns: &mut Namespace,
    included: &[&Namespace],
) -> Result<Tables, EncodeError> {
    let mut external = HashSet::default();
    let mut included_names = HashSet::default();
    for inc in included {
        for i in 0..inc.table.len() {
            if let Kind::Record(r) = &inc.table.get(i as u32).kind {
                external.insert(r.id);
            }
        }
        included_names.extend(inc.decls.names.keys().cloned());
    }
    let mut c = Collector {
        target: ns.target(),
        external,
        nodes: HashMap::default(),
        seen: HashMap::default(),
        order: Vec::new(),
        members: HashMap::default(),
        declared: ns.declared_members.clone(),
        anonymous: Vec::new(),
    };
    // Anonymous records some type or declaration refers to are not anonymous members
    // (those are only reachable flattened into their parent).
    let mut referenced: HashSet<u32> = HashSet::default();
    for i in 0..ns.table.len() {
        match &ns.table.get(i as u32).kind {
            Kind::Pointer(item) | Kind::Array(item, _) => {
                referenced.insert(item.id);
            }
            Kind::FuncPtr(sig) => {
                referenced.extend(sig.args.iter().map(|a| a.id));
                referenced.insert(sig.result.id);
            }
            Kind::Record(r) => {
                if let Some(Ok(l)) = r.layout.get() {
                    referenced.extend(l.fields.iter().map(|f| f.ty.id));
                }
            }
            _ => {}
        }
    }
    referenced.extend(ns.decls.typedefs.values().map(|t| t.id));
    for d in ns.decls.names.values() {
        match d {
            Decl::Function(t) | Decl::ExternPython(t) | Decl::Variable { ty: t, .. } => {
                referenced.insert(t.id);
            }
            Decl::IntConstant { ty: Some(t), .. } | Decl::UnknownConstant { ty: Some(t) } => {
                referenced.insert(t.id);
            }
            _ => {}
        }
    }
    for i in 0..ns.table.len() {
        let node = ns.table.get(i as u32).clone();
        if referenced.contains(&node.id) {
            continue;
        }
        if let Kind::Record(r) = &node.kind {
            if r.tag.is_none() && is_anonymous_cname(&r.cname) {
                let n: u32 = r
                    .cname
                    .rsplit('$')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(u32::MAX);
                c.anonymous.push((n, node.clone()));
            }
        }
    }
    c.anonymous.sort_by_key(|(n, _)| *n);

    // Typedefs, including those of function types and of unknown sizes (which only the
    // list of type names has).
    let mut typedefs: Vec<(String, TypeRef, bool)> = Vec::new();
    for name in ns.list_types().0 {
        if let Some(t) = ns.decls.typedefs.get(&name) {
            typedefs.push((name, t.clone(), false));
            continue;
        }
        match ns.parse_type(&name) {
            Ok(t) => typedefs.push((name, t, false)),
            Err(e) if matches!(e.detail, Some(ErrorDetail::FunctionType)) => {
                let t = ns
                    .parse_type(&format!("{name} *"))
                    .map_err(|_| EncodeError::UnknownNumType { name: name.clone() })?;
                typedefs.push((name, t, true));
            }
            Err(e) if e.kind == ErrorKind::NotImplemented => {
                return Err(EncodeError::UnknownNumType { name })
            }
            Err(_) => return Err(EncodeError::UnknownNumType { name }),
        }
    }
    for (_, t, raw) in &typedefs {
        c.collect(t, *raw)?;
    }
    let mut tagged: Vec<(&String, &TypeRef)> = ns
        .decls
        .structs
        .iter()
        .chain(ns.decls.unions.iter())
        .chain(ns.decls.enums.iter())
        .collect();
    tagged.sort_by(|a, b| a.0.cmp(b.0));
    for (_, t) in tagged {
        c.collect(t, false)?;
    }

    // Which typedef names each tagged type. The model keeps typedefs unordered and does
    // not tell `typedef struct pt a;` from `typedef pt_t a;`: with several candidates
    // the first by name is taken, which may differ from cffi's choice (its output then
    // sorts some slots differently, and reads the same).
    let mut forced: Names = HashMap::default();
    for (name, t, raw) in &typedefs {
        let tagged = match &t.kind {
            Kind::Record(r) => r.tag.is_some(),
            Kind::Enum(e) => e.tag.is_some(),
            _ => false,
        };
        // `typedef struct { .. } *foo_p;`: cffi names that pointer type `foo_p`.
        let named_pointer = match &t.kind {
            Kind::Pointer(item) => match &item.kind {
                Kind::Record(r) => r.tag.is_none() && is_anonymous_cname(&r.cname),
                Kind::Enum(e) => e.tag.is_none() && is_anonymous_cname(&e.cname),
                _ => false,
            },
            _ => false,
        };
        if (tagged || named_pointer) && !raw {
            let e = forced.entry(t.id).or_insert_with(|| name.clone());
            if name < e {
                *e = name.clone();
            }
        }
    }

    let mut globals: Vec<Global> = Vec::new();
    let mut names: Vec<(&String, &Decl)> = ns.decls.names.iter().collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    // Globals refer to slots assigned later: remember the type and fill in the slot.
    let mut pending: Vec<(usize, Key)> = Vec::new();
    for (name, d) in names {
        if included_names.contains(name) {
            // An included enum's enumerators are written with the enum (when the enum
            // itself is, i.e. it is not anonymous); other included names are not.
            let keep = matches!(d, Decl::IntConstant { ty: Some(t), .. }
                if matches!(t.kind, Kind::Enum(_)) && c.seen.contains_key(&Key { id: t.id, raw: false }));
            if !keep {
                continue;
            }
        }
        let slot_global = |kind: GlobalKind| Global {
            name: name.clone(),
            kind,
        };
        match d {
            Decl::Function(t) => {
                c.collect(t, true)?;
                pending.push((
                    globals.len(),
                    Key {
                        id: t.id,
                        raw: true,
                    },
                ));
                globals.push(slot_global(GlobalKind::Function { slot: 0 }));
            }
            Decl::Variable { ty, is_const } => {
                c.collect(ty, false)?;
                pending.push((
                    globals.len(),
                    Key {
                        id: ty.id,
                        raw: false,
                    },
                ));
                let is_array = matches!(ty.kind, Kind::Array(..));
                let kind = if *is_const && !is_array {
                    GlobalKind::Constant { slot: 0 }
                } else {
                    GlobalKind::Variable { slot: 0 }
                };
                globals.push(slot_global(kind));
            }
            Decl::IntConstant { value, ty } => match ty {
                Some(t) if matches!(t.kind, Kind::Enum(_)) => {
                    c.collect(t, false)?;
                    globals.push(slot_global(GlobalKind::Enumerator { value: *value }));
                }
                _ => globals.push(slot_global(GlobalKind::IntConstant { value: *value })),
            },
            Decl::UnknownConstant { ty } => match ty {
                Some(t) if matches!(t.kind, Kind::Enum(_)) => {
                    return Err(EncodeError::PartialEnum { cname: t.cname() });
                }
                Some(t) => {
                    c.collect(t, false)?;
                    pending.push((
                        globals.len(),
                        Key {
                            id: t.id,
                            raw: false,
                        },
                    ));
                    globals.push(slot_global(GlobalKind::Constant { slot: 0 }));
                }
                None => return Err(EncodeError::UnknownConstant { name: name.clone() }),
            },
            Decl::ExternPython(_) => return Err(EncodeError::ExternPython { name: name.clone() }),
        }
    }

    // Slot assignment, in the writer's order.
    let mut all: Vec<(String, Key)> = c
        .order
        .iter()
        .map(|k| (sort_key(&c.nodes[&k.id], k.raw, &forced), *k))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut index: HashMap<Key, usize> = HashMap::default();
    let mut slots: Vec<Option<Key>> = Vec::new();
    for (_, k) in &all {
        if !k.raw {
            continue;
        }
        index.insert(*k, slots.len());
        slots.push(Some(*k));
        let Kind::FuncPtr(sig) = &c.nodes[&k.id].kind else {
            unreachable!("raw keys are functions")
        };
        for a in &sig.args {
            let ak = Key {
                id: a.id,
                raw: false,
            };
            index.entry(ak).or_insert(slots.len());
            slots.push(None);
        }
        slots.push(None);
    }
    for (_, k) in &all {
        if k.raw || index.contains_key(k) {
            continue;
        }
        index.insert(*k, slots.len());
        slots.push(Some(*k));
        if matches!(c.nodes[&k.id].kind, Kind::Array(_, Some(_))) {
            slots.push(None);
        }
    }
    if slots.len() >= 1 << 23 {
        return Err(EncodeError::TooMany);
    }

    // Struct and enum indexes, by table name.
    let mut records: Vec<(String, Key)> = Vec::new();
    let mut enums: Vec<(String, Key)> = Vec::new();
    for (_, k) in &all {
        match &c.nodes[&k.id].kind {
            Kind::Record(r) if !k.raw => {
                records.push((record_table_name(&r.cname, r.tag.as_deref()), *k))
            }
            Kind::Enum(e) if !k.raw => {
                enums.push((enum_table_name(&e.cname, e.tag.as_deref()), *k))
            }
            _ => {}
        }
    }
    records.sort_by(|a, b| a.0.cmp(&b.0));
    enums.sort_by(|a, b| a.0.cmp(&b.0));
    let record_index: HashMap<u32, usize> = records
        .iter()
        .enumerate()
        .map(|(i, (_, k))| (k.id, i))
        .collect();
    let enum_index: HashMap<u32, usize> = enums
        .iter()
        .enumerate()
        .map(|(i, (_, k))| (k.id, i))
        .collect();

    // Emit.
    let mut types = vec![0u32; slots.len()];
    let slot_of = |t: &TypeRef, raw: bool| index[&Key { id: t.id, raw }] as i32;
    for (_, k) in &all {
        let at = index[k];
        let node = &c.nodes[&k.id];
        types[at] = match &node.kind {
            Kind::Void => word(Op::Primitive, PRIM_VOID),
            Kind::Prim(p) => word(Op::Primitive, prim_index(p.prim)),
            Kind::Pointer(item) => word(Op::Pointer, slot_of(item, false)),
            Kind::Array(item, len) => match len {
                None => word(Op::OpenArray, slot_of(item, false)),
                Some(n) => {
                    types[at + 1] = *n as u32;
                    word(Op::Array, slot_of(item, false))
                }
            },
            Kind::Record(_) => word(Op::StructUnion, record_index[&k.id] as i32),
            Kind::Enum(_) => word(Op::Enum, enum_index[&k.id] as i32),
            Kind::FuncPtr(_) if !k.raw => word(Op::Pointer, slot_of(node, true)),
            Kind::FuncPtr(sig) => {
                for (j, a) in sig.args.iter().enumerate() {
                    let p = at + 1 + j;
                    let real = slot_of(a, false) as usize;
                    if real != p {
                        types[p] = match &a.kind {
                            Kind::Prim(pi) => word(Op::Primitive, prim_index(pi.prim)),
                            _ => word(Op::Noop, real as i32),
                        };
                    }
                }
                types[at + 1 + sig.args.len()] = word(Op::FunctionEnd, i32::from(sig.variadic));
                word(Op::Function, slot_of(&sig.result, false))
            }
        };
    }

    for (gi, k) in pending {
        let s = index[&k] as u32;
        match &mut globals[gi].kind {
            GlobalKind::Function { slot }
            | GlobalKind::Variable { slot }
            | GlobalKind::Constant { slot } => *slot = s,
            _ => {}
        }
    }
    globals.sort_by(|a, b| a.name.cmp(&b.name));

    let mut struct_unions = Vec::with_capacity(records.len());
    for (name, k) in &records {
        let node = &c.nodes[&k.id];
        let Kind::Record(rec) = &node.kind else {
            unreachable!("records are records")
        };
        let mut flags = if rec.is_union { F_UNION } else { 0 };
        let mut fields = Vec::new();
        match rec.layout.get() {
            _ if c.external.contains(&rec.id) => {
                flags |= F_EXTERNAL;
                if rec.layout.get().is_none() {
                    flags |= F_OPAQUE;
                }
            }
            Some(Ok(l)) => {
                let members = &c.members[&k.id];
                let has_anonymous = members.iter().any(|m| m.name.is_none() && m.bits.is_none());
                if !l.partial && !has_anonymous {
                    flags |= F_CHECK_FIELDS;
                }
                if l.packed {
                    flags |= F_PACKED;
                }
                for m in members {
                    fields.push(FieldEntry {
                        name: m.name.clone().unwrap_or_default(),
                        slot: slot_of(&m.ty, false) as u32,
                        bits: m.bits,
                    });
                }
            }
            _ => flags |= F_OPAQUE,
        }
        struct_unions.push(StructEntry {
            name: name.clone(),
            type_index: index[k] as u32,
            flags,
            fields,
        });
    }

    let mut enum_entries = Vec::with_capacity(enums.len());
    for (name, k) in &enums {
        let Kind::Enum(e) = &c.nodes[&k.id].kind else {
            unreachable!("enums are enums")
        };
        let info = e.underlying_info();
        let prim = enum_prim_index(info.size, info.signed).unwrap_or(PRIM_UINT32);
        let enumerators = e.items.iter().map(|(n, _)| n.clone()).collect();
        enum_entries.push(EnumEntry {
            name: name.clone(),
            type_index: index[k] as u32,
            prim,
            enumerators,
        });
    }

    let mut typenames: Vec<TypenameEntry> = typedefs
        .iter()
        .map(|(name, t, raw)| TypenameEntry {
            name: name.clone(),
            type_index: slot_of(t, *raw) as u32,
        })
        .collect();
    // cffi names the built-in FILE through a typedef whenever it is used.
    if let Some((_, k)) = records.iter().find(|(n, _)| n == "_IO_FILE") {
        if !typenames.iter().any(|t| t.name == "FILE") {
            typenames.push(TypenameEntry {
                name: "FILE".to_string(),
                type_index: index[k] as u32,
            });
        }
    }
    typenames.sort_by(|a, b| a.name.cmp(&b.name));

    Ok(Tables {
        types,
        globals,
        struct_unions,
        enums: enum_entries,
        typenames,
        num_includes: included.len(),
    })
}

//! Types from declaration specifiers: built-in keywords, typedef names, and struct,
//! union and enum specifiers with their bodies.

use pest::iterators::Pair;

use super::declare::declarators_with;
use super::{Resolver, Specs, Ty};
use crate::cdef::consteval::{self, Value};
use crate::cdef::parser::Rule;
use crate::cdef::{prim_from_keywords, CdefError, ErrorDetail, ErrorKind, PendingBody};
use crate::types::decls::Decl;
use crate::types::layout::{MemberSpec, Packing};
use crate::types::model::{Kind, Prim, TypeRef};

impl<'a> Resolver<'a> {
    pub(super) fn resolve_decl_specs(
        &mut self,
        pair: Pair<Rule>,
        typedef_hint: Option<&str>,
    ) -> Result<Specs, CdefError> {
        let mut specs = Specs {
            base: Ty::plain(self.ns.void()),
            is_typedef: false,
            is_static: false,
            is_const: false,
            unknown_num: None,
            declares_tag: false,
            anonymous_record: false,
        };
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::qual => match p.as_str().trim_end() {
                    "typedef" => specs.is_typedef = true,
                    "static" => specs.is_static = true,
                    "const" => specs.is_const = true,
                    _ => {}
                },
                Rule::builtin_type => {
                    let mut words: [&str; 8] = [""; 8];
                    let mut nwords = 0;
                    let mut dots = false;
                    for w in p.clone().into_inner() {
                        match w.as_rule() {
                            Rule::builtin_kw => {
                                if nwords < words.len() {
                                    words[nwords] = w.as_str().trim_end();
                                }
                                nwords += 1;
                            }
                            Rule::qual => {
                                let w = w.as_str().trim_end();
                                if w == "const" {
                                    specs.is_const = true
                                } else if w == "typedef" {
                                    specs.is_typedef = true
                                } else if w == "static" {
                                    specs.is_static = true
                                }
                            }
                            Rule::int_dots => dots = true,
                            _ => {}
                        }
                    }
                    if nwords > words.len() {
                        return Err(self.error(
                            ErrorKind::FFI,
                            p.as_span().start(),
                            format!("Unsupported type: '{}'", p.as_str().trim_end()),
                        ));
                    }
                    let prim = prim_from_keywords(&words[..nwords])
                        .map_err(|m| self.error(ErrorKind::FFI, p.as_span().start(), m))?;
                    specs.base = Ty::plain(match prim {
                        Some(prim) => self.ns.prim(prim),
                        None => self.ns.void(),
                    });
                    if dots {
                        let is_float =
                            matches!(prim, Some(Prim::Float | Prim::Double | Prim::LongDouble));
                        specs.unknown_num = Some(is_float);
                    }
                }
                Rule::typedef_name => specs.base = self.typedef_name(&p)?,
                Rule::dots_type => {
                    // `typedef ... t;`: an opaque type of unknown layout.
                    let cname = match typedef_hint {
                        Some(n) => n.to_string(),
                        None => self.anonymous_name("struct"),
                    };
                    specs.base = Ty::plain(self.ns.table.new_record(false, None, cname));
                }
                Rule::struct_spec => {
                    let (ty, anonymous) = self.struct_spec(p, typedef_hint)?;
                    specs.base = Ty::plain(ty);
                    specs.declares_tag = true;
                    specs.anonymous_record = anonymous;
                }
                Rule::enum_spec => {
                    specs.base = Ty::plain(self.enum_spec(p, typedef_hint)?);
                    specs.declares_tag = true;
                }
                _ => {}
            }
        }
        Ok(specs)
    }

    pub(super) fn anonymous_name(&mut self, kw: &str) -> String {
        self.ns.anon_counter += 1;
        format!("{kw} ${}", self.ns.anon_counter)
    }

    pub(super) fn typedef_name(&mut self, p: &Pair<Rule>) -> Result<Ty, CdefError> {
        let name = p.as_str();
        if let Some(t) = self.ns.decls.typedefs.get(name) {
            return Ok(Ty::plain(t.clone()));
        }
        if let Some(t) = self.ns.fn_typedefs.get(name) {
            return Ok(Ty {
                node: t.clone(),
                func: true,
            });
        }
        if let Some(is_float) = self.ns.unknown_num_typedefs.get(name) {
            let kind = if *is_float { "float" } else { "integer" };
            return Err(self.error(
                ErrorKind::NotImplemented,
                p.as_span().start(),
                format!("{kind} type '{name}' can only be used after compilation"),
            ));
        }
        if let Some(prim) = Prim::from_name(name) {
            return Ok(Ty::plain(self.ns.prim(prim)));
        }
        if name == "FILE" {
            return Ok(Ty::plain(self.ns.file_type.clone()));
        }
        if name == "bool" {
            return Ok(Ty::plain(self.ns.prim(Prim::Bool)));
        }
        let at = p.as_span().start();
        if self.ns.decls.names.contains_key(name) {
            return Err(self.error(
                ErrorKind::CDef,
                at,
                format!("'{name}' is not a type but a declared name"),
            ));
        }
        let e = self.error(ErrorKind::CDef, at, format!("unknown type name '{name}'"));
        Err(e.with_detail(ErrorDetail::UnknownTypeName(name.into())))
    }

    /// Returns the record's node and whether it is an anonymous definition.
    pub(super) fn struct_spec(
        &mut self,
        pair: Pair<Rule>,
        typedef_hint: Option<&str>,
    ) -> Result<(TypeRef, bool), CdefError> {
        let start = pair.as_span().start();
        let mut inner = pair.into_inner();
        let kw = inner.next().unwrap().as_str().trim_end();
        let is_union = kw == "union";
        let mut tag = None;
        let mut body = None;
        for p in inner {
            match p.as_rule() {
                Rule::tag => tag = Some(p.as_str()),
                Rule::struct_body => body = Some(p),
                _ => {}
            }
        }
        let node = match tag {
            Some(tag) => {
                let map = if is_union {
                    &self.ns.decls.unions
                } else {
                    &self.ns.decls.structs
                };
                match map.get(tag) {
                    Some(n) => n.clone(),
                    None => {
                        let n = self.ns.table.new_record(
                            is_union,
                            Some(tag.to_string()),
                            format!("{kw} {tag}"),
                        );
                        let map = if is_union {
                            &mut self.ns.decls.unions
                        } else {
                            &mut self.ns.decls.structs
                        };
                        map.insert(tag.to_string(), n.clone());
                        n
                    }
                }
            }
            None => {
                let cname = match typedef_hint {
                    Some(n) => n.to_string(),
                    None => self.anonymous_name(kw),
                };
                self.ns.table.new_record(is_union, None, cname)
            }
        };
        if let Some(body) = body {
            let Kind::Record(rec) = &node.kind else {
                unreachable!()
            };
            if !self.ns.has_body.insert(rec.id) {
                return Err(self.error(
                    ErrorKind::CDef,
                    start,
                    format!("duplicate declaration of {}", rec.cname),
                ));
            }
            let (members, partial) = self.members(body, &rec.cname)?;
            let packing = Packing {
                packed: self.opts.packed,
                pack: self.opts.pack,
            };
            self.ns.pending.insert(
                rec.id,
                PendingBody {
                    node: node.clone(),
                    members,
                    partial,
                    packing,
                },
            );
            self.ns.pending_order.push(rec.id);
        }
        Ok((node, tag.is_none()))
    }

    pub(super) fn members(
        &mut self,
        body: Pair<Rule>,
        owner: &str,
    ) -> Result<(Vec<MemberSpec>, bool), CdefError> {
        let mut members = Vec::new();
        let mut partial = false;
        let saved_dots = std::mem::replace(&mut self.saw_dots_array, false);
        for m in body.into_inner() {
            let m_start = m.as_span().start();
            let mut inner = m.into_inner();
            let Some(first) = inner.next() else { continue };
            match first.as_rule() {
                Rule::member_dots => {
                    partial = true;
                    continue;
                }
                Rule::empty_decl => continue,
                _ => {}
            }
            let specs = self.decl_specs(first, None)?;
            for (decl, bits) in declarators_with(inner, Rule::bitfield) {
                let md_start = decl.as_span().start();
                let declared = self.declarator(specs.base.clone(), decl)?;
                let bits = match bits {
                    Some(b) => Some(self.eval_int(b.into_inner().next().unwrap())?),
                    None => None,
                };
                if declared.ty.func {
                    return Err(self.error(
                        ErrorKind::CDef,
                        md_start,
                        format!("field of {owner} declared as a function type (use a pointer to function)"),
                    ));
                }
                if declared.empty && bits.is_none() {
                    if specs.anonymous_record {
                        members.push(MemberSpec {
                            name: None,
                            ty: declared.ty.node,
                            bits: None,
                        });
                        continue;
                    }
                    if specs.declares_tag {
                        continue;
                    }
                    return Err(self.error(
                        ErrorKind::FFI,
                        m_start,
                        "bad or unsupported type declaration",
                    ));
                }
                let name = declared.name.map(|(n, _)| n.to_string());
                if name.is_none() && bits.is_none() {
                    return Err(self.error(
                        ErrorKind::FFI,
                        md_start,
                        "bad or unsupported type declaration: a field needs a name",
                    ));
                }
                if let (Some(n), true) = (&name, matches!(declared.ty.node.kind, Kind::Void)) {
                    return Err(self.error(
                        ErrorKind::CDef,
                        md_start,
                        format!("field '{owner}.{n}' declared as void"),
                    ));
                }
                if let Some(n) = &name {
                    // cffi refuses these (a KeyError when the type is completed); here
                    // where it is declared
                    if members
                        .iter()
                        .any(|m| m.name.as_deref() == Some(n.as_str()))
                    {
                        return Err(self.error(
                            ErrorKind::CDef,
                            md_start,
                            format!("duplicate field name '{n}' in {owner}"),
                        ));
                    }
                }
                members.push(MemberSpec {
                    name,
                    ty: declared.ty.node,
                    bits,
                });
            }
        }
        partial |= std::mem::replace(&mut self.saw_dots_array, saved_dots);
        Ok((members, partial))
    }

    pub(super) fn enum_spec(
        &mut self,
        pair: Pair<Rule>,
        typedef_hint: Option<&str>,
    ) -> Result<TypeRef, CdefError> {
        let start = pair.as_span().start();
        let mut tag = None;
        let mut body = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::tag => tag = Some(p.as_str()),
                Rule::enum_body => body = Some(p),
                _ => {}
            }
        }
        let existing = tag.and_then(|t| self.ns.decls.enums.get(t).cloned());
        let Some(body) = body else {
            if let Some(n) = existing {
                return Ok(n);
            }
            // A forward-declared enum: cffi guesses `unsigned int`.
            let tag = tag.unwrap();
            let n = self.ns.table.new_enum(
                Some(tag.to_string()),
                format!("enum {tag}"),
                Vec::new(),
                Prim::UInt,
                false,
            );
            self.ns.decls.enums.insert(tag.to_string(), n);
            return Ok(self.ns.decls.enums[tag].clone());
        };
        if existing.is_some() {
            return Err(self.error(
                ErrorKind::NotImplemented,
                start,
                format!(
                    "enum {}: the '{{}}' declaration should appear on the first time the enum is mentioned, not later",
                    tag.unwrap()
                ),
            ));
        }
        let mut items: Vec<(String, i128)> = Vec::new();
        let mut unknown: Vec<(String, usize)> = Vec::new();
        let mut partial = false;
        let mut next: i128 = 0;
        for e in body.into_inner() {
            match e.as_rule() {
                Rule::enum_dots => partial = true,
                Rule::enumerator => {
                    let mut inner = e.into_inner();
                    let name = inner.next().unwrap();
                    let name_at = name.as_span().start();
                    let name = name.as_str().to_string();
                    let value = match inner.next() {
                        Some(v) if v.as_rule() == Rule::value_dots => {
                            partial = true;
                            unknown.push((name, name_at));
                            continue;
                        }
                        Some(v) => {
                            let names = &self.ns.decls.names;
                            let local = &items;
                            let lookup = |n: &str| {
                                local
                                    .iter()
                                    .rev()
                                    .find(|(k, _)| k == n)
                                    .map(|(_, v)| *v)
                                    .or_else(|| match names.get(n) {
                                        Some(Decl::IntConstant { value, .. }) => Some(*value),
                                        _ => None,
                                    })
                            };
                            match consteval::eval(v, &lookup)
                                .map_err(|e| self.error(ErrorKind::FFI, e.offset, e.message))?
                            {
                                Value::Int(x) => x,
                                Value::Float => {
                                    return Err(self.error(
                                        ErrorKind::CDef,
                                        name_at,
                                        "unsupported expression: enum values must be integers",
                                    ))
                                }
                            }
                        }
                        None => next,
                    };
                    next = value + 1;
                    items.push((name, value));
                }
                _ => {}
            }
        }
        let underlying = enum_underlying(&items).ok_or_else(|| {
            self.error(ErrorKind::FFI, start, "enum values do not fit in 64 bits")
        })?;
        let cname = match (tag, typedef_hint) {
            (Some(t), _) => format!("enum {t}"),
            (None, Some(h)) => h.to_string(),
            (None, None) => self.anonymous_name("enum"),
        };
        let node = self.ns.table.new_enum(
            tag.map(str::to_string),
            cname,
            items.clone(),
            underlying,
            partial,
        );
        if let Some(t) = tag {
            self.ns.decls.enums.insert(t.to_string(), node.clone());
        }
        for (name, value) in items {
            let decl = Decl::IntConstant {
                value,
                ty: Some(node.clone()),
            };
            self.declare_enumerator(&name, decl)?;
        }
        for (name, _) in unknown {
            self.declare_enumerator(
                &name,
                Decl::UnknownConstant {
                    ty: Some(node.clone()),
                },
            )?;
        }
        Ok(node)
    }
}

/// The integer type gcc gives an enum: `unsigned int` if every value is ≥ 0 and fits,
/// else `int`, else `unsigned long`, else `long`.
fn enum_underlying(items: &[(String, i128)]) -> Option<Prim> {
    let min = items.iter().map(|i| i.1).min().unwrap_or(0);
    let max = items.iter().map(|i| i.1).max().unwrap_or(0);
    if min >= 0 {
        if max <= u32::MAX as i128 {
            Some(Prim::UInt)
        } else if max <= u64::MAX as i128 {
            Some(Prim::ULong)
        } else {
            None
        }
    } else if min >= i32::MIN as i128 && max <= i32::MAX as i128 {
        Some(Prim::Int)
    } else if min >= i64::MIN as i128 && max <= i64::MAX as i128 {
        Some(Prim::Long)
    } else {
        None
    }
}

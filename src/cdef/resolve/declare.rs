//! Declarations into the namespace: functions, variables, constants, typedefs,
//! enumerators and `#define`s, with the rules about redeclaring them.

use std::sync::Arc;

use pest::iterators::Pair;

use super::{Resolver, Ty};
use crate::cdef::consteval::{self, Value};
use crate::cdef::parser::Rule;
use crate::cdef::preprocess;
use crate::cdef::{CdefError, ErrorKind};
use crate::types::decls::Decl;
use crate::types::model::{Kind, TypeRef};

impl<'a> Resolver<'a> {
    pub(super) fn define(&mut self, d: &preprocess::Define) -> Result<(), CdefError> {
        let decl = match d.value {
            Some(value) => Decl::IntConstant { value, ty: None },
            None => Decl::UnknownConstant { ty: None },
        };
        self.declare_name(&d.name, decl, d.offset)
    }

    /// Adds `name` to the lib namespace; redeclaring it identically is fine.
    pub(super) fn declare_name(
        &mut self,
        name: &str,
        decl: Decl,
        offset: usize,
    ) -> Result<(), CdefError> {
        if let Some(old) = self.ns.decls.names.get(name) {
            if same_decl(old, &decl) {
                return Ok(());
            }
            if !self.opts.override_ {
                let what = match (&decl, old) {
                    (Decl::IntConstant { .. } | Decl::UnknownConstant { .. }, _) => "constant",
                    (Decl::Function(_) | Decl::ExternPython(_), _) => "function",
                    (Decl::Variable { .. }, _) => "variable",
                };
                let _ = offset;
                return Err(CdefError::new(
                    ErrorKind::FFI,
                    format!("multiple declarations of {what} {name} (for interactive usage, try cdef(xx, override=True))"),
                ));
            }
        } else {
            self.ns.decls.order.push(name.to_string());
        }
        self.ns.decls.names.insert(name.to_string(), decl);
        Ok(())
    }

    pub(super) fn declare_typedef(
        &mut self,
        name: &str,
        ty: Ty,
        offset: usize,
    ) -> Result<(), CdefError> {
        let _ = offset;
        let conflict =
            |old: &TypeRef, old_func: bool| !(Arc::ptr_eq(old, &ty.node) && old_func == ty.func);
        let existing = self
            .ns
            .decls
            .typedefs
            .get(name)
            .map(|t| (t.clone(), false))
            .or_else(|| self.ns.fn_typedefs.get(name).map(|t| (t.clone(), true)));
        if let Some((old, old_func)) = existing {
            if !conflict(&old, old_func) {
                return Ok(());
            }
            if !self.opts.override_ {
                return Err(CdefError::new(
                    ErrorKind::FFI,
                    format!("multiple declarations of typedef {name} (for interactive usage, try cdef(xx, override=True))"),
                ));
            }
        }
        if self.ns.unknown_num_typedefs.remove(name).is_some() && !self.opts.override_ {
            return Err(CdefError::new(
                ErrorKind::FFI,
                format!("multiple declarations of typedef {name} (for interactive usage, try cdef(xx, override=True))"),
            ));
        }
        self.ns.decls.typedefs.remove(name);
        self.ns.fn_typedefs.remove(name);
        if ty.func {
            self.ns.fn_typedefs.insert(name.to_string(), ty.node);
        } else {
            self.ns.decls.typedefs.insert(name.to_string(), ty.node);
        }
        Ok(())
    }

    pub(super) fn declaration(
        &mut self,
        pair: Pair<Rule>,
        mut extern_python: bool,
    ) -> Result<(), CdefError> {
        let start = pair.as_span().start();
        let mut inner = pair.into_inner().peekable();
        if inner.peek().map(|p| p.as_rule()) == Some(Rule::extern_lang) {
            let lang = inner.next().unwrap();
            extern_python = self.extern_language(&lang)?;
        }
        let specs_pair = inner.next().unwrap();
        let init_decls = declarators_with(inner, Rule::initializer);

        // The text test avoids walking the specifiers twice for nearly every declaration.
        let is_typedef_decl = specs_pair.as_str().contains("typedef")
            && specs_pair
                .clone()
                .into_inner()
                .any(|q| q.as_rule() == Rule::qual && q.as_str().trim_end() == "typedef");
        // `typedef struct { .. } name;` names the anonymous struct after the typedef.
        let mut typedef_hint = None;
        if is_typedef_decl {
            if let Some((decl, _)) = init_decls.first() {
                let mut parts = decl.clone().into_inner();
                if let (Some(only), None) = (parts.next(), parts.next()) {
                    if only.as_rule() == Rule::name {
                        typedef_hint = Some(only.as_str().to_string());
                    }
                }
            }
        }
        let specs = self.decl_specs(
            specs_pair,
            if is_typedef_decl {
                typedef_hint.as_deref()
            } else {
                None
            },
        )?;

        let only_empty = init_decls.is_empty()
            || (init_decls.len() == 1 && init_decls[0].0.clone().into_inner().next().is_none());
        if only_empty {
            if specs.declares_tag && !specs.is_typedef {
                return Ok(());
            }
            return Err(self.error(
                ErrorKind::CDef,
                start,
                "Invalid declaration: nothing is declared (missing a name?)",
            ));
        }
        for (decl, initializer) in init_decls {
            let init_start = decl.as_span().start();
            let declared = self.declarator_c(specs.base.clone(), decl, specs.is_const)?;
            let Some((name, name_at)) = declared.name.map(|(n, at)| (n.to_string(), at)) else {
                return Err(self.error(
                    ErrorKind::CDef,
                    init_start,
                    "Invalid declaration: a name is missing",
                ));
            };
            if specs.is_typedef {
                if let Some(is_float) = specs.unknown_num {
                    if declared.empty
                        || declared.name.is_some()
                            && !declared.ty.func
                            && Arc::ptr_eq(&declared.ty.node, &specs.base.node)
                    {
                        self.ns.unknown_num_typedefs.insert(name, is_float);
                        continue;
                    }
                    return Err(self.error(
                        ErrorKind::NotImplemented,
                        name_at,
                        "'typedef int... t' and 'typedef float... t' can only name the type itself",
                    ));
                }
                self.declare_typedef(&name, declared.ty, name_at)?;
                continue;
            }
            if specs.unknown_num.is_some() {
                return Err(self.error(
                    ErrorKind::CDef,
                    start,
                    "'int...' and 'float...' are only valid in a typedef",
                ));
            }
            if declared.ty.func {
                let decl = if extern_python {
                    Decl::ExternPython(declared.ty.node)
                } else {
                    Decl::Function(declared.ty.node)
                };
                self.declare_name(&name, decl, name_at)?;
                continue;
            }
            if extern_python {
                return Err(self.error(
                    ErrorKind::CDef,
                    name_at,
                    format!("extern \"Python\": '{name}' must be a function"),
                ));
            }
            if matches!(declared.ty.node.kind, Kind::Void) {
                return Err(self.error(
                    ErrorKind::CDef,
                    name_at,
                    format!("variable '{name}' declared as void"),
                ));
            }
            let ty = declared.ty.node;
            let is_const = declared.is_const;
            let integer = is_integer(&ty);
            let decl = match initializer {
                Some(init) if is_const || specs.is_static => {
                    let value = self.eval(init)?;
                    match value {
                        Value::Int(v) if integer => Decl::IntConstant {
                            value: v,
                            ty: Some(ty),
                        },
                        _ => Decl::UnknownConstant { ty: Some(ty) },
                    }
                }
                None if specs.is_static && is_const => Decl::UnknownConstant { ty: Some(ty) },
                _ => Decl::Variable { ty, is_const },
            };
            self.declare_name(&name, decl, name_at)?;
        }
        Ok(())
    }

    pub(super) fn eval(&self, pair: Pair<Rule>) -> Result<Value, CdefError> {
        let names = &self.ns.decls.names;
        let lookup = |n: &str| match names.get(n) {
            Some(Decl::IntConstant { value, .. }) => Some(*value),
            _ => None,
        };
        consteval::eval(pair, &lookup).map_err(|e| self.error(ErrorKind::FFI, e.offset, e.message))
    }

    pub(super) fn eval_int(&self, pair: Pair<Rule>) -> Result<i128, CdefError> {
        let at = pair.as_span().start();
        match self.eval(pair)? {
            Value::Int(v) => Ok(v),
            Value::Float => Err(self.error(
                ErrorKind::FFI,
                at,
                "unsupported expression: expected an integer constant",
            )),
        }
    }

    pub(super) fn declare_enumerator(&mut self, name: &str, decl: Decl) -> Result<(), CdefError> {
        if let Some(old) = self.ns.decls.names.get(name) {
            let same_value = match (old, &decl) {
                (Decl::IntConstant { value: a, .. }, Decl::IntConstant { value: b, .. }) => a == b,
                _ => false,
            };
            if !same_value && !self.opts.override_ {
                return Err(CdefError::new(
                    ErrorKind::FFI,
                    format!("multiple declarations of constant: {name}"),
                ));
            }
        } else {
            self.ns.decls.order.push(name.to_string());
        }
        self.ns.decls.names.insert(name.to_string(), decl);
        Ok(())
    }
}

/// The declarators of a declaration or member, each with the `extra` pair that follows
/// it if any (its initializer or bitfield width): the grammar puts no pair around the two.
pub(super) fn declarators_with<'i>(
    pairs: impl Iterator<Item = Pair<'i, Rule>>,
    extra: Rule,
) -> Vec<(Pair<'i, Rule>, Option<Pair<'i, Rule>>)> {
    let mut out: Vec<(Pair<'i, Rule>, Option<Pair<'i, Rule>>)> = Vec::new();
    for p in pairs {
        if p.as_rule() == extra {
            if let Some(last) = out.last_mut() {
                last.1 = Some(p);
            }
        } else {
            out.push((p, None));
        }
    }
    out
}

fn is_integer(ty: &TypeRef) -> bool {
    match &ty.kind {
        Kind::Prim(p) => {
            use crate::types::model::PrimClass::*;
            matches!(p.class, SignedInt | UnsignedInt | Char | Bool | WideChar)
        }
        Kind::Enum(_) => true,
        _ => false,
    }
}

fn same_decl(a: &Decl, b: &Decl) -> bool {
    let same_ty = |x: &Option<TypeRef>, y: &Option<TypeRef>| match (x, y) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y),
        (None, None) => true,
        _ => false,
    };
    match (a, b) {
        (Decl::Function(x), Decl::Function(y)) | (Decl::ExternPython(x), Decl::ExternPython(y)) => {
            Arc::ptr_eq(x, y)
        }
        (
            Decl::Variable {
                ty: x,
                is_const: cx,
            },
            Decl::Variable {
                ty: y,
                is_const: cy,
            },
        ) => Arc::ptr_eq(x, y) && cx == cy,
        (Decl::IntConstant { value: x, ty: tx }, Decl::IntConstant { value: y, ty: ty_ }) => {
            x == y && same_ty(tx, ty_)
        }
        (Decl::UnknownConstant { ty: x }, Decl::UnknownConstant { ty: y }) => same_ty(x, y),
        _ => false,
    }
}

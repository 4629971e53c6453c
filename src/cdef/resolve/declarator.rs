//! Declarators applied to a base type: pointers, arrays and parameter lists, inside
//! out as C reads them.

use pest::iterators::Pair;

use super::{Declared, Param, Resolver, Ty};
use crate::cdef::parser::Rule;
use crate::cdef::{CdefError, ErrorDetail, ErrorKind};
use crate::types::model::{Kind, Prim, TypeRef};

const MAX_DERIVATIONS: usize = 256;

impl<'a> Resolver<'a> {
    /// Applies a declarator to `base`: `*` → pointer, `[n]` → array, `(..)` → function,
    /// inside out as C reads them.
    pub(super) fn declarator<'i>(
        &mut self,
        base: Ty,
        pair: Pair<'i, Rule>,
    ) -> Result<Declared<'i>, CdefError> {
        self.declarator_c(base, pair, false)
    }

    /// `base_const`: the specifiers said `const` (a `const int x` global is read-only,
    /// a `const char *p` one is not).
    pub(super) fn declarator_c<'i>(
        &mut self,
        base: Ty,
        pair: Pair<'i, Rule>,
        base_const: bool,
    ) -> Result<Declared<'i>, CdefError> {
        let mut ty = base;
        let mut name = None;
        let mut nested = None;
        let mut suffixes: Vec<Pair<Rule>> = Vec::new();
        let mut is_const = base_const;
        let mut empty = true;
        let start = pair.as_span().start();
        let inner = pair.into_inner();
        // C compilers accept a few dozen levels; the bound keeps type chains (and the
        // recursion that eventually frees them) shallow.
        if inner.len() > MAX_DERIVATIONS {
            return Err(self.error(
                ErrorKind::CDef,
                start,
                format!(
                    "declarator with more than {MAX_DERIVATIONS} pointer/array/function levels"
                ),
            ));
        }
        for p in inner {
            empty = false;
            match p.as_rule() {
                Rule::ptr => {
                    ty = self.pointer_to(ty);
                    // `*` alone (the usual case) has no qualifiers to look at.
                    is_const = p.as_str().len() > 1
                        && p.as_str().trim_end() != "*"
                        && p.into_inner().any(|q| q.as_str().trim_end() == "const");
                }
                Rule::name => name = Some((p.as_str(), p.as_span().start())),
                Rule::nested => nested = Some(p),
                _ => suffixes.push(p),
            }
        }
        for s in suffixes.into_iter().rev() {
            let at = s.as_span().start();
            match s.as_rule() {
                Rule::array_suffix => {
                    if ty.func {
                        return Err(self.error(
                            ErrorKind::CDef,
                            at,
                            "array of functions is not valid C (use an array of function pointers)",
                        ));
                    }
                    if matches!(ty.node.kind, Kind::Void) {
                        return Err(self.error(
                            ErrorKind::CDef,
                            at,
                            "array of void is not valid C",
                        ));
                    }
                    let len = match s.into_inner().find(|p| p.as_rule() != Rule::qual) {
                        None => None,
                        Some(p) if p.as_rule() == Rule::array_dots => {
                            self.saw_dots_array = true;
                            None
                        }
                        Some(p) => {
                            let v = self.eval_int(p)?;
                            if v < 0 {
                                // cffi's exception and text for it
                                return Err(self.error(
                                    ErrorKind::Value,
                                    at,
                                    "negative array length",
                                ));
                            }
                            if v > (isize::MAX as i128) {
                                return Err(self.error(
                                    ErrorKind::FFI,
                                    at,
                                    format!("array length {v} is too large"),
                                ));
                            }
                            Some(v as usize)
                        }
                    };
                    if let Kind::Array(_, None) = ty.node.kind {
                        // Items of an array need a size (cffi's ValueError).
                        return Err(self.error(
                            ErrorKind::Value,
                            at,
                            format!("array item of unknown size: '{}'", ty.node.cname()),
                        ));
                    }
                    ty = Ty::plain(self.ns.table.array(&ty.node, len));
                }
                Rule::param_suffix => {
                    self.check_return_type(&ty, at)?;
                    let fname = name.map(|(n, _)| n).unwrap_or_default();
                    let (args, variadic) = self.params(s, fname)?;
                    ty = Ty {
                        node: self.ns.table.func_ptr(args, &ty.node, variadic),
                        func: true,
                    };
                }
                _ => {}
            }
        }
        if let Some(n) = nested {
            let at = n.as_span().start();
            let inner = n
                .into_inner()
                .find(|p| p.as_rule() == Rule::declarator)
                .unwrap();
            if let Some(param) = self.lone_type_name(&inner) {
                // `T(U)` with `U` a type name: C reads `(U)` as a parameter list, not
                // as a parenthesized declarator named `U` (the grammar cannot know type
                // names).
                let param = self.typedef_name(&param)?;
                self.check_return_type(&ty, at)?;
                let args = if param.func {
                    vec![param.node]
                } else {
                    match &param.node.kind {
                        Kind::Void => Vec::new(),
                        Kind::Array(item, _) => {
                            let item = item.clone();
                            vec![self.ns.pointer(&item)]
                        }
                        _ => vec![param.node],
                    }
                };
                let node = self.ns.table.func_ptr(args, &ty.node, false);
                return Ok(Declared {
                    ty: Ty { node, func: true },
                    name: None,
                    is_const,
                    empty: false,
                });
            }
            let d = self.declarator_c(ty, inner, is_const)?;
            return Ok(Declared {
                ty: d.ty,
                name: d.name,
                is_const: d.is_const,
                empty: false,
            });
        }
        Ok(Declared {
            ty,
            name,
            is_const,
            empty,
        })
    }

    /// The `name` of a declarator made of only that name, if it names a type.
    /// C forbids a function returning a function or an array; `at` is where the
    /// parameter list starts.
    fn check_return_type(&self, ty: &Ty, at: usize) -> Result<(), CdefError> {
        if ty.func {
            return Err(self.error(
                ErrorKind::CDef,
                at,
                "a function cannot return a function (return a function pointer)",
            ));
        }
        if matches!(ty.node.kind, Kind::Array(..)) {
            // cffi's exception and text (its backend refuses the result type)
            let msg = format!("invalid result type: '{}'", ty.node.cname());
            return Err(self.error(ErrorKind::Type, at, msg));
        }
        Ok(())
    }

    pub(super) fn lone_type_name<'i>(&self, decl: &Pair<'i, Rule>) -> Option<Pair<'i, Rule>> {
        let mut parts = decl.clone().into_inner();
        let (Some(only), None) = (parts.next(), parts.next()) else {
            return None;
        };
        if only.as_rule() != Rule::name {
            return None;
        }
        let name = only.as_str();
        let known = self.ns.decls.typedefs.contains_key(name)
            || self.ns.fn_typedefs.contains_key(name)
            || self.ns.unknown_num_typedefs.contains_key(name)
            || Prim::from_name(name).is_some()
            || name == "FILE";
        known.then_some(only)
    }

    pub(super) fn pointer_to(&mut self, ty: Ty) -> Ty {
        if ty.func {
            Ty::plain(ty.node)
        } else {
            Ty::plain(self.ns.pointer(&ty.node))
        }
    }

    pub(super) fn params(
        &mut self,
        suffix: Pair<Rule>,
        fname: &str,
    ) -> Result<(Vec<TypeRef>, bool), CdefError> {
        let at = suffix.as_span().start();
        let Some(params) = suffix.into_inner().next() else {
            // `f()` means `f(void)`.
            return Ok((Vec::new(), false));
        };
        let raw = params.as_rule() == Rule::raw_params;
        let list = params.into_inner();
        let variadic = list.clone().next_back().is_some_and(|p| {
            if raw {
                p.as_str().trim_end() == "..."
            } else {
                p.as_rule() == Rule::varargs
            }
        });
        if variadic && list.len() == 1 {
            return Err(self.error(
                ErrorKind::CDef,
                at,
                format!("{fname}: a function with only '(...)' as argument is not correct C"),
            ));
        }
        let count = list.len() - variadic as usize;
        let mut args = Vec::with_capacity(count);
        for (i, p) in list.into_iter().take(count).enumerate() {
            let p_at = p.as_span().start();
            let param = if raw {
                self.raw_param(p, fname, i + 1)?
            } else {
                self.param(p, fname, i + 1)?
            };
            if param.is_void {
                if count == 1 && param.empty {
                    return Ok((Vec::new(), false));
                }
                return Err(self.error(
                    ErrorKind::CDef,
                    p_at,
                    format!("{fname}: 'void' must be the only parameter"),
                ));
            }
            args.push(param.node);
        }
        Ok((args, variadic))
    }

    /// A `param` of the tree.
    pub(super) fn param(
        &mut self,
        p: Pair<Rule>,
        fname: &str,
        argno: usize,
    ) -> Result<Param, CdefError> {
        let p_at = p.as_span().start();
        let mut inner = p.into_inner();
        let specs_pair = inner.next().unwrap();
        let decl = inner.next().unwrap();
        let specs = match self.decl_specs(specs_pair, None) {
            Ok(s) => s,
            Err(e) => return Err(self.unknown_param_type(e, fname, argno, p_at)),
        };
        let declared = self.declarator(specs.base, decl)?;
        let ty = declared.ty;
        let is_void = matches!(ty.node.kind, Kind::Void) && !ty.func;
        // Parameters decay: arrays to pointers, functions to function pointers.
        let node = if ty.func {
            ty.node
        } else if let Kind::Array(item, _) = &ty.node.kind {
            let item = item.clone();
            self.ns.pointer(&item)
        } else {
            ty.node
        };
        Ok(Param {
            node,
            is_void,
            empty: declared.empty,
        })
    }

    /// An unknown type name in a parameter list gets cffi's K&R hint.
    pub(super) fn unknown_param_type(
        &self,
        e: CdefError,
        fname: &str,
        argno: usize,
        at: usize,
    ) -> CdefError {
        let Some(ErrorDetail::UnknownTypeName(name)) = &e.detail else {
            return e;
        };
        let func = if fname.is_empty() { "function" } else { fname };
        self.error(
            ErrorKind::CDef,
            at,
            format!(
                "{func} arg {argno}: unknown type '{name}' (if you meant to use the old C syntax of giving \
                 untyped arguments, it is not supported)"
            ),
        )
    }
}

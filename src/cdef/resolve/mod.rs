//! Walks the parse tree into types (interned in the namespace's `TypeTable`) and
//! declarations.
//!
//! `mod.rs` holds the entry points and the resolver's state, and walks the top-level
//! items; `declare` adds declarations to the namespace, `specifiers` and `declarator`
//! build types, and `reuse` keeps the types of texts already resolved in this cdef (and
//! undoes a speculative resolve).

mod declarator;
mod declare;
mod reuse;
mod specifiers;

use pest::iterators::Pair;

use super::parser::{self, Rule};
use super::preprocess::{self, Positions};
use super::{CdefError, CdefOptions, ErrorDetail, ErrorKind, Namespace};
use crate::types::model::TypeRef;

#[cfg(test)]
pub(crate) use reuse::UNDOS;

/// A resolved C type. `func` marks a function type (not a pointer to one), which
/// only exists while resolving: `node` is then the pointer-to-function node.
#[derive(Clone)]
struct Ty {
    node: TypeRef,
    func: bool,
}

impl Ty {
    fn plain(node: TypeRef) -> Ty {
        Ty { node, func: false }
    }
}

/// What the declaration specifiers (`static const unsigned long`) said.
#[derive(Clone)]
struct Specs {
    base: Ty,
    is_typedef: bool,
    is_static: bool,
    is_const: bool,
    /// `typedef int... t;` (false) / `typedef float... t;` (true).
    unknown_num: Option<bool>,
    /// The specifiers define a struct/union/enum (`struct s {..}`, `enum {..}`) or
    /// declare a tag (`struct s;`): a declaration without declarators is then fine.
    declares_tag: bool,
    /// An anonymous struct/union defined right here (candidate anonymous member).
    anonymous_record: bool,
}

/// What a declarator gave: the type, its name, and whether the outermost level is const.
struct Declared<'i> {
    ty: Ty,
    name: Option<(&'i str, usize)>,
    is_const: bool,
    /// No pointer, name, array or parameter list at all.
    empty: bool,
}

struct Resolver<'a> {
    ns: &'a mut Namespace,
    pos: Positions<'a>,
    opts: CdefOptions,
    /// Set by `[...]` while resolving the members of a struct.
    saw_dots_array: bool,
    /// Where the text being resolved starts in the whole text (a parameter piece is
    /// parsed on its own, so its positions are relative to its start).
    base: usize,
    /// Types of texts already resolved in this cdef.
    reused: reuse::Reused,
}

/// One resolved parameter, before `params` applies the rules about `void`.
#[derive(Clone)]
struct Param {
    /// After decay (arrays to pointers, functions to function pointers).
    node: TypeRef,
    /// The declared type is `void` itself.
    is_void: bool,
    /// Nothing but the specifiers (`void` in `f(void)`).
    empty: bool,
}

type DefineIter<'d> = std::iter::Peekable<std::slice::Iter<'d, preprocess::Define>>;

pub fn run_cdef(ns: &mut Namespace, source: &str, opts: &CdefOptions) -> Result<(), CdefError> {
    let pre = preprocess::preprocess(source)?;
    let pos = Positions {
        source,
        markers: &pre.markers,
    };
    parser::check_nesting(&pre.text, &pos, "declaration")?;
    let mut r = Resolver::new(ns, pos, opts.clone());
    let mut defines = pre.defines.iter().peekable();
    if r.ns.is_empty() && r.items_unchecked(&pre.text, &mut defines)? {
        for d in defines {
            r.define(d)?;
        }
        return Ok(());
    }
    defines = pre.defines.iter().peekable();
    // One parse of the whole text, its pieces checked first; also the path that reports
    // syntax errors.
    let tree = parser::parse_cdef(&pre.text, &r.pos)?;
    r.items(tree, &mut defines)?;
    for d in defines {
        r.define(d)?;
    }
    Ok(())
}

pub fn run_type_string(ns: &mut Namespace, text: &str) -> Result<TypeRef, CdefError> {
    let pos = Positions {
        source: text,
        markers: &[],
    };
    let type_error = |msg: String| CdefError::new(ErrorKind::CDef, msg);
    if text.contains(['#', '\n']) && text.trim_start().starts_with('#') {
        return Err(type_error(format!(
            "cannot parse type '{text}': directives are not types"
        )));
    }
    parser::check_nesting(text, &pos, "type")
        .map_err(|e| type_error(format!("in type '{text}': {}", e.message)))?;
    // The grammar only knows ' ' as whitespace; same byte offsets.
    let normalized: String = text
        .chars()
        .map(|c| {
            if matches!(c, '\t' | '\r' | '\n' | '\x0b' | '\x0c') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let tree = parser::parse(Rule::type_string, &normalized).map_err(|e| {
        let at = match e.location {
            pest::error::InputLocation::Pos(p) => p,
            pest::error::InputLocation::Span((s, _)) => s,
        };
        let tok = parser::token_at(text, at);
        if at == 0 && text.trim().is_empty() {
            type_error("cannot parse an empty type".into())
        } else {
            let ident = text[at.min(text.len())..]
                .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
            let hint = if ident { " (unknown identifier)" } else { "" };
            type_error(format!(
                "cannot parse type '{text}': unexpected {tok} at column {}{hint}",
                at + 1
            ))
        }
    })?;
    let mut r = Resolver::new(ns, pos, CdefOptions::default());
    let mut inner = tree.into_inner();
    let specs_pair = inner.next().unwrap();
    let decl = inner.next().unwrap();
    let specs = r
        .decl_specs(specs_pair, None)
        .map_err(|e| strip_location(unknown_identifier(e), text))?;
    if let Some(is_float) = specs.unknown_num {
        let kind = if is_float { "float" } else { "integer" };
        return Err(CdefError::new(
            ErrorKind::NotImplemented,
            format!("{kind} type in '{text}' can only be used after compilation"),
        ));
    }
    let declared = r
        .declarator(specs.base, decl)
        .map_err(|e| strip_location(e, text))?;
    if declared.ty.func {
        let e = type_error(format!(
            "the type '{text}' is a function type, not a pointer-to-function type"
        ));
        return Err(e.with_detail(ErrorDetail::FunctionType));
    }
    Ok(declared.ty.node)
}

/// cffi's wording for an unknown name in a type string.
fn unknown_identifier(e: CdefError) -> CdefError {
    match &e.detail {
        Some(ErrorDetail::UnknownTypeName(name)) => {
            let reason = format!("unknown identifier '{name}'");
            e.with_reason(&reason)
        }
        _ => e,
    }
}

/// Type strings have no file; their messages name the type instead.
fn strip_location(e: CdefError, text: &str) -> CdefError {
    let mut e = e.without_location();
    if e.kind == ErrorKind::CDef && !e.message.contains(text) {
        e.message = format!("{} (in type '{text}')", e.message);
    }
    e
}

impl<'a> Resolver<'a> {
    fn new(ns: &'a mut Namespace, pos: Positions<'a>, opts: CdefOptions) -> Resolver<'a> {
        Resolver {
            ns,
            pos,
            opts,
            saw_dots_array: false,
            base: 0,
            reused: reuse::Reused::default(),
        }
    }

    /// Resolves the top-level items of a parse of `cdef`, in order, with the `#define`s
    /// that come before each.
    fn items(&mut self, tree: Pair<Rule>, defines: &mut DefineIter) -> Result<(), CdefError> {
        for item in tree.into_inner() {
            let start = item.as_span().start();
            while let Some(d) = defines.next_if(|d| d.offset < self.base + start) {
                self.define(d)?;
            }
            match item.as_rule() {
                Rule::declaration => self.declaration(item, false)?,
                Rule::extern_block => {
                    let mut inner = item.into_inner();
                    let lang = inner.next().unwrap();
                    let python = self.extern_language(&lang)?;
                    for d in inner {
                        if d.as_rule() == Rule::declaration {
                            self.declaration(d, python)?;
                        }
                    }
                }
                Rule::func_def => {
                    return Err(self.error(
                        ErrorKind::CDef,
                        start,
                        "function definitions are not supported in cdef(): this construct is valid C but not \
                         valid in cdef() (declare the function with ';' instead of giving its body)",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// For an empty namespace: the raw-piece parse of `text` resolved without checking
    /// its pieces first, each distinct piece parsed when first met (the check would
    /// parse every distinct piece a second time). If a piece turns out not to parse, or
    /// resolving fails while some later piece would not parse, everything is undone (the
    /// namespace was empty) and false returned: the caller then parses the text with its
    /// pieces checked first, which gives the syntax error and declares nothing, as one
    /// parse of the whole text does. Any other error is returned with the declarations
    /// before it kept.
    fn items_unchecked(&mut self, text: &str, defines: &mut DefineIter) -> Result<bool, CdefError> {
        debug_assert!(self.ns.is_empty());
        #[cfg(test)]
        if parser::FORCE_INLINE.with(|f| f.get()) {
            return Ok(false);
        }
        let Ok(tree) = parser::parse(Rule::cdef, text) else {
            return Ok(false);
        };
        match self.items(tree, defines) {
            Ok(()) => return Ok(true),
            Err(e) if !self.reused.bad_piece && parser::parse_split(text).is_some() => {
                return Err(e)
            }
            Err(_) => {}
        }
        self.undo();
        Ok(false)
    }

    fn error(&self, kind: ErrorKind, offset: usize, msg: impl AsRef<str>) -> CdefError {
        CdefError::at(kind, self.pos.location(self.base + offset), msg)
    }

    fn extern_language(&self, lang: &Pair<Rule>) -> Result<bool, CdefError> {
        let s = if lang.as_rule() == Rule::extern_lang {
            lang.clone().into_inner().next().unwrap()
        } else {
            lang.clone()
        };
        match s.as_str() {
            "\"Python\"" | "\"Python+C\"" | "\"C+Python\"" => Ok(true),
            "\"C\"" => Ok(false),
            other => Err(self.error(
                ErrorKind::CDef,
                s.as_span().start(),
                format!("unsupported linkage {other}: only extern \"Python\" (and \"Python+C\", \"C+Python\") is accepted"),
            )),
        }
    }
}

//! C type strings (`"pt_t *"`, `"int(*)[5]"`, `"struct s"`) against an out-of-line
//! module: names are looked up in its tables and realized on first use, so
//! `ffi.typeof("x_t")` builds `x_t` and what it needs, nothing else.
//!
//! Identifiers are typedef names first, then built-in type names (`int32_t`, `FILE`);
//! `struct`/`union`/`enum` tags come from their tables; array lengths may be integer
//! literals or integer constants of the module.

use std::fmt;

use super::error::RealizeError;
use super::realize::Realizer;
use crate::cdef::parse_int_literal;
use crate::types::decls::Decl;
use crate::types::model::{Kind, Prim, TypeRef};

/// Why a type string does not name a type; `pos` is the byte offset of the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeStrError {
    pub message: String,
    pub pos: usize,
    /// Set when a table entry needed by the string failed to realize.
    pub realize: Option<RealizeError>,
}

impl fmt::Display for TypeStrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TypeStrError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok<'a> {
    Ident(&'a str),
    Number(&'a str),
    Punct(char),
    Dots,
    End,
}

/// A type being built: `func` marks a function type (held as its pointer node).
#[derive(Clone)]
struct Ty {
    node: TypeRef,
    func: bool,
}

enum Deriv {
    Pointer,
    Array(Option<usize>),
    Func(Vec<TypeRef>, bool),
}

const QUALIFIERS: &[&str] = &[
    "const",
    "volatile",
    "restrict",
    "__restrict",
    "__restrict__",
    "__const",
];
const PRIM_WORDS: &[&str] = &[
    "void",
    "char",
    "short",
    "int",
    "long",
    "signed",
    "unsigned",
    "float",
    "double",
    "_Bool",
    "bool",
    "_Complex",
    "__complex__",
];
/// Nesting bound (parentheses, parameter lists): the parser recurses on them.
const MAX_NESTING: usize = 100;

struct Parser<'t, 'r> {
    text: &'t str,
    pos: usize,
    r: &'r mut Realizer,
    nesting: usize,
}

fn err(message: impl Into<String>, pos: usize) -> TypeStrError {
    TypeStrError {
        message: message.into(),
        pos,
        realize: None,
    }
}

impl<'t> Parser<'t, '_> {
    fn skip_ws(&mut self) {
        let b = self.text.as_bytes();
        while self.pos < b.len() && b[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    /// The next token and where it ends, without consuming it.
    fn peek(&mut self) -> (Tok<'t>, usize) {
        self.skip_ws();
        let b = self.text.as_bytes();
        let start = self.pos;
        if start >= b.len() {
            return (Tok::End, start);
        }
        let c = b[start];
        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            let mut e = start;
            while e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'_' || b[e] == b'$') {
                e += 1;
            }
            return (Tok::Ident(&self.text[start..e]), e);
        }
        if c.is_ascii_digit() {
            let mut e = start;
            while e < b.len() && b[e].is_ascii_alphanumeric() {
                e += 1;
            }
            return (Tok::Number(&self.text[start..e]), e);
        }
        if self.text[start..].starts_with("...") {
            return (Tok::Dots, start + 3);
        }
        let ch = self.text[start..].chars().next().unwrap_or('\0');
        (Tok::Punct(ch), start + ch.len_utf8())
    }

    fn next(&mut self) -> Tok<'t> {
        let (t, end) = self.peek();
        self.pos = end;
        t
    }

    fn expect(&mut self, c: char) -> Result<(), TypeStrError> {
        let at = {
            self.skip_ws();
            self.pos
        };
        match self.next() {
            Tok::Punct(p) if p == c => Ok(()),
            _ => Err(err(format!("expected '{c}'"), at)),
        }
    }

    fn realize_err(e: RealizeError, pos: usize) -> TypeStrError {
        TypeStrError {
            message: e.to_string(),
            pos,
            realize: Some(e),
        }
    }

    fn skip_qualifiers(&mut self) {
        while let (Tok::Ident(w), end) = self.peek() {
            if !QUALIFIERS.contains(&w) {
                break;
            }
            self.pos = end;
        }
    }

    /// Declaration specifiers: the base type.
    fn specifiers(&mut self) -> Result<Ty, TypeStrError> {
        self.skip_qualifiers();
        self.skip_ws();
        let start = self.pos;
        let mut words: Vec<&str> = Vec::new();
        while let (Tok::Ident(w), end) = self.peek() {
            if PRIM_WORDS.contains(&w) {
                words.push(w);
                self.pos = end;
            } else if QUALIFIERS.contains(&w) {
                self.pos = end;
            } else {
                break;
            }
        }
        if !words.is_empty() {
            let prim = crate::cdef::prim_from_keywords(&words).map_err(|m| err(m, start))?;
            let node = match prim {
                Some(p) => self.r.table.prim(p),
                None => self.r.table.void(),
            };
            return Ok(Ty { node, func: false });
        }
        let (tok, end) = self.peek();
        let Tok::Ident(word) = tok else {
            return Err(err("identifier expected", start));
        };
        self.pos = end;
        let ty = match word {
            "struct" | "union" | "enum" => {
                self.skip_ws();
                let tag_at = self.pos;
                let Tok::Ident(tag) = self.next() else {
                    return Err(err("identifier expected", tag_at));
                };
                let found = match word {
                    "enum" => self.r.enum_tag(tag),
                    _ => self.r.record(tag, word == "union"),
                }
                .map_err(|e| Self::realize_err(e, tag_at))?;
                match found {
                    Some(node) => Ty { node, func: false },
                    None if word != "enum"
                        && self.r.record(tag, word != "union").ok().flatten().is_some() =>
                    {
                        return Err(err("wrong kind of tag: struct vs union", tag_at))
                    }
                    None if word == "enum" => return Err(err("undefined enum name", tag_at)),
                    None => return Err(err("undefined struct/union name", tag_at)),
                }
            }
            name => match self
                .r
                .typename(name)
                .map_err(|e| Self::realize_err(e, start))?
            {
                Some((node, func)) => Ty { node, func },
                None => match Prim::from_name(name).filter(|p| !is_keyword_prim(*p)) {
                    Some(p) => Ty {
                        node: self.r.table.prim(p),
                        func: false,
                    },
                    None if name == "FILE" => Ty {
                        node: self
                            .r
                            .file_type()
                            .map_err(|e| Self::realize_err(e, start))?,
                        func: false,
                    },
                    None => return Err(err("undefined type name", start)),
                },
            },
        };
        self.skip_qualifiers();
        Ok(ty)
    }

    /// An abstract declarator, as the derivations to apply to the base type in order.
    fn declarator(&mut self) -> Result<Vec<Deriv>, TypeStrError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(err("type too deeply nested", self.pos));
        }
        let mut pointers = 0;
        while let (Tok::Punct('*'), end) = self.peek() {
            self.pos = end;
            pointers += 1;
            self.skip_qualifiers();
        }
        // A declarator name is allowed and ignored (`"int x[3]"`), as in-line.
        if let (Tok::Ident(w), end) = self.peek() {
            if !QUALIFIERS.contains(&w) && !PRIM_WORDS.contains(&w) {
                self.pos = end;
            }
        }
        let mut inner = Vec::new();
        if let (Tok::Punct('('), end) = self.peek() {
            let save = self.pos;
            self.pos = end;
            let nested = matches!(self.peek().0, Tok::Punct('*') | Tok::Punct('('));
            if nested {
                inner = self.declarator()?;
                self.expect(')')?;
            } else {
                self.pos = save;
            }
        }
        let mut suffixes = Vec::new();
        loop {
            match self.peek() {
                (Tok::Punct('['), end) => {
                    self.pos = end;
                    self.skip_ws();
                    let at = self.pos;
                    let len = match self.next() {
                        Tok::Punct(']') => {
                            suffixes.push(Deriv::Array(None));
                            continue;
                        }
                        Tok::Number(n) => parse_int_literal(n),
                        Tok::Ident(name) => {
                            match self.r.global(name).map_err(|e| Self::realize_err(e, at))? {
                                Some(Decl::IntConstant { value, .. }) => Some(value),
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    let Some(len) = len.and_then(|v| usize::try_from(v).ok()) else {
                        return Err(err("expected a positive integer constant", at));
                    };
                    self.expect(']')?;
                    suffixes.push(Deriv::Array(Some(len)));
                }
                (Tok::Punct('('), end) => {
                    self.pos = end;
                    let (params, variadic) = self.params()?;
                    suffixes.push(Deriv::Func(params, variadic));
                }
                _ => break,
            }
        }
        let mut out = Vec::with_capacity(pointers + suffixes.len() + inner.len());
        out.extend((0..pointers).map(|_| Deriv::Pointer));
        out.extend(suffixes.into_iter().rev());
        out.extend(inner);
        self.nesting -= 1;
        Ok(out)
    }

    fn params(&mut self) -> Result<(Vec<TypeRef>, bool), TypeStrError> {
        let mut params = Vec::new();
        if let (Tok::Punct(')'), end) = self.peek() {
            self.pos = end;
            return Ok((params, false));
        }
        loop {
            if let (Tok::Dots, end) = self.peek() {
                self.pos = end;
                self.expect(')')?;
                return Ok((params, true));
            }
            self.skip_ws();
            let at = self.pos;
            let t = self.type_name()?;
            if matches!(t.node.kind, Kind::Void) && !t.func {
                if !params.is_empty() {
                    return Err(err("'void' must be the only parameter", at));
                }
                self.expect(')')?;
                return Ok((params, false));
            }
            // Parameters decay: arrays to pointers, functions to function pointers.
            let node = match &t.node.kind {
                Kind::Array(item, _) if !t.func => {
                    let item = item.clone();
                    self.r.table.pointer(&item)
                }
                _ => t.node,
            };
            params.push(node);
            match self.next() {
                Tok::Punct(',') => continue,
                Tok::Punct(')') => return Ok((params, false)),
                _ => return Err(err("expected ')'", self.pos)),
            }
        }
    }

    fn apply(&mut self, mut ty: Ty, derivs: Vec<Deriv>, at: usize) -> Result<Ty, TypeStrError> {
        for d in derivs {
            ty = match d {
                Deriv::Pointer if ty.func => Ty {
                    node: ty.node,
                    func: false,
                },
                Deriv::Pointer => Ty {
                    node: self.r.table.pointer(&ty.node),
                    func: false,
                },
                Deriv::Array(len) => {
                    if ty.func {
                        return Err(err("array of functions", at));
                    }
                    if matches!(ty.node.kind, Kind::Void) {
                        return Err(err("array of void", at));
                    }
                    if let (Some(n), Some(s)) = (len, ty.node.size()) {
                        if s.checked_mul(n).is_none_or(|t| t > 1 << 40) {
                            return Err(err("array too large", at));
                        }
                    }
                    Ty {
                        node: self.r.table.array(&ty.node, len),
                        func: false,
                    }
                }
                Deriv::Func(params, variadic) => {
                    if ty.func || matches!(ty.node.kind, Kind::Array(..)) {
                        return Err(err("a function cannot return a function or an array", at));
                    }
                    Ty {
                        node: self.r.table.func_ptr(params, &ty.node, variadic),
                        func: true,
                    }
                }
            };
        }
        Ok(ty)
    }

    fn type_name(&mut self) -> Result<Ty, TypeStrError> {
        self.skip_ws();
        let at = self.pos;
        let base = self.specifiers()?;
        let derivs = self.declarator()?;
        self.apply(base, derivs, at)
    }
}

/// Built-in names that are keyword combinations, not identifiers (`long` is not a
/// type name by itself here; the keyword path handles it).
fn is_keyword_prim(p: Prim) -> bool {
    p.name().contains(' ') || PRIM_WORDS.contains(&p.name())
}

/// Parses `text` as a C type against the module behind `r`. Returns the type and
/// whether it is a function type (its node is then the pointer-to-function node, as in
/// the in-line model).
pub fn parse_type(r: &mut Realizer, text: &str) -> Result<(TypeRef, bool), TypeStrError> {
    let mut p = Parser {
        text,
        pos: 0,
        r,
        nesting: 0,
    };
    let t = p.type_name()?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(err("unexpected symbol", p.pos));
    }
    Ok((t.node, t.func))
}

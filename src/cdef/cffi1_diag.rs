//! The errors cffi's compiled FFI gives for a bad type string (`ffi.error`, a message
//! naming the problem, then the string and a caret under the place), which differ from
//! the in-line FFI's CDefError texts. jitffi's own parser decides what a type string
//! means; this walk only finds where and why cffi would have refused it, so it runs
//! when a compiled FFI meets a string that is not cached yet.

use super::Namespace;

/// What a compiled FFI's type-string error says and where (a byte offset in the string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cffi1Error {
    pub message: &'static str,
    pub at: usize,
    /// An unknown struct, union or enum name, or a keyword where a tag belongs:
    /// refused even where jitffi's in-line rules would take it (they declare an
    /// unknown tag as opaque).
    pub undefined: bool,
}

impl Cffi1Error {
    /// The text of the `ffi.error`: the message, then (for strings of a readable length)
    /// the string with unprintable bytes as `?` and a caret line.
    pub fn render(&self, text: &str) -> String {
        if text.len() > 500 {
            return self.message.to_string();
        }
        let shown: String = text
            .bytes()
            .map(|b| match b {
                b'\t' | b'\n' => ' ',
                0x20..=0x7e => b as char,
                _ => '?',
            })
            .collect();
        format!("{}\n{}\n{}^", self.message, shown, " ".repeat(self.at))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Ident(&'a str),
    Number(&'a str),
    Punct(u8),
    Ellipsis,
    End,
}

struct Walk<'a, 'n> {
    src: &'a str,
    pos: usize,
    ns: &'n Namespace,
}

const QUALIFIERS: &[&str] = &[
    "const",
    "volatile",
    "restrict",
    "__restrict",
    "__restrict__",
];
const MODIFIERS: &[&str] = &["signed", "unsigned", "short", "long"];
const BASES: &[&str] = &["void", "_Bool", "char", "int", "float", "double"];
const KEYWORDS: &[&str] = &[
    "const", "volatile", "restrict", "signed", "unsigned", "short", "long", "void", "_Bool",
    "char", "int", "float", "double", "struct", "union", "enum", "typedef",
];

type Step<T> = Result<T, Cffi1Error>;

fn err(message: &'static str, at: usize) -> Cffi1Error {
    Cffi1Error {
        message,
        at,
        undefined: false,
    }
}

impl<'a> Walk<'a, '_> {
    fn skip_space(&mut self) {
        let b = self.src.as_bytes();
        while self.pos < b.len()
            && matches!(b[self.pos], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
        {
            self.pos += 1;
        }
    }

    /// The next token and where it starts, without consuming it.
    fn peek(&mut self) -> (Tok<'a>, usize, usize) {
        self.skip_space();
        let b = self.src.as_bytes();
        let start = self.pos;
        if start >= b.len() {
            return (Tok::End, start, start);
        }
        let c = b[start];
        let word = |i: usize| i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_');
        if c.is_ascii_alphabetic() || c == b'_' {
            let mut e = start;
            while word(e) {
                e += 1;
            }
            (Tok::Ident(&self.src[start..e]), start, e)
        } else if c.is_ascii_digit() {
            let mut e = start;
            while word(e) {
                e += 1;
            }
            (Tok::Number(&self.src[start..e]), start, e)
        } else if self.src[start..].starts_with("...") {
            (Tok::Ellipsis, start, start + 3)
        } else {
            (Tok::Punct(c), start, start + 1)
        }
    }

    fn next(&mut self) -> (Tok<'a>, usize) {
        let (t, s, e) = self.peek();
        self.pos = e;
        (t, s)
    }

    fn qualifiers(&mut self) {
        while let (Tok::Ident(w), _, e) = self.peek() {
            if !QUALIFIERS.contains(&w) {
                break;
            }
            self.pos = e;
        }
    }

    fn known_record(&self, name: &str) -> bool {
        let d = &self.ns.decls;
        d.structs.contains_key(name) || d.unions.contains_key(name)
    }

    fn known_typename(&self, name: &str) -> bool {
        self.ns.decls.typedefs.contains_key(name)
            || self.ns.fn_typedefs.contains_key(name)
            || self.ns.unknown_num_typedefs.contains_key(name)
            || crate::types::model::Prim::from_name(name).is_some()
            || matches!(name, "FILE" | "bool")
    }

    fn specifiers(&mut self) -> Step<()> {
        self.qualifiers();
        let (tok, at) = self.next();
        let Tok::Ident(word) = tok else {
            return Err(err("identifier expected", at));
        };
        match word {
            "struct" | "union" | "enum" => {
                let (name, nat) = self.next();
                let enum_ = word == "enum";
                match name {
                    Tok::Ident(n) if !KEYWORDS.contains(&n) => {
                        let d = &self.ns.decls;
                        // Tags share one name space: `union n` names the struct `n`
                        // only by mistake (a new opaque union in in-line mode).
                        let other_kind = match word {
                            "struct" => d.unions.contains_key(n),
                            "union" => d.structs.contains_key(n),
                            _ => false,
                        };
                        if other_kind {
                            return Err(Cffi1Error {
                                message: "wrong kind of tag: struct vs union",
                                at: nat,
                                undefined: true,
                            });
                        }
                        let known = if enum_ {
                            d.enums.contains_key(n)
                        } else {
                            self.known_record(n)
                        };
                        if !known {
                            let message = if enum_ {
                                "undefined enum name"
                            } else {
                                "undefined struct/union name"
                            };
                            return Err(Cffi1Error {
                                message,
                                at: nat,
                                undefined: true,
                            });
                        }
                    }
                    _ => {
                        let message = if enum_ {
                            "enum name expected"
                        } else {
                            "struct or union name expected"
                        };
                        return Err(Cffi1Error {
                            message,
                            at: nat,
                            undefined: true,
                        });
                    }
                }
            }
            w if MODIFIERS.contains(&w) || BASES.contains(&w) => {
                self.pos = at;
                self.primitive()?;
            }
            w if KEYWORDS.contains(&w) => return Err(err("identifier expected", at)),
            w => {
                if !self.known_typename(w) {
                    // (jitffi's own parser refuses an unknown type name too)
                    return Err(err("undefined type name", at));
                }
            }
        }
        self.qualifiers();
        Ok(())
    }

    /// `unsigned long long int` and the like.
    fn primitive(&mut self) -> Step<()> {
        let (mut sign, mut short, mut long) = (false, false, 0);
        loop {
            let (tok, at, e) = self.peek();
            match tok {
                Tok::Ident("signed" | "unsigned") => sign = true,
                Tok::Ident("short") => short = true,
                Tok::Ident("long") => {
                    long += 1;
                    if long > 2 {
                        return Err(err("'long long long' is too long", at));
                    }
                }
                Tok::Ident(w) if QUALIFIERS.contains(&w) => {}
                Tok::Ident(w) if BASES.contains(&w) => {
                    let fits = match w {
                        "int" => true,
                        "char" => !short && long == 0,
                        "double" => !sign && !short && long <= 1,
                        _ => !sign && !short && long == 0,
                    };
                    if !fits {
                        return Err(err("invalid combination of types", at));
                    }
                    self.pos = e;
                    return Ok(());
                }
                _ => return Ok(()),
            }
            self.pos = e;
        }
    }

    fn declarator(&mut self) -> Step<()> {
        loop {
            match self.peek() {
                (Tok::Punct(b'*' | b'&' | b'^'), _, e) => {
                    self.pos = e;
                    self.qualifiers();
                }
                (Tok::Ident(w), _, e) if QUALIFIERS.contains(&w) => self.pos = e,
                _ => break,
            }
        }
        match self.peek() {
            (Tok::Punct(b'('), _, e) => {
                let save = self.pos;
                self.pos = e;
                if matches!(self.peek().0, Tok::Punct(b'*' | b'^' | b'(')) {
                    self.declarator()?;
                    let (t, at) = self.next();
                    if t != Tok::Punct(b')') {
                        return Err(err("expected ')'", at));
                    }
                } else {
                    self.pos = save;
                }
            }
            (Tok::Ident(w), _, e) if !KEYWORDS.contains(&w) => self.pos = e,
            _ => {}
        }
        loop {
            match self.peek() {
                (Tok::Punct(b'['), _, e) => {
                    self.pos = e;
                    match self.next() {
                        (Tok::Punct(b']'), _) => continue,
                        // (a constant's name; its value is the parser's business)
                        (Tok::Ident(_), _) => {}
                        (Tok::Number(n), at) => {
                            if parse_number(n).is_none() {
                                return Err(err("number too large", at));
                            }
                        }
                        (_, at) => return Err(err("expected a positive integer constant", at)),
                    }
                    let (t, at) = self.next();
                    if t != Tok::Punct(b']') {
                        return Err(err("expected ']'", at));
                    }
                }
                (Tok::Punct(b'('), _, e) => {
                    self.pos = e;
                    self.params()?;
                }
                _ => return Ok(()),
            }
        }
    }

    fn params(&mut self) -> Step<()> {
        if let (Tok::Punct(b')'), _, e) = self.peek() {
            self.pos = e;
            return Ok(());
        }
        loop {
            if let (Tok::Ellipsis, _, e) = self.peek() {
                self.pos = e;
            } else {
                self.specifiers()?;
                self.declarator()?;
            }
            match self.next() {
                (Tok::Punct(b','), _) => {}
                (Tok::Punct(b')'), _) => return Ok(()),
                (_, at) => return Err(err("expected ')'", at)),
            }
        }
    }
}

/// A C integer literal's value, `None` when it does not fit 64 bits (or is no number).
fn parse_number(n: &str) -> Option<u64> {
    let t = n.trim_end_matches(['u', 'U', 'l', 'L']);
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if t.len() > 1 && t.starts_with('0') {
        u64::from_str_radix(&t[1..], 8).ok()
    } else {
        t.parse().ok()
    }
}

/// Where and why cffi's compiled FFI refuses `text` in `ns`, if it does (as far as
/// this walk follows cffi's type-string grammar: `None` also for strings it does not
/// understand, which then keep jitffi's own verdict).
pub fn diagnose(ns: &Namespace, text: &str) -> Option<Cffi1Error> {
    // The walk recurses per bracket like the grammar: the parser's nesting limit bounds
    // its stack too (a deeper string gets the parser's own error).
    if super::parser::too_deep_at(text).is_some() {
        return None;
    }
    let mut w = Walk {
        src: text,
        pos: 0,
        ns,
    };
    let r = w
        .specifiers()
        .and_then(|()| w.declarator())
        .and_then(|()| match w.peek() {
            (Tok::End, _, _) => Ok(()),
            (_, at, _) => Err(err("unexpected symbol", at)),
        });
    r.err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::target::Target;

    #[test]
    fn valid_strings_have_no_diagnosis() {
        let mut ns = Namespace::new(Target::host());
        ns.cdef(
            "struct s { int x; }; typedef int t; enum e { A };",
            &Default::default(),
        )
        .unwrap();
        for text in [
            "int",
            "unsigned long long int",
            "struct s *",
            "t[3]",
            "enum e",
            "int(*)(t, ...)",
            "double(*(*)(int))[3]",
            "int[0x10]",
            "const char * const *",
            "size_t",
            "int[N]",
        ] {
            assert_eq!(diagnose(&ns, text), None, "{text}");
        }
    }

    /// A string nested far beyond the parser's limit is left to the parser's error and
    /// does not exhaust the (2 MiB) test thread's stack on the way, in either reading.
    #[test]
    fn deep_nesting_is_left_to_the_parser() {
        let mut ns = Namespace::new(Target::host());
        let deep = format!("int {}*{}", "(".repeat(10000), ")".repeat(10000));
        assert_eq!(diagnose(&ns, &deep), None);
        let e = ns.parse_type(&deep).unwrap_err();
        assert!(e.message.contains("nested more than"), "{}", e.message);
        let just = format!("int {}*{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(diagnose(&ns, &just), None);
        assert!(ns.parse_type(&just).is_ok());
    }

    #[test]
    fn errors_carry_cffi_text_and_place() {
        let ns = Namespace::new(Target::host());
        let d = diagnose(&ns, "struct nope *").unwrap();
        assert!(d.undefined);
        assert_eq!(
            d.render("struct nope *"),
            "undefined struct/union name\nstruct nope *\n       ^"
        );
        let d = diagnose(&ns, "int x y").unwrap();
        assert!(!d.undefined);
        assert_eq!((d.message, d.at), ("unexpected symbol", 6));
        let long = "X".repeat(600);
        assert_eq!(
            diagnose(&ns, &long).unwrap().render(&long),
            "undefined type name"
        );
    }
}

//! The pest parser and the translation of pest's errors into cffi-style messages.

use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::Parser;

use super::preprocess::{token_text, Positions};
use super::{CdefError, ErrorKind};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/cdef.pest"]
pub struct CdefParser;

/// Deepest bracket nesting accepted. The grammar recurses only through brackets (never
/// through a run of prefixes or pointers, which are repetitions), once per level, so this
/// bounds the stack used by pest and by the resolver. pest itself does not probe the
/// stack: it is built without its `std` feature, because the probe (a thread-local read
/// and a stack-bounds lookup on every rule, sequence and repetition) was a large share
/// of the parse time. So every text must pass `check_nesting` before `parse`.
pub(crate) const MAX_NESTING: usize = 200;

/// Where `text` first goes deeper than `MAX_NESTING` brackets, if it does.
pub(crate) fn too_deep_at(text: &str) -> Option<usize> {
    static BRACKETS: [bool; 256] = super::preprocess::byte_set(b"()[]{}");
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate() {
        if !BRACKETS[b as usize] {
            continue;
        }
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Refuses inputs nested so deeply that parsing them could exhaust the stack.
pub fn check_nesting(text: &str, pos: &Positions, what: &str) -> Result<(), CdefError> {
    match too_deep_at(text) {
        None => Ok(()),
        Some(i) => Err(CdefError::at(
            ErrorKind::CDef,
            pos.location(i),
            format!("{what} nested more than {MAX_NESTING} levels deep"),
        )),
    }
}

/// Parses a cdef text the fast way (`Rule::cdef`: parameter lists cut into raw pieces,
/// see grammar/cdef.pest) and checks every distinct piece with `param_alone`, so that a
/// text with a malformed parameter is refused here, before anything is declared. `None`
/// when the text does not parse that way: the caller then parses it with
/// `Rule::cdef_inline`, which gives the exact error (or, for the rare parameter lists
/// that cannot be cut raw, the tree). `text` must have passed `check_nesting`.
pub fn parse_split(text: &str) -> Option<Pair<'_, Rule>> {
    #[cfg(test)]
    if FORCE_INLINE.with(|f| f.get()) {
        return None;
    }
    let tree = parse(Rule::cdef, text).ok()?;
    let mut seen: rustc_hash::FxHashSet<&str> = Default::default();
    for list in tree
        .clone()
        .into_inner()
        .flatten()
        .filter(|p| p.as_rule() == Rule::raw_params)
    {
        let mut pieces = list.into_inner().peekable();
        while let Some(piece) = pieces.next() {
            let text = piece.as_str();
            if text.starts_with("...") {
                // `...` only as the last parameter, as `params` has it.
                if pieces.peek().is_some() || text.trim_end() != "..." {
                    return None;
                }
            } else if seen.insert(text) && parse(Rule::param_alone, text).is_err() {
                return None;
            }
        }
    }
    Some(tree)
}

#[cfg(test)]
thread_local! {
    /// Tests compare the two readings of parameter lists: when set, `parse_split`
    /// declines and every text is parsed with `cdef_inline` (on this thread).
    pub(crate) static FORCE_INLINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The whole-text parse when `parse_split` gave `None`.
pub fn parse_inline(text: &str) -> Result<Pair<'_, Rule>, pest::error::Error<Rule>> {
    parse(Rule::cdef_inline, text)
}

/// The tree of a whole cdef text, or its syntax error: `parse_split`, else `parse_inline`.
pub fn parse_cdef<'i>(text: &'i str, pos: &Positions) -> Result<Pair<'i, Rule>, CdefError> {
    match parse_split(text) {
        Some(tree) => Ok(tree),
        None => parse_inline(text).map_err(|e| syntax_error(&e, pos, text)),
    }
}

/// Runs the grammar; `text` must have passed `check_nesting`.
pub fn parse<'i>(rule: Rule, text: &'i str) -> Result<Pair<'i, Rule>, pest::error::Error<Rule>> {
    let mut pairs = CdefParser::parse(rule, text)?;
    Ok(pairs.next().expect("the start rule always yields one pair"))
}

fn describe(rule: &Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        declaration | decl_specs => "a declaration",
        typedef_name | tag | name | ident_ref => "an identifier",
        builtin_kw | builtin_type => "a type",
        qual => "a qualifier",
        struct_kw | struct_spec => "'struct' or 'union'",
        enum_kw | enum_spec => "'enum'",
        struct_body | enum_body => "'{'",
        ptr => "'*'",
        nested | param_suffix => "'('",
        array_suffix => "'['",
        bitfield => "':'",
        expr | unary | unsupported_expr | int_lit | char_lit | float_lit => "an expression",
        op_bor | op_bxor | op_band | op_shift | op_add | op_mul => "an operator",
        empty_decl => "';'",
        declarator => "a declarator",
        params | param => "a parameter",
        varargs | dots_type | int_dots | member_dots | enum_dots | value_dots | array_dots => {
            "'...'"
        }
        enumerator => "an enumerator",
        member => "a member",
        EOI => "end of input",
        _ => return None,
    })
}

/// The token at `offset`: an identifier, a number, or one character; empty at the end.
/// The token at `offset` for messages: quoted, or `end of input`.
pub fn token_at(text: &str, offset: usize) -> String {
    match token_text(text, offset) {
        "" => "end of input".to_string(),
        token => format!("'{token}'"),
    }
}

/// Turns a pest error into a CDefError: `cannot parse "LINE"` then
/// `file:line:col: <what went wrong>`, with specific explanations for constructs that
/// are valid C but not accepted by cdef.
pub fn syntax_error(err: &pest::error::Error<Rule>, pos: &Positions, text: &str) -> CdefError {
    let at = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let at = at.min(text.len());
    // The culprit may be the word just before the error position (`int * __restrict z`).
    let before = text[..at].trim_end();
    let prev_word_start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |p| p + 1);
    let prev_word = &before[prev_word_start..];
    let at = if matches!(
        prev_word,
        "__restrict"
            | "__restrict__"
            | "__attribute__"
            | "__declspec"
            | "__asm__"
            | "__asm"
            | "__thread"
            | "_Thread_local"
    ) {
        prev_word_start
    } else {
        at
    };
    let rest = &text[at..];
    let token = token_at(text, at);
    let ident_here = rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    let what = if rest.starts_with("__attribute__") || rest.starts_with("__declspec") {
        "__attribute__ and __declspec are not supported in cdef() (remove them; use cdef(packed=True) \
         for packed structs)"
            .to_string()
    } else if rest.starts_with("__asm") || rest.starts_with("asm") {
        "asm labels are not supported in cdef()".to_string()
    } else if rest.starts_with("__restrict") {
        "'__restrict' is not supported, write 'restrict'".to_string()
    } else if rest.starts_with("__thread") || rest.starts_with("_Thread_local") {
        "thread-local variables are not supported in ABI mode".to_string()
    } else if let Some(c) = rest.chars().next().filter(|c| {
        !(c.is_ascii_alphanumeric() || " \t\r\n\x0b\x0c_$*()[]{};:,.=+-~!%^&|<>/?'\"".contains(*c))
    }) {
        format!("illegal character '{c}'")
    } else if rest.is_empty() {
        let expected = match &err.variant {
            ErrorVariant::ParsingError { positives, .. } => expected_list(positives),
            _ => String::new(),
        };
        if expected.is_empty() {
            "unexpected end of input".to_string()
        } else {
            format!("unexpected end of input, expected {expected}")
        }
    } else {
        let expected = match &err.variant {
            ErrorVariant::ParsingError { positives, .. } => expected_list(positives),
            ErrorVariant::CustomError { message } => message.clone(),
        };
        let hint = if ident_here {
            " (unknown type names must be declared with typedef first; cdef() does not know macros)"
        } else {
            ""
        };
        if expected.is_empty() {
            format!("unexpected {token}{hint}")
        } else {
            format!("unexpected {token}, expected {expected}{hint}")
        }
    };
    CdefError::cannot_parse(ErrorKind::CDef, pos.location(at), what)
}

fn expected_list(positives: &[Rule]) -> String {
    let mut names: Vec<&str> = positives.iter().filter_map(describe).collect();
    names.dedup();
    let mut seen = Vec::new();
    for n in names {
        if !seen.contains(&n) {
            seen.push(n);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen[0].to_string(),
        _ => {
            let last = seen.pop().unwrap();
            format!("{} or {last}", seen.join(", "))
        }
    }
}

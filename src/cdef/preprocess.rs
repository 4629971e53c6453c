//! The little preprocessing cdef needs: comments, line continuations and `#` lines.
//!
//! The output has exactly the byte length of the input (everything removed is blanked
//! with spaces, and every whitespace character becomes a space, except a newline that
//! ends an unterminated quote), so a byte offset into it is also an offset into the
//! user's text and error positions need no remapping table.

use super::{CdefError, ErrorKind, SourceLocation};

pub struct Define {
    pub offset: usize,
    pub name: String,
    /// `None` for `#define N ...`.
    pub value: Option<i128>,
}

/// `# 12 "file.h"`: from `offset` on, line numbers count from `line` in `file`.
pub struct LineMarker {
    pub offset: usize,
    pub file: String,
    pub line: usize,
}

pub struct Preprocessed {
    pub text: String,
    pub defines: Vec<Define>,
    pub markers: Vec<LineMarker>,
}

pub const DEFAULT_FILE: &str = "<cdef source string>";

/// Maps byte offsets of the source to `file:line:col`.
pub struct Positions<'a> {
    pub source: &'a str,
    pub markers: &'a [LineMarker],
}

impl Positions<'_> {
    /// (file, 1-based line, 1-based column) of byte `offset`.
    pub fn locate(&self, offset: usize) -> (String, usize, usize) {
        let offset = offset.min(self.source.len());
        let bytes = self.source.as_bytes();
        let (file, base_line, from) = match self.markers.iter().rev().find(|m| m.offset <= offset) {
            Some(m) => (m.file.clone(), m.line, m.offset),
            None => (DEFAULT_FILE.to_string(), 1, 0),
        };
        let line = base_line + bytes[from..offset].iter().filter(|&&b| b == b'\n').count();
        let line_start = bytes[..offset]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let col = self.source[line_start..offset].chars().count() + 1;
        (file, line, col)
    }

    /// The physical source line containing `offset`, trimmed.
    pub fn line_text(&self, offset: usize) -> &str {
        let offset = offset.min(self.source.len());
        let bytes = self.source.as_bytes();
        let start = bytes[..offset]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let end = bytes[offset..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |p| offset + p);
        self.source[start..end].trim()
    }
}

fn define_syntax_error(name: &str, rest: &str) -> String {
    format!(
        "only supports one of the following syntax:\n  #define {name} ...     (literally dot-dot-dot)\n  \
         #define {name} NUMBER  (with NUMBER an integer constant, decimal/hex/octal)\ngot:\n  #define {name} {rest}"
    )
}

/// Parses an integer literal as `#define` accepts it: decimal, hex, octal, binary, with
/// `u`/`l` suffixes and an optional sign.
pub fn parse_int_literal(text: &str) -> Option<i128> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r.trim_start()),
        None => (false, t.strip_prefix('+').map_or(t, |r| r.trim_start())),
    };
    let t = t.trim_end_matches(['u', 'U', 'l', 'L']);
    if t.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h, 16)
    } else if let Some(b) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        (b, 2)
    } else if t.len() > 1 && t.starts_with('0') {
        (&t[1..], 8)
    } else {
        (t, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i128::from_str_radix(digits, radix).ok()?;
    if v > u64::MAX as i128 {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// Removes `/* */` and `//` comments from one directive line.
fn strip_comments(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && i + 1 < b.len() && b[i + 1] == b'/' {
            break;
        }
        if b[i] == b'/' && i + 1 < b.len() && b[i + 1] == b'*' {
            match line[i + 2..].find("*/") {
                Some(e) => {
                    out.push(' ');
                    i = i + 2 + e + 2;
                    continue;
                }
                None => break,
            }
        }
        let ch = line[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Bytes `preprocess` may have to act on.
static SPECIAL: [bool; 256] = byte_set(b"\n \t\r\x0b\x0c\\/\"'#");

/// A lookup table of the bytes in `bytes`.
pub(crate) const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
}

pub fn preprocess(source: &str) -> Result<Preprocessed, CdefError> {
    let src = source.as_bytes();
    let mut out: Vec<u8> = src.to_vec();
    let mut defines = Vec::new();
    let mut markers = Vec::new();
    let mut i = 0;
    let mut at_line_start = true;
    let n = src.len();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        out[from..to].fill(b' ');
    };
    while i < n {
        let c = src[i];
        match c {
            b'\n' => {
                // The grammar's whitespace is ' ' alone (one range test per character
                // instead of two): line numbers come from the source, not this text.
                out[i] = b' ';
                at_line_start = true;
                i += 1;
            }
            b' ' => i += 1,
            // The grammar only knows ' ' and '\n' as whitespace (see grammar/cdef.pest).
            b'\t' | b'\r' | b'\x0c' | b'\x0b' => {
                out[i] = b' ';
                i += 1;
            }
            b'\\'
                if i + 1 < n
                    && (src[i + 1] == b'\n'
                        || (src[i + 1] == b'\r' && i + 2 < n && src[i + 2] == b'\n')) =>
            {
                let len = if src[i + 1] == b'\n' { 2 } else { 3 };
                // A continuation does not start a new logical line.
                blank(&mut out, i, i + len);
                i += len;
            }
            b'/' if i + 1 < n && src[i + 1] == b'/' => {
                // To the end of the line; a backslash takes the next character with it,
                // so a backslash-newline continues the comment on the next line (C's
                // line splicing; cffi's comment rule, which also lets `\\` end it).
                let mut end = i + 2;
                while end < n && src[end] != b'\n' {
                    end += if src[end] == b'\\' {
                        if src.get(end + 1) == Some(&b'\r') && src.get(end + 2) == Some(&b'\n') {
                            3
                        } else {
                            2
                        }
                    } else {
                        1
                    };
                }
                let end = end.min(n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if i + 1 < n && src[i + 1] == b'*' => {
                let end = match source[i + 2..].find("*/") {
                    Some(p) => i + 2 + p + 2,
                    None => {
                        let pos = Positions {
                            source,
                            markers: &markers,
                        };
                        return Err(CdefError::at(
                            ErrorKind::CDef,
                            pos.location(i),
                            "unterminated comment",
                        ));
                    }
                };
                blank(&mut out, i, end);
                i = end;
            }
            b'"' | b'\'' => {
                at_line_start = false;
                let mut j = i + 1;
                while j < n && src[j] != c && src[j] != b'\n' {
                    if src[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                // A literal left open at the end of its line keeps that newline (this
                // arm steps over it), which the grammar's literals refuse: a literal
                // does not span lines.
                i = (j + 1).min(n);
            }
            b'#' if at_line_start => {
                // The logical line, continuations joined.
                let start = i;
                let mut j = i;
                let mut logical = String::new();
                while j < n && src[j] != b'\n' {
                    if src[j] == b'\\' && j + 1 < n && src[j + 1] == b'\n' {
                        j += 2;
                        continue;
                    }
                    if src[j] == b'/' && j + 1 < n && src[j + 1] == b'*' {
                        // A block comment may span lines even here.
                        if let Some(p) = source[j + 2..].find("*/") {
                            logical.push(' ');
                            logical.push_str(&source[j..j + 2 + p + 2].replace('\n', " "));
                            j = j + 2 + p + 2;
                            continue;
                        }
                    }
                    let ch = source[j..].chars().next().unwrap();
                    logical.push(ch);
                    j += ch.len_utf8();
                }
                let end = j;
                blank(&mut out, start, end);
                let next_line = (end + 1).min(n);
                let line = strip_comments(&logical);
                handle_directive(
                    source,
                    start,
                    next_line,
                    line.trim(),
                    &mut defines,
                    &mut markers,
                )?;
                i = end;
            }
            _ => {
                at_line_start = false;
                i += 1;
                // The bytes no arm above treats specially (most of a header) in one run.
                while i < n && !SPECIAL[src[i] as usize] {
                    i += 1;
                }
            }
        }
    }
    // Only ASCII bytes were replaced by ASCII spaces, so this stays valid UTF-8.
    let text = String::from_utf8(out).expect("blanking keeps UTF-8 valid");
    Ok(Preprocessed {
        text,
        defines,
        markers,
    })
}

fn handle_directive(
    source: &str,
    start: usize,
    next_line: usize,
    line: &str,
    defines: &mut Vec<Define>,
    markers: &mut Vec<LineMarker>,
) -> Result<(), CdefError> {
    let body = line[1..].trim_start();
    let word_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let word = &body[..word_end];
    let rest = body[word_end..].trim();
    let err = |msg: String| {
        let here = Positions { source, markers }.location(start).quoting(line);
        CdefError::cannot_parse(ErrorKind::CDef, here, msg)
    };
    // `# 12 "file"` and `#line 12 "file"`.
    let numbered = if word.chars().all(|c| c.is_ascii_digit()) && !word.is_empty() {
        Some(body)
    } else if word == "line" {
        Some(rest)
    } else {
        None
    };
    if let Some(spec) = numbered {
        let mut parts = spec.splitn(2, char::is_whitespace);
        let num = parts.next().unwrap_or("");
        let Ok(lineno) = num.parse::<usize>() else {
            return Err(err(format!(
                "invalid line directive: expected a line number, got '{num}'"
            )));
        };
        let file_part = parts.next().unwrap_or("").trim();
        let file = if let Some(quoted) = file_part.strip_prefix('"') {
            match quoted.find('"') {
                Some(e) => quoted[..e].to_string(),
                None => return Err(err("invalid line directive: unterminated file name".into())),
            }
        } else {
            markers
                .last()
                .map_or(DEFAULT_FILE.to_string(), |m| m.file.clone())
        };
        markers.push(LineMarker {
            offset: next_line,
            file,
            line: lineno,
        });
        return Ok(());
    }
    match word {
        "define" => {
            let name_end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            let name = &rest[..name_end];
            let value = rest[name_end..].trim();
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(err(format!("#define needs a name, got '{rest}'")));
            }
            let after_name = &rest[name_end..];
            if after_name.starts_with('(') {
                return Err(CdefError::new(ErrorKind::CDef, define_syntax_error(name, after_name.trim())));
            }
            let value = if value == "..." {
                None
            } else {
                match parse_int_literal(value) {
                    Some(v) => Some(v),
                    None => return Err(CdefError::new(ErrorKind::CDef, define_syntax_error(name, value))),
                }
            };
            defines.push(Define { offset: start, name: name.to_string(), value });
            Ok(())
        }
        // cffi ignores #pragma (with a warning); `pack` must be given as cdef(pack=N).
        "pragma" => Ok(()),
        "include" => Err(err(
            "#include is not supported: cdef() takes the C declarations themselves (copy the ones you \
             need from the header)"
                .into(),
        )),
        "if" | "ifdef" | "ifndef" | "elif" | "else" | "endif" | "undef" | "error" | "warning" => Err(err(format!(
            "#{word}: directives other than #define and line markers are not supported in cdef() \
             (cdef() does not run the C preprocessor)"
        ))),
        _ => Err(err(format!("unsupported directive '#{word}' (cdef() does not run the C preprocessor)"))),
    }
}

impl Positions<'_> {
    /// The place of byte `offset` of the text, for an error message.
    pub(crate) fn location(&self, offset: usize) -> SourceLocation {
        let (file, line, column) = self.locate(offset);
        let offset = offset.min(self.source.len());
        SourceLocation {
            file,
            line,
            column,
            offset,
            source_line: self.line_text(offset).to_string(),
            token: token_text(self.source, offset).to_string(),
        }
    }
}

pub fn token_text(text: &str, offset: usize) -> &str {
    let rest = &text[offset.min(text.len())..];
    let Some(first) = rest.chars().next() else {
        return "";
    };
    if first.is_ascii_alphanumeric() || first == '_' || first == '$' {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(rest.len());
        &rest[..end]
    } else {
        &rest[..first.len_utf8()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_keep_offsets() {
        let src = "int a; /* x\n y */ int b; // c\n#define N 0x10\nint c;\\\n int d;";
        let p = preprocess(src).unwrap();
        assert_eq!(p.text.len(), src.len());
        assert!(!p.text.contains("/*") && !p.text.contains("//") && !p.text.contains('#'));
        // Every whitespace byte became a space, in place.
        assert!(!p.text.contains('\n'));
        for (i, b) in src.bytes().enumerate() {
            if b == b'\n' {
                assert_eq!(p.text.as_bytes()[i], b' ');
            }
        }
        assert_eq!(p.defines.len(), 1);
        assert_eq!(p.defines[0].value, Some(16));
    }

    /// A quote left open at the end of its line keeps the newline: the grammar's
    /// literals end there, as they would in C.
    #[test]
    fn open_quote_keeps_its_newline() {
        let src = "extern \"Pyth\nint x; \"a\"\n";
        let p = preprocess(src).unwrap();
        assert_eq!(p.text, "extern \"Pyth\nint x; \"a\" ");
    }

    #[test]
    fn int_literals() {
        assert_eq!(parse_int_literal("42"), Some(42));
        assert_eq!(parse_int_literal("0x1fUL"), Some(31));
        assert_eq!(parse_int_literal("017"), Some(15));
        assert_eq!(parse_int_literal("-3L"), Some(-3));
        assert_eq!(parse_int_literal("0"), Some(0));
        assert_eq!(parse_int_literal("1+2"), None);
        assert_eq!(parse_int_literal("08"), None);
        assert_eq!(parse_int_literal(""), None);
    }

    #[test]
    fn line_markers_rename_positions() {
        let src = "int a;\n# 41 \"foo.h\"\nint b;\nint c @;";
        let p = preprocess(src).unwrap();
        let pos = Positions {
            source: src,
            markers: &p.markers,
        };
        let at = src.find('@').unwrap();
        assert_eq!(pos.locate(at), ("foo.h".to_string(), 42, 7));
    }
}

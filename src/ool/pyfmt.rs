//! The text of an out-of-line module, byte for byte as cffi's `emit_python_code`
//! writes it (packagers rebuild and compare the files).

use std::fmt::Write;

use super::tables::{RawTables, VERSION_BASE};

/// `bytes` as a Python bytes literal the way cffi spells table items: opcode and index
/// words as `\xNN` (upper-case hex), names as text.
fn bytes_literal(out: &mut String, b: &[u8], words: usize) {
    out.push_str("b'");
    let (head, tail) = b.split_at((words * 4).min(b.len()));
    for c in head {
        let _ = write!(out, "\\x{c:02X}");
    }
    for c in tail {
        match c {
            0 => out.push_str("\\x00"),
            c => out.push(*c as char),
        }
    }
    out.push('\'');
}

/// A tuple the way cffi prints one: items joined by `,`, a 1-tuple with a trailing
/// comma.
fn tuple(items: Vec<String>) -> String {
    if items.len() == 1 {
        format!("({},)", items[0])
    } else {
        format!("({})", items.join(","))
    }
}

/// The module `module_name`, importing the backend as `backend` (cffi's files say
/// `_cffi_backend`), with `includes` the module names of the included FFIs in order.
pub fn render_module(
    module_name: &str,
    backend: &str,
    raw: &RawTables,
    includes: &[String],
) -> String {
    let mut out = String::new();
    out.push_str("# auto-generated file\n");
    let _ = writeln!(out, "import {backend}");
    for (i, inc) in includes.iter().enumerate() {
        let _ = writeln!(out, "from {inc} import ffi as _ffi{i}");
    }
    out.push('\n');
    let _ = writeln!(out, "ffi = {backend}.FFI('{module_name}',");
    let _ = writeln!(out, "    _version = 0x{VERSION_BASE:x},");
    let mut types = String::new();
    bytes_literal(&mut types, &raw.types, raw.types.len() / 4);
    let _ = writeln!(out, "    _types = {types},");
    if !raw.globals.is_empty() {
        let items = raw
            .globals
            .iter()
            .map(|(b, v)| {
                let mut s = String::new();
                bytes_literal(&mut s, b, 1);
                let _ = write!(s, ",{v}");
                s
            })
            .collect();
        let _ = writeln!(out, "    _globals = {},", tuple(items));
    }
    if !raw.struct_unions.is_empty() {
        let items = raw
            .struct_unions
            .iter()
            .map(|entry| {
                let mut parts = Vec::with_capacity(entry.len());
                for (j, b) in entry.iter().enumerate() {
                    let mut s = String::new();
                    // The header has two words; a field one, or two for a bitfield.
                    let words = if j == 0 || b.get(3) == Some(&(super::tables::Op::Bitfield as u8))
                    {
                        2
                    } else {
                        1
                    };
                    bytes_literal(&mut s, b, words);
                    parts.push(s);
                }
                // cffi writes `(header,field,...)`, and `(header,)` without fields.
                match parts.split_first() {
                    Some((head, fields)) => format!("({head},{})", fields.join(",")),
                    None => "()".to_string(),
                }
            })
            .collect();
        let _ = writeln!(out, "    _struct_unions = {},", tuple(items));
    }
    if !raw.enums.is_empty() {
        let items = raw
            .enums
            .iter()
            .map(|b| {
                let mut s = String::new();
                bytes_literal(&mut s, b, 2);
                s
            })
            .collect();
        let _ = writeln!(out, "    _enums = {},", tuple(items));
    }
    if !raw.typenames.is_empty() {
        let items = raw
            .typenames
            .iter()
            .map(|b| {
                let mut s = String::new();
                bytes_literal(&mut s, b, 1);
                s
            })
            .collect();
        let _ = writeln!(out, "    _typenames = {},", tuple(items));
    }
    if !includes.is_empty() {
        let names: Vec<String> = (0..includes.len()).map(|i| format!("_ffi{i}")).collect();
        let _ = writeln!(out, "    _includes = ({},),", names.join(", "));
    }
    out.push_str(")\n");
    out
}

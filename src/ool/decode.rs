//! Reading the tables of an out-of-line module (`RawTables`, the bytes the module
//! text carries) into `Tables`, and checking them completely: a `Module` only exists
//! for tables whose every index, opcode, name and order is valid, so realizing one
//! never meets a malformed table.

use super::error::DecodeError;
use super::tables::*;

/// What a `_types` slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotKind {
    /// A type (possibly a function's parameter).
    Type,
    /// The length after an `ARRAY`.
    Len,
    /// A `FUNCTION_END`.
    End,
}

/// Validated tables.
#[derive(Clone, Debug)]
pub struct Module {
    pub tables: Tables,
    pub(crate) kinds: Vec<SlotKind>,
}

impl Module {
    /// The `_struct_unions` entry of that name (binary search: the table is sorted).
    pub fn struct_index(&self, name: &str) -> Option<usize> {
        self.tables
            .struct_unions
            .binary_search_by(|e| e.name.as_str().cmp(name))
            .ok()
    }
    pub fn enum_index(&self, name: &str) -> Option<usize> {
        self.tables
            .enums
            .binary_search_by(|e| e.name.as_str().cmp(name))
            .ok()
    }
    pub fn typename_index(&self, name: &str) -> Option<usize> {
        self.tables
            .typenames
            .binary_search_by(|e| e.name.as_str().cmp(name))
            .ok()
    }
    pub fn global_index(&self, name: &str) -> Option<usize> {
        self.tables
            .globals
            .binary_search_by(|e| e.name.as_str().cmp(name))
            .ok()
    }

    /// Whether slot `i` holds a type (not an array length or a `FUNCTION_END`).
    pub fn is_type_slot(&self, i: usize) -> bool {
        self.kinds.get(i) == Some(&SlotKind::Type)
    }

    /// The parameter slots of the `FUNCTION` at `slot` and its `FUNCTION_END` slot.
    pub(crate) fn params(&self, slot: usize) -> (std::ops::Range<usize>, usize) {
        let mut end = slot + 1;
        while self.kinds[end] != SlotKind::End {
            end += 1;
        }
        (slot + 1..end, end)
    }
}

/// Checks `_version` as cffi's reader does: 0x2601 to 0x28FF; a module without it is
/// only valid when its `_types` is empty (all other tables are then ignored).
pub fn check_version(version: Option<i64>, types_empty: bool) -> Result<bool, DecodeError> {
    match version {
        None if types_empty => Ok(false),
        None => Err(DecodeError::UnknownVersion { version: None }),
        Some(v) if (VERSION_MIN as i64..=VERSION_MAX as i64).contains(&v) => Ok(true),
        Some(v) => Err(DecodeError::UnknownVersion { version: Some(v) }),
    }
}

/// Parses and validates the tables.
pub fn decode(raw: &RawTables) -> Result<Module, DecodeError> {
    validate(parse(raw)?)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn text(table: &'static str, index: usize, b: &[u8]) -> Result<String, DecodeError> {
    match std::str::from_utf8(b) {
        Ok(s) => Ok(s.to_string()),
        Err(_) => Err(DecodeError::BadName {
            table,
            index,
            name: String::from_utf8_lossy(b).into_owned(),
        }),
    }
}

/// Splits the bytes into records; checks only what is needed to do so.
pub fn parse(raw: &RawTables) -> Result<Tables, DecodeError> {
    if !raw.types.len().is_multiple_of(4) {
        return Err(DecodeError::TypesLength {
            len: raw.types.len(),
        });
    }
    let types: Vec<u32> = (0..raw.types.len() / 4)
        .map(|i| be32(&raw.types, i * 4))
        .collect();

    let mut globals = Vec::with_capacity(raw.globals.len());
    for (i, (b, value)) in raw.globals.iter().enumerate() {
        if b.len() < 4 {
            return Err(DecodeError::Truncated {
                table: "_globals",
                index: i,
                len: b.len(),
            });
        }
        let w = be32(b, 0);
        let name = text("_globals", i, &b[4..])?;
        let (op, arg) = (word_op(w), word_arg(w));
        let slot = |arg: i32| -> Result<u32, DecodeError> {
            u32::try_from(arg).map_err(|_| DecodeError::IndexOutOfRange {
                table: "_globals",
                at: i,
                index: arg as i64,
                len: types.len(),
            })
        };
        let in_range = |v: i128| -> Result<i128, DecodeError> {
            if (i64::MIN as i128..=u64::MAX as i128).contains(&v) {
                Ok(v)
            } else {
                Err(DecodeError::ValueOutOfRange {
                    name: name.clone(),
                    value: v,
                })
            }
        };
        let kind = match Op::from_u8(op) {
            Some(Op::DlopenFunc) => GlobalKind::Function { slot: slot(arg)? },
            Some(Op::GlobalVar) => GlobalKind::Variable { slot: slot(arg)? },
            Some(Op::DlopenConst) => GlobalKind::Constant { slot: slot(arg)? },
            Some(Op::ConstantInt) if arg == -1 => GlobalKind::IntConstant {
                value: in_range(*value)?,
            },
            Some(Op::Enum) if arg == -1 => GlobalKind::Enumerator {
                value: in_range(*value)?,
            },
            _ => return Err(DecodeError::BadGlobalOp { name, op }),
        };
        globals.push(Global { name, kind });
    }

    let mut struct_unions = Vec::with_capacity(raw.struct_unions.len());
    for (i, items) in raw.struct_unions.iter().enumerate() {
        let Some(head) = items.first() else {
            return Err(DecodeError::Truncated {
                table: "_struct_unions",
                index: i,
                len: 0,
            });
        };
        if head.len() < 8 {
            return Err(DecodeError::Truncated {
                table: "_struct_unions",
                index: i,
                len: head.len(),
            });
        }
        let name = text("_struct_unions", i, &head[8..])?;
        let mut fields = Vec::with_capacity(items.len() - 1);
        for (j, b) in items[1..].iter().enumerate() {
            if b.len() < 4 {
                return Err(DecodeError::Truncated {
                    table: "_struct_unions",
                    index: i,
                    len: b.len(),
                });
            }
            let w = be32(b, 0);
            let (op, arg) = (word_op(w), word_arg(w));
            let (bits, rest) = match Op::from_u8(op) {
                Some(Op::Noop) => (None, &b[4..]),
                Some(Op::Bitfield) if b.len() >= 8 => (Some(be32(b, 4)), &b[8..]),
                Some(Op::Bitfield) => {
                    return Err(DecodeError::Truncated {
                        table: "_struct_unions",
                        index: i,
                        len: b.len(),
                    })
                }
                _ => {
                    return Err(DecodeError::BadFieldOp {
                        owner: name,
                        index: j,
                        op,
                    })
                }
            };
            let slot = u32::try_from(arg).map_err(|_| DecodeError::IndexOutOfRange {
                table: "_struct_unions",
                at: i,
                index: arg as i64,
                len: types.len(),
            })?;
            fields.push(FieldEntry {
                name: text("_struct_unions", i, rest)?,
                slot,
                bits,
            });
        }
        struct_unions.push(StructEntry {
            name,
            type_index: be32(head, 0),
            flags: be32(head, 4),
            fields,
        });
    }

    let mut enums = Vec::with_capacity(raw.enums.len());
    for (i, b) in raw.enums.iter().enumerate() {
        if b.len() < 8 {
            return Err(DecodeError::Truncated {
                table: "_enums",
                index: i,
                len: b.len(),
            });
        }
        let rest = &b[8..];
        let Some(nul) = rest.iter().position(|c| *c == 0) else {
            return Err(DecodeError::MissingNul {
                name: String::from_utf8_lossy(rest).into_owned(),
            });
        };
        let name = text("_enums", i, &rest[..nul])?;
        let list = text("_enums", i, &rest[nul + 1..])?;
        let enumerators = if list.is_empty() {
            Vec::new()
        } else {
            list.split(',').map(str::to_string).collect()
        };
        enums.push(EnumEntry {
            name,
            type_index: be32(b, 0),
            prim: be32(b, 4) as i32,
            enumerators,
        });
    }

    let mut typenames = Vec::with_capacity(raw.typenames.len());
    for (i, b) in raw.typenames.iter().enumerate() {
        if b.len() < 4 {
            return Err(DecodeError::Truncated {
                table: "_typenames",
                index: i,
                len: b.len(),
            });
        }
        typenames.push(TypenameEntry {
            name: text("_typenames", i, &b[4..])?,
            type_index: be32(b, 0),
        });
    }
    Ok(Tables {
        types,
        globals,
        struct_unions,
        enums,
        typenames,
        num_includes: raw.num_includes,
    })
}

fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// `point`, `$foo_t`, `$1`, `$$foo_p`.
fn is_tag_name(s: &str) -> bool {
    let rest = s
        .strip_prefix('$')
        .map(|r| r.strip_prefix('$').unwrap_or(r));
    match rest {
        None => is_ident(s),
        Some(r) => !r.is_empty() && r.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'),
    }
}

fn check_sorted<'a>(
    table: &'static str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), DecodeError> {
    let mut prev: Option<&str> = None;
    for (i, n) in names.enumerate() {
        if prev.is_some_and(|p| p >= n) {
            return Err(DecodeError::NotSorted {
                table,
                index: i,
                name: n.to_string(),
            });
        }
        prev = Some(n);
    }
    Ok(())
}

/// Checks every rule of the format; see `DecodeError` for the list.
pub fn validate(tables: Tables) -> Result<Module, DecodeError> {
    let types = &tables.types;
    let n = types.len();
    // Arguments are signed 24-bit: indexes beyond that cannot be written.
    if n > (1 << 23) {
        return Err(DecodeError::TooManySlots { len: n });
    }
    let kinds = slot_kinds(&tables)?;
    let is_type = |table: &'static str, at: usize, index: i64| -> Result<usize, DecodeError> {
        if index < 0 || index as usize >= n {
            return Err(DecodeError::IndexOutOfRange {
                table,
                at,
                index,
                len: n,
            });
        }
        if kinds[index as usize] != SlotKind::Type {
            return Err(DecodeError::NotAType {
                table,
                at,
                target: index as usize,
            });
        }
        Ok(index as usize)
    };
    let count =
        |table: &'static str, at: usize, index: i32, len: usize| -> Result<(), DecodeError> {
            if index < 0 || index as usize >= len {
                return Err(DecodeError::IndexOutOfRange {
                    table,
                    at,
                    index: index as i64,
                    len,
                });
            }
            Ok(())
        };

    // Every slot's argument.
    for (i, w) in types.iter().enumerate() {
        if kinds[i] != SlotKind::Type {
            continue;
        }
        let arg = word_arg(*w);
        match Op::from_u8(word_op(*w)) {
            Some(Op::Primitive) => {
                if arg < 0 || arg as usize >= PRIMS.len() {
                    return Err(DecodeError::BadPrimitive {
                        slot: i,
                        index: arg,
                    });
                }
            }
            Some(Op::Pointer | Op::Array | Op::OpenArray | Op::Noop | Op::Function) => {
                is_type("_types", i, arg as i64)?;
            }
            Some(Op::StructUnion) => count("_types", i, arg, tables.struct_unions.len())?,
            Some(Op::Enum) => count("_types", i, arg, tables.enums.len())?,
            Some(Op::Typename) => count("_types", i, arg, tables.typenames.len())?,
            _ => unreachable!("slot_kinds accepts only type ops at type slots"),
        }
    }

    check_sorted("_globals", tables.globals.iter().map(|g| g.name.as_str()))?;
    for (i, g) in tables.globals.iter().enumerate() {
        if !is_ident(&g.name) {
            return Err(DecodeError::BadName {
                table: "_globals",
                index: i,
                name: g.name.clone(),
            });
        }
        match g.kind {
            GlobalKind::Function { slot } => {
                let s = is_type("_globals", i, slot as i64)?;
                if word_op(types[s]) != Op::Function as u8 {
                    return Err(DecodeError::NotAFunction {
                        name: g.name.clone(),
                        slot: s,
                    });
                }
            }
            GlobalKind::Variable { slot } | GlobalKind::Constant { slot } => {
                is_type("_globals", i, slot as i64)?;
            }
            GlobalKind::IntConstant { .. } | GlobalKind::Enumerator { .. } => {}
        }
    }

    check_sorted(
        "_struct_unions",
        tables.struct_unions.iter().map(|s| s.name.as_str()),
    )?;
    for (i, s) in tables.struct_unions.iter().enumerate() {
        if !is_tag_name(&s.name) {
            return Err(DecodeError::BadName {
                table: "_struct_unions",
                index: i,
                name: s.name.clone(),
            });
        }
        if s.flags & !F_ALL != 0 {
            return Err(DecodeError::BadFlags {
                name: s.name.clone(),
                flags: s.flags,
            });
        }
        let ti = s.type_index as usize;
        if ti >= n || types[ti] != word(Op::StructUnion, i as i32) || kinds[ti] != SlotKind::Type {
            return Err(DecodeError::WrongTypeIndex {
                table: "_struct_unions",
                name: s.name.clone(),
                type_index: s.type_index,
            });
        }
        if (s.is_opaque() || s.is_external()) && !s.fields.is_empty() {
            return Err(DecodeError::FieldsOnOpaque {
                name: s.name.clone(),
            });
        }
        let mut seen: Vec<&str> = Vec::with_capacity(s.fields.len());
        for (j, f) in s.fields.iter().enumerate() {
            if !f.name.is_empty() && !is_ident(&f.name) {
                return Err(DecodeError::BadName {
                    table: "_struct_unions",
                    index: i,
                    name: f.name.clone(),
                });
            }
            is_type("_struct_unions", i, f.slot as i64)?;
            if let Some(width) = f.bits.filter(|b| *b > 0xFFFF) {
                return Err(DecodeError::BadBitWidth {
                    owner: s.name.clone(),
                    index: j,
                    width,
                });
            }
            if !f.name.is_empty() {
                if seen.contains(&f.name.as_str()) {
                    return Err(DecodeError::DuplicateField {
                        owner: s.name.clone(),
                        field: f.name.clone(),
                    });
                }
                seen.push(&f.name);
            }
        }
    }

    check_sorted("_enums", tables.enums.iter().map(|e| e.name.as_str()))?;
    let mut listed: Vec<&str> = Vec::new();
    for (i, e) in tables.enums.iter().enumerate() {
        if !is_tag_name(&e.name) {
            return Err(DecodeError::BadName {
                table: "_enums",
                index: i,
                name: e.name.clone(),
            });
        }
        let ti = e.type_index as usize;
        if ti >= n || types[ti] != word(Op::Enum, i as i32) || kinds[ti] != SlotKind::Type {
            return Err(DecodeError::WrongTypeIndex {
                table: "_enums",
                name: e.name.clone(),
                type_index: e.type_index,
            });
        }
        let (lo, hi): (i128, i128) = match e.prim {
            PRIM_INT8 => (i8::MIN as i128, i8::MAX as i128),
            PRIM_UINT8 => (0, u8::MAX as i128),
            PRIM_INT16 => (i16::MIN as i128, i16::MAX as i128),
            PRIM_UINT16 => (0, u16::MAX as i128),
            PRIM_INT32 => (i32::MIN as i128, i32::MAX as i128),
            PRIM_UINT32 => (0, u32::MAX as i128),
            PRIM_INT64 => (i64::MIN as i128, i64::MAX as i128),
            PRIM_UINT64 => (0, u64::MAX as i128),
            prim => {
                return Err(DecodeError::BadEnumPrim {
                    name: e.name.clone(),
                    prim,
                })
            }
        };
        for item in &e.enumerators {
            if !is_ident(item) {
                return Err(DecodeError::BadName {
                    table: "_enums",
                    index: i,
                    name: item.clone(),
                });
            }
            let found = tables
                .globals
                .binary_search_by(|g| g.name.as_str().cmp(item))
                .ok()
                .map(|gi| &tables.globals[gi].kind);
            match found {
                Some(GlobalKind::Enumerator { value }) => {
                    if !(lo..=hi).contains(value) {
                        return Err(DecodeError::ValueOutOfRange {
                            name: item.clone(),
                            value: *value,
                        });
                    }
                }
                _ => {
                    return Err(DecodeError::EnumeratorMissing {
                        owner: e.name.clone(),
                        name: item.clone(),
                    })
                }
            }
            listed.push(item);
        }
    }
    listed.sort_unstable();
    if let Some(w) = listed.windows(2).find(|w| w[0] == w[1]) {
        return Err(DecodeError::DuplicateEnumerator {
            name: w[0].to_string(),
        });
    }
    for g in &tables.globals {
        if matches!(g.kind, GlobalKind::Enumerator { .. })
            && listed.binary_search(&g.name.as_str()).is_err()
        {
            return Err(DecodeError::OrphanEnumerator {
                name: g.name.clone(),
            });
        }
    }

    check_sorted(
        "_typenames",
        tables.typenames.iter().map(|t| t.name.as_str()),
    )?;
    for (i, t) in tables.typenames.iter().enumerate() {
        if !is_ident(&t.name) {
            return Err(DecodeError::BadName {
                table: "_typenames",
                index: i,
                name: t.name.clone(),
            });
        }
        is_type("_typenames", i, t.type_index as i64)?;
    }

    let module = Module { tables, kinds };
    check_slot_cycles(&module)?;
    check_by_value_cycles(&module)?;
    Ok(module)
}

/// Classifies the slots: functions (FUNCTION, parameters, END), arrays (ARRAY, length)
/// and single-slot types; rejects opcodes that have no place in `_types`.
fn slot_kinds(tables: &Tables) -> Result<Vec<SlotKind>, DecodeError> {
    let types = &tables.types;
    let mut kinds = vec![SlotKind::Type; types.len()];
    let mut i = 0;
    let op_at = |i: usize| -> Result<Op, DecodeError> {
        let b = word_op(types[i]);
        Op::from_u8(b).ok_or(DecodeError::UnknownOp { slot: i, op: b })
    };
    while i < types.len() {
        match op_at(i)? {
            Op::Primitive
            | Op::Pointer
            | Op::OpenArray
            | Op::StructUnion
            | Op::Enum
            | Op::Noop
            | Op::Typename => i += 1,
            Op::Array => {
                if i + 1 >= types.len() {
                    return Err(DecodeError::Truncated {
                        table: "_types",
                        index: i,
                        len: 4,
                    });
                }
                if types[i + 1] >= 1 << 31 {
                    return Err(DecodeError::ArrayTooLong {
                        slot: i,
                        length: types[i + 1],
                    });
                }
                kinds[i + 1] = SlotKind::Len;
                i += 2;
            }
            Op::Function => {
                let start = i;
                i += 1;
                loop {
                    if i >= types.len() {
                        return Err(DecodeError::UnterminatedFunction { slot: start });
                    }
                    match op_at(i)? {
                        Op::Primitive
                        | Op::Pointer
                        | Op::StructUnion
                        | Op::Enum
                        | Op::Noop
                        | Op::Typename => i += 1,
                        Op::FunctionEnd => {
                            let flags = word_arg(types[i]);
                            if flags & !(END_VARIADIC | END_STDCALL) != 0 {
                                return Err(DecodeError::BadFunctionEnd { slot: i, flags });
                            }
                            kinds[i] = SlotKind::End;
                            i += 1;
                            break;
                        }
                        op => {
                            return Err(DecodeError::MisplacedOp {
                                slot: i,
                                op: op.name(),
                            })
                        }
                    }
                }
            }
            op => {
                return Err(DecodeError::MisplacedOp {
                    slot: i,
                    op: op.name(),
                })
            }
        }
    }
    Ok(kinds)
}

/// The slots a type slot's realization needs first. Structs and unions need nothing:
/// they are cached before their fields, which is what lets pointers make cycles.
fn slot_deps(m: &Module, i: usize, out: &mut Vec<usize>) {
    let w = m.tables.types[i];
    let arg = word_arg(w);
    match Op::from_u8(word_op(w)) {
        Some(Op::Pointer | Op::Array | Op::OpenArray | Op::Noop) => out.push(arg as usize),
        Some(Op::Typename) => out.push(m.tables.typenames[arg as usize].type_index as usize),
        Some(Op::Function) => {
            out.push(arg as usize);
            let (params, _) = m.params(i);
            out.extend(params);
        }
        _ => {}
    }
}

/// Rejects slots whose realization would need itself (depth-first, no recursion).
fn check_slot_cycles(m: &Module) -> Result<(), DecodeError> {
    const NEW: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let n = m.tables.types.len();
    let mut state = vec![NEW; n];
    let mut deps = Vec::new();
    for root in 0..n {
        if state[root] != NEW || m.kinds[root] != SlotKind::Type {
            continue;
        }
        // (slot, its dependencies, next one to visit)
        let mut stack: Vec<(usize, Vec<usize>, usize)> = Vec::new();
        deps.clear();
        slot_deps(m, root, &mut deps);
        state[root] = OPEN;
        stack.push((root, deps.clone(), 0));
        while let Some(top) = stack.last_mut() {
            if top.2 == top.1.len() {
                state[top.0] = DONE;
                stack.pop();
                continue;
            }
            let next = top.1[top.2];
            top.2 += 1;
            match state[next] {
                DONE => {}
                OPEN => return Err(DecodeError::TypeCycle { slot: next }),
                _ => {
                    deps.clear();
                    slot_deps(m, next, &mut deps);
                    state[next] = OPEN;
                    stack.push((next, deps.clone(), 0));
                }
            }
        }
    }
    Ok(())
}

/// The struct/union a slot embeds by value (through aliases and arrays).
pub(crate) fn by_value_struct(m: &Module, mut slot: usize) -> Option<usize> {
    // Slot cycles are rejected before this runs, so the walk ends; the bound is a guard.
    for _ in 0..=m.tables.types.len() {
        let w = m.tables.types[slot];
        let arg = word_arg(w) as usize;
        match Op::from_u8(word_op(w)) {
            Some(Op::Noop | Op::Array | Op::OpenArray) => slot = arg,
            Some(Op::Typename) => slot = m.tables.typenames[arg].type_index as usize,
            Some(Op::StructUnion) => return Some(arg),
            _ => return None,
        }
    }
    None
}

fn check_by_value_cycles(m: &Module) -> Result<(), DecodeError> {
    let entries = &m.tables.struct_unions;
    let edges: Vec<Vec<usize>> = entries
        .iter()
        .map(|e| {
            e.fields
                .iter()
                .filter_map(|f| by_value_struct(m, f.slot as usize))
                .collect()
        })
        .collect();
    let mut state = vec![0u8; entries.len()];
    for root in 0..entries.len() {
        if state[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = 1;
        while let Some(top) = stack.last_mut() {
            let (node, k) = *top;
            if k == edges[node].len() {
                state[node] = 2;
                stack.pop();
                continue;
            }
            top.1 += 1;
            let next = edges[node][k];
            match state[next] {
                1 => {
                    return Err(DecodeError::ByValueCycle {
                        name: entries[next].name.clone(),
                    })
                }
                0 => {
                    state[next] = 1;
                    stack.push((next, 0));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

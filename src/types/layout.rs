//! Struct and union layout exactly as gcc computes it on the supported Linux targets
//! (x86_64 SysV and AAPCS64 agree on everything modelled here), including `packed`,
//! `#pragma pack(N)`-style packing and bitfields.
//!
//! Offsets are tracked in bits so bitfields and ordinary members share one cursor.

use super::model::{Field, Kind, RecordLayout, TypeRef, IGNORE_IN_CTOR};
use super::target::{Arch, Target};

/// One member as declared.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// `None` for anonymous struct/union members and unnamed bitfields.
    pub name: Option<String>,
    pub ty: TypeRef,
    /// Bitfield width as written (may be invalid: checked here).
    pub bits: Option<i128>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Packing {
    pub packed: bool,
    pub pack: Option<u32>,
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

/// Width in bits and whether `ty` may hold a bitfield.
fn bitfield_capable(ty: &TypeRef) -> Option<u64> {
    match &ty.kind {
        Kind::Prim(p) => {
            use super::model::PrimClass::*;
            match p.class {
                SignedInt | UnsignedInt | Char | Bool | WideChar => Some(if p.class == Bool {
                    1
                } else {
                    p.size as u64 * 8
                }),
                _ => None,
            }
        }
        Kind::Enum(e) => Some(e.underlying_info().size as u64 * 8),
        _ => None,
    }
}

/// Computes the layout of `cname` (`struct s`) from its members.
/// `partial` is the `...;` / `[...]` flag: the result is then only known to a compiler.
pub fn layout_record(
    cname: &str,
    is_union: bool,
    members: &[MemberSpec],
    partial: bool,
    packing: Packing,
    target: &Target,
) -> Result<RecordLayout, String> {
    // AAPCS64 (gcc's TARGET_ALIGN_ANON_BITFIELD): unnamed bitfields, `:0` included,
    // raise the record's alignment like named ones; on x86_64 they never do.
    let anon_bitfields_align = target.arch == Arch::Aarch64;
    let max_align: u64 = if packing.packed {
        1
    } else {
        packing.pack.map_or(u64::MAX, |p| p as u64)
    };
    let mut pos: u64 = 0; // bits
    let mut size_bits: u64 = 0; // for unions: the largest member
    let mut align: u64 = 1;
    let mut fields = Vec::with_capacity(members.len());
    let mut has_flexible_array = false;
    let mut partial = partial;

    for (idx, m) in members.iter().enumerate() {
        let shown = m.name.as_deref().unwrap_or("");
        let mut inner = &m.ty;
        while let Kind::Array(item, _) = &inner.kind {
            inner = item;
        }
        if let Kind::Record(r) = &inner.kind {
            match r.layout.get() {
                Some(Ok(l)) => partial |= l.partial,
                // A member's own error is the one worth reporting.
                Some(Err(e)) => return Err(e.clone()),
                None => {}
            }
        }
        if let Kind::Array(item, _) = &m.ty.kind {
            if let Some(l) = item.record_layout() {
                partial |= l.partial;
            }
        }
        let is_flexible = matches!(m.ty.kind, Kind::Array(_, None));
        let (size, natural_align) = if is_flexible {
            let Kind::Array(item, _) = &m.ty.kind else {
                unreachable!()
            };
            match (item.size(), item.align()) {
                (Some(_), Some(a)) => (0u64, a as u64),
                _ => {
                    return Err(format!(
                        "field '{cname}.{shown}' has ctype '{}' of unknown size",
                        m.ty.cname()
                    ))
                }
            }
        } else {
            match (m.ty.size(), m.ty.align()) {
                (Some(s), Some(a)) => (s as u64, a as u64),
                _ => {
                    if partial {
                        // The compiler will know; nothing more can be computed here.
                        return Ok(RecordLayout {
                            size: 0,
                            align: 1,
                            fields,
                            has_flexible_array: false,
                            partial: true,
                            packed: packing.packed || packing.pack.is_some(),
                        });
                    }
                    return Err(format!(
                        "field '{cname}.{shown}' has ctype '{}' of unknown size",
                        m.ty.cname()
                    ));
                }
            }
        };
        if is_flexible {
            has_flexible_array = idx + 1 == members.len();
        }
        let falign = natural_align.min(max_align).max(1);

        match m.bits {
            None => {
                let offset_bits = if is_union {
                    0
                } else {
                    round_up(pos, falign * 8)
                };
                align = align.max(falign);
                let offset = (offset_bits / 8) as usize;
                let flags = union_ctor_flags(is_union, &fields);
                push_member(&mut fields, m, offset, -1, -1, flags);
                if is_union {
                    size_bits = size_bits.max(size * 8);
                } else {
                    pos = offset_bits + size * 8;
                }
            }
            Some(width) => {
                let Some(type_bits) = bitfield_capable(&m.ty) else {
                    return Err(format!(
                        "field '{cname}.{shown}' declared as '{}' cannot be a bit field",
                        m.ty.cname()
                    ));
                };
                if width < 0 || width as u64 > type_bits {
                    return Err(format!(
                        "bit field '{cname}.{shown}' is declared '{}:{width}', which exceeds the width of the type",
                        m.ty.cname()
                    ));
                }
                let width = width as u64;
                if width == 0 {
                    if m.name.is_some() {
                        return Err(format!("field '{cname}.{shown}' is declared with :0"));
                    }
                    // `T :0` moves to the next T-aligned boundary, whatever the packing
                    // (gcc: zero-width bitfields are not influenced by packing).
                    if !is_union {
                        pos = round_up(pos, natural_align * 8);
                    }
                    if anon_bitfields_align {
                        align = align.max(natural_align);
                    }
                    continue;
                }
                let unit_bits = size * 8;
                let (start, unit_start) = if is_union {
                    (0, 0)
                } else if packing.packed || packing.pack.is_some() {
                    // Packed bitfields follow each other bit by bit (gcc skips its
                    // no-straddling rule whenever a maximum field alignment is set, so
                    // `#pragma pack(N)` behaves the same). cffi (and the accessors built
                    // on this layout) read them through one storage unit of the declared
                    // type starting at a byte boundary.
                    let unit_start = pos / 8 * 8;
                    if pos - unit_start + width > unit_bits && m.name.is_some() {
                        return Err(format!(
                            "with 'packed', gcc would compile field '{cname}.{shown}' to reuse some bits in the previous field"
                        ));
                    }
                    (pos, unit_start)
                } else {
                    // A bitfield may not straddle a boundary of its declared type's
                    // (possibly reduced) alignment unit.
                    let unit = falign * 8;
                    let unit_start = pos / unit * unit;
                    if pos + width > unit_start + unit_bits {
                        let s = round_up(pos, unit);
                        (s, s)
                    } else {
                        (pos, unit_start)
                    }
                };
                if m.name.is_some() || anon_bitfields_align {
                    align = align.max(falign);
                }
                if let Some(name) = &m.name {
                    let flags = union_ctor_flags(is_union, &fields);
                    fields.push(Field {
                        name: name.clone(),
                        ty: m.ty.clone(),
                        offset: (unit_start / 8) as usize,
                        bitshift: (start - unit_start) as i32,
                        bitsize: width as i32,
                        flags,
                    });
                }
                if is_union {
                    size_bits = size_bits.max(round_up(width, 8));
                } else {
                    pos = start + width;
                }
            }
        }
    }
    if !is_union {
        size_bits = pos;
    }
    let size = round_up(round_up(size_bits, 8) / 8, align);
    Ok(RecordLayout {
        size: size as usize,
        align: align as usize,
        fields,
        has_flexible_array,
        partial,
        packed: packing.packed || packing.pack.is_some(),
    })
}

/// The flags of a member's fields: in a union, every member after the first is left out
/// of positional initialization (a list initializer fills the first member only).
fn union_ctor_flags(is_union: bool, fields: &[Field]) -> u32 {
    if is_union && !fields.is_empty() {
        IGNORE_IN_CTOR
    } else {
        0
    }
}

/// Adds a member: named ones as they are, anonymous struct/union members by flattening
/// their fields in at `offset` (keeping their own flags, plus `flags`).
fn push_member(
    fields: &mut Vec<Field>,
    m: &MemberSpec,
    offset: usize,
    bitshift: i32,
    bitsize: i32,
    flags: u32,
) {
    match &m.name {
        Some(name) => fields.push(Field {
            name: name.clone(),
            ty: m.ty.clone(),
            offset,
            bitshift,
            bitsize,
            flags,
        }),
        None => {
            if let Some(inner) = m.ty.record_layout() {
                for f in &inner.fields {
                    let mut f = f.clone();
                    f.offset += offset;
                    f.flags |= flags;
                    fields.push(f);
                }
            }
        }
    }
}

//! Test support only: builds struct/union types with plain C (gcc, non-MS) layout rules,
//! so ABI tests can construct aggregate shapes without the cdef parser. Handles natural
//! alignment, `packed`, and bitfields that fit in their declared type's storage unit.

use crate::types::model::{Field, RecordLayout, TypeRef, TypeTable};

pub struct FieldSpec {
    pub name: String,
    pub ty: TypeRef,
    /// Bitfield width.
    pub bits: Option<u32>,
}

pub fn field(name: &str, ty: &TypeRef) -> FieldSpec {
    FieldSpec {
        name: name.to_string(),
        ty: ty.clone(),
        bits: None,
    }
}

pub fn bitfield(name: &str, ty: &TypeRef, bits: u32) -> FieldSpec {
    FieldSpec {
        name: name.to_string(),
        ty: ty.clone(),
        bits: Some(bits),
    }
}

/// A complete struct (or union) named `cname` with `fields`; `packed` gives every field
/// alignment 1 (gcc's `__attribute__((packed))`).
pub fn record(
    t: &mut TypeTable,
    cname: &str,
    is_union: bool,
    packed: bool,
    fields: Vec<FieldSpec>,
) -> TypeRef {
    let ty = t.new_record(is_union, None, cname.to_string());
    let mut out = Vec::new();
    let mut bitpos: usize = 0;
    let mut size = 0usize;
    let mut align = 1usize;
    for f in fields {
        let fsize = f.ty.size().expect("sized field");
        let falign = if packed { 1 } else { f.ty.align().unwrap() };
        align = align.max(falign);
        let (offset, bitshift, bitsize) = match f.bits {
            None => {
                let off = if is_union { 0 } else { bitpos.div_ceil(8) };
                let off = off.div_ceil(falign) * falign;
                if !is_union {
                    bitpos = (off + fsize) * 8;
                }
                size = size.max(off + fsize);
                (off, -1, -1)
            }
            Some(bits) => {
                let unit = fsize * 8;
                let mut pos = if is_union { 0 } else { bitpos };
                if !packed && pos / unit != (pos + bits as usize - 1) / unit {
                    pos = pos.div_ceil(unit) * unit;
                }
                let off = if packed { pos / 8 } else { pos / unit * fsize };
                let shift = pos - off * 8;
                if !is_union {
                    bitpos = pos + bits as usize;
                }
                size = size.max((pos + bits as usize).div_ceil(8));
                (off, shift as i32, bits as i32)
            }
        };
        out.push(Field {
            name: f.name,
            ty: f.ty,
            offset,
            bitshift,
            bitsize,
            flags: 0,
        });
    }
    let size = size.div_ceil(align) * align;
    if let crate::types::model::Kind::Record(r) = &ty.kind {
        r.layout
            .set(Ok(RecordLayout {
                size,
                align,
                fields: out,
                has_flexible_array: false,
                partial: false,
                packed,
            }))
            .expect("fresh record");
    }
    ty
}

//! Recovering a struct's declared members from its layout, for the writer: the type
//! model keeps the laid-out fields (anonymous members flattened in, unnamed bitfields
//! gone), while the tables list the members as declared.
//!
//! The namespace keeps the members of the records its cdef laid out
//! (`Namespace::declared_members`): those are used as they are. For other records (one
//! shared through `include` from a namespace that no longer has them), anonymous members are recognized as runs of fields equal to those of an anonymous
//! record nothing else refers to. Unnamed bitfields are put back where the fields
//! after them would otherwise move: `T :0` or `T :w`, `T` the type of a neighbouring
//! bitfield. Whatever is recovered must reproduce the layout exactly, or the struct is
//! refused: a module is never written with a layout other than the cdef's. An unnamed
//! bitfield that moves nothing leaves no trace and is not written (the module reads
//! the same; cffi's file would have one more field).

use super::error::EncodeError;
use crate::types::layout::{layout_record, MemberSpec, Packing};
use crate::types::model::{Field, Kind, PrimClass, RecordLayout, TypeRef};
use crate::types::target::Target;

/// A member as declared: `None` name for anonymous members and unnamed bitfields.
pub(crate) struct Member {
    pub name: Option<String>,
    pub ty: TypeRef,
    pub bits: Option<u32>,
}

fn specs(members: &[Member]) -> Vec<MemberSpec> {
    members
        .iter()
        .map(|m| MemberSpec {
            name: m.name.clone(),
            ty: m.ty.clone(),
            bits: m.bits.map(i128::from),
        })
        .collect()
}

fn same_field(a: &Field, b: &Field) -> bool {
    a.name == b.name && a.offset == b.offset && a.bitshift == b.bitshift && a.bitsize == b.bitsize
}

/// How many leading fields of `got` match `want`, and whether all of the layout does.
fn compare(got: &RecordLayout, want: &RecordLayout) -> (usize, bool) {
    let k = got
        .fields
        .iter()
        .zip(&want.fields)
        .take_while(|(a, b)| same_field(a, b))
        .count();
    let all = k == want.fields.len()
        && got.fields.len() == want.fields.len()
        && got.size == want.size
        && got.align == want.align;
    (k, all)
}

fn bit_width(ty: &TypeRef) -> Option<u32> {
    match &ty.kind {
        Kind::Prim(p) => match p.class {
            PrimClass::SignedInt
            | PrimClass::UnsignedInt
            | PrimClass::Char
            | PrimClass::WideChar => Some(p.size as u32 * 8),
            _ => None,
        },
        Kind::Enum(e) => Some(e.underlying_info().size as u32 * 8),
        _ => None,
    }
}

/// The end, in bits, of field `f`.
fn end_bits(f: &Field) -> Option<u64> {
    if f.bitsize >= 0 {
        Some(f.offset as u64 * 8 + f.bitshift.max(0) as u64 + f.bitsize as u64)
    } else {
        f.ty.size().map(|s| (f.offset + s) as u64 * 8)
    }
}

pub(crate) fn recover(
    ty: &TypeRef,
    anonymous: &[(u32, TypeRef)],
    declared: Option<&[MemberSpec]>,
    target: &Target,
) -> Result<Vec<Member>, EncodeError> {
    let Kind::Record(rec) = &ty.kind else {
        return Ok(Vec::new());
    };
    let refused = || EncodeError::Members {
        cname: rec.cname.clone(),
    };
    let layout = match rec.layout.get() {
        None => return Ok(Vec::new()),
        Some(Ok(l)) => l,
        Some(Err(_)) => return Err(refused()),
    };
    let fields = &layout.fields;
    let mut out = Vec::new();
    if let Some(d) = declared {
        // The members as the cdef declared them: checked below like recovered ones.
        out.extend(d.iter().map(|m| Member {
            name: m.name.clone(),
            ty: m.ty.clone(),
            bits: m.bits.and_then(|b| u32::try_from(b).ok()),
        }));
    }
    let mut i = if declared.is_some() { fields.len() } else { 0 };
    while i < fields.len() {
        let f = &fields[i];
        let anon = anonymous.iter().find_map(|(_, cand)| {
            let inner = cand.record_layout()?;
            let k = inner.fields.len();
            if k == 0 || i + k > fields.len() || cand.id == ty.id {
                return None;
            }
            let delta = fields[i].offset.checked_sub(inner.fields[0].offset)?;
            let same = inner.fields.iter().zip(&fields[i..i + k]).all(|(a, b)| {
                a.name == b.name
                    && a.ty.id == b.ty.id
                    && a.bitshift == b.bitshift
                    && a.bitsize == b.bitsize
                    && b.offset.checked_sub(a.offset) == Some(delta)
            });
            same.then(|| (cand.clone(), k))
        });
        if let Some((cand, k)) = anon {
            out.push(Member {
                name: None,
                ty: cand,
                bits: None,
            });
            i += k;
            continue;
        }
        let bits = (f.bitsize >= 0).then_some(f.bitsize as u32);
        out.push(Member {
            name: Some(f.name.clone()),
            ty: f.ty.clone(),
            bits,
        });
        i += 1;
    }

    let packing = Packing {
        packed: layout.packed,
        pack: None,
    };
    let lay = |members: &[Member]| {
        layout_record(
            &rec.cname,
            rec.is_union,
            &specs(members),
            layout.partial,
            packing,
            target,
        )
        .ok()
    };
    let has_anonymous = out.iter().any(|m| m.name.is_none());
    // Each round puts back one unnamed bitfield; each one fixes at least one more field
    // (or the size), so the rounds are bounded.
    for _ in 0..=fields.len() + 1 {
        let Some(got) = lay(&out) else {
            return Err(refused());
        };
        let (k, all) = compare(&got, layout);
        if all {
            check_not_opaque(&out, &rec.cname)?;
            return Ok(out);
        }
        if has_anonymous || rec.is_union || declared.is_some() {
            return Err(refused());
        }
        // Insert before the member of field k (or at the end: the size differs).
        let at = if k < fields.len() {
            out.iter()
                .position(|m| m.name.as_deref() == Some(fields[k].name.as_str()))
                .ok_or_else(refused)?
        } else {
            out.len()
        };
        let cursor = if k == 0 {
            0
        } else {
            end_bits(&fields[k - 1]).ok_or_else(refused)?
        };
        let target_bits = if k < fields.len() {
            fields[k].offset as u64 * 8 + fields[k].bitshift.max(0) as u64
        } else {
            layout.size as u64 * 8
        };
        let mut candidates: Vec<TypeRef> = Vec::new();
        for j in [k.checked_sub(1), Some(k)].into_iter().flatten() {
            if let Some(f) = fields.get(j) {
                if f.bitsize >= 0 && !candidates.iter().any(|c| c.id == f.ty.id) {
                    candidates.push(f.ty.clone());
                }
            }
        }
        let mut fixed = None;
        'search: for t in &candidates {
            let width = bit_width(t).unwrap_or(0);
            let gap = target_bits.saturating_sub(cursor);
            let mut tries = vec![0u32];
            if gap > 0 && gap <= width as u64 {
                tries.push(gap as u32);
            }
            for w in tries {
                let mut trial: Vec<Member> = Vec::with_capacity(out.len() + 1);
                trial.extend(out[..at].iter().map(|m| Member {
                    name: m.name.clone(),
                    ty: m.ty.clone(),
                    bits: m.bits,
                }));
                trial.push(Member {
                    name: None,
                    ty: t.clone(),
                    bits: Some(w),
                });
                trial.extend(out[at..].iter().map(|m| Member {
                    name: m.name.clone(),
                    ty: m.ty.clone(),
                    bits: m.bits,
                }));
                if let Some(l) = lay(&trial) {
                    let (k2, all2) = compare(&l, layout);
                    if all2 || k2 > k {
                        fixed = Some(trial);
                        break 'search;
                    }
                }
            }
        }
        match fixed {
            Some(trial) => out = trial,
            None => return Err(refused()),
        }
    }
    Err(refused())
}

/// A by-value member of opaque type cannot be written (cffi refuses it too).
fn check_not_opaque(out: &[Member], cname: &str) -> Result<(), EncodeError> {
    for m in out {
        let mut t = &m.ty;
        while let Kind::Array(item, _) = &t.kind {
            t = item;
        }
        if let Kind::Record(r) = &t.kind {
            if r.layout.get().is_none() {
                let field = m.name.clone().unwrap_or_default();
                return Err(EncodeError::OpaqueField {
                    cname: cname.to_string(),
                    field,
                });
            }
        }
    }
    Ok(())
}

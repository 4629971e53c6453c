//! Which Python objects a C parameter accepts without a call, as the trampoline shape
//! the code generator receives (`jit::trampoline::{ArgShape, RetShape}`): the policy
//! lives here, the generator only emits what a shape says.

use std::sync::Mutex;

use pyo3::exceptions::{PyNotImplementedError, PyTypeError};
use pyo3::prelude::*;

use crate::jit::trampoline::{ArgShape, Fallback, Inline, RetShape, Scalar};
use crate::types::model::{Kind, Prim, PrimClass, TypeRef, TypeTable};
use crate::types::target::Target;

fn int_scalar(size: usize, signed: bool) -> Scalar {
    Scalar::Int {
        size: size as u8,
        signed,
    }
}

fn arg(scalar: Scalar, inline: Inline, fallback: Fallback) -> ArgShape {
    ArgShape {
        scalar,
        inline,
        fallback,
    }
}

/// The shape of a parameter of C type `ty`:
/// - integers and enums: exact small ints inline;
/// - `float`/`double`: exact floats inline;
/// - `T *`: cdata of the parameter's ctype (or of a ctype the converter accepted for it
///   before, or `void *`) inline; for `char *`-like `T` (one-byte non-bool items, `void`)
///   also `bytes`; for integer `T` also short lists of exact ints; the converter may
///   leave a temporary (an array built from a list, a keep-alive reference);
/// - structs/unions by value: cdata of the parameter's ctype copied inline;
/// - arrays, function pointers: the converter, with a temporary;
/// - anything else (chars, bool, long double, complex): the converter.
pub fn arg_shape(ty: &TypeRef) -> Result<ArgShape, String> {
    Ok(match &ty.kind {
        Kind::Prim(p) => match p.class {
            PrimClass::SignedInt | PrimClass::UnsignedInt => arg(
                int_scalar(p.size, p.signed),
                Inline::SmallInt,
                Fallback::Convert,
            ),
            PrimClass::Bool | PrimClass::Char | PrimClass::WideChar => arg(
                int_scalar(p.size, p.signed),
                Inline::None,
                Fallback::Convert,
            ),
            PrimClass::Float => arg(
                if p.size == 4 {
                    Scalar::F32
                } else {
                    Scalar::F64
                },
                Inline::Float,
                Fallback::Convert,
            ),
            PrimClass::LongDouble | PrimClass::Complex => arg(
                Scalar::Bytes(p.size as u32),
                Inline::None,
                Fallback::Convert,
            ),
        },
        Kind::Enum(e) => {
            let u = e.underlying_info();
            arg(
                int_scalar(u.size, u.signed),
                Inline::SmallInt,
                Fallback::Convert,
            )
        }
        Kind::Pointer(item) => {
            let buffer = matches!(&item.kind, Kind::Prim(p) if p.size == 1 && p.class != PrimClass::Bool)
                || matches!(item.kind, Kind::Void);
            let int_list = match &item.kind {
                Kind::Prim(p)
                    if matches!(p.class, PrimClass::SignedInt | PrimClass::UnsignedInt)
                        && p.size <= 8 =>
                {
                    Some(int_scalar(p.size, p.signed))
                }
                _ => None,
            };
            arg(
                int_scalar(8, false),
                Inline::Address { int_list, buffer },
                Fallback::ConvertWithTemp,
            )
        }
        Kind::Array(..) | Kind::FuncPtr(_) => arg(
            int_scalar(8, false),
            Inline::None,
            Fallback::ConvertWithTemp,
        ),
        // Structs and unions by value: converted into their cell by the conversion layer,
        // passed per the ABI plan (registers, stack or a hidden copy).
        Kind::Record(_) => match ty.size() {
            Some(size) => arg(
                Scalar::Bytes(size as u32),
                Inline::CopyBytes,
                Fallback::Convert,
            ),
            None => {
                return Err(format!(
                    "ctype '{}' has no known size: cannot pass it by value",
                    ty.cname()
                ))
            }
        },
        Kind::Void => return Err("'void' is not a valid argument type".into()),
    })
}

/// How a result of C type `ty` is boxed: ints, bools and floats inline, the rest by the
/// runtime's reader.
pub fn ret_shape(ty: &TypeRef) -> Result<RetShape, String> {
    Ok(match &ty.kind {
        Kind::Void => RetShape::Void,
        Kind::Prim(p) => match p.class {
            PrimClass::SignedInt | PrimClass::UnsignedInt => RetShape::Int {
                size: p.size as u8,
                signed: p.signed,
            },
            PrimClass::Bool => RetShape::Bool,
            PrimClass::Float => RetShape::Float(if p.size == 4 {
                Scalar::F32
            } else {
                Scalar::F64
            }),
            PrimClass::Char | PrimClass::WideChar => {
                RetShape::Generic(int_scalar(p.size, p.signed))
            }
            PrimClass::LongDouble | PrimClass::Complex => {
                RetShape::Generic(Scalar::Bytes(p.size as u32))
            }
        },
        Kind::Enum(e) => {
            let u = e.underlying_info();
            RetShape::Int {
                size: u.size as u8,
                signed: u.signed,
            }
        }
        Kind::Pointer(_) | Kind::FuncPtr(_) => RetShape::Generic(int_scalar(8, false)),
        Kind::Array(..) => {
            return Err(format!(
                "ctype '{}' not supported as return value",
                ty.cname()
            ))
        }
        Kind::Record(_) => match ty.size() {
            Some(size) => RetShape::Generic(Scalar::Bytes(size as u32)),
            None => {
                return Err(format!(
                    "ctype '{}' has no known size: cannot return it by value",
                    ty.cname()
                ))
            }
        },
    })
}

/// The checks cffi makes when a function is taken from a lib: anything that would make
/// building its trampoline fail, short of the ABI lowering.
pub fn check_signature(fn_type: &TypeRef) -> PyResult<()> {
    signature_shapes(fn_type).map(|_| ())
}

pub(super) fn signature_shapes(fn_type: &TypeRef) -> PyResult<(Vec<ArgShape>, RetShape)> {
    let Kind::FuncPtr(sig) = &fn_type.kind else {
        return Err(PyTypeError::new_err(format!(
            "'{}' is not a function type",
            fn_type.cname()
        )));
    };
    // As cffi: a struct by value declared with `...` needs a compiler to know its layout;
    // an opaque one is an incomplete type.
    for t in sig.args.iter().chain([&sig.result]) {
        if let Kind::Record(r) = &t.kind {
            match r.layout.get() {
                Some(Ok(l)) if l.partial => {
                    return Err(super::super::errors::VerificationMissing::new_err(
                        t.cname(),
                    ))
                }
                None => {
                    return Err(PyTypeError::new_err(format!(
                        "ctype '{}' has incomplete type",
                        t.cname()
                    )))
                }
                _ => {}
            }
        }
    }
    let fixed_shapes = sig
        .args
        .iter()
        .map(arg_shape)
        .collect::<Result<Vec<_>, _>>()
        .map_err(PyNotImplementedError::new_err)?;
    let ret = ret_shape(&sig.result).map_err(PyNotImplementedError::new_err)?;
    Ok((fixed_shapes, ret))
}

/// An error of `abi::lower` as the exception users see: what jitffi does not implement
/// is a NotImplementedError, everything else a TypeError.
pub fn lowering_error(e: crate::abi::LowerError) -> LoweringError {
    if e.is_not_implemented() {
        LoweringError::Unsupported(e.message())
    } else {
        LoweringError::Invalid(e.message())
    }
}

/// A failed ABI lowering, by kind.
#[derive(Debug)]
pub enum LoweringError {
    /// Something jitffi does not implement (NotImplementedError).
    Unsupported(String),
    /// A type that cannot be passed this way (TypeError).
    Invalid(String),
}

impl From<LoweringError> for PyErr {
    fn from(e: LoweringError) -> PyErr {
        match e {
            LoweringError::Unsupported(m) => PyNotImplementedError::new_err(m),
            LoweringError::Invalid(m) => PyTypeError::new_err(m),
        }
    }
}

/// A C type standing for `s` in the lowering of a variadic call (promoted types only).
pub(super) fn scalar_type(s: Scalar) -> TypeRef {
    static TABLE: Mutex<Option<TypeTable>> = Mutex::new(None);
    let mut g = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let t = g.get_or_insert_with(|| TypeTable::new(Target::host()));
    let p = match s {
        Scalar::Int {
            size: 8,
            signed: true,
        } => Prim::Long,
        Scalar::Int {
            size: 8,
            signed: false,
        } => Prim::ULong,
        Scalar::Int { signed: true, .. } => Prim::Int,
        Scalar::Int { signed: false, .. } => Prim::UInt,
        Scalar::F32 => Prim::Float,
        Scalar::F64 | Scalar::Bytes(_) => Prim::Double,
    };
    t.prim(p)
}

//! The cdef language: pest grammar (grammar/cdef.pest) → declarations and types.

use crate::types::decls::Declarations;
use crate::types::model::{TypeRef, TypeTable};
use crate::types::target::Target;

#[derive(Debug, Clone, Default)]
pub struct CdefOptions {
    pub override_: bool,
    pub packed: bool,
    pub pack: Option<u32>,
}

/// Which Python exception a cdef/type-string error becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    CDef,
    FFI,
    Value,
    Type,
    VerificationMissing,
    NotImplemented,
}

#[derive(Debug, Clone)]
pub struct CdefError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CdefError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CdefError {
        CdefError { kind, message: message.into() }
    }
}

impl std::fmt::Display for CdefError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CdefError {}

/// Everything one FFI has declared.
pub struct Namespace {
    pub table: TypeTable,
    pub decls: Declarations,
}

impl Namespace {
    pub fn new(target: Target) -> Namespace {
        Namespace { table: TypeTable::new(target), decls: Declarations::default() }
    }

    pub fn cdef(&mut self, _source: &str, _opts: &CdefOptions) -> Result<(), CdefError> {
        Err(CdefError::new(ErrorKind::NotImplemented, "cdef: not implemented yet"))
    }

    pub fn parse_type(&mut self, _text: &str) -> Result<TypeRef, CdefError> {
        Err(CdefError::new(ErrorKind::NotImplemented, "parse_type: not implemented yet"))
    }

    pub fn include(&mut self, _other: &Namespace) -> Result<(), CdefError> {
        Err(CdefError::new(ErrorKind::NotImplemented, "include: not implemented yet"))
    }

    pub fn list_types(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let mut t: Vec<String> = self.decls.typedefs.keys().cloned().collect();
        let mut s: Vec<String> = self.decls.structs.keys().cloned().collect();
        let mut u: Vec<String> = self.decls.unions.keys().cloned().collect();
        t.sort();
        s.sort();
        u.sort();
        (t, s, u)
    }
}

//! The error of the code generators: what went wrong, typed, so that callers decide
//! what users see by the kind, never by the message.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompileError {
    /// A signature jitffi does not compile (variadic callbacks, for one): the Python
    /// layer reports it as `NotImplementedError`.
    Unsupported(String),
    /// No executable memory (mapping failed or the arena's cap was reached).
    Memory(String),
    /// Inconsistent input or a Cranelift failure: a bug in jitffi.
    Internal(String),
}

impl CompileError {
    pub fn message(&self) -> &str {
        match self {
            CompileError::Unsupported(m) | CompileError::Memory(m) | CompileError::Internal(m) => m,
        }
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for CompileError {}

/// Test harnesses and tools that collect errors as text.
impl From<CompileError> for String {
    fn from(e: CompileError) -> String {
        e.to_string()
    }
}

//! The error of a cdef or a type string: which Python exception it becomes, its
//! message, and, when it has a place in the source, where that is.

use std::fmt;

/// Which Python exception a cdef/type-string error becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// ffi.CDefError
    CDef,
    /// ffi.FFIError
    FFI,
    /// ValueError
    Value,
    /// TypeError
    Type,
    /// ffi.VerificationMissing
    VerificationMissing,
    /// NotImplementedError
    NotImplemented,
    /// A panic caught inside the parser or resolver: a bug in jitffi, not in the text.
    Internal,
}

/// Where in the source text an error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    /// `<cdef source string>`, or the file a `# 12 "file.h"` line marker named.
    pub file: String,
    /// 1-based, counted from the last line marker.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Byte offset in the text given to `cdef`.
    pub offset: usize,
    /// The offending line: the one a `cannot parse "..."` message quotes, else the
    /// physical source line holding the error; trimmed.
    pub source_line: String,
    /// The offending token: an identifier, a number or one character; empty at the end
    /// of the text.
    pub token: String,
}

impl SourceLocation {
    /// The same place, with `line` as the offending line (a directive quoted as read:
    /// comments removed, continuations joined).
    pub(crate) fn quoting(mut self, line: &str) -> SourceLocation {
        self.source_line = line.to_string();
        self
    }

    /// `file:line:col: `, as messages start.
    pub fn prefix(&self) -> String {
        format!("{}:{}:{}: ", self.file, self.line, self.column)
    }
}

/// What went wrong, for the errors callers tell apart without reading the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorDetail {
    /// A name used as a type that nothing declared.
    UnknownTypeName(Box<str>),
    /// A type string names a function type, where a pointer to function was meant.
    FunctionType,
}

#[derive(Debug, Clone)]
pub struct CdefError {
    pub kind: ErrorKind,
    /// The whole message users see, location included.
    pub message: String,
    /// Set exactly when the message names a place (`file:line:col: `).
    pub location: Option<Box<SourceLocation>>,
    pub detail: Option<ErrorDetail>,
    /// Where in `message` the part after the location starts.
    reason_start: usize,
}

impl CdefError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CdefError {
        CdefError {
            kind,
            message: message.into(),
            location: None,
            detail: None,
            reason_start: 0,
        }
    }

    /// `file:line:col: reason`.
    pub(crate) fn at(
        kind: ErrorKind,
        location: SourceLocation,
        reason: impl AsRef<str>,
    ) -> CdefError {
        CdefError::located(kind, String::new(), location, reason.as_ref())
    }

    /// `cannot parse "LINE"` then `file:line:col: reason` on the next line, `LINE` being
    /// the location's `source_line`.
    pub(crate) fn cannot_parse(
        kind: ErrorKind,
        location: SourceLocation,
        reason: impl AsRef<str>,
    ) -> CdefError {
        let head = format!("cannot parse \"{}\"\n", location.source_line);
        CdefError::located(kind, head, location, reason.as_ref())
    }

    fn located(kind: ErrorKind, head: String, location: SourceLocation, reason: &str) -> CdefError {
        let mut message = head;
        message.push_str(&location.prefix());
        let reason_start = message.len();
        message.push_str(reason);
        CdefError {
            kind,
            message,
            location: Some(Box::new(location)),
            detail: None,
            reason_start,
        }
    }

    pub(crate) fn with_detail(mut self, detail: ErrorDetail) -> CdefError {
        self.detail = Some(detail);
        self
    }

    /// The message without its location: what went wrong.
    pub fn reason(&self) -> &str {
        &self.message[self.reason_start..]
    }

    /// The same error with another reason, at the same place.
    pub(crate) fn with_reason(mut self, reason: &str) -> CdefError {
        self.message.truncate(self.reason_start);
        self.message.push_str(reason);
        self
    }

    /// An error whose message starts with its location (`file:line:col: reason`), told
    /// without it; others unchanged. Type strings have no file: their messages name the
    /// type instead.
    pub(crate) fn without_location(self) -> CdefError {
        let starts_with_location = self
            .location
            .as_ref()
            .is_some_and(|l| l.prefix().len() == self.reason_start);
        if !starts_with_location {
            return self;
        }
        let message = self.reason().to_string();
        CdefError {
            kind: self.kind,
            message,
            location: None,
            detail: self.detail,
            reason_start: 0,
        }
    }

    /// The error for a panic caught while running `what`.
    pub(crate) fn from_panic(payload: Box<dyn std::any::Any + Send>, what: &str) -> CdefError {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        CdefError::new(
            ErrorKind::Internal,
            format!("internal error in {what} (please report): {msg}"),
        )
    }
}

impl fmt::Display for CdefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CdefError {}

//! Why a C function type cannot be lowered to a call plan.

use std::fmt;

/// The prefix `Display` gives a lowering message for a type that is valid C but that
/// jitffi cannot pass by value (`LowerError::is_not_implemented`).
const NOT_IMPLEMENTED: &str = "NotImplementedError";

/// Why `lower` gave no plan. `Display` is the message users see (a not-implemented
/// case carries the `NotImplementedError: ` prefix; `message` omits it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LowerError {
    /// A struct or union passed by value whose body was never given.
    Opaque { cname: String },
    /// A struct or union, passed by value, that holds an opaque one.
    OpaqueMember { cname: String },
    /// A record whose layout could not be computed: the layout's own message.
    Layout(String),
    /// A record declared with `...`: its layout is only known to a compiler.
    PartialLayout { cname: String },
    /// A type with no size (an array of unknown length, a function type).
    UnknownSize { cname: String },
    /// A `void` member inside a value passed by value.
    VoidMember,
    /// A parameter of type `void`.
    VoidArgument,
    /// A function type whose result is an array.
    ArrayResult,
}

impl LowerError {
    /// Valid C that jitffi cannot call (Python's `NotImplementedError`), rather than a
    /// type that cannot be passed at all (`TypeError`).
    pub fn is_not_implemented(&self) -> bool {
        matches!(self, LowerError::PartialLayout { .. })
    }

    /// The message without the `NotImplementedError: ` prefix.
    pub fn message(&self) -> String {
        match self {
            LowerError::Opaque { cname } => format!("'{cname}' is opaque: cannot pass it by value"),
            LowerError::OpaqueMember { cname } => format!("'{cname}' is opaque"),
            LowerError::Layout(message) => message.clone(),
            LowerError::PartialLayout { cname } => {
                format!("'{cname}' has a partial layout ('...'), only known in API mode")
            }
            LowerError::UnknownSize { cname } => {
                format!("'{cname}' has no known size: cannot pass it by value")
            }
            LowerError::VoidMember => "void field".to_string(),
            LowerError::VoidArgument => "'void' argument".to_string(),
            LowerError::ArrayResult => "a function cannot return an array".to_string(),
        }
    }
}

impl fmt::Display for LowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_not_implemented() {
            write!(f, "{NOT_IMPLEMENTED}: ")?;
        }
        f.write_str(&self.message())
    }
}

impl std::error::Error for LowerError {}

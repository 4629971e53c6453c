//! The cdef language: pest grammar (grammar/cdef.pest) → declarations and types.

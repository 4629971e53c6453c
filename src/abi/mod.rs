//! ABI lowering as pure data: where each C argument and result lives for a call.

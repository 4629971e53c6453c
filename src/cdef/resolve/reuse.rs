//! Reuse by text: each distinct parameter piece and declaration-specifier text is
//! resolved once per cdef and its type reused for the next identical text; and the undo
//! of a speculative resolve, which forgets those types with the namespace's.

use pest::iterators::Pair;
use rustc_hash::FxHashMap as HashMap;

use super::{Param, Resolver, Specs};
use crate::cdef::parser::{self, Rule};
use crate::cdef::{CdefError, ErrorKind};

/// What this cdef has resolved by text so far.
#[derive(Default)]
pub(super) struct Reused {
    /// The resolved type of each distinct raw parameter piece (`raw_params`): the next
    /// identical piece means the same type, as long as no name can change meaning in
    /// between (not under `override=True`).
    params: HashMap<Box<str>, Param>,
    /// Declaration specifiers by text (see `decl_specs`): return types and member types
    /// repeat as parameters do.
    specs: HashMap<Box<str>, Specs>,
    /// A raw parameter piece did not parse (only possible in `items_unchecked`).
    pub(super) bad_piece: bool,
}

#[cfg(test)]
thread_local! {
    /// How often `undo` ran on this thread (tests check that the undo path really ran).
    pub(crate) static UNDOS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl<'a> Resolver<'a> {
    /// Whether the type a text resolved to may be reused for the next identical text:
    /// not when names may change meaning (`override=True`), when the text defines a
    /// struct, union or enum (a new type, and enumerators, each time), or holds `...`
    /// (`[...]` marks the struct being resolved, `typedef ...` names a new type).
    pub(super) fn reusable(&self, text: &str) -> bool {
        !self.opts.override_ && !text.contains(['{', '.'])
    }

    /// Back to an empty namespace (it was empty when this cdef began), forgetting the
    /// types reused by text, which belonged to it.
    pub(super) fn undo(&mut self) {
        #[cfg(test)]
        UNDOS.with(|u| u.set(u.get() + 1));
        self.ns.reset_to_empty();
        self.reused.params.clear();
        self.reused.specs.clear();
        self.reused.bad_piece = false;
        self.saw_dots_array = false;
    }

    /// The specifiers of `pair`: those of an identical earlier text when they can only
    /// mean the same (`reusable`), else resolved.
    pub(super) fn decl_specs(
        &mut self,
        pair: Pair<Rule>,
        typedef_hint: Option<&str>,
    ) -> Result<Specs, CdefError> {
        let text = pair.as_str();
        // The check first: a struct body is not hashed only to be resolved anyway.
        let reusable = self.reusable(text);
        if reusable {
            if let Some(s) = self.reused.specs.get(text) {
                return Ok(s.clone());
            }
        }
        let specs = self.resolve_decl_specs(pair, typedef_hint)?;
        if reusable {
            self.reused.specs.insert(text.into(), specs.clone());
        }
        Ok(specs)
    }

    /// A `param_raw` piece: the type of an identical earlier piece, or the piece parsed
    /// on its own.
    pub(super) fn raw_param(
        &mut self,
        piece: Pair<Rule>,
        fname: &str,
        argno: usize,
    ) -> Result<Param, CdefError> {
        let text = piece.as_str();
        if let Some(p) = self.reused.params.get(text) {
            return Ok(p.clone());
        }
        let piece_at = piece.as_span().start();
        if text.starts_with("...") {
            // `...` before the last parameter, or `... x`: not a parameter list.
            self.reused.bad_piece = true;
            return Err(self.error(
                ErrorKind::CDef,
                piece_at,
                "'...' must be the last parameter",
            ));
        }
        let tree = match parser::parse(Rule::param_alone, text) {
            Ok(tree) => tree,
            Err(e) => {
                // Only unchecked texts get here; their caller parses the text again for
                // the exact error.
                self.reused.bad_piece = true;
                return Err(self.error(
                    ErrorKind::CDef,
                    piece_at,
                    format!("cannot parse parameter '{}': {e}", text.trim_end()),
                ));
            }
        };
        let param_pair = tree.into_inner().next().unwrap();
        let outer_base = self.base;
        self.base += piece_at;
        let param = self.param(param_pair, fname, argno);
        self.base = outer_base;
        let param = param?;
        if self.reusable(text) {
            self.reused.params.insert(text.into(), param.clone());
        }
        Ok(param)
    }
}

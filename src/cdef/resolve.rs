//! Walks the parse tree into types (interned in the namespace's `TypeTable`) and
//! declarations.

use std::sync::Arc;

use pest::iterators::Pair;

use super::consteval::{self, Value};
use super::parser::{self, Rule};
use super::preprocess::{self, Positions};
use super::{prim_from_keywords, CdefError, CdefOptions, ErrorKind, Namespace, PendingBody};
use crate::types::decls::Decl;
use crate::types::layout::{MemberSpec, Packing};
use crate::types::model::{Kind, Prim, TypeRef};

const MAX_DERIVATIONS: usize = 256;

/// A resolved C type. `func` marks a function type (not a pointer to one), which
/// only exists while resolving: `node` is then the pointer-to-function node.
#[derive(Clone)]
struct Ty {
    node: TypeRef,
    func: bool,
}

impl Ty {
    fn plain(node: TypeRef) -> Ty {
        Ty { node, func: false }
    }
}

/// What the declaration specifiers (`static const unsigned long`) said.
#[derive(Clone)]
struct Specs {
    base: Ty,
    is_typedef: bool,
    is_static: bool,
    is_const: bool,
    /// `typedef int... t;` (false) / `typedef float... t;` (true).
    unknown_num: Option<bool>,
    /// The specifiers define a struct/union/enum (`struct s {..}`, `enum {..}`) or
    /// declare a tag (`struct s;`): a declaration without declarators is then fine.
    declares_tag: bool,
    /// An anonymous struct/union defined right here (candidate anonymous member).
    anonymous_record: bool,
}

/// What a declarator gave: the type, its name, and whether the outermost level is const.
struct Declared<'i> {
    ty: Ty,
    name: Option<(&'i str, usize)>,
    is_const: bool,
    /// No pointer, name, array or parameter list at all.
    empty: bool,
}

struct Resolver<'a> {
    ns: &'a mut Namespace,
    pos: Positions<'a>,
    opts: CdefOptions,
    /// Set by `[...]` while resolving the members of a struct.
    saw_dots_array: bool,
    /// Where the text being resolved starts in the whole text (a chunk parsed on its
    /// own, or a parameter piece, has positions relative to its start).
    base: usize,
    /// The resolved type of each distinct raw parameter piece (`raw_params`) seen in
    /// this cdef: the next identical piece means the same type, as long as no name can
    /// change meaning in between (not under `override=True`).
    param_types: rustc_hash::FxHashMap<Box<str>, Param>,
    /// A raw parameter piece did not parse (only possible in `items_unchecked`).
    bad_piece: bool,
    /// Declaration specifiers by text (see `decl_specs`): return types and member types
    /// repeat as parameters do.
    specs_seen: rustc_hash::FxHashMap<Box<str>, Specs>,
}

/// One resolved parameter, before `params` applies the rules about `void`.
#[derive(Clone)]
struct Param {
    /// After decay (arrays to pointers, functions to function pointers).
    node: TypeRef,
    /// The declared type is `void` itself.
    is_void: bool,
    /// Nothing but the specifiers (`void` in `f(void)`).
    empty: bool,
}

/// Inputs at least this long (after preprocessing) are parsed as two halves on two
/// threads; below it a thread costs more than it saves.
const PARALLEL_MIN_LEN: usize = 32 * 1024;

/// Long texts stay on the calling thread unless `JITFFI_CDEF_THREADS=2`. Since
/// parameter lists are cut raw and each distinct parameter is parsed once, one thread
/// measured faster than two on the 2-core benchmark machine (13.4 against 15.0 ms for
/// the 152 KB header): the chunks each check their own pieces, and the hand-offs
/// between the threads cost more than the parse they overlap.
fn parallel_min_len() -> usize {
    static MIN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MIN.get_or_init(|| match std::env::var("JITFFI_CDEF_THREADS").as_deref() {
        Ok("2") => PARALLEL_MIN_LEN,
        _ => usize::MAX,
    })
}

/// How often both halves parsed (tests check that the two-thread path really ran).
#[cfg(test)]
pub(crate) static TWO_HALF_PARSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Text per chunk when an empty namespace's long text is parsed in chunks.
const CHUNK_LEN: usize = 12 * 1024;
const MAX_CHUNKS: usize = 12;

/// The resolver, passed from thread to thread as each resolves its next chunk.
type Turn<'t, 'a, 'd> = (&'t mut Resolver<'a>, &'t mut DefineIter<'d>);

type DefineIter<'d> = std::iter::Peekable<std::slice::Iter<'d, preprocess::Define>>;

pub fn run_cdef(ns: &mut Namespace, source: &str, opts: &CdefOptions) -> Result<(), CdefError> {
    run_cdef_with(ns, source, opts, parallel_min_len(), CHUNK_LEN)
}

/// `run_cdef` with the length from which the text is parsed in parts, and the length
/// of a chunk (tests use small ones to compare every way on small inputs).
pub(crate) fn run_cdef_with(
    ns: &mut Namespace,
    source: &str,
    opts: &CdefOptions,
    parallel_min: usize,
    chunk_len: usize,
) -> Result<(), CdefError> {
    let pre = preprocess::preprocess(source)?;
    let pos = Positions { source, markers: &pre.markers };
    parser::check_nesting(&pre.text, &pos, "declaration")?;
    let mut r = Resolver::new(ns, pos, opts.clone());
    let mut defines = pre.defines.iter().peekable();
    let split = if pre.text.len() >= parallel_min { parser::split_point(&pre.text, pre.text.len() / 2).filter(|&at| at >= 4) } else { None };
    let done = if split.is_none() {
        false
    } else if r.ns.is_empty() {
        // Chunks of about CHUNK_LEN, at least two.
        let n = (pre.text.len() / chunk_len.max(1)).clamp(2, MAX_CHUNKS);
        let froms: Vec<usize> = (1..n).map(|i| pre.text.len() * i / n).collect();
        match parser::split_points(&pre.text, &froms) {
            Some(cuts) if cuts.first().is_some_and(|&c| c >= 4) => r.items_in_chunks(&pre.text, &cuts, &mut defines),
            _ => false,
        }
    } else {
        r.items_in_two_halves(&pre.text, split.unwrap(), &mut defines)?
    };
    if !done {
        defines = pre.defines.iter().peekable();
        if r.ns.is_empty() && r.items_unchecked(&pre.text, &mut defines)? {
            for d in defines {
                r.define(d)?;
            }
            return Ok(());
        }
        defines = pre.defines.iter().peekable();
        // One parse of the whole text; also the path that reports syntax errors, so their
        // messages do not depend on where a text would have been split.
        let tree = parser::parse_cdef(&pre.text, &r.pos)?;
        r.items(tree, &mut defines)?;
    }
    for d in defines {
        r.define(d)?;
    }
    Ok(())
}

pub fn run_type_string(ns: &mut Namespace, text: &str) -> Result<TypeRef, CdefError> {
    let pos = Positions { source: text, markers: &[] };
    let type_error = |msg: String| CdefError::new(ErrorKind::CDef, msg);
    if text.contains(['#', '\n']) && text.trim_start().starts_with('#') {
        return Err(type_error(format!("cannot parse type '{text}': directives are not types")));
    }
    parser::check_nesting(text, &pos, "type").map_err(|e| type_error(format!("in type '{text}': {}", e.message)))?;
    // The grammar only knows ' ' as whitespace; same byte offsets.
    let normalized: String =
        text.chars().map(|c| if matches!(c, '\t' | '\r' | '\n' | '\x0b' | '\x0c') { ' ' } else { c }).collect();
    let tree = parser::parse(Rule::type_string, &normalized).map_err(|e| {
        let at = match e.location {
            pest::error::InputLocation::Pos(p) => p,
            pest::error::InputLocation::Span((s, _)) => s,
        };
        let tok = parser::token_at(text, at);
        if at == 0 && text.trim().is_empty() {
            type_error("cannot parse an empty type".into())
        } else {
            let ident = text[at.min(text.len())..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
            let hint = if ident { " (unknown identifier)" } else { "" };
            type_error(format!("cannot parse type '{text}': unexpected {tok} at column {}{hint}", at + 1))
        }
    })?;
    let mut r = Resolver::new(ns, pos, CdefOptions::default());
    let mut inner = tree.into_inner();
    let specs_pair = inner.next().unwrap();
    let decl = inner.next().unwrap();
    let specs = r.decl_specs(specs_pair, None).map_err(|e| strip_location(unknown_identifier(e), text))?;
    if let Some(is_float) = specs.unknown_num {
        let kind = if is_float { "float" } else { "integer" };
        return Err(CdefError::new(ErrorKind::NotImplemented, format!("{kind} type in '{text}' can only be used after compilation")));
    }
    let declared = r.declarator(specs.base, decl).map_err(|e| strip_location(e, text))?;
    if declared.ty.func {
        return Err(type_error(format!(
            "the type '{text}' is a function type, not a pointer-to-function type"
        )));
    }
    Ok(declared.ty.node)
}

/// cffi's wording for an unknown name in a type string.
fn unknown_identifier(mut e: CdefError) -> CdefError {
    if let Some((before, rest)) = e.message.split_once("unknown type name '") {
        e.message = format!("{before}unknown identifier '{rest}");
    }
    e
}

/// Type strings have no file; their messages name the type instead.
fn strip_location(mut e: CdefError, text: &str) -> CdefError {
    if let Some(rest) = e.message.strip_prefix(preprocess::DEFAULT_FILE) {
        // "<cdef source string>:1:5: msg" -> "msg"
        let msg = rest.splitn(4, ':').nth(3).unwrap_or(rest).trim_start().to_string();
        e.message = msg;
    }
    if e.kind == ErrorKind::CDef && !e.message.contains(text) {
        e.message = format!("{} (in type '{text}')", e.message);
    }
    e
}

/// The second thread's settings: the grammar recurses once per bracket level (bounded by
/// check_nesting), so the stack a Python thread has by default is plenty.
fn parser_thread() -> std::thread::Builder {
    std::thread::Builder::new().stack_size(8 << 20)
}

/// The next message, waiting actively at first: the other thread usually hands the
/// resolver over within a millisecond, and waking a thread parked in the kernel took
/// longer than that on the 2-core machine the benchmark runs on. `None` if the other
/// thread stopped.
fn receive_soon<T>(wait: &std::sync::mpsc::Receiver<T>) -> Option<T> {
    use std::sync::mpsc::TryRecvError;
    let start = std::time::Instant::now();
    loop {
        match wait.try_recv() {
            Ok(t) => return Some(t),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if start.elapsed() < std::time::Duration::from_millis(2) => std::hint::spin_loop(),
            Err(TryRecvError::Empty) => return wait.recv().ok(),
        }
    }
}

/// One thread's share of `items_in_chunks`: parse each of its chunks, wait for the
/// resolver (`first` if this thread has the first chunk), resolve, pass the resolver
/// on. Stops at the first failure anywhere (`failed`); returning drops `pass`, which
/// wakes the other thread if it waits.
fn resolve_chunks<'t, 'a, 'd>(
    text: &str,
    chunks: impl Iterator<Item = &'t (usize, usize)>,
    mut first: Option<Turn<'t, 'a, 'd>>,
    wait: std::sync::mpsc::Receiver<Turn<'t, 'a, 'd>>,
    pass: std::sync::mpsc::Sender<Turn<'t, 'a, 'd>>,
    failed: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering;
    for &(from, to) in chunks {
        if failed.load(Ordering::Relaxed) {
            return;
        }
        let tree = parser::parse_split(&text[from..to]);
        let Some((r, defines)) = first.take().or_else(|| receive_soon(&wait)) else { return };
        let Some(tree) = tree else {
            failed.store(true, Ordering::Relaxed);
            return;
        };
        r.base = from;
        let resolved = r.items(tree, defines);
        r.base = 0;
        if failed.load(Ordering::Relaxed) || resolved.is_err() {
            failed.store(true, Ordering::Relaxed);
            return;
        }
        // The next chunk is the other thread's; it may have none left.
        let _ = pass.send((r, defines));
    }
}

impl<'a> Resolver<'a> {
    fn new(ns: &'a mut Namespace, pos: Positions<'a>, opts: CdefOptions) -> Resolver<'a> {
        Resolver {
            ns,
            pos,
            opts,
            saw_dots_array: false,
            base: 0,
            param_types: Default::default(),
            bad_piece: false,
            specs_seen: Default::default(),
        }
    }

    /// Whether the type a text resolved to may be reused for the next identical text:
    /// not when names may change meaning (`override=True`), when the text defines a
    /// struct, union or enum (a new type, and enumerators, each time), or holds `...`
    /// (`[...]` marks the struct being resolved, `typedef ...` names a new type).
    fn reusable(&self, text: &str) -> bool {
        !self.opts.override_ && !text.contains(['{', '.'])
    }

    /// Resolves the top-level items of a parse of `cdef`, in order, with the `#define`s
    /// that come before each.
    fn items(&mut self, tree: Pair<Rule>, defines: &mut DefineIter) -> Result<(), CdefError> {
        for item in tree.into_inner() {
            let start = item.as_span().start();
            while let Some(d) = defines.next_if(|d| d.offset < self.base + start) {
                self.define(d)?;
            }
            match item.as_rule() {
                Rule::declaration => self.declaration(item, false)?,
                Rule::extern_block => {
                    let mut inner = item.into_inner();
                    let lang = inner.next().unwrap();
                    let python = self.extern_language(&lang)?;
                    for d in inner {
                        if d.as_rule() == Rule::declaration {
                            self.declaration(d, python)?;
                        }
                    }
                }
                Rule::func_def => {
                    return Err(self.error(
                        ErrorKind::CDef,
                        start,
                        "function definitions are not supported in cdef(): this construct is valid C but not \
                         valid in cdef() (declare the function with ';' instead of giving its body)",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// For an empty namespace: the raw-piece parse of `text` resolved without checking
    /// its pieces first, each distinct piece parsed when first met (the check would
    /// parse every distinct piece a second time). If a piece turns out not to parse, or
    /// resolving fails while some later piece would not parse, everything is undone (the
    /// namespace was empty) and false returned: the caller then parses the text with its
    /// pieces checked first, which gives the syntax error and declares nothing, as one
    /// parse of the whole text does. Any other error is returned with the declarations
    /// before it kept.
    fn items_unchecked(&mut self, text: &str, defines: &mut DefineIter) -> Result<bool, CdefError> {
        debug_assert!(self.ns.is_empty());
        #[cfg(test)]
        if parser::FORCE_INLINE.with(|f| f.get()) {
            return Ok(false);
        }
        let Ok(tree) = parser::parse(Rule::cdef, text) else { return Ok(false) };
        match self.items(tree, defines) {
            Ok(()) => return Ok(true),
            Err(e) if !self.bad_piece && parser::parse_split(text).is_some() => return Err(e),
            Err(_) => {}
        }
        self.undo();
        Ok(false)
    }

    /// Back to an empty namespace (it was empty when this cdef began), forgetting the
    /// types reused by text, which belonged to it.
    fn undo(&mut self) {
        self.ns.reset_to_empty();
        self.param_types.clear();
        self.specs_seen.clear();
        self.bad_piece = false;
        self.saw_dots_array = false;
    }

    /// Parses `text[..at]` here and the rest on a second thread at the same time, then
    /// resolves both in order (the second half on its thread: pest's trees are not
    /// `Send`, the resolver is). Nothing is resolved unless both halves parse, as with
    /// one parse. Returns false, having resolved nothing, if a half does not parse (the
    /// caller then parses the whole text to report the error exactly) or no thread could
    /// be started.
    fn items_in_two_halves(&mut self, text: &str, at: usize, defines: &mut DefineIter) -> Result<bool, CdefError> {
        use std::sync::mpsc;
        let tail = &text[at..];
        let head = &text[..at];
        std::thread::scope(|scope| {
            let (parsed_tx, parsed_rx) = mpsc::channel::<bool>();
            let (go_tx, go_rx) = mpsc::channel::<Turn>();
            let worker = parser_thread().spawn_scoped(scope, move || {
                let tree = parser::parse_split(tail);
                let _ = parsed_tx.send(tree.is_some());
                // Dropped without a message: the head did not parse, or the main thread
                // is unwinding.
                let (r, defines) = go_rx.recv().ok()?;
                r.base = at;
                let result = r.items(tree?, defines);
                r.base = 0;
                Some(result)
            });
            let Ok(worker) = worker else { return Ok(false) };
            let head_tree = parser::parse_split(head);
            let tail_ok = parsed_rx.recv().unwrap_or(false);
            let (Some(head_tree), true) = (head_tree, tail_ok) else {
                drop(go_tx);
                let _ = worker.join();
                return Ok(false);
            };
            #[cfg(test)]
            TWO_HALF_PARSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.items(head_tree, defines)?;
            // An error in the head ends here; the worker sees go_tx dropped.
            let _ = go_tx.send((self, defines));
            match worker.join() {
                Ok(Some(result)) => result.map(|()| true),
                Ok(None) => unreachable!("both halves parsed and the worker got the resolver"),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// For an empty namespace: the text cut at `cuts` into chunks, chunk i parsed and
    /// then resolved by thread i % 2, so that each thread parses its next chunk while the
    /// other resolves. The resolver goes from thread to thread in chunk order. If any
    /// chunk does not parse or resolve, everything is undone (the namespace was empty)
    /// and false returned: the caller then runs the whole text in one piece, which gives
    /// exactly the error and the partial declarations of that.
    fn items_in_chunks(&mut self, text: &str, cuts: &[usize], defines: &mut DefineIter) -> bool {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::mpsc;
        debug_assert!(self.ns.is_empty());
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(text.len());
        // (from, to) of each chunk.
        let chunks: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        let failed = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let (to_worker, worker_rx) = mpsc::channel::<Turn>();
            let (to_main, main_rx) = mpsc::channel::<Turn>();
            let (failed, chunks) = (&failed, &chunks);
            let worker = parser_thread().spawn_scoped(scope, move || {
                resolve_chunks(text, chunks.iter().skip(1).step_by(2), None, worker_rx, to_main, failed)
            });
            let Ok(worker) = worker else {
                failed.store(true, Ordering::Relaxed);
                return;
            };
            resolve_chunks(text, chunks.iter().step_by(2), Some((self, defines)), main_rx, to_worker, failed);
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        });
        if failed.load(Ordering::Relaxed) {
            self.undo();
            return false;
        }
        #[cfg(test)]
        TWO_HALF_PARSES.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn error(&self, kind: ErrorKind, offset: usize, msg: impl AsRef<str>) -> CdefError {
        CdefError::new(kind, format!("{}{}", self.pos.prefix(self.base + offset), msg.as_ref()))
    }

    fn extern_language(&self, lang: &Pair<Rule>) -> Result<bool, CdefError> {
        let s = if lang.as_rule() == Rule::extern_lang { lang.clone().into_inner().next().unwrap() } else { lang.clone() };
        match s.as_str() {
            "\"Python\"" | "\"Python+C\"" | "\"C+Python\"" => Ok(true),
            "\"C\"" => Ok(false),
            other => Err(self.error(
                ErrorKind::CDef,
                s.as_span().start(),
                format!("unsupported linkage {other}: only extern \"Python\" (and \"Python+C\", \"C+Python\") is accepted"),
            )),
        }
    }

    fn define(&mut self, d: &preprocess::Define) -> Result<(), CdefError> {
        let decl = match d.value {
            Some(value) => Decl::IntConstant { value, ty: None },
            None => Decl::UnknownConstant { ty: None },
        };
        self.declare_name(&d.name, decl, d.offset)
    }

    /// Adds `name` to the lib namespace; redeclaring it identically is fine.
    fn declare_name(&mut self, name: &str, decl: Decl, offset: usize) -> Result<(), CdefError> {
        if let Some(old) = self.ns.decls.names.get(name) {
            if same_decl(old, &decl) {
                return Ok(());
            }
            if !self.opts.override_ {
                let what = match (&decl, old) {
                    (Decl::IntConstant { .. } | Decl::UnknownConstant { .. }, _) => "constant",
                    (Decl::Function(_) | Decl::ExternPython(_), _) => "function",
                    (Decl::Variable { .. }, _) => "variable",
                };
                let _ = offset;
                return Err(CdefError::new(
                    ErrorKind::FFI,
                    format!("multiple declarations of {what} {name} (for interactive usage, try cdef(xx, override=True))"),
                ));
            }
        } else {
            self.ns.decls.order.push(name.to_string());
        }
        self.ns.decls.names.insert(name.to_string(), decl);
        Ok(())
    }

    fn declare_typedef(&mut self, name: &str, ty: Ty, offset: usize) -> Result<(), CdefError> {
        let _ = offset;
        let conflict = |old: &TypeRef, old_func: bool| !(Arc::ptr_eq(old, &ty.node) && old_func == ty.func);
        let existing = self
            .ns
            .decls
            .typedefs
            .get(name)
            .map(|t| (t.clone(), false))
            .or_else(|| self.ns.fn_typedefs.get(name).map(|t| (t.clone(), true)));
        if let Some((old, old_func)) = existing {
            if !conflict(&old, old_func) {
                return Ok(());
            }
            if !self.opts.override_ {
                return Err(CdefError::new(
                    ErrorKind::FFI,
                    format!("multiple declarations of typedef {name} (for interactive usage, try cdef(xx, override=True))"),
                ));
            }
        }
        if self.ns.unknown_num_typedefs.remove(name).is_some() && !self.opts.override_ {
            return Err(CdefError::new(
                ErrorKind::FFI,
                format!("multiple declarations of typedef {name} (for interactive usage, try cdef(xx, override=True))"),
            ));
        }
        self.ns.decls.typedefs.remove(name);
        self.ns.fn_typedefs.remove(name);
        if ty.func {
            self.ns.fn_typedefs.insert(name.to_string(), ty.node);
        } else {
            self.ns.decls.typedefs.insert(name.to_string(), ty.node);
        }
        Ok(())
    }

    fn declaration(&mut self, pair: Pair<Rule>, mut extern_python: bool) -> Result<(), CdefError> {
        let start = pair.as_span().start();
        let mut inner = pair.into_inner().peekable();
        if inner.peek().map(|p| p.as_rule()) == Some(Rule::extern_lang) {
            let lang = inner.next().unwrap();
            extern_python = self.extern_language(&lang)?;
        }
        let specs_pair = inner.next().unwrap();
        let init_decls = declarators_with(inner, Rule::initializer);

        // The text test avoids walking the specifiers twice for nearly every declaration.
        let is_typedef_decl = specs_pair.as_str().contains("typedef")
            && specs_pair.clone().into_inner().any(|q| q.as_rule() == Rule::qual && q.as_str().trim_end() == "typedef");
        // `typedef struct { .. } name;` names the anonymous struct after the typedef.
        let mut typedef_hint = None;
        if is_typedef_decl {
            if let Some((decl, _)) = init_decls.first() {
                let mut parts = decl.clone().into_inner();
                if let (Some(only), None) = (parts.next(), parts.next()) {
                    if only.as_rule() == Rule::name {
                        typedef_hint = Some(only.as_str().to_string());
                    }
                }
            }
        }
        let specs = self.decl_specs(specs_pair, if is_typedef_decl { typedef_hint.as_deref() } else { None })?;

        let only_empty = init_decls.is_empty()
            || (init_decls.len() == 1 && init_decls[0].0.clone().into_inner().next().is_none());
        if only_empty {
            if specs.declares_tag && !specs.is_typedef {
                return Ok(());
            }
            return Err(self.error(ErrorKind::CDef, start, "Invalid declaration: nothing is declared (missing a name?)"));
        }
        for (decl, initializer) in init_decls {
            let init_start = decl.as_span().start();
            let declared = self.declarator_c(specs.base.clone(), decl, specs.is_const)?;
            let Some((name, name_at)) = declared.name.map(|(n, at)| (n.to_string(), at)) else {
                return Err(self.error(ErrorKind::CDef, init_start, "Invalid declaration: a name is missing"));
            };
            if specs.is_typedef {
                if let Some(is_float) = specs.unknown_num {
                    if declared.empty || declared.name.is_some() && !declared.ty.func && Arc::ptr_eq(&declared.ty.node, &specs.base.node) {
                        self.ns.unknown_num_typedefs.insert(name, is_float);
                        continue;
                    }
                    return Err(self.error(
                        ErrorKind::NotImplemented,
                        name_at,
                        "'typedef int... t' and 'typedef float... t' can only name the type itself",
                    ));
                }
                self.declare_typedef(&name, declared.ty, name_at)?;
                continue;
            }
            if specs.unknown_num.is_some() {
                return Err(self.error(ErrorKind::CDef, start, "'int...' and 'float...' are only valid in a typedef"));
            }
            if declared.ty.func {
                let decl = if extern_python { Decl::ExternPython(declared.ty.node) } else { Decl::Function(declared.ty.node) };
                self.declare_name(&name, decl, name_at)?;
                continue;
            }
            if extern_python {
                return Err(self.error(ErrorKind::CDef, name_at, format!("extern \"Python\": '{name}' must be a function")));
            }
            if matches!(declared.ty.node.kind, Kind::Void) {
                return Err(self.error(ErrorKind::CDef, name_at, format!("variable '{name}' declared as void")));
            }
            let ty = declared.ty.node;
            let is_const = declared.is_const;
            let integer = is_integer(&ty);
            let decl = match initializer {
                Some(init) if is_const || specs.is_static => {
                    let value = self.eval(init)?;
                    match value {
                        Value::Int(v) if integer => Decl::IntConstant { value: v, ty: Some(ty) },
                        _ => Decl::UnknownConstant { ty: Some(ty) },
                    }
                }
                None if specs.is_static && is_const => Decl::UnknownConstant { ty: Some(ty) },
                _ => Decl::Variable { ty, is_const },
            };
            self.declare_name(&name, decl, name_at)?;
        }
        Ok(())
    }

    fn eval(&self, pair: Pair<Rule>) -> Result<Value, CdefError> {
        let names = &self.ns.decls.names;
        let lookup = |n: &str| match names.get(n) {
            Some(Decl::IntConstant { value, .. }) => Some(*value),
            _ => None,
        };
        consteval::eval(pair, &lookup).map_err(|e| self.error(ErrorKind::FFI, e.offset, e.message))
    }

    fn eval_int(&self, pair: Pair<Rule>) -> Result<i128, CdefError> {
        let at = pair.as_span().start();
        match self.eval(pair)? {
            Value::Int(v) => Ok(v),
            Value::Float => Err(self.error(ErrorKind::FFI, at, "unsupported expression: expected an integer constant")),
        }
    }

    /// The specifiers of `pair`: those of an identical earlier text when they can only
    /// mean the same (`reusable`), else resolved.
    fn decl_specs(&mut self, pair: Pair<Rule>, typedef_hint: Option<&str>) -> Result<Specs, CdefError> {
        let text = pair.as_str();
        // The check first: a struct body is not hashed only to be resolved anyway.
        let reusable = self.reusable(text);
        if reusable {
            if let Some(s) = self.specs_seen.get(text) {
                return Ok(s.clone());
            }
        }
        let specs = self.resolve_decl_specs(pair, typedef_hint)?;
        if reusable {
            self.specs_seen.insert(text.into(), specs.clone());
        }
        Ok(specs)
    }

    fn resolve_decl_specs(&mut self, pair: Pair<Rule>, typedef_hint: Option<&str>) -> Result<Specs, CdefError> {
        let mut specs = Specs {
            base: Ty::plain(self.ns.void()),
            is_typedef: false,
            is_static: false,
            is_const: false,
            unknown_num: None,
            declares_tag: false,
            anonymous_record: false,
        };
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::qual => match p.as_str().trim_end() {
                    "typedef" => specs.is_typedef = true,
                    "static" => specs.is_static = true,
                    "const" => specs.is_const = true,
                    _ => {}
                },
                Rule::builtin_type => {
                    let mut words: [&str; 8] = [""; 8];
                    let mut nwords = 0;
                    let mut dots = false;
                    for w in p.clone().into_inner() {
                        match w.as_rule() {
                            Rule::builtin_kw => {
                                if nwords < words.len() {
                                    words[nwords] = w.as_str().trim_end();
                                }
                                nwords += 1;
                            }
                            Rule::qual => {
                                let w = w.as_str().trim_end();
                                if w == "const" {
                                    specs.is_const = true
                                } else if w == "typedef" {
                                    specs.is_typedef = true
                                } else if w == "static" {
                                    specs.is_static = true
                                }
                            }
                            Rule::int_dots => dots = true,
                            _ => {}
                        }
                    }
                    if nwords > words.len() {
                        return Err(self.error(ErrorKind::FFI, p.as_span().start(), format!("Unsupported type: '{}'", p.as_str().trim_end())));
                    }
                    let prim = prim_from_keywords(&words[..nwords])
                        .map_err(|m| self.error(ErrorKind::FFI, p.as_span().start(), m))?;
                    specs.base = Ty::plain(match prim {
                        Some(prim) => self.ns.prim(prim),
                        None => self.ns.void(),
                    });
                    if dots {
                        let is_float = matches!(prim, Some(Prim::Float | Prim::Double | Prim::LongDouble));
                        specs.unknown_num = Some(is_float);
                    }
                }
                Rule::typedef_name => specs.base = self.typedef_name(&p)?,
                Rule::dots_type => {
                    // `typedef ... t;`: an opaque type of unknown layout.
                    let cname = match typedef_hint {
                        Some(n) => n.to_string(),
                        None => self.anonymous_name("struct"),
                    };
                    specs.base = Ty::plain(self.ns.table.new_record(false, None, cname));
                }
                Rule::struct_spec => {
                    let (ty, anonymous) = self.struct_spec(p, typedef_hint)?;
                    specs.base = Ty::plain(ty);
                    specs.declares_tag = true;
                    specs.anonymous_record = anonymous;
                }
                Rule::enum_spec => {
                    specs.base = Ty::plain(self.enum_spec(p, typedef_hint)?);
                    specs.declares_tag = true;
                }
                _ => {}
            }
        }
        Ok(specs)
    }

    fn anonymous_name(&mut self, kw: &str) -> String {
        self.ns.anon_counter += 1;
        format!("{kw} ${}", self.ns.anon_counter)
    }

    fn typedef_name(&mut self, p: &Pair<Rule>) -> Result<Ty, CdefError> {
        let name = p.as_str();
        if let Some(t) = self.ns.decls.typedefs.get(name) {
            return Ok(Ty::plain(t.clone()));
        }
        if let Some(t) = self.ns.fn_typedefs.get(name) {
            return Ok(Ty { node: t.clone(), func: true });
        }
        if let Some(is_float) = self.ns.unknown_num_typedefs.get(name) {
            let kind = if *is_float { "float" } else { "integer" };
            return Err(self.error(
                ErrorKind::NotImplemented,
                p.as_span().start(),
                format!("{kind} type '{name}' can only be used after compilation"),
            ));
        }
        if let Some(prim) = Prim::from_name(name) {
            return Ok(Ty::plain(self.ns.prim(prim)));
        }
        if name == "FILE" {
            return Ok(Ty::plain(self.ns.file_type.clone()));
        }
        let at = p.as_span().start();
        if matches!(self.ns.decls.names.get(name), Some(_)) {
            return Err(self.error(ErrorKind::CDef, at, format!("'{name}' is not a type but a declared name")));
        }
        Err(self.error(ErrorKind::CDef, at, format!("unknown type name '{name}'")))
    }

    /// Returns the record's node and whether it is an anonymous definition.
    fn struct_spec(&mut self, pair: Pair<Rule>, typedef_hint: Option<&str>) -> Result<(TypeRef, bool), CdefError> {
        let start = pair.as_span().start();
        let mut inner = pair.into_inner();
        let kw = inner.next().unwrap().as_str().trim_end();
        let is_union = kw == "union";
        let mut tag = None;
        let mut body = None;
        for p in inner {
            match p.as_rule() {
                Rule::tag => tag = Some(p.as_str()),
                Rule::struct_body => body = Some(p),
                _ => {}
            }
        }
        let node = match tag {
            Some(tag) => {
                let map = if is_union { &self.ns.decls.unions } else { &self.ns.decls.structs };
                match map.get(tag) {
                    Some(n) => n.clone(),
                    None => {
                        let n = self.ns.table.new_record(is_union, Some(tag.to_string()), format!("{kw} {tag}"));
                        let map = if is_union { &mut self.ns.decls.unions } else { &mut self.ns.decls.structs };
                        map.insert(tag.to_string(), n.clone());
                        n
                    }
                }
            }
            None => {
                let cname = match typedef_hint {
                    Some(n) => n.to_string(),
                    None => self.anonymous_name(kw),
                };
                self.ns.table.new_record(is_union, None, cname)
            }
        };
        if let Some(body) = body {
            let Kind::Record(rec) = &node.kind else { unreachable!() };
            if !self.ns.has_body.insert(rec.id) {
                return Err(self.error(ErrorKind::CDef, start, format!("duplicate declaration of {}", rec.cname)));
            }
            let (members, partial) = self.members(body, &rec.cname)?;
            let packing = Packing { packed: self.opts.packed, pack: self.opts.pack };
            self.ns.pending.insert(rec.id, PendingBody { node: node.clone(), members, partial, packing });
            self.ns.pending_order.push(rec.id);
        }
        Ok((node, tag.is_none()))
    }

    fn members(&mut self, body: Pair<Rule>, owner: &str) -> Result<(Vec<MemberSpec>, bool), CdefError> {
        let mut members = Vec::new();
        let mut partial = false;
        let saved_dots = std::mem::replace(&mut self.saw_dots_array, false);
        for m in body.into_inner() {
            let m_start = m.as_span().start();
            let mut inner = m.into_inner();
            let Some(first) = inner.next() else { continue };
            match first.as_rule() {
                Rule::member_dots => {
                    partial = true;
                    continue;
                }
                Rule::empty_decl => continue,
                _ => {}
            }
            let specs = self.decl_specs(first, None)?;
            for (decl, bits) in declarators_with(inner, Rule::bitfield) {
                let md_start = decl.as_span().start();
                let declared = self.declarator(specs.base.clone(), decl)?;
                let bits = match bits {
                    Some(b) => Some(self.eval_int(b.into_inner().next().unwrap())?),
                    None => None,
                };
                if declared.ty.func {
                    return Err(self.error(
                        ErrorKind::CDef,
                        md_start,
                        format!("field of {owner} declared as a function type (use a pointer to function)"),
                    ));
                }
                if declared.empty && bits.is_none() {
                    if specs.anonymous_record {
                        members.push(MemberSpec { name: None, ty: declared.ty.node, bits: None });
                        continue;
                    }
                    if specs.declares_tag {
                        continue;
                    }
                    return Err(self.error(ErrorKind::FFI, m_start, "bad or unsupported type declaration"));
                }
                let name = declared.name.map(|(n, _)| n.to_string());
                if name.is_none() && bits.is_none() {
                    return Err(self.error(ErrorKind::FFI, md_start, "bad or unsupported type declaration: a field needs a name"));
                }
                if let (Some(n), true) = (&name, matches!(declared.ty.node.kind, Kind::Void)) {
                    return Err(self.error(ErrorKind::CDef, md_start, format!("field '{owner}.{n}' declared as void")));
                }
                members.push(MemberSpec { name, ty: declared.ty.node, bits });
            }
        }
        partial |= std::mem::replace(&mut self.saw_dots_array, saved_dots);
        Ok((members, partial))
    }

    fn enum_spec(&mut self, pair: Pair<Rule>, typedef_hint: Option<&str>) -> Result<TypeRef, CdefError> {
        let start = pair.as_span().start();
        let mut tag = None;
        let mut body = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::tag => tag = Some(p.as_str()),
                Rule::enum_body => body = Some(p),
                _ => {}
            }
        }
        let existing = tag.and_then(|t| self.ns.decls.enums.get(t).cloned());
        let Some(body) = body else {
            if let Some(n) = existing {
                return Ok(n);
            }
            // A forward-declared enum: cffi guesses `unsigned int`.
            let tag = tag.unwrap();
            let n = self.ns.table.new_enum(Some(tag.to_string()), format!("enum {tag}"), Vec::new(), Prim::UInt, false);
            self.ns.decls.enums.insert(tag.to_string(), n);
            return Ok(self.ns.decls.enums[tag].clone());
        };
        if existing.is_some() {
            return Err(self.error(
                ErrorKind::NotImplemented,
                start,
                format!(
                    "enum {}: the '{{}}' declaration should appear on the first time the enum is mentioned, not later",
                    tag.unwrap()
                ),
            ));
        }
        let mut items: Vec<(String, i128)> = Vec::new();
        let mut unknown: Vec<(String, usize)> = Vec::new();
        let mut partial = false;
        let mut next: i128 = 0;
        for e in body.into_inner() {
            match e.as_rule() {
                Rule::enum_dots => partial = true,
                Rule::enumerator => {
                    let mut inner = e.into_inner();
                    let name = inner.next().unwrap();
                    let name_at = name.as_span().start();
                    let name = name.as_str().to_string();
                    let value = match inner.next() {
                        Some(v) if v.as_rule() == Rule::value_dots => {
                            partial = true;
                            unknown.push((name, name_at));
                            continue;
                        }
                        Some(v) => {
                            let names = &self.ns.decls.names;
                            let local = &items;
                            let lookup = |n: &str| {
                                local.iter().rev().find(|(k, _)| k == n).map(|(_, v)| *v).or_else(|| match names.get(n) {
                                    Some(Decl::IntConstant { value, .. }) => Some(*value),
                                    _ => None,
                                })
                            };
                            match consteval::eval(v, &lookup).map_err(|e| self.error(ErrorKind::FFI, e.offset, e.message))? {
                                Value::Int(x) => x,
                                Value::Float => {
                                    return Err(self.error(ErrorKind::FFI, name_at, "unsupported expression: enum values must be integers"))
                                }
                            }
                        }
                        None => next,
                    };
                    next = value + 1;
                    items.push((name, value));
                }
                _ => {}
            }
        }
        let underlying = enum_underlying(&items).ok_or_else(|| {
            self.error(ErrorKind::FFI, start, "enum values do not fit in 64 bits")
        })?;
        let cname = match (tag, typedef_hint) {
            (Some(t), _) => format!("enum {t}"),
            (None, Some(h)) => h.to_string(),
            (None, None) => self.anonymous_name("enum"),
        };
        let node = self.ns.table.new_enum(tag.map(str::to_string), cname, items.clone(), underlying, partial);
        if let Some(t) = tag {
            self.ns.decls.enums.insert(t.to_string(), node.clone());
        }
        for (name, value) in items {
            let decl = Decl::IntConstant { value, ty: Some(node.clone()) };
            self.declare_enumerator(&name, decl)?;
        }
        for (name, _) in unknown {
            self.declare_enumerator(&name, Decl::UnknownConstant { ty: Some(node.clone()) })?;
        }
        Ok(node)
    }

    fn declare_enumerator(&mut self, name: &str, decl: Decl) -> Result<(), CdefError> {
        if let Some(old) = self.ns.decls.names.get(name) {
            let same_value = match (old, &decl) {
                (Decl::IntConstant { value: a, .. }, Decl::IntConstant { value: b, .. }) => a == b,
                _ => false,
            };
            if !same_value && !self.opts.override_ {
                return Err(CdefError::new(ErrorKind::FFI, format!("multiple declarations of constant: {name}")));
            }
        } else {
            self.ns.decls.order.push(name.to_string());
        }
        self.ns.decls.names.insert(name.to_string(), decl);
        Ok(())
    }

    /// Applies a declarator to `base`: `*` → pointer, `[n]` → array, `(..)` → function,
    /// inside out as C reads them.
    fn declarator<'i>(&mut self, base: Ty, pair: Pair<'i, Rule>) -> Result<Declared<'i>, CdefError> {
        self.declarator_c(base, pair, false)
    }

    /// `base_const`: the specifiers said `const` (a `const int x` global is read-only,
    /// a `const char *p` one is not).
    fn declarator_c<'i>(&mut self, base: Ty, pair: Pair<'i, Rule>, base_const: bool) -> Result<Declared<'i>, CdefError> {
        let mut ty = base;
        let mut name = None;
        let mut nested = None;
        let mut suffixes: Vec<Pair<Rule>> = Vec::new();
        let mut is_const = base_const;
        let mut empty = true;
        let start = pair.as_span().start();
        let inner = pair.into_inner();
        // C compilers accept a few dozen levels; the bound keeps type chains (and the
        // recursion that eventually frees them) shallow.
        if inner.len() > MAX_DERIVATIONS {
            return Err(self.error(
                ErrorKind::CDef,
                start,
                format!("declarator with more than {MAX_DERIVATIONS} pointer/array/function levels"),
            ));
        }
        for p in inner {
            empty = false;
            match p.as_rule() {
                Rule::ptr => {
                    ty = self.pointer_to(ty);
                    // `*` alone (the usual case) has no qualifiers to look at.
                    is_const = p.as_str().len() > 1
                        && p.as_str().trim_end() != "*"
                        && p.into_inner().any(|q| q.as_str().trim_end() == "const");
                }
                Rule::name => name = Some((p.as_str(), p.as_span().start())),
                Rule::nested => nested = Some(p),
                _ => suffixes.push(p),
            }
        }
        for s in suffixes.into_iter().rev() {
            let at = s.as_span().start();
            match s.as_rule() {
                Rule::array_suffix => {
                    if ty.func {
                        return Err(self.error(ErrorKind::CDef, at, "array of functions is not valid C (use an array of function pointers)"));
                    }
                    if matches!(ty.node.kind, Kind::Void) {
                        return Err(self.error(ErrorKind::CDef, at, "array of void is not valid C"));
                    }
                    let len = match s.into_inner().find(|p| p.as_rule() != Rule::qual) {
                        None => None,
                        Some(p) if p.as_rule() == Rule::array_dots => {
                            self.saw_dots_array = true;
                            None
                        }
                        Some(p) => {
                            let v = self.eval_int(p)?;
                            if v < 0 {
                                return Err(self.error(ErrorKind::FFI, at, format!("negative array length {v}")));
                            }
                            if v > (isize::MAX as i128) {
                                return Err(self.error(ErrorKind::FFI, at, format!("array length {v} is too large")));
                            }
                            Some(v as usize)
                        }
                    };
                    ty = Ty::plain(self.ns.table.array(&ty.node, len));
                }
                Rule::param_suffix => {
                    if ty.func {
                        return Err(self.error(ErrorKind::CDef, at, "a function cannot return a function (return a function pointer)"));
                    }
                    if matches!(ty.node.kind, Kind::Array(..)) {
                        return Err(self.error(ErrorKind::CDef, at, "a function cannot return an array"));
                    }
                    let fname = name.map(|(n, _)| n).unwrap_or_default();
                    let (args, variadic) = self.params(s, &fname)?;
                    ty = Ty { node: self.ns.table.func_ptr(args, &ty.node, variadic), func: true };
                }
                _ => {}
            }
        }
        if let Some(n) = nested {
            let at = n.as_span().start();
            let inner = n.into_inner().find(|p| p.as_rule() == Rule::declarator).unwrap();
            if let Some(param) = self.lone_type_name(&inner) {
                // `T(U)` with `U` a type name: C reads `(U)` as a parameter list, not
                // as a parenthesized declarator named `U` (the grammar cannot know type
                // names).
                let param = self.typedef_name(&param)?;
                if ty.func {
                    return Err(self.error(ErrorKind::CDef, at, "a function cannot return a function (return a function pointer)"));
                }
                if matches!(ty.node.kind, Kind::Array(..)) {
                    return Err(self.error(ErrorKind::CDef, at, "a function cannot return an array"));
                }
                let args = if param.func {
                    vec![param.node]
                } else {
                    match &param.node.kind {
                        Kind::Void => Vec::new(),
                        Kind::Array(item, _) => {
                            let item = item.clone();
                            vec![self.ns.pointer(&item)]
                        }
                        _ => vec![param.node],
                    }
                };
                let node = self.ns.table.func_ptr(args, &ty.node, false);
                return Ok(Declared { ty: Ty { node, func: true }, name: None, is_const, empty: false });
            }
            let d = self.declarator_c(ty, inner, is_const)?;
            return Ok(Declared { ty: d.ty, name: d.name, is_const: d.is_const, empty: false });
        }
        Ok(Declared { ty, name, is_const, empty })
    }

    /// The `name` of a declarator made of only that name, if it names a type.
    fn lone_type_name<'i>(&self, decl: &Pair<'i, Rule>) -> Option<Pair<'i, Rule>> {
        let mut parts = decl.clone().into_inner();
        let (Some(only), None) = (parts.next(), parts.next()) else { return None };
        if only.as_rule() != Rule::name {
            return None;
        }
        let name = only.as_str();
        let known = self.ns.decls.typedefs.contains_key(name)
            || self.ns.fn_typedefs.contains_key(name)
            || self.ns.unknown_num_typedefs.contains_key(name)
            || Prim::from_name(name).is_some()
            || name == "FILE";
        known.then_some(only)
    }

    fn pointer_to(&mut self, ty: Ty) -> Ty {
        if ty.func {
            Ty::plain(ty.node)
        } else {
            Ty::plain(self.ns.pointer(&ty.node))
        }
    }

    fn params(&mut self, suffix: Pair<Rule>, fname: &str) -> Result<(Vec<TypeRef>, bool), CdefError> {
        let at = suffix.as_span().start();
        let Some(params) = suffix.into_inner().next() else {
            // `f()` means `f(void)`.
            return Ok((Vec::new(), false));
        };
        let raw = params.as_rule() == Rule::raw_params;
        let list = params.into_inner();
        let variadic = list.clone().next_back().is_some_and(|p| {
            if raw {
                p.as_str().trim_end() == "..."
            } else {
                p.as_rule() == Rule::varargs
            }
        });
        if variadic && list.len() == 1 {
            return Err(self.error(
                ErrorKind::CDef,
                at,
                format!("{fname}: a function with only '(...)' as argument is not correct C"),
            ));
        }
        let count = list.len() - variadic as usize;
        let mut args = Vec::with_capacity(count);
        for (i, p) in list.into_iter().take(count).enumerate() {
            let p_at = p.as_span().start();
            let param = if raw { self.raw_param(p, fname, i + 1)? } else { self.param(p, fname, i + 1)? };
            if param.is_void {
                if count == 1 && param.empty {
                    return Ok((Vec::new(), false));
                }
                return Err(self.error(ErrorKind::CDef, p_at, format!("{fname}: 'void' must be the only parameter")));
            }
            args.push(param.node);
        }
        Ok((args, variadic))
    }

    /// A `param` of the tree.
    fn param(&mut self, p: Pair<Rule>, fname: &str, argno: usize) -> Result<Param, CdefError> {
        let p_at = p.as_span().start();
        let mut inner = p.into_inner();
        let specs_pair = inner.next().unwrap();
        let decl = inner.next().unwrap();
        let specs = match self.decl_specs(specs_pair, None) {
            Ok(s) => s,
            Err(e) => return Err(self.unknown_param_type(e, fname, argno, p_at)),
        };
        let declared = self.declarator(specs.base, decl)?;
        let ty = declared.ty;
        let is_void = matches!(ty.node.kind, Kind::Void) && !ty.func;
        // Parameters decay: arrays to pointers, functions to function pointers.
        let node = if ty.func {
            ty.node
        } else if let Kind::Array(item, _) = &ty.node.kind {
            let item = item.clone();
            self.ns.pointer(&item)
        } else {
            ty.node
        };
        Ok(Param { node, is_void, empty: declared.empty })
    }

    /// A `param_raw` piece: the type of an identical earlier piece, or the piece parsed
    /// on its own.
    fn raw_param(&mut self, piece: Pair<Rule>, fname: &str, argno: usize) -> Result<Param, CdefError> {
        let text = piece.as_str();
        if let Some(p) = self.param_types.get(text) {
            return Ok(p.clone());
        }
        let piece_at = piece.as_span().start();
        if text.starts_with("...") {
            // `...` before the last parameter, or `... x`: not a parameter list.
            self.bad_piece = true;
            return Err(self.error(ErrorKind::CDef, piece_at, "'...' must be the last parameter"));
        }
        let tree = match parser::parse(Rule::param_alone, text) {
            Ok(tree) => tree,
            Err(e) => {
                // Only unchecked texts get here; their caller parses the text again for
                // the exact error.
                self.bad_piece = true;
                return Err(self.error(ErrorKind::CDef, piece_at, format!("cannot parse parameter '{}': {e}", text.trim_end())));
            }
        };
        let param_pair = tree.into_inner().next().unwrap();
        let outer_base = self.base;
        self.base += piece_at;
        let param = self.param(param_pair, fname, argno);
        self.base = outer_base;
        let param = param?;
        if self.reusable(text) {
            self.param_types.insert(text.into(), param.clone());
        }
        Ok(param)
    }

    /// An unknown type name in a parameter list gets cffi's K&R hint.
    fn unknown_param_type(&self, e: CdefError, fname: &str, argno: usize, at: usize) -> CdefError {
        let Some(rest) = e.message.split("unknown type name '").nth(1) else { return e };
        let name = rest.split('\'').next().unwrap_or("");
        let func = if fname.is_empty() { "function" } else { fname };
        self.error(
            ErrorKind::CDef,
            at,
            format!(
                "{func} arg {argno}: unknown type '{name}' (if you meant to use the old C syntax of giving \
                 untyped arguments, it is not supported)"
            ),
        )
    }
}

/// The declarators of a declaration or member, each with the `extra` pair that follows
/// it if any (its initializer or bitfield width): the grammar puts no pair around the two.
fn declarators_with<'i>(pairs: impl Iterator<Item = Pair<'i, Rule>>, extra: Rule) -> Vec<(Pair<'i, Rule>, Option<Pair<'i, Rule>>)> {
    let mut out: Vec<(Pair<'i, Rule>, Option<Pair<'i, Rule>>)> = Vec::new();
    for p in pairs {
        if p.as_rule() == extra {
            if let Some(last) = out.last_mut() {
                last.1 = Some(p);
            }
        } else {
            out.push((p, None));
        }
    }
    out
}

fn is_integer(ty: &TypeRef) -> bool {
    match &ty.kind {
        Kind::Prim(p) => {
            use crate::types::model::PrimClass::*;
            matches!(p.class, SignedInt | UnsignedInt | Char | Bool | WideChar)
        }
        Kind::Enum(_) => true,
        _ => false,
    }
}

fn same_decl(a: &Decl, b: &Decl) -> bool {
    let same_ty = |x: &Option<TypeRef>, y: &Option<TypeRef>| match (x, y) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y),
        (None, None) => true,
        _ => false,
    };
    match (a, b) {
        (Decl::Function(x), Decl::Function(y)) | (Decl::ExternPython(x), Decl::ExternPython(y)) => Arc::ptr_eq(x, y),
        (Decl::Variable { ty: x, is_const: cx }, Decl::Variable { ty: y, is_const: cy }) => Arc::ptr_eq(x, y) && cx == cy,
        (Decl::IntConstant { value: x, ty: tx }, Decl::IntConstant { value: y, ty: ty_ }) => x == y && same_ty(tx, ty_),
        (Decl::UnknownConstant { ty: x }, Decl::UnknownConstant { ty: y }) => same_ty(x, y),
        _ => false,
    }
}

/// The integer type gcc gives an enum: `unsigned int` if every value is ≥ 0 and fits,
/// else `int`, else `unsigned long`, else `long`.
pub(crate) fn enum_underlying(items: &[(String, i128)]) -> Option<Prim> {
    let min = items.iter().map(|i| i.1).min().unwrap_or(0);
    let max = items.iter().map(|i| i.1).max().unwrap_or(0);
    if min >= 0 {
        if max <= u32::MAX as i128 {
            Some(Prim::UInt)
        } else if max <= u64::MAX as i128 {
            Some(Prim::ULong)
        } else {
            None
        }
    } else if min >= i32::MIN as i128 && max <= i32::MAX as i128 {
        Some(Prim::Int)
    } else if min >= i64::MIN as i128 && max <= i64::MAX as i128 {
        Some(Prim::Long)
    } else {
        None
    }
}

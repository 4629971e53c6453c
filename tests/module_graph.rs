//! The shape of `src/` as a test: modules at the same level depend on each other one way
//! only (no import cycles), and no non-test source file grows past 900 lines.
//!
//! The graph is read from the source text: every `use` tree and every `crate::`/`super::`/
//! `self::` path in code (comments, strings and `#[cfg(test)]` modules are ignored). A path is
//! resolved module by module, following `pub use` re-exports, so a facade `mod.rs` that
//! re-exports its children does not hide who really depends on whom. An edge counts between
//! the two sibling modules under the lowest common ancestor of user and target: a child
//! using its parent's own items, or a parent using its children, is not an edge.
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 900;

type ModPath = Vec<String>;

struct Module {
    file: PathBuf,
    is_test: bool,
    /// Source with comments, string/char literals and `#[cfg(test)]` items blanked out.
    code: String,
    children: BTreeSet<String>,
    /// `pub use` re-exports: visible name -> absolute target path.
    reexports: BTreeMap<String, ModPath>,
}

/// One dependency found in the source: the user module, the resolved target module and
/// where it was seen.
struct Edge {
    from: ModPath,
    to: ModPath,
    file: PathBuf,
    line: usize,
}

/// Comments, string and char literals replaced by spaces (newlines kept, so line numbers
/// stay right).
fn strip_comments_and_literals(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && !prev_is_ident(b, i)
        {
            // raw string r"..." / r#"..."#
            let mut j = i + 1;
            let mut hashes = 0;
            while j < b.len() && b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"'
                    && b[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == b'#')
                        .count()
                        == hashes
                {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &x in &b[i..j.min(b.len())] {
                blank(&mut out, x);
            }
            i = j;
        } else if c == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                blank(&mut out, b[i]);
                i += 1;
            }
            out.push(b' ');
            i += 1;
        } else if c == b'\'' {
            // A char literal ('a', '\n', '\u{..}') or a lifetime ('a): blank only literals.
            let end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 2 + p)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 2)
            } else {
                // multi-byte UTF-8 char literal
                let s = &src[i + 1..];
                s.chars().next().and_then(|ch| {
                    let n = ch.len_utf8();
                    (s.as_bytes().get(n) == Some(&b'\'')).then_some(i + 1 + n)
                })
            };
            match end {
                Some(e) => {
                    for &x in &b[i..=e] {
                        blank(&mut out, x);
                    }
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn prev_is_ident(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Blanks every item preceded by `#[cfg(test)]` (an inline `mod tests { .. }`, a test-only
/// function or `use`), up to its matching `}` or `;`.
fn blank_cfg_test_items(code: &str) -> String {
    let mut out = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(p) = code[from..].find("#[cfg(test)]") {
        let start = from + p;
        let b = code.as_bytes();
        let mut i = start + "#[cfg(test)]".len();
        let mut depth = 0i32;
        while i < b.len() {
            match b[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    i += 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        for x in &mut out[start..i.min(b.len())] {
            if *x != b'\n' {
                *x = b' ';
            }
        }
        from = i.min(b.len());
    }
    String::from_utf8(out).expect("ascii blanks keep utf-8")
}

/// `mod name;` declarations of a file: (name, declared under `#[cfg(test)]`).
fn mod_decls(code_with_cfg: &str) -> Vec<(String, bool)> {
    let mut v = Vec::new();
    let mut cfg_test_pending = false;
    for line in code_with_cfg.lines() {
        let t = line.trim();
        if t.starts_with("#[cfg(test)]") {
            cfg_test_pending = true;
            continue;
        }
        let rest = t
            .strip_prefix("pub mod ")
            .or_else(|| t.strip_prefix("pub(crate) mod "))
            .or_else(|| t.strip_prefix("pub(super) mod "))
            .or_else(|| t.strip_prefix("mod "));
        if let Some(rest) = rest {
            if let Some(name) = rest.strip_suffix(';') {
                v.push((name.trim().to_string(), cfg_test_pending));
            }
        }
        if !t.starts_with("#[") && !t.is_empty() {
            cfg_test_pending = false;
        }
    }
    v
}

fn load_modules(src: &Path) -> BTreeMap<ModPath, Module> {
    let mut mods = BTreeMap::new();
    let mut todo: Vec<(ModPath, PathBuf, bool)> = vec![(vec![], src.join("lib.rs"), false)];
    while let Some((path, file, is_test)) = todo.pop() {
        let raw = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let stripped = strip_comments_and_literals(&raw);
        let decls = mod_decls(&stripped);
        let code = blank_cfg_test_items(&stripped);
        let dir = {
            let stem = file.file_stem().unwrap().to_str().unwrap();
            let parent = file.parent().unwrap().to_path_buf();
            if stem == "mod" || path.is_empty() {
                parent
            } else {
                parent.join(stem)
            }
        };
        let mut children = BTreeSet::new();
        for (name, test) in decls {
            let a = dir.join(format!("{name}.rs"));
            let b = dir.join(&name).join("mod.rs");
            let child_file = if a.exists() { a } else { b };
            let mut p = path.clone();
            p.push(name.clone());
            children.insert(name);
            todo.push((p, child_file, is_test || test));
        }
        mods.insert(
            path,
            Module {
                file,
                is_test,
                code,
                children,
                reexports: BTreeMap::new(),
            },
        );
    }
    // Re-exports need every module's children known first.
    let paths: Vec<ModPath> = mods.keys().cloned().collect();
    for p in paths {
        let mut re = BTreeMap::new();
        for (stmt, _) in use_statements(&mods[&p].code) {
            if !stmt.is_pub {
                continue;
            }
            for (segs, alias) in expand_use_tree(&stmt.tree) {
                if let Some(abs) = absolutize(&mods, &p, &segs) {
                    let name = alias.unwrap_or_else(|| segs.last().unwrap().clone());
                    if name != "*" && name != "self" {
                        re.insert(name, abs);
                    }
                }
            }
        }
        mods.get_mut(&p).unwrap().reexports = re;
    }
    mods
}

struct UseStmt {
    is_pub: bool,
    tree: String,
}

/// Every `use ...;` in the code, with the line it starts on.
fn use_statements(code: &str) -> Vec<(UseStmt, usize)> {
    let b = code.as_bytes();
    let mut v = Vec::new();
    let mut i = 0;
    while let Some(p) = code[i..].find("use ") {
        let at = i + p;
        i = at + 4;
        if prev_is_ident(b, at) {
            continue;
        }
        let end = match code[i..].find(';') {
            Some(e) => i + e,
            None => break,
        };
        let before = code[..at].trim_end();
        let is_pub = before.ends_with("pub")
            || before.ends_with(')')
                && before
                    .rsplit("pub")
                    .next()
                    .is_some_and(|r| r.starts_with('('));
        let line = code[..at].matches('\n').count() + 1;
        v.push((
            UseStmt {
                is_pub,
                tree: code[i..end]
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            },
            line,
        ));
        i = end + 1;
    }
    v
}

/// `a::{b, c::{d as e}}` -> [(a::b, None), (a::c::d, Some(e))]; `self` inside braces is the prefix.
fn expand_use_tree(tree: &str) -> Vec<(Vec<String>, Option<String>)> {
    fn go(prefix: &[String], t: &str, out: &mut Vec<(Vec<String>, Option<String>)>) {
        let t = t.trim().trim_start_matches("::").trim();
        if t.is_empty() {
            return;
        }
        if let Some(open) = t.find('{') {
            let mut p = prefix.to_vec();
            p.extend(
                t[..open]
                    .split("::")
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
            let inner = &t[open + 1..t.rfind('}').unwrap_or(t.len())];
            let mut depth = 0;
            let mut start = 0;
            for (k, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        go(&p, &inner[start..k], out);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            go(&p, &inner[start..], out);
            return;
        }
        let (path, alias) = match t.split_once(" as ") {
            Some((a, b)) => (a, Some(b.trim().to_string())),
            None => (t, None),
        };
        let mut p = prefix.to_vec();
        for s in path.split("::").map(str::trim).filter(|s| !s.is_empty()) {
            if s == "self" && !p.is_empty() {
                continue;
            }
            p.push(s.to_string());
        }
        out.push((p, alias));
    }
    let mut out = Vec::new();
    go(&[], tree, &mut out);
    out
}

/// A path as written in module `cur` -> absolute segments, or None for external crates.
fn absolutize(mods: &BTreeMap<ModPath, Module>, cur: &ModPath, segs: &[String]) -> Option<ModPath> {
    let mut segs = segs.iter().peekable();
    let first = segs.peek()?.as_str();
    let mut base: ModPath = match first {
        "crate" => {
            segs.next();
            vec![]
        }
        "self" => {
            segs.next();
            cur.clone()
        }
        "super" => {
            let mut b = cur.clone();
            while segs.peek().map(|s| s.as_str()) == Some("super") {
                segs.next();
                b.pop();
            }
            b
        }
        name if mods.get(cur).is_some_and(|m| m.children.contains(name)) => cur.clone(),
        _ => return None,
    };
    base.extend(segs.cloned());
    Some(base)
}

/// The module an absolute path lands in, following re-exports.
fn resolve(mods: &BTreeMap<ModPath, Module>, path: &ModPath) -> ModPath {
    let mut path = path.clone();
    for _ in 0..32 {
        let mut cur: ModPath = vec![];
        let mut k = 0;
        while k < path.len()
            && mods
                .get(&cur)
                .is_some_and(|m| m.children.contains(&path[k]))
        {
            cur.push(path[k].clone());
            k += 1;
        }
        let redirect = path.get(k).and_then(|name| mods[&cur].reexports.get(name));
        match redirect {
            Some(target) if target != &path[..=k].to_vec() => {
                let mut np = target.clone();
                np.extend(path[k + 1..].iter().cloned());
                path = np;
            }
            _ => return cur,
        }
    }
    path
}

/// Qualified paths in code (`crate::a::b`, `super::x`, `self::y`) outside `use` statements.
fn qualified_paths(code: &str) -> Vec<(Vec<String>, usize)> {
    let b = code.as_bytes();
    let mut v = Vec::new();
    // Blank `use` statements first: they are read as trees.
    let mut masked = code.as_bytes().to_vec();
    let mut i = 0;
    while let Some(p) = code[i..].find("use ") {
        let at = i + p;
        i = at + 4;
        if prev_is_ident(b, at) {
            continue;
        }
        if let Some(e) = code[at..].find(';') {
            for x in &mut masked[at..at + e] {
                if *x != b'\n' {
                    *x = b' ';
                }
            }
        }
    }
    let m = String::from_utf8(masked).unwrap();
    for kw in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(p) = m[from..].find(kw) {
            let at = from + p;
            from = at + kw.len();
            if prev_is_ident(m.as_bytes(), at) || (at >= 2 && &m[at - 2..at] == "::") {
                continue;
            }
            let mut j = at;
            let mb = m.as_bytes();
            while j < mb.len()
                && (is_ident_byte(mb[j]) || (mb[j] == b':' && mb.get(j + 1) == Some(&b':')))
            {
                j += if mb[j] == b':' { 2 } else { 1 };
            }
            let segs: Vec<String> = m[at..j]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            v.push((segs, m[..at].matches('\n').count() + 1));
            from = j.max(from);
        }
    }
    v
}

fn edges(mods: &BTreeMap<ModPath, Module>) -> Vec<Edge> {
    let mut out = Vec::new();
    for (p, m) in mods {
        if m.is_test {
            continue;
        }
        let mut found: Vec<(Vec<String>, usize)> = Vec::new();
        for (stmt, line) in use_statements(&m.code) {
            for (segs, _) in expand_use_tree(&stmt.tree) {
                found.push((segs, line));
            }
        }
        found.extend(qualified_paths(&m.code));
        for (segs, line) in found {
            if let Some(abs) = absolutize(mods, p, &segs) {
                let to = resolve(mods, &abs);
                out.push(Edge {
                    from: p.clone(),
                    to,
                    file: m.file.clone(),
                    line,
                });
            }
        }
    }
    out
}

/// Cycles among sibling modules, one message per strongly connected component.
fn find_cycles(src: &Path) -> Vec<String> {
    let mods = load_modules(src);
    // level (parent path) -> child -> child -> first edge seen
    let mut levels: BTreeMap<ModPath, BTreeMap<String, BTreeMap<String, String>>> = BTreeMap::new();
    for e in edges(&mods) {
        let common = e.from.iter().zip(&e.to).take_while(|(a, b)| a == b).count();
        if common >= e.from.len() || common >= e.to.len() {
            continue; // parent <-> own descendant
        }
        let (a, b) = (e.from[common].clone(), e.to[common].clone());
        let seen = format!(
            "{}:{} ({} uses {})",
            e.file.display(),
            e.line,
            e.from.join("::"),
            e.to.join("::")
        );
        levels
            .entry(e.from[..common].to_vec())
            .or_default()
            .entry(a)
            .or_default()
            .entry(b)
            .or_insert(seen);
    }
    let mut msgs = Vec::new();
    for (level, g) in &levels {
        for scc in strongly_connected(g) {
            if scc.len() < 2 {
                continue;
            }
            let mut why = Vec::new();
            for a in &scc {
                for (b, seen) in &g[a] {
                    if scc.contains(b) {
                        why.push(format!("    {a} -> {b}: {seen}"));
                    }
                }
            }
            let lvl = if level.is_empty() {
                "crate".to_string()
            } else {
                level.join("::")
            };
            msgs.push(format!(
                "cycle under {lvl}: {{{}}}\n{}",
                scc.iter().cloned().collect::<Vec<_>>().join(", "),
                why.join("\n")
            ));
        }
    }
    msgs
}

fn strongly_connected(g: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<BTreeSet<String>> {
    // Kosaraju on a small graph.
    let nodes: BTreeSet<String> = g
        .keys()
        .chain(g.values().flat_map(|m| m.keys()))
        .cloned()
        .collect();
    let succ = |n: &String| {
        g.get(n)
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    fn dfs<F: Fn(&String) -> Vec<String>>(
        n: &String,
        succ: &F,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) {
        if !seen.insert(n.clone()) {
            return;
        }
        for s in succ(n) {
            dfs(&s, succ, seen, order);
        }
        order.push(n.clone());
    }
    for n in &nodes {
        dfs(n, &succ, &mut seen, &mut order);
    }
    let mut rev: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (a, m) in g {
        for b in m.keys() {
            rev.entry(b.clone()).or_default().push(a.clone());
        }
    }
    let rsucc = |n: &String| rev.get(n).cloned().unwrap_or_default();
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for n in order.iter().rev() {
        if assigned.contains(n) {
            continue;
        }
        let mut comp = Vec::new();
        let mut s2 = assigned.clone();
        dfs(n, &rsucc, &mut s2, &mut comp);
        let comp: BTreeSet<String> = comp.into_iter().filter(|c| !assigned.contains(c)).collect();
        assigned.extend(comp.iter().cloned());
        out.push(comp);
    }
    out
}

/// Non-test source files over the limit.
fn oversized_files(src: &Path) -> Vec<String> {
    let mods = load_modules(src);
    let mut v = Vec::new();
    for m in mods.values().filter(|m| !m.is_test) {
        // Lines of `#[cfg(test)]` items are tests and don't count; everything else does,
        // comments included.
        let text = fs::read_to_string(&m.file).unwrap();
        let stripped = strip_comments_and_literals(&text);
        let kept = blank_cfg_test_items(&stripped);
        let test_lines = stripped
            .lines()
            .zip(kept.lines())
            .filter(|(a, b)| !a.trim().is_empty() && b.trim().is_empty())
            .count();
        let n = text.lines().count() - test_lines;
        if n > MAX_LINES {
            v.push(format!(
                "{}: {n} lines (limit {MAX_LINES})",
                m.file.display()
            ));
        }
    }
    v
}

fn crate_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_import_cycles_between_sibling_modules() {
    let cycles = find_cycles(&crate_src());
    assert!(
        cycles.is_empty(),
        "import cycles in src/:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn no_source_file_over_the_line_limit() {
    let big = oversized_files(&crate_src());
    assert!(big.is_empty(), "files over the limit:\n{}", big.join("\n"));
}

#[test]
fn every_module_of_the_crate_is_found() {
    // The walk must reach the modules it polices; a broken `mod` reader would pass vacuously.
    let mods = load_modules(&crate_src());
    for m in [
        &["cdef"][..],
        &["types", "model"],
        &["abi"],
        &["jit"],
        &["py"],
    ] {
        let p: ModPath = m.iter().map(|s| s.to_string()).collect();
        assert!(mods.contains_key(&p), "module {} not found", p.join("::"));
    }
    assert!(mods.len() > 25, "only {} modules found", mods.len());
}

/// The checker itself, on a small synthetic crate.
#[test]
fn checker_finds_cycles_through_reexports_and_ignores_parent_child_uses() {
    let dir = std::env::temp_dir().join(format!("jitffi-modgraph-{}", std::process::id()));
    let src = dir.join("src");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(src.join("p/q")).unwrap();
    let w = |rel: &str, text: &str| fs::write(src.join(rel), text).unwrap();
    w("lib.rs", "pub mod p;\npub mod low;\n");
    w("low.rs", "pub struct L;\n// use crate::p::a; (a comment is not a use)\nconst S: &str = \"crate::p::b\";\n");
    // p/mod.rs re-exports from its children and uses them: parent -> child, not an edge.
    w("p/mod.rs", "pub mod a;\npub mod b;\npub mod q;\npub use a::A;\npub use self::b::B;\nfn f() { let _ = a::A; }\n");
    // a -> b through the parent's re-export of B.
    w(
        "p/a.rs",
        "use super::B;\nuse crate::low::L;\npub struct A;\nfn g(_: B, _: L) {}\n",
    );
    // b -> q, q -> a written as a qualified path: the cycle is a -> b -> q -> a.
    w("p/b.rs", "pub struct B;\nfn h() { let _ = super::q::Q; }\n");
    w("p/q/mod.rs", "pub struct Q;\nfn k() { let _ = crate::p::A; }\n#[cfg(test)]\nmod tests { use crate::low::L; }\n");
    let cycles = find_cycles(&src);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(
        cycles[0].starts_with("cycle under p: {a, b, q}"),
        "{}",
        cycles[0]
    );
    assert!(oversized_files(&src).is_empty());
    // Breaking one edge removes the cycle; the parent's own uses never made one.
    w("p/q/mod.rs", "pub struct Q;\n");
    assert!(find_cycles(&src).is_empty());
    // A child using the crate root's items, and the root using a grandchild: no edge either.
    w(
        "p/b.rs",
        &format!("pub struct B;\n{}", "// filler\n".repeat(MAX_LINES)),
    );
    assert_eq!(oversized_files(&src).len(), 1);
    let _ = fs::remove_dir_all(&dir);
}

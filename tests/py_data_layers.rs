//! The data side of `src/py` (everything but the call-side modules `function`,
//! `call_glue`, `callback`, `lib_object`) imports one way: no cycle among its modules,
//! and no file of it over 900 lines. Module edges are read from `super::x` /
//! `crate::py::x` paths (test modules aside).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CALL_SIDE: [&str; 4] = ["function", "call_glue", "callback", "lib_object"];

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/py/ops/new.rs` → `ops/new`; `src/py/convert/mod.rs` → `convert`.
fn module_name(root: &Path, p: &Path) -> String {
    let rel = p.strip_prefix(root).unwrap().with_extension("");
    let s = rel.to_string_lossy().replace('\\', "/");
    s.strip_suffix("/mod").map(str::to_string).unwrap_or(s)
}

/// The modules a file names through `super::` / `crate::py::` paths (the longest module
/// prefix of each path).
fn deps(name: &str, text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let text = text.split("#[cfg(test)]").next().unwrap_or(text);
    let parent: Vec<&str> = name.rsplit_once('/').map(|(p, _)| p.split('/').collect()).unwrap_or_default();
    let mut out = BTreeSet::new();
    for (prefix, base) in [("crate::py::", Vec::new()), ("super::", parent)] {
        for (i, _) in text.match_indices(prefix) {
            let rest = &text[i + prefix.len()..];
            let path: Vec<&str> = rest.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).next().unwrap_or("").split("::").collect();
            let mut cand: Vec<&str> = base.clone();
            cand.extend(path.iter().filter(|s| !s.is_empty()));
            for k in (1..=cand.len()).rev() {
                let m = cand[..k].join("/");
                if modules.contains(&m) {
                    if m != name {
                        out.insert(m);
                    }
                    break;
                }
            }
        }
    }
    out
}

#[test]
fn data_side_of_src_py_is_acyclic_and_small() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/py");
    let mut files = Vec::new();
    rs_files(&root, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|p| module_name(&root, p)).collect();
    let data_side = |m: &str| !CALL_SIDE.contains(&m);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in &files {
        let name = module_name(&root, p);
        if !data_side(&name) {
            continue;
        }
        let text = std::fs::read_to_string(p).unwrap();
        let lines = text.split("#[cfg(test)]").next().unwrap_or(&text).lines().count();
        assert!(lines <= 900, "{} has {lines} lines (more than 900)", p.display());
        let d = deps(&name, &text, &modules).into_iter().filter(|m| data_side(m)).collect();
        graph.insert(name, d);
    }
    // Depth-first search for a back edge.
    fn visit(m: &str, graph: &BTreeMap<String, BTreeSet<String>>, state: &mut BTreeMap<String, u8>, stack: &mut Vec<String>) {
        match state.get(m) {
            Some(2) => return,
            Some(1) => panic!("import cycle in src/py: {} -> {m}", stack.join(" -> ")),
            _ => {}
        }
        state.insert(m.to_string(), 1);
        stack.push(m.to_string());
        for d in graph.get(m).into_iter().flatten() {
            visit(d, graph, state, stack);
        }
        stack.pop();
        state.insert(m.to_string(), 2);
    }
    let mut state = BTreeMap::new();
    for m in graph.keys() {
        visit(m, &graph, &mut state, &mut Vec::new());
    }
    // the layering the module docs describe
    assert!(graph["state"].iter().all(|d| d == "gil"), "state must stay below ctype: {:?}", graph["state"]);
    assert!(!graph["cdata"].contains("convert"), "cdata must stay below convert");
}

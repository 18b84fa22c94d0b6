//! `cargo xtask module-cycles`: fails when the top-level modules of a crate import each other in
//! a cycle (`a` uses `crate::b`, `b` uses `crate::a`, or longer loops).
//!
//! A cycle means neither module can be read, tested or replaced without the other; the crates
//! are kept layered instead (see docs/architecture.md). The check is textual, which is enough
//! for this workspace: comments, strings and char literals are skipped, `use` trees are
//! expanded, and every `crate::…`, `super::…` and `self::…` path (in `use` or inline) is
//! resolved to the top-level module it names. Nested modules (`credentials/chain.rs`, inline
//! `mod tests`) count as part of their top-level module; the crate root (`lib.rs`/`main.rs`),
//! which declares and re-exports everything, is not a node. Binaries under `src/bin` are
//! separate crates and are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

/// The source directories checked: the `src` of every member of the workspace (the
/// `members` list of the root `Cargo.toml`; separate workspaces such as `crates/bench` are
/// not members and not checked).
fn source_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let manifest = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let list = text
        .split_once("members")
        .and_then(|(_, rest)| rest.split_once('['))
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .with_context(|| format!("no `members` list in {}", manifest.display()))?;
    let mut dirs: Vec<PathBuf> = list
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .map(|m| root.join(m).join("src"))
        .filter(|src| src.is_dir())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        bail!(
            "no member source directory found from {}",
            manifest.display()
        );
    }
    Ok(dirs)
}

/// Runs the check over the workspace at `root`; the error lists every cycle found.
pub fn module_cycles(root: &Path) -> Result<()> {
    let mut report = Vec::new();
    let mut checked = 0;
    for src in source_dirs(root)? {
        let files = read_crate(&src)?;
        checked += 1;
        for cycle in cycles(&files) {
            report.push(format!("{}: {}", src.display(), cycle.join(" -> ")));
        }
    }
    if !report.is_empty() {
        bail!("module import cycles:\n  {}", report.join("\n  "));
    }
    eprintln!("==> module-cycles: no import cycle in {checked} crates");
    Ok(())
}

/// The `.rs` files under `src` (not `src/bin`), each as (module path segments, source).
fn read_crate(src: &Path) -> Result<Vec<(Vec<String>, String)>> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                if path != src.join("bin") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            out.push((module_of(rel), text));
        }
    }
    Ok(out)
}

/// The module path of a file relative to `src`: `lib.rs` → `[]`, `a.rs` and `a/mod.rs` → `[a]`,
/// `a/b.rs` → `[a, b]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut segs: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    if segs.len() == 1 && (segs[0] == "lib" || segs[0] == "main") {
        segs.clear();
    }
    segs
}

/// Every cycle among the top-level modules of one crate's `files`, each as the module names
/// along the loop (first repeated at the end). One cycle per strongly connected component.
pub fn cycles(files: &[(Vec<String>, String)]) -> Vec<Vec<String>> {
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|(m, _)| m.first().cloned())
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in files {
        let Some(top) = module.first() else { continue };
        for target in references(module, text) {
            if target != *top && modules.contains(&target) {
                edges.entry(top.clone()).or_default().insert(target);
            }
        }
    }
    let mut found = Vec::new();
    for scc in strongly_connected(&modules, &edges) {
        if scc.len() > 1 {
            found.push(loop_within(&scc, &edges));
        }
    }
    found
}

/// The top-level modules that the source `text` of module `module` refers to.
fn references(module: &[String], text: &str) -> BTreeSet<String> {
    let code = strip(text);
    let tokens = tokenize(&code);
    let mut out = BTreeSet::new();
    // Inline modules currently open: (name, brace depth inside it).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        match t {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d > depth) {
                    inline.pop();
                }
            }
            "mod" if tokens.get(i + 2).is_some_and(|t| t == "{") => {
                inline.push((tokens[i + 1].clone(), depth + 1));
            }
            _ => {}
        }
        let current: Vec<String> = module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        if t == "use" {
            let end = tokens[i..]
                .iter()
                .position(|t| t == ";")
                .map_or(tokens.len(), |p| i + p);
            for path in expand_use(&tokens[i + 1..end]) {
                if let Some(top) = resolve(&current, &path) {
                    out.insert(top);
                }
            }
            i = end + 1;
            continue;
        }
        if matches!(t, "crate" | "super" | "self") && tokens.get(i + 1).is_some_and(|t| t == "::") {
            let mut path = vec![t.to_owned()];
            let mut j = i + 1;
            while tokens.get(j).is_some_and(|t| t == "::")
                && tokens.get(j + 1).is_some_and(|t| is_ident(t))
            {
                path.push(tokens[j + 1].clone());
                j += 2;
            }
            if let Some(top) = resolve(&current, &path) {
                out.insert(top);
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

/// The top-level module a path names from module `current`, if it starts with `crate`,
/// `super` or `self` and reaches a module segment.
fn resolve(current: &[String], path: &[String]) -> Option<String> {
    let mut at: Vec<String> = current.to_vec();
    let mut rest = path;
    match rest.first()?.as_str() {
        "crate" => {
            at.clear();
            rest = &rest[1..];
        }
        "super" | "self" => {
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "super" => {
                        at.pop()?;
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    match at.first() {
        Some(top) => Some(top.clone()),
        None => rest.first().filter(|s| is_ident(s) && *s != "*").cloned(),
    }
}

/// The paths a `use` tree (tokens after `use`, before `;`) imports, each as segments.
fn expand_use(tokens: &[String]) -> Vec<Vec<String>> {
    fn walk(tokens: &[String], prefix: &[String], out: &mut Vec<Vec<String>>) {
        // Split `tokens` at top-level commas.
        let mut start = 0;
        let mut depth = 0usize;
        for (i, t) in tokens.iter().enumerate() {
            match t.as_str() {
                "{" => depth += 1,
                "}" => depth = depth.saturating_sub(1),
                "," if depth == 0 => {
                    one(&tokens[start..i], prefix, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        one(&tokens[start..], prefix, out);
    }
    fn one(tokens: &[String], prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        let mut i = 0;
        while i < tokens.len() {
            match tokens[i].as_str() {
                "::" => {}
                "{" => {
                    let inner = &tokens[i + 1..tokens.len().saturating_sub(1).max(i + 1)];
                    walk(inner, &path, out);
                    return;
                }
                "as" => break,
                t => path.push(t.to_owned()),
            }
            i += 1;
        }
        if !path.is_empty() {
            out.push(path);
        }
    }
    let tokens: Vec<String> = tokens.iter().filter(|t| *t != "pub").cloned().collect();
    let mut out = Vec::new();
    walk(&tokens, &[], &mut out);
    out
}

fn is_ident(t: &str) -> bool {
    t == "*"
        || t.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && t.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// `text` without comments, string literals and char literals (each replaced by a blank).
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut nest = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    nest += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    nest -= 1;
                    i += 2;
                    if nest == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
            continue;
        }
        // Raw strings: r"…", r#"…"#, br"…".
        let raw_at = if c == 'r' {
            Some(i + 1)
        } else if c == 'b' && next == Some('r') {
            Some(i + 2)
        } else {
            None
        };
        let prev_ident = i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_');
        if let (Some(mut j), false) = (raw_at, prev_ident) {
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) == Some(&'"') {
                j += 1;
                loop {
                    if j >= b.len() {
                        break;
                    }
                    if b[j] == '"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                i = j;
                out.push(' ');
                continue;
            }
        }
        if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(' ');
            continue;
        }
        if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'); otherwise a lifetime.
            if next == Some('\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                out.push(' ');
                continue;
            }
            if b.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push(' ');
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Identifiers, `::`, and single punctuation characters of comment-free code.
fn tokenize(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push("::".to_owned());
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
            i += 1;
        }
    }
    out
}

/// Tarjan's strongly connected components of the module graph.
fn strongly_connected(
    nodes: &BTreeSet<String>,
    edges: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit(s: &mut State<'_>, v: &str) {
        s.index.insert(v.to_owned(), s.next);
        s.low.insert(v.to_owned(), s.next);
        s.next += 1;
        s.stack.push(v.to_owned());
        s.on_stack.insert(v.to_owned());
        let targets: Vec<String> = s
            .edges
            .get(v)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        for w in targets {
            if !s.index.contains_key(&w) {
                visit(s, &w);
                let lw = s.low[&w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(&w) {
                let iw = s.index[&w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(&w);
                let done = w == v;
                scc.push(w);
                if done {
                    break;
                }
            }
            scc.sort();
            s.out.push(scc);
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for n in nodes {
        if !s.index.contains_key(n) {
            visit(&mut s, n);
        }
    }
    s.out
}

/// One loop through the modules of a strongly connected component, starting at its first
/// (by name): a shortest path back to it, by breadth-first search inside the component.
fn loop_within(scc: &[String], edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let members: BTreeSet<&String> = scc.iter().collect();
    let start = &scc[0];
    let mut parent: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.clone()]);
    while let Some(v) = queue.pop_front() {
        for w in edges.get(&v).into_iter().flatten() {
            if !members.contains(w) {
                continue;
            }
            if w == start {
                // Follow the parents back from `v` to `start`, then read it forwards.
                let mut path = vec![start.clone()];
                let mut at = v.clone();
                while at != *start {
                    path.push(at.clone());
                    at = parent[&at].clone();
                }
                path[1..].reverse();
                path.push(start.clone());
                return path;
            }
            if !parent.contains_key(w) && w != start {
                parent.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    scc.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(module: &str, text: &str) -> (Vec<String>, String) {
        let segs = if module.is_empty() {
            Vec::new()
        } else {
            module.split("::").map(str::to_owned).collect()
        };
        (segs, text.to_owned())
    }

    #[test]
    fn a_two_module_cycle_is_found() {
        let files = [
            file("", "mod a; mod b;"),
            file("a", "use crate::b::Thing;\npub struct Other;"),
            file(
                "b",
                "pub struct Thing;\nfn f() -> super::a::Other { todo!() }",
            ),
        ];
        assert_eq!(cycles(&files), vec![vec!["a", "b", "a"]]);
    }

    #[test]
    fn a_longer_cycle_through_grouped_uses_is_found_in_edge_order() {
        let files = [
            file("a", "use crate::{x, b::{self, Y as Z}};"),
            file("b", "pub(crate) use crate::c::*;"),
            file("c", "fn f() { crate::a::g(); }"),
            file("x", ""),
        ];
        assert_eq!(cycles(&files), vec![vec!["a", "b", "c", "a"]]);
    }

    #[test]
    fn layered_modules_comments_strings_and_nesting_are_no_cycle() {
        let files = [
            file("", "mod a; mod b; pub use a::A; fn main() { crate::a::f(); }"),
            // The root uses everything; comments, doc links and strings name crate::b freely.
            file(
                "a",
                "//! See [`crate::b`].\nuse crate::b::B; /* crate::b */ const S: &str = \"crate::b\";\n\
                 #[cfg(test)] mod tests { use super::*; fn t<'a>(x: &'a str) -> char { 'c' } }",
            ),
            // A child module using its parent is no cycle.
            file("b", "pub struct B; mod inner { use super::B; }"),
            file("b::child", "use super::B; use crate::b::B as C;"),
            file("c", "const R: &str = r#\"crate::a\"#; const Q: char = '\\'';"),
        ];
        assert!(cycles(&files).is_empty(), "{:?}", cycles(&files));
    }

    #[test]
    fn super_from_an_inline_module_is_its_file_module() {
        // `super::` inside `mod tests` of `a` names `a`, not the crate root; `super::super::b`
        // from there names `b`.
        let files = [
            file("a", "mod tests { use super::super::b; }"),
            file("b", "use crate::a;"),
        ];
        assert_eq!(cycles(&files), vec![vec!["a", "b", "a"]]);
    }

    #[test]
    fn module_paths_of_files() {
        assert!(module_of(Path::new("lib.rs")).is_empty());
        assert_eq!(module_of(Path::new("a/mod.rs")), vec!["a"]);
        assert_eq!(module_of(Path::new("a/b.rs")), vec!["a", "b"]);
    }
}

//! The layering rule of `ARCHITECTURE.md`, checked against the code.
//!
//! `ARCHITECTURE.md` lists `crates/core`'s top-level modules in layers, top to bottom (the block that starts with
//! `# layers of crates/core/src`). A module may use modules of the layers **below** its own, never one of its own
//! layer or above. Inside a module, its submodules may use one another without a cycle (checked at every level of
//! the module tree, siblings against siblings). The edges are read from the sources: every `use crate::…` and
//! `use super::…` item (braces expanded) and every `crate::…` path in the code, outside comments and test modules.
//!
//! Rationale: a cycle between modules means neither can be understood, tested or moved without the other. Writing
//! the layers down and checking them keeps the next change from quietly adding one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `a::b` → where in the sources it is used from, one example per edge.
type Edges = BTreeMap<(String, String), String>;

const ARCHITECTURE_MD: &str = include_str!("../../../../ARCHITECTURE.md");
const LAYERS_MARKER: &str = "# layers of crates/core/src";

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module path of a source file (`store/mod.rs` → `store`, `provider/catalog.rs` → `provider::catalog`), or
/// `None` for the crate root and for out-of-line test modules (`tests.rs`).
fn module_of(relative: &Path) -> Option<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.is_empty() || parts == ["lib"] || parts.last().is_some_and(|p| p == "tests") {
        return None;
    }
    Some(parts.join("::"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its inline `#[cfg(test)] mod tests { … }` (which, by house
/// style, comes last).
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") && lines.peek().is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            if lines.peek().is_some_and(|next| next.trim_end().ends_with('{')) {
                break;
            }
            continue; // `#[cfg(test)] mod tests;`: the file is skipped by `module_of`
        }
        code.push_str(&blank_strings(line));
        code.push('\n');
    }
    code
}

/// `line` without its comment and with the contents of its string literals blanked (`"…"` → `""`), so that words
/// in messages are not read as code.
fn blank_strings(line: &str) -> String {
    let mut out = String::new();
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            match (c, escaped) {
                ('\\', false) => escaped = true,
                ('"', false) => {
                    in_string = false;
                    out.push('"');
                }
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '/' if chars.peek() == Some(&'/') => break,
            // A char literal '"' is not a string.
            '\'' if chars.peek() == Some(&'"') => {
                out.push_str("'\"");
                chars.next();
            }
            '"' => {
                in_string = true;
                out.push('"');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Expands a `use` tree (`a::{b, c::{d, e}}`) into full paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        return vec![path.to_owned()];
    };
    let prefix = tree[..open].trim_end_matches("::").trim();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.trim().is_empty())
        .flat_map(expand)
        .map(|rest| match rest.as_str() {
            "self" => prefix.to_owned(),
            _ if prefix.is_empty() => rest,
            _ => format!("{prefix}::{rest}"),
        })
        .collect()
}

/// Every path a file's code names that starts at `crate`, `super` or `self`, made absolute (without `crate::`).
fn paths_named(module: &str, code: &str) -> Vec<String> {
    let absolute = |path: &str| -> Option<String> {
        let mut here: Vec<&str> = module.split("::").collect();
        let mut rest = path;
        if let Some(r) = rest.strip_prefix("crate::") {
            return Some(r.to_owned());
        }
        let mut relative = false;
        while let Some(r) = rest.strip_prefix("super::") {
            here.pop();
            rest = r;
            relative = true;
        }
        if let Some(r) = rest.strip_prefix("self::") {
            rest = r;
            relative = true;
        }
        relative.then(|| here.into_iter().chain(rest.split("::")).collect::<Vec<_>>().join("::"))
    };
    let mut found = Vec::new();
    // `use` items (a line that starts one, up to its `;`), braces expanded.
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        let item = line.trim_start();
        let item = item
            .strip_prefix("pub ")
            .or_else(|| item.strip_prefix("pub(crate) "))
            .unwrap_or(item);
        let item = item.strip_prefix("pub(super) ").unwrap_or(item);
        let Some(tree) = item.strip_prefix("use ") else {
            continue;
        };
        let mut tree = tree.to_owned();
        while !tree.contains(';') {
            let Some(next) = lines.next() else { break };
            tree.push(' ');
            tree.push_str(next.trim());
        }
        let tree: String = tree[..tree.find(';').unwrap_or(tree.len())]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for path in expand(&tree) {
            found.extend(absolute(&path));
        }
    }
    // Paths in expressions and types: `crate::a::b`, `super::x`.
    for (start, _) in code.match_indices("crate::").chain(code.match_indices("super::")) {
        if code[..start]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let path: String = code[start..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        found.extend(absolute(path.trim_end_matches(':')));
    }
    found
}

/// The module a path refers to: its longest prefix that is a module.
fn target_module(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|candidate| modules.contains(candidate))
}

/// Every edge between modules of the crate under `src`, with an example of where it comes from.
fn edges_of(src: &Path) -> (BTreeSet<String>, Edges) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let parsed: Vec<(String, PathBuf, String)> = files
        .into_iter()
        .filter_map(|file| {
            let module = module_of(file.strip_prefix(src).unwrap())?;
            let code = code_of(&std::fs::read_to_string(&file).unwrap());
            Some((module, file, code))
        })
        .collect();
    let modules: BTreeSet<String> = parsed.iter().map(|(m, _, _)| m.clone()).collect();
    let mut edges = Edges::new();
    for (module, file, code) in &parsed {
        for path in paths_named(module, code) {
            if let Some(target) = target_module(&path, &modules)
                && &target != module
            {
                let shown = file.strip_prefix(src).unwrap().display().to_string();
                edges
                    .entry((module.clone(), target))
                    .or_insert_with(|| format!("{shown}: {path}"));
            }
        }
    }
    (modules, edges)
}

/// The edges between siblings that `a → b` amounts to: at the level of their closest common ancestor, the child
/// of it on the way to `a` uses the child on the way to `b`. An edge to one's own ancestor or descendant (a
/// submodule using its parent's items, a parent re-exporting a child) is not between siblings: `None`.
fn sibling_edge(a: &str, b: &str) -> Option<(String, String)> {
    let (pa, pb): (Vec<&str>, Vec<&str>) = (a.split("::").collect(), b.split("::").collect());
    let common = pa.iter().zip(&pb).take_while(|(x, y)| x == y).count();
    if common == pa.len() || common == pb.len() {
        return None;
    }
    Some((pa[..=common].join("::"), pb[..=common].join("::")))
}

/// Cycles among siblings, each as the list of modules on it.
fn cycles(edges: &Edges) -> Vec<Vec<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        if let Some((x, y)) = sibling_edge(a, b) {
            graph.entry(x).or_default().insert(y);
        }
    }
    // A depth-first search from every node; a back edge closes a cycle. Sets are small (tens of modules).
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        found: &mut BTreeSet<Vec<String>>,
    ) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            // One spelling per cycle: start at its smallest module.
            let min = cycle
                .iter()
                .enumerate()
                .min_by_key(|(_, n)| (*n).clone())
                .map(|(i, _)| i)
                .unwrap_or(0);
            cycle.rotate_left(min);
            found.insert(cycle);
            return;
        }
        if stack.len() > 64 {
            return;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, stack, found);
        }
        stack.pop();
    }
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut found);
    }
    found.into_iter().collect()
}

fn describe(cycle: &[String], edges: &Edges) -> String {
    let mut text = cycle.join(" → ");
    text.push_str(&format!(" → {}", cycle[0]));
    for (i, from) in cycle.iter().enumerate() {
        let to = &cycle[(i + 1) % cycle.len()];
        let example = edges
            .iter()
            .find(|((a, b), _)| sibling_edge(a, b).is_some_and(|(x, y)| &x == from && &y == to))
            .map_or("?", |(_, example)| example.as_str());
        text.push_str(&format!("\n    {from} uses {to}: {example}"));
    }
    text
}

/// The layers written in `ARCHITECTURE.md`, top first.
fn documented_layers() -> Vec<Vec<String>> {
    let block = ARCHITECTURE_MD
        .split("```")
        .find(|block| block.trim_start_matches("text").trim_start().starts_with(LAYERS_MARKER))
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no ```text block starting with {LAYERS_MARKER:?}"));
    block
        .lines()
        .skip_while(|line| !line.starts_with(LAYERS_MARKER))
        .skip(1)
        .map(|line| {
            line.split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|layer| !layer.is_empty())
        .collect()
}

#[test]
fn core_has_no_module_cycle_at_any_level() {
    let (_, edges) = edges_of(&src_dir());
    let cycles = cycles(&edges);
    let report: Vec<String> = cycles.iter().map(|c| describe(c, &edges)).collect();
    assert!(
        cycles.is_empty(),
        "module cycles in crates/core/src:\n{}",
        report.join("\n")
    );
}

#[test]
fn core_modules_only_use_the_layers_below_their_own() {
    let (modules, edges) = edges_of(&src_dir());
    let layers = documented_layers();
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, layer)| layer.iter().map(move |m| (m.as_str(), i)))
        .collect();
    let top_level: BTreeSet<&str> = modules.iter().map(|m| m.split("::").next().unwrap()).collect();
    let undocumented: Vec<&&str> = top_level.iter().filter(|m| !layer_of.contains_key(**m)).collect();
    assert!(
        undocumented.is_empty(),
        "modules missing from ARCHITECTURE.md's layers: {undocumented:?}"
    );
    let gone: Vec<&&str> = layer_of.keys().filter(|m| !top_level.contains(**m)).collect();
    assert!(
        gone.is_empty(),
        "ARCHITECTURE.md's layers name modules that do not exist: {gone:?}"
    );

    let mut violations = Vec::new();
    for ((from, to), example) in &edges {
        let (a, b) = (from.split("::").next().unwrap(), to.split("::").next().unwrap());
        if a != b && layer_of[a] >= layer_of[b] {
            violations.push(format!(
                "{a} (layer {}) uses {b} (layer {}): {example}",
                layer_of[a], layer_of[b]
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "uses that go sideways or up (layers are numbered from the top, 0 first):\n{}",
        violations.join("\n")
    );
}

/// The checker itself: a made-up crate with a cycle between two sibling submodules and one between two top-level
/// modules through a nested path, and nothing else.
#[test]
fn the_checker_finds_a_cycle_that_is_introduced() {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n");
    write(
        "a/mod.rs",
        "pub mod x;\npub mod y;\npub use self::x::X;\nuse crate::b::{self, deep::{D}};\n",
    );
    write("a/x.rs", "use super::y::Y; // y uses x too\npub struct X;\n");
    write("a/y.rs", "pub struct Y(super::x::X);\n");
    write("b/mod.rs", "pub mod deep;\n");
    write("b/deep.rs", "pub struct D;\nfn f() -> crate::a::X { todo() }\n");
    write(
        "c.rs",
        "// use crate::a::X; is only a comment\n#[cfg(test)]\nmod tests {\n    use crate::a::X;\n}\n",
    );
    let (modules, edges) = edges_of(dir.path());
    assert_eq!(
        modules.iter().map(String::as_str).collect::<Vec<_>>(),
        ["a", "a::x", "a::y", "b", "b::deep", "c"]
    );
    assert!(
        !edges.keys().any(|(from, _)| from == "c"),
        "comments and tests are not code: {edges:?}"
    );
    let found = cycles(&edges);
    assert_eq!(
        found,
        [
            vec!["a".to_owned(), "b".to_owned()],
            vec!["a::x".to_owned(), "a::y".to_owned()]
        ],
        "{edges:?}"
    );
    assert!(
        describe(&found[0], &edges).contains("b/deep.rs: a::X"),
        "{}",
        describe(&found[0], &edges)
    );
}

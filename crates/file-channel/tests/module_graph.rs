//! The engine's modules import each other without a circle.
//!
//! Reads `src/**/*.rs`, maps every file to its top-level module (`src/replay/scan.rs` and
//! `src/replay/mod.rs` both belong to `replay`), collects the `crate::…` paths each one uses
//! (names re-exported at the crate root, like `crate::Event`, count as the module they come
//! from) and asserts that the graph of module → module edges is acyclic, printing a cycle
//! when it is not. A circle means two modules cannot be read, changed or tested apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn the_engine_modules_import_each_other_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(
        graph.len() > 5,
        "found too few modules to be reading the right tree: {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the engine's modules import each other in a circle: {}\nthe whole graph: {graph:#?}",
            cycle.join(" -> ")
        );
    }
}

/// The checker itself must be able to fail: a planted circle is found and printed in order.
#[test]
fn the_cycle_finder_finds_a_planted_circle() {
    fn edge(graph: &mut Graph, a: &str, b: &str) {
        graph.entry(a.into()).or_default().insert(b.into());
        graph.entry(b.into()).or_default();
    }
    let mut graph = Graph::new();
    edge(&mut graph, "channel", "writer");
    edge(&mut graph, "writer", "queue");
    edge(&mut graph, "queue", "format");
    assert_eq!(find_cycle(&graph), None);
    edge(&mut graph, "queue", "channel");
    assert_eq!(
        find_cycle(&graph),
        Some(vec![
            "channel".to_string(),
            "writer".into(),
            "queue".into(),
            "channel".into()
        ])
    );
}

/// The top-level modules declared in `lib.rs` and, for each, the modules its files use.
fn module_graph(src: &Path) -> Graph {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read lib.rs");
    let modules = declared_modules(&lib);
    let reexports = root_reexports(&lib, &modules);
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).expect("under src");
        let Some(first) = rel.components().next() else {
            continue;
        };
        let owner = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if !modules.contains(&owner) {
            continue; // lib.rs itself
        }
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for name in crate_paths(&strip_comments(&text)) {
            let target = if modules.contains(&name) {
                Some(name)
            } else {
                reexports.get(&name).cloned()
            };
            if let Some(target) = target.filter(|t| *t != owner) {
                graph.entry(owner.clone()).or_default().insert(target);
            }
        }
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// `mod x;` and `pub mod x;` (any visibility) in `lib.rs`.
fn declared_modules(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .map(str::trim)
        .filter_map(|l| {
            let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect()
}

/// Names `lib.rs` re-exports (`pub use channel::{FileChannel, OpenReport};`), with the module
/// each comes from.
fn root_reexports(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let code = strip_comments(lib);
    for stmt in code.split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest: String = rest.split_whitespace().collect();
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        if !modules.contains(module) {
            continue;
        }
        let names = names.trim_start_matches('{').trim_end_matches('}');
        for name in names.split(',').filter(|n| !n.is_empty()) {
            let last = name.rsplit("::").next().unwrap_or(name);
            let exported = last.rsplit(" as ").next().unwrap_or(last).to_string();
            out.insert(exported, module.to_string());
        }
    }
    out
}

/// Removes `//` comments (doc comments mention paths that are no imports).
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first segment after every `crate::` (each item of a `crate::{a, b::c}` group).
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `$crate::` or a longer identifier
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                    _ => {}
                }
                if depth == 1 && c != ',' {
                    item.push(c);
                }
            }
            items.push(item);
            for it in items {
                let name = leading_ident(it.trim());
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name = leading_ident(rest);
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

fn leading_ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// A cycle as the list of modules along it (first repeated at the end), if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unseen,
        OnPath,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        graph: &'a Graph,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        marks.insert(node, Mark::OnPath);
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next.as_str()).copied().unwrap_or(Mark::Unseen) {
                Mark::OnPath => {
                    let from = path.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        path[from..].iter().map(|s| s.to_string()).collect();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::Unseen => {
                    if let Some(c) = visit(next, graph, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if marks.get(node.as_str()).copied().unwrap_or(Mark::Unseen) == Mark::Unseen {
            let mut path = Vec::new();
            if let Some(c) = visit(node, graph, &mut marks, &mut path) {
                return Some(c);
            }
        }
    }
    None
}

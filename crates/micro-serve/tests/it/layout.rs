//! The crate's layout: its modules import each other without a cycle (each seam is crossed one
//! way), modules name what they use by module path (a root re-export would hide an edge), and
//! the experts' rewards are computed in one place, the scoring path (`score.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module of `src/` (a folder is one module; `lib.rs` and `bench/` are not modules of
/// the server) with the source text of its files.
fn modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap().map(Result::unwrap) {
        let path = entry.path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "bench" {
            continue;
        }
        let text = match path.is_dir() {
            true => std::fs::read_dir(&path)
                .unwrap()
                .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
                .collect::<Vec<_>>()
                .join("\n"),
            false => std::fs::read_to_string(&path).unwrap(),
        };
        out.insert(name, text);
    }
    out
}

/// The modules named as `crate::NAME` in `text`.
fn uses(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .map(|(i, _)| {
            text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| name.starts_with(|c: char| c.is_ascii_lowercase()))
        .collect()
}

/// A cycle in `graph`, as the path that closes it, if any (depth-first search).
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut c = path[at..].to_vec();
            c.push(node.to_owned());
            return Some(c);
        }
        if !done.insert(node.to_owned()) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_modules_import_each_other_without_a_cycle() {
    let modules = modules();
    let graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|(name, text)| {
            let mut to = uses(text);
            to.remove(name);
            (name.clone(), to)
        })
        .collect();
    assert!(graph.contains_key("score") && graph["handlers"].contains("score"));
    assert_eq!(cycle(&graph), None, "import graph: {graph:#?}");
}

#[test]
fn modules_name_what_they_use_by_module_path() {
    for (name, text) in modules() {
        let hidden: Vec<&str> = text
            .match_indices("crate::")
            .map(|(i, _)| &text[i..(i + 20).min(text.len())])
            .filter(|s| s[7..].starts_with(|c: char| c.is_ascii_uppercase()))
            .collect();
        assert!(hidden.is_empty(), "{name} uses root re-exports: {hidden:?}");
    }
}

#[test]
fn only_the_scoring_path_computes_the_experts_rewards() {
    let callers: Vec<String> = modules()
        .into_iter()
        .filter(|(_, text)| text.contains(".head_rewards("))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(callers, ["score"]);
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let edge = |a: &str, b: &str| (a.to_owned(), BTreeSet::from([b.to_owned()]));
    let g = BTreeMap::from([edge("a", "b"), edge("b", "c"), edge("c", "a")]);
    assert_eq!(cycle(&g).map(|c| c.len()), Some(4));
    let g = BTreeMap::from([edge("a", "b"), edge("b", "c")]);
    assert_eq!(cycle(&g), None);
}

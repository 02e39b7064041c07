//! The layout a newcomer reads: `src/`'s top-level modules import each other in one
//! direction only (no cycles, directly or through others), nothing below the app-assembly
//! module (`app`) imports it or the CLI, and no source file grows past the size one person
//! can hold in mind unless it says at its top why it is one cohesive thing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest a file under `src/` may be unless it declares itself one cohesive thing.
const MAX_FILE_LINES: usize = 600;
/// What a long file's `//!` header says to be allowed past [`MAX_FILE_LINES`].
const COHESIVE_MARKER: &str = "one cohesive";

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`None` for lib.rs and main.rs).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// Every top-level module a file's code names as `crate::<module>` (in `use` lines,
/// grouped imports and paths alike); test modules count too.
fn referenced_modules(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for piece in code.split("crate::").skip(1) {
        if let Some(group) = piece.strip_prefix('{') {
            // `use crate::{a, b::c}`: every name at depth one of the group.
            let mut depth = 0;
            let mut name = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(std::mem::take(&mut name).trim().to_string());
                    }
                    _ if depth == 0 => name.push(c),
                    _ => {}
                }
            }
            found.insert(name.trim().to_string());
            continue;
        }
        let name: String = piece
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        found.insert(name);
    }
    found
        .into_iter()
        .map(|n| n.split("::").next().unwrap_or_default().trim().to_string())
        .filter(|n| modules.contains(n))
        .collect()
}

fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = common::repo_path("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(&src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = top_module(&src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let edges = graph.entry(module.clone()).or_default();
        for target in referenced_modules(&text, &modules) {
            if target != module {
                edges.insert(target);
            }
        }
    }
    graph
}

/// A cycle through `start`, if there is one, as the path that closes it.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn top_level_modules_import_each_other_in_one_direction_only() {
    let graph = import_graph();
    assert!(graph.len() >= 10, "modules found: {:?}", graph.keys());
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module) {
            panic!("import cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn nothing_below_the_app_imports_it_or_the_cli() {
    let graph = import_graph();
    for (module, imports) in &graph {
        if module == "cli" {
            continue;
        }
        assert!(
            !imports.contains("cli"),
            "`{module}` imports the CLI: move what it needs below both"
        );
        if module != "app" {
            assert!(
                !imports.contains("app"),
                "`{module}` imports `app`: only the CLI may; pass it what the app built"
            );
        }
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    // The check above would pass on a graph it cannot read: prove it can fail.
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    graph.entry("c".into()).or_default().insert("a".into());
    assert_eq!(cycle_from(&graph, "a").unwrap(), ["a", "b", "c", "a"]);
    let modules: BTreeSet<String> = ["spec", "warehouse", "render"].map(String::from).into();
    assert_eq!(
        referenced_modules(
            "use crate::{spec::Period, warehouse};\nlet x = crate::render::x();",
            &modules
        ),
        modules
    );
}

#[test]
fn source_files_stay_small_enough_to_read_unless_one_cohesive_thing() {
    let src = common::repo_path("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut too_long = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines = text.lines().count();
        let header: String = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join(" ");
        if lines > MAX_FILE_LINES && !header.to_lowercase().contains(COHESIVE_MARKER) {
            too_long.push(format!("{} ({lines} lines)", file.display()));
        }
    }
    assert!(
        too_long.is_empty(),
        "split these, or say at their top why each is {COHESIVE_MARKER} thing: {too_long:?}"
    );
}

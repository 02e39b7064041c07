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

/// The code of a Rust file without comments and without the contents of string and
/// character literals, so neither braces nor paths in them are read as code.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('#') | Some('"'))
            && !chars[..i]
                .last()
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string: r"…", r#"…"#, …
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            i += 2 + hashes;
            while i < chars.len() {
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|&h| h == '#') {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && next == Some('\\') {
            // An escaped character literal: '\n', '\'', '\u{…}'.
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Reads a path tree at `chars[*i..]` (`a::b`, `a::{b, c::{d, e}}`, `a::*`, with
/// `as` renames) into every full path it names.
fn path_tree(chars: &[char], i: &mut usize) -> Vec<Vec<String>> {
    let skip_space = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    let mut prefix = Vec::new();
    loop {
        skip_space(i);
        if chars.get(*i) == Some(&'{') {
            *i += 1;
            let mut all = Vec::new();
            loop {
                skip_space(i);
                match chars.get(*i) {
                    None => return all,
                    Some('}') => {
                        *i += 1;
                        return all;
                    }
                    Some(',') => *i += 1,
                    _ => {
                        let before = *i;
                        for tail in path_tree(chars, i) {
                            all.push([prefix.clone(), tail].concat());
                        }
                        if *i == before {
                            *i += 1;
                        }
                    }
                }
            }
        }
        let start = *i;
        if chars.get(*i) == Some(&'*') {
            *i += 1;
        } else {
            while *i < chars.len() && is_ident(chars[*i]) {
                *i += 1;
            }
        }
        if *i == start {
            return vec![prefix];
        }
        prefix.push(chars[start..*i].iter().collect());
        let after = *i;
        skip_space(i);
        if chars.get(*i) == Some(&':') && chars.get(*i + 1) == Some(&':') {
            *i += 2;
        } else {
            // `name as alias`: the alias is not a path.
            let alias = chars.get(*i..*i + 3) == Some(&['a', 's', ' '][..]);
            *i = after;
            if alias {
                *i = after;
                skip_space(i);
                *i += 2;
                skip_space(i);
                while *i < chars.len() && is_ident(chars[*i]) {
                    *i += 1;
                }
            }
            return vec![prefix];
        }
    }
}

/// The module path (from the crate root) of a file under `src/`: `render/chart.rs` is
/// `["render", "chart"]`, `render/mod.rs` `["render"]`, `lib.rs` `[]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut path: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(path.last().map(String::as_str), Some("mod" | "lib")) {
        path.pop();
    }
    path
}

/// Every item path a file's code names through `crate::`, `super::` or `self::` (in
/// `use` lines, grouped imports and paths alike; test modules count too), resolved to
/// a path from the crate root. `module` is the file's own module path; `super` inside
/// an inline `mod x { … }` is resolved from that inline module.
fn resolved_paths(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let chars: Vec<char> = code_only(text).chars().collect();
    let mut found = Vec::new();
    let mut depth = 0usize;
    // Inline modules open around the current position: (name, brace depth inside it).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut pending_mod: Option<String> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            depth += 1;
            if let Some(name) = pending_mod.take() {
                inline.push((name, depth));
            }
            i += 1;
            continue;
        }
        if c == '}' {
            if inline.last().is_some_and(|(_, d)| *d == depth) {
                inline.pop();
            }
            depth = depth.saturating_sub(1);
            i += 1;
            continue;
        }
        if c == ';' {
            pending_mod = None;
        }
        if !is_ident(c) || (i > 0 && is_ident(chars[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let after_colons = i > start + 1 && start >= 2 && chars[start - 2..start] == [':', ':'];
        if word == "mod" {
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let name_start = j;
            while j < chars.len() && is_ident(chars[j]) {
                j += 1;
            }
            pending_mod = Some(chars[name_start..j].iter().collect());
            i = j;
            continue;
        }
        if !matches!(word.as_str(), "crate" | "super" | "self") || after_colons {
            continue;
        }
        let mut cursor = start;
        for path in path_tree(&chars, &mut cursor) {
            let mut here: Vec<String> = module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(n, _)| n.clone()))
                .collect();
            let mut rest = path.into_iter().peekable();
            match rest.peek().map(String::as_str) {
                Some("crate") => {
                    here.clear();
                    rest.next();
                }
                Some("self") => {
                    rest.next();
                }
                _ => {}
            }
            while rest.peek().map(String::as_str) == Some("super") {
                here.pop();
                rest.next();
            }
            found.push(here.into_iter().chain(rest).collect());
        }
        i = cursor.max(i);
    }
    found
}

/// The names a folder's `mod.rs` (or `lib.rs`) re-exports from its children:
/// `pub use chart::{Card, render_png}` maps `Card` and `render_png` to `chart`.
fn reexports(text: &str) -> BTreeMap<String, String> {
    let chars: Vec<char> = code_only(text).chars().collect();
    let code: String = chars.iter().collect();
    let mut map = BTreeMap::new();
    for (at, _) in code.match_indices("pub use ") {
        let mut cursor = at + "pub use ".len();
        for path in path_tree(&chars, &mut cursor) {
            if let (Some(child), Some(name)) = (path.first(), path.last()) {
                map.insert(name.clone(), child.clone());
            }
        }
    }
    map
}

/// The import graph between the sibling modules of every folder under `src/` (the
/// crate root is the folder `""`): for each folder, which child (a file, or a folder
/// with everything in it) names which other child, directly or through a name the
/// folder's `mod.rs` re-exports. The folder's own `mod.rs` is not a child.
fn folder_graphs() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let src = common::repo_path("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.retain(|f| f.file_name().is_some_and(|n| n != "main.rs"));
    let modules: BTreeMap<&PathBuf, Vec<String>> =
        files.iter().map(|f| (f, module_of(&src, f))).collect();
    let is_folder_root = |f: &Path| {
        f.file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
    };
    // Each folder's children and re-exports, keyed by the folder's module path.
    let mut children: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    let mut reexported: BTreeMap<Vec<String>, BTreeMap<String, String>> = BTreeMap::new();
    for (file, module) in &modules {
        if is_folder_root(file) {
            reexported.insert(
                module.clone(),
                reexports(&std::fs::read_to_string(file).unwrap()),
            );
        }
        if let Some((child, parent)) = module.split_last() {
            children
                .entry(parent.to_vec())
                .or_default()
                .insert(child.clone());
        }
    }
    let mut graphs: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (file, module) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        let paths = resolved_paths(&text, module);
        // Every folder this file sits in below a child, from the crate root down.
        for level in 0..module.len() {
            let folder = &module[..level];
            let own = &module[level];
            let siblings = children.get(folder).cloned().unwrap_or_default();
            let edges = graphs
                .entry(folder.join("/"))
                .or_default()
                .entry(own.clone())
                .or_default();
            for path in &paths {
                if path.len() <= level || path[..level] != *folder {
                    continue;
                }
                let name = &path[level];
                let target = if siblings.contains(name) {
                    Some(name.clone())
                } else {
                    reexported.get(folder).and_then(|r| r.get(name)).cloned()
                };
                if let Some(target) = target.filter(|t| t != own) {
                    edges.insert(target);
                }
            }
        }
    }
    graphs
}

/// Which top-level module imports which (the crate root's folder graph).
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    folder_graphs().remove("").unwrap_or_default()
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

/// Circles between sibling files known today, each as its folder and the files on it
/// (a strongly connected set), to be removed, not added to: the check fails on any other
/// circle, and on an entry here that no longer is one, so the list only shrinks.
const KNOWN_FOLDER_CYCLES: &[(&str, &[&str])] = &[];

/// The files that are on a circle with another, as sets (strongly connected components
/// of more than one file).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<BTreeSet<String>> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(node) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|n| (n, reach(n))).collect();
    reached
        .iter()
        .filter(|(n, r)| r.contains(**n))
        .map(|(n, r)| {
            r.iter()
                .filter(|m| reached.get(m).is_some_and(|back| back.contains(*n)))
                .cloned()
                .collect()
        })
        .collect()
}

#[test]
fn sibling_files_in_every_folder_import_each_other_in_one_direction_only() {
    let graphs = folder_graphs();
    assert!(
        ["render", "spec", "warehouse", "adhoc"]
            .iter()
            .all(|f| graphs.get(*f).is_some_and(|g| g.len() >= 3)),
        "folders found: {:?}",
        graphs.keys()
    );
    let known: BTreeSet<(String, BTreeSet<String>)> = KNOWN_FOLDER_CYCLES
        .iter()
        .map(|(f, files)| (f.to_string(), files.iter().map(|s| s.to_string()).collect()))
        .collect();
    let mut found = BTreeSet::new();
    let mut new = Vec::new();
    for (folder, graph) in &graphs {
        if folder.is_empty() {
            continue; // the top level has its own test above
        }
        for circle in circles(graph) {
            let example = cycle_from(graph, circle.first().unwrap()).unwrap();
            let entry = (folder.clone(), circle);
            if !known.contains(&entry) {
                new.push(format!("src/{folder}: {}", example.join(" → ")));
            }
            found.insert(entry);
        }
    }
    assert!(
        new.is_empty(),
        "sibling files import each other in a circle; give what they share one home so \
         imports between them point one way:\n{}",
        new.join("\n")
    );
    let gone: Vec<_> = known.difference(&found).collect();
    assert!(
        gone.is_empty(),
        "no longer a circle, remove from KNOWN_FOLDER_CYCLES: {gone:?}"
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    // The checks above would pass on a graph they cannot read: prove they can fail.
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    graph.entry("c".into()).or_default().insert("a".into());
    assert_eq!(cycle_from(&graph, "a").unwrap(), ["a", "b", "c", "a"]);
    graph.entry("c".into()).or_default().insert("d".into());
    graph.entry("d".into()).or_default().insert("e".into());
    graph.entry("e".into()).or_default().insert("d".into());
    let sets: Vec<Vec<String>> = circles(&graph)
        .into_iter()
        .map(|c| c.into_iter().collect())
        .collect();
    assert_eq!(sets, [vec!["a", "b", "c"], vec!["d", "e"]]);
}

#[test]
fn the_path_reader_resolves_crate_super_and_groups_but_not_comments_or_strings() {
    let module = ["render".to_string(), "chart".to_string()];
    let text = r##"
use crate::{spec::Period, warehouse};
use super::{format::{cell_text, NumberStyle as Style}, message};
// use super::native::x;
/* use super::actions::y; */
let x = crate::render::panels::draw();
let s = "super::report::z {";
let r = r#"super::report::w"#;
let c = '{';
mod tests {
    use super::*;
    use super::super::data::Series;
}
let after = self::local;
"##;
    let paths: BTreeSet<String> = resolved_paths(text, &module)
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    let expected: BTreeSet<String> = [
        "spec::Period",
        "warehouse",
        "render::format::cell_text",
        "render::format::NumberStyle",
        "render::message",
        "render::panels::draw",
        "render::chart::*",
        "render::data::Series",
        "render::chart::local",
    ]
    .map(String::from)
    .into();
    assert_eq!(paths, expected);
    let re =
        reexports("pub mod chart;\npub use chart::{Card, render_png};\npub use data::ChartData;");
    assert_eq!(re.get("render_png").map(String::as_str), Some("chart"));
    assert_eq!(re.get("ChartData").map(String::as_str), Some("data"));
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

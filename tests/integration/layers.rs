//! The layers of `src/` (see `src/lib.rs`): every `crate::` path in a module
//! names a module of a lower layer, or a module below its own; and the
//! modules one level down (`model::plan`, `pg::apply`, ...) import each other
//! without a cycle. Reads the source, so it needs no database.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module's layer: a module may import only lower layers.
const LAYERS: &[(&str, u8)] = &[
    ("logging", 0),
    ("signals", 0),
    ("say", 0), // the logging macro, exported at the crate root
    ("model", 1),
    ("pg", 2),
    ("aws", 2),
    ("http", 2),
    ("env_file", 2),
    ("input_file", 0),
    ("tunnel", 3),
    ("credentials", 3),
    ("cli", 4),
    ("commands", 5),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/pg/apply.rs` is `["pg", "apply"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The code of a file without comments (a doc link is not an import) and
/// without its unit tests (at the end of the file: they may use anything).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths a file names through `crate::` (`crate::{a::b, c}`
/// included), or through `super::` from `module`, as paths from the crate root.
fn imports(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent(module))] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let after = &rest[at + prefix.len()..];
            let before = rest[..at].chars().last();
            rest = after;
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue; // `super::super::`, `x_crate::`
            }
            for path in paths_after(after) {
                found.push(base.iter().cloned().chain(path).collect());
            }
        }
    }
    found.retain(|path: &Vec<String>| !path.is_empty());
    found
}

/// The module `super::` means in a file of `module` (`["pg", "apply"]`: `["pg"]`).
fn parent(module: &[String]) -> Vec<String> {
    module[..module.len().saturating_sub(1)].to_vec()
}

/// The module paths of one `use` or path after its `crate::`/`super::`.
fn paths_after(after: &str) -> Vec<Vec<String>> {
    let paths: Vec<&str> = match after.strip_prefix('{') {
        Some(group) => group[..group.find('}').unwrap_or(group.len())]
            .split(',')
            .collect(),
        None => vec![after],
    };
    // the leading lower-case segments: modules, not items
    paths
        .iter()
        .map(|path| {
            let path = path.trim();
            let end = path
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(path.len());
            path[..end]
                .split("::")
                .take_while(|s| s.starts_with(|c: char| c.is_ascii_lowercase()))
                .map(String::from)
                .collect()
        })
        .collect()
}

#[test]
fn imports_point_down_and_have_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut upward = Vec::new();
    // module one level down (`pg::apply`) -> the ones it names
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        let Some(top) = module.first() else { continue };
        if top == "lib" || top == "main" {
            continue; // the crate root dispatches to every layer
        }
        let own = layer(top).unwrap_or_else(|| panic!("{top} has no layer in LAYERS"));
        let text = std::fs::read_to_string(file).unwrap();
        let me = module
            .iter()
            .take(2)
            .cloned()
            .collect::<Vec<_>>()
            .join("::");
        for path in imports(&code(&text), &module) {
            let target = &path[0];
            if target == top {
                let other = path.iter().take(2).cloned().collect::<Vec<_>>().join("::");
                if path.len() > 1 && other != me && !me.starts_with(&format!("{other}::")) {
                    graph.entry(me.clone()).or_default().insert(other);
                }
                continue;
            }
            match layer(target) {
                Some(theirs) if theirs < own => {}
                _ => upward.push(format!("{}: crate::{}", file.display(), path.join("::"))),
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "imports from a module to one of its own layer or above:\n{}",
        upward.join("\n")
    );
    // A cycle shows as a module reachable from itself.
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = graph[start].iter().collect();
        while let Some(next) = stack.pop() {
            assert!(next != start, "import cycle through {start}");
            if seen.insert(next) {
                stack.extend(graph.get(next).into_iter().flatten());
            }
        }
    }
    assert!(graph.contains_key("model::plan"), "the graph was read");
}

#[test]
fn the_checker_sees_a_wrong_import() {
    let code = code(
        "use crate::{pg::Db, model::plan};\n// crate::commands in a comment\n\
         use super::sql;\nlet x = crate::cli::Cli;\n#[cfg(test)]\nmod tests { use crate::commands; }",
    );
    let module = ["model".to_string(), "policy".to_string()];
    let names = |paths: &[&str]| -> Vec<Vec<String>> {
        paths
            .iter()
            .map(|p| p.split("::").map(String::from).collect())
            .collect()
    };
    assert_eq!(
        imports(&code, &module),
        names(&["pg", "model::plan", "cli", "model::sql"])
    );
}

//! The layers of `src/` (see `src/lib.rs`): every `crate::` path in a module
//! names a module of a lower layer, or a module below its own; and the
//! modules one level down (`model::plan`, `cutover::apply`, ...) import each
//! other without a cycle. Reads every line of the source outside test code
//! (`#[cfg(test)]` items and the files they declare), with comments and
//! string literals blanked, so it needs no database.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module's layer: a module may import only lower layers.
const LAYERS: &[(&str, u8)] = &[
    ("logging", 0),
    ("signals", 0),
    ("say", 0), // the logging macro, exported at the crate root
    ("input_file", 0),
    ("model", 1),
    ("pg", 2),
    ("aws", 2),
    ("http", 2),
    ("env_file", 2),
    ("inspect", 3),
    ("sandbox", 3),
    ("logs", 3),
    ("tunnel", 3),
    ("credentials", 3),
    ("probes", 4),
    ("cutover", 4),
    ("cli", 5),
    ("commands", 6),
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

/// The module path of a file: `src/cutover/apply.rs` is `["cutover", "apply"]`.
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

/// The text with comments removed and string and character literals emptied
/// (`"crate::x"` in a message is no import, a `{` in one no brace), lines kept.
fn blanked(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(at(i + 1), '"' | '#') {
            // a raw string: r"…", r#"…"#
            let mut j = i + 1;
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            if at(j) != '"' {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            let closing: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let rest: String = chars[j..].iter().collect();
            let end = rest
                .find(&closing)
                .map_or(rest.len(), |e| e + closing.len());
            out.push_str("\"\"");
            out.extend(rest[..end].chars().filter(|&ch| ch == '\n'));
            i = j + rest[..end].chars().count();
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if at(i) == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\''
            && (at(i + 2) == '\''
                || (at(i + 1) == '\\' && chars[i..].iter().take(12).skip(2).any(|&ch| ch == '\'')))
        {
            // a character literal ('{', '\n', '\u{7b}'); a lifetime has no closing quote
            let close = chars[i + 2..].iter().position(|&ch| ch == '\'').unwrap() + i + 2;
            out.push_str("' '");
            i = close + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The code of a file outside its test items: each `#[cfg(test)]` item (a
/// `mod tests { … }`, a helper, a `use`) is dropped to its end, wherever it
/// is in the file. Also the names of test-only files it declares
/// (`#[cfg(test)] mod rule_tests;`).
fn code(text: &str) -> (String, Vec<String>) {
    let text = blanked(text);
    let mut out = String::with_capacity(text.len());
    let mut test_files = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at + "#[cfg(test)]".len()..];
        // The item ends at its first `;` before any `{`, or at the `}`
        // that closes its first `{`.
        let semicolon = item.find(';');
        let brace = item.find('{');
        let end = match (semicolon, brace) {
            (Some(s), b) if b.is_none_or(|b| s < b) => {
                let declared = item[..s].trim();
                if let Some(name) = declared.strip_prefix("mod ") {
                    test_files.push(name.trim().to_string());
                }
                s + 1
            }
            (_, Some(b)) => {
                let mut depth = 0;
                let mut end = item.len();
                for (i, ch) in item[b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            _ => item.len(),
        };
        out.extend(item[..end].chars().filter(|&c| c == '\n'));
        rest = &item[end..];
    }
    out.push_str(rest);
    (out, test_files)
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

/// The module `super::` means in a file of `module` (`["pg", "tls"]`: `["pg"]`).
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

/// What is wrong with the layers of the source tree at `src`: each import
/// that points to its own layer or above, and each cycle between modules one
/// level down. Also the graph, to show it was read.
fn problems(src: &Path) -> (Vec<String>, BTreeMap<String, BTreeSet<String>>) {
    let mut files = Vec::new();
    sources(src, &mut files);
    files.sort();
    let mut test_only: BTreeSet<PathBuf> = BTreeSet::new();
    let mut found = Vec::new();
    // module one level down (`cutover::apply`) -> the ones it names
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut read = Vec::new();
    for file in &files {
        let (code, tests) = code(&std::fs::read_to_string(file).unwrap());
        let dir = match file.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs" | "lib.rs" | "main.rs") => file.parent().unwrap().to_path_buf(),
            _ => file.with_extension(""),
        };
        for name in tests {
            test_only.insert(dir.join(format!("{name}.rs")));
            test_only.insert(dir.join(&name).join("mod.rs"));
        }
        read.push((file, code));
    }
    for (file, code) in read {
        if test_only.contains(file) {
            continue;
        }
        let module = module_of(src, file);
        let Some(top) = module.first() else { continue };
        if top == "lib" || top == "main" {
            continue; // the crate root dispatches to every layer
        }
        let Some(own) = layer(top) else {
            found.push(format!("{top} has no layer in LAYERS"));
            continue;
        };
        let me = module
            .iter()
            .take(2)
            .cloned()
            .collect::<Vec<_>>()
            .join("::");
        for path in imports(&code, &module) {
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
                _ => found.push(format!(
                    "{}: crate::{} points to its own layer or above",
                    file.display(),
                    path.join("::")
                )),
            }
        }
    }
    // A cycle shows as a module reachable from itself.
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = graph[start].iter().collect();
        while let Some(next) = stack.pop() {
            if next == start {
                found.push(format!("import cycle through {start}"));
                break;
            }
            if seen.insert(next) {
                stack.extend(graph.get(next).into_iter().flatten());
            }
        }
    }
    found.sort();
    found.dedup();
    (found, graph)
}

#[test]
fn imports_point_down_and_have_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (found, graph) = problems(&src);
    assert!(found.is_empty(), "{}", found.join("\n"));
    // The whole of a file is read: model::checks names model::sql far below
    // its first `#[cfg(test)]`.
    assert!(graph.contains_key("model::plan"), "the graph was read");
    assert!(
        graph["model::checks"].contains("model::snapshot"),
        "{:?}",
        graph["model::checks"]
    );
}

/// Writes a source tree of `files` (path, text) and returns what is wrong with it.
fn planted(files: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    problems(dir.path()).0
}

#[test]
fn a_planted_cycle_or_upward_import_fails_wherever_it_is_in_the_file() {
    let model = "pub mod checks;\npub mod exceptions;\n";
    // A cycle, its second half below a first `#[cfg(test)]` item.
    let cycle = planted(&[
        ("model/mod.rs", model),
        ("model/checks.rs", "use crate::model::exceptions::Exception;\n"),
        (
            "model/exceptions.rs",
            "#[cfg(test)]\nconst X: u8 = 1;\n\nfn f() { let s = \"}\"; }\nuse crate::model::checks::Finding;\n",
        ),
    ]);
    assert_eq!(
        cycle,
        [
            "import cycle through model::checks",
            "import cycle through model::exceptions"
        ]
    );
    // An upward import after a test module and a brace in a string.
    let upward = planted(&[
        ("model/mod.rs", model),
        ("model/checks.rs", "#[cfg(test)]\nmod tests { fn t() { let _ = '{'; } }\nfn g() { let _ = \"{\"; }\nuse crate::pg::Db;\n"),
        ("model/exceptions.rs", ""),
        ("pg/mod.rs", "use crate::model::checks;\n"),
    ]);
    assert_eq!(upward.len(), 1, "{upward:?}");
    assert!(
        upward[0].contains("crate::pg points to its own layer or above"),
        "{upward:?}"
    );
    // What tests use is not an import: a test module, a test-only file, a
    // string, a comment.
    let clean = planted(&[
        ("model/mod.rs", "pub mod checks;\n#[cfg(test)]\nmod rule_tests;\n"),
        ("model/checks.rs", "// crate::commands\nfn f() -> &'static str { \"crate::cli\" }\n#[cfg(test)]\nmod tests { use crate::pg::Db; }\n"),
        ("model/rule_tests.rs", "use crate::commands::Verdict;\n"),
    ]);
    assert_eq!(clean, Vec::<String>::new());
}

#[test]
fn the_checker_sees_a_wrong_import() {
    let (code, _) = code(
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

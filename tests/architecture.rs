//! ARCHITECTURE.md kept true, as tests/man.rs keeps the man pages true: its code map names
//! every module of `src/` and nothing else, the folders are layers whose imports only go
//! down, no two modules import each other (through any path), and the state machines it
//! marks (in bold) import no module that does I/O.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first: a module may import its own folder and the layers below.
/// The leaf modules at the root are layer 0; `mqtt` and `room` share layer 1 and must not
/// import each other.
const LAYERS: [(&str, u8); 10] = [
    ("error", 0),
    ("escape", 0),
    ("defaults", 0),
    ("tool", 0),
    ("signals", 0),
    ("mqtt", 1),
    ("room", 1),
    ("cli", 2),
    ("tools", 3),
    ("broker", 3),
];

/// Modules that do I/O (sockets, stdin, stdout, signals, the resolver, stderr): no state
/// machine may import them.
const DOES_IO: [&str; 9] = [
    "mqtt::link",
    "mqtt::transport",
    "mqtt::resolve",
    "mqtt::connect",
    "mqtt::coalesce",
    "tools::output",
    "tools::publish::input",
    "signals",
    "tool",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every module file of the library, as its path below `src/` without `.rs` (`mod.rs` as
/// its folder): `mqtt/dial`, `tools/publish`, …
fn modules() -> BTreeSet<String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("read src/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, base, out);
                continue;
            }
            let rel = path.strip_prefix(base).expect("below src/");
            let rel = rel.to_string_lossy().replace('\\', "/");
            let Some(module) = rel.strip_suffix(".rs") else {
                continue;
            };
            if module == "lib" || module.starts_with("bin/") {
                continue;
            }
            out.insert(module.strip_suffix("/mod").unwrap_or(module).to_string());
        }
    }
    let src = root().join("src");
    let mut out = BTreeSet::new();
    walk(&src, &src, &mut out);
    out
}

/// The rows of ARCHITECTURE.md's code map: (the modules of the first cell, whether the
/// row marks a state machine: a description that starts in bold).
fn code_map() -> Vec<(Vec<String>, bool)> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let start = text.find("\n## Code map").expect("a Code map section");
    let section = &text[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |e| e + 3);
    let mut rows = Vec::new();
    for line in section[..end].lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let names = cells[1]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        rows.push((names, cells[2].starts_with("**")));
    }
    rows
}

#[test]
fn the_code_map_names_every_module_and_nothing_else() {
    let in_src = modules();
    let in_map: BTreeSet<String> = code_map().into_iter().flat_map(|(m, _)| m).collect();
    let missing: Vec<&String> = in_src.difference(&in_map).collect();
    let stale: Vec<&String> = in_map.difference(&in_src).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "ARCHITECTURE.md's code map and src/ disagree.\n\
         modules of src/ not in the map: {missing:?}\n\
         modules in the map not in src/: {stale:?}"
    );
}

/// `crate::a::b` paths in the code of a module (comments aside), as `a::b`.
fn imports(module: &str) -> BTreeSet<String> {
    let path = root().join("src").join(format!("{module}.rs"));
    let path = match path.exists() {
        true => path,
        false => root().join("src").join(module).join("mod.rs"),
    };
    let text = std::fs::read_to_string(&path).expect("module source");
    let mut out = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (i, _) in line.match_indices("crate::") {
            let rest = &line[i + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            out.insert(rest[..end].trim_end_matches(':').to_string());
        }
    }
    out
}

fn layer(module_path: &str) -> (&str, u8) {
    let top = module_path.split(['/', ':']).next().unwrap_or_default();
    let rank = LAYERS.iter().find(|(name, _)| *name == top).map(|l| l.1);
    (
        top,
        rank.unwrap_or_else(|| panic!("{module_path}: in no layer of LAYERS")),
    )
}

#[test]
fn imports_only_go_down() {
    let mut wrong = Vec::new();
    for module in modules() {
        let (top, rank) = layer(&module);
        for import in imports(&module) {
            let (to, to_rank) = layer(&import);
            let down = to_rank < rank || (to == top && rank > 0);
            let leaves = rank == 0 && to_rank == 0;
            if !(down || leaves) {
                wrong.push(format!("src/{module}: crate::{import}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that do not go down a layer (see ARCHITECTURE.md, Code map):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn state_machines_import_no_module_that_does_io() {
    let mut wrong = Vec::new();
    let machines = code_map().into_iter().filter(|(_, bold)| *bold);
    for module in machines.flat_map(|(m, _)| m) {
        if module.ends_with("tests") || module.ends_with("testing") {
            continue;
        }
        for import in imports(&module) {
            let io = DOES_IO
                .iter()
                .any(|m| import == *m || import.starts_with(&format!("{m}::")));
            if io {
                wrong.push(format!("src/{module}: crate::{import}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "state machines that import a module doing I/O:\n{}",
        wrong.join("\n")
    );
}

/// The modules `module` imports (code outside its tests: `crate::…` and `super::…`
/// paths), resolved to the longest module path that exists.
fn module_deps(module: &str, all: &BTreeSet<String>) -> BTreeSet<String> {
    let path = root().join("src").join(format!("{module}.rs"));
    let (path, is_mod) = match path.exists() {
        true => (path, false),
        false => (root().join("src").join(module).join("mod.rs"), true),
    };
    let text = std::fs::read_to_string(&path).expect("module source");
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let parent = match (is_mod, module.rsplit_once('/')) {
        (true, _) => module.to_string(),
        (false, Some((p, _))) => p.to_string(),
        (false, None) => String::new(),
    };
    let mut out = BTreeSet::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (prefix, base) in [("crate::", ""), ("super::", parent.as_str())] {
            for (i, _) in line.match_indices(prefix) {
                let rest = &line[i + prefix.len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                let parts: Vec<&str> = rest[..end].split("::").filter(|p| !p.is_empty()).collect();
                let found = (1..=parts.len()).rev().map(|k| {
                    let tail = parts[..k].join("/");
                    match base {
                        "" => tail,
                        b => format!("{b}/{tail}"),
                    }
                });
                if let Some(m) = found.into_iter().find(|m| all.contains(m)) {
                    out.insert(m);
                }
            }
        }
    }
    out.remove(module);
    out
}

#[test]
fn no_two_modules_import_each_other() {
    let all = modules();
    let related =
        |a: &str, b: &str| a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"));
    let deps: Vec<(String, BTreeSet<String>)> = all
        .iter()
        .map(|m| (m.clone(), module_deps(m, &all)))
        .collect();
    let find = |m: &str| deps.iter().find(|(n, _)| n == m).map(|(_, d)| d);
    let mut circles = BTreeSet::new();
    for (a, direct) in &deps {
        for b in direct.iter().filter(|b| !related(a, b)) {
            // Is `a` reachable from `b`, not through a folder's own declarations?
            let mut seen = BTreeSet::new();
            let mut stack = vec![b.clone()];
            while let Some(x) = stack.pop() {
                if &x == a {
                    let pair = [a.clone(), b.clone()];
                    circles.insert(format!("src/{} <-> src/{}", pair[0], pair[1]));
                    break;
                }
                if !seen.insert(x.clone()) {
                    continue;
                }
                let next = find(&x).into_iter().flatten();
                stack.extend(next.filter(|y| !related(&x, y)).cloned());
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules that import each other (through any path):\n{}",
        circles.into_iter().collect::<Vec<_>>().join("\n")
    );
}

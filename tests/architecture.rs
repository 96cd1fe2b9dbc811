//! ARCHITECTURE.md kept true, as tests/man.rs keeps the man pages true: its code map names
//! every module of `src/` and nothing else, the folders are layers whose imports only go
//! down, no two modules import each other (through any path), and the state machines it
//! marks (in bold) depend on no module that does I/O, not even through others.
//!
//! A module's imports are read from its source, test code left out: every path that
//! starts with `crate::`, `super::` (also chained) or `self::`, `{…}` groups expanded,
//! resolved to the longest module path that exists.

use std::collections::BTreeSet;
use std::path::PathBuf;

mod scan;

use scan::{Module, modules};

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

/// The state machines, as the code map marks them (in bold): a map that loses its marks
/// does not make the check below pass by checking nothing.
const STATE_MACHINES: [&str; 37] = [
    "mqtt/dial",
    "mqtt/proxy/handshake",
    "mqtt/proxy/socks",
    "mqtt/proxy/http",
    "mqtt/coalesce/policy",
    "tools/publish/state",
    "tools/publish/outbox",
    "tools/publish/join",
    "tools/publish/drain",
    "tools/publish/streak",
    "tools/subscribe/state",
    "tools/subscribe/state/opening",
    "tools/subscribe/inbox",
    "tools/subscribe/room",
    "tools/subscribe/room/report",
    "tools/subscribe/members",
    "tools/subscribe/view",
    "tools/subscribe/printer",
    "tools/subscribe/takeover",
    "broker/engine",
    "broker/engine/codec",
    "broker/engine/codes",
    "broker/engine/write",
    "broker/engine/table",
    "broker/engine/session",
    "broker/engine/session/durable",
    "broker/engine/route",
    "broker/engine/record",
    "broker/engine/durable",
    "broker/store/format",
    "broker/store/format/fields",
    "broker/auth",
    "broker/auth/passwd",
    "broker/auth/acl",
    "broker/auth/acl/rule",
    "broker/auth/throttle",
    "broker/auth/cert",
];

/// Modules that do I/O (sockets, stdin, stdout, signals, the resolver, stderr, the
/// drivers that own them).
const DOES_IO: [&str; 27] = [
    "mqtt/link",
    "mqtt/proxy",
    "mqtt/transport",
    "mqtt/resolve",
    "mqtt/connect",
    "mqtt/connection",
    "mqtt/coalesce",
    "tools/output",
    "tools/identity",
    "tools/subscribe/known",
    "tools/publish",
    "tools/publish/input",
    "tools/publish/input/lines",
    "tools/publish/input/sink",
    "tools/subscribe",
    "tools/subscribe/derive",
    "broker",
    "broker/conn",
    "broker/listen",
    "broker/listen/admit",
    "broker/gate",
    "broker/passwd",
    "broker/hub",
    "broker/hub/writer",
    "broker/store",
    "signals",
    "tool",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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

/// A test module beside its module (`*_tests`, `testing`): test code.
fn is_test(module: &str) -> bool {
    module.ends_with("tests") || module.ends_with("testing")
}

#[test]
fn the_code_map_names_every_module_and_nothing_else() {
    let in_src: BTreeSet<String> = modules().into_iter().map(|m| m.path).collect();
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

#[test]
fn the_code_map_marks_the_state_machines() {
    let marked: BTreeSet<String> = (code_map().into_iter().filter(|(_, bold)| *bold))
        .flat_map(|(m, _)| m)
        .filter(|m| !is_test(m))
        .collect();
    let expected: BTreeSet<String> = STATE_MACHINES.iter().map(|m| m.to_string()).collect();
    assert_eq!(
        marked, expected,
        "the modules ARCHITECTURE.md marks in bold (left) are not this test's state machines \
         (right): change both together"
    );
}

fn layer(module: &str) -> (&str, u8) {
    let top = module.split('/').next().unwrap_or_default();
    let rank = LAYERS.iter().find(|(name, _)| *name == top).map(|l| l.1);
    (
        top,
        rank.unwrap_or_else(|| panic!("src/{module}: in no layer of LAYERS")),
    )
}

#[test]
fn imports_only_go_down() {
    let all = modules();
    let mut wrong = Vec::new();
    for m in &all {
        let (top, rank) = layer(&m.path);
        for dep in m.deps(&all) {
            let (to, to_rank) = layer(&dep);
            let down = to_rank < rank || (to == top && rank > 0);
            let leaves = rank == 0 && to_rank == 0;
            if !(down || leaves) {
                wrong.push(format!("src/{} imports src/{dep}", m.path));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that do not go down a layer (see ARCHITECTURE.md, Code map):\n{}",
        wrong.join("\n")
    );
}

/// Everything `start` depends on, directly or through others, but its own folder's
/// declarations (a folder's `mod.rs` declares its children; that is no dependency).
fn reach(start: &str, all: &[Module]) -> BTreeSet<String> {
    let related =
        |a: &str, b: &str| a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"));
    let mut seen = BTreeSet::new();
    let mut stack = vec![start.to_string()];
    while let Some(x) = stack.pop() {
        let Some(m) = all.iter().find(|m| m.path == x) else {
            continue;
        };
        for dep in m.deps(all) {
            if !related(&x, &dep) && seen.insert(dep.clone()) {
                stack.push(dep);
            }
        }
    }
    seen
}

#[test]
fn state_machines_depend_on_no_module_that_does_io() {
    let all = modules();
    let mut wrong = Vec::new();
    for sm in STATE_MACHINES {
        for dep in reach(sm, &all) {
            if DOES_IO.contains(&dep.as_str()) {
                wrong.push(format!("src/{sm} depends on src/{dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "state machines that depend on a module doing I/O:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_two_modules_import_each_other() {
    let all = modules();
    let mut circles = BTreeSet::new();
    for m in &all {
        for dep in reach(&m.path, &all).into_iter().filter(|d| *d != m.path) {
            if reach(&dep, &all).contains(&m.path) {
                let mut pair = [m.path.clone(), dep];
                pair.sort();
                circles.insert(format!("src/{} <-> src/{}", pair[0], pair[1]));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules that import each other (through any path):\n{}",
        circles.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_scanner_reads_every_kind_of_path() {
    let code = "use crate::{error::Error, mqtt::{wire::{self, Version}, tx::Tx as T}};\n\
                use super::super::room::seal;\nuse self::inner::x;\n\
                fn f() { crate::tool::say(super::outbox::WINDOW); }\n\
                #[cfg(test)]\nmod testing;\nuse crate::defaults;\n\
                #[cfg(test)]\nmod tests {\n    use crate::signals::Signals;\n}\n";
    let paths = scan::paths_in(&scan::without_tests(code));
    let shown: BTreeSet<String> = paths.iter().map(|p| p.join("::")).collect();
    for want in [
        "crate::error::Error",
        "crate::mqtt::wire",
        "crate::mqtt::wire::Version",
        "crate::mqtt::tx::Tx",
        "super::super::room::seal",
        "self::inner::x",
        "crate::tool::say",
        "super::outbox::WINDOW",
        "crate::defaults",
    ] {
        assert!(shown.contains(want), "{want} not in {shown:?}");
    }
    assert!(
        !shown.iter().any(|p| p.contains("signals")),
        "test code: {shown:?}"
    );
}

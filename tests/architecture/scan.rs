//! The modules of `src/` and what each imports, read from the source: the scanner the
//! architecture tests share.

use std::collections::BTreeSet;
use std::path::Path;

use super::root;

/// One module of the library.
pub struct Module {
    /// Its path below `src/` without `.rs` (a `mod.rs` as its folder): `mqtt/dial`.
    pub path: String,
    /// Its source without test code.
    code: String,
}

impl Module {
    /// The modules this one imports, other than itself.
    pub fn deps(&self, all: &[Module]) -> BTreeSet<String> {
        let own: Vec<String> = self.path.split('/').map(str::to_string).collect();
        let mut out = BTreeSet::new();
        for path in paths_in(&self.code) {
            if let Some(m) = resolve(&own, &path, all) {
                out.insert(m);
            }
        }
        out.remove(&self.path);
        out
    }
}

/// Every module file of the library (not `lib.rs`, not the binaries).
pub fn modules() -> Vec<Module> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<Module>) {
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
            let text = std::fs::read_to_string(&path).expect("module source");
            out.push(Module {
                path: module.strip_suffix("/mod").unwrap_or(module).to_string(),
                code: without_tests(&text),
            });
        }
    }
    let src = root().join("src");
    let mut out = Vec::new();
    walk(&src, &src, &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// `text` without its comments and without every item under `#[cfg(test)]`: a `mod x;`
/// line, or a braced item to its closing brace.
pub fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default());
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut depth = 0i64;
        for l in lines.by_ref() {
            let t = l.trim();
            if depth == 0 && t.starts_with("#[") {
                continue; // more attributes of the same item
            }
            depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
            if depth <= 0 && (t.ends_with(';') || t.ends_with('}')) {
                break;
            }
        }
    }
    out
}

/// Every path of `code` that starts with `crate::`, `super::` or `self::`, as segments,
/// `{…}` groups expanded (`a::{b, c::d}` is `a::b` and `a::c::d`).
pub fn paths_in(code: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .any(|s| bytes[i..].starts_with(s.as_bytes()));
        let boundary =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || b"_:".contains(&bytes[i - 1]));
        if starts && boundary {
            let mut j = i;
            out.extend(path(bytes, &mut j));
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Reads one path at `i`: segments joined by `::`, a `{…}` group ending it.
fn path(s: &[u8], i: &mut usize) -> Vec<Vec<String>> {
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let mut segments = Vec::new();
    loop {
        skip_ws(i);
        if *i < s.len() && s[*i] == b'{' {
            *i += 1;
            let mut out = Vec::new();
            loop {
                skip_ws(i);
                if *i >= s.len() || s[*i] == b'}' {
                    *i += 1;
                    return out;
                }
                for sub in path(s, i) {
                    let sub: Vec<String> = sub.into_iter().filter(|p| p != "self").collect();
                    out.push([segments.clone(), sub].concat());
                }
                // ` as x` after an item, then the comma.
                while *i < s.len() && !b",}".contains(&s[*i]) {
                    *i += 1;
                }
                if *i < s.len() && s[*i] == b',' {
                    *i += 1;
                }
            }
        }
        let start = *i;
        while *i < s.len() && (s[*i].is_ascii_alphanumeric() || s[*i] == b'_') {
            *i += 1;
        }
        if *i == start {
            return vec![segments];
        }
        segments.push(String::from_utf8_lossy(&s[start..*i]).into_owned());
        if s[*i..].starts_with(b"::") {
            *i += 2;
        } else {
            return vec![segments];
        }
    }
}

/// The module `path` names from the module `own` (its segments), if it names one.
fn resolve(own: &[String], path: &[String], all: &[Module]) -> Option<String> {
    // `self` is the module itself (a folder's `mod.rs` is the folder), `super` its parent
    // module.
    let mut base: Vec<String> = own.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        _ => {}
    }
    while rest.first().is_some_and(|s| s == "super") {
        base.pop();
        rest = &rest[1..];
    }
    let full: Vec<String> = base.into_iter().chain(rest.iter().cloned()).collect();
    (1..=full.len())
        .rev()
        .map(|k| full[..k].join("/"))
        .find(|m| all.iter().any(|x| &x.path == m))
}

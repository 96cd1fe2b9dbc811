//! The reference examples: the envelope's JSON, shell completions and the man pages.

use super::markdown::Block;
use super::output::{report, stdout};
use super::sandbox::Sandbox;
use crate::common::wait_until;
use std::fmt;
use std::path::Path;

pub fn completions(sb: &Sandbox, block: &Block) {
    for line in block.lines::<2>() {
        sb.run(line, b"").expect_code(0);
    }
    let path = sb
        .home()
        .join(".local/share/bash-completion/completions/chat-sub");
    let script =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        script.contains("chat-sub"),
        "{} does not mention chat-sub:\n{script}",
        path.display()
    );
}

pub fn man_pages(sb: &Sandbox, block: &Block) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for line in block.lines::<3>() {
        // The page's tool, named by its file: `man -l man/TOOL.1`.
        let tool = line.rsplit('/').next().and_then(|f| f.strip_suffix(".1"));
        let tool = tool.unwrap_or_else(|| panic!("which page does {line:?} show?"));
        let mut cmd = sb.line_in(root, line);
        cmd.env("MANPAGER", "cat").env("MANWIDTH", "80");
        let out = sb.run_line(cmd, b"");
        out.expect_code(0);
        let text = out.stdout_str();
        assert!(
            text.contains("NAME") && text.contains(tool),
            "{line:?} shows no NAME of {tool}:\n{text}\n--- stderr:\n{}",
            out.stderr
        );
    }
}

pub fn envelope(sb: &Sandbox, block: &Block) {
    let [example] = block.lines();
    let want = Object::parse(example);
    let _broker = sb.broker("127.0.0.1:1883");
    let raw = sb.subscriber(&["--raw", "lobby"]);
    sb.probe(&[(&raw, "probe-")], |n| {
        sb.chat_pub_m(&format!("probe-{n}"), &["lobby"])
    });
    sb.harness("chat-pub", &["--nick", "alice", "-m", "hello", "lobby"]);
    let find = || {
        let out = stdout(&raw);
        out.lines()
            .find(|l| l.contains(r#""text":"hello""#))
            .map(str::to_owned)
    };
    wait_until(
        "the envelope of hello",
        || find().is_some(),
        || report(&raw, &[]),
    );
    let payload = find().expect("found");
    let got = Object::parse(&payload);
    let context = format!("README's example:\n{example}\npublished:\n{payload}");
    assert_eq!(got.keys(), want.keys(), "keys and their order\n{context}");
    for key in ["from", "text"] {
        assert_eq!(got.get(key), want.get(key), "{key}\n{context}");
    }
    let id = got.get("id").as_str().unwrap_or_default();
    let hex = id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    assert!(
        id.len() == 32 && hex,
        "id: 32 lowercase hex digits\n{context}"
    );
    let (ts, example_ts) = (got.get("ts"), want.get("ts"));
    let shaped = shaped_like(
        example_ts.as_str().unwrap_or_default(),
        ts.as_str().unwrap_or_default(),
    );
    assert!(shaped, "ts shaped like README's {example_ts}\n{context}");
}

/// Whether `s` has the shape of `example`: a digit where it has one, its other characters
/// the same (`2026-11-26T12:01:02.123Z`).
fn shaped_like(example: &str, s: &str) -> bool {
    example.len() == s.len()
        && example
            .bytes()
            .zip(s.bytes())
            .all(|(e, c)| match e.is_ascii_digit() {
                true => c.is_ascii_digit(),
                false => e == c,
            })
}

/// A JSON object with its keys in their written order (serde_json's map sorts them).
struct Object(Vec<(String, serde_json::Value)>);

impl Object {
    #[track_caller]
    fn parse(text: &str) -> Object {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not a JSON object ({e}): {text}"))
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }

    fn get(&self, key: &str) -> &serde_json::Value {
        let found = self.0.iter().find(|(k, _)| k == key);
        found.map_or(&serde_json::Value::Null, |(_, v)| v)
    }
}

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Object, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Object;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<Object, M::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = m.next_entry()? {
                    entries.push(entry);
                }
                Ok(Object(entries))
            }
        }
        d.deserialize_map(Entries)
    }
}

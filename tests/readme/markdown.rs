//! README.md's fenced code blocks and the marker comment before each, and the checks that
//! tie them to the scenarios of tests/readme.rs.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// What the line before a fenced block says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// `<!-- test: NAME -->`: run by the scenario NAME.
    Test(String),
    /// `<!-- skip: REASON -->`: not run, for REASON.
    Skip(String),
}

/// One fenced code block.
#[derive(Debug, Clone)]
pub struct Block {
    /// 1-based line number of the opening fence.
    pub line: usize,
    /// The marker on the line before the fence; None if that line is not one.
    pub marker: Option<Marker>,
    /// The lines between the fences, as written.
    pub body: Vec<String>,
}

impl Block {
    /// The block as a failure message names it: where it is and how it starts.
    pub fn describe(&self) -> String {
        let first = self.body.first().map_or("", String::as_str);
        format!("README.md:{} (block starting {first:?})", self.line)
    }

    /// The block's lines, which must be `N` (a scenario runs each line in its own way).
    #[track_caller]
    pub fn lines<const N: usize>(&self) -> [&str; N] {
        let lines: Vec<&str> = self.body.iter().map(String::as_str).collect();
        lines.try_into().unwrap_or_else(|lines: Vec<&str>| {
            panic!(
                "{}: the scenario runs {N} lines, the block has {}:\n{}",
                self.describe(),
                lines.len(),
                lines.join("\n")
            )
        })
    }
}

/// README.md as committed, read at run time (so a change to it needs no rebuild).
pub fn readme() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The block marked `<!-- test: NAME -->` in README.md.
#[track_caller]
pub fn block(name: &str) -> Block {
    let blocks = parse(&readme()).unwrap_or_else(|e| panic!("README.md: {e}"));
    let want = Marker::Test(name.to_string());
    blocks
        .into_iter()
        .find(|b| b.marker.as_ref() == Some(&want))
        .unwrap_or_else(|| panic!("README.md has no block marked <!-- test: {name} -->"))
}

/// The fenced blocks of `markdown` (fences of three or more backticks, with or without
/// an info string), or why it cannot be read (a fence never closed).
pub fn parse(markdown: &str) -> Result<Vec<Block>, String> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(fence) = fence_len(lines[i]) else {
            i += 1;
            continue;
        };
        let marker = i.checked_sub(1).and_then(|p| marker(lines[p]));
        // A closing fence is backticks alone, at least as many as the opening one.
        let close = (i + 1..lines.len()).find(|&j| {
            let t = lines[j].trim();
            fence_len(t).is_some_and(|n| n >= fence && n == t.len())
        });
        let Some(close) = close else {
            return Err(format!("the block at line {} is never closed", i + 1));
        };
        let body = lines[i + 1..close].iter().map(|l| l.to_string()).collect();
        blocks.push(Block {
            line: i + 1,
            marker,
            body,
        });
        i = close + 1;
    }
    Ok(blocks)
}

/// How many backticks open a fence on this line (None: not a fence). Up to three spaces
/// of indentation, as CommonMark allows; more is an indented code block, not a fence.
fn fence_len(line: &str) -> Option<usize> {
    let t = line.trim_start_matches(' ');
    if line.len() - t.len() > 3 {
        return None;
    }
    let n = t.len() - t.trim_start_matches('`').len();
    (n >= 3).then_some(n)
}

/// The marker a line holds, if it is `<!-- test: NAME -->` or `<!-- skip: REASON -->`.
fn marker(line: &str) -> Option<Marker> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    let (kind, value) = inner.split_once(':')?;
    let value = value.trim().to_string();
    match kind.trim() {
        "test" => Some(Marker::Test(value)),
        "skip" => Some(Marker::Skip(value)),
        _ => None,
    }
}

/// What is wrong between the blocks and the scenarios: a block without a marker, a skip
/// without a reason, a test name without a scenario or used twice, a scenario without a
/// block. Empty when all is well.
pub fn problems(blocks: &[Block], scenarios: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut named: BTreeMap<&str, Vec<&Block>> = BTreeMap::new();
    for b in blocks {
        match &b.marker {
            None => found.push(format!(
                "{}: no <!-- test: NAME --> or <!-- skip: REASON --> on the line before it",
                b.describe()
            )),
            Some(Marker::Skip(reason)) if reason.is_empty() => {
                found.push(format!("{}: skip without a reason", b.describe()))
            }
            Some(Marker::Skip(_)) => {}
            Some(Marker::Test(name)) => named.entry(name).or_default().push(b),
        }
    }
    for (name, bs) in &named {
        if !scenarios.contains(name) {
            let b = bs[0].describe();
            found.push(format!("{b}: no scenario {name:?} in tests/readme.rs"));
        }
        if bs.len() > 1 {
            let all: Vec<String> = bs.iter().map(|b| b.describe()).collect();
            found.push(format!("test name {name:?} marks several blocks: {all:?}"));
        }
    }
    for s in scenarios {
        if !named.contains_key(s) {
            found.push(format!(
                "scenario {s:?} of tests/readme.rs has no block in README.md (stale?)"
            ));
        }
    }
    found
}

#[test]
fn parser_reads_fences_markers_and_bodies() {
    let md = "# T\n\n<!-- test: one -->\n```sh\nchat-broker   # a comment\nchat-sub x\n```\n\
              text\n<!--skip:   no network -->\n````\n```\nnot a fence end\n````\n\
              \n```json\n{}\n```\n";
    let blocks = parse(md).unwrap();
    assert_eq!(blocks.len(), 3, "{blocks:#?}");
    assert_eq!(blocks[0].line, 4);
    assert_eq!(blocks[0].marker, Some(Marker::Test("one".into())));
    assert_eq!(blocks[0].body, ["chat-broker   # a comment", "chat-sub x"]);
    assert_eq!(blocks[1].marker, Some(Marker::Skip("no network".into())));
    assert_eq!(blocks[1].body, ["```", "not a fence end"]);
    assert_eq!(blocks[2].line, 15);
    assert_eq!(blocks[2].marker, None);
    assert_eq!(blocks[2].body, ["{}"]);
    assert!(parse("```\nopen\n").unwrap_err().contains("line 1"));
}

#[test]
fn checks_name_each_problem_and_its_block() {
    let md = "```sh\nunmarked\n```\n<!-- skip: -->\n```\nbare skip\n```\n\
              <!-- test: a -->\n```\nfirst a\n```\n<!-- test: a -->\n```\nsecond a\n```\n\
              <!-- test: ghost -->\n```\nno scenario\n```\n";
    let blocks = parse(md).unwrap();
    let found = problems(&blocks, &["a", "unused"]);
    let expect = [
        "README.md:1 (block starting \"unmarked\"): no <!-- test",
        "README.md:5 (block starting \"bare skip\"): skip without a reason",
        "test name \"a\" marks several blocks",
        "README.md:17 (block starting \"no scenario\"): no scenario \"ghost\"",
        "scenario \"unused\" of tests/readme.rs has no block",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for e in expect {
        assert!(
            found.iter().any(|f| f.starts_with(e)),
            "no {e:?} in {found:#?}"
        );
    }
    let good = parse("<!-- test: a -->\n```\nx\n```\n").unwrap();
    assert_eq!(problems(&good, &["a"]), Vec::<String>::new());
}

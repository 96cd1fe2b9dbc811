//! What the user sees, as the scenarios check it: chat-sub's text lines without their
//! clock, lines in order, and failure messages that show everything the processes printed.

use crate::common::{Proc, wait_until};

/// Waits until `proc` printed a line that, after its `HH:MM:SS ` clock (and `[topic] `
/// when there is one), is `want`; returns the output so far. A failure shows what `proc`
/// and the processes in `also` printed.
#[track_caller]
pub fn wait_message(proc: &Proc, want: &str, also: &[(&str, &Proc)]) -> String {
    let has = || text_lines(&proc.stdout()).iter().any(|l| l == want);
    wait_until(&format!("a line {want:?}"), has, || report(proc, also));
    stdout(proc)
}

/// Everything `proc` and the processes in `also` (each with its label) printed so far:
/// what a failure shows.
pub fn report(proc: &Proc, also: &[(&str, &Proc)]) -> String {
    let one = |label: &str, p: &Proc| {
        format!(
            "--- {label}: stdout:\n{}\n--- {label}: stderr:\n{}",
            stdout(p),
            p.stderr()
        )
    };
    let mut all = vec![one("watched", proc)];
    all.extend(also.iter().map(|(label, p)| one(label, p)));
    all.join("\n")
}

/// The stdout of `proc` so far, as text.
pub fn stdout(proc: &Proc) -> String {
    String::from_utf8_lossy(&proc.stdout()).into_owned()
}

/// chat-sub's text lines without their `[topic] ` and `HH:MM:SS ` prefixes (a line
/// without them is kept whole).
pub fn text_lines(out: &[u8]) -> Vec<String> {
    let out = String::from_utf8_lossy(out);
    out.lines()
        .map(|l| without_prefixes(l).to_string())
        .collect()
}

fn without_prefixes(line: &str) -> &str {
    let line = match line.strip_prefix('[') {
        Some(rest) => rest.split_once("] ").map_or(line, |(_, after)| after),
        None => line,
    };
    let b = line.as_bytes();
    let clock = b.len() >= 9
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
        && (b[2], b[5], b[8]) == (b':', b':', b' ');
    if clock { &line[9..] } else { line }
}

/// Checks that, after their clocks, `want` are lines `proc` printed, in this order
/// (others may come between); a failure shows all output (see [`report`]).
#[track_caller]
pub fn assert_in_order(proc: &Proc, want: &[&str], also: &[(&str, &Proc)]) {
    let lines = text_lines(&proc.stdout());
    let mut from = 0;
    for w in want {
        match lines[from..].iter().position(|l| l == w) {
            Some(i) => from += i + 1,
            None => panic!(
                "expected these lines in this order (after HH:MM:SS):\n{}\n{}",
                want.join("\n"),
                report(proc, also)
            ),
        }
    }
}

//! The chat examples: Quick start, Chat with a friend, Chat in two panes, `--who`, and
//! the encrypted room with its secret.

use super::markdown::{self, Block};
use super::output::{assert_in_order, report, text_lines, wait_message};
use super::sandbox::Sandbox;
use crate::common::{Proc, eventually_prints};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// chat-sub(1), EXIT STATUS: stopped by SIGINT.
const EXIT_SIGINT: i32 = 130;

/// The secret README's make-secret block writes, relative to HOME.
const SECRET: &str = ".config/mqttchat/team.secret";

/// Probe `n`: `chat-pub -m probe-N ARGS…` (ARGS end with the topic).
fn probe(sb: &Sandbox, n: u32, args: &[&str]) -> Command {
    sb.chat_pub_m(&format!("probe-{n}"), args)
}

pub fn quick_start(sb: &Sandbox, block: &Block) {
    three_terminals(sb, block, "127.0.0.1:1883", &["lobby"], "me");
}

pub fn lan(sb: &Sandbox, block: &Block) {
    three_terminals(
        sb,
        block,
        "0.0.0.0:1883",
        &["-b", "192.168.1.10", "lobby"],
        "alice",
    );
}

/// A broker, a reader and a writer in three terminals: the writer's line, its join and
/// its leave reach the reader; Ctrl-C ends the reader (130) and the broker (0).
fn three_terminals(sb: &Sandbox, block: &Block, listens: &str, room: &[&str], nick: &str) {
    let [broker, reader, writer] = block.lines();
    let broker = sb.start_broker(broker, listens);
    let reader = sb.start(reader);
    sb.probe(&[(&reader, "probe-")], |n| probe(sb, n, room));
    sb.run(writer, b"hello\n").expect_code(0);
    let left = format!("* {nick} left");
    wait_message(&reader, &left, &[("chat-broker", &broker)]);
    let (joined, said) = (format!("* {nick} joined"), format!("{nick}: hello"));
    assert_in_order(&reader, &[&joined, &said, &left], &[]);
    reader.stop(libc::SIGINT, EXIT_SIGINT);
    broker.stop(libc::SIGINT, 0);
}

pub fn make_secret(sb: &Sandbox, block: &Block) {
    run_make_secret(sb, block);
    let path = sb.home().join(SECRET);
    let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "mode of {}",
        path.display()
    );
    let text = std::fs::read(&path).expect("read the secret");
    let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
    assert!(
        first.len() >= 16,
        "the secret's first line has {} bytes, chat-pub wants 16 or more: {:?}",
        first.len(),
        String::from_utf8_lossy(&text)
    );
}

/// Runs the make-secret block's lines in order, each to exit 0.
fn run_make_secret(sb: &Sandbox, block: &Block) {
    for line in block.lines::<3>() {
        sb.run(line, b"").expect_code(0);
    }
}

pub fn two_panes(sb: &Sandbox, block: &Block) {
    let [pane1, pane2] = block.lines();
    let _broker = sb.broker("127.0.0.1:1883");
    let pane1 = sb.start(pane1);
    sb.probe(&[(&pane1, "probe-")], |n| {
        probe(sb, n, &["--nick", "carol", "lobby"])
    });
    sb.run(pane2, b"mine\n").expect_code(0);
    sb.harness("chat-pub", &["--nick", "bob", "-m", "from bob", "lobby"]);
    // bob's line went out after alice's was acknowledged: had pane 1 shown hers, it
    // would be there by now.
    let out = wait_message(&pane1, "bob: from bob", &[]);
    assert!(
        !text_lines(out.as_bytes())
            .iter()
            .any(|l| l == "alice: mine"),
        "pane 1 shows alice's own line despite --hide-own:\n{}",
        report(&pane1, &[])
    );
}

pub fn who(sb: &Sandbox, block: &Block) {
    let [who] = block.lines();
    let _broker = sb.broker("127.0.0.1:1883");
    let empty = sb.run(who, b"");
    empty.expect_code(0);
    assert_eq!(
        (empty.stdout_str().as_str(), empty.stderr.as_str()),
        ("", "chat-sub: nobody is online in lobby\n"),
        "(stdout, stderr) of {who:?} in an empty room"
    );
    // carol is online while her chat-pub reads stdin, which stays open until the end.
    let carol = Proc::spawn(&mut sb.command("chat-pub", &["--nick", "carol", "lobby"]));
    // Her retained join may take a moment to reach the broker's store: ask again.
    eventually_prints(|| sb.line_in(sb.work(), who), "carol\n");
    drop(carol);
}

pub fn encrypted(sb: &Sandbox, block: &Block) {
    let [reader, writer] = block.lines();
    run_make_secret(sb, &markdown::block("make-secret"));
    let secret = sb.home().join(SECRET);
    let secret = secret.to_str().expect("UTF-8 path");
    let _broker = sb.broker("127.0.0.1:1883");
    // An outsider without the secret; team/sync lets it know it has seen everything.
    let outsider = sb.subscriber(&["--raw", "team/x", "team/sync"]);
    let reader = sb.start(reader);
    let probe_args = ["--room-secret-file", secret, "team/x"];
    sb.probe(&[(&reader, "probe-"), (&outsider, "mqttchat:e2:")], |n| {
        probe(sb, n, &probe_args)
    });
    sb.run(writer, b"secret plans\n").expect_code(0);
    wait_message(&reader, "tester: secret plans", &[]);
    sb.harness("chat-pub", &["--raw", "-m", "sync", "team/sync"]);
    // The sync message went out after the writer's line was acknowledged: the outsider
    // has that line by now.
    let seen = wait_message(&outsider, "sync", &[]);
    for payload in text_lines(seen.as_bytes()).iter().filter(|l| *l != "sync") {
        assert!(
            payload.starts_with("mqttchat:e2:") && !payload.contains("secret plans"),
            "the outsider saw a payload that is not encrypted: {payload:?}\n{}",
            report(&outsider, &[])
        );
    }
}

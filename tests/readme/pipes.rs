//! The pipeline examples: Pipes (a log into a room, jq over `--json`, grep, a retained
//! status), the relay between two LAN brokers, and failover across a cluster's nodes.

use super::markdown::Block;
use super::output::{assert_in_order, report, stdout, text_lines, wait_message};
use super::sandbox::Sandbox;
use crate::common::{Proc, wait_until};
use std::io::Write;
use std::path::Path;

pub fn pipes(sb: &Sandbox, block: &Block) {
    let [alerts, json, deploy, retained] = block.lines();
    let _broker = sb.broker("127.0.0.1:1883");
    errors_into_alerts(sb, alerts);
    ci_texts_through_jq(sb, json);
    deploy_lines_through_grep(sb, deploy);
    retained_status(sb, retained);
}

/// `tail -F build.log | grep ERROR | chat-pub ops/alerts`: only ERROR lines arrive.
fn errors_into_alerts(sb: &Sandbox, line: &str) {
    let log = sb.work().join("build.log");
    std::fs::write(&log, "").expect("create build.log");
    let watcher = sb.subscriber(&["ops/alerts"]);
    sb.probe(&[(&watcher, "probe-")], |n| {
        sb.chat_pub_m(&format!("probe-{n}"), &["ops/alerts"])
    });
    let pipeline = sb.start(line);
    append(&log, "ERROR disk full\nINFO all good\n");
    // The pipeline keeps the order of the log: once this last ERROR line arrived, the INFO
    // line would have too, had grep let it through.
    append(&log, "ERROR out of memory\n");
    let also = [("the pipeline", &*pipeline)];
    let out = wait_message(&watcher, "tester: ERROR out of memory", &also);
    let errors = ["tester: ERROR disk full", "tester: ERROR out of memory"];
    assert_in_order(&watcher, &errors, &also);
    assert!(
        !out.contains("INFO"),
        "grep let an INFO line through:\n{}",
        report(&watcher, &also)
    );
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open build.log");
    f.write_all(text.as_bytes()).expect("append to build.log");
}

/// `chat-sub --json 'ops/#' | jq -r 'select(.text and .from=="ci") | .text'`: ci's texts,
/// without its join and leave (no `null`) and without anybody else's lines. On a terminal
/// as in README: into a pipe jq would hold its output until it exits.
fn ci_texts_through_jq(sb: &Sandbox, line: &str) {
    let pipeline = sb.start_on_terminal(line);
    sb.probe(&[(&pipeline, "probe-")], |n| {
        sb.chat_pub_m(&format!("probe-{n}"), &["--nick", "ci", "ops/probe"])
    });
    // Reading stdin, ci's chat-pub announces itself: a join and a leave in --json.
    let mut ci = sb.command("chat-pub", &["--nick", "ci", "ops/build"]);
    crate::common::run(&mut ci, b"build green\n").expect_code(0);
    sb.harness("chat-pub", &["--nick", "bob", "-m", "other", "ops/build"]);
    // Published after bob's line was acknowledged: once it is out, bob's would be too.
    sb.harness("chat-pub", &["--nick", "ci", "-m", "synced", "ops/probe"]);
    pipeline.wait_stdout("synced\n");
    let out = stdout(&pipeline);
    let expected = |l: &str| {
        l == "build green" || l == "synced" || l.strip_prefix("probe-").is_some_and(is_number)
    };
    assert!(
        out.contains("build green\n") && out.lines().all(expected),
        "expected ci's texts only (probe-N, build green, synced), got:\n{out}\n--- stderr:\n{}",
        pipeline.stderr()
    );
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `chat-sub ops/alerts | grep --line-buffered -i deploy`: the lines that mention deploy.
fn deploy_lines_through_grep(sb: &Sandbox, line: &str) {
    let pipeline = sb.start(line);
    sb.probe(&[(&pipeline, "probe-")], |n| {
        sb.chat_pub_m(&format!("deploy probe-{n}"), &["ops/alerts"])
    });
    let mut alerts = sb.command("chat-pub", &["ops/alerts"]);
    let input = b"Deploy v2 started\nbuild green\nDEPLOY done\n";
    crate::common::run(&mut alerts, input).expect_code(0);
    sb.harness("chat-pub", &["-m", "deploy synced", "ops/alerts"]);
    let out = wait_message(&pipeline, "tester: deploy synced", &[]);
    let deploys = ["tester: Deploy v2 started", "tester: DEPLOY done"];
    assert_in_order(&pipeline, &deploys, &[]);
    assert!(
        out.lines().all(|l| l.to_lowercase().contains("deploy")),
        "a line without deploy went through grep -i deploy:\n{}",
        report(&pipeline, &[])
    );
}

/// `chat-pub -r -m 'deploy at 14:00' ops/status`: it ends by itself ("no stdin": stdin
/// stays open, as a terminal's does), and a subscriber that comes later gets the status.
fn retained_status(sb: &Sandbox, line: &str) {
    let mut status = sb.start(line);
    status.wait_until("it exited without reading stdin", Proc::exited);
    status.finish().expect_code(0);
    let later = sb.harness("chat-sub", &["-n", "1", "ops/status"]);
    assert_eq!(
        text_lines(&later.stdout),
        ["tester: deploy at 14:00"],
        "the retained status, read later:\n{}\n--- stderr:\n{}",
        later.stdout_str(),
        later.stderr
    );
}

pub fn relay(sb: &Sandbox, block: &Block) {
    let [relay] = block.lines();
    let _lan10 = sb.broker("192.168.1.10:1883");
    let _lan20 = sb.broker("192.168.1.20:1883");
    let at10 = sb.subscriber(&["-b", "192.168.1.10", "--json", "chat/#"]);
    let at20 = sb.subscriber(&["-b", "192.168.1.20", "--json", "chat/#"]);
    let relay = sb.start(relay);
    let also = [("the relay", &*relay)];
    // Probes published on .10 reach .20 only through the relay: they show it is ready.
    sb.probe(&[(&at10, "probe-"), (&at20, "probe-")], |n| {
        sb.chat_pub_m(&format!("probe-{n}"), &["-b", "192.168.1.10", "chat/probe"])
    });
    let bob = [
        "-b",
        "192.168.1.10",
        "--nick",
        "bob",
        "-m",
        "hello",
        "chat/room",
    ];
    sb.harness("chat-pub", &bob);
    let here = json_message(&at10, "hello", &also);
    let there = json_message(&at20, "hello", &also);
    let context = format!("on .10: {here}\non .20: {there}\n{}", report(&at20, &also));
    assert_eq!(there["from"], "bob", "{context}");
    assert!(here["id"].is_string(), "{context}");
    assert_eq!(there["id"], here["id"], "the relay kept the id\n{context}");
}

/// Waits until `sub` (`chat-sub --json`) printed a message whose text is `text`.
#[track_caller]
fn json_message(sub: &Proc, text: &str, also: &[(&str, &Proc)]) -> serde_json::Value {
    let find = || {
        stdout(sub)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["text"] == text)
    };
    let what = format!("a --json line with text {text:?}");
    wait_until(&what, || find().is_some(), || report(sub, also));
    find().expect("found")
}

pub fn cluster(sb: &Sandbox, block: &Block) {
    let [publisher, reader] = block.lines();
    let nodes: Vec<Proc> = (1..=3)
        .map(|i| sb.broker(&format!("10.0.0.{i}:1883")))
        .collect();
    let reader = sb.start(reader);
    sb.probe(&[(&reader, "probe-")], |n| {
        sb.chat_pub_m(&format!("probe-{n}"), &["-b", "10.0.0.1:1883", "ops/probe"])
    });
    let mut publisher = sb.start(publisher);
    publisher.write(b"one\n");
    wait_message(&reader, "tester: one", &[("chat-pub", &publisher)]);
    nodes[0].signal(libc::SIGKILL);
    // The nodes are separate brokers, not a cluster: the reader gets what is published on
    // 10.0.0.2 only once it subscribed there again, which these probes show.
    sb.probe(&[(&reader, "failover-")], |n| {
        sb.chat_pub_m(
            &format!("failover-{n}"),
            &["-b", "10.0.0.2:1883", "ops/probe"],
        )
    });
    publisher.write(b"two\n");
    let published = publisher.finish();
    published.expect_code(0);
    let out = wait_message(&reader, "tester: two", &[]);
    for want in ["tester: one", "tester: two"] {
        let times = text_lines(out.as_bytes())
            .iter()
            .filter(|l| *l == want)
            .count();
        assert_eq!(
            times,
            1,
            "{want:?} printed {times} times:\n{}\n--- chat-pub: stderr:\n{}",
            report(&reader, &[]),
            published.stderr
        );
    }
}

/// A reader through jq and one with a template see the properties chat-pub set, in the
/// order given; a message without properties (the probes) has `null`.
pub fn properties(sb: &Sandbox, block: &Block) {
    let [json, publish, template] = block.lines();
    let _broker = sb.broker("127.0.0.1:1883");
    let json = sb.start_on_terminal(json);
    let template = sb.start(template);
    sb.probe(&[(&json, "probe-"), (&template, "probe-")], |n| {
        sb.chat_pub_m(&format!("probe-{n}"), &["ops/deploys"])
    });
    sb.run(publish, b"").expect_code(0);
    json.wait_stdout("v1.4 is out");
    template.wait_stdout("v1.4 is out");
    // On a terminal jq colours its output: the colours taken out.
    let plain = without_colours(&stdout(&json));
    let line = plain
        .lines()
        .find(|l| l.contains("v1.4"))
        .unwrap_or_default();
    assert_eq!(
        line,
        r#"["v1.4 is out",{"user":[["env","prod"],["by","ci"]],"content_type":"text/plain"}]"#
    );
    assert!(
        plain.contains(r#"["probe-"#) && plain.contains("null]"),
        "{plain}"
    );
    let out = stdout(&template);
    assert!(out.contains("prod text/plain: v1.4 is out\n"), "{out}");
}

/// `text` without its SGR sequences (`ESC [ … m`).
fn without_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

//! README.md's examples, run as printed, so that README cannot drift from the tools.
//!
//! Every fenced block of README.md has a marker on the line before it:
//! `<!-- test: NAME -->` (the scenario NAME below runs it) or `<!-- skip: REASON -->`
//! (needs the internet, or is not a command). [`every_block_is_marked_and_run`] checks
//! both ways: each block is marked, each test name has a scenario here, and each scenario
//! has exactly one block (markdown.rs reads them).
//!
//! A scenario takes its block's lines from README.md at run time and runs each as a user
//! types it, `bash -c LINE` (the trailing `# comment` included), with a fresh HOME and
//! work directory, this build's binaries first in PATH, no `CHAT_*` variables and
//! `USER=tester` (sandbox.rs). What the harness adds to see the effect (probes, extra
//! subscribers, brokers the README assumes are running) uses the real tools too, but is
//! never a README line.
//!
//! Why a network namespace: the examples name fixed addresses (chat-broker's default
//! 127.0.0.1:1883, LAN addresses such as 192.168.1.10), while the tests run in parallel
//! in one process and port 1883 may be taken on the machine (CI's mosquitto may run as a
//! service). So each scenario runs on a thread that moved into a network namespace of its
//! own, where only `lo` exists, carrying 127.0.0.1 and the scenario's addresses: every
//! scenario has its own 127.0.0.1:1883, and nothing in it can reach another host. That
//! needs root; elsewhere the scenarios are skipped with a line on stderr, under CI
//! ([`tools_required`](crate::common::tools_required)) they fail.

mod chat;
mod dialect;
mod docs;
mod markdown;
mod output;
mod pipes;
mod profiles;
mod sandbox;

/// `test_fn "NAME" on [ADDRESS…] needs [PROGRAM…] => body;`: a `#[test]` per scenario,
/// and `SCENARIOS`, the names the meta test matches against README.md.
macro_rules! scenarios {
    ($($test:ident $name:literal on [$($addr:literal),*] needs [$($need:literal),*]
        => $body:path;)*) => {
        const SCENARIOS: &[&str] = &[$($name),*];
        $(
            #[test]
            fn $test() {
                sandbox::run_scenario($name, &[$($addr),*], &[$($need),*], $body);
            }
        )*
    };
}

scenarios! {
    quick_start "quick-start" on [] needs ["chat-broker"] => chat::quick_start;
    lan "lan" on ["192.168.1.10"] needs ["chat-broker"] => chat::lan;
    make_secret "make-secret" on [] needs ["openssl"] => chat::make_secret;
    pipes "pipes" on [] needs ["chat-broker", "jq"] => pipes::pipes;
    properties "properties" on [] needs ["chat-broker", "jq"] => pipes::properties;
    relay "relay" on ["192.168.1.10", "192.168.1.20"] needs ["chat-broker"] => pipes::relay;
    dialect "dialect" on [] needs ["chat-broker", "paho-mqtt"] => dialect::dialect;
    two_panes "two-panes" on [] needs ["chat-broker"] => chat::two_panes;
    who "who" on [] needs ["chat-broker"] => chat::who;
    completions "completions" on [] needs [] => docs::completions;
    cluster "cluster" on ["10.0.0.1", "10.0.0.2", "10.0.0.3"] needs ["chat-broker"]
        => pipes::cluster;
    envelope "envelope" on [] needs ["chat-broker"] => docs::envelope;
    encrypted "encrypted" on [] needs ["chat-broker", "openssl"] => chat::encrypted;
    man_pages "man-pages" on [] needs ["man"] => docs::man_pages;
    config_file "config-file" on [] needs [] => profiles::config_file;
    profiles "profiles" on ["192.168.1.10"] needs ["chat-broker"] => profiles::profiles;
}

#[test]
fn every_block_is_marked_and_run() {
    let blocks = markdown::parse(&markdown::readme()).unwrap_or_else(|e| panic!("README.md: {e}"));
    let problems = markdown::problems(&blocks, SCENARIOS);
    assert!(
        problems.is_empty(),
        "README.md and tests/readme.rs disagree:\n{}",
        problems.join("\n")
    );
}

//! Options and exit statuses (OPTIONS and EXIT STATUS in the man pages, Exit status in
//! the README): usage errors exit 2 before anything is sent, an unreachable broker exits
//! 3 after --connect-timeout, a refusal exits 4, and the shared options reach the broker.
//! Also `--completions`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use crate::common::*;

/// A listening socket that records whether anyone connected: a usage error must exit
/// before connecting, so nothing may arrive here.
struct Tripwire(TcpListener);

impl Tripwire {
    fn new() -> Tripwire {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        Tripwire(l)
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.0.local_addr().unwrap().port())
    }

    fn untouched(&self) -> bool {
        self.0.accept().is_err()
    }
}

#[track_caller]
fn usage_error(tool_name: &str, args: &[&str], mention: &str) {
    let wire = Tripwire::new();
    let mut cmd = tool(tool_name);
    cmd.arg("-b").arg(wire.url()).args(args);
    let out = run(&mut cmd, b"line\n");
    out.expect_code(2);
    assert!(
        out.stderr.contains(mention),
        "{tool_name} {args:?}: stderr should mention {mention:?}:\n{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "stdout: {}", out.stdout_str());
    assert!(
        wire.untouched(),
        "{tool_name} {args:?} connected despite a usage error"
    );
}

#[test]
fn chat_pub_usage_errors_exit_2_before_connecting() {
    usage_error("chat-pub", &["a/#"], "wildcard");
    usage_error("chat-pub", &["a/+/b"], "wildcard");
    usage_error("chat-pub", &[""], "empty");
    usage_error("chat-pub", &["-q", "3", "t"], "3");
    usage_error("chat-pub", &[], "TOPIC");
    usage_error("chat-pub", &["--raw", "--json", "t"], "--json");
    usage_error("chat-pub", &["--max-size", "0", "t"], "--max-size");
    usage_error("chat-pub", &["-V", "4.0", "t"], "MQTT version");
    usage_error("chat-pub", &["-V", "automatic", "t"], "use auto, 3 or 5");
    usage_error("chat-pub", &["--nosuchflag", "t"], "--nosuchflag");
}

#[test]
fn chat_sub_usage_errors_exit_2_before_connecting() {
    usage_error("chat-sub", &["a/#/b"], "filter");
    usage_error("chat-sub", &["a+"], "filter");
    usage_error("chat-sub", &[""], "empty");
    usage_error("chat-sub", &[], "TOPIC");
    usage_error("chat-sub", &["-q", "3", "t"], "3");
    usage_error("chat-sub", &["--json", "--raw", "t"], "--raw");
    usage_error("chat-sub", &["-F", "{bogus}", "t"], "{bogus}");
    usage_error("chat-sub", &["-W", "soon", "t"], "seconds");
}

#[test]
fn bad_broker_urls_exit_2() {
    for (url, mention) in [
        ("http://127.0.0.1:1883", "unknown scheme"),
        ("mqtt://127.0.0.1:99999", "port"),
        ("mqtt://", "no host"),
        ("mqtt://user:secret@127.0.0.1", "credentials"),
    ] {
        for name in ["chat-pub", "chat-sub"] {
            let out = run(tool(name).args(["-b", url, "t"]), b"");
            out.expect_code(2);
            assert!(
                out.stderr.contains(mention),
                "{name} -b {url}: {}",
                out.stderr
            );
            assert!(
                !out.stderr.contains("secret"),
                "password echoed: {}",
                out.stderr
            );
        }
    }
}

/// A list of brokers is checked whole before anything is sent: one bad URL anywhere in
/// it, in `-b` or in `CHAT_BROKER`, is a usage error that names it.
#[test]
fn a_bad_url_in_a_broker_list_exits_2() {
    let good = "mqtt://127.0.0.1:1";
    for name in ["chat-pub", "chat-sub"] {
        let cases: [(&[&str], Option<&str>, &str); 4] = [
            (&["-b", good, "-b", "http://h"], None, "'http://h'"),
            (&["-b", &format!("{good},h:0")], None, "'h:0'"),
            (&[], Some("127.0.0.1:1 mqtt://h:x"), "'mqtt://h:x'"),
            (&["-b", " , "], None, "no broker URL"),
        ];
        for (args, env, mention) in cases {
            let mut cmd = tool(name);
            if let Some(list) = env {
                cmd.env("CHAT_BROKER", list);
            }
            let out = run(cmd.args(args).arg("t"), b"");
            out.expect_code(2);
            assert!(
                out.stderr.contains(mention),
                "{name} {args:?} {env:?}: {}",
                out.stderr
            );
        }
    }
}

/// Every broker of a list is tried; when none answers, status 3 says how many there were.
#[test]
fn when_no_broker_of_a_list_answers_the_exit_status_is_3() {
    for name in ["chat-pub", "chat-sub"] {
        let list = "127.0.0.1:1,[::1]:1";
        let out = run(
            tool(name).args(["-b", list, "--connect-timeout", "0.5", "t"]),
            b"x\n",
        );
        out.expect_code(3);
        assert!(
            out.stderr.contains("cannot reach any of the 2 brokers"),
            "{}",
            out.stderr
        );
    }
}

/// Input that ends before the first connection does not start the drain timeout: until
/// a broker answered once, --connect-timeout is the limit, and an unreachable broker is
/// status 3 whatever --drain-timeout says.
#[test]
fn before_the_first_connection_only_the_connect_timeout_counts() {
    let args = [
        "-b",
        "127.0.0.1:1",
        "--connect-timeout",
        "1",
        "--drain-timeout",
        "0",
        "t",
    ];
    let out = run(tool("chat-pub").args(args), b"hello\n");
    out.expect_code(3);
    assert!(
        out.stderr.contains("cannot reach the broker"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unreachable_broker_exits_3_after_the_connect_timeout() {
    // Port 1 (tcpmux): privileged and never served here, so connecting is refused at once
    // (a port picked by bind-and-close could be taken by another test meanwhile).
    let port = 1;
    for name in ["chat-pub", "chat-sub"] {
        let out = run(
            tool(name).args([
                "-vv",
                "-b",
                &format!("127.0.0.1:{port}"),
                "--connect-timeout",
                "1",
                "t",
            ]),
            b"hello\n",
        );
        out.expect_code(3);
        // The message it ends with (its last line; the lines before are -vv's).
        let said = out.stderr.lines().last().unwrap_or_default();
        assert!(
            said.contains(&format!("127.0.0.1:{port}")),
            "{}",
            out.stderr
        );
        assert!(said.to_lowercase().contains("refused"), "{}", out.stderr);
        // It kept retrying until the timeout rather than giving up at the first refusal:
        // -vv logs each failed attempt (the backoff allows four within the second).
        let attempts = out.stderr.matches("debug: connecting to").count();
        assert!(
            attempts >= 2,
            "{name} gave up after {attempts} attempt(s):\n{}",
            out.stderr
        );
    }
}

/// A first connection that is still being tried after a second says so once, with the
/// reason; a refused connection says that nothing listens there, and what to do.
#[test]
fn a_refused_connection_is_explained_while_trying_and_at_the_end() {
    for name in ["chat-pub", "chat-sub"] {
        let args = ["-b", "127.0.0.1:1", "--connect-timeout", "3", "t"];
        let out = run(tool(name).args(args), b"hello\n");
        out.expect_code(3);
        let lines: Vec<&str> = out.stderr.lines().collect();
        let note = format!(
            "{name}: still trying to reach mqtt://127.0.0.1:1: Connection refused (os error \
             111): nothing listens on 127.0.0.1:1; giving up after 3.0s (--connect-timeout)"
        );
        let end = format!(
            "{name}: cannot reach the broker at mqtt://127.0.0.1:1 within 3.0s: Connection \
             refused (os error 111): nothing listens on 127.0.0.1:1; is a broker running \
             there? (chat-broker listens on 127.0.0.1:1883 only, unless started with \
             --listen)"
        );
        assert_eq!(lines, [note, end], "{name}");
    }
}

/// A host name that does not exist is reported at once (with an hour to connect, a tool
/// that retried would outlive the test's deadline); with a list, the others are tried.
#[test]
fn a_host_name_that_does_not_resolve_is_reported_at_once() {
    for name in ["chat-pub", "chat-sub"] {
        let args = [
            "-b",
            "nosuchhost.invalid",
            "--connect-timeout",
            LONG_CONNECT_TIMEOUT,
            "t",
        ];
        let out = run(tool(name).args(args), b"hello\n");
        out.expect_code(3);
        assert_eq!(
            out.stderr,
            format!(
                "{name}: cannot resolve the host name 'nosuchhost.invalid': names under \
                 .invalid never resolve (mqtt://nosuchhost.invalid:1883); check the name \
                 given with -b or CHAT_BROKER\n"
            )
        );
        let list = "nosuchhost.invalid,nor.this.invalid";
        let args = ["-b", list, "--connect-timeout", LONG_CONNECT_TIMEOUT, "t"];
        let out = run(tool(name).args(args), b"hello\n");
        out.expect_code(3);
        assert!(
            out.stderr
                .contains("cannot resolve the host name of any of the 2 brokers"),
            "{}",
            out.stderr
        );
    }
}

each_broker! {
    /// In a list, a broker whose name does not resolve is passed over for the next one.
    fn a_name_that_does_not_resolve_in_a_list_moves_on_to_the_next_broker(broker) {
        let topic = unique_topic("unresolved");
        let urls = ["mqtt://nosuchhost.invalid".to_string(), broker.url()];
        let sub = Proc::subscriber(broker, &["--raw", &topic]);
        let out = run(&mut chat_pub_at(&urls, &["--raw", "-m", "after", &topic]), b"");
        out.expect_code(0);
        assert!(
            out.stderr.contains(
                "cannot resolve the host name 'nosuchhost.invalid': names under .invalid \
                 never resolve (mqtt://nosuchhost.invalid:1883); trying the other brokers"
            ),
            "{}",
            out.stderr
        );
        sub.wait_stdout("after");
    }
}

/// mosquitto only: the embedded broker has no authentication to refuse with.
#[test]
fn refused_credentials_exit_4() {
    if !have_mosquitto() {
        return;
    }
    let broker = Broker::mosquitto_with("allow_anonymous false");
    for version in ["5", "3"] {
        let out = run(
            &mut chat_pub(&broker, &["-V", version, "-m", "x", "t"]),
            b"",
        );
        out.expect_code(4);
        assert!(out.stderr.contains("refused"), "{}", out.stderr);
        let out = run(&mut chat_sub(&broker, &["-V", version, "t"]), b"");
        out.expect_code(4);
    }
}

each_broker! {
    fn broker_from_environment_and_bare_host_port(broker) {
        let topic = unique_topic("env");
        let sub = Proc::subscriber(broker, &["-F", "{text}", "-n", "2", &topic]);
        let bare = format!("127.0.0.1:{}", broker.port);
        run(
            tool("chat-pub")
                .env("CHAT_BROKER", &bare)
                .args(["-m", "via env", &topic]),
            b"",
        )
        .expect_code(0);
        run(
            tool("chat-pub").args(["-b", &bare, "-m", "via flag", &topic]),
            b"",
        )
        .expect_code(0);
        assert_eq!(sub.finish().expect_code(0).lines(), ["via env", "via flag"]);
    }
}

/// -i, -k and -V reach the broker: mosquitto logs "as ID (pN, c1, kSECS)".
#[test]
fn client_id_keepalive_and_protocol_version_reach_the_broker() {
    if !have_mosquitto() {
        return;
    }
    let broker = Broker::start(Kind::Mosquitto);
    // mosquitto 2.0 logs MQTT 3.1.1 as "p2" and MQTT 5 as "p5".
    for (version, level) in [("3", "p2"), ("5", "p5")] {
        let id = format!("custom-id-{version}");
        run(
            &mut chat_pub(
                &broker,
                &["-i", &id, "-k", "17", "-V", version, "-m", "x", "t"],
            ),
            b"",
        )
        .expect_code(0);
        let needle = format!("as {id} ({level}, c1, k17)");
        assert!(
            broker.log().contains(&needle),
            "no {needle:?} in log:\n{}",
            broker.log()
        );
    }
    // Without -i, ids are chat-pub-<random> and differ between runs.
    run(&mut chat_pub(&broker, &["-m", "x", "t"]), b"").expect_code(0);
    run(&mut chat_sub(&broker, &["-W", "0.1", "t"]), b"").expect_code(0);
    let log = broker.log();
    assert!(log.contains(" as chat-pub-"), "{log}");
    assert!(log.contains(" as chat-sub-"), "{log}");
}

#[test]
fn version_flag_prints_the_version() {
    for name in ["chat-pub", "chat-sub"] {
        let out = run(tool(name).arg("--version"), b"");
        out.expect_code(0);
        assert!(
            out.stdout_str().contains(env!("CARGO_PKG_VERSION")),
            "{}",
            out.stdout_str()
        );
    }
}

each_broker! {
    fn verbose_logs_go_to_stderr_never_stdout(broker) {
        let topic = unique_topic("verbose");
        let sub = Proc::subscriber(broker, &["-vv", "-F", "{text}", "-n", "1", &topic]);
        let out = run(
            &mut chat_pub(broker, &["-vvv", "-m", "only this", &topic]),
            b"",
        );
        out.expect_code(0);
        assert!(
            out.stdout.is_empty(),
            "chat-pub stdout: {}",
            out.stdout_str()
        );
        assert!(!out.stderr.is_empty(), "-vvv logged nothing");
        let got = sub.finish();
        assert_eq!(got.expect_code(0).lines(), ["only this"]);
        assert!(got.stderr.contains("chat-sub: "), "{}", got.stderr);
    }
}

each_broker! {
    /// The drain timeout bounds the wait for acknowledgements after EOF: a broker that never
    /// answers (stopped with SIGSTOP) makes chat-pub report the count and exit 1.
    fn drain_timeout_reports_unacknowledged_messages(broker) {
        let mut publisher =
            Proc::spawn(&mut chat_pub(broker, &["-v", "--drain-timeout", "1", "t"]));
        publisher.write(b"before\n");
        // Once the connection is up, freeze the broker.
        publisher.wait_stderr("connected to");
        broker.signal(libc::SIGSTOP);
        publisher.write(b"one\ntwo\n");
        let out = publisher.finish();
        broker.signal(libc::SIGCONT);
        out.expect_code(1);
        assert!(out.stderr.contains("not acknowledged"), "{}", out.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// Shell completions
// ---------------------------------------------------------------------------------------

/// `--completions SHELL` prints a completion script for the tool and exits 0, without a
/// broker or a topic; an unknown shell is a usage error.
#[test]
fn completions() {
    let mut cases = vec![
        (
            bin("chat-pub"),
            "chat-pub",
            "bash",
            vec![
                "--nick",
                "--no-presence",
                "--json",
                "--profile",
                "--config",
                "--no-config",
                "--show-config",
                "--proxy",
                "--user-property",
                "--content-type",
                "--message-expiry",
                "--response-topic",
                "--correlation-data",
            ],
        ),
        (
            bin("chat-sub"),
            "chat-sub",
            "zsh",
            vec![
                "--json",
                "--who",
                "--ignore",
                "--color",
                "--profile",
                "--show-config",
                "--proxy",
            ],
        ),
    ];
    match chat_broker_bin() {
        Some(b) => cases.push((PathBuf::from(b), "chat-broker", "fish", vec!["listen"])),
        None => eprintln!("skipped chat-broker: built without the `broker` feature"),
    }
    for (path, name, shell, flags) in cases {
        let out = run(Command::new(&path).args(["--completions", shell]), b"");
        out.expect_code(0);
        let script = out.stdout_str();
        assert!(script.contains(name), "{name} {shell}:\n{script}");
        for flag in flags {
            assert!(
                script.contains(flag),
                "{name} {shell}: no {flag}:\n{script}"
            );
        }
        assert!(out.stderr.is_empty(), "{}", out.stderr);
        let bad = run(
            Command::new(&path).args(["--completions", "no-such-shell"]),
            b"",
        );
        bad.expect_code(2);
    }
}

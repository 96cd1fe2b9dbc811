//! Helpers of the tests of secure transports and identities (the modules tls, websocket,
//! credentials and authorization): both tools run against one broker URL, one message's
//! round trip, failures that must end at once, and mosquitto configured with a TLS or
//! WebSocket listener.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use super::{Broker, Finished, LONG_CONNECT_TIMEOUT, Pki, Proc, run, s, tool, unique_topic};

/// An address where nothing is served: a tool that got as far as connecting there would
/// exit 3, so exit 2 says a usage error was found before.
pub const NOWHERE: &str = "127.0.0.1:1";

/// A tool's command with `-b URL` and `args`, nothing else.
pub fn client(name: &str, url: &str, args: &[&str]) -> Command {
    let mut c = tool(name);
    c.arg("-b").arg(url).args(args);
    c
}

/// Both tools, ready to run against `url` with `args` on a topic: chat-pub sends one
/// message with `-m` (so it never waits for stdin), chat-sub just subscribes.
pub fn each_tool(url: &str, args: &[&str]) -> [(&'static str, Command); 2] {
    ["chat-pub", "chat-sub"].map(|name| {
        let mut c = client(name, url, args);
        if name == "chat-pub" {
            c.args(["-m", "hello"]);
        }
        c.arg("chat/t");
        (name, c)
    })
}

/// Runs `cmd` and requires it to exit with `code`, with every `needle` in its stderr;
/// returns its output. [`LONG_CONNECT_TIMEOUT`] is added: a tool that retried instead of
/// ending at once would still be running when the test's deadline fails it.
#[track_caller]
pub fn fails_fast(what: &str, mut cmd: Command, code: i32, needles: &[&str]) -> Finished {
    cmd.args(["--connect-timeout", LONG_CONNECT_TIMEOUT]);
    let started = Instant::now();
    let out = run(&mut cmd, b"");
    let took = started.elapsed();
    assert_eq!(
        out.code(),
        Some(code),
        "{what}: expected exit {code}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.stdout_str(),
        out.stderr
    );
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "{what}: stderr does not say {needle:?}:\n{}",
            out.stderr
        );
    }
    let last = out.stderr.trim_end().lines().last().unwrap_or_default();
    eprintln!("{what}: exit {code} in {took:?}: {last}");
    out
}

/// One message from `publisher` to `subscriber`, both already given `-b` and their
/// options: the subscriber (`-v -n 1 -F {text}` added) is started and waited for until
/// it subscribed, then the publisher sends a unique text with `-m`. Both must exit 0
/// and the text must arrive. Returns (chat-pub's, chat-sub's) output.
#[track_caller]
pub fn one_message(mut subscriber: Command, mut publisher: Command) -> (Finished, Finished) {
    let topic = unique_topic("secure");
    let text = format!("text for {topic}");
    subscriber.args(["-v", "-n", "1", "-F", "{text}", &topic]);
    let sub = Proc::spawn(&mut subscriber);
    sub.wait_stderr("subscribed to");
    let published = run(publisher.args(["-m", &text, &topic]), b"");
    published.expect_code(0);
    let received = sub.finish();
    received.expect_code(0);
    assert_eq!(received.lines(), [text], "chat-sub printed");
    (published, received)
}

/// mosquitto with a TLS listener as its main port (`require_certificate` as given).
pub fn tls_broker(pki: &Pki, require_cert: bool, cert: &Path, key: &Path) -> Broker {
    Broker::mosquitto_with(&format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {require_cert}\n",
        s(&pki.ca),
        s(cert),
        s(key)
    ))
}

pub fn mqtts(broker: &Broker) -> String {
    format!("mqtts://localhost:{}", broker.port)
}

/// mosquitto with a ws:// listener on `ports[1]` and a wss:// one on `ports[2]` (and
/// `extra` config lines after them, which are global options).
pub fn websocket_broker(pki: &Pki, extra: &str) -> (Broker, Vec<u16>) {
    let (cert, key) = (s(&pki.server_cert), s(&pki.server_key));
    Broker::mosquitto_custom(2, |p| {
        format!(
            "listener {} 127.0.0.1\nprotocol websockets\n\
             listener {} 127.0.0.1\nprotocol websockets\ncertfile {cert}\nkeyfile {key}\n\
             {extra}",
            p[1], p[2]
        )
    })
}

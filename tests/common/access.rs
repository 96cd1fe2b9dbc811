//! chat-broker's access control, for tests/broker_access.rs: the broker run as a command
//! (`chat-broker passwd`, a start that must fail), password files made by `chat-broker
//! passwd` or by hand in mosquitto's `$6$` format, a client's login flags, and ACL files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha512};

use super::{
    Broker, Finished, PASSWORD, Pki, Proc, TempDir, WRONG_PASSWORD, chat_broker_bin, client,
    each_tool, fails_fast, installed, one_message, readable_file, run, s,
};

/// Bob's password (alice's and watcher's are [`super::PASSWORD`] and
/// [`super::WATCHER_PASSWORD`]): distinctive, so that finding it in any output means it
/// leaked.
pub const BOB_PASSWORD: &str = "Pw-bob-Gd3sV7nQ1xMe";

/// `chat-broker ARGS…` (RUST_LOG unset).
pub fn chat_broker(args: &[&str]) -> Command {
    let mut c = Command::new(chat_broker_bin().expect("built with the broker feature"));
    c.args(args).env_remove("RUST_LOG");
    c
}

/// `chat-broker passwd [FLAGS] FILE USER` with `stdin` (the password, one line).
pub fn passwd(file: &Path, user: &str, flags: &[&str], stdin: &str) -> Finished {
    let mut c = chat_broker(&["passwd"]);
    c.args(flags).arg(file).arg(user);
    run(&mut c, stdin.as_bytes())
}

/// A line of a password file in mosquitto 1.x's `$6$` format: SHA-512 of the password
/// followed by the salt, both in base64 (mosquitto 2 still reads it, writes `$7$`).
pub fn sha512_line(user: &str, password: &str, salt: &[u8]) -> String {
    let mut h = Sha512::new();
    h.update(password.as_bytes());
    h.update(salt);
    let (salt, hash) = (BASE64.encode(salt), BASE64.encode(h.finalize()));
    format!("{user}:$6${salt}${hash}\n")
}

/// One test's users: a password file made by `chat-broker passwd`, a file with each
/// password for the clients' `--password-file`, and other files (the ACL).
pub struct Users {
    dir: TempDir,
    /// The broker's `--password-file`.
    pub passwd: PathBuf,
}

impl Users {
    /// `users` (name, password) in a password file made by `chat-broker passwd`.
    pub fn new(users: &[(&str, &str)]) -> Users {
        let dir = TempDir::new("users");
        let passwd = dir.path().join("passwd");
        let u = Users { dir, passwd };
        for (user, password) in users {
            u.add(user, password);
        }
        u
    }

    /// Adds `user` (or changes their password) with `chat-broker passwd`.
    #[track_caller]
    pub fn add(&self, user: &str, password: &str) {
        passwd(&self.passwd, user, &[], &format!("{password}\n")).expect_code(0);
    }

    /// The flags of a client that logs in as `user` with `password` (from a file).
    pub fn login(&self, user: &str, password: &str) -> Vec<String> {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let file = self.file(&format!("pw-{user}-{n}"), password);
        ["-u", user, "--password-file", &s(&file)]
            .map(String::from)
            .to_vec()
    }

    /// A file with `text` beside the others (an ACL, say), readable by anyone (mosquitto
    /// reads it too in some tests).
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        readable_file(&self.dir.path().join(name), text)
    }

    /// The broker's flags: `--password-file` and, if given, `--acl-file` with `acl`.
    pub fn flags(&self, acl: Option<&str>) -> Vec<String> {
        let mut f = vec!["--password-file".to_string(), s(&self.passwd)];
        if let Some(acl) = acl {
            f.extend(["--acl-file".to_string(), s(&self.file("acl", acl))]);
        }
        f
    }
}

/// `&[String]` as `Vec<&str>`, for the helpers that take `&[&str]`.
pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The end of chat-broker's start line, "listening on ADDR, … (MQTT 3.1.1 and 5)".
pub const LISTENING: &str = "(MQTT 3.1.1 and 5)\n";

/// Starts chat-broker with `args` and waits until it listens (or exited, which fails).
pub fn start_chat_broker(args: &[&str]) -> Proc {
    let p = Proc::spawn(&mut chat_broker(args));
    p.wait_stderr(LISTENING);
    p
}

/// The port in the first `listening on HOST:PORT` of chat-broker's `stderr`.
#[track_caller]
pub fn port_of(stderr: &str, host: &str) -> u16 {
    let rest = stderr.split(&format!("listening on {host}:")).nth(1);
    let digits: String = (rest.unwrap_or_default().chars())
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no port:\n{stderr}"))
}

/// chat-broker with the PKI's server certificate (so that `--tls-listen` and
/// `--ws-listen` serve TLS) and `flags`.
pub fn chat_broker_with_cert(pki: &Pki, flags: &[&str]) -> Broker {
    let (cert, key) = (s(&pki.server_cert), s(&pki.server_key));
    Broker::embedded_with(&[&["--certfile", &cert, "--keyfile", &key], flags].concat())
}

/// `args`, then `more`.
pub fn with(args: &[String], more: &[&str]) -> Vec<String> {
    let mut v = args.to_vec();
    v.extend(more.iter().map(|m| m.to_string()));
    v
}

/// One message from chat-pub to chat-sub, both at `url` with `args` ([`one_message`]).
#[track_caller]
pub fn round_trip(url: &str, args: &[String]) -> (Finished, Finished) {
    let args = strs(args);
    one_message(
        client("chat-sub", url, &args),
        client("chat-pub", url, &args),
    )
}

/// chat-pub with `args` (a login) is refused the connection at once (exit 4), its
/// stderr saying `why`.
#[track_caller]
pub fn login_refused(url: &str, args: &[String], why: &str) -> Finished {
    let mut c = client("chat-pub", url, &strs(args));
    c.args(["-m", "x", "chat/t"]);
    let what = format!("chat-pub {args:?}");
    fails_fast(&what, c, 4, &["refused the connection", why])
}

/// Runs chat-pub (`args`, then `-m TEXT TOPIC` under MQTT 5) and requires exit 4: the
/// broker refused the message (PUBACK 0x87).
#[track_caller]
pub fn publish_refused(url: &str, args: &[&str], topic: &str) {
    let mut c = client("chat-pub", url, args);
    c.args(["-V", "5", "-m", "refused?", topic]);
    let what = format!("chat-pub {args:?} to {topic}");
    fails_fast(
        &what,
        c,
        4,
        &["refused by the broker: not authorized (0x87)"],
    );
}

/// One message (`hello`) on `topic` from a chat-pub with `publisher` flags to a chat-sub
/// with `subscriber` flags, both at `url`.
#[track_caller]
pub fn one_message_on(url: &str, topic: &str, subscriber: &[&str], publisher: &[&str]) {
    let mut sub = client("chat-sub", url, subscriber);
    sub.args(["-v", "-n", "1", "-F", "{topic} {text}", topic]);
    let sub = Proc::spawn(&mut sub);
    sub.wait_stderr("subscribed to");
    let mut publish = client("chat-pub", url, publisher);
    run(publish.args(["-m", "hello", topic]), b"").expect_code(0);
    let received = sub.finish();
    received.expect_code(0);
    assert_eq!(received.lines(), [format!("{topic} hello")]);
}

/// chat-pub --json input: one line per (topic, text).
pub fn json_input(messages: &[(&str, &str)]) -> Vec<u8> {
    let lines = messages.iter().map(|(topic, text)| {
        serde_json::json!({ "topic": topic, "text": text }).to_string() + "\n"
    });
    lines.collect::<String>().into_bytes()
}

/// `mosquitto_pub`/`mosquitto_sub` (`tool`) at 127.0.0.1:`port` with `args`.
pub fn mosquitto_client(tool: &str, port: u16, args: &[&str]) -> Command {
    let mut c = Command::new(tool);
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args);
    c
}

/// chat-pub with `args` at `url` cannot connect: the TLS handshake fails, and it ends at
/// once with exit 3, saying `why`.
#[track_caller]
pub fn tls_refused(url: &str, args: &[&str], why: &str) {
    let mut c = client("chat-pub", url, args);
    c.args(["-m", "x", "chat/t"]);
    fails_fast(
        &format!("chat-pub {args:?}"),
        c,
        3,
        &["cannot connect to", why],
    );
}

/// The flags of a TLS listener that requires a client certificate signed by `ca`.
pub fn mutual_tls(ca: &str) -> Vec<String> {
    let flags = [
        "--tls-listen",
        "127.0.0.1:0",
        "--cafile",
        ca,
        "--require-certificate",
    ];
    flags.map(String::from).to_vec()
}

/// The passwords tests/broker_access.rs looks for in every output.
pub const SECRETS: [&str; 2] = [PASSWORD, WRONG_PASSWORD];

/// The lines of `text` (`what` printed it) that hold a password.
pub fn leaks(what: &str, text: &str) -> Vec<String> {
    let found = text
        .lines()
        .filter(|l| SECRETS.iter().any(|s| l.contains(s)));
    found.map(|l| format!("{what}: {l}")).collect()
}

/// Logins with the right and then a wrong password over each of `urls` (both tools, at
/// -vvv), and mosquitto_pub's on `port` where installed; what every client printed that
/// holds a password.
pub fn logins(users: &Users, urls: &[String], ca: &str, port: u16) -> Vec<String> {
    let mut found = Vec::new();
    for url in urls {
        let tls = match url.starts_with("mqtt://") || url.starts_with("ws://") {
            true => vec!["-vvv"],
            false => vec!["-vvv", "--cafile", ca],
        };
        let right = with(&users.login("alice", PASSWORD), &tls);
        let (p, r) = round_trip(url, &right);
        for (what, out) in [("chat-pub", &p), ("chat-sub", &r)] {
            found.extend(leaks(&format!("{url} {what}"), &out.stderr));
            found.extend(leaks(&format!("{url} {what}"), &out.stdout_str()));
        }
        let wrong = with(&users.login("alice", WRONG_PASSWORD), &tls);
        for (name, cmd) in each_tool(url, &strs(&wrong)) {
            let out = fails_fast(name, cmd, 4, &["bad user name or password"]);
            found.extend(leaks(&format!("{url} {name} refused"), &out.stderr));
        }
    }
    if installed("mosquitto_pub") {
        for password in SECRETS {
            let args = ["-d", "-u", "alice", "-P", password, "-t", "t", "-m", "x"];
            run(&mut mosquitto_client("mosquitto_pub", port, &args), b"");
        }
    }
    found
}

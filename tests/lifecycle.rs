//! The life of a tool around its work (chat-pub(1) DELIVERY and EXIT STATUS, chat-sub(1)
//! RECONNECTION AND SESSIONS): signals drain what was read and end with 130/143, a second
//! signal ends the drain, chat-sub flushes what it received; persistent sessions keep
//! what was published while a subscriber was away; a broker that comes up late is still
//! used; a broker that is down costs a reconnecting tool next to no CPU; and a publisher
//! whose broker stalls stops reading instead of growing.
//!
//! Nothing here sleeps to synchronise: every wait is for a condition (a log line, a pipe
//! drained or full, a thread blocked in read(2), a counter) with a deadline. The tests
//! print what they measured (CPU seconds, attempts, RSS, lines) with `--nocapture`.

use std::fs;
use std::io::{PipeWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;

/// Defines a test per broker kind, as `NAME::embedded` and `NAME::mosquitto`, for tests
/// that place, stop and restart brokers themselves (so they get the kind, not a broker).
macro_rules! each_kind {
    ($(#[$meta:meta])* fn $name:ident($kind:ident) $body:block $($rest:tt)*) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($kind: Kind) $body

            #[test]
            fn embedded() {
                if available(Kind::Embedded) {
                    body(Kind::Embedded);
                }
            }

            #[test]
            fn mosquitto() {
                if available(Kind::Mosquitto) {
                    body(Kind::Mosquitto);
                }
            }
        }
        each_kind! { $($rest)* }
    };
    () => {};
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The capacity of a pipe in bytes.
fn pipe_capacity(fd: &impl AsRawFd) -> usize {
    // SAFETY: F_GETPIPE_SZ only reads the descriptor's state.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) };
    assert!(r > 0, "F_GETPIPE_SZ: {}", std::io::Error::last_os_error());
    r as usize
}

/// What each thread of `pid` is blocked in: (name, first fields of /proc/…/syscall).
fn threads(pid: u32) -> Vec<(String, String)> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .map(|t| {
            let name = fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let call = fs::read_to_string(t.path().join("syscall")).unwrap_or_default();
            let call: Vec<&str> = call.split_whitespace().take(2).collect();
            (name.trim().to_owned(), call.join(" "))
        })
        .collect()
}

/// Whether one of the threads of `pid` is blocked in read(2) on fd 0 (stdin): with the
/// pipe empty, that is a reader that consumed everything and waits for more.
fn blocked_reading_stdin(pid: u32) -> bool {
    let read_fd0 = format!("{} 0x0", libc::SYS_read);
    threads(pid).iter().any(|(_, call)| *call == read_fd0)
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after "(comm) ": state is field 3, utime field 14, stime field 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no memory-safety preconditions.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(per_sec > 0, "sysconf(_SC_CLK_TCK)");
    ticks as f64 / per_sec as f64
}

/// A session name no other test uses.
fn session_name(tag: &str) -> String {
    unique_topic(tag).replace('/', "-")
}

/// Publishes each of `texts` with `chat-pub -q 1 -m …` and checks it exits 0.
#[track_caller]
fn publish(broker: &Broker, extra: &[&str], topic: &str, texts: &[&str]) {
    let mut cmd = chat_pub(broker, &["-q", "1"]);
    cmd.args(extra);
    for t in texts {
        cmd.args(["-m", t]);
    }
    run(cmd.arg(topic), b"").expect_code(0);
}

/// chat-pub at QoS 1 reading from a pipe the test owns (so the test can see how much of
/// it chat-pub has read, and keep stdin open while chat-pub exits).
fn chat_pub_on_pipe(url: &str, extra: &[&str], topic: &str) -> (Proc, PipeWriter) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    let mut cmd = tool("chat-pub");
    cmd.args(["-b", url, "--no-presence", "-v", "-q", "1"])
        .args(extra)
        .arg(topic);
    let publisher = Proc::spawn_with_stdin(&mut cmd, Stdio::from(reader));
    drop(cmd); // the Command holds our copy of the read end
    (publisher, writer)
}

/// A TCP proxy in front of a broker for one client, counting the PUBACKs on the way:
/// those the client sends (a chat-sub at QoS 1 acknowledges what it received) and those
/// the broker sends (a chat-pub at QoS 1 may only exit once it has them all).
struct AckProxy {
    port: u16,
    /// PUBACKs from the client to the broker.
    up: Arc<AtomicUsize>,
    /// PUBACKs from the broker passed on (or being passed on) to the client.
    down: Arc<AtomicUsize>,
    /// `down` when the client ended its side of the connection (usize::MAX until then).
    down_at_client_end: Arc<AtomicUsize>,
}

impl AckProxy {
    fn start(broker: &Broker) -> AckProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let target = broker.port;
        let proxy = AckProxy {
            port,
            up: Arc::default(),
            down: Arc::default(),
            down_at_client_end: Arc::new(AtomicUsize::new(usize::MAX)),
        };
        let (up, down, at_end) = (
            proxy.up.clone(),
            proxy.down.clone(),
            proxy.down_at_client_end.clone(),
        );
        std::thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let upstream = TcpStream::connect(("127.0.0.1", target)).expect("connect broker");
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let (from, to) = (
                upstream.try_clone().expect("clone"),
                client.try_clone().expect("clone"),
            );
            let d = down.clone();
            std::thread::spawn(move || forward_counting_pubacks(from, to, &d));
            forward_counting_pubacks(client, upstream, &up);
            at_end.store(down.load(Ordering::SeqCst), Ordering::SeqCst);
        });
        proxy
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    fn up(&self) -> usize {
        self.up.load(Ordering::SeqCst)
    }

    /// Waits until the client has ended its side; returns how many PUBACKs it had been
    /// given by then.
    #[track_caller]
    fn wait_client_end(&self) -> usize {
        let at_end = || self.down_at_client_end.load(Ordering::SeqCst);
        wait_until(
            "the client ended its connection",
            || at_end() != usize::MAX,
            || {
                format!(
                    "{} PUBACKs passed to the client so far",
                    self.down.load(Ordering::SeqCst)
                )
            },
        );
        at_end()
    }
}

/// Copies `from` to `to` until `from` ends, counting the PUBACK packets passed on.
fn forward_counting_pubacks(mut from: TcpStream, mut to: TcpStream, acks: &AtomicUsize) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Counted before they are passed on: once the receiver has them, so has the count.
        pending.extend_from_slice(&buf[..n]);
        let mut at = 0;
        while let Some(size) = packet_size(&pending[at..]) {
            if pending[at] >> 4 == 4 {
                acks.fetch_add(1, Ordering::SeqCst);
            }
            at += size;
        }
        pending.drain(..at);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The size of the complete MQTT packet at the start of `b`, if it is all there.
fn packet_size(b: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for i in 1..=4 {
        let byte = *b.get(i)?;
        len |= usize::from(byte & 0x7f) << (7 * (i - 1));
        if byte & 0x80 == 0 {
            let size = i + 1 + len;
            return (b.len() >= size).then_some(size);
        }
    }
    panic!("malformed remaining length: {:02x?}", &b[..5]);
}

// ---------------------------------------------------------------------------------------
// 1. Signals (EXIT STATUS: 130 and 143)
// ---------------------------------------------------------------------------------------

/// Lines written to chat-pub while the broker is frozen, in the signal tests. More than
/// a broker may have in flight (mosquitto's receive maximum is 20, chat-pub's own window
/// 1024), so some wait in chat-pub, not on the wire; and few enough for one pipe buffer.
const FROZEN_LINES: usize = 2000;

/// A chat-pub that has read [`FROZEN_LINES`] lines while its broker was frozen.
struct Frozen {
    /// Subscribed (directly) before the freeze.
    sub: Proc,
    /// Connected through `proxy`.
    publisher: Proc,
    /// chat-pub's stdin, still open.
    stdin: PipeWriter,
    proxy: AckProxy,
    topic: String,
    want: Vec<String>,
}

/// Starts a subscriber and a chat-pub on a pipe (through an [`AckProxy`]), freezes the
/// broker, writes [`FROZEN_LINES`] lines and waits until chat-pub has read every byte and
/// waits in read(2) for more.
fn publisher_read_everything_while_broker_frozen(
    broker: &Broker,
    tag: &str,
    extra: &[&str],
) -> Frozen {
    let topic = unique_topic(tag);
    let sub = Proc::subscriber(broker, &["-F", "{text}", &topic]);
    let proxy = AckProxy::start(broker);
    let (publisher, mut stdin) = chat_pub_on_pipe(&proxy.url(), extra, &topic);
    publisher.wait_stderr("connected to");
    broker.signal(libc::SIGSTOP);
    let (input, want) = numbered(1, FROZEN_LINES);
    stdin
        .write_all(input.as_bytes())
        .expect("write to chat-pub");
    let pid = publisher.pid();
    wait_until(
        "chat-pub has read all its input and waits in read(2) for more",
        || unread(&stdin) == 0 && blocked_reading_stdin(pid),
        || {
            format!(
                "unread bytes: {}, threads: {:?}\n--- stderr:\n{}",
                unread(&stdin),
                threads(pid),
                publisher.stderr()
            )
        },
    );
    Frozen {
        sub,
        publisher,
        stdin,
        proxy,
        topic,
        want,
    }
}

/// Waits until chat-pub has taken a signal: its log says so (`interrupted: …`, a warning),
/// or it has exited already.
#[track_caller]
fn wait_signal_taken(publisher: &mut Proc) {
    publisher.wait_until("chat-pub took the signal", |p| {
        p.exited() || p.stderr().contains("interrupted")
    });
}

/// Publishes an `end` line and returns what the subscriber printed before it (the
/// subscriber is stopped with SIGINT; a line after `end` fails the test).
#[track_caller]
fn lines_until_end(broker: &Broker, topic: &str, sub: Proc) -> Vec<String> {
    publish(broker, &[], topic, &["end"]);
    wait_until(
        "the subscriber printed the end line",
        || sub.stdout().ends_with(b"\nend\n") || sub.stdout() == b"end\n",
        || {
            format!(
                "{}\n--- stderr:\n{}",
                String::from_utf8_lossy(&sub.stdout()),
                sub.stderr()
            )
        },
    );
    sub.signal(libc::SIGINT);
    let got = sub.finish();
    got.expect_code(130);
    let mut lines = got.lines();
    assert_eq!(
        lines.pop().as_deref(),
        Some("end"),
        "lines after the end line"
    );
    lines
}

/// SIGINT (130) or SIGTERM (143) while the broker is frozen and stdin is still open: once
/// the broker is back, chat-pub sends every line it had read, waits for every
/// acknowledgement and exits with the signal's status without waiting for EOF, and the
/// subscriber prints every line.
///
/// Fails if chat-pub exits before the broker acknowledged every line (the proxy counts the
/// PUBACKs it was given before it hung up), drops lines that were read but not yet sent
/// (those beyond mosquitto's receive maximum: the subscriber misses them), waits for EOF
/// instead (it never comes: the test holds stdin open until chat-pub has exited), or exits
/// 0/1 instead of 130/143.
fn a_signal_drains_what_was_read(broker: &Broker, sig: i32, status: i32) {
    let Frozen {
        sub,
        mut publisher,
        stdin,
        proxy,
        topic,
        want,
    } = publisher_read_everything_while_broker_frozen(broker, "drain", &[]);
    publisher.signal(sig);
    // The signal is taken while the broker is frozen; only then is the broker let go.
    wait_signal_taken(&mut publisher);
    broker.signal(libc::SIGCONT);
    let out = publisher.finish();
    out.expect_code(status);
    assert!(
        !out.stderr.contains("not acknowledged"),
        "chat-pub gave up on messages:\n{}",
        out.stderr
    );
    drop(stdin); // held open until chat-pub had exited
    let acked = proxy.wait_client_end();
    assert_eq!(
        acked, FROZEN_LINES,
        "chat-pub hung up after {acked} of {FROZEN_LINES} acknowledgements"
    );
    assert_eq!(lines_until_end(broker, &topic, sub), want);
    println!(
        "{:?}: signal {sig}: {FROZEN_LINES} lines read while the broker was frozen, \
         {acked} acknowledged before chat-pub left, all printed, exit {status}",
        broker.kind
    );
}

each_broker! {
    /// SIGINT: drain what was read, exit 130 with stdin still open.
    fn sigint_drains_what_was_read_and_exits_130(broker) {
        a_signal_drains_what_was_read(broker, libc::SIGINT, 130);
    }

    /// SIGTERM: the same, exit 143.
    fn sigterm_drains_what_was_read_and_exits_143(broker) {
        a_signal_drains_what_was_read(broker, libc::SIGTERM, 143);
    }

    /// A second SIGINT while the broker is still frozen ends the drain at once: chat-pub
    /// exits 130 while the broker cannot acknowledge anything, and says how many messages
    /// were not acknowledged (all of them: the broker was frozen before the first line).
    ///
    /// Fails if the first signal ends chat-pub already (no drain), if the second is
    /// ignored (chat-pub would wait for the broker; with a drain timeout of an hour it
    /// cannot exit before the test's deadline), if it exits with another status, or if the
    /// count is missing or wrong.
    fn a_second_sigint_ends_the_drain_and_counts_what_is_lost(broker) {
        let Frozen { mut publisher, stdin, .. } = publisher_read_everything_while_broker_frozen(
            broker,
            "second",
            &["--drain-timeout", "3600"],
        );
        publisher.signal(libc::SIGINT);
        wait_signal_taken(&mut publisher);
        assert!(!publisher.exited(), "one signal ended chat-pub:\n{}", publisher.stderr());
        publisher.signal(libc::SIGINT);
        // Still frozen: only the second signal can end chat-pub now.
        let out = publisher.finish();
        broker.signal(libc::SIGCONT);
        out.expect_code(130);
        let count = format!("{FROZEN_LINES} message(s) not acknowledged");
        assert!(out.stderr.contains(&count), "expected {count:?} in:\n{}", out.stderr);
        drop(stdin);
        println!("{:?}: second SIGINT: exit 130, stderr: {count}", broker.kind);
    }

    /// chat-sub stopped by SIGTERM in the middle of a stream exits 143, and every message
    /// it had received — acknowledged to the broker, counted by a proxy on the way — was
    /// printed: flushed before the exit, in order, no gaps.
    ///
    /// Fails if chat-sub buffers output and leaves without flushing on a signal (fewer
    /// lines printed than acknowledged), exits with another status, or prints out of order.
    fn sigterm_ends_chat_sub_with_143_and_everything_received_printed(broker) {
        let topic = unique_topic("subterm");
        let proxy = AckProxy::start(broker);
        let mut cmd = tool("chat-sub");
        cmd.args(["-b", &proxy.url(), "-v", "-q", "1", "-F", "{text}", &topic]);
        let sub = Proc::spawn(&mut cmd);
        sub.wait_stderr("subscribed to");
        let mut publisher = Proc::spawn(&mut chat_pub(broker, &["-q", "1", &topic]));
        let (input, want) = numbered(1, 3000);
        publisher.write(input.as_bytes());
        // Signal once chat-sub has acknowledged a good part of the stream (not by looking
        // at its stdout: that would only prove what was flushed already).
        wait_until("chat-sub acknowledged 1000 messages", || proxy.up() >= 1000, || {
            format!("{} acknowledged\n--- stderr:\n{}", proxy.up(), sub.stderr())
        });
        sub.signal(libc::SIGTERM);
        let got = sub.finish();
        got.expect_code(143);
        proxy.wait_client_end();
        let acked = proxy.up();
        let lines = got.lines();
        assert!(
            lines.len() >= acked,
            "chat-sub acknowledged {acked} messages but printed only {}",
            lines.len()
        );
        assert!(lines.len() <= want.len(), "more lines than were published");
        assert_eq!(lines, want[..lines.len()], "printed lines are not the stream's prefix");
        publisher.finish().expect_code(0);
        println!(
            "{:?}: SIGTERM after {acked} acknowledgements: exit 143, {} lines printed",
            broker.kind,
            lines.len()
        );
    }
}

// ---------------------------------------------------------------------------------------
// 2. Sessions (chat-sub --session)
// ---------------------------------------------------------------------------------------

/// `chat-sub --session NAME -q 1` prints a few lines, is stopped by SIGINT (130); lines
/// published at QoS 1 while it is away are printed by the next `chat-sub --session NAME`,
/// exactly those, once each: a line published live afterwards comes right after them.
///
/// Fails if the session is not persistent (clean start, or no expiry under MQTT 5: the
/// lines from while it was away never come), if lines printed before are printed again,
/// or if any line is repeated (it would come before the live one).
fn session_keeps_what_was_published_while_away(broker: &Broker, version: &str) {
    let topic = unique_topic("session");
    let name = session_name("session");
    let v = ["-V", version];
    let args = ["-V", version, "--session", &name, "-F", "{text}", &topic];
    let mut first_args = args.to_vec();
    first_args.extend(["-q", "1"]);
    let first = Proc::subscriber(broker, &first_args);
    let before = ["before 1", "before 2", "before 3"];
    publish(broker, &v, &topic, &before);
    assert_eq!(first.wait_lines(3), before);
    first.signal(libc::SIGINT);
    let out = first.finish();
    out.expect_code(130);
    assert_eq!(out.lines(), before, "{}", out.stderr);

    let away = ["away 1", "away 2", "away 3", "away 4", "away 5"];
    publish(broker, &v, &topic, &away);

    let mut cmd = chat_sub(broker, &args);
    cmd.arg("-v");
    let second = Proc::spawn(&mut cmd);
    assert_eq!(second.wait_lines(away.len()), away, "{}", second.stderr());
    publish(broker, &v, &topic, &["live"]);
    let mut want: Vec<&str> = away.to_vec();
    want.push("live");
    assert_eq!(second.wait_lines(want.len()), want, "{}", second.stderr());
    second.signal(libc::SIGINT);
    let got = second.finish();
    got.expect_code(130);
    assert_eq!(got.lines(), want, "{}", got.stderr);
    assert!(got.stderr.contains("session present"), "{}", got.stderr);
    println!(
        "{:?} MQTT {version}: {} lines while away, printed once each after resuming",
        broker.kind,
        away.len()
    );
}

each_broker! {
    fn session_keeps_what_was_published_while_away_mqtt_5(broker) {
        session_keeps_what_was_published_while_away(broker, "5");
    }

    fn session_keeps_what_was_published_while_away_mqtt_3(broker) {
        session_keeps_what_was_published_while_away(broker, "3");
    }
}

/// `--session` names the client id, so `-i` with it is a usage error: exit 2, and nothing
/// reaches the broker (a listener that would see any connection stays untouched).
///
/// Fails if clap's conflict is lost (chat-sub would connect and run).
#[test]
fn session_with_a_client_id_is_a_usage_error() {
    let wire = TcpListener::bind("127.0.0.1:0").expect("bind");
    wire.set_nonblocking(true).expect("nonblocking");
    let url = format!("mqtt://127.0.0.1:{}", wire.local_addr().unwrap().port());
    let out = run(
        tool("chat-sub").args(["-b", &url, "--session", "s", "-i", "x", "t"]),
        b"",
    );
    out.expect_code(2);
    assert!(out.stderr.contains("--session"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout_str());
    assert!(
        wire.accept().is_err(),
        "chat-sub connected despite a usage error"
    );
}

/// A second `chat-sub --session NAME` takes the session over: the first says so and exits
/// 1 rather than take it back for ever, and the second keeps the session and receives.
/// An MQTT 5 broker may say "session taken over" (DISCONNECT 0x8E, as chat-broker does);
/// mosquitto 2.0.11 and chat-broker under 3.1.1 just close the old connection, so the
/// first chat-sub recognises the takeover
/// when the broker closes its resumed session three times in a row before any message
/// arrives (src/tools/subscribe/takeover.rs): the two may trade the session a few times
/// before that, within a second or so.
///
/// Fails if the first keeps fighting (never exits), exits otherwise than 1 with "taken
/// over", or if the second does not end up with the session.
fn a_session_taken_over_ends_the_first_subscriber(kind: Kind, version: &str) {
    let broker = Broker::start(kind);
    let topic = unique_topic("takeover");
    let name = session_name("takeover");
    let args = ["-V", version, "--session", &name, "-F", "{text}", &topic];
    let first = Proc::subscriber(&broker, &args);
    let second = Proc::subscriber(&broker, &args);
    let out = first.finish();
    out.expect_code(1);
    assert!(out.stderr.contains("taken over"), "{}", out.stderr);
    // The second holds the session now: a message published afterwards reaches it.
    publish(&broker, &[], &topic, &["for the second"]);
    assert_eq!(
        second.wait_lines(1),
        ["for the second"],
        "{}",
        second.stderr()
    );
    second.signal(libc::SIGINT);
    second.finish().expect_code(130);
}

#[test]
fn a_session_taken_over_ends_the_first_subscriber_mosquitto() {
    if available(Kind::Mosquitto) {
        a_session_taken_over_ends_the_first_subscriber(Kind::Mosquitto, "5");
        a_session_taken_over_ends_the_first_subscriber(Kind::Mosquitto, "3");
    }
}

#[test]
fn a_session_taken_over_ends_the_first_subscriber_embedded() {
    if available(Kind::Embedded) {
        a_session_taken_over_ends_the_first_subscriber(Kind::Embedded, "5");
        a_session_taken_over_ends_the_first_subscriber(Kind::Embedded, "3");
    }
}

// ---------------------------------------------------------------------------------------
// 3. Startup (--connect-timeout); 4. Backoff (reconnection)
// ---------------------------------------------------------------------------------------

each_kind! {
    /// A broker that comes up within --connect-timeout is used: chat-pub keeps trying a
    /// port nobody listens on (its -vv log shows a failed attempt), a broker starts there,
    /// and chat-pub publishes its retained message and exits 0; a later subscriber gets it.
    ///
    /// Fails if chat-pub gives up after the first refusal (exit 3), stops retrying, or
    /// exits before the broker acknowledged the message (no retained message then).
    fn a_broker_that_comes_up_within_the_connect_timeout_is_used(kind) {
        let port = free_port(); // bound and closed again: nothing listens there now
        let topic = unique_topic("late");
        let mut cmd = tool("chat-pub");
        cmd.args(["-vv", "--connect-timeout", "30", "-r", "-m", "hello", &topic])
            .args(["-b", &format!("127.0.0.1:{port}")]);
        let publisher = Proc::spawn(&mut cmd);
        publisher.wait_stderr(&format!("chat-pub: debug: connecting to mqtt://127.0.0.1:{port}: "));
        let broker = Broker::start_on(kind, port);
        let out = publisher.finish();
        out.expect_code(0);
        let failed = out.stderr.matches("debug: connecting to").count();
        assert!(out.stderr.contains("connected to"), "{}", out.stderr);
        let got = run(&mut chat_sub(&broker, &["-n", "1", "-F", "{text} {retain}", &topic]), b"");
        assert_eq!(got.expect_code(0).lines(), ["hello true"], "{}", got.stderr);
        println!("{kind:?}: {failed} failed attempt(s) before the broker came up; published");
    }

    /// While its broker is down, chat-sub retries with a capped backoff, not in a busy
    /// loop: over at least 3 s of outage and 5 attempts it uses well under 0.5 s of CPU and
    /// makes few attempts; when the broker is back it subscribes again and prints what is
    /// published.
    ///
    /// Fails if reconnection spins (CPU time and attempt count explode), if chat-sub gives
    /// up (exits), or if it does not subscribe again after reconnecting.
    fn a_broker_outage_costs_almost_no_cpu_and_ends_in_a_resubscription(kind) {
        let mut broker = Broker::start(kind);
        let topic = unique_topic("backoff");
        let mut sub = Proc::spawn(&mut chat_sub(&broker, &["-vv", "-F", "{text}", &topic]));
        sub.wait_stderr("subscribed to");
        publish(&broker, &[], &topic, &["before"]);
        assert_eq!(sub.wait_lines(1), ["before"]);
        let pid = sub.pid();
        let attempts = |s: &Proc| s.stderr().matches("chat-sub: debug: connecting to").count();
        assert_eq!(attempts(&sub), 0, "{}", sub.stderr());

        let cpu_before = cpu_seconds(pid);
        broker.stop();
        let down = Instant::now();
        wait_until(
            "chat-sub made 5 attempts over at least 3 s",
            || attempts(&sub) >= 5 && down.elapsed() >= Duration::from_secs(3),
            || sub.stderr(),
        );
        let cpu = cpu_seconds(pid) - cpu_before;
        let (span, tries) = (down.elapsed(), attempts(&sub));
        assert!(!sub.exited(), "chat-sub gave up:\n{}", sub.stderr());
        println!(
            "{kind:?}: broker down {:.1}s: {tries} attempts, {cpu:.2}s of CPU",
            span.as_secs_f64()
        );
        assert!(cpu < 0.5, "chat-sub used {cpu:.2}s of CPU while the broker was down");
        // Fewer than 30; a very slow machine (a long span) may add one a second at most,
        // which a capped backoff never reaches.
        let allowed = 30 + span.as_secs() as usize;
        assert!(tries < allowed, "{tries} attempts in {span:?}:\n{}", sub.stderr());

        broker.start_again();
        wait_until(
            "chat-sub subscribed again",
            || sub.stderr().matches("subscribed to").count() >= 2,
            || sub.stderr(),
        );
        publish(&broker, &[], &topic, &["after"]);
        assert_eq!(sub.wait_lines(2), ["before", "after"]);
    }
}

// ---------------------------------------------------------------------------------------
// 5. Bounded memory (chat-pub(1) DELIVERY)
// ---------------------------------------------------------------------------------------

/// Lines the writer would write if nothing stopped it: 100 MB.
const WANTED_LINES: u64 = 1_000_000;
/// Lines per write(2).
const WRITE_CHUNK: u64 = 64;

/// Line `i` of the memory test: 100 bytes with its newline.
fn hundred_bytes(i: u64) -> String {
    format!("{i:08} {}", "x".repeat(90))
}

each_broker! {
    /// The broker freezes (SIGSTOP) after chat-pub connected, and a writer pours 100-byte
    /// lines into chat-pub's stdin as fast as it can: chat-pub stops reading (the pipe is
    /// full and the writer blocked) after a small part of what the writer wanted, its peak
    /// RSS stays small and its RSS flat while blocked. When the broker is back, the writer
    /// finishes a bounded total and closes stdin, and the subscriber receives exactly the
    /// lines written, in order.
    ///
    /// Fails if chat-pub buffers without bound (the writer is never blocked, or only after
    /// writing much of its 100 MB; the RSS grows), or if it drops lines to keep memory
    /// bounded (the subscriber misses some).
    fn a_stalled_broker_stops_chat_pub_reading_instead_of_growing(broker) {
        let topic = unique_topic("memory");
        let sub = Proc::subscriber(broker, &["-F", "{text}", &topic]);
        let (publisher, stdin) = chat_pub_on_pipe(&broker.url(), &[], &topic);
        publisher.wait_stderr("connected to");
        broker.signal(libc::SIGSTOP);

        let probe = stdin.try_clone().expect("dup the pipe's write end");
        let capacity = pipe_capacity(&probe);
        let written = Arc::new(AtomicU64::new(0));
        let limit = Arc::new(AtomicU64::new(WANTED_LINES));
        let writer = {
            let (written, limit) = (written.clone(), limit.clone());
            let mut stdin = stdin;
            std::thread::spawn(move || {
                let mut next = 1;
                let mut chunk = String::new();
                while next <= limit.load(Ordering::SeqCst) {
                    let last = (next + WRITE_CHUNK - 1).min(limit.load(Ordering::SeqCst));
                    chunk.clear();
                    for i in next..=last {
                        chunk.push_str(&hundred_bytes(i));
                        chunk.push('\n');
                    }
                    if stdin.write_all(chunk.as_bytes()).is_err() {
                        break;
                    }
                    written.store(last, Ordering::SeqCst);
                    next = last + 1;
                }
                written.load(Ordering::SeqCst)
            })
        };

        // Blocked: no progress for a full second, with the pipe (nearly) full. The RSS is
        // read at the start and the end of that second. (A writer that wrote everything
        // ends the wait too, and fails the test below.)
        let pid = publisher.pid();
        let mut last = (u64::MAX, Instant::now(), 0);
        let mut rss = (0, 0);
        wait_until(
            "the writer is blocked on a full pipe",
            || {
                let now = written.load(Ordering::SeqCst);
                if now != last.0 {
                    last = (now, Instant::now(), status_kib(pid, "VmRSS"));
                    return false;
                }
                let still = last.1.elapsed() >= Duration::from_secs(1)
                    && (unread(&probe) >= capacity / 2 || now == WANTED_LINES);
                if still {
                    rss = (last.2, status_kib(pid, "VmRSS"));
                }
                still
            },
            || format!("{} lines written, {} bytes unread", written.load(Ordering::SeqCst), unread(&probe)),
        );
        let blocked_at = written.load(Ordering::SeqCst);
        let peak = status_kib(pid, "VmHWM");
        println!(
            "{:?}: writer blocked after {blocked_at} of {WANTED_LINES} lines ({} KiB); \
             chat-pub VmHWM {peak} KiB, VmRSS {} then {} KiB",
            broker.kind,
            blocked_at * 100 / 1024,
            rss.0,
            rss.1
        );
        assert!(
            blocked_at * 100 < (16 << 20),
            "chat-pub took {blocked_at} lines ({} MiB) from a writer it could not publish for",
            (blocked_at * 100) >> 20
        );
        assert!(peak < 64 * 1024, "chat-pub's peak RSS is {peak} KiB");
        assert!(
            rss.0.abs_diff(rss.1) <= 2 * 1024,
            "chat-pub's RSS moved from {} to {} KiB while blocked",
            rss.0,
            rss.1
        );

        // Let it all through: a bounded total, then EOF.
        limit.store(blocked_at + WRITE_CHUNK + 10_000, Ordering::SeqCst);
        drop(probe);
        broker.signal(libc::SIGCONT);
        let total = writer.join().expect("writer thread") as usize;
        publisher.finish().expect_code(0);
        let lines = lines_until_end(broker, &topic, sub);
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(*line, hundred_bytes(i as u64 + 1), "line {} of {total}", i + 1);
        }
        assert_eq!(lines.len(), total, "lines received of {total} written");
        println!("{:?}: {total} lines written, {total} received in order", broker.kind);
    }
}

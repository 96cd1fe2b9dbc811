//! Test helpers: real brokers on free loopback ports (broker.rs; a NATS cluster in
//! nats.rs; aedes, amqtt and RabbitMQ when installed in foreign.rs), a minimal raw MQTT
//! client that needs nothing installed (mqtt.rs), and the real binaries run as a user
//! would run them, with their output collected and waited on with deadlines.
//!
//! Nothing here sleeps to synchronise: every wait is "until this condition holds, or
//! fail after a generous deadline", and a failing wait prints everything it saw.

#[cfg(feature = "broker")]
mod access;
#[macro_use] // each_broker!
mod broker;
mod foreign;
mod mosquitto_extras;
mod mqtt;
mod nats;
mod pki;
mod procnet;
mod proxy;
mod proxy_servers;
mod room;
mod secure;

#[cfg(feature = "broker")]
pub use access::*;
pub use broker::*;
pub use foreign::*;
pub use mosquitto_extras::*;
pub use mqtt::*;
pub use nats::*;
pub use pki::*;
pub use procnet::*;
pub use proxy::*;
pub use proxy_servers::*;
pub use room::*;
pub use secure::*;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long any single wait may take before the test fails (CI machines are slow).
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A `--connect-timeout` an hour long, far beyond [`DEADLINE`]: a tool given it that
/// exits at all (with status 3, say) did not wait for it, so it ended at once. This is how
/// the tests say "at once" without a bound on how fast the machine is.
pub const LONG_CONNECT_TIMEOUT: &str = "3600";

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        TempDir::under(&std::env::temp_dir(), tag)
    }

    /// A scratch directory in memory (`/dev/shm`) where the system has one, else as
    /// [`TempDir::new`]: for a server that syncs its store to disk, which is slow when the
    /// disk is busy with the other tests running beside it.
    pub fn in_memory(tag: &str) -> TempDir {
        let shm = Path::new("/dev/shm");
        match shm.is_dir() {
            true => TempDir::under(shm, tag),
            false => TempDir::new(tag),
        }
    }

    fn under(base: &Path, tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = base.join(format!(
            "mqttchat-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// kill(2), without depending on a `kill` binary being installed.
pub fn send_signal(pid: u32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(
        r,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// A port that was free a moment ago (the caller retries if it was taken meanwhile).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Polls `cond` until it holds or `limit` has passed, and says whether it held: the one
/// polling loop of the tests. A wait whose failure fails the test is [`wait_until`] (or
/// [`Proc::wait_until`]); this is for the helpers that handle a failure themselves (a
/// server whose port was taken meanwhile is started again on another).
pub fn holds_within(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    // Polling interval: short at first, then at most 50 ms (some conditions run a tool or
    // an MQTT exchange each time).
    let mut pause = Duration::from_millis(1);
    loop {
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= end {
            return false;
        }
        std::thread::sleep(pause.min(end - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Waits until `cond` holds; after [`DEADLINE`] fails the test, saying what it waited for
/// and what `context` shows then.
#[track_caller]
pub fn wait_until(what: &str, cond: impl FnMut() -> bool, context: impl FnOnce() -> String) {
    if !holds_within(DEADLINE, cond) {
        panic!(
            "gave up waiting until {what} ({DEADLINE:?}):\n{}",
            context()
        );
    }
}

/// How long a server started on a free port gets to listen on it.
const LISTEN_WAIT: Duration = Duration::from_secs(10);

/// Waits until `child` itself listens on 127.0.0.1:`port`. A successful connect is not
/// enough: the port was picked by binding and closing it, and another test's server may
/// have taken it in between (then the child fails to bind, and this returns false).
pub fn wait_for_port(port: u16, child: &mut Child) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut exited = false;
    holds_within(LISTEN_WAIT, || {
        if listens(child.id(), addr) {
            return true;
        }
        // e.g. the port was taken after all
        exited = matches!(child.try_wait(), Ok(Some(_)));
        exited
    }) && !exited
}

/// The path of one of our binaries.
pub fn bin(name: &str) -> PathBuf {
    match name {
        "chat-pub" => PathBuf::from(env!("CARGO_BIN_EXE_chat-pub")),
        "chat-sub" => PathBuf::from(env!("CARGO_BIN_EXE_chat-sub")),
        other => panic!("unknown binary {other}"),
    }
}

/// Where the tests say the config file is: nowhere, so that no test reads the
/// developer's own (~/.config/mqttchat/config.toml). tests/profiles.rs writes its own.
pub const NO_CONFIG_HOME: &str = "/nonexistent/mqttchat-tests";

/// A data folder of its own for each command (`$XDG_DATA_HOME/mqttchat`: the identity
/// and the pinned keys of encrypted rooms), under Cargo's temporary folder and never the
/// developer's: each chat-pub has its own identity, each chat-sub its own pins. A test
/// that wants them shared sets XDG_DATA_HOME itself.
pub fn fresh_data_home() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("data")
        .join(format!("{}-{n}", std::process::id()))
}

/// A command for one of our tools with a clean environment (no CHAT_* from the caller,
/// no config file, a data folder of its own).
pub fn tool(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    for var in [
        "CHAT_BROKER",
        "CHAT_NICK",
        "CHAT_USERNAME",
        "CHAT_PASSWORD",
        "CHAT_PROFILE",
        "CHAT_ROOM_SECRET",
        "RUST_LOG",
        "NO_COLOR",
    ] {
        c.env_remove(var);
    }
    c.env("TZ", "UTC").env("XDG_CONFIG_HOME", NO_CONFIG_HOME);
    c.env("XDG_DATA_HOME", fresh_data_home());
    c
}

/// `chat-pub -b BROKER --no-presence ARGS…`: presence (tested in tests/presence.rs) would
/// add join and leave lines to what the other tests compare.
pub fn chat_pub(broker: &Broker, args: &[&str]) -> Command {
    chat_pub_at(&[broker.url()], args)
}

/// `chat-pub -b URL… --no-presence ARGS…`, one `-b` per URL in order (a cluster's nodes).
pub fn chat_pub_at(urls: &[String], args: &[&str]) -> Command {
    let mut c = tool("chat-pub");
    for url in urls {
        c.arg("-b").arg(url);
    }
    c.arg("--no-presence").args(args);
    c
}

/// `chat-sub -b BROKER ARGS…`
pub fn chat_sub(broker: &Broker, args: &[&str]) -> Command {
    chat_sub_at(&[broker.url()], args)
}

/// `chat-sub -b URL… ARGS…`, one `-b` per URL in order.
pub fn chat_sub_at(urls: &[String], args: &[&str]) -> Command {
    let mut c = tool("chat-sub");
    for url in urls {
        c.arg("-b").arg(url);
    }
    c.args(args);
    c
}

/// Bytes a child wrote, filled by a reader thread.
#[derive(Default)]
struct Collected {
    buf: Mutex<(Vec<u8>, bool)>, // (bytes, eof)
    cv: Condvar,
}

impl Collected {
    fn spawn(mut r: impl Read + Send + 'static) -> Arc<Collected> {
        let c = Arc::new(Collected::default());
        let c2 = c.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 65536];
            loop {
                let n = r.read(&mut chunk).unwrap_or(0);
                let mut g = c2.buf.lock().unwrap();
                if n == 0 {
                    g.1 = true;
                    c2.cv.notify_all();
                    return;
                }
                g.0.extend_from_slice(&chunk[..n]);
                c2.cv.notify_all();
            }
        });
        c
    }

    /// Waits until `pred(bytes)` holds or the stream ends; returns whether it held.
    fn wait(&self, timeout: Duration, pred: impl Fn(&[u8]) -> bool) -> bool {
        let end = Instant::now() + timeout;
        let mut g = self.buf.lock().unwrap();
        loop {
            if pred(&g.0) {
                return true;
            }
            let now = Instant::now();
            if g.1 || now >= end {
                return false;
            }
            g = self.cv.wait_timeout(g, end - now).unwrap().0;
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.buf.lock().unwrap().0.clone()
    }

    fn wait_eof(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut g = self.buf.lock().unwrap();
        while !g.1 {
            let now = Instant::now();
            if now >= end {
                return false;
            }
            g = self.cv.wait_timeout(g, end - now).unwrap().0;
        }
        true
    }
}

/// A running tool with its stdout and stderr collected.
pub struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Collected>,
    err: Arc<Collected>,
    what: String,
}

/// How a tool ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn lines(&self) -> Vec<String> {
        self.stdout_str().lines().map(str::to_owned).collect()
    }

    /// Asserts the exit code, printing everything on failure.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit {code}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout_str(),
            self.stderr
        );
        self
    }
}

impl Proc {
    /// Starts `cmd` with stdin piped to the test.
    pub fn spawn(cmd: &mut Command) -> Proc {
        Proc::spawn_with_stdin(cmd, Stdio::piped())
    }

    /// Starts `cmd` with the given stdin (e.g. another process's stdout).
    pub fn spawn_with_stdin(cmd: &mut Command, stdin: Stdio) -> Proc {
        cmd.stdout(Stdio::piped());
        Proc::start(cmd, stdin, None)
    }

    /// Starts `cmd` with stdin piped to the test and stdout where the caller pointed it
    /// (a terminal, say), collected from `stdout`, the other end (the terminal's master).
    pub fn spawn_reading(cmd: &mut Command, stdout: impl Read + Send + 'static) -> Proc {
        Proc::start(cmd, Stdio::piped(), Some(Box::new(stdout)))
    }

    /// Starts `cmd`; its stdout is read from `stdout` if given, else from its pipe.
    fn start(cmd: &mut Command, stdin: Stdio, stdout: Option<Box<dyn Read + Send>>) -> Proc {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(stdin)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let out = match stdout {
            Some(reader) => Collected::spawn(reader),
            None => Collected::spawn(child.stdout.take().expect("stdout")),
        };
        let err = Collected::spawn(child.stderr.take().expect("stderr"));
        let stdin = child.stdin.take();
        Proc {
            child,
            stdin,
            out,
            err,
            what,
        }
    }

    /// Starts `chat-sub -v ARGS` and waits until it has subscribed (its `-v` log says so).
    pub fn subscriber(broker: &Broker, args: &[&str]) -> Proc {
        Proc::subscriber_at(&[broker.url()], args)
    }

    /// [`Proc::subscriber`] with `-b URL` for each of `urls`.
    pub fn subscriber_at(urls: &[String], args: &[&str]) -> Proc {
        let mut cmd = chat_sub_at(urls, args);
        cmd.arg("-v");
        let p = Proc::spawn(&mut cmd);
        p.wait_stderr("subscribed to");
        p
    }

    /// Writes to the child's stdin.
    pub fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(bytes).expect("write to child stdin");
        stdin.flush().expect("flush child stdin");
    }

    /// Waits until the child has read everything written to its stdin (the pipe is empty).
    #[track_caller]
    pub fn wait_stdin_read(&self) {
        let stdin = self.stdin.as_ref().expect("stdin already closed");
        wait_until(
            "the child read everything written to its stdin",
            || unread(stdin) == 0,
            || format!("{}: {} bytes unread", self.what, unread(stdin)),
        );
    }

    /// Hands the child's stdin to the caller (a writer thread that must not block the
    /// test's waits); dropping it is EOF.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("stdin already taken or closed")
    }

    /// Waits until stdout holds at least `n` complete lines; returns all lines so far.
    #[track_caller]
    pub fn wait_lines(&self, n: usize) -> Vec<String> {
        let ok = self
            .out
            .wait(DEADLINE, |b| b.iter().filter(|&&c| c == b'\n').count() >= n);
        let lines: Vec<String> = String::from_utf8_lossy(&self.out.snapshot())
            .lines()
            .map(str::to_owned)
            .collect();
        assert!(
            ok,
            "{}: expected {n} lines, got {}:\n{}\n--- stderr:\n{}",
            self.what,
            lines.len(),
            lines.join("\n"),
            self.stderr()
        );
        lines
    }

    /// Waits until stderr contains `needle`.
    #[track_caller]
    pub fn wait_stderr(&self, needle: &str) {
        let ok = self
            .err
            .wait(DEADLINE, |b| String::from_utf8_lossy(b).contains(needle));
        assert!(
            ok,
            "{}: stderr never said {needle:?}:\n{}",
            self.what,
            self.stderr()
        );
    }

    /// Waits until stdout contains `needle`.
    #[track_caller]
    pub fn wait_stdout(&self, needle: &str) {
        let ok = self
            .out
            .wait(DEADLINE, |b| String::from_utf8_lossy(b).contains(needle));
        assert!(
            ok,
            "{}: stdout never said {needle:?}:\n{}\n--- stderr:\n{}",
            self.what,
            String::from_utf8_lossy(&self.out.snapshot()),
            self.stderr()
        );
    }

    /// Waits until stdout holds `n` bytes or more.
    #[track_caller]
    pub fn wait_bytes(&self, n: usize) -> Vec<u8> {
        let ok = self.out.wait(DEADLINE, |b| b.len() >= n);
        let got = self.out.snapshot();
        assert!(ok, "{}: expected {n} bytes, got {}", self.what, got.len());
        got
    }

    pub fn stdout(&self) -> Vec<u8> {
        self.out.snapshot()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.snapshot()).into_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (without waiting).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// [`wait_until`] `cond` holds of this process (`Proc::exited`, say, which ends a
    /// wait without closing stdin); a failure shows its output.
    #[track_caller]
    pub fn wait_until(&mut self, what: &str, mut cond: impl FnMut(&mut Proc) -> bool) {
        if !holds_within(DEADLINE, || cond(self)) {
            panic!(
                "{}: gave up waiting until {what} ({DEADLINE:?})\n--- stdout:\n{}\n--- stderr:\n{}",
                self.what,
                String::from_utf8_lossy(&self.out.snapshot()),
                self.stderr()
            );
        }
    }

    /// Closes stdin and waits for the exit (killing it after the deadline, which fails).
    #[track_caller]
    pub fn finish(self) -> Finished {
        self.finish_within(DEADLINE)
    }

    /// [`Proc::finish`] with a deadline of its own (for brokers that take their time, such
    /// as a cluster electing new leaders after a node died).
    #[track_caller]
    pub fn finish_within(mut self, deadline: Duration) -> Finished {
        self.stdin = None;
        let mut status = None;
        holds_within(deadline, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        let Some(status) = status else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "{} did not exit within {deadline:?}\n--- stdout:\n{}\n--- stderr:\n{}",
                self.what,
                String::from_utf8_lossy(&self.out.snapshot()),
                self.stderr()
            );
        };
        self.out.wait_eof(DEADLINE);
        self.err.wait_eof(DEADLINE);
        Finished {
            status,
            stdout: self.out.snapshot(),
            stderr: self.stderr(),
        }
    }

    /// Sends a signal (`libc::SIGINT`, `SIGTERM`, …) to the process.
    pub fn signal(&self, sig: i32) {
        send_signal(self.child.id(), sig);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to completion with `input` on stdin (written from a thread, so a tool
/// that does not read stdin cannot deadlock the test).
#[track_caller]
pub fn run(cmd: &mut Command, input: &[u8]) -> Finished {
    let mut p = Proc::spawn(cmd);
    if let Some(mut stdin) = p.stdin.take() {
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    p.finish()
}

/// A topic no other test uses.
pub fn unique_topic(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "test/{tag}/{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `n` numbered lines, `seq=00000001` …, as stdin text and as the expected output.
pub fn numbered(from: usize, to: usize) -> (String, Vec<String>) {
    let lines: Vec<String> = (from..=to).map(|i| format!("seq={i:08}")).collect();
    (lines.join("\n") + "\n", lines)
}

/// Checks that `got` is exactly `want`: every line once, in order.
#[track_caller]
pub fn assert_exactly_once_in_order(got: &[String], want: &[String]) {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        panic!(
            "line {} differs: got {:?}, expected {:?} (got {} lines, expected {})",
            i + 1,
            got[i],
            want[i],
            got.len(),
            want.len()
        );
    }
    assert_eq!(got.len(), want.len(), "lines lost or repeated");
}

/// Runs the command `make` builds (a tool that exits by itself) until its stdout is
/// `want`: for state that reaches a broker's other nodes, or its retained store, a
/// moment after the publisher was acknowledged.
#[track_caller]
pub fn eventually_prints(mut make: impl FnMut() -> Command, want: &str) {
    let last = std::cell::RefCell::new(None);
    wait_until(
        &format!("it printed {want:?}"),
        || {
            let out = run(&mut make(), b"");
            let done = out.stdout_str() == want;
            *last.borrow_mut() = Some(out);
            done
        },
        || match last.take() {
            Some(out) => format!(
                "stdout {:?} (exit {:?})\n--- stderr:\n{}",
                out.stdout_str(),
                out.code(),
                out.stderr
            ),
            None => String::new(),
        },
    );
}

/// Parses JSON lines, failing with the offending line.
#[track_caller]
pub fn json_lines(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

// Checks of what a user sees.

/// Checks that `line` starts with `HH:MM:SS ` and returns what follows.
#[track_caller]
pub fn after_clock(line: &str) -> &str {
    let b = line.as_bytes();
    let clock_ok = b.len() >= 9
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
        && b[2] == b':'
        && b[5] == b':'
        && b[8] == b' ';
    assert!(clock_ok, "no 'HH:MM:SS ' at the start of {line:?}");
    &line[9..]
}

/// Whether a terminal could act on `c` (the characters chat-sub(1) OUTPUT escapes): C0,
/// DEL, C1, the Unicode Bidi_Control characters, and the line and paragraph separators.
pub fn is_terminal_control(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}'
        | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

/// Bytes written into a pipe and not yet read by its reader (FIONREAD works on either
/// end of a Linux pipe).
pub fn unread(fd: &impl std::os::fd::AsRawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is valid.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(r, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    n as usize
}

/// Checks that `stderr` counts the `lines` written while no broker answered as "N
/// {said}". The line before them reached the subscriber; its acknowledgement may still
/// have been on its way back when the connection was cut, so N may be one more.
#[track_caller]
pub fn assert_unacknowledged(stderr: &str, said: &str, lines: usize) {
    let counted = stderr.lines().find_map(|l| {
        l.split_once(&format!(" {said}"))?
            .0
            .rsplit(' ')
            .next()?
            .parse()
            .ok()
    });
    assert!(
        counted == Some(lines) || counted == Some(lines + 1),
        "expected '{lines} {said}' on stderr:\n{stderr}"
    );
}

/// A `VmHWM`/`VmRSS`-style field of /proc/PID/status, in KiB.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

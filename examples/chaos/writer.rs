//! A writer: numbered lines fed to chat-pub at a steady rate, in sessions. Each session
//! is one chat-pub run: stdin closed at its end, and its exit status tells whether the
//! broker acknowledged every line of it (exit 0). The long-lived writer keeps one
//! chat-pub for the whole run, through every fault; the others start a new one every
//! 5–40 s, so that chat-pub's start, drain and exit meet the faults too.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::check::Session;
use crate::proc::{Sampler, code, signal, spawn, wait_until};
use crate::rng::Rng;

/// How chat-pub waits for acknowledgements after EOF; a broker down for a while is
/// waited for.
pub const DRAIN_TIMEOUT_S: u64 = 60;

/// How long a chat-pub that starts while the brokers are down (a cluster without a
/// quorum) tries before it gives up with exit 3: the harness waits for them longer than
/// the default 10 s, so that fewer lines end up indeterminate.
const CONNECT_TIMEOUT_S: &str = "30";

/// What one writer does.
pub struct Writer {
    pub index: usize,
    pub topic: String,
    pub urls: Vec<String>,
    pub chat_pub: PathBuf,
    pub qos: u8,
    /// Lines a second.
    pub rate: u32,
    /// Bytes of filler after the number, so that a message is not trivially small.
    pub size: usize,
    /// One chat-pub for the whole run.
    pub long: bool,
    /// More arguments for chat-pub (`--pub-arg`).
    pub extra: Vec<String>,
    pub log: PathBuf,
    /// The pid of its chat-pub of the moment (0 between two), for the harness to end a
    /// hung one.
    pub pid: Arc<AtomicU32>,
}

impl Writer {
    pub fn nick(&self) -> String {
        format!("w{}", self.index)
    }

    /// Writes until `stop`, then ends its session; returns every session. `fed` counts
    /// the lines written so far (for progress).
    pub fn run(
        &self,
        mut rng: Rng,
        stop: &AtomicBool,
        fed: &AtomicU64,
        sampler: &Arc<Sampler>,
    ) -> io::Result<Vec<Session>> {
        let mut sessions = Vec::new();
        let mut next = 1u64;
        while !stop.load(Ordering::SeqCst) {
            let length = if self.long {
                Duration::MAX
            } else {
                rng.millis(5_000, 40_000)
            };
            let first = next;
            let code = self.session(length, &mut next, stop, fed, sampler)?;
            if next > first {
                sessions.push(Session {
                    first,
                    last: next - 1,
                    acked: code == 0,
                    code,
                });
            }
        }
        Ok(sessions)
    }

    /// One chat-pub run: lines from `next` on, for `length` or until `stop`; its exit code.
    fn session(
        &self,
        length: Duration,
        next: &mut u64,
        stop: &AtomicBool,
        fed: &AtomicU64,
        sampler: &Arc<Sampler>,
    ) -> io::Result<i32> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        writeln!(log, "--- session from line {next}")?;
        let mut cmd = Command::new(&self.chat_pub);
        for url in &self.urls {
            cmd.args(["-b", url]);
        }
        cmd.args([
            "-q",
            &self.qos.to_string(),
            "-k",
            "5",
            "--nick",
            &self.nick(),
        ])
        .args(["--drain-timeout", &DRAIN_TIMEOUT_S.to_string()])
        .args(["--connect-timeout", CONNECT_TIMEOUT_S])
        .args(&self.extra)
        .arg(&self.topic)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log);
        let mut child = spawn(&mut cmd)?;
        let role = if self.long {
            format!("writer {} (one chat-pub)", self.nick())
        } else {
            format!("writer {}", self.nick())
        };
        sampler.watch(&role, child.id());
        self.pid.store(child.id(), Ordering::SeqCst);
        let mut stdin = child.stdin.take().expect("piped stdin");
        let start = Instant::now();
        let period = Duration::from_secs_f64(1.0 / f64::from(self.rate));
        let mut due = start;
        let filler = "x".repeat(self.size);
        while !stop.load(Ordering::SeqCst) && start.elapsed() < length {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            } else if now - due > Duration::from_secs(1) {
                // Behind (chat-pub stopped reading): no burst to catch up.
                due = now;
            }
            due += period;
            // A write that fails means chat-pub ended (its exit status says why); the
            // line was not fed, so it is not counted.
            if writeln!(stdin, "{next} {filler}").is_err() {
                break;
            }
            *next += 1;
            fed.fetch_add(1, Ordering::Relaxed);
        }
        drop(stdin);
        let deadline = Instant::now() + Duration::from_secs(DRAIN_TIMEOUT_S + 30);
        let status = match wait_until(&mut child, deadline) {
            Some(status) => status,
            None => {
                signal(child.id(), libc::SIGKILL);
                child.wait()?
            }
        };
        self.pid.store(0, Ordering::SeqCst);
        Ok(code(status))
    }
}

//! A reader: one `chat-sub --session NAME --json` for the whole run, its output parsed as
//! it comes into what each writer's lines it printed, in order. A reader that exits
//! during the run is a finding (chat-sub retries forever); it is started again on the same
//! session, and the exit is reported.
//!
//! The reference reader is mosquitto_sub with a persistent session on one node: another
//! client's view of the same broker under the same faults, to tell a loss of the broker
//! from one of chat-sub. It prints each envelope as it came (no de-duplication, so its
//! QoS 1 duplicates are expected).

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::check::Printed;
use crate::proc::{Sampler, code, signal, spawn, wait_until, which};

/// One reader process and what it printed.
pub struct Reader {
    /// "reader r0", or "reference mosquitto_sub".
    pub role: String,
    /// Its session name: the client id the broker knows it by.
    pub session: String,
    cmd_args: Vec<String>,
    program: PathBuf,
    shape: Shape,
    log: PathBuf,
    child: Child,
    pub printed: Arc<Mutex<Printed>>,
    thread: Option<JoinHandle<()>>,
    /// Exits during the run: code and the end of its stderr.
    pub exits: Vec<(i32, String)>,
}

impl Reader {
    /// Starts chat-sub on `shape`'s topics with session `session`, logging to `log`.
    pub fn start(
        index: usize,
        chat_sub: PathBuf,
        urls: &[String],
        session: &str,
        shape: &Shape,
        log: PathBuf,
        sampler: &Sampler,
    ) -> io::Result<Reader> {
        let filter = format!("{}/#", shape.base);
        let mut cmd_args: Vec<String> = Vec::new();
        for url in urls {
            cmd_args.extend(["-b".into(), url.clone()]);
        }
        cmd_args.extend(
            [
                "-v",
                "--json",
                "-q",
                "1",
                "-k",
                "5",
                "--session",
                session,
                &filter,
            ]
            .map(String::from),
        );
        let role = format!("reader r{index}");
        let how = (chat_sub, cmd_args, shape.clone());
        Reader::launched(role, session, how, log, sampler)
    }

    /// Starts mosquitto_sub on `url` with a persistent session `session`.
    pub fn reference(
        url: &str,
        session: &str,
        shape: &Shape,
        log: PathBuf,
        sampler: &Sampler,
    ) -> io::Result<Reader> {
        let filter = format!("{}/#", shape.base);
        let program = which("mosquitto_sub")
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "mosquitto_sub not found"))?;
        let port = url.rsplit(':').next().unwrap_or_default();
        // stdbuf: mosquitto_sub's stdout is a pipe, block-buffered by stdio otherwise.
        let args = [
            &program.display().to_string(),
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "-c",
            "-i",
            session,
            "-q",
            "1",
            "-k",
            "5",
            "-d",
            "-t",
            &filter,
        ];
        let cmd_args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let role = "reference mosquitto_sub".to_string();
        let stdbuf = which("stdbuf").ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "stdbuf (coreutils) not found")
        })?;
        let cmd_args = ["-oL".to_string()].into_iter().chain(cmd_args).collect();
        Reader::launched(
            role,
            session,
            (stdbuf, cmd_args, shape.clone()),
            log,
            sampler,
        )
    }

    fn launched(
        role: String,
        session: &str,
        (program, cmd_args, shape): (PathBuf, Vec<String>, Shape),
        log: PathBuf,
        sampler: &Sampler,
    ) -> io::Result<Reader> {
        let printed: Arc<Mutex<Printed>> = Arc::default();
        let (child, thread) = launch(&program, &cmd_args, &log, &printed, &shape)?;
        sampler.watch(&role, child.id());
        Ok(Reader {
            role,
            session: session.to_string(),
            cmd_args,
            program,
            shape,
            log,
            child,
            printed,
            thread: Some(thread),
            exits: Vec::new(),
        })
    }

    /// Waits until it says it subscribed (its stderr, with -v).
    pub fn wait_ready(&self, deadline: Instant) -> bool {
        while Instant::now() < deadline {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains("subscribed to") || log.contains("received SUBACK") {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Starts it again if it exited, keeping what it printed; true if it had.
    pub fn revive(&mut self, sampler: &Sampler) -> io::Result<bool> {
        let Ok(Some(status)) = self.child.try_wait() else {
            return Ok(false);
        };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        self.exits.push((code(status), tail.join(" | ")));
        let (child, thread) = launch(
            &self.program,
            &self.cmd_args,
            &self.log,
            &self.printed,
            &self.shape,
        )?;
        sampler.watch(&self.role, child.id());
        self.child = child;
        self.thread = Some(thread);
        Ok(true)
    }

    /// Stops it (SIGTERM, then SIGKILL) and waits for the last of its output.
    pub fn stop(&mut self) {
        signal(self.child.id(), libc::SIGTERM);
        if wait_until(&mut self.child, Instant::now() + Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the reader and a thread that parses its stdout into `printed` (mosquitto_sub's
/// debug lines go to the log).
fn launch(
    program: &PathBuf,
    args: &[String],
    log: &PathBuf,
    printed: &Arc<Mutex<Printed>>,
    shape: &Shape,
) -> io::Result<(Child, JoinHandle<()>)> {
    let mut err = OpenOptions::new().create(true).append(true).open(log)?;
    writeln!(err, "--- {} started", program.display())?;
    let mut debug = err.try_clone()?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err);
    let mut child = spawn(&mut cmd)?;
    let out = child.stdout.take().expect("piped stdout");
    let (printed, shape) = (printed.clone(), shape.clone());
    let thread = thread::spawn(move || {
        let mut out = BufReader::new(out);
        let mut bytes = Vec::new();
        // Bytes, not lines of UTF-8: a line that is not is a finding, not the end.
        while matches!(out.read_until(b'\n', &mut bytes), Ok(n) if n > 0) {
            let line = String::from_utf8_lossy(&bytes)
                .trim_end_matches('\n')
                .to_string();
            bytes.clear();
            if line.starts_with("Client ") || line.starts_with("Subscribed (mid") {
                let _ = writeln!(debug, "{line}");
                continue;
            }
            let mut p = printed.lock().unwrap_or_else(|e| e.into_inner());
            match parse(&line, Some(&shape)) {
                Line::Message(w, n) => p.by_writer.entry(w).or_default().push(n),
                Line::Presence => {}
                Line::Strange => p.strange.push(line),
            }
        }
    });
    Ok((child, thread))
}

/// What every writer's line looks like: topic `BASE/wN`, text `N ` and `filler` x's.
#[derive(Debug, Clone)]
pub struct Shape {
    pub base: String,
    pub filler: usize,
}

/// One line chat-sub printed.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// Writer `wN`'s line number: `from` is `wN`, `text` starts with the number.
    Message(usize, u64),
    /// A join or leave (a writer's chat-pub coming and going), not a message.
    Presence,
    /// Anything else: no writer wrote it.
    Strange,
}

/// What one JSON line chat-sub printed (or one envelope) is. With `shape`, a message
/// whose text or topic (when it has one) is not exactly its writer's is strange.
pub fn parse(line: &str, shape: Option<&Shape>) -> Line {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        return Line::Strange;
    };
    if let Some(event) = v.get("event") {
        return match event.as_str() {
            Some("join" | "leave") => Line::Presence,
            _ => Line::Strange,
        };
    }
    let message = || {
        let from = v.get("from")?.as_str()?;
        let w = from.strip_prefix('w')?.parse().ok()?;
        let text = v.get("text")?.as_str()?;
        let n = text.split(' ').next()?.parse().ok()?;
        if let Some(shape) = shape {
            let whole = format!("{n} {}", "x".repeat(shape.filler));
            let topic = v.get("topic").and_then(|t| t.as_str());
            let right_topic = topic.is_none_or(|t| t == format!("{}/w{w}", shape.base));
            if text != whole || !right_topic {
                return None;
            }
        }
        Some(Line::Message(w, n))
    };
    message().unwrap_or(Line::Strange)
}

#[cfg(test)]
mod tests {
    use super::{Line, Shape, parse};

    #[test]
    fn a_line_names_its_writer_and_number() {
        let line = r#"{"topic":"c/w1","from":"w1","text":"42 xxxx","ts":"t","id":"i","qos":1}"#;
        assert_eq!(parse(line, None), Line::Message(1, 42));
        let join = r#"{"event":"join","from":"w1","topic":"c/w1","ts":"t"}"#;
        assert_eq!(parse(join, None), Line::Presence);
        let other = r#"{"event":"rejected","from":"w1","topic":"c/w1","ts":"t"}"#;
        assert_eq!(parse(other, None), Line::Strange);
        assert_eq!(parse(r#"{"from":"bob","text":"42"}"#, None), Line::Strange);
        assert_eq!(
            parse(r#"{"from":"w1","text":"hello"}"#, None),
            Line::Strange
        );
        assert_eq!(parse("not json", None), Line::Strange);
    }

    #[test]
    fn with_a_shape_the_whole_text_and_the_topic_must_be_the_writers() {
        let shape = Shape {
            base: "c".into(),
            filler: 4,
        };
        let line = |topic: &str, text: &str| {
            let l = format!(r#"{{"topic":"{topic}","from":"w1","text":"{text}","id":"i"}}"#);
            parse(&l, Some(&shape))
        };
        assert_eq!(line("c/w1", "42 xxxx"), Line::Message(1, 42));
        assert_eq!(line("c/w1", "42 xx"), Line::Strange, "cut short");
        assert_eq!(
            line("c/w2", "42 xxxx"),
            Line::Strange,
            "another writer's topic"
        );
        let envelope = r#"{"id":"i","from":"w1","ts":"t","text":"42 xxxx"}"#;
        assert_eq!(parse(envelope, Some(&shape)), Line::Message(1, 42));
    }
}

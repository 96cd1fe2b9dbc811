//! Where a scenario runs: a thread in a network namespace of its own (only `lo`, with
//! 127.0.0.1 and the scenario's extra addresses), a fresh HOME and work directory, and
//! README lines run by bash in process groups of their own.

use super::markdown::{self, Block};
use super::output::{report, stdout};
use crate::common::{
    Finished, Kind, Proc, TempDir, available, have_program, holds_within, tools_required,
    wait_until,
};
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How often a probe is published while a subscriber is not ready yet.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// What a scenario needs besides the namespace: `chat-broker` (not built with
/// `--no-default-features`) or a program CI installs (`jq`, `openssl`, `man`).
pub type Needs = &'static [&'static str];

/// Runs the scenario `name` (README's block marked `<!-- test: NAME -->`) on a thread in
/// a network namespace of its own with `addrs` on `lo`, and re-raises its panic.
pub fn run_scenario(name: &str, addrs: &[&'static str], needs: Needs, body: fn(&Sandbox, &Block)) {
    if !["ip"].iter().chain(needs).all(|&n| need(n)) {
        return;
    }
    let block = markdown::block(name);
    let addrs = addrs.to_vec();
    let tag = name.to_string();
    let thread = std::thread::Builder::new()
        .name(format!("readme {name}"))
        .spawn(move || {
            private_network(&addrs)?;
            body(&Sandbox::new(&tag), &block);
            Ok::<(), String>(())
        })
        .expect("spawn the scenario's thread");
    match thread.join() {
        Ok(Ok(())) => {}
        Ok(Err(why)) if tools_required() => {
            panic!("README examples need a network namespace of their own (CI is set): {why}")
        }
        Ok(Err(why)) => eprintln!(
            "skipped: README example {name}: no network namespace of its own ({why}); \
             it needs root (CAP_SYS_ADMIN), as in CI"
        ),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn need(what: &str) -> bool {
    match what {
        "chat-broker" => available(Kind::Embedded),
        "ip" => have_program("ip", "apt-get install -y iproute2"),
        "man" => have_program("man", "apt-get install -y man-db"),
        "paho-mqtt" => crate::dialect::have_paho(),
        other => have_program(other, &format!("apt-get install -y {other}")),
    }
}

/// Moves this thread into a new network namespace (network namespaces are per thread in
/// Linux: the rest of the test process keeps the machine's network) and brings up `lo`
/// with `addrs`. Processes spawned from this thread, and threads it starts, inherit it.
fn private_network(addrs: &[&str]) -> Result<(), String> {
    // SAFETY: unshare takes no pointers; CLONE_NEWNET changes only this thread's namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("unshare(CLONE_NEWNET): {e}"));
    }
    ip(&["link", "set", "lo", "up"]);
    for addr in addrs {
        ip(&["addr", "add", &format!("{addr}/32"), "dev", "lo"]);
    }
    Ok(())
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One scenario's surroundings: its HOME, its work directory and its PATH.
pub struct Sandbox {
    home: TempDir,
    work: TempDir,
    path: OsString,
}

impl Sandbox {
    fn new(tag: &str) -> Sandbox {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::iter::once(bin_dir()).chain(std::env::split_paths(&path));
        Sandbox {
            home: TempDir::new(&format!("readme-{tag}-home")),
            work: TempDir::new(&format!("readme-{tag}-work")),
            path: std::env::join_paths(dirs).expect("PATH"),
        }
    }

    /// HOME, where `~/.config/mqttchat/…` lands.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The current directory of README lines and harness commands.
    pub fn work(&self) -> &Path {
        self.work.path()
    }

    /// A harness command: `TOOL ARGS` (chat-pub, chat-sub or chat-broker of this build)
    /// with the scenario's environment, in the work directory.
    pub fn command(&self, tool: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin_dir().join(tool));
        cmd.args(args);
        self.environment(&mut cmd, self.work());
        cmd
    }

    /// The environment of a user who installed the tools: everything inherited but what
    /// would change them (CHAT_*, NO_COLOR, RUST_LOG), `USER=tester`, our HOME and PATH.
    fn environment(&self, cmd: &mut Command, dir: &Path) {
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("CHAT_") {
                cmd.env_remove(var);
            }
        }
        // The config file is the fresh HOME's (~/.config/mqttchat/config.toml), never the
        // developer's.
        cmd.env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .env_remove("XDG_CONFIG_HOME");
        cmd.env("HOME", self.home()).env("USER", "tester");
        cmd.env("PATH", &self.path).current_dir(dir);
    }

    /// A README line as a user types it, `bash -c LINE` in `dir`, in a process group of
    /// its own so that a pipeline is signalled as a whole.
    pub fn line_in(&self, dir: &Path, line: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(line).process_group(0);
        self.environment(&mut cmd, dir);
        cmd
    }

    /// A README line started in the work directory, stdin piped from the test.
    pub fn start(&self, line: &str) -> Running {
        Running::new(Proc::spawn(&mut self.line_in(self.work(), line)))
    }

    /// [`Sandbox::start`] with stdout on a terminal, as in the user's terminal (where
    /// programs such as jq flush each line; into a pipe they hold their output until exit).
    pub fn start_on_terminal(&self, line: &str) -> Running {
        let (master, slave) = terminal();
        let mut cmd = self.line_in(self.work(), line);
        cmd.stdout(Stdio::from(slave));
        // `cmd` holds the terminal's slave side until dropped: the master reads the end of
        // the output (EIO) only once no one but the child has it open.
        let proc = Proc::spawn_reading(&mut cmd, master);
        drop(cmd);
        Running::new(proc)
    }

    /// Runs a README line (a command made by [`Sandbox::line_in`]) to its end, with
    /// `input` on stdin.
    #[track_caller]
    pub fn run_line(&self, mut line: Command, input: &[u8]) -> Finished {
        let mut running = Running::new(Proc::spawn(&mut line));
        let mut stdin = running.take_stdin();
        let input = input.to_vec();
        // From a thread: a line that does not read stdin must not block the test.
        std::thread::spawn(move || stdin.write_all(&input));
        running.finish()
    }

    /// Runs a README line in the work directory to its end, with `input` on stdin.
    #[track_caller]
    pub fn run(&self, line: &str, input: &[u8]) -> Finished {
        self.run_line(self.line_in(self.work(), line), input)
    }

    /// Runs a harness command to its end (stdin empty) and checks that it exits 0.
    #[track_caller]
    pub fn harness(&self, tool: &str, args: &[&str]) -> Finished {
        let out = crate::common::run(&mut self.command(tool, args), b"");
        out.expect_code(0);
        out
    }

    /// A probe, or any one-shot message of the harness: `chat-pub -m TEXT ARGS…` (ARGS
    /// end with the topic).
    pub fn chat_pub_m(&self, text: &str, args: &[&str]) -> Command {
        let mut cmd = self.command("chat-pub", &["-m", text]);
        cmd.args(args);
        cmd
    }

    /// A harness chat-sub, `chat-sub ARGS…`, running until dropped.
    pub fn subscriber(&self, args: &[&str]) -> Proc {
        Proc::spawn(&mut self.command("chat-sub", args))
    }

    /// A harness chat-broker, `chat-broker --listen ADDR`, once it listens.
    pub fn broker(&self, addr: &str) -> Proc {
        // The README's hosts are LAN addresses: a broker there lets anyone in on purpose.
        let args = ["--listen", addr, "--allow-anonymous"];
        let broker = Proc::spawn(&mut self.command("chat-broker", &args));
        broker.wait_stderr(&format!("chat-broker: listening on {addr} "));
        broker
    }

    /// A README line that starts chat-broker, once it says it listens on `addr` (read from
    /// its stderr: /proc/net shows the test process's namespace, not this thread's).
    pub fn start_broker(&self, line: &str, addr: &str) -> Running {
        let broker = self.start(line);
        broker.wait_stderr(&format!("chat-broker: listening on {addr} "));
        broker
    }

    /// Makes `subscribers` ready: publishes probes (`publish(n)` is the harness command
    /// for probe n, e.g. `chat-pub -m probe-N TOPIC`) about every 100 ms until each
    /// subscriber's stdout contains its needle (a subscriber that printed a probe has
    /// subscribed: what is published from now on reaches it).
    #[track_caller]
    pub fn probe(&self, subscribers: &[(&Proc, &str)], mut publish: impl FnMut(u32) -> Command) {
        let ready = || subscribers.iter().all(|(p, s)| stdout(p).contains(s));
        let mut n = 0;
        wait_until(
            "every subscriber printed a probe",
            || {
                n += 1;
                crate::common::run(&mut publish(n), b"").expect_code(0);
                holds_within(PROBE_INTERVAL, ready)
            },
            || {
                let each = subscribers
                    .iter()
                    .map(|(p, needle)| format!("waiting for {needle:?} in:\n{}", report(p, &[])));
                each.collect::<Vec<_>>().join("\n")
            },
        );
    }
}

/// The directory of the binaries built for this test run (chat-pub, chat-sub and, with
/// the `broker` feature, chat-broker): first in PATH, as after `cargo install`.
fn bin_dir() -> PathBuf {
    let chat_pub = Path::new(env!("CARGO_BIN_EXE_chat-pub"));
    chat_pub.parent().expect("binary directory").to_path_buf()
}

/// A README line running in its own process group; dropping it kills the whole group
/// (a pipeline's every process, not only bash).
pub struct Running {
    proc: Option<Proc>,
    pgid: u32,
}

impl Running {
    fn new(proc: Proc) -> Running {
        let pgid = proc.pid();
        Running {
            proc: Some(proc),
            pgid,
        }
    }

    /// Sends `sig` to every process of the line (Ctrl-C in its terminal is SIGINT to
    /// its process group).
    pub fn signal_group(&self, sig: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        let r = unsafe { libc::kill(-(self.pgid as libc::pid_t), sig) };
        assert_eq!(
            r,
            0,
            "kill(-{}, {sig}): {}",
            self.pgid,
            std::io::Error::last_os_error()
        );
    }

    /// Closes stdin and waits for the line to end (see [`Proc::finish`]).
    #[track_caller]
    pub fn finish(mut self) -> Finished {
        self.proc.take().expect("running").finish()
    }

    /// Sends `sig` to the line's process group and checks that it ends with `code`.
    #[track_caller]
    pub fn stop(self, sig: i32, code: i32) -> Finished {
        self.signal_group(sig);
        let out = self.finish();
        out.expect_code(code);
        out
    }
}

impl Deref for Running {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        self.proc.as_ref().expect("running")
    }
}

impl DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Proc {
        self.proc.as_mut().expect("running")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only while the line's leader is not reaped: its pid, and so the group's id, is
        // still ours. After `finish` it may belong to a process of another test.
        if self.proc.is_some() {
            // SAFETY: as in signal_group; the group may be gone already (ESRCH is fine).
            unsafe { libc::kill(-(self.pgid as libc::pid_t), libc::SIGKILL) };
        }
    }
}

/// A pseudo-terminal: (master, slave). Output processing is off, so the master reads
/// exactly the bytes written (no `\n` turned into `\r\n`). Both ends are close-on-exec,
/// so children other tests spawn meanwhile do not inherit them.
fn terminal() -> (File, File) {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    let os = |what: &str| panic!("{what}: {}", std::io::Error::last_os_error());
    // SAFETY: posix_openpt takes no pointers; a non-negative result is a new descriptor
    // that nothing else owns.
    let master = match unsafe { libc::posix_openpt(flags) } {
        // SAFETY: fd was just opened and is owned by nothing else.
        fd if fd >= 0 => unsafe { OwnedFd::from_raw_fd(fd) },
        _ => os("posix_openpt"),
    };
    let m = master.as_raw_fd();
    let mut name = [0 as libc::c_char; 256];
    // SAFETY: m is an open terminal master; ptsname_r writes at most name.len() bytes.
    let ok = unsafe {
        libc::grantpt(m) == 0
            && libc::unlockpt(m) == 0
            && libc::ptsname_r(m, name.as_mut_ptr(), name.len()) == 0
    };
    if !ok {
        os("grantpt/unlockpt/ptsname_r");
    }
    // SAFETY: name is NUL-terminated by ptsname_r; a non-negative result is ours.
    let slave = match unsafe { libc::open(name.as_ptr(), flags) } {
        // SAFETY: fd was just opened and is owned by nothing else.
        fd if fd >= 0 => unsafe { OwnedFd::from_raw_fd(fd) },
        _ => os("open the terminal's slave side"),
    };
    // SAFETY: termios is plain data, filled by tcgetattr before use.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(slave.as_raw_fd(), &mut t) != 0 {
            os("tcgetattr");
        }
        t.c_oflag &= !libc::OPOST;
        if libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t) != 0 {
            os("tcsetattr");
        }
    }
    (File::from(master), File::from(slave))
}

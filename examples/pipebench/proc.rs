//! Child processes, reaped by a thread of their own with wait4(2): the exact exit time,
//! the exit status, and the process's peak RSS and CPU time.
//!
//! Peak RSS needs care. `ru_maxrss` is the largest resident set the process ever had,
//! and that includes the memory image it was started from: a child made with vfork (what
//! `Command::spawn` normally uses, through posix_spawn) shares the harness's memory until
//! it execs and inherits the harness's own peak. A real fork gives the child a copy with
//! only the harness's *current* private pages. So every child here is started with a
//! fork (a `pre_exec` hook makes std fork), and the harness keeps little in memory; what
//! is left shows as the floor that `floor_kib` measures with `/bin/true`.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, ChildStdout, Command};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// How long `stop` waits after each signal before the next, stronger one.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How a process ended, from wait4(2).
#[derive(Clone, Copy, Debug)]
pub struct Exit {
    pub at: Instant,
    /// The exit code, or 128 + the signal that ended it.
    pub code: i32,
    pub maxrss_kib: u64,
    /// User plus system time, its waited-for children included.
    pub cpu_s: f64,
}

/// A started process. Dropping it stops it (SIGINT, SIGTERM, SIGKILL).
pub struct Proc {
    pub pid: i32,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    exit: Option<Exit>,
    reaped: Receiver<Exit>,
}

impl Proc {
    /// Starts `cmd` with a fork (see the module comment). The child gets SIGKILL if the
    /// harness dies first, so nothing outlives an interrupted run.
    pub fn spawn(cmd: &mut Command) -> io::Result<Proc> {
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pid = child.id() as i32;
        let (tx, reaped) = mpsc::channel();
        thread::spawn(move || {
            if let Some(exit) = reap(pid) {
                let _ = tx.send(exit);
            }
        });
        // `child` is never waited on through std: the reaper thread owns the pid.
        Ok(Proc {
            pid,
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            exit: None,
            reaped,
        })
    }

    /// The exit, if the process has ended.
    pub fn exited(&mut self) -> Option<Exit> {
        if self.exit.is_none() {
            self.exit = self.reaped.try_recv().ok();
        }
        self.exit
    }

    /// Waits for the process to end until `deadline`.
    pub fn wait_until(&mut self, deadline: Instant) -> Option<Exit> {
        if self.exit.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            self.exit = self.reaped.recv_timeout(left).ok();
        }
        self.exit
    }

    /// Interrupts the process like Ctrl-C, then escalates to SIGTERM and SIGKILL.
    pub fn stop(&mut self) -> Option<Exit> {
        self.stdin = None;
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGKILL] {
            if self.exited().is_some() {
                break;
            }
            // SAFETY: plain kill(2); the pid is ours and not yet reaped.
            unsafe { libc::kill(self.pid, sig) };
            self.wait_until(Instant::now() + STOP_GRACE);
        }
        self.exit
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Blocks in wait4 until `pid` ends.
fn reap(pid: i32) -> Option<Exit> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: the pointers are valid for the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
    let at = Instant::now();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(Exit {
        at,
        code,
        maxrss_kib: ru.ru_maxrss as u64,
        cpu_s: secs(ru.ru_utime) + secs(ru.ru_stime),
    })
}

/// The peak RSS a process that does nothing (`/bin/true`) shows when started this way:
/// the part of every figure that is the harness's, not the tool's.
pub fn floor_kib() -> Option<u64> {
    let mut p = Proc::spawn(&mut Command::new("true")).ok()?;
    p.wait_until(Instant::now() + Duration::from_secs(5))
        .map(|e| e.maxrss_kib)
}

/// The full path of `name` in PATH (or /usr/sbin and /sbin, where mosquitto lives).
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

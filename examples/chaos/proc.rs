//! Child processes that die with the harness, and the sampler that watches the memory
//! and open files of every process of a run.
//!
//! The sampler reads /proc/PID/status (VmRSS) and counts /proc/PID/fd once a second for
//! every process it was told of. A role ("reader r0", "broker") may have several lives
//! (a broker killed and started again, a writer's chat-pub runs); each life keeps its
//! first sample after the warm-up, its last one, and its peaks.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Starts `cmd`; the child gets SIGKILL if the harness dies first, so nothing outlives an
/// interrupted run.
///
/// PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process:
/// a broker started again by a lane of the nemesis would die with the lane. So every
/// child is forked by one thread that lives as long as the harness.
pub fn spawn(cmd: &mut Command) -> io::Result<Child> {
    type Job = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        thread::spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(fork(&mut cmd));
            }
        });
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    let taken = std::mem::replace(cmd, Command::new("true"));
    let sent = spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((taken, reply));
    sent.map_err(|_| io::Error::other("the spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

fn fork(cmd: &mut Command) -> io::Result<Child> {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Sends `sig` to process `pid` (never to a group: 0 and values that read as negative
/// are refused).
pub fn signal(pid: u32, sig: i32) {
    if pid == 0 || pid > i32::MAX as u32 {
        return;
    }
    // SAFETY: plain kill(2) on a child of ours.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Waits until `child` exits or `deadline` passes.
pub fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The exit code, or 128 + the signal that ended it.
pub fn code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The full path of `name` in PATH (or /usr/sbin and /sbin, where mosquitto lives).
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// One sample: resident set (KiB) and open file descriptors.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Sample {
    pub at_s: f64,
    pub rss_kib: u64,
    pub fds: u64,
}

/// One process's life as the sampler saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Life {
    pub role: String,
    pub pid: u32,
    pub born_s: f64,
    /// The first sample after the warm-up (or after birth, if born later).
    pub start: Option<Sample>,
    pub end: Option<Sample>,
    pub max_rss_kib: u64,
    pub max_fds: u64,
    #[serde(skip)]
    alive: bool,
}

/// Watches processes until stopped.
pub struct Sampler {
    lives: Arc<Mutex<Vec<Life>>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    t0: Instant,
}

impl Sampler {
    /// Samples every second; a life's start sample is its first one at least `warmup`
    /// after the sampler started (and after its birth).
    pub fn start(warmup: Duration) -> Sampler {
        let lives: Arc<Mutex<Vec<Life>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let t0 = Instant::now();
        let (l, s) = (lives.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let now = t0.elapsed().as_secs_f64();
                let mut lives = l.lock().unwrap_or_else(|e| e.into_inner());
                for life in lives.iter_mut().filter(|l| l.alive) {
                    match read(life.pid, now) {
                        Some(sample) => {
                            life.max_rss_kib = life.max_rss_kib.max(sample.rss_kib);
                            life.max_fds = life.max_fds.max(sample.fds);
                            if life.start.is_none() && now >= warmup.as_secs_f64() {
                                life.start = Some(sample);
                            }
                            life.end = Some(sample);
                        }
                        None => life.alive = false,
                    }
                }
                drop(lives);
                thread::sleep(Duration::from_secs(1));
            }
        });
        Sampler {
            lives,
            stop,
            thread: Mutex::new(Some(thread)),
            t0,
        }
    }

    /// Watches `pid` as a new life of `role`.
    pub fn watch(&self, role: &str, pid: u32) {
        let mut lives = self.lives.lock().unwrap_or_else(|e| e.into_inner());
        lives.push(Life {
            role: role.to_string(),
            pid,
            born_s: self.t0.elapsed().as_secs_f64(),
            start: None,
            end: None,
            max_rss_kib: 0,
            max_fds: 0,
            alive: true,
        });
    }

    /// Stops sampling and returns every life.
    pub fn finish(&self) -> Vec<Life> {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
        let lives = self.lives.lock().unwrap_or_else(|e| e.into_inner());
        lives.clone()
    }
}

/// A sample of `pid` now, or None once it is gone (or a zombie).
fn read(pid: u32, at_s: f64) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    if field("State:").is_some_and(|s| s.starts_with('Z')) {
        return None;
    }
    let rss_kib = field("VmRSS:")?
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample { at_s, rss_kib, fds })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_of_this_process_has_memory_and_files() {
        let s = read(std::process::id(), 0.0).expect("this process");
        assert!(s.rss_kib > 0 && s.fds >= 3, "{s:?}");
        assert!(read(u32::MAX - 1, 0.0).is_none());
    }
}

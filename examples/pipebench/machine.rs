//! What the figures were measured on: the machine, the tools' versions, and how busy the
//! CPUs were with other work.

use std::fs;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use serde::Serialize;

use crate::broker::mosquitto_version;

#[derive(Serialize, Debug, Default)]
pub struct Meta {
    pub date: String,
    pub host: String,
    pub os: String,
    pub kernel: String,
    pub cpu: String,
    pub cpus: usize,
    pub mosquitto: String,
    pub paho: Option<String>,
    pub command: String,
    /// The brokers the pairs went through, their ports, and with `--tls` what a rustls
    /// client agreed with each.
    pub brokers: Vec<String>,
    /// Fraction of all CPU time not idle in the second before the run, and after it.
    pub cpu_busy_before: Option<f64>,
    pub cpu_busy_after: Option<f64>,
    /// Peak RSS of a process that does nothing, started the way the tools are.
    pub rss_floor_kib: Option<u64>,
    pub elapsed_s: f64,
    pub skipped: Vec<String>,
}

fn read(path: &str) -> String {
    fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn field(text: &str, sep: char, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.split_once(sep))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

impl Meta {
    pub fn new() -> Meta {
        let cpuinfo = read("/proc/cpuinfo");
        Meta {
            date: chrono::Local::now().format("%Y-%m-%d %H:%M %Z").to_string(),
            host: read("/proc/sys/kernel/hostname"),
            os: field(&read("/etc/os-release"), '=', "PRETTY_NAME").unwrap_or_default(),
            kernel: read("/proc/sys/kernel/osrelease"),
            cpu: field(&cpuinfo, ':', "model name").unwrap_or_default(),
            cpus: thread::available_parallelism().map_or(1, |n| n.get()),
            mosquitto: mosquitto_version(),
            paho: paho_version(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            ..Meta::default()
        }
    }

    /// The machine, and how busy it is before the run starts.
    pub fn before_run(skipped: Vec<String>) -> Meta {
        let busy = cpu_busy(Duration::from_secs(1));
        if busy.is_some_and(|b| b > 0.2) {
            eprintln!(
                "pipebench: warning: the CPUs are busy with other work; it shows in the figures"
            );
        }
        Meta {
            skipped,
            cpu_busy_before: busy,
            rss_floor_kib: crate::proc::floor_kib(),
            ..Meta::new()
        }
    }
}

/// paho-mqtt's version, if `python3` can import it.
pub fn paho_version() -> Option<String> {
    let script = "import paho.mqtt; print(paho.mqtt.__version__)";
    let out = Command::new("python3")
        .args(["-c", script])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !version.is_empty()).then_some(version)
}

/// (all, idle) jiffies of all CPUs so far.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0); // idle + iowait
    Some((ticks.iter().sum(), idle))
}

/// Clock ticks per second, the unit of /proc/stat and /proc/PID/stat.
fn ticks_per_s() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 { n as f64 } else { 100.0 }
}

/// Seconds of CPU all processes spent in user and system mode so far, every CPU
/// together (interrupt, softirq and steal time left out, as no process's own CPU time
/// counts them).
fn all_processes_cpu() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = (stat.lines().next()?.split_whitespace().skip(1))
        .filter_map(|t| t.parse().ok())
        .collect();
    let (user, nice, system) = (ticks.first()?, ticks.get(1)?, ticks.get(2)?);
    Some((user + nice + system) as f64 / ticks_per_s())
}

/// A process's CPU time so far (user + system, all its threads), from /proc.
pub fn pid_cpu(pid: i32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis, the fields from the 3rd (state) on.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / ticks_per_s())
}

/// The harness's own CPU time so far (every thread; not its children).
fn own_cpu() -> f64 {
    // SAFETY: rusage is plain old data; getrusage fills it in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// CPU time counters at the start of a run, to tell afterwards how much CPU processes
/// other than the run's own (its tools, the brokers, the harness) took meanwhile: a
/// build on the other core shows in it, run by run.
pub struct CpuMark {
    all: f64,
    own: f64,
    brokers: f64,
}

impl CpuMark {
    pub fn now(brokers: &[i32]) -> Option<CpuMark> {
        Some(CpuMark {
            all: all_processes_cpu()?,
            own: own_cpu(),
            brokers: brokers.iter().map(|&p| pid_cpu(p)).sum::<Option<f64>>()?,
        })
    }

    /// Seconds of CPU that others took since the mark, given the run's tools' CPU time
    /// (from wait4). The counters tick at 100 Hz: a few hundredths either way is noise.
    pub fn others(&self, brokers: &[i32], tools: f64) -> Option<f64> {
        let later = CpuMark::now(brokers)?;
        let ours = (later.own - self.own) + (later.brokers - self.brokers) + tools;
        Some((later.all - self.all) - ours)
    }
}

/// The fraction of CPU time spent on something over the next `over`.
pub fn cpu_busy(over: Duration) -> Option<f64> {
    let (all0, idle0) = cpu_ticks()?;
    thread::sleep(over);
    let (all1, idle1) = cpu_ticks()?;
    let all = all1.saturating_sub(all0).max(1);
    Some(1.0 - idle1.saturating_sub(idle0) as f64 / all as f64)
}

/// Waits until the CPUs were under 10 % busy for a second, for at most `most`.
pub fn wait_idle(most: Duration) {
    let until = std::time::Instant::now() + most;
    while cpu_busy(Duration::from_secs(1)).is_some_and(|b| b > 0.1)
        && std::time::Instant::now() < until
    {}
}

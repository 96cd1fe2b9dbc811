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

/// The fraction of CPU time spent on something over the next `over`.
pub fn cpu_busy(over: Duration) -> Option<f64> {
    let (all0, idle0) = cpu_ticks()?;
    thread::sleep(over);
    let (all1, idle1) = cpu_ticks()?;
    let all = all1.saturating_sub(all0).max(1);
    Some(1.0 - idle1.saturating_sub(idle0) as f64 / all as f64)
}

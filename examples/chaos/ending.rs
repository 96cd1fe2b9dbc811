//! How a run ends: readers that exited started again, every fault healed, the readers
//! given time to print what was acknowledged, each judged, and the report written.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::capture::Sent;
use crate::check::{self, Session, Verdict};
use crate::proc::{self, Sampler};
use crate::proxy;
use crate::reader::Reader;
use crate::report::Report;
use crate::setup::{self, Setup};

/// Starts again every reader that exited, noting the exit.
pub fn revive(readers: &mut [Reader], sampler: &Sampler, exits: &mut Vec<String>) {
    for r in readers {
        match r.revive(sampler) {
            Ok(true) => {
                let (code, tail) = r.exits.last().cloned().unwrap_or_default();
                let line = format!("{} exited {code}: {tail}", r.role);
                eprintln!("chaos: {line}");
                exits.push(line);
            }
            Ok(false) => {}
            Err(e) => exits.push(format!("{} could not be started again: {e}", r.role)),
        }
    }
}

/// Every node running, resumed, connected and reachable again.
pub fn heal(setup: &Arc<Mutex<Setup>>) -> Result<(), String> {
    let mut s = setup.lock().unwrap_or_else(|e| e.into_inner());
    s.heal().map_err(|e| format!("healing partitions: {e}"))?;
    for i in 0..s.nodes() {
        s.proxy(i).set(proxy::Fault::None);
        if let Some(pid) = s.pid(i) {
            proc::signal(pid, libc::SIGCONT);
        }
        s.restart(i).map_err(|e| format!("node {i}: {e}"))?;
    }
    for i in 0..s.nodes() {
        if !setup::wait_serving(s.serving_probe(i)) {
            return Err(format!("node {i} does not serve again after the faults"));
        }
    }
    Ok(())
}

/// How long readers may print nothing new before the wait for them ends: longer than a
/// broker's redelivery of unacknowledged messages (NATS's `ack_wait`, 30 s).
const QUIET: Duration = Duration::from_secs(45);

/// A writer's thread, and the pid of its chat-pub of the moment (0 between two).
pub type WriterThread = (
    thread::JoinHandle<std::io::Result<Vec<Session>>>,
    Arc<std::sync::atomic::AtomicU32>,
);

/// Waits for every writer to end its chat-pub run (already told to stop). A chat-pub that
/// neither reads nor exits within its drain timeout and a minute more is killed, which
/// ends its writer; each run that ended otherwise than 0 (done), 1 (a line not
/// acknowledged, said on stderr) or 3 (no broker within --connect-timeout) is a failure:
/// a crash, a signal, a hang.
pub fn finish_writers(
    writers: Vec<WriterThread>,
) -> Result<(Vec<Vec<Session>>, Vec<String>), String> {
    let deadline = Instant::now() + Duration::from_secs(crate::writer::DRAIN_TIMEOUT_S + 60);
    let (mut sessions, mut failures) = (Vec::new(), Vec::new());
    for (w, (thread, pid)) in writers.into_iter().enumerate() {
        while !thread.is_finished() {
            let pid = pid.load(std::sync::atomic::Ordering::SeqCst);
            // pid 0 (between two runs) would signal the harness's own process group.
            if Instant::now() > deadline && pid != 0 {
                failures.push(format!("writer w{w}: chat-pub {pid} hung; killed"));
                proc::signal(pid, libc::SIGKILL);
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let s = thread
            .join()
            .map_err(|_| format!("writer {w} panicked"))?
            .map_err(|e| format!("writer {w}: {e}"))?;
        for run in s.iter().filter(|r| ![0, 1, 3].contains(&r.code)) {
            let (first, last, code) = (run.first, run.last, run.code);
            failures.push(format!(
                "writer w{w}: chat-pub of lines {first}–{last} exited {code}"
            ));
        }
        sessions.push(s);
    }
    for f in &failures {
        eprintln!("chaos: {f}");
    }
    Ok((sessions, failures))
}

/// How long the readers are kept once they printed every acknowledged line: repeats come
/// late (a broker's redelivery after its `ack_wait`), and a repeat printed is a finding.
const LINGER: Duration = Duration::from_secs(35);

/// Waits until every reader printed every acknowledged line and [`LINGER`] more, or
/// nothing new came for [`QUIET`], or `settle` seconds passed.
pub fn settle(
    readers: &mut [Reader],
    sessions: &[Vec<Session>],
    settle: u64,
    sampler: &Sampler,
    exits: &mut Vec<String>,
) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(settle);
    let mut last = (u64::MAX, Instant::now());
    while Instant::now() < deadline {
        revive(readers, sampler, exits);
        let missing: u64 = readers
            .iter()
            .map(|r| {
                let printed = r.printed.lock().unwrap_or_else(|e| e.into_inner());
                check::missing(sessions, &printed)
            })
            .sum();
        if missing == 0 {
            eprintln!("chaos: every line arrived; the readers stay {LINGER:?} for repeats");
            let until = Instant::now() + LINGER;
            while Instant::now() < until {
                revive(readers, sampler, exits);
                thread::sleep(Duration::from_millis(200));
            }
            break;
        }
        if missing != last.0 {
            last = (missing, Instant::now());
        } else if last.1.elapsed() > QUIET {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "chaos: readers settled in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// Writes the JSON report; removes the run's directory when every promise held, keeps
/// it (and says where) otherwise.
pub fn finish(report: &Report, json: Option<&Path>, dir: &Path, keep: bool) -> Result<(), String> {
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    for line in &report.notes {
        eprintln!("chaos: note: {line}");
    }
    for m in &report.memory {
        eprintln!(
            "chaos: {:<28} lives {:>4}  RSS {:>7} → {:>7} KiB (max {:>7})  files {:>3} → {:>3} (max {:>3}){}",
            m.role,
            m.lives,
            m.start_rss_kib,
            m.end_rss_kib,
            m.max_rss_kib,
            m.start_fds,
            m.end_fds,
            m.max_fds,
            if m.flat() { "" } else { "  NOT FLAT" }
        );
    }
    // A chat-pub run that did not exit 0 counts as indeterminate; its log says why.
    let unfinished: Vec<String> = (report.sessions.iter().enumerate())
        .flat_map(|(w, runs)| runs.iter().filter(|r| r.code != 0).map(move |r| (w, r)))
        .map(|(w, r)| format!("w{w} lines {}–{} exited {}", r.first, r.last, r.code))
        .collect();
    if !unfinished.is_empty() {
        eprintln!(
            "chaos: chat-pub runs that did not exit 0 (see writerN.log): {}",
            unfinished.join("; ")
        );
    }
    if report.clean() && !keep && unfinished.is_empty() {
        let _ = std::fs::remove_dir_all(dir);
    } else {
        eprintln!("chaos: the logs of this run are in {}", dir.display());
    }
    Ok(())
}

/// Each reader's verdict; with the captures (`sent`), what of it was the broker's. Says
/// what each lost (up to 20 lines) and the first lines no writer wrote.
pub fn judge(readers: &[Reader], sessions: &[Vec<Session>], sent: Option<&Sent>) -> Vec<Verdict> {
    let judge_one = |r: &Reader| {
        let printed = r.printed.lock().unwrap_or_else(|e| e.into_inner());
        let mut v = check::check(sessions, &printed);
        if let Some(sent) = sent {
            let seen = sent.get(&r.session);
            let n = seen.map_or(0, |s| s.delivered.len());
            eprintln!("chaos: the broker delivered {} lines to {}", n, r.role);
            if seen.is_some_and(|s| s.dropped_its_session) {
                eprintln!(
                    "chaos: {} started clean or unsubscribed: nothing excused",
                    r.role
                );
            }
            check::attribute(&mut v, sessions, &printed, seen);
        }
        let lost = check::lost_lines(sessions, &printed, 20);
        if !lost.is_empty() {
            let lines: Vec<String> = lost.iter().map(|(w, n)| format!("w{w}:{n}")).collect();
            eprintln!("chaos: {} lost {}", r.role, lines.join(" "));
        }
        for line in printed.strange.iter().take(3) {
            eprintln!("chaos: {} printed a line no writer wrote: {line}", r.role);
        }
        v
    };
    readers.iter().map(judge_one).collect()
}

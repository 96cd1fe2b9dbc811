//! chaos: writers and readers through a broker set-up for a given time while a nemesis
//! injects faults, then a check of every line, in the manner of Jepsen.
//!
//! - P writers: chat-pub, fed numbered lines at a steady rate (writer.rs);
//! - S readers: `chat-sub --session NAME --json`, one each for the whole run (reader.rs);
//! - the nemesis: kill -9 and restart, SIGSTOP/SIGCONT, and through a proxy in front of
//!   each node cuts, resets, delays, bandwidth limits and half-open links; on the NATS
//!   cluster, partitions between nodes in network namespaces (nemesis.rs, setup.rs);
//! - the checker: every line acknowledged to a writer (its chat-pub exited 0), in every
//!   reader, was it lost, printed twice, out of order, or printed without being written
//!   (check.rs); and the RSS and open files of every process across the run (proc.rs).
//!
//! The seed is printed and `--seed` repeats a run's choices. Prints progress and every
//! fault on stderr, a Markdown table row on stdout, everything with `--json FILE`. Exits 0
//! when every promise held, 1 when one did not (the run's directory is kept then), 2 on a
//! harness failure.
//!
//!     cargo build --release --bins --examples
//!     target/release/examples/chaos --setup chat-broker --duration 3600

mod capture;
mod check;
mod ending;
mod nats;
mod nemesis;
mod netns;
mod proc;
mod proxy;
mod reader;
mod report;
mod rng;
mod setup;
mod writer;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;

use check::Verdict;
use nemesis::{Fault, Nemesis};
use proc::Sampler;
use reader::{Reader, Shape};
use report::Report;
use rng::Rng;
use setup::{Kind, Setup};
use writer::Writer;

/// Writers and readers through a broker under faults; every acknowledged line checked
#[derive(Parser, Debug)]
struct Args {
    /// The broker set-up
    #[arg(long, value_enum)]
    setup: Kind,
    /// Seconds of faults (writing goes on through them; the check follows)
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// chat-pub writers (the first keeps one chat-pub for the whole run)
    #[arg(long, default_value_t = 3)]
    writers: usize,
    /// chat-sub readers, each with a session of its own
    #[arg(long, default_value_t = 2)]
    readers: usize,
    /// Lines a second, per writer
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    rate: u32,
    /// Bytes of filler per line
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// QoS of the writers (1 or 2)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    qos: u8,
    /// Faults the nemesis may inject [default: every one the set-up allows]
    #[arg(long, value_enum, value_delimiter = ',')]
    faults: Vec<Fault>,
    /// Seconds between two kills (0: kills go into the mixed lane instead)
    #[arg(long, default_value_t = 5)]
    kill_every: u64,
    /// Mean seconds between two of the other faults
    #[arg(long, default_value_t = 5)]
    interval: u64,
    /// Seed of every random choice [default: from the clock]; printed
    #[arg(long)]
    seed: Option<u64>,
    /// Longest wait after the last write for the readers to catch up, in seconds
    #[arg(long, default_value_t = 180)]
    settle: u64,
    /// Where chat-pub, chat-sub and chat-broker are [default: beside this program's build]
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Also read with mosquitto_sub (a persistent session on the last node): another
    /// client's view, to tell the broker's losses from chat-sub's
    #[arg(long)]
    reference: bool,
    /// Keep the bytes of every connection through the proxies in the run's directory
    /// (capture/nodeN/connM-up, -down; the directory is kept), and tell each reader's
    /// lost lines apart: never sent to it by the broker, or sent and not printed
    #[arg(long)]
    capture: bool,
    /// For a broker that loses or reorders acknowledged messages by itself: lines it never
    /// delivered to a reader, and reorderings, are counted but do not fail the run
    /// (implies --capture)
    #[arg(long)]
    broker_may_lose: bool,
    /// One more argument for every chat-pub, e.g. --pub-arg=--no-presence (repeatable)
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub_arg: Vec<String>,
    /// A line for the NATS nodes' `mqtt` block, e.g. 'consumer_replicas: 3' (repeatable)
    #[arg(long, value_name = "SETTING")]
    nats_mqtt: Vec<String>,
    /// Write everything the run found to FILE as JSON
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            print!("{}", report.table());
            if report.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("chaos: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<Report, String> {
    let seed = args.seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        t.map_or(1, |d| d.as_nanos() as u64) ^ u64::from(std::process::id())
    });
    eprintln!("chaos: seed {seed} (--seed {seed} repeats these choices)");
    let rng = Rng::new(seed);
    let bins = match &args.bin_dir {
        Some(d) => d.clone(),
        None => default_bins()?,
    };
    // A directory of its own: an earlier run's store or captures would read as repeats.
    let dir = std::env::temp_dir().join(format!("mqttchat-chaos-{}-{seed}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // chat-sub's window of recent ids (10,000) fills in the first minutes: RSS is compared
    // from a tenth of the run on.
    let warmup = Duration::from_secs((args.duration / 10).clamp(5, 600));
    let sampler = Arc::new(Sampler::start(warmup));
    let setup = Setup::start(args.setup, &dir, &bins, &args.nats_mqtt, sampler.clone())
        .map_err(|e| format!("starting {:?}: {e}", args.setup))?;
    let mut notes = setup.notes.clone();
    for n in &notes {
        eprintln!("chaos: {n}");
    }
    let possible = nemesis::possible(&setup);
    let faults: Vec<Fault> = if args.faults.is_empty() {
        possible.clone()
    } else {
        let (ok, not): (Vec<Fault>, Vec<Fault>) =
            args.faults.iter().partition(|f| possible.contains(f));
        for f in not {
            notes.push(format!("{f:?} is not possible with this set-up; left out"));
        }
        ok
    };
    let capture = args.capture || args.broker_may_lose;
    if capture {
        for i in 0..setup.nodes() {
            let d = dir.join(format!("capture/node{i}"));
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            setup.proxy(i).record(d);
        }
    }
    let describe = setup.describe();
    let urls = setup.client_urls();
    let setup = Arc::new(Mutex::new(setup));

    // Readers first: each subscribed before the first line is written.
    let mut readers = start_readers(args, seed, &bins, &urls, &dir, &sampler)?;

    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let fed = Arc::new(AtomicU64::new(0));
    let writers = start_writers(
        args,
        seed,
        &bins,
        &urls,
        &dir,
        &rng,
        (&stop, &fed, &sampler),
    );
    let kill_every = Duration::from_secs(args.kill_every);
    let interval = Duration::from_secs(args.interval.max(1));
    let nemesis = Nemesis::start(setup.clone(), &faults, kill_every, interval, &rng, t0);

    // The run: progress every 10 s, readers that exit started again.
    let mut reader_exits = Vec::new();
    let end = t0 + Duration::from_secs(args.duration);
    let mut next_report = t0 + Duration::from_secs(10);
    while Instant::now() < end {
        thread::sleep(Duration::from_millis(200));
        ending::revive(&mut readers, &sampler, &mut reader_exits);
        if Instant::now() >= next_report {
            next_report += Duration::from_secs(10);
            let n = nemesis.events.lock().map(|e| e.len()).unwrap_or(0);
            eprintln!(
                "chaos: {:7.1} s  {} lines fed, {n} faults",
                t0.elapsed().as_secs_f64(),
                fed.load(Ordering::Relaxed)
            );
        }
    }
    let events = nemesis.stop();
    let healed = ending::heal(&setup);
    stop.store(true, Ordering::SeqCst);
    healed?;
    eprintln!(
        "chaos: faults over ({}); writers finish",
        nemesis::summary(&events)
    );
    let (sessions, writer_failures) = ending::finish_writers(writers)?;
    ending::settle(
        &mut readers,
        &sessions,
        args.settle,
        &sampler,
        &mut reader_exits,
    );
    let lives = sampler.finish();
    for r in &mut readers {
        r.stop();
    }
    let gaps = setup
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record_errors();
    if capture && gaps > 0 {
        notes.push(format!(
            "{gaps} capture files could not be written: nothing is excused"
        ));
    }
    let sent = match capture && gaps == 0 {
        true => capture::read(&dir.join("capture")).map_err(|e| format!("the captures: {e}"))?,
        false => capture::Sent::default(),
    };
    let mut verdicts = ending::judge(&readers, &sessions, capture.then_some(&sent));
    let reference = args.reference.then(|| verdicts.pop()).flatten();
    if let Some(v) = &reference {
        eprintln!("chaos: reference mosquitto_sub: {v:?}");
    }
    let mut total = Verdict::default();
    for v in &verdicts {
        total.add(v);
    }
    // Lines acknowledged and not, once (every reader counts the same ones).
    if let Some(v) = verdicts.first() {
        (total.acked, total.indeterminate) = (v.acked, v.indeterminate);
    }
    let report = Report {
        setup: describe,
        seed,
        duration_s: args.duration,
        faults: nemesis::summary(&events),
        total,
        readers: verdicts,
        reference,
        captured: capture,
        broker_may_lose: args.broker_may_lose,
        reader_exits,
        writer_failures,
        notes,
        memory: report::memory(&lives),
        events,
        sessions,
        lives,
    };
    ending::finish(&report, args.json.as_deref(), &dir, capture)?;
    Ok(report)
}

/// The readers (and with `--reference` mosquitto_sub, last), once each subscribed.
fn start_readers(
    args: &Args,
    seed: u64,
    bins: &Path,
    urls: &[String],
    dir: &Path,
    sampler: &Sampler,
) -> Result<Vec<Reader>, String> {
    let shape = Shape {
        base: format!("chaos/{seed}"),
        filler: args.size,
    };
    let mut readers = Vec::new();
    for r in 0..args.readers {
        let session = format!("chaos-{seed}-r{r}");
        let log = dir.join(format!("reader{r}.log"));
        let reader = Reader::start(
            r,
            bins.join("chat-sub"),
            urls,
            &session,
            &shape,
            log,
            sampler,
        )
        .map_err(|e| format!("starting reader {r}: {e}"))?;
        readers.push(reader);
    }
    let mut reference = None;
    if args.reference {
        let url = urls.last().map_or("", String::as_str);
        let log = dir.join("reference.log");
        let session = format!("chaos-{seed}-ref");
        let r = Reader::reference(url, &session, &shape, log, sampler)
            .map_err(|e| format!("starting the reference reader: {e}"))?;
        reference = Some(r);
    }
    // The reference reader goes last; it is checked like the others, apart.
    readers.extend(reference);
    for r in &readers {
        if !r.wait_ready(Instant::now() + Duration::from_secs(60)) {
            return Err(format!(
                "{} did not subscribe; see {}",
                r.role,
                dir.display()
            ));
        }
    }

    Ok(readers)
}

/// The writers, each on a thread of its own until `stop`.
fn start_writers(
    args: &Args,
    seed: u64,
    bins: &Path,
    urls: &[String],
    dir: &Path,
    rng: &Rng,
    (stop, fed, sampler): (&Arc<AtomicBool>, &Arc<AtomicU64>, &Arc<Sampler>),
) -> Vec<ending::WriterThread> {
    let mut writers = Vec::new();
    for w in 0..args.writers {
        let writer = Writer {
            index: w,
            topic: format!("chaos/{seed}/w{w}"),
            urls: urls.to_vec(),
            chat_pub: bins.join("chat-pub"),
            qos: args.qos,
            rate: args.rate,
            size: args.size,
            long: w == 0,
            extra: args.pub_arg.clone(),
            log: dir.join(format!("writer{w}.log")),
            pid: Arc::default(),
        };
        let pid = writer.pid.clone();
        let (stop, fed, sampler, rng) = (
            stop.clone(),
            fed.clone(),
            sampler.clone(),
            rng.fork(w as u64),
        );
        let thread = thread::spawn(move || writer.run(rng, &stop, &fed, &sampler));
        writers.push((thread, pid));
    }
    writers
}

/// chat-pub and friends beside this program: target/PROFILE/examples/chaos →
/// target/PROFILE.
fn default_bins() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("no directory of this program")?;
    if !dir.join("chat-pub").is_file() {
        return Err(format!(
            "no chat-pub in {} (cargo build --bins, or --bin-dir)",
            dir.display()
        ));
    }
    Ok(dir.to_path_buf())
}

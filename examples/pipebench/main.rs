//! pipebench: the chat pair (chat-pub | chat-sub) against mosquitto's own clients and,
//! when python3 has paho-mqtt, a paho pair, on a mosquitto of its own on loopback (or
//! another broker: `--broker-cmd`).
//!
//! Scenarios, each run `--repeats` times with the pairs taking turns (run 1 of every
//! pair, then run 2, …), so that a slow spell of the machine hits all pairs alike:
//!
//! - throughput: `--count` lines of `--size` bytes from a file into the publisher; the
//!   time from starting it until the subscriber printed the last line, at each `--qos`;
//! - latency: `--rate` lines a second for `--duration` seconds, each carrying the time
//!   it was written; the subscriber's print time minus that, p50 and p99;
//! - oneshot: `echo hi | PUB` (`mosquitto_pub -m hi`): start, connect, publish, exit.
//!
//! Every run checks that every message arrived (lost, duplicated and reordered ones are
//! counted); peak RSS and CPU time are each tool process's own, from wait4(2). Prints a
//! Markdown table of medians on stdout, progress on stderr; `--json FILE` keeps every run.
//!
//!     cargo build --release --bins --examples && target/release/examples/pipebench

mod broker;
mod lines;
mod machine;
mod pairs;
mod proc;
mod report;
mod scenario;

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::builder::RangedU64ValueParser;
use clap::{Parser, ValueEnum};
use serde::Serialize;

use lines::{Clock, MIN_SIZE, make_line};
use machine::Meta;
use pairs::Pair;
use proc::which;
use scenario::Trial;

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum Scenario {
    Throughput,
    Latency,
    Oneshot,
}

/// Benchmark chat-pub | chat-sub against mosquitto_pub | mosquitto_sub (and paho-mqtt)
#[derive(Parser, Debug, Clone)]
pub struct Args {
    /// Messages per throughput run
    #[arg(long, default_value_t = 100_000)]
    pub count: u32,
    /// Bytes per message, the newline not counted
    #[arg(long, default_value_t = 100,
          value_parser = RangedU64ValueParser::<usize>::new().range(MIN_SIZE as u64..))]
    pub size: usize,
    /// Runs of each pair in each scenario
    #[arg(long, default_value_t = 5)]
    pub repeats: u32,
    /// QoS levels to measure, comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = [0, 1],
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: Vec<u8>,
    /// Scenarios to run, comma-separated
    #[arg(long, value_delimiter = ',', default_values = ["throughput", "latency", "oneshot"])]
    pub scenarios: Vec<Scenario>,
    /// Pairs to compare, comma-separated (paho is skipped when python3 lacks paho-mqtt)
    #[arg(long, value_delimiter = ',', default_values = ["chat", "mosquitto", "mosquitto-split", "paho"])]
    pub pairs: Vec<Pair>,
    /// Lines per second in the latency runs
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// Seconds each latency run lasts
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// One-message publishers per pair and QoS
    #[arg(long, default_value_t = 20)]
    pub oneshot_runs: u32,
    /// Seconds a run may take before it is given up (beyond --duration for latency)
    #[arg(long, default_value_t = 60)]
    pub trial_timeout: u64,
    /// Write the settings, the machine and every run here as JSON
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Where chat-pub and chat-sub are
    #[arg(long, value_name = "DIR", default_value = "target/release")]
    pub chat_dir: PathBuf,
    /// Where another build of chat-pub and chat-sub is (the pair chat-baseline, run
    /// interleaved with the others: a change measured before and after, side by side)
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,
    /// Start this broker instead of the harness's own mosquitto; `{port}` in it is
    /// replaced by a free port, e.g. "target/release/chat-broker -l 127.0.0.1:{port}"
    #[arg(long, value_name = "COMMAND")]
    pub broker_cmd: Option<String>,
    /// Subscribers take a persistent session (chat-sub --session, mosquitto_sub -c -i), so
    /// that a broker with a store (chat-broker --data-dir, mosquitto's persistence) keeps
    /// every QoS 1 and 2 message on its way
    #[arg(long)]
    pub session: bool,
}

impl Args {
    pub fn trial_timeout(&self) -> Duration {
        Duration::from_secs(self.trial_timeout)
    }
}

/// What the scenarios share.
pub struct Ctx {
    pub args: Args,
    pub port: u16,
    pub clock: Clock,
    /// The throughput input: `--count` lines.
    pub data: PathBuf,
    dir: PathBuf,
    run_id: String,
    tokens: Cell<u32>,
}

impl Ctx {
    /// A topic of its own for every run.
    pub fn topic(&self, what: &str, pair: Pair, qos: u8, run: u32) -> String {
        format!("bench/{}/{what}/{}/q{qos}/r{run}", self.run_id, pair.name())
    }

    /// A marker no earlier line can contain.
    pub fn token(&self, what: &str) -> String {
        self.tokens.set(self.tokens.get() + 1);
        format!("{what}-{}-{}", self.run_id, self.tokens.get())
    }

    /// Where a tool's stderr goes (the work directory, removed at the end).
    pub fn stderr_log(&self, pair: Pair, role: &str) -> io::Result<File> {
        let path = self.dir.join(format!("{}-{role}.stderr", pair.name()));
        OpenOptions::new().create(true).append(true).open(path)
    }
}

/// A temporary directory, removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new(run_id: &str) -> io::Result<WorkDir> {
        let dir = std::env::temp_dir().join(format!("pipebench-{run_id}"));
        fs::create_dir(&dir)?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Checks that `dir` holds chat-pub and chat-sub.
fn chat_binaries(dir: &Path) -> io::Result<()> {
    match ["chat-pub", "chat-sub"]
        .iter()
        .all(|b| dir.join(b).is_file())
    {
        true => Ok(()),
        false => Err(io::Error::other(format!(
            "no chat-pub/chat-sub in {} (cargo build --release)",
            dir.display()
        ))),
    }
}

/// The pairs that can run here, and notes on those that cannot.
fn available(args: &Args) -> io::Result<(Vec<Pair>, Vec<String>)> {
    let (mut pairs, mut skipped) = (Vec::new(), Vec::new());
    for &pair in &args.pairs {
        let missing = match pair {
            Pair::Chat | Pair::ChatSealed => {
                chat_binaries(&args.chat_dir)?;
                None
            }
            Pair::ChatBaseline => {
                let Some(dir) = &args.baseline else {
                    return Err(io::Error::other(
                        "the pair chat-baseline needs --baseline DIR",
                    ));
                };
                chat_binaries(dir)?;
                None
            }
            Pair::Mosquitto | Pair::MosquittoSplit => ["mosquitto_pub", "mosquitto_sub", "split"]
                .into_iter()
                .find(|t| which(t).is_none())
                .map(|t| format!("{t} is not installed (mosquitto-clients, coreutils)")),
            Pair::Paho => machine::paho_version()
                .is_none()
                .then(|| "python3 cannot import paho.mqtt (pip install paho-mqtt)".into()),
        };
        match missing {
            Some(why) => skipped.push(format!("{}: skipped: {why}", pair.name())),
            None if !pairs.contains(&pair) => pairs.push(pair),
            None => {}
        }
    }
    Ok((pairs, skipped))
}

fn write_data(path: &Path, count: u32, size: usize) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    let mut line = Vec::with_capacity(size + 1);
    for seq in 0..count {
        line.clear();
        make_line(seq, 0, size, &mut line);
        out.write_all(&line)?;
    }
    out.flush()
}

fn progress(t: &Trial) {
    let figures = match t.scenario {
        "throughput" => format!("{:.2} s", t.seconds.unwrap_or(f64::NAN)),
        "latency" => format!(
            "p50 {:.2} ms, p99 {:.2} ms",
            t.p50_ms.unwrap_or(f64::NAN),
            t.p99_ms.unwrap_or(f64::NAN)
        ),
        _ => format!("{:.1} ms", t.seconds.unwrap_or(f64::NAN) * 1e3),
    };
    let (lost, expected) = (t.lost, t.expected);
    let status = if t.complete {
        String::new()
    } else {
        format!(" [{}]", t.outcome)
    };
    let head = format!("{} {} QoS {} #{}", t.scenario, t.pair, t.qos, t.run);
    eprintln!("  {head}: {figures}, lost {lost}/{expected}{status}");
}

/// Every scenario at every QoS, the pairs taking turns within each repeat.
fn run_all(ctx: &Ctx, pairs: &[Pair]) -> Vec<Trial> {
    let args = &ctx.args;
    let mut trials = Vec::new();
    for scenario in [Scenario::Throughput, Scenario::Latency] {
        if !args.scenarios.contains(&scenario) {
            continue;
        }
        for &qos in &args.qos {
            for run in 1..=args.repeats {
                for &pair in pairs.iter().filter(|p| p.takes_part(scenario, qos)) {
                    let t = match scenario {
                        Scenario::Throughput => scenario::throughput(ctx, pair, qos, run),
                        _ => scenario::latency(ctx, pair, qos, run),
                    };
                    progress(&t);
                    trials.push(t);
                }
            }
        }
    }
    if args.scenarios.contains(&Scenario::Oneshot) {
        for &qos in &args.qos {
            let these: Vec<Pair> = pairs
                .iter()
                .copied()
                .filter(|p| p.takes_part(Scenario::Oneshot, qos))
                .collect();
            let runs = scenario::oneshot(ctx, &these, qos);
            runs.iter().filter(|t| !t.complete).for_each(progress);
            eprintln!("  oneshot QoS {qos}: {} runs", runs.len());
            trials.extend(runs);
        }
    }
    trials
}

/// What `--json` writes.
#[derive(Serialize)]
struct Results<'a> {
    meta: &'a Meta,
    trials: &'a [Trial],
}

fn run(args: Args) -> io::Result<()> {
    let started = Instant::now();
    let (pairs, skipped) = available(&args)?;
    let mut meta = Meta::before_run(skipped);
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        chrono::Local::now().format("%H%M%S")
    );
    let dir = WorkDir::new(&run_id)?;
    let broker = broker::start(&dir.0, args.broker_cmd.as_deref())?;
    let data = dir.0.join("lines.txt");
    write_data(&data, args.count, args.size)?;
    let names: Vec<&str> = pairs.iter().map(|p| p.name()).collect();
    eprintln!(
        "pipebench: {} on port {}, pairs {}",
        broker.name,
        broker.port,
        names.join(", ")
    );
    let ctx = Ctx {
        port: broker.port,
        clock: Clock(Instant::now()),
        data,
        dir: dir.0.clone(),
        run_id,
        tokens: Cell::new(0),
        args,
    };
    let trials = run_all(&ctx, &pairs);
    let said = fs::read_to_string(&broker.log).unwrap_or_default();
    if !said.trim().is_empty() {
        eprintln!("pipebench: {} said:\n{}", broker.name, said.trim());
    }
    drop(broker);
    meta.cpu_busy_after = machine::cpu_busy(Duration::from_secs(1));
    meta.elapsed_s = started.elapsed().as_secs_f64();
    print!("{}", report::markdown(&trials, &pairs, &ctx.args, &meta));
    if let Some(path) = &ctx.args.json {
        let doc = Results {
            meta: &meta,
            trials: &trials,
        };
        fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")?;
        eprintln!("pipebench: wrote {}", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipebench: {e}");
            ExitCode::FAILURE
        }
    }
}

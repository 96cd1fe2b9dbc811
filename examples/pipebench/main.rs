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
//! `--tls` makes a throwaway CA and server certificate, and every broker listens and every
//! client connects over TLS. `--broker-cmd` starts another broker instead of mosquitto;
//! with `--with-mosquitto` the harness's mosquitto runs too, and every pair goes through
//! both brokers, taking turns.
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
mod tls;

use std::cell::{Cell, RefCell};
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
use tls::Pki;

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
    /// replaced by a free port, e.g. "target/release/chat-broker -l 127.0.0.1:{port}";
    /// with --tls, `{certfile}`, `{keyfile}` and `{cafile}` by the run's PEM files
    #[arg(long, value_name = "COMMAND")]
    pub broker_cmd: Option<String>,
    /// With --broker-cmd: start the harness's own mosquitto as well, and run every pair
    /// through both brokers, taking turns (columns "PAIR via BROKER")
    #[arg(long, requires = "broker_cmd")]
    pub with_mosquitto: bool,
    /// Over TLS: a throwaway CA and a server certificate for 127.0.0.1 are made for the
    /// run, the brokers listen with it (mosquitto: cafile, certfile, keyfile on its
    /// listener) and the clients trust the CA (chat: mqtts:// and --cafile; mosquitto's
    /// clients: --cafile). The paho pair has no TLS here and is skipped
    #[arg(long)]
    pub tls: bool,
    /// Subscribers take a persistent session (chat-sub --session, mosquitto_sub -c -i), so
    /// that a broker with a store (chat-broker --data-dir, mosquitto's persistence) keeps
    /// every QoS 1 and 2 message on its way
    #[arg(long)]
    pub session: bool,
    /// Run again a throughput or latency run during which other processes (not its
    /// tools, the brokers or the harness) took more than SECONDS of CPU, once the CPUs
    /// are idle again (at most 5 times; for a machine shared with builds)
    #[arg(long, value_name = "SECONDS")]
    pub max_others_cpu: Option<f64>,
}

impl Args {
    pub fn trial_timeout(&self) -> Duration {
        Duration::from_secs(self.trial_timeout)
    }
}

/// A broker the pairs go through.
pub struct Via {
    /// Its program's file name.
    pub name: String,
    pub port: u16,
    pub pid: i32,
}

/// One column of the report: a pair through a broker (`Ctx::brokers[via]`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Lane {
    pub pair: Pair,
    pub via: usize,
}

/// What the scenarios share.
pub struct Ctx {
    pub args: Args,
    pub brokers: Vec<Via>,
    /// The run's certificates, with `--tls`.
    pub pki: Option<Pki>,
    pub clock: Clock,
    /// The throughput input: `--count` lines.
    pub data: PathBuf,
    dir: PathBuf,
    run_id: String,
    tokens: Cell<u32>,
    /// The runs `--max-others-cpu` had run again, left out of the figures.
    pub redone: RefCell<Vec<Trial>>,
}

impl Ctx {
    /// A topic of its own for every run.
    pub fn topic(&self, what: &str, lane: Lane, qos: u8, run: u32) -> String {
        let (id, pair, via) = (&self.run_id, lane.pair.name(), lane.via);
        format!("bench/{id}/{what}/{pair}/b{via}/q{qos}/r{run}")
    }

    /// The port of the lane's broker.
    pub fn port(&self, lane: Lane) -> u16 {
        self.brokers[lane.via].port
    }

    /// The lane's broker's name.
    pub fn broker(&self, lane: Lane) -> &str {
        &self.brokers[lane.via].name
    }

    /// The brokers' process ids.
    pub fn broker_pids(&self) -> Vec<i32> {
        self.brokers.iter().map(|b| b.pid).collect()
    }

    /// The lane's name: the pair's, and its broker's when there are several.
    pub fn label(&self, lane: Lane) -> String {
        label(lane.pair.name(), self.broker(lane), self.brokers.len())
    }

    /// Publishes a retained message on the lane's broker (see [`broker::publish_retained`]).
    pub fn publish_retained(&self, lane: Lane, topic: &str, payload: &[u8]) -> io::Result<()> {
        broker::publish_retained(self.port(lane), self.pki.as_ref(), topic, payload)
    }

    /// A marker no earlier line can contain.
    pub fn token(&self, what: &str) -> String {
        self.tokens.set(self.tokens.get() + 1);
        format!("{what}-{}-{}", self.run_id, self.tokens.get())
    }

    /// Where a tool's stderr goes (the work directory, removed at the end).
    pub fn stderr_log(&self, lane: Lane, role: &str) -> io::Result<File> {
        let path = (self.dir).join(format!("{}-b{}-{role}.stderr", lane.pair.name(), lane.via));
        OpenOptions::new().create(true).append(true).open(path)
    }
}

/// A column's name: "chat", or "chat via chat-broker" when there are several brokers.
pub fn label(pair: &str, broker: &str, brokers: usize) -> String {
    match brokers {
        1 => pair.to_owned(),
        _ => format!("{pair} via {broker}"),
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
            Pair::Paho if args.tls => Some("bench/paho_*.py do not speak TLS (--tls)".into()),
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

fn progress(t: &Trial, brokers: usize) {
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
    let figures = match t.others_cpu_s {
        Some(s) => format!("{figures}, others {s:.2} s CPU"),
        None => figures,
    };
    let status = if t.complete {
        String::new()
    } else {
        format!(" [{}]", t.outcome)
    };
    let name = label(t.pair, &t.broker, brokers);
    let head = format!("{} {name} QoS {} #{}", t.scenario, t.qos, t.run);
    eprintln!("  {head}: {figures}, lost {lost}/{expected}{status}");
}

/// How many times `--max-others-cpu` runs a run again.
const MAX_REDOS: u32 = 5;

/// Every scenario at every QoS, the lanes (pairs, through each broker) taking turns
/// within each repeat.
fn run_all(ctx: &Ctx, lanes: &[Lane]) -> Vec<Trial> {
    let args = &ctx.args;
    let n = ctx.brokers.len();
    let mut trials = Vec::new();
    for scenario in [Scenario::Throughput, Scenario::Latency] {
        if !args.scenarios.contains(&scenario) {
            continue;
        }
        for &qos in &args.qos {
            for run in 1..=args.repeats {
                for &lane in lanes.iter().filter(|l| l.pair.takes_part(scenario, qos)) {
                    let mut tries = 0;
                    let t = loop {
                        let t = match scenario {
                            Scenario::Throughput => scenario::throughput(ctx, lane, qos, run),
                            _ => scenario::latency(ctx, lane, qos, run),
                        };
                        progress(&t, n);
                        let limit = args.max_others_cpu.unwrap_or(f64::INFINITY);
                        if tries == MAX_REDOS || t.others_cpu_s.is_none_or(|s| s <= limit) {
                            break t;
                        }
                        eprintln!("    (other processes were busy: run again once idle)");
                        tries += 1;
                        ctx.redone.borrow_mut().push(t);
                        machine::wait_idle(Duration::from_secs(600));
                    };
                    trials.push(t);
                }
            }
        }
    }
    if args.scenarios.contains(&Scenario::Oneshot) {
        for &qos in &args.qos {
            let these: Vec<Lane> = lanes
                .iter()
                .copied()
                .filter(|l| l.pair.takes_part(Scenario::Oneshot, qos))
                .collect();
            let runs = scenario::oneshot(ctx, &these, qos);
            runs.iter()
                .filter(|t| !t.complete)
                .for_each(|t| progress(t, n));
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
    /// The runs `--max-others-cpu` had run again.
    redone: &'a [Trial],
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
    let pki = args.tls.then(|| Pki::new(&dir.0)).transpose()?;
    let mut running = vec![broker::start(
        &dir.0,
        args.broker_cmd.as_deref(),
        pki.as_ref(),
    )?];
    if args.with_mosquitto {
        running.push(broker::start(&dir.0, None, pki.as_ref())?);
    }
    let mut brokers: Vec<Via> = Vec::new();
    for b in &running {
        let taken = brokers.iter().any(|v| v.name == b.name);
        let name = match taken {
            true => format!("{} ({})", b.name, brokers.len() + 1),
            false => b.name.clone(),
        };
        brokers.push(Via {
            name,
            port: b.port,
            pid: b.pid(),
        });
    }
    for (b, via) in running.iter().zip(&brokers) {
        let tls = match &pki {
            Some(p) => format!(" (TLS: {})", p.negotiated(b.port)?),
            None => String::new(),
        };
        meta.brokers
            .push(format!("{} on port {}{tls}", via.name, via.port));
    }
    let data = dir.0.join("lines.txt");
    write_data(&data, args.count, args.size)?;
    let names: Vec<&str> = pairs.iter().map(|p| p.name()).collect();
    eprintln!(
        "pipebench: {}; pairs {}",
        meta.brokers.join(", "),
        names.join(", ")
    );
    let lanes: Vec<Lane> = (0..brokers.len())
        .flat_map(|via| pairs.iter().map(move |&pair| Lane { pair, via }))
        .collect();
    let ctx = Ctx {
        brokers,
        pki,
        clock: Clock(Instant::now()),
        data,
        dir: dir.0.clone(),
        run_id,
        tokens: Cell::new(0),
        redone: RefCell::default(),
        args,
    };
    let trials = run_all(&ctx, &lanes);
    for broker in &running {
        let said = fs::read_to_string(&broker.log).unwrap_or_default();
        if !said.trim().is_empty() {
            eprintln!("pipebench: {} said:\n{}", broker.name, said.trim());
        }
    }
    drop(running);
    meta.cpu_busy_after = machine::cpu_busy(Duration::from_secs(1));
    meta.elapsed_s = started.elapsed().as_secs_f64();
    print!("{}", report::markdown(&trials, &ctx, &lanes, &pairs, &meta));
    if let Some(path) = &ctx.args.json {
        let doc = Results {
            meta: &meta,
            trials: &trials,
            redone: &ctx.redone.borrow(),
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

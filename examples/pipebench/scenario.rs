//! The scenarios: throughput, latency and one-shot. Each run of a pair ends up as one
//! [`Trial`], complete or not, with the reason when not.
//!
//! Readiness: before a subscriber starts, a retained `mark=ready-…` message goes to the
//! run's topic (new for every run); the subscriber is ready once it printed it. Hence
//! its count is the data messages plus one (plus one more for latency's warm-up line).

use std::fs::File;
use std::io::{self, Write};
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::lines::{Clock, Event, Tally, make_line, spawn_reader};
use crate::machine::CpuMark;
use crate::proc::{Exit, Proc};
use crate::report::percentile;
use crate::{Ctx, Lane};

/// How long a subscriber may take to print the readiness marker or the warm-up line.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// A run stops waiting this long after the publisher exited and nothing more arrived.
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize, Clone, Debug, Default)]
pub struct Trial {
    pub scenario: &'static str,
    pub pair: &'static str,
    /// The broker it went through.
    pub broker: String,
    pub qos: u8,
    pub run: u32,
    /// "complete", or why not.
    pub outcome: String,
    /// Every message arrived, and the run ended normally.
    pub complete: bool,
    pub expected: u32,
    pub delivered: u32,
    pub lost: u32,
    pub duplicated: u32,
    pub reordered: u32,
    /// Throughput: from starting the publisher to the last message printed.
    /// One-shot: from starting the publisher to its exit.
    pub seconds: Option<f64>,
    pub msgs_per_s: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// How late the harness wrote lines against their schedule (latency runs).
    pub feed_lag_p99_ms: Option<f64>,
    pub pub_status: Option<i32>,
    pub sub_status: Option<i32>,
    pub pub_rss_kib: Option<u64>,
    pub sub_rss_kib: Option<u64>,
    pub pub_cpu_s: Option<f64>,
    pub sub_cpu_s: Option<f64>,
    /// CPU time other processes (not the run's tools, the brokers or the harness) took
    /// during the run (throughput and latency runs).
    pub others_cpu_s: Option<f64>,
}

impl Trial {
    fn new(scenario: &'static str, ctx: &Ctx, lane: Lane, qos: u8, run: u32) -> Trial {
        Trial {
            scenario,
            pair: lane.pair.name(),
            broker: ctx.broker(lane).to_owned(),
            qos,
            run,
            ..Trial::default()
        }
    }

    fn count(&mut self, outcome: String, tally: &Tally) {
        self.complete = outcome == "complete" && tally.complete();
        self.outcome = outcome;
        self.expected = tally.expected();
        self.delivered = tally.unique;
        self.lost = tally.lost();
        self.duplicated = tally.duplicated;
        self.reordered = tally.reordered;
    }

    /// What other processes took since `mark` (see [`CpuMark`]).
    fn others(&mut self, ctx: &Ctx, mark: Option<CpuMark>) {
        let tools = self.pub_cpu_s.zip(self.sub_cpu_s).map(|(p, s)| p + s);
        let pids = ctx.broker_pids();
        self.others_cpu_s = mark.zip(tools).and_then(|(m, t)| m.others(&pids, t));
    }

    fn usage(&mut self, publisher: Option<Exit>, subscriber: Option<Exit>) {
        self.pub_status = publisher.map(|e| e.code);
        self.pub_rss_kib = publisher.map(|e| e.maxrss_kib);
        self.pub_cpu_s = publisher.map(|e| e.cpu_s);
        self.sub_status = subscriber.map(|e| e.code);
        self.sub_rss_kib = subscriber.map(|e| e.maxrss_kib);
        self.sub_cpu_s = subscriber.map(|e| e.cpu_s);
    }
}

/// A running subscriber and what it printed so far.
struct Sub {
    proc: Proc,
    events: Receiver<Vec<Event>>,
    eof: bool,
    topic: String,
    lane: Lane,
}

impl Sub {
    fn start(ctx: &Ctx, lane: Lane, topic: &str, qos: u8, count: u32) -> io::Result<Sub> {
        let token = ctx.token("ready");
        let marker = (lane.pair).harness_payload(topic, format!("mark={token}").as_bytes());
        ctx.publish_retained(lane, topic, &marker)?;
        let mut cmd = lane.pair.subscriber(ctx, ctx.port(lane), topic, qos, count);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        cmd.stderr(ctx.stderr_log(lane, "sub")?);
        let mut proc = Proc::spawn(&mut cmd)?;
        let (tx, events) = mpsc::channel();
        spawn_reader(proc.stdout.take().expect("piped"), ctx.clock, tx);
        let topic = topic.to_owned();
        let mut sub = Sub {
            proc,
            events,
            eof: false,
            topic,
            lane,
        };
        sub.wait_mark(
            &token,
            "the retained readiness marker (retained messages must be printed)",
        )?;
        Ok(sub)
    }

    /// Waits for the line with `token`. Nothing that counts comes before it (or in
    /// the same read after it): the publisher is not started, or not fed, until then.
    fn wait_mark(&mut self, token: &str, what: &str) -> io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(batch) = self.events.recv_timeout(left) else {
                break;
            };
            for ev in batch {
                match ev {
                    Event::Mark(m) if m == token => return Ok(()),
                    Event::Eof => self.eof = true,
                    _ => {}
                }
            }
        }
        let why = if self.eof { "exited" } else { "timed out" };
        Err(io::Error::other(format!("subscriber {why} before {what}")))
    }

    /// Counts what the subscriber printed, waiting up to `wait` for the first of it.
    fn take(&mut self, tally: &mut Tally, wait: Duration) {
        let first = self.events.recv_timeout(wait).ok();
        for ev in first.into_iter().chain(self.events.try_iter()).flatten() {
            match ev {
                Event::Data {
                    seq,
                    sent_ns,
                    at_ns,
                } => tally.add(seq, sent_ns, at_ns),
                Event::Mark(_) => {}
                Event::Eof => self.eof = true,
            }
        }
    }

    /// Lets a subscriber that got everything exit by itself, stops it otherwise, counts
    /// what was left in its pipe, and clears the marker.
    fn finish(mut self, ctx: &Ctx, tally: &mut Tally) -> Option<Exit> {
        if tally.complete() {
            self.proc.wait_until(Instant::now() + IDLE_TIMEOUT);
        }
        let exit = self.proc.stop();
        let deadline = Instant::now() + Duration::from_millis(500);
        while !self.eof && Instant::now() < deadline {
            self.take(tally, Duration::from_millis(50));
        }
        let _ = ctx.publish_retained(self.lane, &self.topic, b"");
        exit
    }
}

/// Counts the subscriber's output until every message arrived, and says why it
/// stopped otherwise.
fn collect(
    sub: &mut Sub,
    tally: &mut Tally,
    publisher: &mut Proc,
    clock: Clock,
    deadline: Instant,
    fed: impl Fn() -> bool,
) -> String {
    loop {
        if tally.complete() {
            return "complete".into();
        }
        if sub.eof {
            return "the subscriber exited early".into();
        }
        if let Some(exit) = publisher.exited().filter(|_| fed()) {
            let quiet_since = tally.last_ns.unwrap_or(0).max(clock.at(exit.at));
            if clock.ns().saturating_sub(quiet_since) > IDLE_TIMEOUT.as_nanos() as u64 {
                let status = exit.code;
                return format!("nothing more arrived after the publisher exited ({status})");
            }
        }
        if Instant::now() > deadline {
            return "timed out".into();
        }
        sub.take(tally, Duration::from_millis(50));
    }
}

/// Runs `body`; an error ends the trial as incomplete, with the error as its outcome.
fn guarded(mut t: Trial, body: impl FnOnce(&mut Trial) -> io::Result<()>) -> Trial {
    if let Err(e) = body(&mut t) {
        t.outcome = format!("error: {e}");
        t.complete = false;
    }
    t
}

/// `--count` lines from a file into the publisher; the time from starting it until the
/// subscriber printed the last line.
pub fn throughput(ctx: &Ctx, lane: Lane, qos: u8, run: u32) -> Trial {
    guarded(Trial::new("throughput", ctx, lane, qos, run), |t| {
        let mark = CpuMark::now(&ctx.broker_pids());
        let n = ctx.args.count;
        let topic = ctx.topic("tp", lane, qos, run);
        let mut sub = Sub::start(ctx, lane, &topic, qos, n + 1)?;
        let mut cmd = lane.pair.publisher(ctx, ctx.port(lane), &topic, qos);
        cmd.stdin(File::open(&ctx.data)?).stdout(Stdio::null());
        cmd.stderr(ctx.stderr_log(lane, "pub")?);
        let t0 = ctx.clock.ns();
        let mut publisher = Proc::spawn(&mut cmd)?;
        let mut tally = Tally::new(n);
        let deadline = Instant::now() + ctx.args.trial_timeout();
        let outcome = collect(
            &mut sub,
            &mut tally,
            &mut publisher,
            ctx.clock,
            deadline,
            || true,
        );
        let pub_exit = publisher.wait_until(deadline).or_else(|| publisher.stop());
        let sub_exit = sub.finish(ctx, &mut tally);
        t.seconds = tally.last_ns.map(|last| (last - t0) as f64 / 1e9);
        t.msgs_per_s = t.seconds.map(|s| f64::from(tally.unique) / s);
        t.count(outcome, &tally);
        t.usage(pub_exit, sub_exit);
        t.others(ctx, mark);
        Ok(())
    })
}

/// Writes `total` timestamped lines into the publisher at a steady pace; returns how
/// late each write was against its schedule, in ns. Dropping stdin ends the input.
fn feed(mut stdin: ChildStdin, clock: Clock, total: u32, period_ns: u64, size: usize) -> Vec<u64> {
    let mut lags = Vec::with_capacity(total as usize);
    let mut line = Vec::with_capacity(size + 1);
    let start = clock.ns();
    for seq in 0..total {
        let due = start + u64::from(seq) * period_ns;
        let now = clock.ns();
        if due > now {
            thread::sleep(Duration::from_nanos(due - now));
        }
        let sent = clock.ns();
        lags.push(sent.saturating_sub(due));
        line.clear();
        make_line(seq, sent, size, &mut line);
        if stdin.write_all(&line).is_err() {
            break;
        }
    }
    lags
}

/// `--rate` lines a second for `--duration` seconds, each carrying its send time; the
/// latency is the subscriber's print time minus that. One warm-up line goes through
/// first, so the publisher's start and connection do not count.
pub fn latency(ctx: &Ctx, lane: Lane, qos: u8, run: u32) -> Trial {
    guarded(Trial::new("latency", ctx, lane, qos, run), |t| {
        let mark = CpuMark::now(&ctx.broker_pids());
        let total = (ctx.args.rate * ctx.args.duration).round() as u32;
        let topic = ctx.topic("lat", lane, qos, run);
        let mut sub = Sub::start(ctx, lane, &topic, qos, total + 2)?;
        let mut cmd = lane.pair.publisher(ctx, ctx.port(lane), &topic, qos);
        cmd.stdin(Stdio::piped()).stdout(Stdio::null());
        cmd.stderr(ctx.stderr_log(lane, "pub")?);
        let mut publisher = Proc::spawn(&mut cmd)?;
        let mut stdin = publisher.stdin.take().expect("piped");
        let warm = ctx.token("warm");
        stdin.write_all(format!("mark={warm}\n").as_bytes())?;
        sub.wait_mark(&warm, "the warm-up line")?;
        let (clock, size) = (ctx.clock, ctx.args.size);
        let period_ns = (1e9 / ctx.args.rate) as u64;
        let feeder = thread::spawn(move || feed(stdin, clock, total, period_ns, size));
        let mut tally = Tally::new(total);
        let limit = Duration::from_secs_f64(ctx.args.duration) + ctx.args.trial_timeout();
        let deadline = Instant::now() + limit;
        let fed = || feeder.is_finished();
        let outcome = collect(&mut sub, &mut tally, &mut publisher, clock, deadline, fed);
        let pub_exit = publisher.wait_until(Instant::now() + IDLE_TIMEOUT);
        let pub_exit = pub_exit.or_else(|| publisher.stop());
        let mut lags = feeder.join().unwrap_or_default();
        let sub_exit = sub.finish(ctx, &mut tally);
        let ms = |ns: u64| ns as f64 / 1e6;
        tally.latencies_ns.sort_unstable();
        lags.sort_unstable();
        t.p50_ms = percentile(&tally.latencies_ns, 50.0).map(ms);
        t.p99_ms = percentile(&tally.latencies_ns, 99.0).map(ms);
        t.max_ms = tally.latencies_ns.last().copied().map(ms);
        t.feed_lag_p99_ms = percentile(&lags, 99.0).map(ms);
        t.count(outcome, &tally);
        t.usage(pub_exit, sub_exit);
        t.others(ctx, mark);
        Ok(())
    })
}

/// One `echo hi | PUB` (or `mosquitto_pub -m`): start, connect, publish, exit.
fn one_message(ctx: &Ctx, lane: Lane, topic: &str, qos: u8, run: u32) -> Trial {
    guarded(Trial::new("oneshot", ctx, lane, qos, run), |t| {
        let text = format!("hi seq={run:08}");
        let (mut cmd, input) = lane
            .pair
            .one_message(ctx, ctx.port(lane), topic, qos, &text);
        cmd.stdin(Stdio::piped()).stdout(Stdio::null());
        cmd.stderr(ctx.stderr_log(lane, "pub")?);
        let t0 = Instant::now();
        let mut publisher = Proc::spawn(&mut cmd)?;
        let mut stdin = publisher.stdin.take().expect("piped");
        stdin.write_all(input.as_bytes())?;
        drop(stdin);
        let exit = publisher.wait_until(t0 + Duration::from_secs(10));
        t.outcome = match exit {
            Some(e) if e.code == 0 => "complete".into(),
            Some(e) => format!("exit status {}", e.code),
            None => "did not exit within 10 s".into(),
        };
        t.seconds = exit.map(|e| (e.at - t0).as_secs_f64());
        t.usage(exit, None);
        Ok(())
    })
}

/// `--oneshot-runs` one-message publishers per lane, the lanes taking turns; each
/// lane's subscriber runs meanwhile to check that every message arrived.
pub fn oneshot(ctx: &Ctx, lanes: &[Lane], qos: u8) -> Vec<Trial> {
    let runs = ctx.args.oneshot_runs;
    let mut trials = Vec::new();
    let mut subs = Vec::new();
    for &lane in lanes {
        let topic = ctx.topic("one", lane, qos, 0);
        match Sub::start(ctx, lane, &topic, qos, runs + 1) {
            Ok(sub) => subs.push((lane, sub, Tally::new(runs), Vec::new())),
            Err(e) => {
                let mut t = Trial::new("oneshot", ctx, lane, qos, 0);
                t.outcome = format!("error: {e}");
                trials.push(t);
            }
        }
    }
    for run in 0..runs {
        for (lane, sub, tally, mine) in &mut subs {
            mine.push(one_message(ctx, *lane, &sub.topic, qos, run));
            sub.take(tally, Duration::ZERO);
        }
    }
    for (_, mut sub, mut tally, mine) in subs {
        let deadline = Instant::now() + IDLE_TIMEOUT;
        while !tally.complete() && !sub.eof && Instant::now() < deadline {
            sub.take(&mut tally, Duration::from_millis(50));
        }
        sub.finish(ctx, &mut tally);
        for mut t in mine {
            let arrived = tally.has(t.run);
            (t.expected, t.delivered, t.lost) = (1, u32::from(arrived), u32::from(!arrived));
            t.complete = arrived && t.outcome == "complete";
            if !arrived && t.outcome == "complete" {
                t.outcome = "not delivered".into();
            }
            trials.push(t);
        }
    }
    trials
}

//! The nemesis: faults chosen at random from a seeded generator, in two lanes that run at
//! once, so that faults combine:
//!
//! - the kill lane: every `--kill-every` seconds, kill -9 of the broker (of one node of a
//!   cluster, while all serve), and a start on the same store after 0–2 s;
//! - the mixed lane: every few seconds (`--interval`, ±50 %), one of the other faults:
//!   a pause (SIGSTOP, SIGCONT after 0.5–4 s), and through a node's proxy a cut (FIN), a
//!   reset (RST), a delay (50–1000 ms for 2–8 s), a bandwidth limit (2–50 kB/s for 2–8 s),
//!   a half-open link (nothing passes for 2–15 s, then it resumes or is cut), new
//!   connections refused for 2–8 s; on a cluster, a node cut off from the others for
//!   5–40 s.
//!
//! Every fault is logged with its time since the start, and healed before the lane picks
//! the next, or when the run ends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use serde::Serialize;

use crate::proxy::Fault as Link;
use crate::rng::Rng;
use crate::setup::{Setup, wait_serving};

/// A kind of fault.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// kill -9 of the broker (a node), started again on its store
    Kill,
    /// SIGSTOP of the broker (a node), SIGCONT later
    Pause,
    /// every connection through a proxy closed (FIN)
    Cut,
    /// every connection through a proxy reset (RST)
    Reset,
    /// a proxy delays every byte
    Delay,
    /// a proxy limits bandwidth
    Bandwidth,
    /// a proxy passes nothing, connections stay open
    HalfOpen,
    /// a proxy closes new connections at once (the ones open go on)
    Refuse,
    /// a cluster node cut off from the others (network namespaces)
    Partition,
}

/// One fault as injected.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at_s: f64,
    pub fault: Fault,
    pub what: String,
}

/// The running nemesis.
pub struct Nemesis {
    stop: Arc<AtomicBool>,
    lanes: Vec<JoinHandle<()>>,
    pub events: Arc<Mutex<Vec<Event>>>,
}

type Shared = Arc<Mutex<Setup>>;

fn lock(setup: &Shared) -> MutexGuard<'_, Setup> {
    setup.lock().unwrap_or_else(|e| e.into_inner())
}

impl Nemesis {
    /// Starts the lanes. `faults` are the ones allowed; `kill_every` zero puts kills in
    /// the mixed lane instead.
    pub fn start(
        setup: Shared,
        faults: &[Fault],
        kill_every: Duration,
        interval: Duration,
        rng: &Rng,
        t0: Instant,
    ) -> Nemesis {
        let stop = Arc::new(AtomicBool::new(false));
        let events: Arc<Mutex<Vec<Event>>> = Arc::default();
        let mut lanes = Vec::new();
        let kill_lane = faults.contains(&Fault::Kill) && !kill_every.is_zero();
        if kill_lane {
            let lane = Lane::new(&setup, &stop, &events, rng.fork(100), t0);
            lanes.push(thread::spawn(move || lane.kills(kill_every)));
        }
        let mixed: Vec<Fault> = faults
            .iter()
            .copied()
            .filter(|f| !(kill_lane && *f == Fault::Kill))
            .collect();
        if !mixed.is_empty() {
            let lane = Lane::new(&setup, &stop, &events, rng.fork(200), t0);
            lanes.push(thread::spawn(move || lane.mixed(&mixed, interval)));
        }
        Nemesis {
            stop,
            lanes,
            events,
        }
    }

    /// Stops injecting; every lane heals what it did.
    pub fn stop(self) -> Vec<Event> {
        self.stop.store(true, Ordering::SeqCst);
        for lane in self.lanes {
            let _ = lane.join();
        }
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.clone()
    }
}

/// The faults `setup` allows: all but partitions, which need a cluster in network
/// namespaces.
pub fn possible(setup: &Setup) -> Vec<Fault> {
    use Fault::*;
    let mut all = vec![Kill, Pause, Cut, Reset, Delay, Bandwidth, HalfOpen, Refuse];
    if setup.can_partition() {
        all.push(Partition);
    }
    all
}

/// How many faults of each kind, as "kill 12, cut 3".
pub fn summary(events: &[Event]) -> String {
    let mut counts: BTreeMap<Fault, usize> = BTreeMap::new();
    for e in events {
        *counts.entry(e.fault).or_default() += 1;
    }
    let names = counts.iter().map(|(f, n)| {
        let name = f.to_possible_value().map(|v| v.get_name().to_string());
        format!("{} {n}", name.unwrap_or_default())
    });
    names.collect::<Vec<_>>().join(", ")
}

struct Lane {
    setup: Shared,
    stop: Arc<AtomicBool>,
    events: Arc<Mutex<Vec<Event>>>,
    rng: Rng,
    t0: Instant,
}

impl Lane {
    fn new(
        setup: &Shared,
        stop: &Arc<AtomicBool>,
        events: &Arc<Mutex<Vec<Event>>>,
        rng: Rng,
        t0: Instant,
    ) -> Lane {
        Lane {
            setup: setup.clone(),
            stop: stop.clone(),
            events: events.clone(),
            rng,
            t0,
        }
    }

    fn log(&self, fault: Fault, what: String) {
        let at_s = self.t0.elapsed().as_secs_f64();
        eprintln!("chaos: {at_s:7.1} s  {what}");
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.push(Event { at_s, fault, what });
    }

    /// Sleeps `d`, or less when the run ends; false when it ended.
    fn pause_for(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
        }
        !self.stop.load(Ordering::SeqCst)
    }

    fn kills(mut self, every: Duration) {
        let mut tick = Instant::now();
        loop {
            tick += every;
            if !self.pause_for(tick.saturating_duration_since(Instant::now())) {
                return;
            }
            self.kill();
        }
    }

    /// kill -9 of one node while every node runs, and its start again after 0–2 s.
    fn kill(&mut self) {
        let n = lock(&self.setup).nodes();
        let node = self.rng.range(0, n as u64 - 1) as usize;
        let down = self.rng.millis(0, 2_000);
        {
            let mut setup = lock(&self.setup);
            if !(0..n).all(|i| setup.running(i)) {
                return;
            }
            setup.kill(node);
        }
        self.log(
            Fault::Kill,
            format!("kill -9 node {node}, down {} ms", down.as_millis()),
        );
        self.pause_for(down);
        let restarted = {
            let mut setup = lock(&self.setup);
            setup.restart(node).map(|()| setup.serving_probe(node))
        };
        match restarted {
            Ok(probe) if wait_serving(probe) => {}
            Ok(_) => self.log(Fault::Kill, format!("node {node} does not serve again yet")),
            Err(e) => self.log(Fault::Kill, format!("node {node} did not start again: {e}")),
        }
    }

    fn mixed(mut self, faults: &[Fault], interval: Duration) {
        let ms = interval.as_millis() as u64;
        loop {
            let wait = self.rng.millis(ms / 2, ms * 3 / 2);
            if !self.pause_for(wait) {
                return;
            }
            let fault = *self.rng.pick(faults);
            let n = lock(&self.setup).nodes();
            let node = self.rng.range(0, n as u64 - 1) as usize;
            match fault {
                Fault::Kill => self.kill(),
                Fault::Pause => {
                    let hold = self.rng.millis(500, 4_000);
                    let Some(pid) = lock(&self.setup).pause(node) else {
                        continue;
                    };
                    self.log(
                        fault,
                        format!("SIGSTOP node {node} for {} ms", hold.as_millis()),
                    );
                    self.pause_for(hold);
                    lock(&self.setup).resume(node, pid);
                }
                Fault::Cut => {
                    lock(&self.setup).proxy(node).cut();
                    self.log(fault, format!("cut every connection to node {node}"));
                }
                Fault::Reset => {
                    lock(&self.setup).proxy(node).reset();
                    self.log(fault, format!("reset every connection to node {node}"));
                }
                Fault::Delay | Fault::Bandwidth | Fault::HalfOpen | Fault::Refuse => {
                    self.link(fault, node)
                }
                Fault::Partition => {
                    let hold = self.rng.millis(5_000, 40_000);
                    if let Err(e) = lock(&self.setup).partition(node) {
                        self.log(fault, format!("partition failed: {e}"));
                        continue;
                    }
                    self.log(
                        fault,
                        format!(
                            "node {node} cut off from the others for {} ms",
                            hold.as_millis()
                        ),
                    );
                    self.pause_for(hold);
                    if let Err(e) = lock(&self.setup).heal() {
                        self.log(fault, format!("healing the partition failed: {e}"));
                    }
                }
            }
        }
    }

    /// A degraded link to `node` for a while, then a sound one again.
    fn link(&mut self, fault: Fault, node: usize) {
        let (link, hold, what) = match fault {
            Fault::Delay => {
                let d = self.rng.millis(50, 1_000);
                let what = format!("delay {} ms", d.as_millis());
                (Link::Delay(d), self.rng.millis(2_000, 8_000), what)
            }
            Fault::Bandwidth => {
                let bps = self.rng.range(2_000, 50_000);
                let what = format!("bandwidth {bps} B/s");
                (Link::Bandwidth(bps), self.rng.millis(2_000, 8_000), what)
            }
            _ => (
                Link::HalfOpen,
                self.rng.millis(2_000, 15_000),
                "half-open".into(),
            ),
        };
        let then_cut = fault == Fault::HalfOpen && self.rng.range(0, 1) == 1;
        lock(&self.setup).proxy(node).set(link);
        let after = if then_cut { ", then cut" } else { "" };
        let ms = hold.as_millis();
        self.log(fault, format!("{what} to node {node} for {ms} ms{after}"));
        self.pause_for(hold);
        let setup = lock(&self.setup);
        setup.proxy(node).set(Link::None);
        if then_cut {
            setup.proxy(node).cut();
        }
    }
}

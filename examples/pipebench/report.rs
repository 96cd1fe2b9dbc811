//! Medians and percentiles, and the Markdown report: one table, a row per figure and a
//! column per pair (per pair and broker, with several brokers), then notes.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::machine::Meta;
use crate::pairs::Pair;
use crate::scenario::Trial;
use crate::{Args, Ctx, Lane, Scenario};

/// Nearest-rank percentile of sorted values: the smallest value with at least `p` % of
/// all values at or below it.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let n = sorted.len();
    let rank = (p / 100.0 * n as f64).ceil() as usize;
    (n > 0).then(|| sorted[rank.clamp(1, n) - 1])
}

/// Median, min and max.
#[derive(Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

pub fn spread(mut values: Vec<f64>) -> Option<Spread> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = match n {
        0 => return None,
        _ if !n.is_multiple_of(2) => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    };
    Some(Spread {
        median,
        min: values[0],
        max: values[n - 1],
    })
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    spread(values.collect()).map(|s| s.median)
}

/// Two decimals below 10, one below 100, none above.
fn num(x: f64) -> String {
    match x {
        _ if x < 10.0 => format!("{x:.2}"),
        _ if x < 100.0 => format!("{x:.1}"),
        _ => format!("{x:.0}"),
    }
}

/// Two decimals, three below 0.1.
fn ratio(x: f64) -> String {
    if x < 0.1 {
        format!("{x:.3}")
    } else {
        format!("{x:.2}")
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn show_spread(s: &Spread, unit: &str) -> String {
    if s.min == s.max {
        return format!("{}{unit}", num(s.median));
    }
    format!("{}{unit} ({}–{})", num(s.median), num(s.min), num(s.max))
}

/// The runs of one pair in one scenario at one QoS.
type Runs<'a> = [&'a Trial];

/// A cell's text, and the value the ratio column compares (speed figures only).
type Cell = (String, Option<f64>);

/// Marks runs that did not deliver everything; `body` is the figure of the others.
fn with_failures(runs: &Runs, body: Option<String>) -> String {
    let bad = runs.iter().filter(|t| !t.complete).count();
    if bad == 0 {
        return body.unwrap_or_else(|| "–".into());
    }
    let lost: u64 = runs.iter().map(|t| u64::from(t.lost)).sum();
    let expected: u64 = runs.iter().map(|t| u64::from(t.expected)).sum();
    let note = match lost {
        0 => format!("{bad} of {} runs failed", runs.len()),
        _ => {
            let pct = 100.0 * lost as f64 / expected.max(1) as f64;
            format!("{bad} of {} runs lost messages ({pct:.1} %)", runs.len())
        }
    };
    match body {
        Some(b) => format!("{b}; **{note}**"),
        None => format!("**{note}**"),
    }
}

/// The median (min–max) of a figure over the complete runs.
fn timed(runs: &Runs, unit: &str, figure: impl Fn(&Trial) -> Option<f64>) -> Cell {
    let s = spread(
        runs.iter()
            .filter(|t| t.complete)
            .filter_map(|t| figure(t))
            .collect(),
    );
    let key = s.as_ref().map(|s| s.median);
    (with_failures(runs, s.map(|s| show_spread(&s, unit))), key)
}

/// Medians of two figures over all runs, with `digits` decimals: "5.9 / 4.5".
fn both(
    runs: &Runs,
    (sep, digits): (&str, usize),
    a: impl Fn(&Trial) -> Option<f64>,
    b: impl Fn(&Trial) -> Option<f64>,
) -> Cell {
    let ma = median(runs.iter().filter_map(|t| a(t)));
    let mb = median(runs.iter().filter_map(|t| b(t)));
    let show = |m: Option<f64>| m.map_or("–".into(), |m| format!("{m:.digits$}"));
    (format!("{}{sep}{}", show(ma), show(mb)), None)
}

fn latency_cell(runs: &Runs) -> Cell {
    let ok = || runs.iter().filter(|t| t.complete);
    let p50 = median(ok().filter_map(|t| t.p50_ms));
    let p99 = median(ok().filter_map(|t| t.p99_ms));
    let body = p50
        .zip(p99)
        .map(|(a, b)| format!("{} / {}", num(a), num(b)));
    (with_failures(runs, body), p99)
}

fn mib(kib: Option<u64>) -> Option<f64> {
    kib.map(|k| k as f64 / 1024.0)
}

struct Table<'a> {
    trials: &'a [Trial],
    ctx: &'a Ctx,
    lanes: &'a [Lane],
    out: String,
}

impl Table<'_> {
    fn runs(&self, scenario: &str, lane: Lane, qos: u8) -> Vec<&Trial> {
        let broker = self.ctx.broker(lane);
        let same = |t: &&Trial| {
            t.scenario == scenario
                && t.pair == lane.pair.name()
                && t.broker == broker
                && t.qos == qos
        };
        self.trials.iter().filter(same).collect()
    }

    /// What the chat pair is compared with. One broker: the mosquitto pair, the plain
    /// one when every run of it delivered everything, else the split one. Several: the
    /// chat pair through the last broker (the harness's mosquitto).
    fn reference(&self, scenario: &str, qos: u8) -> Option<Lane> {
        let last = self.ctx.brokers.len() - 1;
        if last > 0 {
            return Some(Lane {
                pair: Pair::Chat,
                via: last,
            });
        }
        [Pair::Mosquitto, Pair::MosquittoSplit]
            .into_iter()
            .map(|pair| Lane { pair, via: 0 })
            .find(|&l| {
                let runs = self.runs(scenario, l, qos);
                !runs.is_empty() && runs.iter().all(|t| t.complete)
            })
    }

    fn row(&mut self, label: &str, scenario: &str, qos: u8, cell: impl Fn(&Runs) -> Cell) {
        let mut keys = BTreeMap::new();
        let _ = write!(self.out, "| {label} |");
        for &lane in self.lanes {
            let runs = self.runs(scenario, lane, qos);
            let (text, key) = if runs.is_empty() {
                ("–".into(), None)
            } else {
                cell(&runs)
            };
            keys.insert((lane.pair.name(), lane.via), key);
            let _ = write!(self.out, " {text} |");
        }
        let reference = self.reference(scenario, qos);
        let key = |l: Lane| keys.get(&(l.pair.name(), l.via)).copied().flatten();
        let chat = Lane {
            pair: Pair::Chat,
            via: 0,
        };
        let compared = reference.and_then(|r| Some((key(chat)?, key(r)?, r)));
        match compared {
            Some((chat, r, l)) if self.ctx.brokers.len() == 1 => {
                writeln!(self.out, " {}× ({}) |", ratio(chat / r), l.pair.name())
            }
            Some((chat, r, _)) => writeln!(self.out, " {}× |", ratio(chat / r)),
            None => writeln!(self.out, " |"),
        }
        .ok();
    }
}

fn rows(t: &mut Table, args: &Args, qos: u8) {
    let q = format!("QoS {qos}");
    if args.scenarios.contains(&Scenario::Throughput) {
        let what = format!("{} × {} B", thousands(args.count.into()), args.size);
        let tp = "throughput";
        t.row(&format!("throughput {q}, {what}"), tp, qos, |r| {
            timed(r, " s", |t| t.seconds)
        });
        t.row(&format!("throughput {q}, msg/s"), tp, qos, |r| {
            let m = median(r.iter().filter(|t| t.complete).filter_map(|t| t.msgs_per_s));
            (with_failures(r, m.map(|m| thousands(m as u64))), None)
        });
        let rss = |r: &Runs| {
            both(
                r,
                (" / ", 1),
                |t| mib(t.pub_rss_kib),
                |t| mib(t.sub_rss_kib),
            )
        };
        t.row(
            &format!("peak RSS pub / sub, MiB ({q} throughput)"),
            tp,
            qos,
            rss,
        );
        let cpu = |r: &Runs| both(r, (" + ", 2), |t| t.pub_cpu_s, |t| t.sub_cpu_s);
        t.row(&format!("CPU pub + sub, s ({q} throughput)"), tp, qos, cpu);
    }
    if args.scenarios.contains(&Scenario::Latency) {
        let rate = thousands(args.rate as u64);
        t.row(
            &format!("latency {q} p50 / p99, ms ({rate} lines/s)"),
            "latency",
            qos,
            latency_cell,
        );
        t.row(&format!("latency {q} max, ms"), "latency", qos, |r| {
            timed(r, "", |t| t.max_ms)
        });
    }
    if args.scenarios.contains(&Scenario::Oneshot) {
        let ms = |t: &Trial| t.seconds.map(|s| s * 1e3);
        t.row(&format!("one-shot {q}, ms"), "oneshot", qos, |r| {
            timed(r, "", ms)
        });
    }
}

/// The whole report: the settings, the table and the notes.
pub fn markdown(
    trials: &[Trial],
    ctx: &Ctx,
    lanes: &[Lane],
    pairs: &[Pair],
    meta: &Meta,
) -> String {
    let args = &ctx.args;
    let mut t = Table {
        trials,
        ctx,
        lanes,
        out: String::new(),
    };
    let names: Vec<String> = lanes.iter().map(|&l| ctx.label(l)).collect();
    let compared = match &ctx.brokers[..] {
        [_] => "chat ÷ mosquitto".to_owned(),
        [first, .., last] => format!("chat via {} ÷ chat via {}", first.name, last.name),
        [] => String::new(),
    };
    let _ = writeln!(t.out, "| figure | {} | {compared} |", names.join(" | "));
    let _ = writeln!(t.out, "|---|{}---|", "---|".repeat(lanes.len()));
    for &qos in &args.qos {
        rows(&mut t, args, qos);
    }
    let mut out = format!(
        "{}, {} ({} CPUs, {}, Linux {}), {}, paho-mqtt {}.\n\
         Median (min–max) of {} runs per pair, the pairs taking turns; a run that did not \
         deliver every message is left out of the median and marked in bold.\n\n",
        meta.date,
        meta.host,
        meta.cpus,
        meta.os,
        meta.kernel,
        meta.mosquitto,
        meta.paho.as_deref().unwrap_or("not installed"),
        args.repeats,
    );
    if let Some(cmd) = &args.broker_cmd {
        let and = match args.with_mosquitto {
            true => " and the harness's mosquitto, taking turns",
            false => "",
        };
        out.push_str(&format!(
            "Broker: `{cmd}`{and} (the clients' mosquitto is named above).\n\n"
        ));
    }
    if args.tls {
        out.push_str(
            "Over TLS (`--tls`): a throwaway CA and an ECDSA P-256 server certificate for \
             127.0.0.1; chat with `mqtts://` and `--cafile`, mosquitto's clients with \
             `--cafile`.\n\n",
        );
    }
    if args.session {
        out.push_str("Subscribers in a persistent session (`--session`).\n\n");
    }
    out.push_str(&t.out);
    out.push('\n');
    out.push_str(&notes(trials, ctx, pairs, meta));
    out
}

/// Other processes' CPU time in a run beyond which the run is counted in the notes.
const OTHERS_NOTED_S: f64 = 0.1;

fn notes(trials: &[Trial], ctx: &Ctx, pairs: &[Pair], meta: &Meta) -> String {
    let mut out = String::new();
    for p in pairs {
        let _ = writeln!(out, "- {}: {}", p.name(), p.describe());
    }
    for b in &meta.brokers {
        let _ = writeln!(out, "- Broker: {b}");
    }
    for s in &meta.skipped {
        let _ = writeln!(out, "- {s}");
    }
    if let Some(kib) = meta.rss_floor_kib {
        let mib = kib as f64 / 1024.0;
        let _ = writeln!(
            out,
            "- Peak RSS: a process that does nothing shows {mib:.1} MiB here."
        );
    }
    let pct = |b: Option<f64>| b.map_or("?".into(), |b| format!("{:.0} %", b * 100.0));
    let (before, after) = (pct(meta.cpu_busy_before), pct(meta.cpu_busy_after));
    let _ = writeln!(
        out,
        "- CPUs busy with other work: {before} before the run, {after} after it."
    );
    let others: Vec<f64> = trials.iter().filter_map(|t| t.others_cpu_s).collect();
    let over = others.iter().filter(|&&s| s > OTHERS_NOTED_S).count();
    if let Some(s) = spread(others) {
        let _ = writeln!(
            out,
            "- CPU time other processes took during each throughput or latency run: median \
             {:.2} s, max {:.2} s; {over} runs over {OTHERS_NOTED_S} s.",
            s.median.max(0.0),
            s.max.max(0.0)
        );
    }
    let redone = ctx.redone.borrow().len();
    if let Some(limit) = ctx.args.max_others_cpu {
        let _ = writeln!(
            out,
            "- Runs done again because other processes took more than {limit} s of CPU \
             meanwhile (`--max-others-cpu`): {redone}."
        );
    }
    let mut failed: BTreeMap<String, u32> = BTreeMap::new();
    for t in trials.iter().filter(|t| !t.complete) {
        let key = format!("{} {} QoS {}: {}", t.pair, t.scenario, t.qos, t.outcome);
        *failed.entry(key).or_default() += 1;
    }
    for (what, n) in failed {
        let _ = writeln!(out, "- Incomplete: {what} ({n}×)");
    }
    let _ = writeln!(out, "- {:.0} s in all: `{}`", meta.elapsed_s, meta.command);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), Some(2));
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        let s = spread(vec![3.0, 1.0, 2.0]).unwrap();
        assert_eq!(
            s,
            Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        assert_eq!(spread(vec![4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(spread(vec![]), None);
    }

    #[test]
    fn number_formats() {
        assert_eq!(thousands(117_647), "117,647");
        assert_eq!(thousands(999), "999");
        assert_eq!(
            (ratio(0.0031), ratio(0.456)),
            ("0.003".into(), "0.46".into())
        );
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(
            (num(0.847), num(43.71), num(203.5)),
            ("0.85".into(), "43.7".into(), "204".into())
        );
    }
}

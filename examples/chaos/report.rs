//! What a run found: a Markdown table row on stdout (the one RELIABILITY.md keeps), and
//! with `--json FILE` everything: seed, faults with their times, sessions, each reader's
//! verdict, and every process's memory and open files.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::check::{Session, Verdict};
use crate::nemesis::Event;
use crate::proc::Life;

/// How much a long-lived tool's RSS may move between start and end and still count as
/// flat.
pub const FLAT: f64 = 0.10;

/// The shortest run whose RSS figures count for the verdict.
pub const JUDGE_RSS_FROM_S: u64 = 600;

/// Everything a run found.
#[derive(Debug, Serialize)]
pub struct Report {
    pub setup: String,
    pub seed: u64,
    pub duration_s: u64,
    pub faults: String,
    pub total: Verdict,
    pub readers: Vec<Verdict>,
    /// mosquitto_sub's findings (`--reference`): the broker as another client sees it.
    pub reference: Option<Verdict>,
    /// The proxies kept every connection's bytes: each lost line is known to be the
    /// broker's (never sent) or a reader's.
    pub captured: bool,
    /// Lines the broker never sent, and its own reorderings, do not fail the run.
    pub broker_may_lose: bool,
    /// Reader exits during the run (chat-sub should never exit on its own).
    pub reader_exits: Vec<String>,
    /// chat-pub runs that crashed, were killed or hung (not 0, 1 or 3).
    pub writer_failures: Vec<String>,
    pub notes: Vec<String>,
    pub memory: Vec<Memory>,
    pub events: Vec<Event>,
    pub sessions: Vec<Vec<Session>>,
    pub lives: Vec<Life>,
}

/// A role's memory and files over the run: the long-lived process's start and end, or
/// for roles with many lives (chat-pub sessions, restarted brokers) the peaks.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub role: String,
    pub lives: usize,
    pub start_rss_kib: u64,
    pub end_rss_kib: u64,
    pub max_rss_kib: u64,
    pub start_fds: u64,
    pub end_fds: u64,
    pub max_fds: u64,
    /// One process lived through the run, so start and end compare.
    pub long_lived: bool,
    /// One of ours (chat-pub, chat-sub, chat-broker), not a third-party broker.
    pub tool: bool,
}

impl Memory {
    /// Whether a long-lived tool's RSS stayed within ±FLAT.
    pub fn flat(&self) -> bool {
        if !self.tool || !self.long_lived || self.start_rss_kib == 0 {
            return true;
        }
        let change = self.end_rss_kib as f64 / self.start_rss_kib as f64 - 1.0;
        change.abs() <= FLAT
    }
}

/// Groups the sampler's lives by role.
pub fn memory(lives: &[Life]) -> Vec<Memory> {
    let mut roles: BTreeMap<&str, Vec<&Life>> = BTreeMap::new();
    for l in lives {
        roles.entry(&l.role).or_default().push(l);
    }
    roles
        .into_iter()
        .map(|(role, lives)| {
            let first = lives[0];
            let (start, end) = (
                first.start.unwrap_or_default(),
                first.end.unwrap_or_default(),
            );
            Memory {
                role: role.to_string(),
                lives: lives.len(),
                start_rss_kib: start.rss_kib,
                end_rss_kib: end.rss_kib,
                max_rss_kib: lives.iter().map(|l| l.max_rss_kib).max().unwrap_or(0),
                start_fds: start.fds,
                end_fds: end.fds,
                max_fds: lives.iter().map(|l| l.max_fds).max().unwrap_or(0),
                long_lived: lives.len() == 1 && first.start.is_some(),
                tool: ["reader", "writer", "chat-broker"]
                    .iter()
                    .any(|t| role.starts_with(t)),
            }
        })
        .collect()
}

impl Report {
    /// Whether every promise held. RSS is judged from runs of [`JUDGE_RSS_FROM_S`] on: a
    /// shorter run is mostly its warm-up.
    pub fn clean(&self) -> bool {
        let flat = self.duration_s < JUDGE_RSS_FROM_S || self.memory.iter().all(Memory::flat);
        let delivery = match self.broker_may_lose {
            true => self.readers.iter().all(Verdict::clean_but_the_broker),
            false => self.total.clean(),
        };
        let tools = self.reader_exits.is_empty() && self.writer_failures.is_empty();
        delivery && tools && self.total.acked > 0 && flat
    }

    /// The Markdown table: header and this run's row.
    pub fn table(&self) -> String {
        let t = &self.total;
        let mib = |k: u64| k as f64 / 1024.0;
        let rss: Vec<String> = self
            .memory
            .iter()
            .filter(|m| m.long_lived && m.tool)
            .map(|m| {
                format!(
                    "{} {:.1}→{:.1}",
                    m.role,
                    mib(m.start_rss_kib),
                    mib(m.end_rss_kib)
                )
            })
            .collect();
        let (lost, reordered) = match self.captured {
            true => (
                format!("{} ({} never sent)", t.lost, t.lost_unsent),
                format!("{} ({} not the broker's)", t.reordered, t.reordered_own),
            ),
            false => (t.lost.to_string(), t.reordered.to_string()),
        };
        format!(
            "| set-up | seconds | faults injected | lines acknowledged | indeterminate | lost | \
             duplicated | reordered | phantom | RSS start→end (MiB) |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n\
             | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            self.setup,
            self.duration_s,
            self.faults,
            t.acked,
            t.indeterminate,
            lost,
            t.duplicated,
            reordered,
            t.phantom,
            rss.join("; ")
        )
    }
}

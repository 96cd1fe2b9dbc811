//! The engine behind its lock, and each connection's writer.
//!
//! Every connection takes the lock once per batch of packets it read, the engine decides,
//! and its actions go to the writers through unbounded queues ([`Outbox`]): a client
//! that reads slowly holds up nobody. How much waits for a client is bounded all the same (see
//! [`MAX_UNWRITTEN`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::broker::engine::{Action, ConnId, Engine, Frame, In};
use crate::broker::gate::Gate;
use crate::broker::store::{self, Journal, format};
use writer::{Out, Outbox, write_loop};

mod writer;

/// Most bytes a connection may have waiting to be written before QoS 0 messages to it
/// are dropped (as mosquitto does for a client that falls behind): a client that stops
/// reading must not make the broker grow without end. Twice as much, and the connection
/// is closed (its will is sent): it reads nothing, not even acknowledgements.
pub const MAX_UNWRITTEN: usize = 64 << 20;

/// The way to one connection's writer.
pub struct Writer {
    outbox: Arc<Outbox>,
    /// Bytes handed to the writer and not yet written.
    unwritten: Arc<AtomicUsize>,
    /// QoS 0 messages dropped for it.
    dropped: u64,
    /// Tells the connection's reader to stop.
    stop: Arc<Notify>,
    task: AbortHandle,
}

impl Writer {
    /// Hands a packet to the writer; false when the client is so far behind that the
    /// connection must end.
    fn send(&mut self, id: ConnId, f: Frame) -> bool {
        let behind = self.unwritten.load(Ordering::Relaxed);
        if behind > 2 * MAX_UNWRITTEN {
            return false;
        }
        if f.is_qos0_publish() && behind > MAX_UNWRITTEN {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                log::warn!(
                    "connection {id}: {} QoS 0 messages dropped so far: the client does not \
                     read (over {} MiB unwritten)",
                    self.dropped,
                    MAX_UNWRITTEN >> 20
                );
            }
            return true;
        }
        self.unwritten.fetch_add(f.len(), Ordering::Relaxed);
        self.outbox.push(Out::Bytes(f.head));
        if !f.body.is_empty() {
            self.outbox.push(Out::Bytes(f.body));
        }
        true
    }
}

impl Drop for Writer {
    /// The hub lets go of the connection: its writer writes what it has, then ends.
    fn drop(&mut self) {
        self.outbox.end();
    }
}

/// The engine and the way to each connection's writer.
pub struct Hub {
    engine: Engine,
    writers: HashMap<ConnId, Writer>,
    /// The store's journal (`--data-dir`).
    journal: Option<Arc<Journal>>,
    /// What waits for the store: each action with the batch of records that must be on
    /// disk before it is carried out, in the engine's order.
    held: VecDeque<(u64, Action)>,
    /// Connections the engine closed, whose Close may still be held: they read no more.
    closing: HashSet<ConnId>,
    /// The engine's actions being carried out (a buffer kept from one batch to the next).
    actions: Vec<Action>,
}

impl Hub {
    /// Carries out what the engine decided. With a store, the records go to its journal
    /// and whatever the engine queued after one waits until it is on disk (so an
    /// acknowledgement promises that the message is), as does everything after what
    /// already waits (so each connection's packets keep their order).
    fn dispatch(&mut self) {
        let mut encoded = Vec::new();
        let mut later = Vec::new();
        let mut dead = Vec::new();
        let mut clock = None;
        let mut actions = std::mem::take(&mut self.actions);
        self.engine.take_actions(&mut actions);
        for a in actions.drain(..) {
            if let Action::Close(c) = &a {
                self.closing.insert(*c);
            }
            match a {
                Action::Store(rec) => {
                    let clock = clock.get_or_insert_with(format::Clock::now);
                    format::encode(&rec, clock, &mut encoded);
                }
                a if encoded.is_empty() && self.held.is_empty() => self.perform(a, &mut dead),
                a => later.push(a),
            }
        }
        if let Some(j) = &self.journal {
            let batch = match encoded.is_empty() {
                true => j.appended(),
                false => j.append(&encoded),
            };
            self.held.extend(later.into_iter().map(|a| (batch, a)));
        }
        self.actions = actions;
        self.bury(dead);
    }

    /// The store has synced batches up to `synced`: what waited for them is carried out.
    fn release(&mut self, synced: u64) {
        let mut dead = Vec::new();
        while let Some((batch, _)) = self.held.front()
            && *batch <= synced
        {
            if let Some((_, a)) = self.held.pop_front() {
                self.perform(a, &mut dead);
            }
        }
        self.bury(dead);
    }

    fn perform(&mut self, a: Action, dead: &mut Vec<ConnId>) {
        match a {
            Action::Send(c, f) => {
                if let Some(w) = self.writers.get_mut(&c)
                    && !w.send(c, f)
                {
                    dead.push(c);
                }
            }
            Action::Close(c) => {
                self.closing.remove(&c);
                if let Some(w) = self.writers.remove(&c) {
                    w.outbox.push(Out::Close);
                    w.stop.notify_one();
                }
            }
            Action::Store(_) => {}
        }
    }

    /// Connections closed for not reading: their writers stop at once.
    fn bury(&mut self, dead: Vec<ConnId>) {
        for c in dead {
            if let Some(w) = self.writers.remove(&c) {
                log::warn!(
                    "connection {c}: closed: over {} MiB unwritten",
                    (2 * MAX_UNWRITTEN) >> 20
                );
                w.task.abort();
                w.stop.notify_one();
            }
        }
    }
}

pub struct Shared {
    hub: Mutex<Hub>,
    /// Who may connect (outside the engine's lock: a password check takes long).
    pub gate: Gate,
    next: AtomicU64,
    /// Writers still running, and a wake-up for when none is.
    writing: Arc<Writing>,
}

/// How many writers run; [`Shared::flushed`] waits for none.
#[derive(Default)]
pub struct Writing {
    count: AtomicUsize,
    idle: Notify,
}

/// Counts a writer from its start to its end, however it ends (aborted included).
struct Counted(Arc<Writing>);

impl Counted {
    fn new(writing: &Arc<Writing>) -> Counted {
        writing.count.fetch_add(1, Ordering::AcqRel);
        Counted(writing.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Shared {
    pub fn new(engine: Engine, journal: Option<Arc<Journal>>, gate: Gate) -> Shared {
        Shared {
            gate,
            hub: Mutex::new(Hub {
                engine,
                writers: HashMap::new(),
                journal,
                held: VecDeque::new(),
                closing: HashSet::new(),
                actions: Vec::new(),
            }),
            next: AtomicU64::new(1),
            writing: Arc::default(),
        }
    }

    /// The broker stops: the engine tells every client and closes its connection (see
    /// [`Engine::shutdown`]); a connection that has not sent its CONNECT yet is closed too.
    pub fn shutdown(&self) {
        let mut hub = self.hub();
        hub.engine.shutdown(Instant::now());
        hub.dispatch();
        // Those that never sent CONNECT, after what waits for the store.
        let mut quiet: Vec<ConnId> = (hub.writers.keys())
            .filter(|c| !hub.closing.contains(c))
            .copied()
            .collect();
        quiet.sort_unstable();
        let batch = hub.journal.as_ref().map_or(0, |j| j.appended());
        for c in quiet {
            hub.closing.insert(c);
            hub.held.push_back((batch, Action::Close(c)));
        }
        let synced = hub.journal.as_ref().map_or(0, |j| j.synced());
        hub.release(synced);
    }

    /// The store synced batches up to `synced`.
    pub fn released(&self, synced: u64) {
        self.hub().release(synced);
    }

    /// Writes a snapshot into the store if its writer asked for one (a compaction).
    pub fn compact(&self) {
        let hub = self.hub();
        let Some(j) = hub.journal.clone().filter(|j| j.wants_compaction()) else {
            return;
        };
        let (mut snapshot, started) = (Vec::new(), Instant::now());
        store::encode_snapshot(&hub.engine, &mut snapshot);
        log::info!(
            "store: a snapshot of {} bytes for a compaction, made in {:.2}s",
            snapshot.len(),
            started.elapsed().as_secs_f64()
        );
        // What is held already waits for an earlier batch, which the snapshot holds.
        j.compact(snapshot);
    }

    /// Waits until every writer has written what it had and ended.
    pub async fn flushed(&self) {
        loop {
            let idle = self.writing.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.writing.count.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }

    fn hub(&self) -> std::sync::MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls the engine, then carries out its actions.
    pub fn call(&self, f: impl FnOnce(&mut Engine)) {
        let mut hub = self.hub();
        f(&mut hub.engine);
        hub.dispatch();
    }

    /// Hands a connection's packets to the engine, in order, until the engine closes it
    /// (what follows is not read: a CONNECT after a DISCONNECT must not take a session).
    pub fn feed(&self, id: ConnId, batch: &mut Vec<In>, now: Instant) {
        let mut hub = self.hub();
        for p in batch.drain(..) {
            if !hub.writers.contains_key(&id) || hub.closing.contains(&id) {
                continue;
            }
            hub.engine.handle(id, p, now);
            hub.dispatch();
        }
    }

    /// A new connection: its number, and its writer (which ends when told to close,
    /// when the connection is [`gone`](Shared::gone), or when writing fails).
    pub fn open<W: AsyncWrite + Unpin + Send + 'static>(
        &self,
        wr: W,
        stop: Arc<Notify>,
    ) -> (ConnId, tokio::task::JoinHandle<()>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let outbox = Arc::new(Outbox::default());
        let unwritten = Arc::new(AtomicUsize::new(0));
        let counted = Counted::new(&self.writing);
        let writer = tokio::spawn(write_loop(
            wr,
            outbox.clone(),
            unwritten.clone(),
            stop.clone(),
            counted,
        ));
        let w = Writer {
            outbox: outbox.clone(),
            unwritten,
            dropped: 0,
            stop,
            task: writer.abort_handle(),
        };
        self.hub().writers.insert(id, w);
        (id, writer)
    }

    /// The connection ended: the engine hears of it (unless it ended it), the writer
    /// finishes what it has.
    pub fn gone(&self, id: ConnId) {
        let mut hub = self.hub();
        hub.engine.lost(id, Instant::now());
        hub.dispatch();
        hub.writers.remove(&id);
        hub.closing.remove(&id);
    }
}

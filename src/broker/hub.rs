//! The engine behind its lock, and each connection's writer.
//!
//! Every connection takes the lock once per batch of packets it read, the engine decides,
//! and its actions go to the writers through unbounded channels: a client that reads
//! slowly holds up nobody. How much waits for a client is bounded all the same (see
//! [`MAX_UNWRITTEN`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use crate::broker::engine::{Action, ConnId, Engine, Frame, In, Limits};

/// Most bytes a connection may have waiting to be written before QoS 0 messages to it
/// are dropped (as mosquitto does for a client that falls behind): a client that stops
/// reading must not make the broker grow without end. Twice as much, and the connection
/// is closed (its will is sent): it reads nothing, not even acknowledgements.
pub const MAX_UNWRITTEN: usize = 64 << 20;
/// How much a writer gathers into one write.
const WRITE_BATCH: usize = 64 << 10;

/// What a connection's writer is told. (A PUBLISH comes as its head, then its payload:
/// a channel holds 32 of these per block, allocated with the channel, so they are small.)
pub enum Out {
    Bytes(Bytes),
    /// Write what came before, then close.
    Close,
}

/// The way to one connection's writer.
pub struct Writer {
    tx: mpsc::UnboundedSender<Out>,
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
        let _ = self.tx.send(Out::Bytes(f.head));
        if !f.body.is_empty() {
            let _ = self.tx.send(Out::Bytes(f.body));
        }
        true
    }
}

/// The engine and the way to each connection's writer.
pub struct Hub {
    engine: Engine,
    writers: HashMap<ConnId, Writer>,
}

impl Hub {
    /// Carries out what the engine decided.
    fn dispatch(&mut self) {
        let Hub { engine, writers } = self;
        let mut dead = Vec::new();
        for a in engine.actions() {
            match a {
                Action::Send(c, f) => {
                    if let Some(w) = writers.get_mut(&c)
                        && !w.send(c, f)
                    {
                        dead.push(c);
                    }
                }
                Action::Close(c) => {
                    if let Some(w) = writers.remove(&c) {
                        let _ = w.tx.send(Out::Close);
                        w.stop.notify_one();
                    }
                }
            }
        }
        for c in dead {
            if let Some(w) = writers.remove(&c) {
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
    pub fn new(limits: Limits) -> Shared {
        Shared {
            hub: Mutex::new(Hub {
                engine: Engine::with_limits(limits),
                writers: HashMap::new(),
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
        for (_, w) in hub.writers.drain() {
            let _ = w.tx.send(Out::Close);
            w.stop.notify_one();
        }
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
            if !hub.writers.contains_key(&id) {
                continue;
            }
            hub.engine.handle(id, p, now);
            hub.dispatch();
        }
    }

    /// A new connection: its number, and its writer (which ends when told to close,
    /// when the connection is [`gone`](Shared::gone), or when writing fails).
    pub fn open(
        &self,
        wr: OwnedWriteHalf,
        stop: Arc<Notify>,
    ) -> (ConnId, tokio::task::JoinHandle<()>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let unwritten = Arc::new(AtomicUsize::new(0));
        let counted = Counted::new(&self.writing);
        let writer = tokio::spawn(write_loop(wr, rx, unwritten.clone(), stop.clone(), counted));
        let w = Writer {
            tx,
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
        self.call(|e| e.lost(id, Instant::now()));
        self.hub().writers.remove(&id);
    }
}

/// Writes what the engine sends, gathering what is waiting into one write; a large
/// payload is written from where it is, not copied.
async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Out>,
    unwritten: Arc<AtomicUsize>,
    stop: Arc<Notify>,
    _counted: Counted,
) {
    let mut batch = Vec::new();
    let mut close = false;
    'run: while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(out) = next.take() {
            match out {
                // The common case of one small packet: written as it is.
                Out::Bytes(b) if batch.is_empty() && rx.is_empty() => {
                    if wr.write_all(&b).await.is_err() {
                        break 'run;
                    }
                    unwritten.fetch_sub(b.len(), Ordering::Relaxed);
                }
                Out::Bytes(b) if b.len() >= WRITE_BATCH => {
                    taken += b.len();
                    let flushed = wr.write_all(&batch).await;
                    if flushed.is_err() || wr.write_all(&b).await.is_err() {
                        break 'run;
                    }
                    batch.clear();
                }
                Out::Bytes(b) => {
                    taken += b.len();
                    batch.extend_from_slice(&b);
                }
                Out::Close => close = true,
            }
            if !close && batch.len() < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() && wr.write_all(&batch).await.is_err() {
            break;
        }
        unwritten.fetch_sub(taken, Ordering::Relaxed);
        batch = Vec::new();
        if close {
            let _ = wr.shutdown().await;
            break;
        }
    }
    stop.notify_one();
}

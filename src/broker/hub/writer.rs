//! Each connection's writer: the queue the hub fills for it ([`Outbox`]), and the task
//! that writes what is queued ([`write_loop`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use super::Counted;

/// How much a writer gathers into one write.
const WRITE_BATCH: usize = 64 << 10;

/// What a connection's writer is told. (A PUBLISH comes as its head, then its payload.)
pub enum Out {
    Bytes(Bytes),
    /// Write what came before, then close.
    Close,
}

/// What waits for one connection's writer: a queue that allocates nothing until it is
/// used (a tokio channel allocates a block of 32 slots with itself, 1.5 KiB for every
/// idle member of a room), and the writer's wake-up.
#[derive(Default)]
pub struct Outbox {
    /// The queue, and whether the hub let go of it (the writer ends once it is empty).
    queue: Mutex<(VecDeque<Out>, bool)>,
    ready: Notify,
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Out>, bool)> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn push(&self, out: Out) {
        self.lock().0.push_back(out);
        self.ready.notify_one();
    }

    /// Nothing more will come.
    pub fn end(&self) {
        self.lock().1 = true;
        self.ready.notify_one();
    }

    /// Waits for what is queued and moves it into `into`; false once the queue ended and
    /// nothing is left.
    async fn take(&self, into: &mut VecDeque<Out>) -> bool {
        loop {
            {
                let mut q = self.lock();
                if !q.0.is_empty() {
                    std::mem::swap(&mut q.0, into);
                    return true;
                }
                if q.1 {
                    return false;
                }
            }
            self.ready.notified().await;
        }
    }
}

/// Writes what the engine sends, gathering what is waiting into one write; a large
/// payload is written from where it is, not copied.
pub async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    outbox: Arc<Outbox>,
    unwritten: Arc<AtomicUsize>,
    stop: Arc<Notify>,
    _counted: Counted,
) {
    let mut batch = Vec::new();
    let mut pending = VecDeque::new();
    'run: while outbox.take(&mut pending).await {
        let mut close = false;
        // The common case of one small packet: written as it is.
        if let (1, Some(Out::Bytes(b))) = (pending.len(), pending.front()) {
            if wr.write_all(b).await.is_err() {
                break 'run;
            }
            unwritten.fetch_sub(b.len(), Ordering::Relaxed);
            pending.clear();
            continue;
        }
        let mut taken = 0;
        for out in pending.drain(..) {
            match out {
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
                    if batch.len() >= WRITE_BATCH {
                        if wr.write_all(&batch).await.is_err() {
                            break 'run;
                        }
                        batch.clear();
                    }
                }
                Out::Close => close = true,
            }
        }
        if !batch.is_empty() && wr.write_all(&batch).await.is_err() {
            break;
        }
        unwritten.fetch_sub(taken, Ordering::Relaxed);
        // An idle connection keeps no buffer.
        batch = Vec::new();
        pending = VecDeque::new();
        if close {
            let _ = wr.shutdown().await;
            break;
        }
    }
    stop.notify_one();
}

//! chat-broker's store (`--data-dir DIR`): one file, `DIR/store`, that holds a snapshot of
//! the engine's durable state followed by a log of the changes since (the engine's
//! records, see `engine::record`), each framed with its length and checksum
//! ([`format`]).
//!
//! - **Start.** The file is read and replayed into the engine; a torn tail (a write that
//!   a crash cut short, never acknowledged) is cut off, anything else that cannot be read
//!   stops the start. Then a new snapshot is written beside it, synced and renamed over
//!   it, so every start begins with a compact file.
//! - **Group commit.** The hub appends the records of each batch to a [`Journal`]; one
//!   thread writes what has gathered and syncs it with one `fdatasync`, then tells the
//!   hub how far the file is synced, which releases what waited for it (acknowledgements
//!   above all). While it syncs, the next batch gathers.
//! - **Compaction.** Once the log since the last snapshot is larger than
//!   [`COMPACT_AFTER`] and twice the snapshot, the writer asks for a new snapshot; the hub
//!   writes the engine's state at its next tick, and the writer puts it in place (a
//!   temporary file, synced, renamed) instead of what was waiting.
//! - **Stop.** What was appended is written and synced before the process exits.

pub mod format;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use super::engine::{Engine, Record};
use crate::error::Error;
use format::Clock;

/// The log grows to at least this much before a compaction.
pub const COMPACT_AFTER: u64 = 64 << 20;
/// The most the writer writes between two syncs: a crash can tear no more than this off
/// the end of the file ([`format::TORN_MAX`] allows for it and one largest record).
const SYNC_EVERY: usize = 32 << 20;

/// What the hub has appended and the writer has not yet taken.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// Batches appended so far; the writer has synced `Journal::synced` of them.
    appended: u64,
    /// `bytes` is a whole snapshot: it goes into a new file.
    snapshot: bool,
    /// The broker stops: write what is left, then end.
    closing: bool,
}

/// Where the hub appends records, and how far the writer has synced them.
#[derive(Default)]
pub struct Journal {
    pending: Mutex<Pending>,
    wake: Condvar,
    synced: AtomicU64,
    /// The writer asks for a compaction.
    compact: AtomicBool,
}

impl Journal {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one batch of encoded records; its number, synced once
    /// [`Journal::synced`] reaches it.
    pub fn append(&self, bytes: &[u8]) -> u64 {
        let mut p = self.pending();
        p.bytes.extend_from_slice(bytes);
        p.appended += 1;
        self.wake.notify_one();
        p.appended
    }

    /// The number of the last batch appended.
    pub fn appended(&self) -> u64 {
        self.pending().appended
    }

    /// The number of the last batch on disk.
    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// Whether the writer asks for a compaction (and forgets that it asked).
    pub fn wants_compaction(&self) -> bool {
        self.compact.swap(false, Ordering::AcqRel)
    }

    /// A snapshot of the whole durable state replaces what waits to be written (it holds
    /// all of it); its number, like a batch's.
    pub fn compact(&self, snapshot: Vec<u8>) -> u64 {
        let mut p = self.pending();
        p.bytes = snapshot;
        p.snapshot = true;
        p.appended += 1;
        self.wake.notify_one();
        p.appended
    }
}

/// The open store: the journal, and its writer once started.
pub struct Store {
    journal: Arc<Journal>,
    path: PathBuf,
    file: Option<File>,
    /// The size of the snapshot the file begins with.
    snapshot_len: u64,
    writer: Option<JoinHandle<()>>,
    /// Holds the lock on the directory while the broker runs.
    _lock: File,
}

/// Opens the store in `dir` (made if missing) and replays it into `engine`.
pub fn open(dir: &Path, engine: &mut Engine) -> Result<Store, Error> {
    let failed = |what: &str, e: io::Error| Error::Failed(format!("{what}: {e}"));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            failed(
                &format!("cannot make the data directory {}", dir.display()),
                e,
            )
        })?;
    let lock = lock(dir)?;
    let path = dir.join("store");
    engine.set_durable();
    let started = Instant::now();
    match fs::read(&path) {
        Ok(bytes) => replay(&path, &bytes, engine)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            log::info!("{}: a new store", path.display());
        }
        Err(e) => {
            let hint = "chat-broker does not start without what it kept";
            return Err(failed(
                &format!("cannot read the store {} ({hint})", path.display()),
                e,
            ));
        }
    }
    let (sessions, retained, queued) = engine.restored();
    let mut store = Store {
        journal: Arc::default(),
        path,
        file: None,
        snapshot_len: 0,
        writer: None,
        _lock: lock,
    };
    let mut snapshot = Vec::new();
    encode_snapshot(engine, &mut snapshot);
    store.replace(&snapshot).map_err(|e| {
        failed(
            &format!("cannot write the store {}", store.path.display()),
            e,
        )
    })?;
    log::info!(
        "{}: sessions {sessions}, retained messages {retained}, queued messages {queued} \
         (read and written again in {:.2}s)",
        store.path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(store)
}

/// Takes the lock on `dir`: one broker at a time.
fn lock(dir: &Path) -> Result<File, Error> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::Failed(format!("cannot open {}: {e}", path.display())))?;
    // SAFETY: flock on a file descriptor this function owns; no memory is shared.
    let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !taken {
        return Err(Error::Failed(format!(
            "another chat-broker uses the data directory {} (it holds {})",
            dir.display(),
            path.display()
        )));
    }
    Ok(file)
}

/// Replays the file's records into the engine; a torn tail is cut, damage stops.
fn replay(path: &Path, bytes: &[u8], engine: &mut Engine) -> Result<(), Error> {
    let clock = Clock::now();
    let now = clock.instant;
    match format::scan(bytes, &clock, |rec| engine.restore(rec, now)) {
        Ok(scanned) => {
            if scanned.cut > 0 {
                log::warn!(
                    "{}: its last {} bytes were a write that a crash cut short (never \
                     acknowledged): cut off",
                    path.display(),
                    scanned.cut
                );
            }
            Ok(())
        }
        Err(damage) => Err(Error::Failed(format!(
            "the store {} cannot be read: byte {}: {}. chat-broker does not start without \
             what it kept. To start with an empty store, move the file away (keep it: it \
             may hold messages and sessions someone wants back)",
            path.display(),
            damage.offset,
            damage.why
        ))),
    }
}

/// The engine's whole durable state, encoded.
pub fn encode_snapshot(engine: &Engine, out: &mut Vec<u8>) {
    let clock = Clock::now();
    engine.snapshot(|rec: Record| format::encode(&rec, &clock, out));
}

impl Store {
    /// The journal the hub appends to.
    pub fn journal(&self) -> Arc<Journal> {
        self.journal.clone()
    }

    /// Puts a new file in place, holding `snapshot`.
    fn replace(&mut self, snapshot: &[u8]) -> io::Result<()> {
        self.file = Some(put_in_place(&self.path, snapshot)?);
        self.snapshot_len = snapshot.len() as u64;
        Ok(())
    }

    /// Starts the writer. `released(n)` is called once batches up to `n` are synced;
    /// `failed(why)` once the store cannot be written (nothing more is released).
    pub fn start(
        &mut self,
        released: impl Fn(u64) + Send + 'static,
        failed: impl Fn(String) + Send + 'static,
    ) {
        let mut w = Writer {
            journal: self.journal.clone(),
            path: self.path.clone(),
            file: self.file.take(),
            snapshot_len: self.snapshot_len,
            logged: 0,
            asked: false,
        };
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                if let Err(e) = w.run(&released) {
                    failed(format!("cannot write the store {}: {e}", w.path.display()));
                }
            });
        match thread {
            Ok(t) => self.writer = Some(t),
            Err(e) => log::error!("cannot start the store's writer: {e}"),
        }
    }

    /// Writes and syncs what was appended, then ends the writer (the broker stops).
    pub fn close(&mut self) {
        {
            let mut p = self.journal.pending();
            p.closing = true;
            self.journal.wake.notify_one();
        }
        if let Some(t) = self.writer.take() {
            let _ = t.join();
        }
    }
}

/// The writer thread's side of the store.
struct Writer {
    journal: Arc<Journal>,
    path: PathBuf,
    file: Option<File>,
    snapshot_len: u64,
    /// Bytes logged since the snapshot.
    logged: u64,
    /// A compaction was asked for and has not come yet.
    asked: bool,
}

impl Writer {
    fn run(&mut self, released: &impl Fn(u64)) -> io::Result<()> {
        loop {
            let (bytes, upto, snapshot, closing) = {
                let mut p = self.journal.pending();
                while p.bytes.is_empty() && !p.closing {
                    p = (self.journal.wake.wait(p)).unwrap_or_else(PoisonError::into_inner);
                }
                let bytes = std::mem::take(&mut p.bytes);
                let snapshot = std::mem::take(&mut p.snapshot);
                (bytes, p.appended, snapshot, p.closing)
            };
            if !bytes.is_empty() {
                match snapshot {
                    true => self.replace(&bytes)?,
                    false => self.log(&bytes)?,
                }
                self.journal.synced.store(upto, Ordering::Release);
                released(upto);
            }
            if closing && self.journal.pending().bytes.is_empty() {
                return Ok(());
            }
        }
    }

    /// Appends records to the file, syncing at least every [`SYNC_EVERY`] bytes and at
    /// the end.
    fn log(&mut self, bytes: &[u8]) -> io::Result<()> {
        let file = (self.file.as_mut()).ok_or_else(|| io::Error::other("the store is closed"))?;
        for part in split(bytes, SYNC_EVERY) {
            file.write_all(part)?;
            file.sync_data()?;
        }
        self.logged += bytes.len() as u64;
        if !self.asked && self.logged > COMPACT_AFTER.max(2 * self.snapshot_len) {
            self.asked = true;
            self.journal.compact.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn replace(&mut self, snapshot: &[u8]) -> io::Result<()> {
        self.file = Some(put_in_place(&self.path, snapshot)?);
        log::info!(
            "{}: compacted: {} bytes of log replaced by a snapshot of {} bytes",
            self.path.display(),
            self.logged,
            snapshot.len()
        );
        self.snapshot_len = snapshot.len() as u64;
        (self.logged, self.asked) = (0, false);
        Ok(())
    }
}

/// Writes a new store file holding the header and `snapshot` beside `path`, syncs it and
/// renames it over `path` (so a crash leaves the old file or the new one, whole); the new
/// file, open for appending the log.
fn put_in_place(path: &Path, snapshot: &[u8]) -> io::Result<File> {
    let tmp = path.with_extension("new");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(format::MAGIC)?;
    file.write_all(snapshot)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(file)
}

/// `bytes` (whole framed records) in parts of at most `max` bytes, each ending at a
/// record's end (a record larger than `max` is a part of its own).
fn split(bytes: &[u8], max: usize) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = 0;
        while end < rest.len() {
            let len = (rest.get(end..end + 4))
                .and_then(|b| b.try_into().ok())
                .map_or(rest.len(), |b: [u8; 4]| u32::from_le_bytes(b) as usize);
            let next = (end + 8).saturating_add(len).min(rest.len());
            if end > 0 && next > max {
                break;
            }
            end = next;
        }
        let (part, tail) = rest.split_at(end);
        rest = tail;
        Some(part)
    })
}

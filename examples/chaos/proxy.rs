//! A fault-injecting TCP proxy for chaos tests: clients connect to
//! [`Proxy::port`] on 127.0.0.1, every connection is relayed to a target (the
//! MQTT broker), and a nemesis switches the [`Fault`] at any time.
//!
//! Design, and why:
//! * std threads and blocking sockets (an acceptor, two pumps per connection):
//!   chaos tests run a handful of connections, and a straight-line pump per
//!   direction is easier to trust than an event loop.
//! * One fault mode, read by every pump on every turn, so a switch applies to
//!   live and new connections alike. Reads and writes time out after 50 ms, so
//!   a switch, [`Proxy::cut`] or [`Proxy::reset`] is seen promptly and no
//!   pump spins.
//! * Each direction queues `(read time, bytes)`: under `Delay(d)` a chunk read
//!   at `t` goes out at `t + d`, which adds latency without throttling a
//!   stream or reordering. The delay is applied at send time, so changing it
//!   also applies to queued bytes. The queue is bounded (1 MiB under a delay,
//!   16 KiB otherwise); when full the pump stops reading and TCP flow control
//!   pushes back, so a stream under `Delay(d)` gets at most `1 MiB / d`.
//! * `Bandwidth`: a token bucket per direction and connection (0.1 s of burst).
//!   `HalfOpen`: a silent peer, noticed only through keep-alives; what the
//!   kernel buffers held flows again when it is lifted.
//! * A failed socket operation ends its own connection only; an EOF is passed on
//!   as a half-close. A broker that is unreachable closes the client at once.
//! * Linux only: `reset` relies on `SO_LINGER` 0, `Drop` on `shutdown(2)` of the
//!   listening socket to wake the acceptor.

use libc::{SO_LINGER, SOL_SOCKET};
use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Longest time a pump blocks before it looks at the fault mode again.
const TICK: Duration = Duration::from_millis(50);
/// Largest read, and the queue bound of a direction when there is no delay.
const CHUNK: usize = 16 * 1024;
/// Queue bound of a direction under [`Fault::Delay`].
const DELAY_CAP: usize = 1 << 20;
/// How long a connection to the target may take before the client is closed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// `SO_LINGER` 0: closing the socket sends a RST instead of a FIN.
static RST: libc::linger = libc::linger {
    l_onoff: 1,
    l_linger: 0,
};

/// The fault the proxy applies; see [`Proxy::set`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward bytes as they come.
    None,
    /// Forward every chunk this much later, in both directions, keeping order.
    Delay(Duration),
    /// Cap each direction of each connection to this many bytes per second
    /// (token bucket; 0 is taken as 1).
    Bandwidth(u64),
    /// Stop reading and forwarding in both directions but keep every socket
    /// open; new connections are accepted and hang without reaching the
    /// target. Back to [`Fault::None`] they all resume (a pause of the link);
    /// [`Proxy::cut`] is the way to end them.
    HalfOpen,
    /// Close new connections right after accepting them; live ones go on.
    Refuse,
}

/// A running proxy. Dropping it stops accepting and closes every connection.
pub struct Proxy {
    shared: Arc<Shared>,
    listener: Arc<TcpListener>,
    port: u16,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    fault: Mutex<Fault>,
    target: Mutex<SocketAddr>,
    links: Mutex<HashMap<u64, Arc<Link>>>,
    accepted: AtomicU64,
    stop: AtomicBool,
    /// Where to keep the bytes of every connection (`--capture`), if anywhere.
    record: Mutex<Option<PathBuf>>,
    /// Files that could not be made or written: the capture has gaps.
    record_errors: AtomicU64,
}

/// One relayed connection. Its sockets are closed when the last `Arc` goes,
/// that is once both pumps have ended and it has left `Shared::links`.
struct Link {
    client: TcpStream,
    broker: OnceLock<TcpStream>,
    dead: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and relays connections to `target`.
    pub fn start(target: SocketAddr) -> io::Result<Proxy> {
        let listener = Arc::new(TcpListener::bind(("127.0.0.1", 0))?);
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            fault: Mutex::new(Fault::None),
            target: Mutex::new(target),
            links: Mutex::new(HashMap::new()),
            accepted: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            record: Mutex::new(None),
            record_errors: AtomicU64::new(0),
        });
        let (sh, l) = (shared.clone(), listener.clone());
        let acceptor = Some(thread::Builder::new().spawn(move || accept_loop(&sh, &l))?);
        Ok(Proxy {
            shared,
            listener,
            port,
            acceptor,
        })
    }

    /// Keeps the bytes of every new connection in `dir`: `conn{N}-up` (client to broker)
    /// and `conn{N}-down` (broker to client), as they were passed on, each chunk with its
    /// time (see capture.rs).
    pub fn record(&self, dir: PathBuf) {
        *lock(&self.shared.record) = Some(dir);
    }

    /// How many capture files could not be made or written (a capture with gaps).
    pub fn record_errors(&self) -> u64 {
        self.shared.record_errors.load(SeqCst)
    }

    /// The port clients connect to, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Switches the fault for every connection, live and new, within 50 ms.
    pub fn set(&self, fault: Fault) {
        *lock(&self.shared.fault) = fault;
    }

    /// Closes every live connection now with a FIN on both sides.
    pub fn cut(&self) {
        for link in self.links() {
            link.close();
        }
    }

    /// Closes every live connection with a RST to the client (`SO_LINGER` 0,
    /// then close, within 50 ms) and a FIN to the target.
    pub fn reset(&self) {
        for link in self.links() {
            link.dead.store(true, SeqCst);
            let len = size_of::<libc::linger>() as libc::socklen_t;
            let fd = link.client.as_raw_fd();
            // SAFETY: a valid socket fd, and a pointer and length describing a `linger`.
            unsafe { libc::setsockopt(fd, SOL_SOCKET, SO_LINGER, (&raw const RST).cast(), len) };
            if let Some(b) = link.broker.get() {
                let _ = b.shutdown(Shutdown::Both);
            }
        }
    }

    /// Relays connections accepted from now on to `target`.
    pub fn retarget(&self, target: SocketAddr) {
        *lock(&self.shared.target) = target;
    }

    /// Live connections, including those hanging before reaching the target.
    pub fn connections(&self) -> usize {
        lock(&self.shared.links).len()
    }

    fn links(&self) -> Vec<Arc<Link>> {
        lock(&self.shared.links).values().cloned().collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        // SAFETY: the fd belongs to `self.listener`, alive until after this
        // call; shutdown(2) of a listening socket wakes a blocked accept(2).
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.cut();
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.connections() > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Link {
    fn dead(&self) -> bool {
        self.dead.load(SeqCst)
    }

    /// Ends the connection: marks it dead and, if it was not, sends a FIN to
    /// both sides (which also wakes the pumps).
    fn close(&self) {
        if !self.dead.swap(true, SeqCst) {
            let _ = self.client.shutdown(Shutdown::Both);
            if let Some(b) = self.broker.get() {
                let _ = b.shutdown(Shutdown::Both);
            }
        }
    }
}

fn accept_loop(sh: &Arc<Shared>, listener: &TcpListener) {
    loop {
        let client = match listener.accept() {
            _ if sh.stop.load(SeqCst) => return, // woken by `Drop`
            Ok((client, _)) => client,
            Err(_) => {
                thread::sleep(TICK); // e.g. out of fds: back off, don't spin
                continue;
            }
        };
        let id = sh.accepted.fetch_add(1, SeqCst);
        if *lock(&sh.fault) == Fault::Refuse {
            continue; // dropping `client` closes it
        }
        let link = Arc::new(Link {
            client,
            broker: OnceLock::new(),
            dead: AtomicBool::new(false),
        });
        lock(&sh.links).insert(id, link.clone());
        let sh2 = sh.clone();
        let spawned = thread::Builder::new().spawn(move || {
            relay(&sh2, &link, id);
            lock(&sh2.links).remove(&id);
        });
        if spawned.is_err() {
            lock(&sh.links).remove(&id);
        }
    }
}

/// Connects to the target and runs both pumps; returning closes the client
/// unless a pump still holds the link.
fn relay(sh: &Arc<Shared>, link: &Arc<Link>, id: u64) {
    // A partition: the new connection hangs without reaching the broker.
    while *lock(&sh.fault) == Fault::HalfOpen && !link.dead() {
        thread::sleep(TICK);
    }
    if link.dead() {
        return;
    }
    let target = *lock(&sh.target);
    let Ok(broker) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else {
        return; // broker down: the client sees its connection closed
    };
    let _ = broker.set_nodelay(true);
    let _ = link.client.set_nodelay(true);
    let timeouts = broker.set_write_timeout(Some(TICK)).is_ok()
        && link.client.set_write_timeout(Some(TICK)).is_ok();
    if !timeouts || link.broker.set(broker).is_err() || link.dead() {
        return; // `cut` or `reset` may have raced with the connect
    }
    let dir = lock(&sh.record).clone();
    let file = |way: &str| {
        let made = std::fs::File::create(dir.as_ref()?.join(format!("conn{id}-{way}")));
        if made.is_err() {
            sh.record_errors.fetch_add(1, SeqCst);
        }
        made.ok()
    };
    let (up, down) = (file("up"), file("down"));
    let (sh2, l2) = (sh.clone(), link.clone());
    let down = thread::Builder::new().spawn(move || {
        if let Some(b) = l2.broker.get() {
            pump(&sh2, &l2, b, &l2.client, down);
        }
    });
    let (Ok(down), Some(broker)) = (down, link.broker.get()) else {
        return;
    };
    pump(sh, link, &link.client, broker, up);
    let _ = down.join();
}

fn transient(e: &io::Error) -> bool {
    matches!(e.kind(), WouldBlock | TimedOut | Interrupted)
}

/// Relays one direction until EOF (passed on as a half-close) or failure, keeping what it
/// passed on in `record`.
fn pump(
    sh: &Shared,
    link: &Link,
    mut from: &TcpStream,
    mut to: &TcpStream,
    mut record: Option<std::fs::File>,
) {
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut queued = 0;
    let mut bucket = Bucket::default();
    let mut buf = vec![0; CHUNK];
    let mut eof = false;
    while !link.dead() {
        let fault = *lock(&sh.fault);
        if fault == Fault::HalfOpen {
            thread::sleep(TICK);
            continue;
        }
        let delay = match fault {
            Fault::Delay(d) => d,
            _ => Duration::ZERO,
        };
        let now = Instant::now();
        let mut wait = TICK;
        match queue.front_mut().map(|(t, c)| (t.checked_add(delay), c)) {
            Some((Some(due), chunk)) if due <= now => match bucket.grant(fault, now, chunk.len()) {
                Err(w) => wait = wait.min(w),
                Ok(n) => match to.write(&chunk[..n]) {
                    Err(e) if transient(&e) => continue,
                    Ok(0) | Err(_) => return link.close(),
                    Ok(w) => {
                        if let Some(f) = &mut record
                            && crate::capture::append(f, &chunk[..w]).is_err()
                        {
                            sh.record_errors.fetch_add(1, SeqCst);
                        }
                        bucket.tokens -= w as f64;
                        queued -= w;
                        chunk.drain(..w);
                        if chunk.is_empty() {
                            queue.pop_front();
                        }
                        continue;
                    }
                },
            },
            // Not due yet (or never, for an absurd delay).
            Some((due, _)) => wait = wait.min(due.map_or(TICK, |d| d - now)),
            None => {}
        }
        let cap = if delay.is_zero() { CHUNK } else { DELAY_CAP };
        if eof || queued >= cap {
            if eof && queue.is_empty() {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            thread::sleep(wait);
            continue;
        }
        let wait = wait.max(Duration::from_millis(1));
        if from.set_read_timeout(Some(wait)).is_err() {
            return link.close();
        }
        match from.read(&mut buf) {
            Ok(0) => eof = true,
            Ok(n) => {
                queue.push_back((Instant::now(), buf[..n].to_vec()));
                queued += n;
            }
            Err(e) if transient(&e) => {}
            Err(_) => return link.close(),
        }
    }
}

/// Token bucket of one direction; reset when the rate changes.
#[derive(Default)]
struct Bucket {
    rate: u64,
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    /// How many of `want` bytes may be written now, or how long to wait.
    fn grant(&mut self, fault: Fault, now: Instant, want: usize) -> Result<usize, Duration> {
        let Fault::Bandwidth(rate) = fault else {
            return Ok(want);
        };
        let rate = rate.max(1);
        if rate != self.rate {
            (self.rate, self.tokens, self.last) = (rate, 0.0, Some(now));
        }
        let last = self.last.replace(now).unwrap_or(now);
        let burst = (rate as f64 / 10.0).max(1.0);
        self.tokens = (self.tokens + (now - last).as_secs_f64() * rate as f64).min(burst);
        // Wait for a useful amount rather than trickling out single bytes.
        let quantum = (burst / 2.0).max(1.0).min(want as f64);
        if self.tokens >= quantum {
            Ok((self.tokens as usize).min(want))
        } else {
            let need = quantum - self.tokens;
            Err(Duration::from_secs_f64(need / rate as f64))
        }
    }
}

//! Fewer wake-ups under load, for the broker's sake.
//!
//! A broker writes each message (and each acknowledgement) with a write(2) of its own
//! (mosquitto sets TCP_NODELAY), and each write that finds the reader asleep in epoll wakes
//! it up — in the broker's time. On a small machine the broker is the bottleneck of the
//! whole pipe, so every such wake-up is throughput lost:
//!
//! - chat-sub reads faster than mosquitto can send, so at 100,000 messages/s it slept and
//!   was woken every second message (48,700 reads), and waking it was 11 % of mosquitto's
//!   CPU, against 3 % with mosquitto_sub (perf record).
//! - chat-pub at QoS 1 under MQTT 5 may have only mosquitto's Receive Maximum (20)
//!   messages unacknowledged, and was woken for almost every PUBACK.
//!
//! The kernel can hold the wake-up back until a number of bytes is queued (SO_RCVLOWAT);
//! a short timer (`HOLD`) bounds how long bytes below that mark can wait, and lowering
//! the mark wakes the reader at once if anything is queued (tcp_set_rcvlowat, Linux 4.18),
//! so nothing is stranded.
//!
//! A subscriber ([`Reads::Stream`]) raises its mark once bytes stream in fast (`ENTER`
//! bytes within `BUCKET`); a person typing, or a line every millisecond, never gets there
//! and is read at once. Its mark tunes itself, because a broker that sends only a window
//! of messages before it wants acknowledgements (QoS 1 and 2 to an MQTT 3.1.1 client: 20
//! at mosquitto) would never fill a mark larger than the window: when the timer finds
//! bytes waiting below the mark twice in a row (with no wake-up at the mark between), the
//! mark halves (down to nothing: then this connection reads as before), and after a run
//! of wake-ups at the mark it doubles again. Only over plain TCP: through TLS or a
//! WebSocket a read returns one record or frame, so reads say nothing about the mark.
//!
//! A publisher ([`Reads::Told`]) sets its mark itself: half of its full window's
//! acknowledgements ([`Coalesce::wake_at`]).

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::OnceLock;

use tokio::time::{Duration, Instant};

/// How a connection's reader wakes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// For every byte that arrives.
    Eager,
    /// In larger gulps while messages stream in (a subscriber).
    Stream,
    /// When the owner says how many bytes to wait for
    /// ([`Link::wake_at`](crate::mqtt::link::Link::wake_at); a publisher).
    Told,
}

/// Bytes read within one [`BUCKET`] that mean messages are streaming in.
const ENTER: usize = 8 * 1024;
const BUCKET: Duration = Duration::from_millis(1);
/// The first mark, and its bounds.
const FIRST_MARK: usize = 8 * 1024;
const MIN_MARK: usize = 1024;
const MAX_MARK: usize = 32 * 1024;
/// Wake-ups at the mark before it may double.
const GROW_AFTER: u32 = 256;
/// Expiries in a row with bytes below the mark that halve it.
const STARVED_TWICE: u32 = 2;
/// How long bytes below the mark may wait; tokio's timers tick in milliseconds.
const HOLD: Duration = Duration::from_millis(1);

/// Whether the kernel wakes a reader when its mark is lowered, which the hold timer relies
/// on: Linux since 4.18 (tcp_set_rcvlowat). Elsewhere every byte wakes the reader.
pub fn supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| cfg!(target_os = "linux") && linux_at_least(4, 18))
}

fn linux_at_least(major: u32, minor: u32) -> bool {
    // SAFETY: uname fills the zeroed struct it is given.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&raw mut u) } != 0 {
        return false;
    }
    // SAFETY: uname NUL-terminates `release`.
    let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) };
    release_at_least(&release.to_string_lossy(), major, minor)
}

/// Whether a kernel release such as "6.1.0-18-amd64" is at least `major.minor`.
fn release_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

/// The low-water mark of one TCP socket (owned by the connection it belongs to).
#[derive(Debug)]
pub struct Coalesce {
    fd: RawFd,
    /// The socket's SO_RCVLOWAT now: 1 (wake for every byte) or the mark.
    lowat: usize,
    /// The mark to use while bytes stream in; 0 once it shrank below [`MIN_MARK`].
    mark: usize,
    /// While raised: when bytes below the mark are read anyway.
    until: Option<Instant>,
    /// Wake-ups at the mark since it last changed.
    good: u32,
    /// Expiries in a row that found bytes waiting below the mark.
    starved: u32,
    bucket_start: Instant,
    bucket: usize,
    /// Whether the mark follows the stream by itself (a subscriber), or only moves when
    /// told to ([`Coalesce::wake_at`], a publisher waiting for acknowledgements).
    follow: bool,
}

impl Coalesce {
    /// For the socket `fd`, which must outlive this value; `follow`: see the field.
    pub(crate) fn new(fd: RawFd, follow: bool) -> Coalesce {
        Coalesce {
            fd,
            lowat: 1,
            mark: FIRST_MARK,
            until: None,
            good: 0,
            starved: 0,
            bucket_start: Instant::now(),
            bucket: 0,
            follow,
        }
    }

    /// A publisher with a full window: wake when `bytes` (of acknowledgements) are
    /// queued, or `HOLD` passed; 1 to wake for every byte again.
    pub fn wake_at(&mut self, bytes: usize) {
        if bytes != self.lowat && self.set(bytes) {
            self.lowat = bytes;
            self.until = None;
        }
        // The hold counts from the last read (or from raising the mark), not from each
        // call: the publisher calls this after every partial write too.
        if self.lowat == 1 {
            self.until = None;
        } else if self.until.is_none() {
            self.until = Some(Instant::now() + HOLD);
        }
    }

    /// After a read of `n` bytes.
    pub fn after_read(&mut self, n: usize) {
        if !self.follow {
            if self.lowat > 1 {
                self.until = Some(Instant::now() + HOLD);
            }
            return;
        }
        let now = Instant::now();
        if self.lowat > 1 {
            if n >= self.lowat {
                self.good += 1;
                self.starved = 0;
                if self.good >= GROW_AFTER && self.mark < MAX_MARK {
                    self.mark *= 2;
                    self.good = 0;
                    self.raise(self.mark);
                }
            }
            self.until = Some(now + HOLD);
            return;
        }
        if now.duration_since(self.bucket_start) > BUCKET {
            self.bucket_start = now;
            self.bucket = 0;
        }
        self.bucket += n;
        if self.bucket >= ENTER && self.mark > 0 {
            self.raise(self.mark);
            self.good = 0;
            self.until = Some(now + HOLD);
        }
    }

    /// When bytes below the mark are to be read anyway.
    pub fn deadline(&self) -> Option<Instant> {
        self.until
    }

    /// The deadline passed: back to waking for every byte, and a smaller mark next time
    /// if bytes were waiting below this one. Lowering SO_RCVLOWAT makes the kernel report
    /// the socket readable at once if anything is queued (tcp_set_rcvlowat).
    pub fn expire(&mut self) {
        self.until = None;
        if self.follow {
            // Bytes at or above the mark: the reader was woken in the same instant (no
            // starvation). Below it: the broker stopped short of the mark; twice in a row
            // with no wake-up at the mark between means it will keep doing so (it waits
            // for acknowledgements), not that the stream paused: then the mark halves.
            let queued = self.queued();
            if queued > 0 && queued < self.lowat {
                self.starved += 1;
                if self.starved >= STARVED_TWICE {
                    self.starved = 0;
                    self.mark /= 2;
                    if self.mark < MIN_MARK {
                        self.mark = 0;
                    }
                }
            }
            log::trace!(
                "read mark {} expired with {queued} bytes waiting; next mark {}",
                self.lowat,
                self.mark
            );
        }
        if !self.set(1) {
            // Bytes below the mark must not wait for ever: try again shortly.
            self.until = Some(Instant::now() + HOLD);
            return;
        }
        self.lowat = 1;
        self.bucket = 0;
    }

    fn raise(&mut self, mark: usize) {
        if self.set(mark) {
            self.lowat = mark;
        }
    }

    /// Bytes received and not yet read (0 if the kernel will not say).
    fn queued(&self) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: `fd` is the open socket of the connection that owns `self`; FIONREAD
        // writes one c_int.
        let r = unsafe { libc::ioctl(self.fd, libc::FIONREAD, &raw mut n) };
        if r == 0 {
            usize::try_from(n).unwrap_or(0)
        } else {
            0
        }
    }

    /// Sets SO_RCVLOWAT. A failure to raise it only costs the optimisation.
    fn set(&self, bytes: usize) -> bool {
        let r = set_rcvlowat_raw(self.fd, bytes);
        if let Err(e) = &r {
            log::debug!("SO_RCVLOWAT {bytes}: {e}");
        }
        r.is_ok()
    }
}

/// Sets a socket's low-water mark (SO_RCVLOWAT): reads and readiness wait until `bytes`
/// are queued (or a receive timeout passes). Also for examples/ceiling.rs.
pub fn set_rcvlowat(socket: &impl AsFd, bytes: usize) -> std::io::Result<()> {
    set_rcvlowat_raw(socket.as_fd().as_raw_fd(), bytes)
}

fn set_rcvlowat_raw(fd: RawFd, bytes: usize) -> std::io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: sets one c_int option, of the size passed, on a descriptor the caller keeps
    // open (a wrong descriptor is an error from the kernel, not undefined behaviour).
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A connected loopback pair: (the reader we tune, the peer that writes).
    fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        (ours, peer)
    }

    fn lowat(fd: RawFd) -> usize {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: reads one c_int option of an open socket.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&raw mut v).cast(),
                &raw mut len,
            )
        };
        assert_eq!(r, 0);
        usize::try_from(v).unwrap()
    }

    /// Writes `n` bytes from the peer and waits until they are queued on our side.
    fn queue(c: &Coalesce, peer: &mut std::net::TcpStream, n: usize) {
        let before = c.queued();
        peer.write_all(&vec![b'x'; n]).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while c.queued() < before + n {
            assert!(std::time::Instant::now() < deadline, "bytes never arrived");
            std::thread::yield_now();
        }
    }

    #[test]
    fn kernel_releases() {
        assert!(release_at_least("6.1.0-18-amd64", 4, 18));
        assert!(release_at_least("4.18.0", 4, 18));
        assert!(release_at_least("5.0", 4, 18));
        assert!(!release_at_least("4.17.9", 4, 18));
        assert!(!release_at_least("3.10.0-1160.el7.x86_64", 4, 18));
        assert!(!release_at_least("", 4, 18));
    }

    #[test]
    fn a_trickle_leaves_the_socket_alone() {
        let (ours, _peer) = pair();
        let mut c = Coalesce::new(ours.as_raw_fd(), true);
        c.after_read(ENTER / 4);
        assert_eq!(lowat(ours.as_raw_fd()), 1);
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn a_stream_raises_the_mark_until_the_deadline() {
        let (ours, _peer) = pair();
        let fd = ours.as_raw_fd();
        let mut c = Coalesce::new(fd, true);
        c.after_read(ENTER);
        assert_eq!(lowat(fd), FIRST_MARK);
        assert!(c.deadline().is_some());
        // Nothing was waiting below the mark: the burst just ended, the mark is kept.
        c.expire();
        assert_eq!((lowat(fd), c.mark, c.deadline()), (1, FIRST_MARK, None));
    }

    #[test]
    fn bytes_left_below_the_mark_halve_it_down_to_nothing() {
        let (ours, mut peer) = pair();
        let fd = ours.as_raw_fd();
        let mut c = Coalesce::new(fd, true);
        let mut marks = Vec::new();
        while c.mark > 0 {
            c.after_read(ENTER);
            marks.push(lowat(fd));
            queue(&c, &mut peer, 10);
            c.expire();
            assert_eq!(lowat(fd), 1);
        }
        assert_eq!(marks, [8192, 8192, 4096, 4096, 2048, 2048, 1024, 1024]);
        c.after_read(ENTER);
        assert_eq!((lowat(fd), c.deadline()), (1, None));
    }

    #[test]
    fn a_pause_between_wake_ups_at_the_mark_keeps_it() {
        let (ours, mut peer) = pair();
        let fd = ours.as_raw_fd();
        let mut c = Coalesce::new(fd, true);
        for _ in 0..4 {
            c.after_read(ENTER);
            c.after_read(FIRST_MARK);
            queue(&c, &mut peer, 10);
            c.expire();
        }
        assert_eq!(c.mark, FIRST_MARK);
    }

    #[test]
    fn bytes_at_the_mark_when_the_timer_fires_are_no_starvation() {
        let (ours, mut peer) = pair();
        let fd = ours.as_raw_fd();
        let mut c = Coalesce::new(fd, true);
        for _ in 0..4 {
            c.after_read(ENTER);
            queue(&c, &mut peer, FIRST_MARK);
            c.expire();
        }
        assert_eq!(c.mark, FIRST_MARK);
    }

    #[test]
    fn wake_ups_at_the_mark_grow_it() {
        let (ours, _peer) = pair();
        let fd = ours.as_raw_fd();
        let mut c = Coalesce::new(fd, true);
        c.after_read(ENTER);
        for _ in 0..GROW_AFTER {
            c.after_read(FIRST_MARK);
        }
        assert_eq!(lowat(fd), 2 * FIRST_MARK);
        for _ in 0..8 * GROW_AFTER {
            c.after_read(MAX_MARK);
        }
        assert_eq!(lowat(fd), MAX_MARK);
    }

    #[test]
    fn a_publisher_sets_its_own_mark() {
        let (ours, mut peer) = pair();
        let fd = ours.as_raw_fd();
        let mut c = Coalesce::new(fd, false);
        c.after_read(ENTER);
        assert_eq!((lowat(fd), c.deadline()), (1, None), "no mark of its own");
        c.wake_at(40);
        assert_eq!(lowat(fd), 40);
        let first = c.deadline().expect("a deadline");
        // Asked again (after a partial write): the deadline stays where it was.
        c.wake_at(40);
        assert_eq!(c.deadline(), Some(first));
        // A read at or below the mark counts the hold from now.
        c.after_read(8);
        assert!(c.deadline().is_some_and(|d| d >= first));
        // The window's tail below the mark: the deadline lowers the mark.
        queue(&c, &mut peer, 8);
        c.expire();
        assert_eq!((lowat(fd), c.deadline()), (1, None));
        c.wake_at(40);
        c.wake_at(1);
        assert_eq!((lowat(fd), c.deadline()), (1, None));
    }
}

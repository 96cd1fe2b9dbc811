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

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use tokio::time::Instant;

mod policy;

use policy::Marks;

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

/// The low-water mark of one TCP socket: the policy ([`Marks`]) applied to the socket,
/// which this value holds a descriptor of its own for (a duplicate: it stays valid as long
/// as this value, whatever happens to the stream).
#[derive(Debug)]
pub struct Coalesce {
    socket: OwnedFd,
    marks: Marks,
}

impl Coalesce {
    /// For `socket` (a duplicate of the connection's); `follow`: a subscriber's mark
    /// follows the stream by itself, a publisher's moves only when told
    /// ([`Coalesce::wake_at`]).
    pub(crate) fn new(socket: OwnedFd, follow: bool) -> Coalesce {
        Coalesce {
            socket,
            marks: Marks::new(follow, std::time::Instant::now()),
        }
    }

    /// A publisher with a full window: wake when `bytes` (of acknowledgements) are
    /// queued, or the hold passed; 1 to wake for every byte again.
    pub fn wake_at(&mut self, bytes: usize) {
        let fd = self.socket.as_fd();
        (self.marks).wake_at(bytes, std::time::Instant::now, &mut |b| set(fd, b));
    }

    /// After a read of `n` bytes.
    pub fn after_read(&mut self, n: usize) {
        let fd = self.socket.as_fd();
        (self.marks).after_read(n, std::time::Instant::now(), &mut |b| set(fd, b));
    }

    /// When bytes below the mark are to be read anyway.
    pub fn deadline(&self) -> Option<Instant> {
        self.marks.deadline().map(Instant::from_std)
    }

    /// The deadline passed: back to waking for every byte (see [`Marks::expire`]).
    pub fn expire(&mut self) {
        let fd = self.socket.as_fd();
        let queued = || queued(fd);
        (self.marks).expire(queued, std::time::Instant::now(), &mut |b| set(fd, b));
    }
}

/// Bytes received on `fd` and not yet read (0 if the kernel will not say).
fn queued(fd: BorrowedFd<'_>) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: `fd` is an open descriptor (borrowed for the call); FIONREAD writes one
    // c_int.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &raw mut n) };
    match r {
        0 => usize::try_from(n).unwrap_or(0),
        _ => 0,
    }
}

/// Sets SO_RCVLOWAT; whether it was taken. A failure only costs the optimisation.
fn set(fd: BorrowedFd<'_>, bytes: usize) -> bool {
    let r = set_rcvlowat(&fd, bytes);
    if let Err(e) = &r {
        log::debug!("SO_RCVLOWAT {bytes}: {e}");
    }
    r.is_ok()
}

/// Sets a socket's low-water mark (SO_RCVLOWAT): reads and readiness wait until `bytes`
/// are queued (or a receive timeout passes). Also for examples/ceiling.rs.
pub fn set_rcvlowat(socket: &impl AsFd, bytes: usize) -> std::io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: sets one c_int option, of the size passed, on a descriptor borrowed for the
    // call (so open).
    let r = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
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

    fn lowat(fd: BorrowedFd<'_>) -> usize {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: reads one c_int option of an open socket.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&raw mut v).cast(),
                &raw mut len,
            )
        };
        assert_eq!(r, 0);
        usize::try_from(v).unwrap()
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

    /// The shell on a real socket (the policy is tested without one, in `policy`): the
    /// mark reaches the kernel, and bytes waiting below it are counted.
    #[test]
    fn the_mark_reaches_the_socket_and_queued_bytes_are_counted() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        let mut c = Coalesce::new(ours.as_fd().try_clone_to_owned().unwrap(), true);
        c.after_read(policy::ENTER);
        assert_eq!(lowat(ours.as_fd()), policy::FIRST_MARK);
        assert!(c.deadline().is_some());
        peer.write_all(&[b'x'; 10]).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while queued(ours.as_fd()) < 10 {
            assert!(std::time::Instant::now() < deadline, "bytes never arrived");
            std::thread::yield_now();
        }
        c.expire();
        assert_eq!((lowat(ours.as_fd()), c.deadline()), (1, None));
        // The duplicate descriptor outlives the stream it was taken from.
        drop(ours);
        c.after_read(policy::ENTER);
    }
}

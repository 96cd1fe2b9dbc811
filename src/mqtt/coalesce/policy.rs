//! When a connection's reader should wake, without I/O: the low-water mark's policy of
//! [`super`] (see there why). The time is passed in; the kernel's side — setting
//! SO_RCVLOWAT, and how many bytes are queued — is passed in too, as a `set` function
//! that says whether the mark was taken and a function that counts the bytes, so the
//! policy is tested without sockets. The clock and the count are asked for only when a
//! decision needs them: chat-pub calls [`Marks::wake_at`] on every turn of its loop.

use std::time::{Duration, Instant};

/// Bytes read within one [`BUCKET`] that mean messages are streaming in.
pub const ENTER: usize = 8 * 1024;
const BUCKET: Duration = Duration::from_millis(1);
/// The first mark, and its bounds.
pub const FIRST_MARK: usize = 8 * 1024;
const MIN_MARK: usize = 1024;
pub const MAX_MARK: usize = 32 * 1024;
/// Wake-ups at the mark before it may double.
pub const GROW_AFTER: u32 = 256;
/// Expiries in a row with bytes below the mark that halve it.
const STARVED_TWICE: u32 = 2;
/// How long bytes below the mark may wait; tokio's timers tick in milliseconds.
pub const HOLD: Duration = Duration::from_millis(1);

/// The mark of one socket, as the policy sees it.
#[derive(Debug)]
pub struct Marks {
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
    /// told to ([`Marks::wake_at`], a publisher waiting for acknowledgements).
    follow: bool,
}

impl Marks {
    /// A socket that wakes for every byte, from `now`; `follow`: see the field.
    pub fn new(follow: bool, now: Instant) -> Marks {
        Marks {
            lowat: 1,
            mark: FIRST_MARK,
            until: None,
            good: 0,
            starved: 0,
            bucket_start: now,
            bucket: 0,
            follow,
        }
    }

    /// A publisher with a full window: wake when `bytes` (of acknowledgements) are
    /// queued, or [`HOLD`] passed; 1 to wake for every byte again.
    pub fn wake_at(
        &mut self,
        bytes: usize,
        now: impl FnOnce() -> Instant,
        set: &mut impl FnMut(usize) -> bool,
    ) {
        if bytes != self.lowat && set(bytes) {
            self.lowat = bytes;
            self.until = None;
        }
        // The hold counts from the last read (or from raising the mark), not from each
        // call: the publisher calls this after every partial write too.
        if self.lowat == 1 {
            self.until = None;
        } else if self.until.is_none() {
            self.until = Some(now() + HOLD);
        }
    }

    /// After a read of `n` bytes at `now`.
    pub fn after_read(&mut self, n: usize, now: Instant, set: &mut impl FnMut(usize) -> bool) {
        if !self.follow {
            if self.lowat > 1 {
                self.until = Some(now + HOLD);
            }
            return;
        }
        if self.lowat > 1 {
            if n >= self.lowat {
                self.good += 1;
                self.starved = 0;
                if self.good >= GROW_AFTER && self.mark < MAX_MARK {
                    self.mark *= 2;
                    self.good = 0;
                    self.raise(self.mark, set);
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
            self.raise(self.mark, set);
            self.good = 0;
            self.until = Some(now + HOLD);
        }
    }

    /// When bytes below the mark are to be read anyway.
    pub fn deadline(&self) -> Option<Instant> {
        self.until
    }

    /// The mark to use while bytes stream in (0: none any more).
    #[cfg(test)]
    pub fn mark(&self) -> usize {
        self.mark
    }

    /// The deadline passed at `now`, with `queued` bytes waiting: back to waking for
    /// every byte, and a smaller mark next time if bytes were waiting below this one.
    /// Lowering SO_RCVLOWAT makes the kernel report the socket readable at once if
    /// anything is queued (tcp_set_rcvlowat).
    pub fn expire(
        &mut self,
        queued: impl FnOnce() -> usize,
        now: Instant,
        set: &mut impl FnMut(usize) -> bool,
    ) {
        self.until = None;
        if self.follow {
            let queued = queued();
            // Bytes at or above the mark: the reader was woken in the same instant (no
            // starvation). Below it: the broker stopped short of the mark; twice in a row
            // with no wake-up at the mark between means it will keep doing so (it waits
            // for acknowledgements), not that the stream paused: then the mark halves.
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
        if !set(1) {
            // Bytes below the mark must not wait for ever: try again shortly.
            self.until = Some(now + HOLD);
            return;
        }
        self.lowat = 1;
        self.bucket = 0;
    }

    fn raise(&mut self, mark: usize, set: &mut impl FnMut(usize) -> bool) {
        if set(mark) {
            self.lowat = mark;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket as the policy sees it: the SO_RCVLOWAT it was last given.
    struct Socket(usize);

    impl Socket {
        fn set(&mut self) -> impl FnMut(usize) -> bool + '_ {
            |bytes| {
                self.0 = bytes;
                true
            }
        }
    }

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn a_trickle_leaves_the_socket_alone() {
        let (mut s, now) = (Socket(1), t0());
        let mut m = Marks::new(true, now);
        m.after_read(ENTER / 4, now, &mut s.set());
        assert_eq!((s.0, m.deadline()), (1, None));
    }

    #[test]
    fn a_stream_raises_the_mark_until_the_deadline() {
        let (mut s, now) = (Socket(1), t0());
        let mut m = Marks::new(true, now);
        m.after_read(ENTER, now, &mut s.set());
        assert_eq!((s.0, m.deadline()), (FIRST_MARK, Some(now + HOLD)));
        // Nothing was waiting below the mark: the burst just ended, the mark is kept.
        m.expire(|| 0, now + HOLD, &mut s.set());
        assert_eq!((s.0, m.mark(), m.deadline()), (1, FIRST_MARK, None));
    }

    #[test]
    fn bytes_left_below_the_mark_halve_it_down_to_nothing() {
        let (mut s, now) = (Socket(1), t0());
        let mut m = Marks::new(true, now);
        let mut marks = Vec::new();
        while m.mark() > 0 {
            m.after_read(ENTER, now, &mut s.set());
            marks.push(s.0);
            m.expire(|| 10, now, &mut s.set());
            assert_eq!(s.0, 1);
        }
        assert_eq!(marks, [8192, 8192, 4096, 4096, 2048, 2048, 1024, 1024]);
        m.after_read(ENTER, now, &mut s.set());
        assert_eq!((s.0, m.deadline()), (1, None));
    }

    #[test]
    fn a_pause_between_wake_ups_at_the_mark_keeps_it() {
        let (mut s, now) = (Socket(1), t0());
        let mut m = Marks::new(true, now);
        for _ in 0..4 {
            m.after_read(ENTER, now, &mut s.set());
            m.after_read(FIRST_MARK, now, &mut s.set());
            m.expire(|| 10, now, &mut s.set());
        }
        assert_eq!(m.mark(), FIRST_MARK);
    }

    #[test]
    fn bytes_at_the_mark_when_the_timer_fires_are_no_starvation() {
        let (mut s, now) = (Socket(1), t0());
        let mut m = Marks::new(true, now);
        for _ in 0..4 {
            m.after_read(ENTER, now, &mut s.set());
            m.expire(|| FIRST_MARK, now, &mut s.set());
        }
        assert_eq!(m.mark(), FIRST_MARK);
    }

    #[test]
    fn wake_ups_at_the_mark_grow_it() {
        let (mut s, now) = (Socket(1), t0());
        let mut m = Marks::new(true, now);
        m.after_read(ENTER, now, &mut s.set());
        for _ in 0..GROW_AFTER {
            m.after_read(FIRST_MARK, now, &mut s.set());
        }
        assert_eq!(s.0, 2 * FIRST_MARK);
        for _ in 0..8 * GROW_AFTER {
            m.after_read(MAX_MARK, now, &mut s.set());
        }
        assert_eq!(s.0, MAX_MARK);
    }

    #[test]
    fn a_publisher_sets_its_own_mark() {
        let (mut s, now) = (Socket(1), t0());
        let mut m = Marks::new(false, now);
        m.after_read(ENTER, now, &mut s.set());
        assert_eq!((s.0, m.deadline()), (1, None), "no mark of its own");
        m.wake_at(40, || now, &mut s.set());
        assert_eq!((s.0, m.deadline()), (40, Some(now + HOLD)));
        // Asked again (after a partial write): the deadline stays where it was.
        let later = now + Duration::from_micros(500);
        m.wake_at(40, || later, &mut s.set());
        assert_eq!(m.deadline(), Some(now + HOLD));
        // A read at or below the mark counts the hold from then.
        m.after_read(8, later, &mut s.set());
        assert_eq!(m.deadline(), Some(later + HOLD));
        // The window's tail below the mark: the deadline lowers the mark.
        m.expire(|| 8, later + HOLD, &mut s.set());
        assert_eq!((s.0, m.deadline()), (1, None));
        m.wake_at(40, || later, &mut s.set());
        m.wake_at(1, || later, &mut s.set());
        assert_eq!((s.0, m.deadline()), (1, None));
    }

    #[test]
    fn a_mark_the_kernel_refuses_is_not_counted_on() {
        let now = t0();
        let mut m = Marks::new(true, now);
        m.after_read(ENTER, now, &mut |_| false);
        // Refused: the socket still wakes for every byte; the hold ends at once anyway.
        m.expire(|| 0, now + HOLD, &mut |_| false);
        assert_eq!(m.deadline(), Some(now + 2 * HOLD), "tried again shortly");
    }
}

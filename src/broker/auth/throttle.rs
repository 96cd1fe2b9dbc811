//! The slowing of failed logins, per source address: a password guessed from one address
//! costs that address more time at each failure, and nobody else anything.
//!
//! An address's logins are checked at most [`AT_ONCE`] at a time, and one at a time once
//! it has failed: a burst of guesses is judged in turns, not all at once. A failed
//! login's refusal is held back by a penalty that doubles with each failure of its
//! address, from [`FIRST_PENALTY`] up to [`MAX_PENALTY`], and while it is held the address
//! is busy: its other logins wait. Once the refusal is out, the next login from there is
//! checked at once: a user who mistyped gets in as soon as they type it right. Failures
//! are counted until the address was quiet for [`FORGET_AFTER`]; a success does not
//! reset them (one account known to a guesser would), and costs a user nothing, since
//! only failures are held. An IPv6 address counts as itself, as an IPv4 one (hosts of a
//! LAN share their /64). At most [`MAX_ADDRESSES`] are remembered (when full, the half
//! free the longest is forgotten, at once, so a flood of addresses costs bounded memory
//! and time).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The hold after a first failure.
pub const FIRST_PENALTY: Duration = Duration::from_millis(250);
/// The longest hold: less than clients wait for an answer to their CONNECT (chat-pub
/// and chat-sub wait 2 s for MQTT 5's before they try 3.1.1), so that a held refusal is
/// still read as one.
pub const MAX_PENALTY: Duration = Duration::from_millis(1500);
/// Most logins of an address that has not failed checked at once.
pub const AT_ONCE: u32 = 4;
/// How long an address that failed is remembered after it was last busy.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Most addresses remembered at once.
pub const MAX_ADDRESSES: usize = 100_000;

/// One address's logins.
#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    /// Logins being checked.
    checking: u32,
    /// Until when the address is busy (a refusal held back).
    busy: Instant,
}

/// Why a login must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Until another login of the address is checked.
    Turn,
    /// Until this time (a refusal of the address is held back until then).
    Until(Instant),
}

#[derive(Debug, Default)]
pub struct Throttle {
    by_addr: HashMap<IpAddr, Record>,
}

impl Throttle {
    /// The record of `addr`, made if there is none (room made if the table is full).
    fn record(&mut self, addr: IpAddr, now: Instant) -> &mut Record {
        let addr = key(addr);
        if !self.by_addr.contains_key(&addr) && self.by_addr.len() >= MAX_ADDRESSES {
            self.forget_old(now);
        }
        self.by_addr.entry(addr).or_insert(Record {
            failures: 0,
            checking: 0,
            busy: now,
        })
    }

    /// A login from `addr` at `now` asks to be checked: Ok (then [`Throttle::failed`] or
    /// [`Throttle::succeeded`] must follow), or why it must wait (ask again then).
    pub fn claim(&mut self, addr: IpAddr, now: Instant) -> Result<(), Wait> {
        let r = self.record(addr, now);
        if r.busy > now {
            return Err(Wait::Until(r.busy));
        }
        let most = if r.failures == 0 { AT_ONCE } else { 1 };
        if r.checking >= most {
            return Err(Wait::Turn);
        }
        r.checking += 1;
        Ok(())
    }

    /// A login from `addr` failed at `now`: how long its refusal is held back (the
    /// address is busy until then).
    pub fn failed(&mut self, addr: IpAddr, now: Instant) -> Duration {
        let r = self.record(addr, now);
        r.checking = r.checking.saturating_sub(1);
        r.failures = r.failures.saturating_add(1);
        let hold = penalty(r.failures);
        r.busy = r.busy.max(now + hold);
        hold
    }

    /// A login from `addr` succeeded: its check is done (its failures stay counted).
    pub fn succeeded(&mut self, addr: IpAddr) {
        let addr = key(addr);
        if let Some(r) = self.by_addr.get_mut(&addr) {
            r.checking = r.checking.saturating_sub(1);
            if r.failures == 0 && r.checking == 0 {
                self.by_addr.remove(&addr);
            }
        }
    }

    /// Forgets the addresses free for [`FORGET_AFTER`] with nothing being checked; when
    /// that leaves the table full, the half free the longest too.
    pub fn forget_old(&mut self, now: Instant) {
        self.by_addr
            .retain(|_, r| r.checking > 0 || r.busy + FORGET_AFTER > now);
        if self.by_addr.len() >= MAX_ADDRESSES {
            let mut times: Vec<Instant> = self.by_addr.values().map(|r| r.busy).collect();
            let half = times.len() / 2;
            let (_, median, _) = times.select_nth_unstable(half);
            let median = *median;
            self.by_addr.retain(|_, r| r.busy > median);
        }
    }

    /// How many addresses are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }
}

/// What an address counts as: IPv4 as it is (also when mapped into IPv6), IPv6 as it is.
fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

/// The hold after `failures` failures: 0.25 s, 0.5 s, 1 s, then [`MAX_PENALTY`].
fn penalty(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => (FIRST_PENALTY.saturating_mul(1 << (n - 1).min(16))).min(MAX_PENALTY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn an_address_that_never_failed_has_a_few_checked_at_once() {
        let (mut t, now) = (Throttle::default(), Instant::now());
        for _ in 0..AT_ONCE {
            assert_eq!(t.claim(ip(1), now), Ok(()));
        }
        assert_eq!(
            t.claim(ip(1), now),
            Err(Wait::Turn),
            "a burst waits its turn"
        );
        assert_eq!(t.claim(ip(2), now), Ok(()), "another address does not");
        for _ in 0..AT_ONCE {
            t.succeeded(ip(1));
        }
        t.succeeded(ip(2));
        assert_eq!(t.len(), 0, "nothing kept of addresses that never failed");
    }

    #[test]
    fn a_failure_holds_its_refusal_and_its_address_only_doubling_each_time() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        assert_eq!(t.claim(ip(1), t0), Ok(()));
        assert_eq!(t.failed(ip(1), t0), FIRST_PENALTY);
        assert_eq!(t.claim(ip(1), t0), Err(Wait::Until(t0 + FIRST_PENALTY)));
        assert_eq!(t.claim(ip(2), t0), Ok(()), "another address is not slowed");
        let t1 = t0 + FIRST_PENALTY;
        assert_eq!(t.claim(ip(1), t1), Ok(()), "free once the refusal is out");
        assert_eq!(t.failed(ip(1), t1), 2 * FIRST_PENALTY);
        let holds: Vec<Duration> = (0..20).map(|_| t.failed(ip(1), t1)).collect();
        assert_eq!(holds.last(), Some(&MAX_PENALTY), "capped");
    }

    #[test]
    fn once_it_failed_an_address_is_checked_one_login_at_a_time() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        assert_eq!(t.claim(ip(1), t0), Ok(()));
        let free = t0 + t.failed(ip(1), t0);
        assert_eq!(t.claim(ip(1), free), Ok(()));
        assert_eq!(t.claim(ip(1), free), Err(Wait::Turn));
        let hold = t.failed(ip(1), free);
        assert_eq!(t.claim(ip(1), free), Err(Wait::Until(free + hold)));
    }

    #[test]
    fn a_right_password_after_typos_is_checked_at_once_and_a_success_resets_nothing() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        let mut now = t0;
        for _ in 0..3 {
            assert_eq!(t.claim(ip(1), now), Ok(()));
            now += t.failed(ip(1), now);
        }
        assert_eq!(t.claim(ip(1), now), Ok(()));
        t.succeeded(ip(1));
        assert_eq!(t.claim(ip(1), now), Ok(()));
        assert_eq!(t.failed(ip(1), now), MAX_PENALTY, "the fourth failure");
    }

    #[test]
    fn a_quiet_while_forgets_the_address() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        assert_eq!(t.claim(ip(1), t0), Ok(()));
        t.failed(ip(1), t0);
        t.forget_old(t0 + FORGET_AFTER + MAX_PENALTY);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn ipv6_addresses_count_one_by_one_and_mapped_ipv4_as_ipv4() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        t.failed(a, t0);
        assert!(t.claim(a, t0).is_err());
        assert_eq!(t.claim(b, t0), Ok(()), "another host of the same LAN");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        t.failed(ip(1), t0);
        assert!(
            t.claim(mapped, t0).is_err(),
            "a mapped IPv4 address is that address"
        );
    }

    #[test]
    fn a_flood_of_addresses_is_bounded() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            t.failed(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(t.len() <= MAX_ADDRESSES);
    }
}

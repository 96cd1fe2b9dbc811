//! The slowing of failed logins, per source address: a password guessed from one address
//! costs that address more time at each failure, and nobody else anything.
//!
//! A failed login's refusal is held back by a penalty that doubles with each failure of
//! its address, from [`FIRST_PENALTY`] up to [`MAX_PENALTY`], and while it is held the
//! address is busy: its other logins wait until it is free again, one at a time (each
//! takes the address for [`SLOT`] while it is checked), so opening many connections at
//! once buys no more guesses. An address that has not failed is never busy. Once the
//! refusal is out, the next login from there is judged at once: a user who mistyped
//! gets in as soon as they type it right. A success halves the address's failures (a
//! typo costs little later, while one account known to a guesser does not wipe its
//! record); a quiet [`FORGET_AFTER`] forgets them. An IPv6 address counts by its /64
//! network, what one host usually has to pick from. At most [`MAX_ADDRESSES`] are
//! remembered (when full, the half free the longest is forgotten, at once, so a flood of
//! addresses costs bounded memory and time).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The hold after a first failure.
pub const FIRST_PENALTY: Duration = Duration::from_millis(250);
/// The longest hold: less than clients wait for an answer to their CONNECT (chat-pub
/// and chat-sub wait 2 s for MQTT 5's before they try 3.1.1), so that a held refusal is
/// still read as one.
pub const MAX_PENALTY: Duration = Duration::from_millis(1500);
/// How long a login that is being checked keeps its address busy (a check takes far
/// less; a failure extends it by its penalty).
pub const SLOT: Duration = Duration::from_millis(100);
/// How long an address that failed is remembered after it was last busy.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Most addresses remembered at once.
pub const MAX_ADDRESSES: usize = 100_000;

/// One address's failures.
#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    /// Until when the address is busy.
    busy: Instant,
}

#[derive(Debug, Default)]
pub struct Throttle {
    by_addr: HashMap<IpAddr, Record>,
}

impl Throttle {
    /// A login from `addr` at `now` asks to be checked: Ok, and the address is busy with
    /// it for [`SLOT`]; or the time until which the address is busy (ask again then).
    pub fn claim(&mut self, addr: IpAddr, now: Instant) -> Result<(), Instant> {
        let Some(r) = self.by_addr.get_mut(&key(addr)) else {
            return Ok(());
        };
        if r.busy > now {
            return Err(r.busy);
        }
        r.busy = now + SLOT;
        Ok(())
    }

    /// A login from `addr` failed at `now`: how long its refusal is held back (the
    /// address is busy until then).
    pub fn failed(&mut self, addr: IpAddr, now: Instant) -> Duration {
        let addr = key(addr);
        if !self.by_addr.contains_key(&addr) && self.by_addr.len() >= MAX_ADDRESSES {
            self.forget_old(now);
        }
        let r = self.by_addr.entry(addr).or_insert(Record {
            failures: 0,
            busy: now,
        });
        r.failures = r.failures.saturating_add(1);
        let hold = penalty(r.failures);
        r.busy = r.busy.max(now + hold);
        hold
    }

    /// A login from `addr` succeeded: the address is free, and its failures halved
    /// (forgotten when none is left).
    pub fn succeeded(&mut self, addr: IpAddr, now: Instant) {
        let addr = key(addr);
        if let Some(r) = self.by_addr.get_mut(&addr) {
            r.failures /= 2;
            r.busy = now;
            if r.failures == 0 {
                self.by_addr.remove(&addr);
            }
        }
    }

    /// Forgets the addresses free for [`FORGET_AFTER`]; when that leaves the table full,
    /// the half free the longest too.
    pub fn forget_old(&mut self, now: Instant) {
        self.by_addr.retain(|_, r| r.busy + FORGET_AFTER > now);
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

/// What an address counts as: IPv4 as it is (also when mapped into IPv6), IPv6 by its
/// /64 network.
fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// The spacing after `failures` failures: 0.25 s, 0.5 s, 1 s, ... up to 10 s.
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
    fn an_address_that_never_failed_is_never_busy() {
        let (mut t, now) = (Throttle::default(), Instant::now());
        for _ in 0..100 {
            assert_eq!(t.claim(ip(1), now), Ok(()));
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_failure_holds_its_refusal_and_its_address_only_doubling_each_time() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        assert_eq!(t.failed(ip(1), t0), FIRST_PENALTY);
        assert_eq!(t.claim(ip(1), t0), Err(t0 + FIRST_PENALTY));
        assert_eq!(t.claim(ip(2), t0), Ok(()), "another address is not slowed");
        let t1 = t0 + FIRST_PENALTY;
        assert_eq!(t.claim(ip(1), t1), Ok(()), "free once the refusal is out");
        assert_eq!(t.failed(ip(1), t1), 2 * FIRST_PENALTY);
        let holds: Vec<Duration> = (0..20).map(|_| t.failed(ip(1), t1)).collect();
        assert_eq!(holds.last(), Some(&MAX_PENALTY), "capped");
    }

    #[test]
    fn logins_waiting_at_once_are_checked_one_at_a_time() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        t.failed(ip(1), t0);
        let free = t0 + FIRST_PENALTY;
        // Three waited for the address: the first to ask takes it, the others wait.
        assert_eq!(t.claim(ip(1), free), Ok(()));
        assert_eq!(t.claim(ip(1), free), Err(free + SLOT));
        // The first fails: the others wait for its refusal to be out.
        let hold = t.failed(ip(1), free);
        assert_eq!(t.claim(ip(1), free + SLOT), Err(free + hold));
    }

    #[test]
    fn a_right_password_after_typos_is_checked_at_once_and_halves_them() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        let mut now = t0;
        for _ in 0..5 {
            now += t.failed(ip(1), now);
        }
        assert_eq!(t.claim(ip(1), now), Ok(()));
        t.succeeded(ip(1), now);
        assert_eq!(t.claim(ip(1), now), Ok(()));
        // Two of five failures remain: the next failure holds as a third.
        assert_eq!(t.failed(ip(1), now), 4 * FIRST_PENALTY);
        t.succeeded(ip(1), now);
        t.succeeded(ip(1), now);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_quiet_while_forgets_the_address() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        t.failed(ip(1), t0);
        t.forget_old(t0 + FORGET_AFTER + MAX_PENALTY);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn an_ipv6_host_counts_by_its_network() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2:3".parse().unwrap();
        let other: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        t.failed(a, t0);
        assert!(t.claim(b, t0).is_err(), "the same /64");
        assert_eq!(t.claim(other, t0), Ok(()), "another /64");
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

//! The slowing of failed logins, per source address: a password guessed from one address
//! costs that address more time at each failure, and nobody else anything.
//!
//! Each address that failed has a penalty that doubles with each failure, from
//! [`FIRST_PENALTY`] up to [`MAX_PENALTY`], and a time before which its next login is not
//! judged. Logins from that address are spaced by the penalty: each one that waits
//! takes a turn, so opening many connections at once buys no more guesses. A success
//! halves the address's failures (a typo costs little later, while one account known
//! to a guesser does not wipe its record); a quiet [`FORGET_AFTER`] forgets them. An IPv6 address counts by its
//! /64 network, what one host usually has to pick from. At most [`MAX_ADDRESSES`] are
//! remembered (when full, the half whose turns come soonest is forgotten, at once, so
//! a flood of addresses costs bounded memory and time).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The wait after a first failure.
pub const FIRST_PENALTY: Duration = Duration::from_millis(250);
/// The longest wait between two logins from one address that keeps failing.
pub const MAX_PENALTY: Duration = Duration::from_secs(10);
/// How long an address that failed is remembered after its last turn.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Most addresses remembered at once.
pub const MAX_ADDRESSES: usize = 100_000;

/// One address's failures.
#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    /// When the next login from it may be judged.
    next: Instant,
}

#[derive(Debug, Default)]
pub struct Throttle {
    by_addr: HashMap<IpAddr, Record>,
}

impl Throttle {
    /// When a login from `addr` that arrives `now` may be judged (`now` for an address
    /// that has not failed); the login takes that turn, so the next one waits longer. A
    /// turn more than [`MAX_PENALTY`] away is not taken: the caller refuses that login
    /// unjudged, and the address's turns stay as they were.
    pub fn turn(&mut self, addr: IpAddr, now: Instant) -> Instant {
        let Some(r) = self.by_addr.get_mut(&key(addr)) else {
            return now;
        };
        let at = r.next.max(now);
        if at <= now + MAX_PENALTY {
            r.next = at + penalty(r.failures);
        }
        at
    }

    /// A login from `addr` failed at `now`.
    pub fn failed(&mut self, addr: IpAddr, now: Instant) {
        let addr = key(addr);
        if !self.by_addr.contains_key(&addr) && self.by_addr.len() >= MAX_ADDRESSES {
            self.forget_old(now);
        }
        let r = self.by_addr.entry(addr).or_insert(Record {
            failures: 0,
            next: now,
        });
        r.failures = r.failures.saturating_add(1);
        r.next = r.next.max(now + penalty(r.failures));
    }

    /// A login from `addr` succeeded: its failures are halved (forgotten when none is
    /// left).
    pub fn succeeded(&mut self, addr: IpAddr) {
        let addr = key(addr);
        if let Some(r) = self.by_addr.get_mut(&addr) {
            r.failures /= 2;
            if r.failures == 0 {
                self.by_addr.remove(&addr);
            }
        }
    }

    /// Forgets the addresses quiet for [`FORGET_AFTER`]; when that leaves the table
    /// full, the half whose turns come soonest too.
    pub fn forget_old(&mut self, now: Instant) {
        self.by_addr.retain(|_, r| r.next + FORGET_AFTER > now);
        if self.by_addr.len() >= MAX_ADDRESSES {
            let mut turns: Vec<Instant> = self.by_addr.values().map(|r| r.next).collect();
            let half = turns.len() / 2;
            let (_, median, _) = turns.select_nth_unstable(half);
            let median = *median;
            self.by_addr.retain(|_, r| r.next > median);
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
    fn an_address_that_never_failed_waits_for_nothing() {
        let (mut t, now) = (Throttle::default(), Instant::now());
        for _ in 0..100 {
            assert_eq!(t.turn(ip(1), now), now);
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn failures_double_the_wait_of_that_address_only() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        t.failed(ip(1), t0);
        assert_eq!(t.turn(ip(1), t0), t0 + FIRST_PENALTY);
        assert_eq!(t.turn(ip(2), t0), t0, "another address is not slowed");
        let later = t0 + Duration::from_secs(1);
        t.failed(ip(1), later);
        // Its next turn: after the one taken, and after the doubled penalty.
        assert_eq!(t.turn(ip(1), later), later + 2 * FIRST_PENALTY);
        for _ in 0..20 {
            t.failed(ip(1), later);
        }
        let at = t.turn(ip(1), later);
        assert!(at <= later + 2 * MAX_PENALTY, "capped: {:?}", at - later);
    }

    #[test]
    fn logins_waiting_at_once_take_turns() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        t.failed(ip(1), t0);
        t.failed(ip(1), t0);
        let turns: Vec<Instant> = (0..4).map(|_| t.turn(ip(1), t0)).collect();
        for w in turns.windows(2) {
            assert_eq!(w[1] - w[0], 2 * FIRST_PENALTY, "{turns:?}");
        }
        // Many more: the turns stop moving once they are too far away.
        let far: Vec<Instant> = (0..100).map(|_| t.turn(ip(1), t0)).collect();
        assert!(
            far[99] - t0 <= MAX_PENALTY + 2 * FIRST_PENALTY,
            "{:?}",
            far[99] - t0
        );
        assert_eq!(far[98], far[99]);
    }

    #[test]
    fn a_success_or_a_quiet_while_forgets_the_address() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        t.failed(ip(1), t0);
        t.failed(ip(2), t0);
        t.succeeded(ip(1));
        assert_eq!(t.turn(ip(1), t0), t0);
        // Many failures are halved, not wiped, by a success.
        for _ in 0..6 {
            t.failed(ip(3), t0);
        }
        t.succeeded(ip(3));
        let later = t0 + MAX_PENALTY * 2;
        assert!(t.turn(ip(3), later) == later && t.turn(ip(3), later) > later);
        t.forget_old(t0 + FORGET_AFTER + 4 * MAX_PENALTY);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn an_ipv6_host_counts_by_its_network() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2:3".parse().unwrap();
        let other: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        t.failed(a, t0);
        assert!(t.turn(b, t0) > t0, "the same /64");
        assert_eq!(t.turn(other, t0), t0, "another /64");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        t.failed(ip(1), t0);
        assert!(
            t.turn(mapped, t0) > t0,
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

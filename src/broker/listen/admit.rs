//! Who gets as far as a login: the bound on connections before theirs is judged
//! ([`Pending`]), and which web pages may open a WebSocket ([`Origins`]).

use std::sync::Arc;

use crate::cli::BrokerArgs;

/// Most connections between their accept and their login judged (handshakes, CONNECTs
/// on their way, logins waiting their turn), over every listener: beyond, new ones wait
/// in the system's backlog until one is done. Each may hold a CONNECT of up to 1 MiB, so
/// this bounds what clients that never log in can take.
pub const MAX_PENDING: usize = 1024;
/// Most of those from one address but loopback (this machine's programs, a crowd
/// joining a room in a test): beyond, a new one is closed at once, so that one host
/// cannot hold them all.
pub const MAX_PENDING_PER_ADDRESS: u32 = 64;

/// The connections before their login, counted per address.
#[derive(Debug, Default)]
pub struct Pending {
    by_addr: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, u32>>,
}

/// One connection counted in [`Pending`] (and its permit of [`MAX_PENDING`]) until its
/// login is judged, when it is dropped.
pub struct Admission {
    pending: Arc<Pending>,
    addr: std::net::IpAddr,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Pending {
    fn count(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<std::net::IpAddr, u32>> {
        self.by_addr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a connection from `addr`, unless that address has too many already.
    pub(super) fn admit(
        self: &Arc<Self>,
        addr: std::net::IpAddr,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Option<Admission> {
        let mut count = self.count();
        let n = count.entry(addr).or_default();
        if *n >= MAX_PENDING_PER_ADDRESS && !addr.is_loopback() {
            return None;
        }
        *n += 1;
        Some(Admission {
            pending: self.clone(),
            addr,
            _permit: permit,
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut count = self.pending.count();
        if let Some(n) = count.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                count.remove(&self.addr);
            }
        }
    }
}

/// Which web pages may open a WebSocket (`--ws-origin`): any, where a login is needed
/// anyway; else those listed.
#[derive(Debug, Default)]
pub struct Origins {
    /// Whether clients may connect without a password.
    pub anonymous: bool,
    pub allowed: Vec<String>,
}

impl Origins {
    pub fn new(args: &BrokerArgs) -> Origins {
        Origins {
            // A browser sends its user's client certificate for any page: such a login
            // proves nothing of the page either.
            anonymous: args.password_file.is_none()
                || args.allow_anonymous
                || args.use_identity_as_username,
            allowed: args.ws_origin.clone(),
        }
    }

    /// Whether a handshake that says it comes from `origin` (None: says nothing, not a
    /// browser) may go on.
    pub fn admit(&self, origin: Option<&str>) -> bool {
        match origin {
            None => true,
            Some(_) if !self.anonymous => true,
            Some(o) => (self.allowed.iter()).any(|a| a == "*" || a.eq_ignore_ascii_case(o)),
        }
    }
}

//! Host names to addresses, telling a name that does not exist from a resolver that is
//! only unavailable for now.
//!
//! The standard library's lookup (and tokio's, built on it) folds every failure of
//! getaddrinfo(3) into one opaque error, so a misspelt `-b` host was retried until
//! `--connect-timeout` like a broker that is merely down. Here the resolver's own answer
//! decides: "no such name" (`EAI_NONAME`, `EAI_NODATA`) is an [`Unresolved`] error, which
//! the connection policy does not retry before the first connection; a temporary failure
//! (`EAI_AGAIN`: no network yet, a resolver that timed out) is an ordinary error, retried
//! like a refused connection. Names under `.invalid` never resolve (RFC 6761 asks
//! resolvers to say so at once), so they are answered without asking anyone.

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// A host name that does not resolve: retrying will not make it exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub host: String,
    /// The resolver's reason, as it words it.
    pub why: String,
}

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot resolve the host name '{}': {}",
            self.host, self.why
        )
    }
}

impl std::error::Error for Unresolved {}

/// The [`Unresolved`] inside an I/O error made by [`lookup`], if that is what it is.
pub fn unresolved(e: &io::Error) -> Option<&Unresolved> {
    e.get_ref()?.downcast_ref::<Unresolved>()
}

/// The addresses of `host` (a name, or an IP address without brackets) at `port`, in the
/// resolver's order. A name that does not exist is an error carrying [`Unresolved`].
pub async fn lookup(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if is_invalid_domain(host) {
        return Err(not_found(host, "names under .invalid never resolve"));
    }
    let name = host.to_owned();
    tokio::task::spawn_blocking(move || getaddrinfo(&name, port))
        .await
        .map_err(io::Error::other)?
}

/// A TCP connection to `host` at `port`: to the first of its addresses that accepts one,
/// in the resolver's order; the last error when none does.
pub async fn connect(host: &str, port: u16) -> io::Result<tokio::net::TcpStream> {
    let mut last = None;
    for addr in lookup(host, port).await? {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("the host name has no address")))
}

/// Whether `host` is in the special-use domain `invalid` (RFC 6761, §6.4).
fn is_invalid_domain(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    host == "invalid" || host.ends_with(".invalid")
}

fn not_found(host: &str, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        Unresolved {
            host: host.to_owned(),
            why: why.to_owned(),
        },
    )
}

/// getaddrinfo(3) for TCP, as the standard library calls it (no AI_ADDRCONFIG: it would
/// hide `localhost` on a host whose only interface is loopback).
fn getaddrinfo(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let c_host = CString::new(host).map_err(|_| not_found(host, "the name contains NUL"))?;
    // SAFETY: an all-zero addrinfo is a valid "no hints" value; the fields set are plain.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: c_host is NUL-terminated and outlives the call; hints and list are valid
    // pointers; on success the list is freed below, exactly once.
    let code = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut list) };
    if code != 0 {
        return Err(gai_error(host, code));
    }
    let mut addrs = Vec::new();
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: cur walks the list getaddrinfo returned, which is valid until freed;
        // ai_addr points to ai_addrlen bytes of a sockaddr of family ai_family.
        unsafe {
            let ai = &*cur;
            if let Some(addr) = addr_of(ai, port) {
                addrs.push(addr);
            }
            cur = ai.ai_next;
        }
    }
    // SAFETY: list came from a successful getaddrinfo and is not used after this.
    unsafe { libc::freeaddrinfo(list) };
    if addrs.is_empty() {
        return Err(not_found(host, "it has no IP address"));
    }
    Ok(addrs)
}

/// The address of one entry of getaddrinfo's list at `port`, if it is IPv4 or IPv6 (an
/// IPv6 scope, as in `fe80::1%eth0`, is kept).
///
/// # Safety
/// `ai` must be an entry of a list getaddrinfo returned and that is not freed yet.
unsafe fn addr_of(ai: &libc::addrinfo, port: u16) -> Option<SocketAddr> {
    let len = ai.ai_addrlen as usize;
    if ai.ai_addr.is_null() {
        return None;
    }
    match ai.ai_family {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the caller's promise, and the family and length checked above.
            let sin = unsafe { std::ptr::read_unaligned(ai.ai_addr as *const libc::sockaddr_in) };
            let ip = IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes());
            Some(SocketAddr::new(ip, port))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above.
            let sin6 = unsafe { std::ptr::read_unaligned(ai.ai_addr as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddrV6::new(ip, port, 0, sin6.sin6_scope_id).into())
        }
        _ => None,
    }
}

/// getaddrinfo's error `code` as an I/O error: [`Unresolved`] when the name does not exist.
fn gai_error(host: &str, code: libc::c_int) -> io::Error {
    if code == libc::EAI_SYSTEM {
        let e = io::Error::last_os_error();
        return io::Error::new(
            e.kind(),
            format!("cannot resolve the host name '{host}': {e}"),
        );
    }
    // SAFETY: gai_strerror returns a pointer to a static NUL-terminated string.
    let why = unsafe { CStr::from_ptr(libc::gai_strerror(code)) }.to_string_lossy();
    match code {
        libc::EAI_NONAME | libc::EAI_NODATA => not_found(host, &why),
        _ => io::Error::other(format!("cannot resolve the host name '{host}': {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn addresses_need_no_resolver() {
        let a = run(lookup("::1", 7)).expect("an address");
        assert_eq!(a, ["[::1]:7".parse().unwrap()]);
        let a = run(lookup("127.0.0.2", 1883)).expect("an address");
        assert_eq!(a, ["127.0.0.2:1883".parse().unwrap()]);
    }

    #[test]
    fn names_under_invalid_do_not_resolve_and_say_so() {
        for host in ["nosuchhost.invalid", "a.b.INVALID.", "invalid"] {
            let e = run(lookup(host, 1883)).expect_err(host);
            let u = unresolved(&e).unwrap_or_else(|| panic!("{host}: {e:?}"));
            assert_eq!(u.host, host);
            assert!(e.to_string().contains("never resolve"), "{e}");
        }
        assert!(!is_invalid_domain("invalid.example"));
        assert!(!is_invalid_domain("notinvalid"));
    }

    #[test]
    fn an_ipv6_scope_is_kept() {
        let a = run(lookup("fe80::1%1", 1883)).expect("a scoped address");
        assert!(
            matches!(a[..], [SocketAddr::V6(v6)] if v6.scope_id() == 1),
            "{a:?}"
        );
    }

    #[test]
    fn localhost_resolves() {
        let a = run(lookup("localhost", 1883)).expect("localhost");
        assert!(
            a.iter().all(|a| a.ip().is_loopback() && a.port() == 1883),
            "{a:?}"
        );
    }

    #[test]
    fn other_errors_are_not_unresolved() {
        assert!(unresolved(&io::Error::other("x")).is_none());
        assert!(unresolved(&gai_error("h", libc::EAI_AGAIN)).is_none());
        assert!(unresolved(&gai_error("h", libc::EAI_NONAME)).is_some());
    }
}

//! Reaching the broker through a proxy: SOCKS5 (`socks5://`, the broker's name resolved
//! here; `socks5h://`, resolved by the proxy) or HTTP CONNECT (`http://`), with a user
//! name and password in the URL. The tunnel is a TCP stream like any other, so TLS,
//! WebSocket and the failover between nodes work through it unchanged.
//!
//! The handshakes are state machines (`socks`, `http`) that this driver feeds. Every
//! failure is an I/O error carrying a [`ProxyError`], which the connection policy reads:
//! refused credentials end the run (exit 4), a proxy that will never carry the
//! connection ends it at once (exit 3), a broker the proxy cannot reach is retried as a
//! refused connection is. The password is never shown: the URL is displayed without it.

use std::fmt;
use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::Error;
use crate::mqtt::endpoint::split_host_port;

mod handshake;
mod http;
mod socks;

pub use handshake::FailureKind;
use handshake::{Handshake, Step};
use socks::{Login, Target};

/// The proxy's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// SOCKS5, the broker's name resolved here.
    Socks5,
    /// SOCKS5, the broker's name resolved by the proxy.
    Socks5h,
    /// HTTP CONNECT.
    Http,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Socks5 => "socks5",
            Scheme::Socks5h => "socks5h",
            Scheme::Http => "http",
        }
    }
}

/// A proxy: where it is, and the login it wants.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    scheme: Scheme,
    host: String,
    port: u16,
    login: Option<Login>,
}

/// SOCKS's standard port (RFC 1928), and the common one of HTTP proxies.
const SOCKS_PORT: u16 = 1080;
const HTTP_PORT: u16 = 8080;

impl Proxy {
    /// Parses `SCHEME://[USER[:PASSWORD]@]HOST[:PORT]`; every problem is a usage error
    /// that names `given` (the flag, variable or key) and never echoes a password.
    pub fn parse(url: &str, given: &str) -> Result<Proxy, Error> {
        let shown = crate::escape::escaped(&redact(url));
        let bad = |why: &str| Error::Usage(format!("invalid {given} '{shown}': {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("give the scheme: socks5://, socks5h:// or http://"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "socks5" => Scheme::Socks5,
            "socks5h" => Scheme::Socks5h,
            "http" => Scheme::Http,
            "https" => return Err(bad("TLS to the proxy itself is not supported; use http://")),
            "socks4" | "socks4a" => return Err(bad("SOCKS4 is not supported; use socks5://")),
            other => {
                return Err(bad(&format!(
                    "unknown scheme '{other}' (use socks5, socks5h or http)"
                )));
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(bad("a proxy URL has no path"));
        }
        let (login, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(login(userinfo).map_err(&bad)?), hostport),
            None => (None, authority),
        };
        // A bare IPv6 address cannot take a port: brackets, as in a URL.
        if !hostport.starts_with('[') && hostport.matches(':').count() > 1 {
            return Err(bad("put an IPv6 address in brackets: [::1]:1080"));
        }
        let (host, port) = split_host_port(hostport).map_err(&bad)?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.chars().any(char::is_control) {
            return Err(bad("control characters in the host"));
        }
        if let Some(l) = &login {
            // RFC 7617: a user-id with a colon cannot be told from the password.
            if scheme == Scheme::Http && l.user.contains(':') {
                return Err(bad("basic authentication allows no ':' in the user name"));
            }
            // RFC 1929: a password of 1 to 255 bytes.
            if scheme != Scheme::Http && l.password.is_empty() {
                return Err(bad("SOCKS5 needs a password with the user name"));
            }
        }
        let port = match port {
            // Digits only (no `+`); other text is not echoed: it may be a password
            // whose user forgot the host.
            Some(p) if !p.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(bad("the port is not a number"));
            }
            Some(p) => (p.parse::<u16>().ok())
                .filter(|&p| p != 0)
                .ok_or_else(|| bad(&format!("invalid port '{p}'")))?,
            None if scheme == Scheme::Http => HTTP_PORT,
            None => SOCKS_PORT,
        };
        Ok(Proxy {
            scheme,
            host: host.to_string(),
            port,
            login,
        })
    }

    /// Whether the URL holds a password.
    pub fn has_password(&self) -> bool {
        self.login.as_ref().is_some_and(|l| !l.password.is_empty())
    }

    /// A TCP stream to `host` at `port` through the proxy, the handshake done.
    pub async fn open(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        match self.scheme {
            Scheme::Socks5 => {
                // Resolved here: a broker name that does not exist is reported as
                // without a proxy. Each address is tried in turn, as a direct
                // connection tries them.
                let mut last = None;
                for addr in crate::mqtt::resolve::lookup(host, port).await? {
                    let target = Target::Ip(addr.ip(), port);
                    match self
                        .through(socks::Socks5::new(target, self.login.clone()))
                        .await
                    {
                        Ok(tcp) => return Ok(tcp),
                        // Refused credentials or rules: the next address changes nothing.
                        Err(e) if proxy_error(&e).is_some_and(|p| p.is_final()) => return Err(e),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| io::Error::other("the host name has no address")))
            }
            Scheme::Socks5h => {
                let target = match host.parse() {
                    Ok(ip) => Target::Ip(ip, port),
                    Err(_) if host.len() > 255 => {
                        let why = "the broker's host name is longer than SOCKS5 allows (255)";
                        return Err(self.error(ErrorKind::Said(FailureKind::Denied), why));
                    }
                    Err(_) => Target::Name(host.to_string(), port),
                };
                self.through(socks::Socks5::new(target, self.login.clone()))
                    .await
            }
            Scheme::Http => {
                self.through(http::Connect::new(host, port, self.login.as_ref()))
                    .await
            }
        }
    }

    /// Connects to the proxy and carries out `handshake`.
    async fn through(&self, mut handshake: impl Handshake) -> io::Result<TcpStream> {
        let mut tcp = match crate::mqtt::resolve::connect(&self.host, self.port).await {
            Ok(tcp) => tcp,
            Err(e) => {
                let (kind, why) = match crate::mqtt::resolve::unresolved(&e) {
                    Some(u) => (ErrorKind::Unresolved, u.to_string()),
                    None if e.kind() == io::ErrorKind::ConnectionRefused => (
                        ErrorKind::Unreachable,
                        format!("cannot reach the proxy: nothing listens on {}", self.addr()),
                    ),
                    None => (
                        ErrorKind::Unreachable,
                        format!("cannot reach the proxy: {e}"),
                    ),
                };
                return Err(self.error(kind, &why));
            }
        };
        tcp.set_nodelay(true)?;
        let lost = |e: io::Error| {
            let why = format!("the connection to the proxy ended during its handshake: {e}");
            self.error(ErrorKind::Said(FailureKind::Refused), &why)
        };
        let mut buf = Vec::new();
        let mut step = handshake.start();
        loop {
            step = match step {
                Step::Send(bytes) => {
                    tcp.write_all(&bytes).await.map_err(lost)?;
                    handshake.sent()
                }
                Step::Read(n) => {
                    buf.resize(n, 0);
                    tcp.read_exact(&mut buf).await.map_err(lost)?;
                    handshake.received(&buf)
                }
                Step::Done => return Ok(tcp),
                Step::Failed(f) => return Err(self.error(ErrorKind::Said(f.kind), &f.why)),
            };
        }
    }

    /// `host:port` of the proxy (IPv6 in brackets).
    fn addr(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        }
    }

    fn error(&self, kind: ErrorKind, why: &str) -> io::Error {
        io::Error::other(ProxyError {
            proxy: self.to_string(),
            kind,
            why: why.to_string(),
        })
    }
}

/// Shows the URL without its password.
impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = match &self.login {
            Some(l) => format!("{}@", crate::escape::escaped(&l.user)),
            None => String::new(),
        };
        write!(f, "{}://{user}{}", self.scheme.name(), self.addr())
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy({self})")
    }
}

/// What went wrong with the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The proxy's host name does not exist.
    Unresolved,
    /// The proxy cannot be reached (down, nothing listening): retried.
    Unreachable,
    /// The proxy answered, and said no.
    Said(FailureKind),
}

/// A failure of the proxy, inside the I/O error of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    /// The proxy's URL, without its password.
    pub proxy: String,
    pub kind: ErrorKind,
    pub why: String,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "through the proxy {}: {}", self.proxy, self.why)
    }
}

impl std::error::Error for ProxyError {}

impl ProxyError {
    /// Whether no other attempt through this proxy can succeed.
    pub fn is_final(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Unresolved | ErrorKind::Said(FailureKind::Credentials | FailureKind::Denied)
        )
    }
}

/// The [`ProxyError`] inside an I/O error, if that is what it is.
pub fn proxy_error(e: &io::Error) -> Option<&ProxyError> {
    e.get_ref()?.downcast_ref::<ProxyError>()
}

/// The URL as messages show it: `USER:PASSWORD@` becomes `USER:…@`.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) if !scheme.contains([':', '@']) => (format!("{scheme}://"), rest),
        _ => (String::new(), url),
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            match userinfo.contains(':') {
                true => format!("{scheme}{user}:…@{host}"),
                false => format!("{scheme}{user}@{host}"),
            }
        }
        // No login, or one whose host was forgotten (`socks5://alice:PASSWORD`): what
        // follows a colon is shown only when it is a port.
        None => match rest.split_once(':') {
            Some((host, port)) if !port.bytes().all(|b| b.is_ascii_digit() || b == b'/') => {
                format!("{scheme}{host}:…")
            }
            _ => url.to_string(),
        },
    }
}

/// `USER[:PASSWORD]`, percent-decoded; each at most 255 bytes (RFC 1929).
fn login(userinfo: &str) -> Result<Login, &'static str> {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let user = percent_decode(user).ok_or("bad %-escape in the user name")?;
    let password = percent_decode(password).ok_or("bad %-escape in the password")?;
    if user.is_empty() {
        return Err("an empty user name");
    }
    if user.len() > 255 || password.len() > 255 {
        return Err("the user name and the password may have at most 255 bytes each");
    }
    Ok(Login { user, password })
}

/// `%XX` escapes decoded (so that `@`, `:` and `%` can be in a user name or password).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(url: &str) -> Proxy {
        Proxy::parse(url, "--proxy").unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn forms_and_default_ports() {
        assert_eq!(
            proxy("socks5://127.0.0.1").to_string(),
            "socks5://127.0.0.1:1080"
        );
        assert_eq!(proxy("SOCKS5H://h:9050").to_string(), "socks5h://h:9050");
        assert_eq!(
            proxy("http://proxy.corp/").to_string(),
            "http://proxy.corp:8080"
        );
        assert_eq!(proxy("socks5://[::1]:1").to_string(), "socks5://[::1]:1");
    }

    #[test]
    fn the_password_is_decoded_and_never_shown() {
        let p = proxy("socks5h://al%40ice:p%3Ass@h:1");
        let login = p.login.as_ref().unwrap();
        assert_eq!(
            (login.user.as_str(), login.password.as_str()),
            ("al@ice", "p:ss")
        );
        assert!(p.has_password());
        assert_eq!(p.to_string(), "socks5h://al@ice@h:1");
        assert!(!format!("{p:?}").contains("p:ss"));
        assert!(!proxy("http://bob@h").has_password());
    }

    #[test]
    fn redaction_hides_what_may_be_a_password_in_every_shape() {
        for (url, shown) in [
            ("socks5://u:p@h:1", "socks5://u:…@h:1"),
            ("socks5://u:p@ss@h", "socks5://u:…@h"),
            ("socks5://u@h", "socks5://u@h"),
            ("socks5://alice:hunter2", "socks5://alice:…"),
            ("socks5://h:1080/", "socks5://h:1080/"),
            ("u:p@h", "u:…@h"),
            ("u:a://hunter2@h", "u:…@h"),
            ("alice:hunter2", "alice:…"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn errors_are_usage_errors_without_the_password() {
        for (url, says) in [
            ("ftp://h", "unknown scheme 'ftp'"),
            ("h:1080", "give the scheme"),
            ("socks5://", "no host"),
            ("socks5://h:0", "invalid port '0'"),
            ("socks5://h:x", "the port is not a number"),
            ("socks4://h", "SOCKS4 is not supported"),
            ("https://u:hunter2@h", "TLS to the proxy itself"),
            ("http://u:hunter2@h/path", "no path"),
            ("socks5://::1", "brackets"),
            ("socks5://:hunter2@h", "an empty user name"),
            ("socks5://u:%zz@h", "bad %-escape in the password"),
            ("socks5://alice:hunter2", "the port is not a number"),
            ("http://al%3Aice:hunter2@h", "no ':' in the user name"),
            ("socks5://alice@h", "SOCKS5 needs a password"),
            ("socks5://h\r\nX: y", "control characters"),
        ] {
            match Proxy::parse(url, "--proxy") {
                Err(Error::Usage(m)) => {
                    assert!(m.contains(says), "{url}: {m}");
                    assert!(!m.contains("hunter2") && !m.contains("%zz"), "{url}: {m}");
                    assert!(!m.contains('\r'), "{url}: {m}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}

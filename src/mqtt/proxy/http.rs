//! The HTTP CONNECT handshake (RFC 9110 §9.3.6), with basic authentication (RFC 7617):
//! the request, then the response head read up to its blank line and not a byte further.
//!
//! A 2xx status opens the tunnel; 407 (or 401) is a credentials failure; a 5xx that
//! says the broker could not be reached is retried; any other status is final. Each is
//! reported by its status line.

use base64::Engine;

use super::handshake::{FailureKind, Handshake, Step, failed};
use super::socks::Login;

/// The longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// One CONNECT. Not `Debug`: its request holds the login.
pub struct Connect {
    request: Vec<u8>,
    login: bool,
    head: Vec<u8>,
}

impl Connect {
    /// CONNECT to `host` (a name or an address; an IPv6 address is bracketed here) and
    /// `port`, with `login` as basic authentication.
    pub fn new(host: &str, port: u16, login: Option<&Login>) -> Connect {
        let authority = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(login) = login {
            let pair = format!("{}:{}", login.user, login.password);
            let token = base64::engine::general_purpose::STANDARD.encode(pair);
            request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
        }
        request.push_str("\r\n");
        Connect {
            request: request.into_bytes(),
            login: login.is_some(),
            head: Vec::new(),
        }
    }

    /// How many bytes may be read without passing the blank line that ends the head:
    /// as many as are missing from `\r\n\r\n` after what was read.
    fn missing(&self) -> usize {
        let end = b"\r\n\r\n";
        (1..=3)
            .rev()
            .find(|&n| self.head.ends_with(&end[..n]))
            .map_or(4, |n| 4 - n)
    }

    fn judge(&self) -> Step {
        let text = String::from_utf8_lossy(&self.head);
        let line = text.lines().next().unwrap_or_default().trim_end();
        let shown = crate::escape::escaped(line);
        let mut parts = line.splitn(3, ' ');
        let (version, status) = (parts.next().unwrap_or_default(), parts.next());
        let status = status.and_then(|s| s.parse::<u16>().ok());
        let Some(status) = status.filter(|_| version.starts_with("HTTP/")) else {
            return failed(
                FailureKind::Denied,
                format!("not an HTTP proxy (it answered {shown:?})"),
            );
        };
        match status {
            200..=299 => Step::Done,
            // 407 is the standard's answer; some proxies (tinyproxy) say 401 to a wrong
            // password.
            401 | 407 if self.login => failed(
                FailureKind::Credentials,
                format!("the proxy refused the user name and password: {shown}"),
            ),
            401 | 407 => failed(
                FailureKind::Credentials,
                format!(
                    "the proxy wants a user name and a password (give them in the proxy \
                     URL: http://USER:PASSWORD@HOST:PORT): {shown}"
                ),
            ),
            // The broker's side: the proxy could not reach it (tinyproxy says 500 "Unable
            // to connect"), or gave up waiting.
            500 | 502..=504 => failed(FailureKind::Refused, shown),
            _ => failed(FailureKind::Denied, shown),
        }
    }
}

impl Handshake for Connect {
    fn start(&mut self) -> Step {
        self.head.clear();
        Step::Send(self.request.clone())
    }

    fn sent(&mut self) -> Step {
        Step::Read(self.missing())
    }

    fn received(&mut self, bytes: &[u8]) -> Step {
        self.head.extend_from_slice(bytes);
        if self.head.ends_with(b"\r\n\r\n") {
            return self.judge();
        }
        if self.head.len() > MAX_HEAD {
            return failed(
                FailureKind::Denied,
                format!("the proxy's answer has no end within {MAX_HEAD} bytes"),
            );
        }
        Step::Read(self.missing())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `answer` as a driver would, in the sizes asked for; the step at the end.
    fn answer(c: &mut Connect, answer: &[u8]) -> Step {
        let mut rest = answer;
        let mut step = c.sent();
        while let Step::Read(n) = step {
            assert!(n <= rest.len(), "asked for {n} bytes beyond the answer");
            let (now, later) = rest.split_at(n);
            step = c.received(now);
            rest = later;
        }
        assert!(
            rest.is_empty(),
            "{} bytes of the answer left unread",
            rest.len()
        );
        step
    }

    #[test]
    fn the_request_names_the_broker_and_carries_basic_auth() {
        let login = Login {
            user: "alice".into(),
            password: "s3cret".into(),
        };
        let mut c = Connect::new("::1", 1883, Some(&login));
        let Step::Send(req) = c.start() else {
            panic!("sends first")
        };
        assert_eq!(
            String::from_utf8(req).unwrap(),
            "CONNECT [::1]:1883 HTTP/1.1\r\nHost: [::1]:1883\r\n\
             Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n"
        );
    }

    #[test]
    fn a_2xx_opens_the_tunnel_reading_up_to_the_blank_line_only() {
        let mut c = Connect::new("broker", 1883, None);
        c.start();
        let head = b"HTTP/1.1 200 Connection established\r\nProxy-agent: x\r\n\r\n";
        assert_eq!(answer(&mut c, head), Step::Done);
    }

    fn failure(step: Step) -> (FailureKind, String) {
        match step {
            Step::Failed(f) => (f.kind, f.why),
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn statuses_are_judged_by_their_status_line() {
        for (head, kind, why) in [
            (
                "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
                FailureKind::Credentials,
                "wants a user name and a password",
            ),
            (
                "HTTP/1.0 403 Access violation\r\n\r\n",
                FailureKind::Denied,
                "HTTP/1.0 403 Access violation",
            ),
            (
                "HTTP/1.1 502 Bad Gateway\r\nX: y\r\n\r\n",
                FailureKind::Refused,
                "HTTP/1.1 502 Bad Gateway",
            ),
            (
                "SSH-2.0-OpenSSH\r\n\r\n",
                FailureKind::Denied,
                "not an HTTP proxy",
            ),
        ] {
            let mut c = Connect::new("broker", 1883, None);
            c.start();
            let (k, w) = failure(answer(&mut c, head.as_bytes()));
            assert_eq!(k, kind, "{head:?}");
            assert!(w.contains(why), "{head:?}: {w}");
        }
    }

    #[test]
    fn refused_credentials_do_not_show_them() {
        let login = Login {
            user: "alice".into(),
            password: "s3cret".into(),
        };
        let mut c = Connect::new("broker", 1883, Some(&login));
        c.start();
        let (k, w) = failure(answer(&mut c, b"HTTP/1.1 407 Nope\r\n\r\n"));
        assert_eq!(k, FailureKind::Credentials);
        assert!(w.contains("refused the user name and password: HTTP/1.1 407 Nope"));
        assert!(!w.contains("s3cret") && !w.contains("YWxp"));
    }

    #[test]
    fn an_endless_head_is_refused() {
        let mut c = Connect::new("broker", 1883, None);
        c.start();
        let mut step = c.sent();
        let mut fed = 0;
        while let Step::Read(n) = step {
            step = c.received(&vec![b'x'; n]);
            fed += n;
        }
        assert!(fed > MAX_HEAD);
        assert_eq!(failure(step).0, FailureKind::Denied);
    }
}

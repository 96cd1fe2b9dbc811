//! The SOCKS5 handshake (RFC 1928), with user name and password (RFC 1929): greeting,
//! method, optional login, CONNECT, reply.
//!
//! The broker is named by address (`socks5://`, resolved here) or by name
//! (`socks5h://`, resolved by the proxy). A reply other than success is reported by its
//! RFC name and number.

use std::net::IpAddr;

use super::handshake::{Failure, FailureKind, Handshake, Step, failed};

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0;
const USER_PASS: u8 = 2;
const NO_ACCEPTABLE: u8 = 0xFF;
const CONNECT: u8 = 1;
const ATYP_V4: u8 = 1;
const ATYP_NAME: u8 = 3;
const ATYP_V6: u8 = 4;

/// Where the proxy is asked to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An address resolved here (`socks5://`).
    Ip(IpAddr, u16),
    /// A host name the proxy resolves (`socks5h://`); at most 255 bytes.
    Name(String, u16),
}

/// A user name and password (each 1 to 255 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({:?}, password hidden)", self.user)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Method,
    Login,
    LoginReply,
    Request,
    ReplyHead,
    ReplyNameLength,
    ReplyAddress,
    Done,
}

/// One SOCKS5 handshake.
#[derive(Debug)]
pub struct Socks5 {
    target: Target,
    login: Option<Login>,
    state: State,
}

impl Socks5 {
    pub fn new(target: Target, login: Option<Login>) -> Socks5 {
        Socks5 {
            target,
            login,
            state: State::Greeting,
        }
    }

    fn login_bytes(&self) -> Vec<u8> {
        let login = self.login.as_ref().expect("the login state needs a login");
        let mut out = vec![1, login.user.len() as u8];
        out.extend_from_slice(login.user.as_bytes());
        out.push(login.password.len() as u8);
        out.extend_from_slice(login.password.as_bytes());
        out
    }

    fn request(&mut self) -> Step {
        self.state = State::Request;
        let mut out = vec![VERSION, CONNECT, 0];
        let port = match &self.target {
            Target::Ip(IpAddr::V4(ip), port) => {
                out.push(ATYP_V4);
                out.extend_from_slice(&ip.octets());
                port
            }
            Target::Ip(IpAddr::V6(ip), port) => {
                out.push(ATYP_V6);
                out.extend_from_slice(&ip.octets());
                port
            }
            Target::Name(name, port) => {
                out.push(ATYP_NAME);
                out.push(name.len() as u8);
                out.extend_from_slice(name.as_bytes());
                port
            }
        };
        out.extend_from_slice(&port.to_be_bytes());
        Step::Send(out)
    }

    fn method(&mut self, bytes: &[u8]) -> Step {
        let [version, method] = bytes else {
            return garbled("a method reply of the wrong size");
        };
        if *version != VERSION {
            return not_socks5(*version);
        }
        match (*method, &self.login) {
            (NO_AUTH, _) => self.request(),
            (USER_PASS, Some(_)) => {
                self.state = State::Login;
                Step::Send(self.login_bytes())
            }
            (NO_ACCEPTABLE, None) => failed(
                FailureKind::Credentials,
                "the proxy wants a user name and a password (give them in the proxy URL: \
                 socks5://USER:PASSWORD@HOST:PORT)",
            ),
            (NO_ACCEPTABLE, Some(_)) => failed(
                FailureKind::Denied,
                "the proxy accepts neither no authentication nor a user name and password",
            ),
            (other, _) => garbled(&format!(
                "the proxy chose authentication method {other}, which was not offered"
            )),
        }
    }

    fn reply_head(&mut self, bytes: &[u8]) -> Step {
        let [version, reply, _, atyp] = bytes else {
            return garbled("a reply of the wrong size");
        };
        if *version != VERSION {
            return not_socks5(*version);
        }
        if *reply != 0 {
            return Step::Failed(reply_failure(*reply));
        }
        match *atyp {
            ATYP_V4 => self.read(State::ReplyAddress, 4 + 2),
            ATYP_V6 => self.read(State::ReplyAddress, 16 + 2),
            ATYP_NAME => self.read(State::ReplyNameLength, 1),
            other => garbled(&format!("a reply with address type {other}")),
        }
    }

    fn read(&mut self, state: State, n: usize) -> Step {
        self.state = state;
        Step::Read(n)
    }
}

impl Handshake for Socks5 {
    fn start(&mut self) -> Step {
        self.state = State::Greeting;
        Step::Send(match self.login {
            Some(_) => vec![VERSION, 2, NO_AUTH, USER_PASS],
            None => vec![VERSION, 1, NO_AUTH],
        })
    }

    fn sent(&mut self) -> Step {
        match self.state {
            State::Greeting => self.read(State::Method, 2),
            State::Login => self.read(State::LoginReply, 2),
            State::Request => self.read(State::ReplyHead, 4),
            _ => garbled("a send out of turn"),
        }
    }

    fn received(&mut self, bytes: &[u8]) -> Step {
        match self.state {
            State::Method => self.method(bytes),
            State::LoginReply => match bytes {
                [1, 0] => self.request(),
                [_, status] => failed(
                    FailureKind::Credentials,
                    format!("the proxy refused the user name and password (status {status})"),
                ),
                _ => garbled("a login reply of the wrong size"),
            },
            State::ReplyHead => self.reply_head(bytes),
            State::ReplyNameLength => match bytes {
                [n] => self.read(State::ReplyAddress, usize::from(*n) + 2),
                _ => garbled("a reply of the wrong size"),
            },
            State::ReplyAddress => {
                self.state = State::Done;
                Step::Done
            }
            State::Greeting | State::Login | State::Request | State::Done => {
                garbled("bytes out of turn")
            }
        }
    }
}

/// A reply code as RFC 1928 names it; the broker's own troubles are retried, the
/// proxy's rules are not.
fn reply_failure(code: u8) -> Failure {
    let (kind, what) = match code {
        1 => (FailureKind::Refused, "general SOCKS server failure"),
        2 => (FailureKind::Denied, "connection not allowed by ruleset"),
        3 => (FailureKind::Refused, "network unreachable"),
        4 => (FailureKind::Refused, "host unreachable"),
        5 => (FailureKind::Refused, "connection refused"),
        6 => (FailureKind::Refused, "TTL expired"),
        7 => (FailureKind::Denied, "command not supported"),
        8 => (FailureKind::Denied, "address type not supported"),
        _ => (FailureKind::Refused, "unassigned reply code"),
    };
    Failure::new(kind, format!("{what} (SOCKS5 reply {code})"))
}

fn garbled(what: &str) -> Step {
    failed(
        FailureKind::Denied,
        format!("the proxy does not speak SOCKS5 as expected: {what}"),
    )
}

fn not_socks5(version: u8) -> Step {
    failed(
        FailureKind::Denied,
        format!("not a SOCKS5 proxy (it answered with version {version})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn login() -> Option<Login> {
        Some(Login {
            user: "alice".into(),
            password: "s3cret".into(),
        })
    }

    #[test]
    fn without_login_greeting_then_connect_by_address() {
        let target = Target::Ip(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 1883);
        let mut s = Socks5::new(target, None);
        assert_eq!(s.start(), Step::Send(vec![5, 1, 0]));
        assert_eq!(s.sent(), Step::Read(2));
        assert_eq!(
            s.received(&[5, 0]),
            Step::Send(vec![5, 1, 0, 1, 127, 0, 0, 1, 0x07, 0x5b])
        );
        assert_eq!(s.sent(), Step::Read(4));
        assert_eq!(s.received(&[5, 0, 0, 1]), Step::Read(6));
        assert_eq!(s.received(&[0; 6]), Step::Done);
    }

    #[test]
    fn with_login_and_a_name_for_the_proxy_to_resolve() {
        let mut s = Socks5::new(Target::Name("broker.lan".into(), 8883), login());
        assert_eq!(s.start(), Step::Send(vec![5, 2, 0, 2]));
        assert_eq!(s.sent(), Step::Read(2));
        let mut auth = vec![1, 5];
        auth.extend_from_slice(b"alice");
        auth.push(6);
        auth.extend_from_slice(b"s3cret");
        assert_eq!(s.received(&[5, 2]), Step::Send(auth));
        assert_eq!(s.sent(), Step::Read(2));
        let mut request = vec![5, 1, 0, 3, 10];
        request.extend_from_slice(b"broker.lan");
        request.extend_from_slice(&8883u16.to_be_bytes());
        assert_eq!(s.received(&[1, 0]), Step::Send(request));
        assert_eq!(s.sent(), Step::Read(4));
        // A bound address given as a name: its length, then the name and the port.
        assert_eq!(s.received(&[5, 0, 0, 3]), Step::Read(1));
        assert_eq!(s.received(&[4]), Step::Read(6));
        assert_eq!(s.received(b"host\0\0"), Step::Done);
    }

    #[test]
    fn an_ipv6_reply_is_read_whole() {
        let mut s = Socks5::new(Target::Name("h".into(), 1), None);
        s.start();
        s.sent();
        s.received(&[5, 0]);
        s.sent();
        assert_eq!(s.received(&[5, 0, 0, 4]), Step::Read(18));
    }

    fn kind(step: Step) -> (FailureKind, String) {
        match step {
            Step::Failed(f) => (f.kind, f.why),
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn refused_credentials_and_a_proxy_that_wants_them_are_credential_failures() {
        let mut s = Socks5::new(Target::Name("h".into(), 1), login());
        s.start();
        s.sent();
        s.received(&[5, 2]);
        s.sent();
        let (k, why) = kind(s.received(&[1, 1]));
        assert_eq!(k, FailureKind::Credentials);
        assert!(why.contains("refused the user name and password"), "{why}");
        assert!(!why.contains("s3cret"));

        let mut s = Socks5::new(Target::Name("h".into(), 1), None);
        s.start();
        s.sent();
        let (k, why) = kind(s.received(&[5, 0xFF]));
        assert_eq!(k, FailureKind::Credentials);
        assert!(why.contains("wants a user name and a password"), "{why}");
    }

    #[test]
    fn replies_are_named_and_judged() {
        for (code, want, k) in [
            (
                5,
                "connection refused (SOCKS5 reply 5)",
                FailureKind::Refused,
            ),
            (4, "host unreachable (SOCKS5 reply 4)", FailureKind::Refused),
            (
                2,
                "connection not allowed by ruleset (SOCKS5 reply 2)",
                FailureKind::Denied,
            ),
        ] {
            let mut s = Socks5::new(Target::Name("h".into(), 1), None);
            s.start();
            s.sent();
            s.received(&[5, 0]);
            s.sent();
            assert_eq!(kind(s.received(&[5, code, 0, 1])), (k, want.to_string()));
        }
    }

    #[test]
    fn something_else_than_socks5_is_denied_at_once() {
        let mut s = Socks5::new(Target::Name("h".into(), 1), None);
        s.start();
        s.sent();
        let (k, why) = kind(s.received(b"HT"));
        assert_eq!(k, FailureKind::Denied);
        assert!(why.contains("not a SOCKS5 proxy"), "{why}");
    }
}

//! Who may connect, and what they may do: chat-broker's password file (`passwd`), its
//! access control list (`acl`), the judgement of a login ([`Policy`]) and the slowing of
//! failed logins ([`throttle`]). Each is pure: it reads text it is given and answers
//! questions, with the time passed in; the driver (`broker::gate`) reads the files, at
//! start and on SIGHUP, and asks.

pub mod acl;
pub mod cert;
pub mod passwd;
pub mod throttle;

use std::sync::Arc;

use super::engine::ConnectRefusal;
use passwd::Passwords;

/// A CONNECT's username and password. (rumqttc reads an empty username as none, and
/// takes only passwords that are UTF-8.)
#[derive(Clone, PartialEq)]
pub struct Login {
    pub username: String,
    pub password: zeroize::Zeroizing<String>,
}

/// Never the password, whatever logs a packet.
impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({:?}, password hidden)", self.username)
    }
}

impl Login {
    pub fn new(username: String, password: String) -> Login {
        Login {
            username,
            password: zeroize::Zeroizing::new(password),
        }
    }
}

/// Who may log in (`--password-file`, `--allow-anonymous`).
#[derive(Debug, Default)]
pub struct Policy {
    /// The users and their password hashes; None: usernames are taken as they come.
    pub passwords: Option<Passwords>,
    /// Whether a client without a username gets in where a password file is given.
    pub allow_anonymous: bool,
}

/// A login judged: who the client is (None: anonymous), or why it is refused.
pub type Verdict = Result<Option<Arc<str>>, ConnectRefusal>;

impl Policy {
    /// Judges a CONNECT's `login`, or `identity`, the name in the client's certificate
    /// that `--use-identity-as-username` makes its username (then no password is asked).
    /// Checking a password derives its hash, which is slow on purpose: call it off the
    /// thread that serves the clients.
    pub fn judge(&self, login: Option<&Login>, identity: Option<&str>) -> Verdict {
        if let Some(name) = identity {
            return Ok(Some(Arc::from(name)));
        }
        match (login, &self.passwords) {
            (None, None) => Ok(None),
            (None, Some(_)) if self.allow_anonymous => Ok(None),
            (None, Some(_)) => Err(ConnectRefusal::NotAuthorized),
            (Some(l), None) => Ok(Some(Arc::from(l.username.as_str()))),
            (Some(l), Some(p)) => match p.check(&l.username, l.password.as_bytes()) {
                true => Ok(Some(Arc::from(l.username.as_str()))),
                false => Err(ConnectRefusal::BadUsernameOrPassword),
            },
        }
    }

    /// Whether judging `login` costs a password check (the throttle's business).
    pub fn checks_password(&self, login: Option<&Login>, identity: Option<&str>) -> bool {
        identity.is_none() && login.is_some() && self.passwords.is_some()
    }
}

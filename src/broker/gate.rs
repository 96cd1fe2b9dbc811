//! The door: each CONNECT's login judged by the [`Policy`] (`--password-file`,
//! `--allow-anonymous`, `--use-identity-as-username`), password checks off the thread
//! that serves the clients, failed logins slowed per address ([`Throttle`]). SIGHUP
//! puts in a new policy ([`Gate::set`]); logins judged after it follow it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use tokio::sync::Notify;

use super::auth::acl::Acl;
use super::auth::passwd::Passwords;
use super::auth::throttle::{MAX_PENALTY, Throttle, Wait};
use super::auth::{Policy, Verdict};
use super::engine::ConnectRefusal;
use super::engine::codec::Hello;
use crate::cli::BrokerArgs;
use crate::escape::escaped;

/// How a client is known, besides its CONNECT's username and password.
#[derive(Debug, Clone, PartialEq)]
pub enum Identity {
    /// By its login alone.
    Login,
    /// By its TLS certificate's common name (`--use-identity-as-username`); None: the
    /// certificate has none.
    Certificate(Option<String>),
}

#[derive(Debug, Default)]
pub struct Gate {
    policy: RwLock<Arc<Policy>>,
    throttle: Mutex<Throttle>,
    /// Told when a password check ends, or its refusal is out (logins wait for it).
    done: Notify,
}

impl Gate {
    pub fn new(policy: Policy) -> Gate {
        Gate {
            policy: RwLock::new(Arc::new(policy)),
            throttle: Mutex::default(),
            done: Notify::new(),
        }
    }

    /// Logins from now on are judged by `policy`.
    pub fn set(&self, policy: Policy) {
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
    }

    fn throttle(&self) -> std::sync::MutexGuard<'_, Throttle> {
        self.throttle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the addresses that stopped failing long ago.
    pub fn tidy(&self, now: Instant) {
        self.throttle().forget_old(now);
    }

    /// Judges the CONNECT in `hello`, from `peer`: sets who it is (`hello.user`) or why it
    /// is refused (`hello.refused`), and that it was judged; the password is dropped
    /// either way.
    pub async fn admit(&self, hello: &mut Hello, peer: IpAddr, identity: Identity) {
        let login = hello.login.take();
        let name = match identity {
            Identity::Login => None,
            Identity::Certificate(Some(name)) => Some(name),
            Identity::Certificate(None) => {
                log::warn!(
                    "{peer}: refused: its certificate has no common name to be its username"
                );
                (hello.refused, hello.judged) = (Some(ConnectRefusal::NotAuthorized), true);
                return;
            }
        };
        let policy = self.policy();
        let (verdict, by_password) = match policy.checks_password(login.as_ref(), name.as_deref()) {
            false => (policy.judge(login.as_ref(), name.as_deref()), false),
            true => (self.check_password(login, peer).await, true),
        };
        match verdict {
            Ok(user) => (hello.user, hello.by_password) = (user, by_password),
            Err(why) => hello.refused = Some(why),
        }
        hello.judged = true;
    }

    fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A password checked in its address's turn (see [`Throttle`]), by the policy of
    /// then (a SIGHUP meanwhile counts), on tokio's blocking threads (deriving its hash
    /// takes long on purpose); a failure's refusal held back by its penalty.
    async fn check_password(&self, login: Option<super::auth::Login>, peer: IpAddr) -> Verdict {
        let user = login.as_ref().map(|l| escaped(&l.username));
        let user = user.unwrap_or_default();
        let arrived = Instant::now();
        loop {
            let done = self.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            let now = Instant::now();
            let wait = match self.throttle().claim(peer, now) {
                Ok(()) => break,
                Err(Wait::Until(t)) => t,
                Err(Wait::Turn) => now + MAX_PENALTY,
            };
            if wait > arrived + 2 * MAX_PENALTY {
                log::warn!("{peer}: login as {user} refused unchecked: its address keeps failing");
                return Err(ConnectRefusal::BadUsernameOrPassword);
            }
            tokio::select! {
                () = done => {}
                () = tokio::time::sleep_until(wait.into()) => {}
            }
        }
        let policy = self.policy();
        let judged = tokio::task::spawn_blocking(move || policy.judge(login.as_ref(), None));
        let verdict = judged.await.unwrap_or(Err(ConnectRefusal::NotAuthorized));
        let hold = match &verdict {
            Ok(_) => {
                self.throttle().succeeded(peer);
                None
            }
            Err(_) => {
                log::warn!("{peer}: login as {user} refused: bad username or password");
                Some(self.throttle().failed(peer, Instant::now()))
            }
        };
        self.done.notify_waiters();
        if let Some(hold) = hold {
            tokio::time::sleep(hold).await;
            self.done.notify_waiters();
        }
        verdict
    }
}

/// The files that say who may connect and what they may do, read at start and on SIGHUP.
#[derive(Debug, Clone)]
pub struct AccessFiles {
    pub password_file: Option<PathBuf>,
    pub acl_file: Option<PathBuf>,
    pub allow_anonymous: bool,
}

impl From<&BrokerArgs> for AccessFiles {
    fn from(args: &BrokerArgs) -> AccessFiles {
        AccessFiles {
            password_file: args.password_file.clone(),
            acl_file: args.acl_file.clone(),
            allow_anonymous: args.allow_anonymous,
        }
    }
}

impl AccessFiles {
    /// Reads and parses both files: the login policy and the ACL; or what is wrong, with
    /// the file and the line (never a password hash).
    pub fn read(&self) -> Result<(Policy, Option<Arc<Acl>>), String> {
        let passwords = match &self.password_file {
            None => None,
            Some(path) => {
                let text = read_text(path, "--password-file")?;
                let p = Passwords::parse(&text)
                    .map_err(|e| format!("--password-file {}: {e}", path.display()))?;
                if p.is_empty() {
                    log::warn!(
                        "--password-file {}: no users in it: nobody can log in",
                        path.display()
                    );
                }
                log::info!("--password-file {}: {} users", path.display(), p.len());
                if p.weak() > 0 {
                    log::warn!(
                        "--password-file {}: {} users have $6$ hashes (salted SHA-512, fast \
                         to guess from a copy of the file): give them new passwords with \
                         chat-broker passwd (or mosquitto_passwd)",
                        path.display(),
                        p.weak()
                    );
                }
                Some(p)
            }
        };
        let acl = match &self.acl_file {
            None => None,
            Some(path) => {
                let text = read_text(path, "--acl-file")?;
                let acl =
                    Acl::parse(&text).map_err(|e| format!("--acl-file {}: {e}", path.display()))?;
                log::info!("--acl-file {}: {} rules", path.display(), acl.rules());
                Some(Arc::new(acl))
            }
        };
        let policy = Policy {
            passwords,
            allow_anonymous: self.allow_anonymous,
        };
        Ok((policy, acl))
    }
}

fn read_text(path: &Path, flag: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {flag} {}: {e}", path.display()))
}

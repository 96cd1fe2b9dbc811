//! chat-broker's access control, for tests/broker_access.rs: the broker run as a command
//! (`chat-broker passwd`, a start that must fail), password files made by `chat-broker
//! passwd` or by hand in mosquitto's `$6$` format, a client's login flags, and ACL files.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha512};

use super::{Finished, TempDir, chat_broker_bin, readable_file, run, s};

/// Bob's password (alice's and watcher's are [`super::PASSWORD`] and
/// [`super::WATCHER_PASSWORD`]): distinctive, so that finding it in any output means it
/// leaked.
pub const BOB_PASSWORD: &str = "Pw-bob-Gd3sV7nQ1xMe";

/// `chat-broker ARGS…` (RUST_LOG unset).
pub fn chat_broker(args: &[&str]) -> Command {
    let mut c = Command::new(chat_broker_bin().expect("built with the broker feature"));
    c.args(args).env_remove("RUST_LOG");
    c
}

/// `chat-broker passwd [FLAGS] FILE USER` with `stdin` (the password, one line).
pub fn passwd(file: &Path, user: &str, flags: &[&str], stdin: &str) -> Finished {
    let mut c = chat_broker(&["passwd"]);
    c.args(flags).arg(file).arg(user);
    run(&mut c, stdin.as_bytes())
}

/// A line of a password file in mosquitto 1.x's `$6$` format: SHA-512 of the password
/// followed by the salt, both in base64 (mosquitto 2 still reads it, writes `$7$`).
pub fn sha512_line(user: &str, password: &str, salt: &[u8]) -> String {
    let mut h = Sha512::new();
    h.update(password.as_bytes());
    h.update(salt);
    let (salt, hash) = (BASE64.encode(salt), BASE64.encode(h.finalize()));
    format!("{user}:$6${salt}${hash}\n")
}

/// One test's users: a password file made by `chat-broker passwd`, a file with each
/// password for the clients' `--password-file`, and other files (the ACL).
pub struct Users {
    dir: TempDir,
    /// The broker's `--password-file`.
    pub passwd: PathBuf,
}

impl Users {
    /// `users` (name, password) in a password file made by `chat-broker passwd`.
    pub fn new(users: &[(&str, &str)]) -> Users {
        let dir = TempDir::new("users");
        let passwd = dir.path().join("passwd");
        let u = Users { dir, passwd };
        for (user, password) in users {
            u.add(user, password);
        }
        u
    }

    /// Adds `user` (or changes their password) with `chat-broker passwd`.
    #[track_caller]
    pub fn add(&self, user: &str, password: &str) {
        passwd(&self.passwd, user, &[], &format!("{password}\n")).expect_code(0);
    }

    /// The flags of a client that logs in as `user` with `password` (from a file).
    pub fn login(&self, user: &str, password: &str) -> Vec<String> {
        let file = self.file(&format!("pw-{user}-{}", password.len()), password);
        ["-u", user, "--password-file", &s(&file)].map(String::from).to_vec()
    }

    /// A file with `text` beside the others (an ACL, say), readable by anyone (mosquitto
    /// reads it too in some tests).
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        readable_file(&self.dir.path().join(name), text)
    }

    /// The broker's flags: `--password-file` and, if given, `--acl-file` with `acl`.
    pub fn flags(&self, acl: Option<&str>) -> Vec<String> {
        let mut f = vec!["--password-file".to_string(), s(&self.passwd)];
        if let Some(acl) = acl {
            f.extend(["--acl-file".to_string(), s(&self.file("acl", acl))]);
        }
        f
    }
}

/// `&[String]` as `Vec<&str>`, for the helpers that take `&[&str]`.
pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

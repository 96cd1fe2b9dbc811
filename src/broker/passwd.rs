//! `chat-broker passwd FILE USER`: adds a user to a password file or changes their
//! password (`-D`: deletes them), for those without mosquitto_passwd. The file's format
//! and the hashing are `auth::passwd`'s; this reads the password (from the terminal
//! without echo, or a line of stdin) and replaces the file whole (a temporary file,
//! synced, renamed), readable by its owner only.

use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use super::auth::passwd::{remove_user, set_user};
use crate::cli::PasswdArgs;
use crate::error::Error;

pub fn run(args: &PasswdArgs) -> Result<(), Error> {
    let path = &args.file;
    let _lock = lock(path)?;
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !args.delete => String::new(),
        Err(e) => return Err(Error::Usage(format!("cannot read {}: {e}", path.display()))),
    };
    let bad = |e: super::auth::passwd::FileError| Error::Usage(format!("{}: {e}", path.display()));
    let new = match args.delete {
        true => match remove_user(&old, &args.user).map_err(bad)? {
            Some(text) => text,
            None => {
                return Err(Error::Usage(format!(
                    "{}: no user {} in it",
                    path.display(),
                    crate::escape::escaped(&args.user)
                )));
            }
        },
        false => {
            let password = read_password()?;
            set_user(&old, &args.user, password.as_bytes()).map_err(bad)?
        }
    };
    replace(path, new.as_bytes())
        .map_err(|e| Error::Failed(format!("cannot write {}: {e}", path.display())))
}

/// Holds `FILE.lock` (flock) while the file is read, changed and replaced.
fn lock(path: &Path) -> Result<std::fs::File, Error> {
    use std::os::fd::AsRawFd;
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let failed = |e: std::io::Error| Error::Failed(format!("cannot lock {}: {e}", path.display()));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(std::path::PathBuf::from(name))
        .map_err(failed)?;
    // SAFETY: flock on a file descriptor this function owns.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(failed(std::io::Error::last_os_error()));
    }
    Ok(f)
}

/// The password: typed twice on the terminal without echo, or one line of stdin.
fn read_password() -> Result<Zeroizing<String>, Error> {
    let stdin = std::io::stdin();
    let password = match stdin.is_terminal() {
        true => {
            let first = prompt("Password: ")?;
            let again = prompt("Reenter password: ")?;
            if first != again {
                return Err(Error::Usage("the passwords do not match".into()));
            }
            first
        }
        false => {
            let mut line = Zeroizing::new(String::new());
            stdin
                .lock()
                .read_line(&mut line)
                .map_err(|e| Error::Usage(format!("cannot read the password from stdin: {e}")))?;
            let end = line.trim_end_matches(['\n', '\r']).len();
            line.truncate(end);
            line
        }
    };
    if password.is_empty() {
        return Err(Error::Usage("an empty password: nothing changed".into()));
    }
    Ok(password)
}

/// Asks on stderr and reads a line from the terminal with its echo off.
fn prompt(question: &str) -> Result<Zeroizing<String>, Error> {
    let failed = |e: std::io::Error| Error::Failed(format!("cannot read the password: {e}"));
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let echo = Echo::off().map_err(failed)?;
    let mut line = Zeroizing::new(String::new());
    let read = std::io::stdin().lock().read_line(&mut line);
    drop(echo);
    eprintln!();
    read.map_err(failed)?;
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(line)
}

/// The terminal's echo, off until dropped.
struct Echo(libc::termios);

impl Echo {
    fn off() -> std::io::Result<Echo> {
        // SAFETY: tcgetattr fills the termios it is given; fd 0 is a terminal here.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let saved = t;
        t.c_lflag &= !libc::ECHO;
        t.c_lflag |= libc::ECHONL;
        // SAFETY: a termios read from the same terminal, with one flag changed.
        if unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Echo(saved))
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        // SAFETY: puts back the settings read in `off`.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.0) };
    }
}

/// Writes `bytes` as `path`'s new contents: a temporary file of a random name beside
/// it (created new, never through a link), with the old file's mode and owner
/// (owner-only for a new one), synced, renamed over it, the directory synced; removed
/// again on a failure. (A link at `path` is replaced by the file, not followed.)
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let old = std::fs::metadata(path).ok();
    let mode = old
        .as_ref()
        .map_or(0o600, |m| m.permissions().mode() & 0o7777);
    if mode & 0o004 != 0 {
        crate::tool::say(format_args!(
            "warning: {} can be read by anyone on this machine (chmod o-r)",
            path.display()
        ));
    }
    let mut salt = [0u8; 8];
    getrandom::fill(&mut salt).map_err(|e| std::io::Error::other(e.to_string()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{}.{:016x}.tmp",
        name.unwrap_or_default(),
        u64::from_le_bytes(salt)
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        // Owned as the old file was (root changing the broker's file leaves it the
        // broker's); as anyone else, it stays the caller's.
        if let Some(m) = &old {
            use std::os::unix::fs::MetadataExt;
            let _ = std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()));
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    std::fs::File::open(dir)?.sync_all()
}

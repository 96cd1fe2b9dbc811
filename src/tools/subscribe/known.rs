//! The file of pinned keys, `$XDG_DATA_HOME/mqttchat/known_members` (see `members`): read
//! at start, appended to as new keys are pinned, and by `--trust`. One line per pin,
//! `ROOM NICK FINGERPRINT`; a later line for the same room and nick wins. Lines are
//! appended whole with `O_APPEND` under the file's lock (flock), so runs writing at once
//! do not mix their lines, and a first-seen pin is not appended over one made meanwhile.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use super::members::{self, Pin};
use crate::error::Error;
use crate::escape::escaped;
use crate::room::sign::Fingerprint;
use crate::tools::identity::data_dir;

/// Where the pins are (None without HOME and XDG_DATA_HOME: pins last for the run only).
pub fn path() -> Option<PathBuf> {
    data_dir().map(|d| d.join("known_members"))
}

/// The pins of the file (none if there is no file yet). A line that is not a pin is
/// reported with its number and skipped.
pub fn read() -> Result<Vec<Pin>, Error> {
    let Some(path) = path() else {
        log::warn!("no HOME or XDG_DATA_HOME: the keys seen are not remembered after this run");
        return Ok(Vec::new());
    };
    let text = match fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Usage(format!("cannot read {}: {e}", path.display())));
        }
    };
    let mut pins = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match members::parse_pin(line) {
            Ok(Some(pin)) => pins.push(pin),
            Ok(None) => {}
            Err(why) => log::warn!("{} line {}: {why}; skipped", path.display(), i + 1),
        }
    }
    Ok(pins)
}

/// Appends first-seen pins to the file, but not for a room and nick that got a pin in
/// the file meanwhile (another run's, or one accepted with `--trust`: a run started
/// before must not override it). The file is locked (flock) from the read to the write.
pub fn append_new(pins: &[Pin]) -> std::io::Result<()> {
    append(pins, true)
}

/// Appends pins to the file (made, with its folder, if needed), under its lock; with
/// `only_new`, not those whose room and nick have a pin in it already.
fn append(pins: &[Pin], only_new: bool) -> std::io::Result<()> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    if pins.is_empty() {
        return Ok(()); // the common case: called after every batch
    }
    let Some(path) = path() else {
        return Ok(());
    };
    if let Some(dir) = path.parent() {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)?;
    // SAFETY: flock on a descriptor this function owns for the call; it touches no memory.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut known = std::collections::HashSet::new();
    if only_new {
        let mut text = Vec::new();
        f.read_to_end(&mut text)?;
        known = String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|l| members::parse_pin(l).ok().flatten())
            .map(|p| (p.room, p.nick))
            .collect();
    }
    let lines: String = pins
        .iter()
        .filter(|p| !known.contains(&(p.room.clone(), p.nick.clone())))
        .map(members::format_pin)
        .collect();
    f.write_all(lines.as_bytes())
    // Closing the file releases the lock.
}

/// `chat-sub --trust NICK FINGERPRINT ROOM`: pins the key, replacing the pin before.
pub fn trust(args: &[String]) -> Result<(), Error> {
    let [nick, fingerprint, room] = args else {
        return Err(Error::Usage("--trust takes NICK FINGERPRINT ROOM".into()));
    };
    let fingerprint = Fingerprint::parse(fingerprint).map_err(Error::Usage)?;
    if path().is_none() {
        return Err(Error::Usage(
            "no place for known_members: set HOME or XDG_DATA_HOME".into(),
        ));
    }
    let pin = Pin {
        room: room.clone(),
        nick: nick.clone(),
        fingerprint,
    };
    append(&[pin], false).map_err(|e| {
        let path = path().unwrap_or_default();
        Error::Failed(format!("cannot write {}: {e}", path.display()))
    })?;
    crate::tool::say(format_args!(
        "'{}' in '{}' is now known by the key {fingerprint}",
        escaped(nick),
        escaped(room)
    ));
    Ok(())
}

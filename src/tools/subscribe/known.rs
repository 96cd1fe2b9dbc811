//! The file of pinned keys, `$XDG_DATA_HOME/mqttchat/known_members` (see `members`): read
//! at start, appended to as new keys are pinned, and by `--trust`. One line per pin,
//! `ROOM NICK FINGERPRINT`; a later line for the same room and nick wins. Lines are
//! appended whole with `O_APPEND`, so runs writing at once do not mix their lines.

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
/// before must not override it).
pub fn append_new(pins: &[Pin]) -> std::io::Result<()> {
    let Some(path) = path() else {
        return Ok(());
    };
    if pins.is_empty() {
        return Ok(());
    }
    let text = match fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let known: std::collections::HashSet<(String, String)> = text
        .lines()
        .filter_map(|l| members::parse_pin(l).ok().flatten())
        .map(|p| (p.room, p.nick))
        .collect();
    let new: Vec<Pin> = pins
        .iter()
        .filter(|p| !known.contains(&(p.room.clone(), p.nick.clone())))
        .cloned()
        .collect();
    append(&new)
}

/// Appends pins to the file (made, with its folder, if needed).
fn append(pins: &[Pin]) -> std::io::Result<()> {
    let Some(path) = path() else {
        return Ok(());
    };
    if pins.is_empty() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let lines: String = pins.iter().map(members::format_pin).collect();
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(lines.as_bytes())
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
    append(&[pin]).map_err(|e| {
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

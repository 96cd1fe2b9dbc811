//! The config file: the options a user repeats, once, in `$XDG_CONFIG_HOME/mqttchat/
//! config.toml` (else `~/.config/mqttchat/config.toml`), `--config FILE`, or none with
//! `--no-config`. Top-level keys apply to every run; a `[profile.NAME]` table with
//! `--profile NAME` (or `CHAT_PROFILE`) over them. Flags and the environment win over
//! both, the built-in defaults lose to both: a value from the file is used only where
//! clap says the option took its default.
//!
//! Every problem of the file is a usage error that names the file, the line and the key.
//! Values are checked by the same parsers as the flags'.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::cli::{Common, DialectChoice, Given};
use crate::error::Error;

mod apply;
mod show;

use apply::{Levels, Source, apply};

/// Declares the keys once: the struct of one level (top or a profile), and of the whole
/// file (the same keys and the `profile` tables).
macro_rules! keys {
    ($($(#[$doc:meta])* $key:ident: $ty:ty,)*) => {
        /// The keys of one level of the file.
        #[derive(Deserialize, Default, Debug)]
        #[serde(deny_unknown_fields)]
        pub struct Keys {
            $($(#[$doc])* $key: Option<Spanned<$ty>>,)*
        }

        /// The whole file: the top-level keys and the profiles.
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        struct FileKeys {
            $($key: Option<Spanned<$ty>>,)*
            #[serde(default)]
            profile: BTreeMap<String, Keys>,
        }

        /// The names of the keys.
        const KEY_NAMES: &[&str] = &[$(stringify!($key)),*];

        impl FileKeys {
            fn split(self) -> (Keys, BTreeMap<String, Keys>) {
                (Keys { $($key: self.$key,)* }, self.profile)
            }
        }
    };
}

keys! {
    /// One URL, or a list (the nodes of a cluster, as `-b` given more than once).
    broker: OneOrMany,
    /// `-V`: "auto", "3" or "5" (or the number).
    version: Scalar,
    qos: u8,
    /// Seconds, fractions allowed.
    connect_timeout: Scalar,
    keep_alive: u16,
    nick: String,
    username: String,
    password_file: String,
    /// The password itself (a file others can read gets a warning).
    password: Hidden,
    cafile: String,
    cert: String,
    key: String,
    insecure: bool,
    /// `--proxy`: socks5://, socks5h:// or http://, with a login if it wants one.
    proxy: Hidden,
    room_secret_file: String,
    dialect: String,
}

/// A string that may hold a secret (`password`, a `proxy` URL with its login): `Debug`
/// does not show it.
#[derive(Deserialize, Clone, Default)]
#[serde(transparent)]
struct Hidden(String);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

/// `broker`: one URL or several.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A value written as a string or a number (`version = 5`, `connect_timeout = 2.5`).
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum Scalar {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(x) => x.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

/// The config file of a run, read: where it is, its text (for line numbers), its levels.
pub struct ConfigFile {
    pub path: PathBuf,
    text: String,
    top: Keys,
    profiles: BTreeMap<String, Keys>,
}

/// The file `--config` names, else the default one if it exists; None with `--no-config`.
pub fn locate(common: &Common) -> Option<(PathBuf, bool)> {
    if common.no_config {
        return None;
    }
    if let Some(path) = &common.config {
        return Some((path.clone(), true));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some((base.join("mqttchat").join("config.toml"), false))
}

/// Reads and checks the file at `path`; a missing default file is no file (Ok(None)), a
/// missing `--config` file an error.
pub fn read(path: &Path, named: bool) -> Result<Option<ConfigFile>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => return Ok(None),
        Err(e) => {
            return Err(Error::Usage(format!(
                "cannot read the config file {}: {e}",
                path.display()
            )));
        }
    };
    let parsed: FileKeys = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| line_of(&text, s.start));
        let what = without_value(e.message()).replace("unknown field", "unknown key");
        usage_at(path, line, &text, &what)
    })?;
    let (top, profiles) = parsed.split();
    let file = ConfigFile {
        path: path.to_path_buf(),
        text,
        top,
        profiles,
    };
    file.check()?;
    Ok(Some(file))
}

/// serde's "invalid type: integer `12345678`, expected a string" without the value, which
/// may be a password written unquoted: "invalid type: integer, expected a string".
fn without_value(message: &str) -> String {
    for lead in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(lead) {
            let kind = rest.split([' ', ',']).next().unwrap_or_default();
            let expected = rest.find(", expected").map_or("", |i| &rest[i..]);
            return format!("{lead}{kind}{expected}");
        }
    }
    message.to_string()
}

/// The 1-based line of byte `at` of `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// A usage error about `path`, at `line` when known (the key named from the line's text).
fn usage_at(path: &Path, line: Option<usize>, text: &str, what: &str) -> Error {
    let Some(n) = line else {
        return Error::Usage(format!("config file {}: {what}", path.display()));
    };
    let key = text
        .lines()
        .nth(n - 1)
        .and_then(|l| l.split('=').next())
        .map(str::trim);
    // Only a key's name, never other text of the line: it may be a password written
    // without its `=`, or hold control characters.
    let is_name = |k: &&str| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    };
    // A name the file may use, or the one the message itself names.
    let named = |k: &&str| {
        let last = k.rsplit('.').next().unwrap_or_default();
        KEY_NAMES.contains(&last) || what.contains(&format!("`{k}`"))
    };
    let key = key.filter(is_name).filter(named);
    let key = key.map_or(String::new(), |k| format!(", key '{k}'"));
    Error::Usage(format!(
        "config file {}, line {n}{key}: {what}",
        path.display()
    ))
}

impl ConfigFile {
    /// The profile `name`, or an error that lists the profiles there are.
    pub fn profile(&self, name: &str) -> Result<&Keys, Error> {
        self.profiles.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
            let known = match known.is_empty() {
                true => "it has none".to_string(),
                false => format!("it has {}", known.join(", ")),
            };
            Error::Usage(format!(
                "no profile '{name}' in the config file {} ({known})",
                self.path.display()
            ))
        })
    }

    /// A usage error about the value at `span`.
    fn bad<T>(&self, v: &Spanned<T>, key: &str, why: &str) -> Error {
        let line = line_of(&self.text, v.span().start);
        Error::Usage(format!(
            "config file {}, line {line}, key '{key}': {why}",
            self.path.display()
        ))
    }

    /// `version`, checked as `-V` is.
    fn version(&self, v: &Spanned<Scalar>) -> Result<crate::mqtt::dial::VersionChoice, Error> {
        crate::cli::parse_version(&v.get_ref().text()).map_err(|e| self.bad(v, "version", &e))
    }

    /// `qos`: 0, 1 or 2.
    fn qos(&self, v: &Spanned<u8>) -> Result<u8, Error> {
        match *v.get_ref() {
            q @ 0..=2 => Ok(q),
            q => Err(self.bad(v, "qos", &format!("{q} is not 0, 1 or 2"))),
        }
    }

    /// `connect_timeout`, in seconds as `--connect-timeout` takes them.
    fn connect_timeout(&self, v: &Spanned<Scalar>) -> Result<std::time::Duration, Error> {
        crate::cli::parse_secs(&v.get_ref().text()).map_err(|e| self.bad(v, "connect_timeout", &e))
    }

    /// `dialect`, one of `--dialect`'s values.
    fn dialect(&self, v: &Spanned<String>) -> Result<DialectChoice, Error> {
        <DialectChoice as clap::ValueEnum>::from_str(v.get_ref(), false)
            .map_err(|e| self.bad(v, "dialect", &e))
    }

    /// Checks the values of every level, the profiles not selected too: a mistake in the
    /// file is found the first time it is read, not on the day its profile is used.
    fn check(&self) -> Result<(), Error> {
        for keys in std::iter::once(&self.top).chain(self.profiles.values()) {
            if let Some(v) = &keys.version {
                self.version(v)?;
            }
            if let Some(v) = &keys.qos {
                self.qos(v)?;
            }
            if let Some(v) = &keys.connect_timeout {
                self.connect_timeout(v)?;
            }
            if let Some(v) = &keys.dialect {
                self.dialect(v)?;
            }
            if let Some(v) = keys.proxy.as_ref().filter(|v| !v.get_ref().0.is_empty()) {
                crate::mqtt::proxy::Proxy::parse(&v.get_ref().0, "proxy URL")
                    .map_err(|e| self.bad(v, "proxy", &e.to_string()))?;
            }
        }
        Ok(())
    }

    /// A path of the file, as a user means it: `~/` is the home directory, and a relative
    /// path is relative to the file's own directory.
    fn path_of(&self, v: &str) -> PathBuf {
        if let (Some(rest), Some(home)) = (v.strip_prefix("~/"), std::env::var_os("HOME")) {
            return PathBuf::from(home).join(rest);
        }
        let p = PathBuf::from(v);
        match (p.is_relative(), self.path.parent()) {
            (true, Some(dir)) => dir.join(p),
            _ => p,
        }
    }
}

/// Whether some level holds a password, itself or in a proxy URL (a file others can read
/// is then warned about).
pub fn holds_password(file: &ConfigFile) -> bool {
    let holds = |k: &Keys| {
        let proxy = k.proxy.as_ref().map(|v| v.get_ref().0.as_str());
        let in_proxy = proxy.and_then(|u| crate::mqtt::proxy::Proxy::parse(u, "").ok());
        k.password.is_some() || in_proxy.is_some_and(|p| p.has_password())
    };
    holds(&file.top) || file.profiles.values().any(holds)
}

/// What a run's config file made of its options: None to go on, Some(text) for
/// `--show-config` (what to print, then exit).
pub fn configure(
    common: &mut Common,
    nick: &mut Option<String>,
    dialect: &mut DialectChoice,
    given: &Given,
) -> Result<Option<String>, Error> {
    let located = locate(common);
    let file = match &located {
        Some((path, named)) => read(path, *named)?,
        None => None,
    };
    common.proxy_from = match (given.on_command_line("proxy"), given.explicit("proxy")) {
        (true, _) => "--proxy".into(),
        (false, true) => "CHAT_PROXY".into(),
        (false, false) => match &file {
            Some(f) => format!("proxy key of {}", f.path.display()),
            None => "--proxy".into(),
        },
    };
    let sources = match &file {
        Some(file) => {
            warn_if_readable(file);
            let mut levels = Vec::with_capacity(2);
            if let Some(name) = &common.profile {
                levels.push((file.profile(name)?, Source::Profile(name.clone())));
            }
            levels.push((&file.top, Source::TopLevel));
            let levels = Levels { file, levels };
            let sources = apply(&levels, common, nick, dialect, given)?;
            let profile = common.profile.as_deref().map(|p| format!(", profile {p}"));
            log::info!(
                "config file {}{}",
                file.path.display(),
                profile.unwrap_or_default()
            );
            sources
        }
        None if common.profile.is_some() => {
            let looked = located.map(|(p, _)| p.display().to_string());
            return Err(Error::Usage(format!(
                "--profile (or CHAT_PROFILE) needs a config file, and there is none{}",
                looked.map_or(String::new(), |p| format!(" (looked for {p})"))
            )));
        }
        // No file: what flags and the environment gave is still told apart from the
        // defaults (an empty file has no level to apply).
        None => {
            let empty = ConfigFile {
                path: PathBuf::new(),
                text: String::new(),
                top: Keys::default(),
                profiles: BTreeMap::new(),
            };
            let levels = Levels {
                file: &empty,
                levels: Vec::new(),
            };
            apply(&levels, common, nick, dialect, given)?
        }
    };
    Ok(common
        .show_config
        .then(|| show::show(file.as_ref(), common, nick, dialect, &sources)))
}

/// ssh's warning for a private key others can read, for a file that holds a password.
fn warn_if_readable(file: &ConfigFile) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(&file.path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if holds_password(file) && mode & 0o077 != 0 {
        log::warn!(
            "WARNING: UNPROTECTED CONFIG FILE! Permissions {mode:04o} for '{}' are too open: \
             it holds a password that others can read. Keep it private: chmod 600 {}",
            file.path.display(),
            file.path.display()
        );
    }
}

/// Prints `text` (`--show-config`) on stdout; a closed stdout is a normal end.
pub fn print(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::Failed(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

//! The levels of the config file applied to a run's options: the selected profile over
//! the top level, each value only where no flag or environment variable gave one, and
//! where each setting came from (for `--show-config`).

use std::collections::BTreeMap;

use toml::Spanned;

use super::{ConfigFile, Keys, OneOrMany};
use crate::cli::{Common, DialectChoice, Given, ProxyUrl};
use crate::error::Error;
use crate::mqtt::wire::Secret;

/// Where a setting came from, as `--show-config` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Given,
    Profile(String),
    TopLevel,
}

/// The levels of the file that apply, highest first: the profile, then the top level.
pub struct Levels<'a> {
    pub file: &'a ConfigFile,
    pub levels: Vec<(&'a Keys, Source)>,
}

impl<'a> Levels<'a> {
    /// The first level that sets `key` (by `get`), with its source.
    fn first<T>(
        &self,
        get: impl Fn(&'a Keys) -> &'a Option<Spanned<T>>,
    ) -> Option<(&'a Spanned<T>, Source)> {
        self.levels
            .iter()
            .find_map(|(k, s)| get(k).as_ref().map(|v| (v, s.clone())))
    }
}

/// Applies the file's values to the options clap left at their defaults (`given` tells
/// which were given as flags or in the environment); returns each setting's source.
pub fn apply(
    levels: &Levels,
    common: &mut Common,
    nick: &mut Option<String>,
    dialect: &mut DialectChoice,
    given: &Given,
) -> Result<BTreeMap<&'static str, Source>, Error> {
    let mut sources = BTreeMap::new();
    let file = levels.file;
    macro_rules! set {
        ($key:literal, $arg:literal, $field:ident, |$v:ident| $conv:expr) => {
            if given.explicit($arg) {
                sources.insert($key, Source::Given);
            } else if let Some(($v, source)) = levels.first(|k| &k.$field) {
                *target!($field, common, nick, dialect) = $conv;
                sources.insert($key, source);
            }
        };
    }
    macro_rules! target {
        (nick, $c:ident, $n:ident, $d:ident) => {
            $n
        };
        (dialect, $c:ident, $n:ident, $d:ident) => {
            $d
        };
        (keep_alive, $c:ident, $n:ident, $d:ident) => {
            &mut $c.keepalive
        };
        (version, $c:ident, $n:ident, $d:ident) => {
            &mut $c.mqtt_version
        };
        ($f:ident, $c:ident, $n:ident, $d:ident) => {
            &mut $c.$f
        };
    }
    set!("broker", "broker", broker, |v| match v.get_ref() {
        OneOrMany::One(u) => vec![u.clone()],
        OneOrMany::Many(list) => list.clone(),
    });
    set!("version", "mqtt_version", version, |v| file.version(v)?);
    set!("qos", "qos", qos, |v| file.qos(v)?);
    set!("connect_timeout", "connect_timeout", connect_timeout, |v| {
        file.connect_timeout(v)?
    });
    set!("keep_alive", "keepalive", keep_alive, |v| *v.get_ref());
    set!("nick", "nick", nick, |v| Some(v.get_ref().clone()));
    set!("username", "username", username, |v| Some(
        v.get_ref().clone()
    ));
    set!("cafile", "cafile", cafile, |v| Some(
        file.path_of(v.get_ref())
    ));
    set!("cert", "cert", cert, |v| Some(file.path_of(v.get_ref())));
    set!("key", "key", key, |v| Some(file.path_of(v.get_ref())));
    set!("insecure", "insecure", insecure, |v| *v.get_ref());
    set!("proxy", "proxy", proxy, |v| Some(ProxyUrl(
        v.get_ref().0.clone()
    )));
    set!("dialect", "dialect", dialect, |v| file.dialect(v)?);
    secrets(levels, common, given, &mut sources);
    Ok(sources)
}

/// The password and the room secret: a flag wins, then the environment (which clap does
/// not see: `CHAT_PASSWORD`, `CHAT_ROOM_SECRET`), then the levels of the file.
fn secrets(
    levels: &Levels,
    common: &mut Common,
    given: &Given,
    sources: &mut BTreeMap<&'static str, Source>,
) {
    let file = levels.file;
    let env = |v: &str| std::env::var_os(v).is_some();
    if given.explicit("password_file") || env("CHAT_PASSWORD") {
        sources.insert("password", Source::Given);
    } else if let Some((keys, source)) =
        (levels.levels.iter()).find(|(k, _)| k.password_file.is_some() || k.password.is_some())
    {
        match (&keys.password_file, &keys.password) {
            (Some(f), _) => common.password_file = Some(file.path_of(f.get_ref())),
            (None, Some(p)) => {
                common.password_from_config = Some(Secret::new(p.get_ref().0.clone()))
            }
            (None, None) => {}
        }
        sources.insert("password", source.clone());
    }
    if given.explicit("room_secret_file") || env("CHAT_ROOM_SECRET") {
        sources.insert("room_secret_file", Source::Given);
    } else if let Some((v, source)) = levels.first(|k| &k.room_secret_file) {
        common.room_secret_file = Some(file.path_of(v.get_ref()));
        sources.insert("room_secret_file", source);
    }
}

//! `--show-config`: the settings in effect and where each comes from, as TOML a user
//! could copy into the config file, secrets left out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{ConfigFile, Source};
use crate::cli::{Common, DialectChoice};
use crate::mqtt::dial::VersionChoice;

/// The text `--show-config` prints.
pub fn show(
    file: Option<&ConfigFile>,
    common: &Common,
    nick: &Option<String>,
    dialect: &DialectChoice,
    sources: &BTreeMap<&'static str, Source>,
) -> String {
    let mut out = match file {
        Some(f) => format!("# config file: {}", f.path.display()),
        None => "# config file: none".to_string(),
    };
    if let Some(p) = &common.profile {
        let _ = write!(out, ", profile {p}");
    }
    out.push('\n');
    let quoted = |s: &str| format!("{s:?}");
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| quoted(&p.to_string_lossy()));
    let brokers: Vec<String> = common.broker.iter().map(|b| quoted(b)).collect();
    let version = match common.mqtt_version {
        VersionChoice::Auto => "\"auto\"".to_string(),
        VersionChoice::Only(v) => quoted(&v.to_string()),
    };
    let password = match (&common.password_file, &common.password_from_config) {
        (Some(f), _) => Some(format!("(read from {})", f.display())),
        (None, Some(_)) => Some("(set, not shown)".to_string()),
        (None, None) => std::env::var_os("CHAT_PASSWORD").map(|_| "(set, not shown)".into()),
    };
    let dialect = <DialectChoice as clap::ValueEnum>::to_possible_value(dialect)
        .map_or_else(String::new, |v| quoted(v.get_name()));
    // As the tools show it: without its password (and not at all when it does not parse).
    let proxy = (common.proxy.as_ref().map(|u| u.0.as_str()))
        .filter(|u| !u.is_empty())
        .map(|u| match crate::mqtt::proxy::Proxy::parse(u, "--proxy") {
            Ok(_) => quoted(&crate::mqtt::proxy::redact(u)),
            Err(_) => quoted("(invalid)"),
        });
    let rows: [(&str, Option<String>); 15] = [
        ("broker", Some(format!("[{}]", brokers.join(", ")))),
        ("version", Some(version)),
        ("qos", Some(common.qos.to_string())),
        (
            "connect_timeout",
            Some(common.connect_timeout.as_secs_f64().to_string()),
        ),
        ("keep_alive", Some(common.keepalive.to_string())),
        ("nick", nick.as_deref().map(quoted)),
        ("username", common.username.as_deref().map(quoted)),
        ("password", password.map(|p| quoted(&p))),
        ("cafile", path(&common.cafile)),
        ("cert", path(&common.cert)),
        ("key", path(&common.key)),
        ("insecure", Some(common.insecure.to_string())),
        ("proxy", proxy),
        ("room_secret_file", path(&common.room_secret_file)),
        ("dialect", Some(dialect)),
    ];
    for (key, value) in rows {
        let from = match sources.get(key) {
            Some(Source::Given) => "flag or environment".to_string(),
            Some(Source::Profile(p)) => format!("profile {p}"),
            Some(Source::TopLevel) => "top level".to_string(),
            None => "default".to_string(),
        };
        let line = match value {
            Some(v) => format!("{key} = {v}"),
            None => format!("# {key} (not set)"),
        };
        let _ = writeln!(out, "{line:<40} # {from}");
    }
    out
}

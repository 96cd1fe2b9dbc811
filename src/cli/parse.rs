//! The values of the flags: parsers of durations in seconds, protocol versions and sizes
//! (each error is one line that says what was expected; clap shows it after the flag),
//! and the enums of `--dialect` and `--color`.

use std::time::Duration;

use super::help;
use crate::mqtt::dial::VersionChoice;
use crate::mqtt::wire::Version;

/// `KEY=VALUE` of `--user-property`: split at the first `=` (the value may hold more).
pub fn parse_user_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) => Ok((k.to_string(), v.to_string())),
        None => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// A memory budget: bytes, or with K, M or G (powers of 1024), e.g. `512M`.
pub fn parse_budget(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let i = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(i);
    let bad = || format!("'{s}' is not a size (BYTES, or with K, M or G)");
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    match n.checked_mul(1 << shift) {
        Some(0) => Err(format!("'{s}' must be more than 0")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("'{s}' is too large")),
    }
}

/// A time as mosquitto's `persistent_client_expiration` takes it: a whole number and a
/// unit, `s`, `m`, `h`, `d` or `w` (seconds without one), e.g. `14d`.
pub fn parse_period(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().map_err(|_| {
        format!("expected a number and a unit (s, m, h, d or w), e.g. 14d, not {s:?}")
    })?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}: use s, m, h, d or w"
            ));
        }
    };
    match n.checked_mul(secs) {
        Some(total) if total > 0 => Ok(Duration::from_secs(total)),
        Some(_) => Err("the time must be more than 0".into()),
        None => Err(format!("{s:?} is too long")),
    }
}

/// `SECS`: seconds, fractions allowed, from 0 to 10^9.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!(
            "'{s}' is not a number of seconds between 0 and 10^9"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `-V`: auto, 3 (3.1.1) or 5, and the spellings mosquitto and MQTTX use.
pub fn parse_version(s: &str) -> Result<VersionChoice, String> {
    match s.to_ascii_lowercase().as_str() {
        "auto" => Ok(VersionChoice::Auto),
        "3" | "4" | "311" | "3.1.1" | "mqttv311" | "v311" => Ok(VersionChoice::Only(Version::V311)),
        "5" | "mqttv5" | "v5" => Ok(VersionChoice::Only(Version::V5)),
        _ => Err(format!("'{s}' is not an MQTT version (use auto, 3 or 5)")),
    }
}

/// `BYTES`: a size, with K or M (binary) if wanted, from 1 byte to the protocol maximum.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return Err(format!("'{s}' is not a size (BYTES, or with K or M)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a size (BYTES, or with K or M)"))?;
    let bytes = n.saturating_mul(mult);
    if bytes == 0 || bytes > crate::mqtt::wire::MAX_PACKET as u64 {
        return Err(format!(
            "'{s}' must be between 1 byte and {}",
            help::mib(crate::mqtt::wire::MAX_PACKET)
        ));
    }
    Ok(bytes as usize)
}

/// `--dialect`: the payloads of a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DialectChoice {
    /// This project's JSON envelope.
    Mqttchat,
    /// The original MQTTChat's NAME,TEXT and noticia,TEXT.
    MqttchatPy,
}

impl From<DialectChoice> for crate::room::dialect::Dialect {
    fn from(c: DialectChoice) -> Self {
        match c {
            DialectChoice::Mqttchat => crate::room::dialect::Dialect::Envelope,
            DialectChoice::MqttchatPy => crate::room::dialect::Dialect::MqttchatPy,
        }
    }
}

/// When to colour nicks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    Always,
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_as_mosquitto_writes_them() {
        assert_eq!(parse_period("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_period("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_period("14d"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_period("1w"), Ok(Duration::from_secs(604_800)));
        for bad in [
            "",
            "0",
            "0d",
            "d",
            "1y",
            "-1h",
            "1.5h",
            "99999999999999999999w",
        ] {
            assert!(parse_period(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn budgets() {
        assert_eq!(parse_budget("4096"), Ok(4096));
        assert_eq!(parse_budget("512M"), Ok(512 << 20));
        assert_eq!(parse_budget("2G"), Ok(2 << 30));
        for bad in ["", "0", "1T", "x", "-1"] {
            assert!(parse_budget(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1G").is_err());
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("3"), Ok(VersionChoice::Only(Version::V311)));
        assert_eq!(
            parse_version("mqttv5"),
            Ok(VersionChoice::Only(Version::V5))
        );
        assert_eq!(parse_version("AUTO"), Ok(VersionChoice::Auto));
        assert!(parse_version("4.0").is_err());
    }
}

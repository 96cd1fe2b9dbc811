//! The shared options resolved into what a connection needs: broker URLs, protocol
//! version, client id, keep-alive, login (user name and password, read from a file or the
//! environment), TLS — checked once, before anything is sent; every problem is a usage
//! error (exit 2).

use std::path::Path;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::cli::Common;
use crate::error::Error;
use crate::mqtt::coalesce::Reads;
use crate::mqtt::connect::ConnectOptions;
use crate::mqtt::endpoint::Endpoint;
use crate::mqtt::proxy::Proxy;
use crate::mqtt::transport::{Dialer, TlsOptions};
use crate::mqtt::wire::{ConnectSpec, Login, Secret};
use crate::room::envelope::IdSource;
use crate::room::seal::{MAX_SECRET, RoomSecret};

/// Resolves the shared options into connection options; every problem is a usage error.
pub fn resolve(common: &Common, tool: &str, max_in: usize) -> Result<ConnectOptions, Error> {
    let endpoints = brokers(&common.broker)?;
    let client_id = match &common.client_id {
        Some(id) if id.is_empty() => return Err(Error::Usage("the client id is empty".into())),
        Some(id) if id.len() > 65_535 => {
            return Err(Error::Usage(
                "the client id is longer than 65535 bytes".into(),
            ));
        }
        Some(id) => id.clone(),
        None => format!("{tool}-{}", &IdSource::default().next_id()[..12]),
    };
    let tls = TlsOptions {
        cafile: common.cafile.clone(),
        cert: common.cert.clone(),
        key: common.key.clone(),
        insecure: common.insecure,
    };
    let login = login(common)?;
    let proxy = proxy(common)?;
    let attempt_timeout = attempt_timeout(common.connect_timeout, endpoints.len());
    Ok(ConnectOptions {
        nodes: Dialer::for_each(endpoints, &tls, proxy)?,
        version: common.mqtt_version,
        spec: ConnectSpec {
            client_id,
            keepalive: common.keepalive,
            clean_start: true,
            session_expiry: None,
            max_packet_in: u32::try_from(max_in).unwrap_or(u32::MAX),
            login,
            will: None,
        },
        max_in,
        attempt_timeout,
        connect_timeout: common.connect_timeout,
        reads: Reads::Eager,
    })
}

/// `--proxy` (or `CHAT_PROXY`, or the `proxy` key), checked; empty means none.
fn proxy(common: &Common) -> Result<Option<Proxy>, Error> {
    let url = match common.proxy.as_ref().map(|u| u.0.as_str()) {
        None | Some("") => return Ok(None),
        Some(url) => url,
    };
    let from = match common.proxy_from.as_str() {
        "" => "--proxy",
        from => from,
    };
    let proxy = Proxy::parse(url, from)?;
    if proxy.has_password() && from == "--proxy" {
        log::warn!(
            "the proxy password given with --proxy can be read by every user of this machine \
             (ps); give the URL in CHAT_PROXY or in the proxy key of the config file"
        );
    }
    log::info!("reaching the broker through the proxy {proxy}");
    Ok(Some(proxy))
}

/// Every `-b` value (and `CHAT_BROKER`) may hold several URLs, separated by commas or
/// white space; each is checked here, before anything is sent.
fn brokers(values: &[String]) -> Result<Vec<Endpoint>, Error> {
    let urls = values
        .iter()
        .flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|u| !u.is_empty());
    let endpoints = urls.map(Endpoint::parse).collect::<Result<Vec<_>, _>>()?;
    match endpoints.is_empty() {
        true => Err(Error::Usage(
            "no broker URL given (-b or CHAT_BROKER)".into(),
        )),
        false => Ok(endpoints),
    }
}

/// One attempt's share of `--connect-timeout`: all of it for one broker; with several, a
/// node that swallows packets must not use up the time of the others (but every attempt
/// gets at least a second, as TLS handshakes can take that long).
fn attempt_timeout(connect_timeout: Duration, nodes: usize) -> Duration {
    let share = (connect_timeout / nodes.max(1) as u32).max(Duration::from_secs(1));
    share.min(connect_timeout).max(Duration::from_millis(100))
}

/// User name (`-u`/`CHAT_USERNAME`) and password (`--password-file`, else
/// `CHAT_PASSWORD`). A password without a user name is a usage error.
fn login(common: &Common) -> Result<Option<Login>, Error> {
    let password = match &common.password_file {
        Some(path) => Some(read_password(path)?),
        None => std::env::var("CHAT_PASSWORD")
            .ok()
            .or_else(|| (common.password_from_config.as_ref()).map(|s| s.expose().to_string())),
    };
    match (&common.username, password) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(Error::Usage(
            "a password (--password-file or CHAT_PASSWORD) needs a user name (-u or \
             CHAT_USERNAME)"
                .into(),
        )),
        (Some(user), password) => Ok(Some(Login {
            username: user.clone(),
            password: password.map(Secret::new),
        })),
    }
}

/// The first line of a password file, without its line end. Errors name the file, never
/// its content.
fn read_password(path: &Path) -> Result<String, Error> {
    let bad = |why: String| {
        Error::Usage(format!(
            "cannot read --password-file {}: {why}",
            path.display()
        ))
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    String::from_utf8(first.to_vec()).map_err(|_| bad("the password is not UTF-8".into()))
}

/// The room secret: the first line of `--room-secret-file`, else `CHAT_ROOM_SECRET`
/// (set but empty is too short, not unset: a secret that failed to arrive must not turn
/// into plain text). Usage errors name the file, never the secret.
pub fn room_secret(common: &Common) -> Result<Option<RoomSecret>, Error> {
    let bytes = match &common.room_secret_file {
        Some(path) => read_secret_file(path)?,
        None => match std::env::var_os("CHAT_ROOM_SECRET") {
            Some(v) => one_line(Zeroizing::new(v.into_encoded_bytes()))?,
            None => return Ok(None),
        },
    };
    let source = match &common.room_secret_file {
        Some(path) => format!("--room-secret-file {}", path.display()),
        None => "CHAT_ROOM_SECRET".to_owned(),
    };
    let secret = RoomSecret::new(first_line(bytes))
        .map_err(|why| Error::Usage(format!("{source}: {why}")))?;
    no_core_dumps();
    Ok(Some(secret))
}

/// `CHAT_ROOM_SECRET` as it is: a line end in it is a usage error, not cut off (a
/// variable set from a file with `$(cat …)` keeps no newline, so one is a mistake, and
/// the file's first-line rule would silently make the secret another).
fn one_line(bytes: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, Error> {
    match bytes.iter().any(|&b| b == b'\n' || b == b'\r') {
        true => Err(Error::Usage(
            "CHAT_ROOM_SECRET contains a line end (\\n or \\r); set it to the secret alone, \
             or put the secret in a file for --room-secret-file"
                .into(),
        )),
        false => Ok(bytes),
    }
}

/// Whether a room secret is given (`--room-secret-file` or `CHAT_ROOM_SECRET`), before
/// it is read.
pub fn has_room_secret(common: &Common) -> bool {
    common.room_secret_file.is_some() || std::env::var_os("CHAT_ROOM_SECRET").is_some()
}

/// With a secret in memory: no core dump (which would write it to disk), and no
/// reading of this process's memory by other processes of the user (ptrace,
/// /proc/PID/mem). Best effort: a failure changes nothing else.
fn no_core_dumps() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls with valid arguments; they touch no memory of ours
    // but `zero`, which outlives the call.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// The secret file's bytes, with a warning when group or others may read it.
fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |e: std::io::Error| {
        Error::Usage(format!(
            "cannot read --room-secret-file {}: {e}",
            path.display()
        ))
    };
    let mut file = std::fs::File::open(path).map_err(bad)?;
    let meta = file.metadata().map_err(bad)?;
    if meta.is_dir() {
        return Err(Error::Usage(format!(
            "cannot read --room-secret-file {}: it is a directory",
            path.display()
        )));
    }
    if meta.permissions().mode() & 0o044 != 0 {
        log::warn!(
            "--room-secret-file {} can be read by group or others; keep it private (chmod \
             600)",
            path.display()
        );
    }
    // The first line is all that is used, and a secret is at most MAX_SECRET bytes.
    read_zeroized(&mut file, MAX_SECRET + 2, true).map_err(bad)
}

/// Reads at most `cap` bytes of a secret (up to the first line end when `one_line`) into
/// a buffer that is zeroed when dropped and never reallocated: a reallocation would leave
/// a copy of the secret behind.
pub(crate) fn read_zeroized(
    file: &mut impl std::io::Read,
    cap: usize,
    one_line: bool,
) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(vec![0u8; cap]);
    let mut len = 0;
    while len < bytes.len() {
        match file.read(&mut bytes[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if one_line && bytes[..len].contains(&b'\n') {
            break;
        }
    }
    bytes.truncate(len);
    Ok(bytes)
}

/// The first line of `bytes`, without its line end (`\n` or `\r\n`), in place.
fn first_line(mut bytes: Zeroizing<Vec<u8>>) -> Vec<u8> {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let end = match end > 0 && bytes[end - 1] == b'\r' && end < bytes.len() {
        true => end - 1,
        false => end,
    };
    bytes[end..].iter_mut().for_each(|b| *b = 0);
    bytes.truncate(end);
    std::mem::take(&mut *bytes)
}

/// The user's nick: `--nick` (or `CHAT_NICK`, which clap folds into it), else `USER`;
/// empty values count as unset.
pub fn own_nick(flag: Option<&str>) -> Option<String> {
    let set = |n: &String| !n.is_empty();
    flag.map(str::to_owned)
        .filter(set)
        .or_else(|| std::env::var("USER").ok().filter(set))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(values: &[&str]) -> Vec<String> {
        let v: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        brokers(&v)
            .unwrap_or_else(|e| panic!("{values:?}: {e}"))
            .iter()
            .map(Endpoint::to_string)
            .collect()
    }

    #[test]
    fn broker_lists_split_on_commas_and_white_space() {
        assert_eq!(urls(&["a"]), ["mqtt://a:1883"]);
        assert_eq!(
            urls(&["a:1, mqtts://b", "ws://c:2/x\td"]),
            [
                "mqtt://a:1",
                "mqtts://b:8883",
                "ws://c:2/x",
                "mqtt://d:1883"
            ]
        );
        assert_eq!(
            urls(&["[::1]:1,[::1]:2"]),
            ["mqtt://[::1]:1", "mqtt://[::1]:2"]
        );
    }

    #[test]
    fn a_bad_url_anywhere_in_the_list_is_a_usage_error() {
        for bad in [&["a", "http://b"][..], &["a,,b:0"], &[" , "]] {
            let v: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(matches!(brokers(&v), Err(Error::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn each_attempt_gets_a_share_of_the_connect_timeout() {
        let s = Duration::from_secs;
        assert_eq!(attempt_timeout(s(10), 1), s(10));
        assert_eq!(attempt_timeout(s(9), 3), s(3));
        assert_eq!(attempt_timeout(s(10), 20), s(1));
        assert_eq!(
            attempt_timeout(Duration::from_millis(500), 3),
            Duration::from_millis(500)
        );
        assert_eq!(
            attempt_timeout(Duration::ZERO, 1),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn the_secret_is_the_first_line_without_its_line_end_and_nothing_else_trimmed() {
        let line = |b: &[u8]| first_line(Zeroizing::new(b.to_vec()));
        assert_eq!(line(b"abc\nrest"), b"abc");
        assert_eq!(line(b"abc\r\nrest"), b"abc");
        assert_eq!(line(b" abc \n"), b" abc ");
        assert_eq!(line(b"abc\r"), b"abc\r", "a lone CR is not a line end");
        assert_eq!(line(b"\nabc"), b"");
    }

    #[test]
    fn a_line_end_in_the_variable_is_refused_and_not_echoed() {
        let one = |b: &[u8]| one_line(Zeroizing::new(b.to_vec()));
        assert!(one(b"a secret of the room").is_ok());
        for bad in [
            &b"a secret\nof the room"[..],
            b"a secret of the room\n",
            b"a\r",
        ] {
            let Err(Error::Usage(why)) = one(bad) else {
                panic!("accepted {bad:?}")
            };
            assert!(why.starts_with("CHAT_ROOM_SECRET") && !why.contains("secret of"));
        }
    }
}

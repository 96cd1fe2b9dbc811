//! Broker URLs: `mqtt://`, `mqtts://`, `ws://`, `wss://`, or a bare `host[:port]`.
//!
//! The URL is parsed here rather than by rumqttc (`MqttOptions::parse_url` requires a
//! `client_id` query parameter and does not know `ws://`), so that a bad URL is a usage
//! error before anything touches the network.

use std::fmt;

use crate::error::Error;

/// How bytes reach the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP (`mqtt://`, default port 1883).
    Tcp,
    /// TLS over TCP (`mqtts://`, default port 8883).
    Tls,
    /// WebSocket (`ws://`, default port 80, path `/mqtt`).
    Ws,
    /// WebSocket over TLS (`wss://`, default port 443, path `/mqtt`).
    Wss,
}

impl Transport {
    fn from_scheme(scheme: &str) -> Option<Transport> {
        match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => Some(Transport::Tcp),
            "mqtts" | "ssl" | "tls" => Some(Transport::Tls),
            "ws" => Some(Transport::Ws),
            "wss" => Some(Transport::Wss),
            _ => None,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Transport::Tcp => 1883,
            Transport::Tls => 8883,
            Transport::Ws => 80,
            Transport::Wss => 443,
        }
    }

    /// The canonical scheme name, as written in messages.
    pub fn scheme(self) -> &'static str {
        match self {
            Transport::Tcp => "mqtt",
            Transport::Tls => "mqtts",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    /// Whether this transport is encrypted (TLS options make sense only then).
    pub fn is_tls(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }
}

/// A parsed broker address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub transport: Transport,
    /// Host name or IP address, without the brackets of an IPv6 literal.
    pub host: String,
    pub port: u16,
    /// The WebSocket path (always starts with `/`); `/mqtt` unless the URL gives one.
    pub path: String,
}

impl Endpoint {
    /// Parses `--broker`. Every problem is a usage error naming the URL.
    pub fn parse(url: &str) -> Result<Endpoint, Error> {
        let bad = |why: &str| Error::Usage(format!("invalid --broker URL '{url}': {why}"));
        let (transport, rest) = match url.split_once("://") {
            Some((scheme, rest)) => {
                let t = Transport::from_scheme(scheme).ok_or_else(|| {
                    bad(&format!(
                        "unknown scheme '{scheme}' (use mqtt, mqtts, ws or wss)"
                    ))
                })?;
                (t, rest)
            }
            None => (Transport::Tcp, url),
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if let Some((_, host)) = authority.rsplit_once('@') {
            // Do not echo the URL: it holds a password.
            return Err(Error::Usage(format!(
                "invalid --broker URL '{}://…@{host}': credentials in the URL are not \
                 accepted (the command line is visible to every user of the machine)",
                transport.scheme()
            )));
        }
        let (host, port) = split_host_port(authority).map_err(&bad)?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("white space or control characters in the host"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad(&format!("invalid port '{p}'")))?,
            None => transport.default_port(),
        };
        let path = match transport {
            Transport::Ws | Transport::Wss if !path.is_empty() && path != "/" => path.to_string(),
            Transport::Ws | Transport::Wss => "/mqtt".to_string(),
            _ if path.is_empty() || path == "/" => String::new(),
            _ => return Err(bad("a path is only meaningful with ws:// or wss://")),
        };
        Ok(Endpoint {
            transport,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// `host:port` for the socket layer (IPv6 literals in brackets).
    pub fn socket_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.transport.scheme(),
            self.socket_addr(),
            self.path
        )
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`.
pub(crate) fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), &'static str> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed '[' in host")?;
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or("unexpected text after ']'"),
        };
    }
    match authority.matches(':').count() {
        0 => Ok((authority, None)),
        1 => {
            let (h, p) = authority.split_once(':').unwrap_or((authority, ""));
            Ok((h, Some(p)))
        }
        // A bare IPv6 address without a port.
        _ => Ok((authority, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str) -> Endpoint {
        Endpoint::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn forms() {
        assert_eq!(ep("localhost").to_string(), "mqtt://localhost:1883");
        assert_eq!(ep("127.0.0.1:1884").to_string(), "mqtt://127.0.0.1:1884");
        assert_eq!(ep("mqtt://h").port, 1883);
        assert_eq!(ep("mqtts://h").port, 8883);
        assert_eq!(ep("ws://h").to_string(), "ws://h:80/mqtt");
        assert_eq!(ep("wss://h:9001/x/y").to_string(), "wss://h:9001/x/y");
        assert_eq!(ep("[::1]:1999").to_string(), "mqtt://[::1]:1999");
        assert_eq!(ep("mqtt://[::1]").host, "::1");
        assert_eq!(ep("MQTT://h:1/").port, 1);
    }

    #[test]
    fn errors() {
        for bad in [
            "http://h",
            "mqtt://",
            "h:0",
            "h:99999",
            "h:x",
            "mqtt://u:p@h",
            "mqtt://h/path",
            "[::1",
        ] {
            assert!(
                matches!(Endpoint::parse(bad), Err(Error::Usage(_))),
                "{bad} should be a usage error"
            );
        }
    }
}

//! The help texts that state the value of a constant, built from it: the `help` and
//! `long_help` of the options in the parent module. Each function returns the long help;
//! [`short`] takes its first paragraph, as clap does with a doc comment.

use std::time::Duration;

/// The short help (`-h`): the first paragraph of the long one.
pub fn short(long: String) -> String {
    match long.split_once("\n\n") {
        Some((first, _)) => first.to_string(),
        None => long,
    }
}

/// A size in whole MiB, as help texts state sizes.
pub fn mib(bytes: usize) -> String {
    format!("{} MiB", bytes >> 20)
}

/// A duration in seconds, fractions as needed (`2`, `0.5`).
fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// `-q`: its default.
pub fn qos() -> String {
    format!(
        "Quality of service: 0, 1 or 2\n\n\
         The default is {} (at least once), not mosquitto's 0: chat must not lose \
         lines.",
        crate::defaults::QOS
    )
}

/// `--connect-timeout`: the longest pause between attempts.
pub fn connect_timeout() -> String {
    format!(
        "How long the first connection may take, retries included\n\n\
         Attempts are retried with a growing pause (up to {} seconds) until this time is up; \
         then the tool exits with status 3. With several brokers they are tried in turn, \
         each attempt taking at most its share of this time (but at least a second), and \
         the pause comes after each round. Fractions are allowed (0.5).",
        secs(crate::mqtt::dial::MAX_BACKOFF)
    )
}

/// `-V`: how long `auto` waits for an answer to MQTT 5.
pub fn mqtt_version() -> String {
    format!(
        "MQTT protocol version: auto, 3 (3.1.1) or 5\n\n\
         auto (the default) offers MQTT 5, and when the broker refuses it (a broker that \
         speaks only 3.1.1 answers with \"unacceptable protocol version\", closes the \
         connection, or says nothing for {} seconds) connects again at once with MQTT 3.1.1 \
         and keeps it for the rest of the run; -v says so. 3 means MQTT 3.1.1, as in \
         mosquitto's clients, and 5 MQTT 5: either is strict, and a broker that refuses it \
         ends the run with status 3. Also accepted: 311, 3.1.1, mqttv311, mqttv5.",
        secs(crate::mqtt::dial::V5_ANSWER)
    )
}

/// chat-pub's `--max-size`: its default.
pub fn pub_max_size() -> String {
    format!(
        "Largest message in bytes; longer lines are reported and skipped [default: {}]\n\n\
         Also bounds the memory used for one line. Under MQTT 5 the broker's own maximum \
         packet size applies too, when it announces a smaller one. Suffixes K and M \
         (binary) are accepted.",
        mib(crate::defaults::PUB_MAX_SIZE)
    )
}

/// `--who`: how long it waits for more of the roster.
pub fn who() -> String {
    format!(
        "Print who is online in the TOPICs, one nick per line, and exit\n\n\
         Reads the retained presence state and exits once nothing new arrived for {} s \
         (MQTT has no end-of-retained marker). With --json, one object per nick.",
        secs(crate::defaults::WHO_QUIET)
    )
}

/// `--session`: the session expiry asked for under MQTT 5.
pub fn session() -> String {
    format!(
        "Keep a persistent session named NAME (also the client id)\n\n\
         The broker keeps the subscriptions and the messages at QoS 1 and 2 published while \
         this subscriber is away, and sends them when it comes back with the same NAME \
         (subscribe with -q 1 or 2: QoS 0 messages are not kept). Under MQTT 5 the session \
         expires {} days after the last disconnect. If another client takes the session \
         over, chat-sub says so and exits with status 1. Cannot be combined with -i.",
        crate::defaults::SESSION_EXPIRY / (24 * 3600)
    )
}

/// chat-sub's `--max-size`: its default.
pub fn sub_max_size() -> String {
    format!(
        "Largest message in bytes, told to the broker under MQTT 5 [default: {}]\n\n\
         The default is the protocol's maximum, so that the broker drops nothing for size. \
         Under MQTT 5 a broker does not send bigger messages to this subscriber (mosquitto \
         only logs it); MQTT 3.1.1 cannot tell the broker, so chat-sub skips a bigger \
         message itself, with a warning on stderr.",
        mib(crate::defaults::SUB_MAX_SIZE)
    )
}

/// chat-broker's `--listen`: its default.
pub fn listen() -> String {
    format!(
        "Address to listen on, HOST:PORT (repeatable) [default: {}]\n\n\
         HOST is an IP address (IPv6 in brackets: [::1]:1883) or a name that resolves to \
         one; port 0 picks a free port, and the line printed at start says which. An address \
         that is not loopback (0.0.0.0 serves every network interface) needs \
         --password-file, or --allow-anonymous for a network you trust.",
        crate::defaults::LISTEN
    )
}

/// chat-pub's examples, at the end of its help.
pub fn pub_examples() -> &'static str {
    "Examples:\n  \
     chat-pub --nick alice lobby                  # type in the room; Ctrl-D ends\n  \
     chat-pub -r -m 'deploy at 14:00' ops/status  # one retained message\n  \
     tail -F app.log | chat-pub ops/log           # a log, line by line"
}

/// chat-sub's examples, at the end of its help.
pub fn sub_examples() -> &'static str {
    "Examples:\n  \
     chat-sub lobby                               # read the room; Ctrl-C ends\n  \
     chat-sub --who lobby                         # who is online there\n  \
     chat-sub --json 'ops/#' | jq -r 'select(.text) | .text'"
}

/// chat-broker's examples, at the end of its help.
pub fn broker_examples() -> &'static str {
    "Examples:\n  \
     chat-broker                          # for this machine (127.0.0.1:1883)\n  \
     chat-broker passwd users alice       # a password file (asks for the password)\n  \
     chat-broker --listen 0.0.0.0:1883 --password-file users   # for a LAN\n  \
     chat-broker --listen 0.0.0.0:1883 --allow-anonymous       # a LAN you trust"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_stated_as_before() {
        assert_eq!(mib(crate::defaults::PUB_MAX_SIZE), "1 MiB");
        assert_eq!(mib(crate::mqtt::wire::MAX_PACKET), "256 MiB");
        assert_eq!(secs(crate::defaults::WHO_QUIET), "0.5");
        assert_eq!(secs(crate::mqtt::dial::MAX_BACKOFF), "2");
        assert!(session().contains("expires 7 days after"));
        assert_eq!(short("a b\n\nc".into()), "a b");
        assert_eq!(short("a".into()), "a");
    }
}

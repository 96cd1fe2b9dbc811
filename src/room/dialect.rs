//! The payloads of the original MQTTChat (`--dialect mqttchat-py`), the Python program
//! this project descends from, whose rooms still live on public brokers.
//!
//! That program publishes each typed line as `NAME,TEXT`, and when it starts the notice
//! `noticia,NAME entrou neste tópico` ("NAME entered this topic"). It reads a payload
//! the same way: the part before the first comma is the sender, unless it is `noticia`,
//! which makes the rest a notice; both parts without white space around them. Readers of the dialect still take envelopes and raw
//! messages of other clients as usual: a payload is the dialect's only when it is not an
//! envelope, is UTF-8, and has a non-empty part before a comma. Nothing here knows about
//! terminals or sockets.

use std::borrow::Cow;

use crate::room::envelope::{self, Decoded};

/// Which payloads the tools speak in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// This project's JSON envelope.
    #[default]
    Envelope,
    /// The original MQTTChat's `NAME,TEXT` and `noticia,TEXT`.
    MqttchatPy,
}

/// What starts a notice.
pub const NOTICE: &str = "noticia,";

/// The usage error of the dialect in an encrypted room (both tools).
pub const WITH_SECRET: &str = "--dialect mqttchat-py cannot be used with a room secret \
    (--room-secret-file or CHAT_ROOM_SECRET): the original MQTTChat cannot decrypt";

/// The usage error of the dialect with `--raw` (both tools).
pub const WITH_RAW: &str = "--dialect mqttchat-py cannot be used with --raw, which takes \
    payloads as they are";

/// `NICK,TEXT`, appended to `out`.
pub fn encode(out: &mut Vec<u8>, nick: &str, text: &str) {
    out.extend_from_slice(nick.as_bytes());
    out.push(b',');
    out.extend_from_slice(text.as_bytes());
}

/// The notice the original publishes when it starts.
pub fn start_notice(nick: &str) -> Vec<u8> {
    format!("{NOTICE}{nick} entrou neste tópico").into_bytes()
}

/// A nick the dialect can carry: one with a comma would be read back as a shorter nick
/// and a longer text.
pub fn check_nick(nick: &str) -> Result<(), String> {
    match nick.contains(',') {
        true => Err(format!(
            "the nick '{}' has a comma, which --dialect mqttchat-py cannot carry (NAME,TEXT)",
            crate::escape::escaped(nick)
        )),
        false => Ok(()),
    }
}

/// A payload of the dialect, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    Message { from: &'a str, text: &'a str },
    Notice(&'a str),
}

/// Reads `text` as the dialect does, each part without white space around it; None when
/// it is not of the dialect (no comma, or nothing before it).
pub fn read(text: &str) -> Option<Line<'_>> {
    let (name, said) = text.split_once(',')?;
    match (name.trim(), said.trim()) {
        ("", _) => None,
        (name, said) if name == NOTICE.trim_end_matches(',') => Some(Line::Notice(said)),
        (from, text) => Some(Line::Message { from, text }),
    }
}

/// Decodes a payload in `dialect`: an envelope or a raw message as
/// [`envelope::decode`] does, except that under the dialect a raw UTF-8 payload of its
/// form is a message from NAME (`from` set; no `ts` or `id`) or a notice.
pub fn decode(payload: &[u8], dialect: Dialect) -> Decoded<'_> {
    let decoded = envelope::decode(payload);
    if dialect == Dialect::Envelope || decoded.envelope {
        return decoded;
    }
    let Ok(text) = std::str::from_utf8(payload) else {
        return decoded;
    };
    match read(text) {
        Some(Line::Message { from, text }) => Decoded {
            text: Cow::Borrowed(text),
            from: Some(Cow::Borrowed(from)),
            ..decoded
        },
        Some(Line::Notice(text)) => Decoded {
            text: Cow::Borrowed(text),
            notice: true,
            ..decoded
        },
        None => decoded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_notices_are_read_as_the_original_reads_them() {
        let py = read;
        let msg = |from, text| Some(Line::Message { from, text });
        assert_eq!(
            py("seeduser,oi, tudo bem?"),
            msg("seeduser", "oi, tudo bem?")
        );
        assert_eq!(py("bob,"), msg("bob", ""));
        assert_eq!(py("a b,c"), msg("a b", "c"), "a name may have spaces");
        assert_eq!(
            py(" bob , hi there "),
            msg("bob", "hi there"),
            "around them, none"
        );
        assert_eq!(py(" noticia, x"), Some(Line::Notice("x")));
        assert_eq!(py("noticia,"), Some(Line::Notice("")));
        assert_eq!(
            py("noticia,seeduser entrou neste tópico"),
            Some(Line::Notice("seeduser entrou neste tópico"))
        );
        assert_eq!(py("no comma"), None);
        assert_eq!(py(",nameless"), None);
        assert_eq!(py(""), None);
    }

    #[test]
    fn what_the_tools_send_reads_back() {
        let mut out = Vec::new();
        encode(&mut out, "alice", "hi, all");
        assert_eq!(out, b"alice,hi, all");
        let d = decode(&out, Dialect::MqttchatPy);
        assert_eq!((d.from.as_deref(), &*d.text), (Some("alice"), "hi, all"));
        assert!(!d.notice && !d.envelope && d.ts.is_none() && d.id.is_none());
        let n = start_notice("alice");
        assert_eq!(n, "noticia,alice entrou neste tópico".as_bytes());
        let d = decode(&n, Dialect::MqttchatPy);
        assert!(d.notice && d.from.is_none());
        assert_eq!(d.text, "alice entrou neste tópico");
        assert!(check_nick("al,ice").is_err() && check_nick("alice").is_ok());
    }

    #[test]
    fn envelopes_and_other_payloads_are_read_as_usual() {
        let env = br#"{"id":"1","from":"bob","ts":"T","text":"x,y"}"#;
        let d = decode(env, Dialect::MqttchatPy);
        assert!(d.envelope);
        assert_eq!((d.from.as_deref(), &*d.text), (Some("bob"), "x,y"));
        let raw = decode(b"hello", Dialect::MqttchatPy);
        assert_eq!((raw.from, &*raw.text), (None, "hello"));
        let bytes = decode(b"a,\xff", Dialect::MqttchatPy);
        assert!(!bytes.utf8 && bytes.from.is_none(), "not UTF-8: raw");
        let plain = decode(b"seeduser,oi", Dialect::Envelope);
        assert_eq!((plain.from, &*plain.text), (None, "seeduser,oi"));
    }
}

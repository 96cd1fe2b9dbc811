//! chat-pub's input side: stdin (or `-m`) → lines → messages ready to publish.
//!
//! Stdin is read on its own thread (not `tokio::io::stdin`, whose blocking read can keep
//! the runtime alive until the user presses Enter) and handed to the publisher in
//! batches over a small bounded channel: when the broker is slower than stdin, the
//! channel fills, this thread blocks, and the pipe's own backpressure stops the writer.
//! Memory stays bounded: a line longer than the limit is reported and skipped without
//! being buffered.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use base64::Engine;
use bytes::Bytes;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use tokio::sync::mpsc;

use super::outgoing::Outgoing;
use crate::mqtt::topic;
use crate::mqtt::wire::Properties;
use crate::room::dialect::{self, Dialect};
use crate::room::envelope::{self, IdSource};
use crate::room::seal;
use crate::room::sign::{self, Item, Sealer};

mod lines;
mod sink;

use lines::read_lines;
use sink::Sink;

/// How lines become payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Wrap each line's text in an envelope.
    Envelope,
    /// The line's bytes as they are.
    Raw,
    /// Each line is a JSON object, as chat-sub `--json` prints them (`--json`).
    Json,
}

/// Turns lines into messages.
pub struct Preparer {
    pub mode: Mode,
    /// TOPIC from the command line, if given.
    pub topic: Option<Bytes>,
    pub qos: u8,
    pub retain: bool,
    pub nick: String,
    /// Largest payload (`--max-size`).
    pub max_size: usize,
    pub ids: IdSource,
    /// The room secret's keys and the identity that signs, when the room is encrypted.
    pub sealer: Option<Sealer>,
    /// How a line with a nick is written: the envelope, or the original MQTTChat's.
    pub dialect: Dialect,
    /// Sent to TOPIC before any line (the original MQTTChat's notice at start).
    pub notice: Option<Bytes>,
    /// The MQTT 5 properties of the flags, for every message.
    pub properties: Properties,
    /// The same, encoded once.
    pub encoded: Bytes,
}

/// What becomes of one line.
pub enum Prepared {
    Message(Outgoing),
    /// A message whose payload is to be signed and sealed with the others read at once.
    ToSeal(Outgoing),
    /// Nothing to publish and nothing wrong (a presence event in `--json` input).
    Skip,
}

impl Preparer {
    /// Prepares one line (without its newline). The error says why it cannot be sent.
    pub fn prepare(&mut self, line: u64, bytes: &[u8]) -> Result<Prepared, String> {
        let (msg, sealed) = match self.mode {
            Mode::Raw => {
                let payload = Bytes::copy_from_slice(bytes);
                (self.message(line, None, payload, None, None)?, false)
            }
            Mode::Envelope => {
                let text = std::str::from_utf8(bytes).map_err(|e| {
                    format!(
                        "invalid UTF-8 at byte {} (use --raw to send bytes as they are)",
                        e.valid_up_to()
                    )
                })?;
                let mut payload = Vec::with_capacity(text.len() + 120);
                match self.dialect {
                    Dialect::MqttchatPy => dialect::encode(&mut payload, &self.nick, text),
                    Dialect::Envelope => {
                        let (id, ts) = (self.ids.next_id(), envelope::now_rfc3339());
                        envelope::encode(&mut payload, &id, &self.nick, &ts, text);
                    }
                }
                (self.message(line, None, payload.into(), None, None)?, false)
            }
            Mode::Json => match self.json_line(line, bytes)? {
                Some(m) => m,
                None => return Ok(Prepared::Skip),
            },
        };
        let limit = match (&self.sealer, sealed) {
            (Some(_), false) => sign::sealed_len(msg.payload.len()),
            _ => msg.payload.len(),
        };
        if limit > self.max_size {
            return Err(format!(
                "the message is {limit} bytes{}, more than --max-size ({} bytes)",
                match self.sealer.is_some() && !sealed {
                    true => " signed and encrypted",
                    false => "",
                },
                self.max_size
            ));
        }
        match (&self.sealer, sealed) {
            (Some(_), false) => {
                std::str::from_utf8(&msg.topic).map_err(|_| "the topic is not UTF-8")?;
                Ok(Prepared::ToSeal(msg))
            }
            _ => Ok(Prepared::Message(msg)),
        }
    }

    /// Signs and seals `batch`'s messages at `indices` together (each with the key of its
    /// topic, derived here the first time a topic is met: never on the publisher's
    /// thread).
    fn seal(&mut self, batch: &mut [Outgoing], indices: &[usize]) -> Result<(), String> {
        let Some(sealer) = &mut self.sealer else {
            return Ok(());
        };
        let payloads = {
            let items: Vec<Item> = indices
                .iter()
                .map(|&i| {
                    let topic = std::str::from_utf8(&batch[i].topic).unwrap_or_default();
                    Item {
                        room: topic,
                        topic,
                        record: &batch[i].payload,
                    }
                })
                .collect();
            sealer.seal(&items)?
        };
        for (&i, payload) in indices.iter().zip(payloads) {
            batch[i].payload = payload.into();
        }
        Ok(())
    }

    /// The notice to send before any line, if there is one (numbered 0).
    fn notice(&self) -> Option<Outgoing> {
        let payload = self.notice.clone()?;
        self.message(0, None, payload, None, Some(false)).ok()
    }

    /// A payload to pass on as encrypted must be one: with the room's secret, it must
    /// open with the key of its topic (nothing goes out in clear that the user believes
    /// encrypted); without, it must be well-formed.
    fn check_sealed(&mut self, m: &Outgoing) -> Result<(), String> {
        let topic = std::str::from_utf8(&m.topic).map_err(|_| "the topic is not UTF-8")?;
        match &mut self.sealer {
            Some(sealer) => sealer
                .keyring
                .open(topic, topic, &m.payload)
                .map(drop)
                .map_err(|why| {
                    format!("\"encrypted\" is true, but the payload is {why} (room '{topic}')")
                }),
            None if seal::well_formed(&m.payload) => Ok(()),
            None => {
                Err("\"encrypted\" is true, but payload_base64 is not an encrypted payload".into())
            }
        }
    }

    fn message(
        &self,
        line: u64,
        topic: Option<&str>,
        payload: Bytes,
        qos: Option<u8>,
        retain: Option<bool>,
    ) -> Result<Outgoing, String> {
        let topic = match topic {
            Some(t) => {
                topic::check_publish(t)?;
                Bytes::copy_from_slice(t.as_bytes())
            }
            None => self
                .topic
                .clone()
                .ok_or("no topic: give TOPIC on the command line or a \"topic\" key")?,
        };
        let qos = qos.unwrap_or(self.qos);
        if qos > 2 {
            return Err(format!("\"qos\" must be 0, 1 or 2, not {qos}"));
        }
        Ok(Outgoing {
            line,
            topic,
            payload,
            qos,
            retain: retain.unwrap_or(self.retain),
            properties: self.encoded.clone(),
        })
    }

    /// A `--json` line: the message, and whether its payload is encrypted already (an
    /// encrypted message relayed as it is); None for a line to skip.
    fn json_line(&mut self, line: u64, bytes: &[u8]) -> Result<Option<(Outgoing, bool)>, String> {
        let j: JsonLine =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        if j.event.is_some() {
            return Ok(None);
        }
        let b64 = |b64: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| format!("invalid payload_base64: {e}"))
        };
        if j.encrypted == Some(true) {
            // As chat-sub --json prints a message it cannot decrypt: passed on unchanged.
            let payload = b64(j.payload_base64.as_deref().unwrap_or_default())?;
            let mut m = self.message(line, j.topic.as_deref(), payload.into(), j.qos, j.retain)?;
            self.check_sealed(&m)?;
            self.line_properties(&mut m, j.properties)?;
            return Ok(Some((m, true)));
        }
        let text = j.text.ok_or("the JSON object has no \"text\" string")?;
        let payload = if j.from == Some(None) && j.ts == Some(None) && j.id == Some(None) {
            // A raw message as chat-sub --json prints it: publish its bytes, no envelope.
            match j.payload_base64 {
                Some(b) => b64(&b)?.into(),
                None => Bytes::copy_from_slice(text.as_bytes()),
            }
        } else if self.dialect == Dialect::MqttchatPy {
            let from = j.from.flatten().unwrap_or(Cow::Borrowed(&self.nick));
            dialect::check_nick(&from)?;
            let mut payload = Vec::with_capacity(from.len() + text.len() + 1);
            dialect::encode(&mut payload, &from, &text);
            payload.into()
        } else {
            let id = match j.id.flatten() {
                Some(id) => id,
                None => Cow::Owned(self.ids.next_id()),
            };
            let ts = match j.ts.flatten() {
                Some(ts) => ts,
                None => Cow::Owned(envelope::now_rfc3339()),
            };
            let from = j.from.flatten().unwrap_or(Cow::Borrowed(&self.nick));
            let mut payload = Vec::with_capacity(text.len() + 120);
            envelope::encode(&mut payload, &id, &from, &ts, &text);
            payload.into()
        };
        let mut m = self.message(line, j.topic.as_deref(), payload, j.qos, j.retain)?;
        self.line_properties(&mut m, j.properties)?;
        Ok(Some((m, false)))
    }

    /// A `--json` line's own `properties` (as chat-sub `--json` prints them), with the
    /// flags': its user properties first, then the flags'; its other properties win.
    fn line_properties(
        &self,
        m: &mut Outgoing,
        given: Option<JsonProperties>,
    ) -> Result<(), String> {
        let Some(j) = given else {
            return Ok(());
        };
        let data = match (j.correlation_data, j.correlation_data_base64) {
            (Some(_), Some(_)) => {
                return Err("\"properties\" has both correlation_data and \
                            correlation_data_base64"
                    .into());
            }
            (Some(text), None) => Some(Bytes::from(text)),
            (None, Some(b64)) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| format!("invalid correlation_data_base64: {e}"))?
                    .into(),
            ),
            (None, None) => None,
        };
        let flags = &self.properties;
        let mut user = j.user;
        user.extend(flags.user.iter().cloned());
        let props = Properties {
            user,
            content_type: j.content_type.or_else(|| flags.content_type.clone()),
            message_expiry: j.message_expiry.or(flags.message_expiry),
            response_topic: j.response_topic.or_else(|| flags.response_topic.clone()),
            correlation_data: data.or_else(|| flags.correlation_data.clone()),
        };
        props.check()?;
        m.properties = props.encode();
        Ok(())
    }
}

/// One line of `chat-pub --json` input. `from`, `ts` and `id` tell absent (None) from
/// null (Some(None)).
#[derive(Deserialize)]
struct JsonLine<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    topic: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "present")]
    from: Option<Option<Cow<'a, str>>>,
    #[serde(default, borrow, deserialize_with = "present")]
    ts: Option<Option<Cow<'a, str>>>,
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<Option<Cow<'a, str>>>,
    #[serde(default)]
    qos: Option<u8>,
    #[serde(default)]
    retain: Option<bool>,
    #[serde(default, borrow)]
    payload_base64: Option<Cow<'a, str>>,
    #[serde(default)]
    event: Option<IgnoredAny>,
    #[serde(default)]
    encrypted: Option<bool>,
    #[serde(default)]
    properties: Option<JsonProperties>,
}

/// The `properties` of a `--json` line, as chat-sub `--json` prints them; other keys are
/// ignored.
#[derive(Deserialize)]
struct JsonProperties {
    #[serde(default)]
    user: Vec<(String, String)>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    message_expiry: Option<u32>,
    #[serde(default)]
    response_topic: Option<String>,
    #[serde(default)]
    correlation_data: Option<String>,
    #[serde(default)]
    correlation_data_base64: Option<String>,
}

/// A key that is present: `null` → `Some(None)`, a string → `Some(Some(s))`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Cow<'de, str>>>, D::Error> {
    Option::<Cow<'de, str>>::deserialize(d).map(Some)
}

/// Where the lines come from.
pub enum Source {
    Stdin,
    /// `-m` messages, each one "line" (empty ones included: they were asked for).
    Args(Vec<String>),
}

/// Splitting and per-line rules of stdin.
#[derive(Debug, Clone, Copy)]
pub struct LineRules {
    /// Keep a trailing `\r` (binary-safe `--raw`).
    pub keep_cr: bool,
    pub keep_empty: bool,
    /// Longest line kept in memory; longer ones are skipped.
    pub max_line: usize,
}

/// Shared between the input thread and the publisher.
#[derive(Debug, Default)]
pub struct Control {
    /// Lines that could not be sent (reported on stderr by the input thread).
    pub failures: AtomicU64,
    /// Set by the publisher (on a signal): read no more.
    pub stop: AtomicBool,
    /// Whether the thread is waiting in read(2), having handed over all it read before.
    pub idle: AtomicBool,
}

/// Starts the input thread. It sends batches of messages, reports bad lines on stderr
/// as `chat-pub: line N: why`, and counts them in `control.failures`.
pub fn spawn(
    source: Source,
    mut prep: Preparer,
    rules: LineRules,
    tx: mpsc::Sender<Vec<Outgoing>>,
    control: Arc<Control>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            // The notice goes at once, whether or not a line ever comes.
            if let Some(notice) = prep.notice() {
                let _ = tx.blocking_send(vec![notice]);
            }
            let mut sink = Sink {
                prep: &mut prep,
                batch: Vec::new(),
                unsealed: Vec::new(),
                control: &control,
                label: if matches!(source, Source::Args(_)) {
                    "message"
                } else {
                    "line"
                },
            };
            match source {
                Source::Args(msgs) => {
                    for (i, m) in msgs.iter().enumerate() {
                        sink.line(i as u64 + 1, m.as_bytes());
                    }
                }
                Source::Stdin => read_lines(std::io::stdin().lock(), rules, &mut sink, &tx),
            }
            let batch = sink.take();
            if !batch.is_empty() {
                let _ = tx.blocking_send(batch);
            }
        })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn prep(mode: Mode) -> Preparer {
        Preparer {
            mode,
            topic: Some(Bytes::from_static(b"room")),
            qos: 1,
            retain: false,
            nick: "me".into(),
            max_size: 1 << 20,
            ids: IdSource::default(),
            sealer: None,
            dialect: Dialect::Envelope,
            notice: None,
            properties: Properties::default(),
            encoded: Bytes::new(),
        }
    }

    fn lines(input: &[u8], rules: LineRules, mode: Mode) -> (Vec<(u64, Vec<u8>)>, u64) {
        lines_from(input, rules, mode)
    }

    fn lines_from(
        input: impl std::io::Read,
        rules: LineRules,
        mode: Mode,
    ) -> (Vec<(u64, Vec<u8>)>, u64) {
        let (tx, mut rx) = mpsc::channel(1000);
        let control = Control::default();
        let mut p = prep(mode);
        let mut sink = Sink {
            prep: &mut p,
            batch: Vec::new(),
            unsealed: Vec::new(),
            control: &control,
            label: "line",
        };
        read_lines(input, rules, &mut sink, &tx);
        let mut out: Vec<_> = std::mem::take(&mut sink.batch);
        drop(tx);
        let mut all = Vec::new();
        while let Ok(b) = rx.try_recv() {
            all.extend(b);
        }
        all.append(&mut out);
        let got = all
            .into_iter()
            .map(|m| (m.line, m.payload.to_vec()))
            .collect();
        (got, control.failures.load(Ordering::Relaxed))
    }

    const RULES: LineRules = LineRules {
        keep_cr: false,
        keep_empty: false,
        max_line: 10,
    };

    #[test]
    fn line_rules() {
        let (got, failed) = lines(b"a\r\n\nbb\n0123456789ABC\nlast", RULES, Mode::Raw);
        assert_eq!(
            got,
            vec![
                (1, b"a".to_vec()),
                (3, b"bb".to_vec()),
                (5, b"last".to_vec())
            ]
        );
        assert_eq!(failed, 1);
        let keep = LineRules {
            keep_cr: true,
            keep_empty: true,
            ..RULES
        };
        let (got, _) = lines(b"a\r\n\n", keep, Mode::Raw);
        assert_eq!(got, vec![(1, b"a\r".to_vec()), (2, b"".to_vec())]);
    }

    /// A reader that gives one byte per read, after being interrupted by a signal.
    struct Trickle<'a> {
        rest: &'a [u8],
        interrupted: bool,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.interrupted = !self.interrupted;
            if self.interrupted {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let n = self.rest.len().min(buf.len()).min(1);
            buf[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            Ok(n)
        }
    }

    #[test]
    fn lines_split_across_reads_are_the_same_lines() {
        let input = b"a\r\n\nbb\n0123456789ABC\nlast";
        let whole = lines(&input[..], RULES, Mode::Raw);
        let trickle = Trickle {
            rest: input,
            interrupted: false,
        };
        assert_eq!(lines_from(trickle, RULES, Mode::Raw), whole);
    }

    #[test]
    fn bad_utf8_is_a_line_error_in_envelope_mode() {
        let (got, failed) = lines(b"ok\n\xff\xfe\nok2\n", RULES, Mode::Envelope);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(failed, 1);
    }

    #[test]
    fn a_json_lines_properties_go_with_the_flags() {
        let flags = Properties {
            user: vec![("via".into(), "relay".into())],
            content_type: Some("text/plain".into()),
            message_expiry: Some(60),
            ..Properties::default()
        };
        let mut p = Preparer {
            encoded: flags.encode(),
            properties: flags.clone(),
            ..prep(Mode::Json)
        };
        let line = br#"{"text":"t","properties":{"user":[["k","1"],["k","2"]],"content_type":"a/b","correlation_data_base64":"/wA=","other":1}}"#;
        let Ok(Prepared::Message(m)) = p.prepare(1, line) else {
            panic!("not a message")
        };
        let want = Properties {
            user: vec![
                ("k".into(), "1".into()),
                ("k".into(), "2".into()),
                ("via".into(), "relay".into()),
            ],
            content_type: Some("a/b".into()),
            message_expiry: Some(60),
            correlation_data: Some(Bytes::from_static(b"\xff\x00")),
            ..Properties::default()
        };
        assert_eq!(m.properties, want.encode());
        // Without its own: the flags'.
        let Ok(Prepared::Message(m)) = p.prepare(2, br#"{"text":"t"}"#) else {
            panic!("not a message")
        };
        assert_eq!(m.properties, flags.encode());
        for bad in [
            r#"{"text":"t","properties":{"correlation_data":"a","correlation_data_base64":"YQ=="}}"#,
            r#"{"text":"t","properties":{"correlation_data_base64":"!"}}"#,
            r#"{"text":"t","properties":{"user":[["only-key"]]}}"#,
            r#"{"text":"t","properties":{"response_topic":"a/+"}}"#,
            r#"{"text":"t","properties":{"message_expiry":-1}}"#,
        ] {
            assert!(p.prepare(3, bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_lines() {
        let mut p = prep(Mode::Json);
        let m = |p: &mut Preparer, s: &str| match p.prepare(1, s.as_bytes()) {
            Ok(Prepared::Message(m) | Prepared::ToSeal(m)) => Ok(m),
            Ok(Prepared::Skip) => Err("skip".to_string()),
            Err(e) => Err(e),
        };
        let relay = m(&mut p, r#"{"topic":"x/y","from":"al","ts":"T","id":"I","text":"hi","qos":2,"retain":true,"extra":1}"#).unwrap();
        assert_eq!(&relay.topic[..], b"x/y");
        assert_eq!((relay.qos, relay.retain), (2, true));
        assert_eq!(
            &relay.payload[..],
            br#"{"id":"I","from":"al","ts":"T","text":"hi"}"#
        );
        let raw = m(
            &mut p,
            r#"{"from":null,"ts":null,"id":null,"text":"x","payload_base64":"/w=="}"#,
        )
        .unwrap();
        assert_eq!(&raw.payload[..], b"\xff");
        let filled = m(&mut p, r#"{"text":"t"}"#).unwrap();
        let d = envelope::decode(&filled.payload);
        assert_eq!((d.from.as_deref(), d.envelope), (Some("me"), true));
        assert_eq!(
            m(&mut p, r#"{"event":"join","from":"x"}"#).unwrap_err(),
            "skip"
        );
        for bad in [
            "nope",
            r#"{"from":"x"}"#,
            r#"{"text":"x","topic":"a/#"}"#,
            r#"{"text":"x","qos":3}"#,
            r#"{"text":1}"#,
        ] {
            assert!(m(&mut p, bad).is_err(), "{bad}");
        }
        p.topic = None;
        assert!(
            m(&mut p, r#"{"text":"x"}"#)
                .unwrap_err()
                .contains("no topic")
        );
    }

    #[test]
    fn with_a_room_secret_every_payload_is_sealed_for_its_topic_and_sealed_ones_pass() {
        use crate::room::seal::{Keyring, RoomSecret, Version};
        use crate::room::sign::{Identity, Verifier};
        let secret = || RoomSecret::new(b"sixteen bytes at least".to_vec()).expect("s");
        let me = std::sync::Arc::new(Identity::from_seed(&[5; 32]));
        let sealer = || Some(Sealer::new(Keyring::new(secret()), me.clone()));
        let mut ring = Keyring::new(secret());
        // Opens as version 2, signed by `me` for its topic: the record.
        let open = |ring: &mut Keyring, m: &Outgoing| {
            let topic = std::str::from_utf8(&m.topic).expect("UTF-8");
            let (version, plain) = ring.open(topic, topic, &m.payload).expect("opens");
            assert_eq!(version, Version::V2);
            let signed = Verifier::default()
                .check(topic, topic, &plain)
                .expect("signed");
            assert_eq!(signed.fingerprint, me.fingerprint());
            signed.record.to_vec()
        };
        let m = |p: &mut Preparer, s: &str| match p.prepare(1, s.as_bytes()) {
            Ok(Prepared::Message(m)) => Ok(m),
            Ok(Prepared::ToSeal(m)) => {
                let mut batch = [m];
                p.seal(&mut batch, &[0]).map(|()| batch[0].clone())
            }
            Ok(Prepared::Skip) => Err("skip".to_string()),
            Err(e) => Err(e),
        };
        let mut env = Preparer {
            sealer: sealer(),
            ..prep(Mode::Envelope)
        };
        let hello = m(&mut env, "hello").expect("sealed");
        assert!(seal::is_sealed(&hello.payload));
        let plain = open(&mut ring, &hello);
        assert_eq!(envelope::decode(&plain).text, "hello");
        let mut raw = Preparer {
            sealer: sealer(),
            ..prep(Mode::Raw)
        };
        // A raw line that looks encrypted is sealed all the same (never sent in clear).
        let looks = m(&mut raw, "mqttchat:e1:secret plans").expect("sealed");
        assert_eq!(open(&mut ring, &looks), b"mqttchat:e1:secret plans");
        let mut json = Preparer {
            sealer: sealer(),
            ..prep(Mode::Json)
        };
        let other = m(&mut json, r#"{"topic":"x/y","text":"t"}"#).expect("sealed");
        assert_eq!(envelope::decode(&open(&mut ring, &other)).text, "t");
        // What chat-sub --json prints for a message it cannot open is relayed unchanged.
        let b64 = base64::engine::general_purpose::STANDARD.encode(&hello.payload);
        let relayed = format!(
            r#"{{"topic":"room","from":null,"text":null,"ts":null,"id":null,"encrypted":true,"payload_base64":"{b64}"}}"#
        );
        for p in [&mut json, &mut prep(Mode::Json)] {
            assert_eq!(m(p, &relayed).expect("relayed").payload, hello.payload);
        }
        let fake = r#"{"text":null,"encrypted":true,"payload_base64":"aGk="}"#;
        let err = m(&mut prep(Mode::Json), fake).unwrap_err();
        assert!(err.contains("not an encrypted payload"), "{err}");
        // With the secret, what is passed on must open: a plaintext that merely starts like
        // a sealed payload is refused, never sent in clear.
        let looks = base64::engine::general_purpose::STANDARD.encode("mqttchat:e1:the plans");
        let looks = format!(r#"{{"topic":"room","encrypted":true,"payload_base64":"{looks}"}}"#);
        assert!(m(&mut json, &looks).unwrap_err().contains("malformed"));
        json.max_size = 400;
        assert!(
            m(&mut json, r#"{"text":"t"}"#)
                .unwrap_err()
                .contains("bytes signed and encrypted")
        );
    }
}

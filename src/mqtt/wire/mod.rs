//! MQTT 3.1.1 and 5 packets behind one small vocabulary.
//!
//! rumqttc has two separate type families (`rumqttc::mqttbytes::v4` and
//! `rumqttc::v5::mqttbytes::v5`). Everything above this module speaks [`Inbound`] and the
//! `encode_*` functions, so the publish and subscribe loops are written once for both
//! protocol versions. Decoding and the rarely sent packets (CONNECT, SUBSCRIBE) use
//! rumqttc's codecs; the packets on the hot path (PUBLISH and its acknowledgements, PING,
//! DISCONNECT) are a few bytes each and are written here directly, without building
//! rumqttc structs (and a `String` topic) per message.

mod decode;
mod encode;
mod properties;

pub use decode::{Peek, decode, peek_oversized};
// chat-broker's engine frames its answers with these too.
#[cfg(feature = "broker")]
pub(crate) use decode::fixed_header;
#[cfg(feature = "broker")]
pub(crate) use encode::put_remaining_length;
pub use encode::*;
pub use properties::Properties;

use bytes::Bytes;

/// The MQTT protocol level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4), what `-V 3` selects.
    V311,
    /// MQTT 5.
    V5,
}

impl std::fmt::Display for Version {
    /// `5` or `3.1.1`, as in "MQTT 5".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V311 => "3.1.1",
            Version::V5 => "5",
        })
    }
}

/// Largest packet MQTT can express (the remaining length is at most 268,435,455 bytes).
pub const MAX_PACKET: usize = 268_435_455 + 5;

/// What a CONNECT asks for.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    pub client_id: String,
    pub keepalive: u16,
    pub clean_start: bool,
    /// MQTT 5 session expiry interval in seconds (None: the session ends with the link).
    pub session_expiry: Option<u32>,
    /// Largest packet we accept; told to the broker under MQTT 5.
    pub max_packet_in: u32,
    /// User name and password, if the broker wants them.
    pub login: Option<Login>,
    /// What the broker publishes if the connection dies without DISCONNECT.
    pub will: Option<Will>,
}

/// A last will (chat-pub's presence: an empty retained message, meaning "offline").
#[derive(Debug, Clone)]
pub struct Will {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
}

/// Credentials for CONNECT.
#[derive(Debug, Clone)]
pub struct Login {
    pub username: String,
    pub password: Option<Secret>,
}

/// A password: kept out of every `Debug` output, so no log line or message can show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    /// The password itself, for the CONNECT packet only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

/// The parts of a CONNACK the tools act on.
#[derive(Debug, Clone, Default)]
pub struct ConnAckInfo {
    pub session_present: bool,
    /// How many QoS 1/2 publishes the broker accepts unacknowledged (MQTT 5).
    pub receive_max: Option<u16>,
    /// The largest packet the broker accepts (MQTT 5).
    pub max_packet_size: Option<u32>,
    /// The highest QoS the broker supports (MQTT 5).
    pub max_qos: Option<u8>,
    /// A client id the broker chose for us (MQTT 5, when we sent an empty one).
    pub assigned_client_id: Option<String>,
}

impl std::fmt::Display for ConnAckInfo {
    /// What the broker told us, for `-v`: `, session present, receive maximum 20`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.session_present {
            f.write_str(", session present")?;
        }
        if let Some(n) = self.receive_max {
            write!(f, ", receive maximum {n}")?;
        }
        if let Some(n) = self.max_packet_size {
            write!(f, ", maximum packet size {n}")?;
        }
        if let Some(q) = self.max_qos {
            write!(f, ", maximum QoS {q}")?;
        }
        if let Some(id) = &self.assigned_client_id {
            write!(f, ", assigned client id {}", crate::escape::escaped(id))?;
        }
        Ok(())
    }
}

/// A CONNACK that refused the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The reason code as sent (3.1.1 return codes 1–5, MQTT 5 reason codes ≥ 0x80).
    pub code: u8,
    pub version: Version,
}

impl Refusal {
    /// Whether retrying cannot help: credentials or authorization are wrong.
    pub fn is_auth(&self) -> bool {
        matches!(
            (self.version, self.code),
            (Version::V311, 4 | 5) | (Version::V5, 0x86 | 0x87 | 0x8A | 0x8C)
        )
    }

    /// Whether the broker rejects our client id (retrying with it cannot help either).
    pub fn is_client_id(&self) -> bool {
        matches!(
            (self.version, self.code),
            (Version::V311, 2) | (Version::V5, 0x85)
        )
    }

    /// Whether the refusal may be about the will rather than the client: its topic, QoS,
    /// retain flag or payload, or an ACL on its topic (which says "not authorized").
    pub fn may_be_will(&self) -> bool {
        matches!(
            (self.version, self.code),
            (Version::V311, 5) | (Version::V5, 0x87 | 0x90 | 0x95 | 0x99 | 0x9A | 0x9B)
        )
    }

    /// Whether the broker does not speak this protocol version.
    pub fn is_version(&self) -> bool {
        matches!(
            (self.version, self.code),
            (Version::V311, 1) | (Version::V5, 0x84)
        )
    }

    /// Human-readable reason, e.g. `not authorized (0x87)`.
    pub fn describe(&self) -> String {
        let text = match self.version {
            Version::V311 => match self.code {
                1 => "unacceptable protocol version",
                2 => "client identifier rejected",
                3 => "server unavailable",
                4 => "bad user name or password",
                5 => "not authorized",
                _ => "unknown return code",
            },
            Version::V5 => reason_text(self.code),
        };
        format!("{text} ({:#04x})", self.code)
    }
}

/// The four acknowledgements of QoS 1 and 2, named as the MQTT specification names them.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    PubAck,
    PubRec,
    PubRel,
    PubComp,
}

/// A message the broker delivered to us.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub topic: Bytes,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    pub pkid: u16,
    /// Its MQTT 5 properties, when it has any the tools show.
    pub properties: Option<Box<Properties>>,
}

/// A packet from the broker, in either protocol version.
#[derive(Debug, Clone)]
pub enum Inbound {
    ConnAck(Result<ConnAckInfo, Refusal>),
    Publish(Delivery),
    /// An acknowledgement; `reason` is 0 under 3.1.1 and the MQTT 5 reason code otherwise.
    Ack {
        kind: AckKind,
        pkid: u16,
        reason: u8,
    },
    /// One code per filter: the granted QoS (0–2) or a failure (≥ 0x80).
    SubAck {
        pkid: u16,
        codes: Vec<u8>,
    },
    PingResp,
    /// The broker ends the connection (MQTT 5 sends a reason code).
    Disconnect {
        reason: u8,
    },
    /// A PUBLISH larger than we accept (MQTT 3.1.1 cannot tell the broker our limit):
    /// its topic, QoS and packet id (payload empty), and its size; its bytes are skipped.
    Oversized {
        delivery: Delivery,
        size: usize,
    },
    /// A packet a client does not expect (e.g. CONNECT, AUTH); names its type.
    Unexpected(
        #[expect(
            dead_code,
            reason = "read through Debug, in the log of what is ignored"
        )]
        &'static str,
    ),
}

/// The MQTT 5 reason code text (spec §2.4), short and lower case.
pub fn reason_text(code: u8) -> &'static str {
    match code {
        0x00 => "success",
        0x04 => "disconnect with will message",
        0x10 => "no matching subscribers",
        0x80 => "unspecified error",
        0x81 => "malformed packet",
        0x82 => "protocol error",
        0x83 => "implementation specific error",
        0x84 => "unsupported protocol version",
        0x85 => "client identifier not valid",
        0x86 => "bad user name or password",
        0x87 => "not authorized",
        0x88 => "server unavailable",
        0x89 => "server busy",
        0x8A => "banned",
        0x8B => "server shutting down",
        0x8C => "bad authentication method",
        0x8D => "keep alive timeout",
        0x8E => "session taken over",
        0x8F => "topic filter invalid",
        0x90 => "topic name invalid",
        0x91 => "packet identifier in use",
        0x92 => "packet identifier not found",
        0x93 => "receive maximum exceeded",
        0x94 => "topic alias invalid",
        0x95 => "packet too large",
        0x96 => "message rate too high",
        0x97 => "quota exceeded",
        0x98 => "administrative action",
        0x99 => "payload format invalid",
        0x9A => "retain not supported",
        0x9B => "QoS not supported",
        0x9C => "use another server",
        0x9D => "server moved",
        0x9E => "shared subscriptions not supported",
        0x9F => "connection rate exceeded",
        0xA0 => "maximum connect time",
        0xA1 => "subscription identifiers not supported",
        0xA2 => "wildcard subscriptions not supported",
        _ => "unknown reason",
    }
}

/// A malformed or oversized packet from the broker: the connection cannot continue.
#[derive(Debug, Clone)]
pub struct WireError(pub String);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chat_sub_takes_the_largest_packet_mqtt_can_express() {
        assert_eq!(crate::defaults::SUB_MAX_SIZE, super::MAX_PACKET);
    }

    use super::*;
    use bytes::BytesMut;

    #[test]
    fn publish_round_trips_through_rumqttc_in_both_versions() {
        for version in [Version::V311, Version::V5] {
            for (qos, payload_len) in [(0u8, 0usize), (1, 127), (2, 20_000), (1, 3_000_000)] {
                let payload = vec![b'x'; payload_len];
                let mut buf = BytesMut::new();
                let f = PubFlags {
                    qos,
                    retain: true,
                    dup: false,
                    pkid: 7,
                };
                encode_publish(version, &mut buf, b"a/b", &payload, &[], f);
                assert_eq!(buf.len(), publish_size(version, 3, payload_len, 0, qos));
                match decode(version, &mut buf, MAX_PACKET).unwrap() {
                    Some(Inbound::Publish(d)) => {
                        assert_eq!(&d.topic[..], b"a/b");
                        assert_eq!(d.payload.len(), payload_len);
                        assert_eq!((d.qos, d.retain), (qos, true));
                        assert_eq!(d.pkid, if qos > 0 { 7 } else { 0 });
                    }
                    other => panic!("{version:?}: {other:?}"),
                }
                assert!(buf.is_empty());
            }
        }
    }

    #[test]
    fn partial_packets_wait_for_more() {
        let mut full = BytesMut::new();
        let f = PubFlags {
            qos: 1,
            pkid: 1,
            ..PubFlags::default()
        };
        encode_publish(Version::V5, &mut full, b"t", b"hello", &[], f);
        let mut part = BytesMut::from(&full[..full.len() - 1]);
        assert!(
            decode(Version::V5, &mut part, MAX_PACKET)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_3_1_1_connack_answering_mqtt_5_is_a_version_refusal() {
        for (bytes, code) in [
            ([0x20u8, 2, 0, 1], 1),
            ([0x20, 2, 0, 0], 1),
            ([0x20, 2, 0, 5], 5),
        ] {
            let mut buf = BytesMut::from(&bytes[..]);
            match decode(Version::V5, &mut buf, MAX_PACKET) {
                Ok(Some(Inbound::ConnAck(Err(r)))) => {
                    assert_eq!(
                        r,
                        Refusal {
                            code,
                            version: Version::V311
                        }
                    );
                    assert_eq!(r.is_version(), code == 1);
                }
                other => panic!("{bytes:?}: {other:?}"),
            }
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn empty_v5_disconnect_is_normal() {
        let mut buf = BytesMut::from(&[0xE0u8, 0][..]);
        assert!(matches!(
            decode(Version::V5, &mut buf, MAX_PACKET),
            Ok(Some(Inbound::Disconnect { reason: 0 }))
        ));
    }

    #[test]
    fn a_v5_disconnect_with_or_without_its_property_length_says_its_reason() {
        for bytes in [&[0xE0u8, 1, 0x8B][..], &[0xE0, 2, 0x8B, 0]] {
            let mut buf = BytesMut::from(bytes);
            assert!(
                matches!(
                    decode(Version::V5, &mut buf, MAX_PACKET),
                    Ok(Some(Inbound::Disconnect { reason: 0x8B }))
                ),
                "{bytes:?}"
            );
            assert!(buf.is_empty(), "{bytes:?}");
        }
    }

    #[test]
    fn acks_decode_in_both_versions() {
        for version in [Version::V311, Version::V5] {
            for kind in [
                AckKind::PubAck,
                AckKind::PubRec,
                AckKind::PubRel,
                AckKind::PubComp,
            ] {
                let mut buf = BytesMut::new();
                encode_ack(kind, 513, &mut buf);
                match decode(version, &mut buf, MAX_PACKET).unwrap() {
                    Some(Inbound::Ack {
                        kind: k,
                        pkid,
                        reason,
                    }) => {
                        assert_eq!((k, pkid, reason), (kind, 513, 0))
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }
}

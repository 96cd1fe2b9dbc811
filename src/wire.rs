//! MQTT 3.1.1 and 5 packets behind one small vocabulary.
//!
//! rumqttc has two separate type families (`rumqttc::mqttbytes::v4` and
//! `rumqttc::v5::mqttbytes::v5`). Everything above this module speaks [`Inbound`] and the
//! `encode_*` functions, so the publish and subscribe loops are written once for both
//! protocol versions. Decoding and the rarely sent packets (CONNECT, SUBSCRIBE) use
//! rumqttc's codecs; the packets on the hot path (PUBLISH and its acknowledgements, PING,
//! DISCONNECT) are a few bytes each and are written here directly, without building
//! rumqttc structs (and a `String` topic) per message.

use bytes::{BufMut, Bytes, BytesMut};
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

/// The MQTT protocol level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4), what `-V 3` selects.
    V311,
    /// MQTT 5.
    V5,
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

/// The four acknowledgements of QoS 1 and 2.
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
    /// A packet a client does not expect (e.g. CONNECT, AUTH); names its type.
    Unexpected(&'static str),
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

/// Takes the next whole packet out of `buf`; `Ok(None)` when more bytes are needed.
pub fn decode(
    version: Version,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Inbound>, WireError> {
    match version {
        Version::V311 => match v4::Packet::read(buf, max) {
            Ok(p) => Ok(Some(from_v4(p))),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(WireError(format!("bad packet from the broker: {e}"))),
        },
        Version::V5 => {
            // rumqttc 0.25.1 rejects a DISCONNECT without a body (PayloadRequired), which
            // MQTT 5 allows for reason 0x00: take those two bytes here.
            if buf.len() >= 2 && buf[0] == 0xE0 && buf[1] == 0 {
                let _ = buf.split_to(2);
                return Ok(Some(Inbound::Disconnect { reason: 0 }));
            }
            let limit = u32::try_from(max).unwrap_or(u32::MAX);
            match v5::Packet::read(buf, Some(limit)) {
                Ok(p) => Ok(Some(from_v5(p))),
                Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
                Err(e) => Err(WireError(format!("bad packet from the broker: {e}"))),
            }
        }
    }
}

fn from_v4(p: v4::Packet) -> Inbound {
    use v4::Packet as P;
    let ack = |kind, pkid| Inbound::Ack {
        kind,
        pkid,
        reason: 0,
    };
    match p {
        P::ConnAck(c) => Inbound::ConnAck(match c.code {
            v4::ConnectReturnCode::Success => Ok(ConnAckInfo {
                session_present: c.session_present,
                ..ConnAckInfo::default()
            }),
            code => Err(Refusal {
                code: code as u8,
                version: Version::V311,
            }),
        }),
        P::Publish(p) => Inbound::Publish(Delivery {
            topic: Bytes::from(p.topic),
            payload: p.payload,
            qos: p.qos as u8,
            retain: p.retain,
            dup: p.dup,
            pkid: p.pkid,
        }),
        P::PubAck(a) => ack(AckKind::PubAck, a.pkid),
        P::PubRec(a) => ack(AckKind::PubRec, a.pkid),
        P::PubRel(a) => ack(AckKind::PubRel, a.pkid),
        P::PubComp(a) => ack(AckKind::PubComp, a.pkid),
        P::SubAck(s) => Inbound::SubAck {
            pkid: s.pkid,
            codes: s
                .return_codes
                .iter()
                .map(|c| match c {
                    v4::SubscribeReasonCode::Success(q) => *q as u8,
                    v4::SubscribeReasonCode::Failure => 0x80,
                })
                .collect(),
        },
        P::PingResp => Inbound::PingResp,
        P::Disconnect => Inbound::Disconnect { reason: 0 },
        P::Connect(_) => Inbound::Unexpected("CONNECT"),
        P::Subscribe(_) => Inbound::Unexpected("SUBSCRIBE"),
        P::Unsubscribe(_) => Inbound::Unexpected("UNSUBSCRIBE"),
        P::UnsubAck(_) => Inbound::Unexpected("UNSUBACK"),
        P::PingReq => Inbound::Unexpected("PINGREQ"),
    }
}

fn from_v5(p: v5::Packet) -> Inbound {
    use v5::Packet as P;
    match p {
        P::ConnAck(c) => Inbound::ConnAck(connack_v5(c)),
        P::Publish(p) => Inbound::Publish(Delivery {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos as u8,
            retain: p.retain,
            dup: p.dup,
            pkid: p.pkid,
        }),
        P::PubAck(a) => Inbound::Ack {
            kind: AckKind::PubAck,
            pkid: a.pkid,
            reason: pub_reason(&a.reason),
        },
        P::PubRec(a) => Inbound::Ack {
            kind: AckKind::PubRec,
            pkid: a.pkid,
            reason: pubrec_reason(&a.reason),
        },
        P::PubRel(a) => Inbound::Ack {
            kind: AckKind::PubRel,
            pkid: a.pkid,
            reason: match a.reason {
                v5::PubRelReason::Success => 0,
                v5::PubRelReason::PacketIdentifierNotFound => 0x92,
            },
        },
        P::PubComp(a) => Inbound::Ack {
            kind: AckKind::PubComp,
            pkid: a.pkid,
            reason: match a.reason {
                v5::PubCompReason::Success => 0,
                v5::PubCompReason::PacketIdentifierNotFound => 0x92,
            },
        },
        P::SubAck(s) => Inbound::SubAck {
            pkid: s.pkid,
            codes: s.return_codes.iter().map(suback_code).collect(),
        },
        P::PingResp(_) => Inbound::PingResp,
        P::Disconnect(d) => Inbound::Disconnect {
            reason: d.reason_code as u8,
        },
        P::Auth(_) => Inbound::Unexpected("AUTH"),
        P::Connect(..) => Inbound::Unexpected("CONNECT"),
        P::Subscribe(_) => Inbound::Unexpected("SUBSCRIBE"),
        P::Unsubscribe(_) => Inbound::Unexpected("UNSUBSCRIBE"),
        P::UnsubAck(_) => Inbound::Unexpected("UNSUBACK"),
        P::PingReq(_) => Inbound::Unexpected("PINGREQ"),
    }
}

fn connack_v5(c: v5::ConnAck) -> Result<ConnAckInfo, Refusal> {
    use v5::ConnectReturnCode as C;
    let code = match c.code {
        C::Success => {
            let props = c.properties.unwrap_or_default_props();
            return Ok(ConnAckInfo {
                session_present: c.session_present,
                receive_max: props.receive_max,
                max_packet_size: props.max_packet_size,
                max_qos: props.max_qos,
                assigned_client_id: props.assigned_client_identifier,
            });
        }
        C::RefusedProtocolVersion => 0x84,
        C::BadClientId => 0x85,
        C::ServiceUnavailable => 0x88,
        C::UnspecifiedError => 0x80,
        C::MalformedPacket => 0x81,
        C::ProtocolError => 0x82,
        C::ImplementationSpecificError => 0x83,
        C::UnsupportedProtocolVersion => 0x84,
        C::ClientIdentifierNotValid => 0x85,
        C::BadUserNamePassword => 0x86,
        C::NotAuthorized => 0x87,
        C::ServerUnavailable => 0x88,
        C::ServerBusy => 0x89,
        C::Banned => 0x8A,
        C::BadAuthenticationMethod => 0x8C,
        C::TopicNameInvalid => 0x90,
        C::PacketTooLarge => 0x95,
        C::QuotaExceeded => 0x97,
        C::PayloadFormatInvalid => 0x99,
        C::RetainNotSupported => 0x9A,
        C::QoSNotSupported => 0x9B,
        C::UseAnotherServer => 0x9C,
        C::ServerMoved => 0x9D,
        C::ConnectionRateExceeded => 0x9F,
    };
    Err(Refusal {
        code,
        version: Version::V5,
    })
}

/// `Option<ConnAckProperties>` → the properties, or all-absent ones.
trait PropsOrDefault {
    fn unwrap_or_default_props(self) -> v5::ConnAckProperties;
}

impl PropsOrDefault for Option<v5::ConnAckProperties> {
    fn unwrap_or_default_props(self) -> v5::ConnAckProperties {
        self.unwrap_or(v5::ConnAckProperties {
            session_expiry_interval: None,
            receive_max: None,
            max_qos: None,
            retain_available: None,
            max_packet_size: None,
            assigned_client_identifier: None,
            topic_alias_max: None,
            reason_string: None,
            user_properties: Vec::new(),
            wildcard_subscription_available: None,
            subscription_identifiers_available: None,
            shared_subscription_available: None,
            server_keep_alive: None,
            response_information: None,
            server_reference: None,
            authentication_method: None,
            authentication_data: None,
        })
    }
}

fn pub_reason(r: &v5::PubAckReason) -> u8 {
    use v5::PubAckReason as R;
    match r {
        R::Success => 0,
        R::NoMatchingSubscribers => 0x10,
        R::UnspecifiedError => 0x80,
        R::ImplementationSpecificError => 0x83,
        R::NotAuthorized => 0x87,
        R::TopicNameInvalid => 0x90,
        R::PacketIdentifierInUse => 0x91,
        R::QuotaExceeded => 0x97,
        R::PayloadFormatInvalid => 0x99,
    }
}

fn pubrec_reason(r: &v5::PubRecReason) -> u8 {
    use v5::PubRecReason as R;
    match r {
        R::Success => 0,
        R::NoMatchingSubscribers => 0x10,
        R::UnspecifiedError => 0x80,
        R::ImplementationSpecificError => 0x83,
        R::NotAuthorized => 0x87,
        R::TopicNameInvalid => 0x90,
        R::PacketIdentifierInUse => 0x91,
        R::QuotaExceeded => 0x97,
        R::PayloadFormatInvalid => 0x99,
    }
}

fn suback_code(c: &v5::SubscribeReasonCode) -> u8 {
    use v5::SubscribeReasonCode as S;
    match c {
        S::Success(q) => *q as u8,
        S::Failure | S::Unspecified => 0x80,
        S::ImplementationSpecific => 0x83,
        S::NotAuthorized => 0x87,
        S::TopicFilterInvalid => 0x8F,
        S::PkidInUse => 0x91,
        S::QuotaExceeded => 0x97,
        S::SharedSubscriptionsNotSupported => 0x9E,
        S::SubscriptionIdNotSupported => 0xA1,
        S::WildcardSubscriptionsNotSupported => 0xA2,
    }
}

fn qos_of(q: u8) -> rumqttc::mqttbytes::QoS {
    match q {
        0 => rumqttc::mqttbytes::QoS::AtMostOnce,
        1 => rumqttc::mqttbytes::QoS::AtLeastOnce,
        _ => rumqttc::mqttbytes::QoS::ExactlyOnce,
    }
}

fn v5_qos(q: u8) -> rumqttc::v5::mqttbytes::QoS {
    match q {
        0 => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        1 => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        _ => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
    }
}

/// Appends a CONNECT packet.
pub fn encode_connect(version: Version, spec: &ConnectSpec, out: &mut BytesMut) {
    let written = match version {
        Version::V311 => {
            let mut c = v4::Connect::new(spec.client_id.clone());
            c.keep_alive = spec.keepalive;
            c.clean_session = spec.clean_start;
            v4::Packet::Connect(c)
                .write(out, MAX_PACKET)
                .map_err(|e| e.to_string())
        }
        Version::V5 => {
            let mut props = v5::ConnectProperties::new();
            props.session_expiry_interval = spec.session_expiry;
            props.max_packet_size = Some(spec.max_packet_in);
            let c = v5::Connect {
                keep_alive: spec.keepalive,
                client_id: spec.client_id.clone(),
                clean_start: spec.clean_start,
                properties: Some(props),
            };
            v5::Packet::Connect(c, None, None)
                .write(out, None)
                .map_err(|e| e.to_string())
        }
    };
    // Writing into a growable buffer cannot fail for packets we build ourselves.
    debug_assert!(written.is_ok(), "{written:?}");
}

/// Appends a SUBSCRIBE for `filters`, all at `qos`.
pub fn encode_subscribe(
    version: Version,
    pkid: u16,
    filters: &[String],
    qos: u8,
    out: &mut BytesMut,
) {
    let written = match version {
        Version::V311 => {
            let mut s = v4::Subscribe::new_many(
                filters
                    .iter()
                    .map(|f| v4::SubscribeFilter::new(f.clone(), qos_of(qos))),
            );
            s.pkid = pkid;
            v4::Packet::Subscribe(s)
                .write(out, MAX_PACKET)
                .map_err(|e| e.to_string())
        }
        Version::V5 => {
            let mut s = v5::Subscribe::new_many(
                filters
                    .iter()
                    .map(|f| v5::Filter::new(f.clone(), v5_qos(qos))),
                None,
            );
            s.pkid = pkid;
            v5::Packet::Subscribe(s)
                .write(out, None)
                .map_err(|e| e.to_string())
        }
    };
    debug_assert!(written.is_ok(), "{written:?}");
}

/// The size of a PUBLISH packet with this topic and payload (to check against limits).
pub fn publish_size(version: Version, topic_len: usize, payload_len: usize, qos: u8) -> usize {
    let mut len = 2 + topic_len + payload_len;
    if qos > 0 {
        len += 2;
    }
    if version == Version::V5 {
        len += 1; // empty property list
    }
    1 + remaining_length_len(len) + len
}

/// The fixed-header flags and packet id of a PUBLISH.
#[derive(Debug, Clone, Copy, Default)]
pub struct PubFlags {
    pub qos: u8,
    pub retain: bool,
    /// Set when sending again a message the broker may have seen (same packet id).
    pub dup: bool,
    /// Ignored at QoS 0.
    pub pkid: u16,
}

/// Appends a PUBLISH packet.
pub fn encode_publish(
    version: Version,
    out: &mut BytesMut,
    topic: &[u8],
    payload: &[u8],
    f: PubFlags,
) {
    let PubFlags {
        qos,
        retain,
        dup,
        pkid,
    } = f;
    let mut len = 2 + topic.len() + payload.len();
    if qos > 0 {
        len += 2;
    }
    if version == Version::V5 {
        len += 1;
    }
    out.reserve(len + 5);
    out.put_u8(0x30 | (u8::from(dup) << 3) | (qos << 1) | u8::from(retain));
    put_remaining_length(out, len);
    out.put_u16(topic.len() as u16);
    out.put_slice(topic);
    if qos > 0 {
        out.put_u16(pkid);
    }
    if version == Version::V5 {
        out.put_u8(0);
    }
    out.put_slice(payload);
}

/// Appends PUBACK, PUBREC, PUBREL or PUBCOMP with success.
pub fn encode_ack(kind: AckKind, pkid: u16, out: &mut BytesMut) {
    let first = match kind {
        AckKind::PubAck => 0x40,
        AckKind::PubRec => 0x50,
        AckKind::PubRel => 0x62,
        AckKind::PubComp => 0x70,
    };
    // Remaining length 2 means "success, no properties" in both versions.
    out.put_slice(&[first, 2]);
    out.put_u16(pkid);
}

/// Appends PINGREQ.
pub fn encode_ping(out: &mut BytesMut) {
    out.put_slice(&[0xC0, 0]);
}

/// Appends DISCONNECT (normal disconnection; the will is not sent).
pub fn encode_disconnect(out: &mut BytesMut) {
    out.put_slice(&[0xE0, 0]);
}

fn remaining_length_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

fn put_remaining_length(out: &mut BytesMut, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.put_u8(byte);
        if len == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                encode_publish(version, &mut buf, b"a/b", &payload, f);
                assert_eq!(buf.len(), publish_size(version, 3, payload_len, qos));
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
        encode_publish(Version::V5, &mut full, b"t", b"hello", f);
        let mut part = BytesMut::from(&full[..full.len() - 1]);
        assert!(
            decode(Version::V5, &mut part, MAX_PACKET)
                .unwrap()
                .is_none()
        );
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

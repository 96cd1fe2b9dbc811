//! Packets from the broker: rumqttc's 3.1.1 and 5 decoders, mapped to [`Inbound`].

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

use super::{AckKind, ConnAckInfo, Delivery, Inbound, Refusal, Version, WireError};

/// What the start of the read buffer holds, before decoding.
#[derive(Debug)]
pub enum Peek {
    /// Not enough bytes to tell yet.
    NeedMore,
    /// A packet within the size limit (or not a PUBLISH): decode it.
    Fits,
    /// A PUBLISH of `size` bytes, more than the limit: skip that many bytes.
    Oversized(Delivery, usize),
}

/// Looks for a PUBLISH bigger than `max` at the start of `buf`, reading only its header
/// (type, length, topic, packet id), so that it can be skipped without buffering it.
pub fn peek_oversized(buf: &[u8], max: usize) -> Peek {
    let (Some(&first), Some((at, len))) = (buf.first(), fixed_header(buf)) else {
        return Peek::NeedMore;
    };
    let size = at + len;
    if first >> 4 != 3 || size <= max {
        return Peek::Fits;
    }
    let qos = (first >> 1) & 3;
    let Some(topic_len) = buf
        .get(at..at + 2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    else {
        return Peek::NeedMore;
    };
    let topic_end = at + 2 + topic_len;
    let pkid_end = topic_end + if qos > 0 { 2 } else { 0 };
    if buf.len() < pkid_end {
        return Peek::NeedMore;
    }
    let pkid = match qos {
        0 => 0,
        _ => u16::from_be_bytes([buf[topic_end], buf[topic_end + 1]]),
    };
    let delivery = Delivery {
        topic: Bytes::copy_from_slice(&buf[at + 2..topic_end]),
        payload: Bytes::new(),
        qos,
        retain: first & 1 == 1,
        dup: first & 8 == 8,
        pkid,
        properties: None,
    };
    Peek::Oversized(delivery, size)
}

/// The fixed header at the start of `buf`: its length (2 to 5 bytes) and the remaining
/// length it announces; None until all of it has arrived. A length whose fourth byte
/// still says "more" ends there (the decoder then reports the packet as malformed).
///
/// The one reader of MQTT's remaining length written here: everything else is framed by
/// rumqttc (`check`, `Packet::read`). But rumqttc frames only whole packets and keeps the
/// header's length to itself (its `FixedHeader` gives the frame's length alone), and an
/// oversized PUBLISH must be known, and its topic and packet id read, before its body
/// arrives: it is skipped as it comes in, never buffered.
pub(crate) fn fixed_header(buf: &[u8]) -> Option<(usize, usize)> {
    let mut len = 0;
    for (i, &b) in buf.iter().enumerate().take(5).skip(1) {
        len |= usize::from(b & 0x7f) << (7 * (i - 1));
        if b & 0x80 == 0 || i == 4 {
            return Some((i + 1, len));
        }
    }
    None
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
            // Nor one with a reason code and no property length (remaining length 1,
            // which MQTT 5 §3.14.2.2.1 allows): rumqttc waits for bytes that never come.
            if buf.len() >= 3 && buf[0] == 0xE0 && buf[1] == 1 {
                let packet = buf.split_to(3);
                return Ok(Some(Inbound::Disconnect { reason: packet[2] }));
            }
            // A CONNACK of remaining length 2 is a 3.1.1 one (an MQTT 5 CONNACK has at
            // least 3 bytes: flags, reason, properties): a broker that speaks only 3.1.1
            // answering our MQTT 5 CONNECT (NATS, aedes, amqtt send return code 1).
            if buf.len() >= 4 && buf[0] == 0x20 && buf[1] == 2 {
                let packet = buf.split_to(4);
                return Ok(Some(Inbound::ConnAck(Err(Refusal {
                    // Accepting the connection in 3.1.1 still means it speaks no MQTT 5.
                    code: packet[3].max(1),
                    version: Version::V311,
                }))));
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
            properties: None,
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
            properties: p.properties.and_then(super::Properties::received),
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

/// The reason code of a PUBACK or PUBREC (two rumqttc enums with the same variants).
macro_rules! ack_reason {
    ($r:expr, $t:ident) => {{
        use v5::$t as R;
        match $r {
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
    }};
}

fn pub_reason(r: &v5::PubAckReason) -> u8 {
    ack_reason!(r, PubAckReason)
}

fn pubrec_reason(r: &v5::PubRecReason) -> u8 {
    ack_reason!(r, PubRecReason)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::wire::{PubFlags, encode_publish};

    #[test]
    fn fixed_headers_are_read_as_rumqttc_frames_them() {
        assert_eq!(fixed_header(&[0x30]), None);
        assert_eq!(fixed_header(&[0x30, 0x80]), None);
        assert_eq!(fixed_header(&[0x30, 0x05]), Some((2, 5)));
        assert_eq!(fixed_header(&[0x30, 0x80, 0x01]), Some((3, 128)));
        let max = [0x30, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(fixed_header(&max), Some((5, 268_435_455)));
        assert_eq!(
            fixed_header(&[0x30, 0xff, 0xff, 0xff, 0xff]),
            Some((5, 268_435_455))
        );
        for payload_len in [0, 100, 127, 20_000, 3_000_000] {
            let mut buf = BytesMut::new();
            let f = PubFlags::default();
            encode_publish(Version::V5, &mut buf, b"t", &vec![0; payload_len], &[], f);
            let header = rumqttc::mqttbytes::check(buf.iter(), usize::MAX).unwrap();
            let (at, len) = fixed_header(&buf).unwrap();
            assert_eq!(at + len, header.frame_length());
        }
    }

    #[test]
    fn an_oversized_publish_is_known_from_its_first_bytes() {
        let mut buf = BytesMut::new();
        let f = PubFlags {
            qos: 1,
            retain: true,
            dup: true,
            pkid: 9,
        };
        encode_publish(Version::V311, &mut buf, b"a/b", &[b'x'; 5000], &[], f);
        let size = buf.len();
        // Type, 2 bytes of remaining length, topic length, topic, packet id: 10 bytes.
        assert!(matches!(peek_oversized(&buf[..1], 1000), Peek::NeedMore));
        assert!(matches!(peek_oversized(&buf[..9], 1000), Peek::NeedMore));
        match peek_oversized(&buf[..10], 1000) {
            Peek::Oversized(d, n) => {
                assert_eq!(n, size);
                assert_eq!(&d.topic[..], b"a/b");
                assert_eq!((d.qos, d.retain, d.dup, d.pkid), (1, true, true, 9));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(peek_oversized(&buf[..10], size), Peek::Fits));
        assert!(matches!(peek_oversized(&[0x40, 2], 1), Peek::Fits));
    }
}

//! The engine's answers, written for the client's protocol version: rumqttc's writers
//! for CONNACK and PUBLISH, by hand for the small fixed packets (acknowledgements,
//! SUBACK, UNSUBACK, PINGRESP, DISCONNECT).

use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use rumqttc::mqttbytes::{QoS as Qos4, v4};
use rumqttc::v5::mqttbytes::{QoS as Qos5, v5};

use super::codec::{Message, Props, Version};
use crate::mqtt::wire::put_remaining_length;

/// How many topic aliases an MQTT 5 client may set up.
pub const TOPIC_ALIAS_MAX: u16 = 64;

/// CONNACK: `code` is the MQTT 5 reason code (0 accepts), written as the nearest 3.1.1
/// return code for a 3.1.1 client.
pub fn connack(v: Version, session_present: bool, code: u8, assigned: Option<&str>) -> Bytes {
    if v == Version::V311 {
        let rc = match code {
            0 => 0,
            0x84 => 1,
            0x85 => 2,
            0x86 => 4,
            0x87 => 5,
            _ => 3,
        };
        return Bytes::copy_from_slice(&[0x20, 2, session_present as u8, rc]);
    }
    let props = match code {
        0 => Some(v5::ConnAckProperties {
            session_expiry_interval: None,
            receive_max: None,
            max_qos: None,
            retain_available: None,
            max_packet_size: Some(super::MAX_PACKET as u32),
            assigned_client_identifier: assigned.map(str::to_string),
            topic_alias_max: Some(TOPIC_ALIAS_MAX),
            reason_string: None,
            user_properties: Vec::new(),
            wildcard_subscription_available: None,
            subscription_identifiers_available: None,
            shared_subscription_available: Some(0),
            server_keep_alive: None,
            response_information: None,
            server_reference: None,
            authentication_method: None,
            authentication_data: None,
        }),
        _ => None,
    };
    let mut b = BytesMut::new();
    let ack = v5::ConnAck {
        session_present,
        code: connect_code(code),
        properties: props,
    };
    // Writing into a growable buffer cannot fail.
    let _ = ack.write(&mut b);
    b.freeze()
}

fn connect_code(code: u8) -> v5::ConnectReturnCode {
    use v5::ConnectReturnCode as C;
    match code {
        0 => C::Success,
        0x82 => C::ProtocolError,
        0x84 => C::UnsupportedProtocolVersion,
        0x85 => C::ClientIdentifierNotValid,
        0x8C => C::BadAuthenticationMethod,
        0x90 => C::TopicNameInvalid,
        _ => C::UnspecifiedError,
    }
}

/// PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70), reason code success.
pub fn ack(kind: u8, pkid: u16) -> Bytes {
    let [hi, lo] = pkid.to_be_bytes();
    Bytes::copy_from_slice(&[kind, 2, hi, lo])
}

pub const PUBACK: u8 = 0x40;
pub const PUBREC: u8 = 0x50;
pub const PUBREL: u8 = 0x62;
pub const PUBCOMP: u8 = 0x70;

/// SUBACK (0x90) or UNSUBACK (0xB0) with one reason code per filter (UNSUBACK has them
/// under MQTT 5 only).
pub fn suback(kind: u8, v: Version, pkid: u16, codes: &[u8]) -> Bytes {
    let codes = match (kind, v) {
        (0xB0, Version::V311) => &[][..],
        _ => codes,
    };
    let props = (v == Version::V5) as usize;
    let mut b = BytesMut::with_capacity(8 + codes.len());
    b.put_u8(kind);
    put_remaining_length(&mut b, 2 + props + codes.len());
    b.put_u16(pkid);
    if props == 1 {
        b.put_u8(0);
    }
    b.put_slice(codes);
    b.freeze()
}

pub fn pingresp() -> Bytes {
    Bytes::from_static(&[0xD0, 0])
}

/// An MQTT 5 DISCONNECT with a reason code (3.1.1 has none: the connection just closes).
pub fn disconnect(v: Version, reason: u8) -> Option<Bytes> {
    (v == Version::V5).then(|| Bytes::copy_from_slice(&[0xE0, 1, reason]))
}

/// How one subscriber gets a message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Form<'a> {
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    pub pkid: u16,
    pub sub_ids: &'a [usize],
    /// The time, for what is left of an MQTT 5 message expiry interval.
    pub now: Instant,
}

/// A packet as it is written: its head, and for a PUBLISH the payload, which every copy
/// of a message shares rather than copies.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frame {
    pub head: Bytes,
    pub body: Bytes,
}

impl Frame {
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// Whether it is a PUBLISH at QoS 0 (type 3, QoS bits 0): one that may be dropped.
    pub fn is_qos0_publish(&self) -> bool {
        self.head.first().is_some_and(|b| b & 0xF6 == 0x30)
    }

    /// The whole packet in one buffer (for the tests).
    #[cfg(test)]
    pub fn to_bytes(&self) -> Bytes {
        [&self.head[..], &self.body[..]].concat().into()
    }
}

impl From<Bytes> for Frame {
    fn from(head: Bytes) -> Frame {
        Frame {
            head,
            body: Bytes::new(),
        }
    }
}

/// A PUBLISH of `msg` for a client of version `v`. rumqttc writes it without the
/// payload; the remaining length is then written again to count the payload too.
///
/// A message with an MQTT 5 expiry interval carries what is left of it, and is not
/// written once it expired (`None`) unless it is sent again (`dup`), its delivery begun.
pub fn publish(v: Version, msg: &Message, f: Form) -> Option<Frame> {
    let left = match msg.expires {
        Some(at) if at <= f.now && !f.dup => return None,
        // Whole seconds, rounded up: a message is never sent with less than it has.
        Some(at) => Some(
            at.saturating_duration_since(f.now)
                .as_secs_f64()
                .ceil()
                .max(1.0) as u32,
        ),
        None => None,
    };
    let mut b = BytesMut::with_capacity(msg.topic.len() + 16);
    match v {
        Version::V311 => {
            let p = v4::Publish {
                dup: f.dup,
                qos: qos4(f.qos),
                retain: f.retain,
                topic: msg.topic.clone(),
                pkid: f.pkid,
                payload: Bytes::new(),
            };
            let _ = p.write(&mut b);
        }
        Version::V5 => {
            let mut props = msg.props.as_deref().cloned();
            if let (Some(p), Some(left)) = (&mut props, left) {
                p.message_expiry_interval = Some(left);
            }
            if !f.sub_ids.is_empty() {
                props
                    .get_or_insert_with(Props::default)
                    .subscription_identifiers = f.sub_ids.to_vec();
            }
            let p = v5::Publish {
                dup: f.dup,
                qos: qos5(f.qos),
                retain: f.retain,
                topic: Bytes::copy_from_slice(msg.topic.as_bytes()),
                pkid: f.pkid,
                payload: Bytes::new(),
                properties: props,
            };
            let _ = p.write(&mut b);
        }
    }
    let rest = b.split_off(super::codec::header_len(&b));
    let mut head = BytesMut::with_capacity(rest.len() + 5);
    head.put_u8(b[0]);
    put_remaining_length(&mut head, rest.len() + msg.payload.len());
    head.extend_from_slice(&rest);
    Some(Frame {
        head: head.freeze(),
        body: msg.payload.clone(),
    })
}

fn qos4(q: u8) -> Qos4 {
    match q {
        0 => Qos4::AtMostOnce,
        1 => Qos4::AtLeastOnce,
        _ => Qos4::ExactlyOnce,
    }
}

fn qos5(q: u8) -> Qos5 {
    match q {
        0 => Qos5::AtMostOnce,
        1 => Qos5::AtLeastOnce,
        _ => Qos5::ExactlyOnce,
    }
}

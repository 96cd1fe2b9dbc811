//! The engine's answers, written for the client's protocol version: rumqttc's writers
//! for CONNACK and PUBLISH, by hand for the small fixed packets (acknowledgements,
//! SUBACK, UNSUBACK, PINGRESP, DISCONNECT).

use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use rumqttc::mqttbytes::{QoS as Qos4, v4};
use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode;
use rumqttc::v5::mqttbytes::{QoS as Qos5, v5};

use super::codec::{Message, Props, Version};
use super::codes::{ConnectRefusal, Packet, SubAckCode, Unsubscribed};
use crate::mqtt::wire::put_remaining_length;

/// How many topic aliases an MQTT 5 client may set up.
pub const TOPIC_ALIAS_MAX: u16 = 64;

/// CONNACK: accepted (`refused` None, with the session present or not, and an assigned
/// client id), or refused, in the client's version; None for a refusal that MQTT 3.1.1
/// has no return code for (the connection just closes).
pub fn connack(
    v: Version,
    session_present: bool,
    refused: Option<ConnectRefusal>,
    assigned: Option<&str>,
) -> Option<Bytes> {
    if v == Version::V311 {
        let rc = refused.map_or(Some(0), ConnectRefusal::v311)?;
        let head = Packet::ConnAck as u8;
        return Some(Bytes::copy_from_slice(&[
            head,
            2,
            session_present as u8,
            rc,
        ]));
    }
    let props = match refused {
        None => Some(v5::ConnAckProperties {
            session_expiry_interval: None,
            receive_max: None,
            max_qos: None,
            retain_available: None,
            max_packet_size: Some(super::BROKER_MAX_PACKET as u32),
            assigned_client_identifier: assigned.map(str::to_string),
            topic_alias_max: Some(TOPIC_ALIAS_MAX),
            reason_string: None,
            user_properties: Vec::new(),
            wildcard_subscription_available: None,
            subscription_identifiers_available: None,
            shared_subscription_available: Some(1),
            server_keep_alive: None,
            response_information: None,
            server_reference: None,
            authentication_method: None,
            authentication_data: None,
        }),
        Some(_) => None,
    };
    let mut b = BytesMut::new();
    let ack = v5::ConnAck {
        session_present,
        code: refused.map_or(v5::ConnectReturnCode::Success, ConnectRefusal::v5),
        properties: props,
    };
    // Writing into a growable buffer cannot fail.
    let _ = ack.write(&mut b);
    Some(b.freeze())
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP (`kind`), reason code success.
pub fn ack(kind: Packet, pkid: u16) -> Bytes {
    let [hi, lo] = pkid.to_be_bytes();
    Bytes::copy_from_slice(&[kind as u8, 2, hi, lo])
}

/// MQTT 5 PUBACK or PUBREC that refuses the message with `reason` (and no properties).
pub fn refusal(kind: Packet, pkid: u16, reason: u8) -> Bytes {
    let [hi, lo] = pkid.to_be_bytes();
    Bytes::copy_from_slice(&[kind as u8, 4, hi, lo, reason, 0])
}

/// SUBACK with one code per filter.
pub fn suback(v: Version, pkid: u16, codes: &[SubAckCode]) -> Bytes {
    let codes: Vec<u8> = codes.iter().map(|c| c.byte(v)).collect();
    acks_per_filter(Packet::SubAck, v, pkid, &codes)
}

/// UNSUBACK, with one code per filter under MQTT 5 (3.1.1's has none).
pub fn unsuback(v: Version, pkid: u16, codes: &[Unsubscribed]) -> Bytes {
    let codes: Vec<u8> = match v {
        Version::V311 => Vec::new(),
        Version::V5 => codes.iter().map(|&c| c as u8).collect(),
    };
    acks_per_filter(Packet::UnsubAck, v, pkid, &codes)
}

fn acks_per_filter(kind: Packet, v: Version, pkid: u16, codes: &[u8]) -> Bytes {
    let props = (v == Version::V5) as usize;
    let mut b = BytesMut::with_capacity(8 + codes.len());
    b.put_u8(kind as u8);
    put_remaining_length(&mut b, 2 + props + codes.len());
    b.put_u16(pkid);
    if props == 1 {
        b.put_u8(0);
    }
    b.put_slice(codes);
    b.freeze()
}

pub fn pingresp() -> Bytes {
    Bytes::from_static(&[Packet::PingResp as u8, 0])
}

/// An MQTT 5 DISCONNECT with a reason code (3.1.1 has none: the connection just closes).
/// With an empty property list written out: MQTT 5 lets it be left out after the reason
/// code, but some clients' decoders (rumqttc 0.25) then wait for it.
pub fn disconnect(v: Version, reason: DisconnectReasonCode) -> Option<Bytes> {
    let head = Packet::Disconnect as u8;
    (v == Version::V5).then(|| Bytes::copy_from_slice(&[head, 2, reason as u8, 0]))
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
        // The type and QoS bits: DUP (0x08) and RETAIN (0x01) do not matter.
        const TYPE_AND_QOS: u8 = 0xF6;
        (self.head.first()).is_some_and(|b| b & TYPE_AND_QOS == Packet::Publish as u8)
    }

    /// The whole packet in one buffer (for the tests and the fuzz targets).
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

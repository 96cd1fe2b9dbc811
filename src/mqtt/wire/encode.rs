//! Packets to the broker. CONNECT and SUBSCRIBE go through rumqttc's encoders; PUBLISH,
//! the acknowledgements, PINGREQ and DISCONNECT are written here byte by byte (they are
//! the hot path, and identical in both versions but for one property-length byte).

use bytes::{BufMut, BytesMut};
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

use super::{AckKind, ConnectSpec, MAX_PACKET, Version};

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
            if let Some((user, pass)) = login_parts(spec) {
                c.set_login(user, pass);
            }
            c.last_will = spec.will.as_ref().map(|w| {
                v4::LastWill::new(w.topic.clone(), w.payload.clone(), qos_of(w.qos), w.retain)
            });
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
            let login = login_parts(spec).map(|(u, p)| v5::Login::new(u, p));
            let will = spec.will.as_ref().map(|w| {
                v5::LastWill::new(
                    w.topic.clone(),
                    w.payload.clone(),
                    v5_qos(w.qos),
                    w.retain,
                    None,
                )
            });
            v5::Packet::Connect(c, will, login)
                .write(out, None)
                .map_err(|e| e.to_string())
        }
    };
    // Writing into a growable buffer cannot fail for packets we build ourselves.
    debug_assert!(written.is_ok(), "{written:?}");
}

/// User name and password as rumqttc's encoders take them (an empty password is sent as
/// no password: rumqttc cannot express an empty one).
fn login_parts(spec: &ConnectSpec) -> Option<(&str, &str)> {
    spec.login.as_ref().map(|l| {
        let pass = l.password.as_ref().map_or("", |p| p.expose());
        (l.username.as_str(), pass)
    })
}

/// Appends a SUBSCRIBE for `filters`, all at `qos`; under MQTT 5 `no_local` asks the broker
/// not to send back what this connection publishes.
pub fn encode_subscribe(
    version: Version,
    pkid: u16,
    filters: &[String],
    qos: u8,
    no_local: bool,
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
                filters.iter().map(|f| {
                    let mut filter = v5::Filter::new(f.clone(), v5_qos(qos));
                    filter.nolocal = no_local;
                    filter
                }),
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
/// `props_len` is the length of the encoded properties (0 for none; always 0 under 3.1.1).
pub fn publish_size(
    version: Version,
    topic_len: usize,
    payload_len: usize,
    props_len: usize,
    qos: u8,
) -> usize {
    let mut len = 2 + topic_len + payload_len;
    if qos > 0 {
        len += 2;
    }
    if version == Version::V5 {
        len += remaining_length_len(props_len) + props_len;
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

/// Appends a PUBLISH packet. `props` is the encoded property list without its length
/// ([`Properties::encode`](super::Properties::encode)); MQTT 3.1.1 has none, so it must
/// then be empty.
pub fn encode_publish(
    version: Version,
    out: &mut BytesMut,
    topic: &[u8],
    payload: &[u8],
    props: &[u8],
    f: PubFlags,
) {
    debug_assert!(version == Version::V5 || props.is_empty());
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
        len += remaining_length_len(props.len()) + props.len();
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
        put_remaining_length(out, props.len());
        out.put_slice(props);
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

pub(crate) fn put_remaining_length(out: &mut BytesMut, mut len: usize) {
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

//! Packets in and out of the engine, MQTT 3.1.1 and 5 alike.
//!
//! rumqttc's codecs read the packets; this module turns both versions into one form
//! ([`In`]) for the engine. `write` has the other direction.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::{self, v4};
use rumqttc::v5::mqttbytes::v5;

use super::codes::{ConnectRefusal, Packet};
pub use crate::broker::auth::Login;

/// The first byte of a DISCONNECT, read by hand where rumqttc would refuse it.
const DISCONNECT: u8 = Packet::Disconnect as u8;

pub use v5::PublishProperties as Props;

/// The protocol version of a connection: the clients' vocabulary (MQTT 3.1.1 is
/// protocol level 4 on the wire).
pub use crate::mqtt::wire::Version;

/// An application message as it is routed: the same for every subscriber.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// MQTT 5 properties passed on to MQTT 5 subscribers (no alias, no subscription ids).
    pub props: Option<Box<Props>>,
    /// When its MQTT 5 message expiry interval ends, counted from its arrival.
    pub expires: Option<Instant>,
    /// The engine's number for it (0 until the engine routes it), by which the store
    /// names it.
    pub id: u64,
}

/// A will as the broker keeps it: the message, and (MQTT 5) how long to wait before
/// sending it. (A client's will, as it asks for one in CONNECT, is `mqtt::wire::Will`.)
#[derive(Debug, Clone, PartialEq)]
pub struct StoredWill {
    pub msg: Message,
    pub delay_secs: u32,
}

/// What the engine needs from a CONNECT.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    pub version: Version,
    pub client_id: String,
    pub clean: bool,
    pub keep_alive: u16,
    /// Seconds the session outlives the connection (MQTT 3.1.1: 0 or forever).
    pub session_expiry: u32,
    /// How many QoS 1 and 2 messages the client takes unacknowledged.
    pub receive_max: u16,
    /// The largest packet the client takes (MQTT 5).
    pub max_packet: Option<u32>,
    pub will: Option<StoredWill>,
    /// An MQTT 5 authentication method, which this broker does not offer.
    pub auth_method: bool,
    /// The username and password the client sent.
    pub login: Option<Login>,
    /// Who the driver found the client to be (`broker::auth`), the name its ACL rules
    /// are looked up by; None for an anonymous client.
    pub user: Option<Arc<str>>,
    /// Why the driver refuses the login, if it does.
    pub refused: Option<ConnectRefusal>,
    /// Whether the password file vouched for `user` (SIGHUP's new file may disown it).
    pub by_password: bool,
    /// Whether the driver judged the login: the engine refuses a CONNECT it did not
    /// (fails closed, whatever path a CONNECT takes to it).
    pub judged: bool,
}

/// A subscription request.
#[derive(Debug, Clone, PartialEq)]
pub struct SubReq {
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub keep_retain: bool,
    /// 0: send retained messages, 1: only for a new subscription, 2: never.
    pub retain_handling: u8,
}

/// A packet from a client.
#[derive(Debug, Clone, PartialEq)]
pub enum In {
    Connect(Box<Hello>),
    Publish {
        pkid: u16,
        topic: String,
        alias: Option<u16>,
        msg: Message,
    },
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    Subscribe {
        pkid: u16,
        filters: Vec<SubReq>,
        id: Option<usize>,
    },
    Unsubscribe {
        pkid: u16,
        filters: Vec<String>,
    },
    PingReq,
    Disconnect {
        /// Sent with a reason other than 0 (MQTT 5): the will is still sent.
        with_will: bool,
        session_expiry: Option<u32>,
    },
    /// A packet only a server sends, or AUTH.
    Unexpected(&'static str),
}

/// Why a connection's bytes cannot be read.
#[derive(Debug, Clone, PartialEq)]
pub enum Bad {
    /// A CONNECT of a protocol level other than 4 (MQTT 3.1.1) and 5.
    Level(u8),
    TooLarge,
    Malformed(String),
}

/// Takes the next whole packet out of `buf`: `None` while it is incomplete. `version` is
/// the connection's, or `None` before its CONNECT (which is then the only packet taken).
pub fn read(buf: &mut BytesMut, version: Option<Version>, max: usize) -> Result<Option<In>, Bad> {
    if version.is_none() && buf.first().is_some_and(|b| b >> 4 != 1) {
        return Err(Bad::Malformed("the first packet is not CONNECT".into()));
    }
    let header = match mqttbytes::check(buf.iter(), max) {
        Ok(h) => h,
        Err(mqttbytes::Error::InsufficientBytes(_)) => return Ok(None),
        Err(mqttbytes::Error::PayloadSizeLimitExceeded(_)) => return Err(Bad::TooLarge),
        Err(e) => return Err(Bad::Malformed(e.to_string())),
    };
    let len = header.frame_length();
    let version = match version {
        Some(v) => v,
        // The protocol level follows the fixed header and the name "MQTT".
        None => match buf.get(header_len(buf) + 6) {
            Some(5) => Version::V5,
            Some(4) => Version::V311,
            Some(&level) => return Err(Bad::Level(level)),
            None => return Err(Bad::Malformed("CONNECT without a protocol level".into())),
        },
    };
    let mut frame = buf.split_to(len);
    let bad = |e: &dyn std::fmt::Display| Bad::Malformed(e.to_string());
    match version {
        Version::V311 => v4::Packet::read(&mut frame, max)
            .map(from_v4)
            .map_err(|e| bad(&e)),
        // rumqttc wants a reason code in every MQTT 5 DISCONNECT; it may be left out.
        // Nor a property length after the reason code, which rumqttc wants too.
        Version::V5 if frame[..] == [DISCONNECT, 0] => Ok(In::Disconnect {
            with_will: false,
            session_expiry: None,
        }),
        Version::V5 if frame.len() == 3 && frame[..2] == [DISCONNECT, 1] => Ok(In::Disconnect {
            with_will: frame[2] != 0,
            session_expiry: None,
        }),
        Version::V5 => v5::Packet::read(&mut frame, Some(max as u32))
            .map_err(|e| bad(&e))
            .and_then(from_v5),
    }
    .map(Some)
}

/// What the engine needs from a 3.1.1 CONNECT.
fn hello_v4(mut c: v4::Connect) -> Hello {
    let creds = c.login.take();
    Hello {
        version: Version::V311,
        client_id: c.client_id,
        clean: c.clean_session,
        keep_alive: c.keep_alive,
        session_expiry: if c.clean_session { 0 } else { u32::MAX },
        receive_max: u16::MAX,
        max_packet: None,
        will: c.last_will.map(|w| StoredWill {
            msg: Message {
                topic: w.topic,
                payload: Bytes::copy_from_slice(&w.message),
                qos: w.qos as u8,
                retain: w.retain,
                props: None,
                expires: None,
                id: 0,
            },
            delay_secs: 0,
        }),
        auth_method: false,
        login: creds.map(|l| Login::new(l.username, l.password)),
        user: None,
        refused: None,
        by_password: false,
        judged: false,
    }
}

/// The length of a complete fixed header: the type byte and the remaining length.
pub(super) fn header_len(buf: &[u8]) -> usize {
    crate::mqtt::wire::fixed_header(buf).map_or(buf.len(), |(n, _)| n)
}

fn from_v4(p: v4::Packet) -> In {
    match p {
        v4::Packet::Connect(c) => In::Connect(Box::new(hello_v4(c))),
        v4::Packet::Publish(p) => In::Publish {
            pkid: p.pkid,
            topic: p.topic.clone(),
            alias: None,
            msg: Message {
                topic: p.topic,
                payload: p.payload,
                qos: p.qos as u8,
                retain: p.retain,
                props: None,
                expires: None,
                id: 0,
            },
        },
        v4::Packet::PubAck(a) => In::PubAck(a.pkid),
        v4::Packet::PubRec(a) => In::PubRec(a.pkid),
        v4::Packet::PubRel(a) => In::PubRel(a.pkid),
        v4::Packet::PubComp(a) => In::PubComp(a.pkid),
        v4::Packet::Subscribe(s) => In::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| SubReq {
                    filter: f.path,
                    qos: f.qos as u8,
                    no_local: false,
                    keep_retain: false,
                    retain_handling: 0,
                })
                .collect(),
            id: None,
        },
        v4::Packet::Unsubscribe(u) => In::Unsubscribe {
            pkid: u.pkid,
            filters: u.topics,
        },
        v4::Packet::PingReq => In::PingReq,
        v4::Packet::Disconnect => In::Disconnect {
            with_will: false,
            session_expiry: None,
        },
        v4::Packet::ConnAck(_) => In::Unexpected("CONNACK"),
        v4::Packet::SubAck(_) => In::Unexpected("SUBACK"),
        v4::Packet::UnsubAck(_) => In::Unexpected("UNSUBACK"),
        v4::Packet::PingResp => In::Unexpected("PINGRESP"),
    }
}

fn utf8(b: Bytes) -> Result<String, Bad> {
    String::from_utf8(b.to_vec()).map_err(|_| Bad::Malformed("a topic is not UTF-8".into()))
}

/// What the engine needs from an MQTT 5 CONNECT and its will.
fn hello_v5(
    c: v5::Connect,
    will: Option<v5::LastWill>,
    creds: Option<v5::Login>,
) -> Result<Hello, Bad> {
    let props = c.properties;
    let prop = |f: fn(&v5::ConnectProperties) -> Option<u32>| props.as_ref().and_then(f);
    let will = match will {
        None => None,
        Some(w) => {
            let delay_secs = w.properties.as_ref().and_then(|p| p.delay_interval);
            let props = w.properties.map(|wp| {
                Box::new(Props {
                    payload_format_indicator: wp.payload_format_indicator,
                    message_expiry_interval: wp.message_expiry_interval,
                    response_topic: wp.response_topic,
                    correlation_data: wp.correlation_data,
                    user_properties: wp.user_properties,
                    content_type: wp.content_type,
                    ..Props::default()
                })
            });
            Some(StoredWill {
                delay_secs: delay_secs.unwrap_or(0),
                msg: Message {
                    topic: utf8(w.topic)?,
                    payload: Bytes::copy_from_slice(&w.message),
                    qos: w.qos as u8,
                    retain: w.retain,
                    props,
                    expires: None,
                    id: 0,
                },
            })
        }
    };
    Ok(Hello {
        version: Version::V5,
        client_id: c.client_id,
        clean: c.clean_start,
        keep_alive: c.keep_alive,
        session_expiry: prop(|p| p.session_expiry_interval).unwrap_or(0),
        receive_max: props
            .as_ref()
            .and_then(|p| p.receive_maximum)
            .unwrap_or(u16::MAX)
            .max(1),
        max_packet: prop(|p| p.max_packet_size),
        will,
        auth_method: props
            .as_ref()
            .is_some_and(|p| p.authentication_method.is_some()),
        login: creds.map(|l| Login::new(l.username, l.password)),
        user: None,
        refused: None,
        by_password: false,
        judged: false,
    })
}

fn from_v5(p: v5::Packet) -> Result<In, Bad> {
    Ok(match p {
        v5::Packet::Connect(c, will, creds) => In::Connect(Box::new(hello_v5(c, will, creds)?)),
        v5::Packet::Publish(p) => {
            let topic = utf8(p.topic)?;
            let mut props = p.properties;
            let alias = props.as_mut().and_then(|pr| pr.topic_alias.take());
            if let Some(pr) = &mut props {
                pr.subscription_identifiers.clear();
            }
            In::Publish {
                pkid: p.pkid,
                topic: topic.clone(),
                alias,
                msg: Message {
                    topic,
                    payload: p.payload,
                    qos: p.qos as u8,
                    retain: p.retain,
                    props: props.map(Box::new),
                    expires: None,
                    id: 0,
                },
            }
        }
        v5::Packet::PubAck(a) => In::PubAck(a.pkid),
        v5::Packet::PubRec(a) => In::PubRec(a.pkid),
        v5::Packet::PubRel(a) => In::PubRel(a.pkid),
        v5::Packet::PubComp(a) => In::PubComp(a.pkid),
        v5::Packet::Subscribe(s) => In::Subscribe {
            pkid: s.pkid,
            id: s.properties.and_then(|p| p.id),
            filters: s
                .filters
                .into_iter()
                .map(|f| SubReq {
                    filter: f.path,
                    qos: f.qos as u8,
                    no_local: f.nolocal,
                    keep_retain: f.preserve_retain,
                    retain_handling: f.retain_forward_rule as u8,
                })
                .collect(),
        },
        v5::Packet::Unsubscribe(u) => In::Unsubscribe {
            pkid: u.pkid,
            filters: u.filters,
        },
        v5::Packet::PingReq(_) => In::PingReq,
        v5::Packet::Disconnect(d) => In::Disconnect {
            // Any reason but a normal disconnection keeps the will.
            with_will: d.reason_code != v5::DisconnectReasonCode::NormalDisconnection,
            session_expiry: d.properties.and_then(|p| p.session_expiry_interval),
        },
        v5::Packet::Auth(_) => In::Unexpected("AUTH"),
        v5::Packet::ConnAck(_) => In::Unexpected("CONNACK"),
        v5::Packet::SubAck(_) => In::Unexpected("SUBACK"),
        v5::Packet::UnsubAck(_) => In::Unexpected("UNSUBACK"),
        v5::Packet::PingResp(_) => In::Unexpected("PINGRESP"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_read_whole_for_either_version() {
        use crate::mqtt::wire::{ConnectSpec, Version as W, encode_connect};
        for (w, v) in [(W::V311, Version::V311), (W::V5, Version::V5)] {
            let spec = ConnectSpec {
                client_id: "a/b".into(),
                keepalive: 30,
                clean_start: true,
                session_expiry: Some(60),
                max_packet_in: 1000,
                login: None,
                will: None,
            };
            let mut bytes = BytesMut::new();
            encode_connect(w, &spec, &mut bytes);
            bytes.extend_from_slice(&[0xC0, 0, 0xE0]);
            let mut buf = BytesMut::from(&bytes[..3]);
            assert_eq!(read(&mut buf, None, 1 << 20), Ok(None));
            let mut buf = bytes.clone();
            let Ok(Some(In::Connect(h))) = read(&mut buf, None, 1 << 20) else {
                panic!()
            };
            assert_eq!((h.version, h.client_id.as_str()), (v, "a/b"));
            assert_eq!(read(&mut buf, Some(v), 1 << 20), Ok(Some(In::PingReq)));
            assert_eq!(read(&mut buf, Some(v), 1 << 20), Ok(None));
            buf.extend_from_slice(&[0]);
            let end = read(&mut buf, Some(v), 1 << 20);
            assert_eq!(
                end,
                Ok(Some(In::Disconnect {
                    with_will: false,
                    session_expiry: None
                }))
            );
        }
        // MQTT 5 lets a DISCONNECT end after its reason code; any but 0 keeps the will.
        for (rc, with_will) in [(0, false), (0x04, true), (0x80, true)] {
            let mut b = BytesMut::from(&[0xE0, 1, rc][..]);
            let got = read(&mut b, Some(Version::V5), 1 << 20);
            let want = In::Disconnect {
                with_will,
                session_expiry: None,
            };
            assert_eq!(got, Ok(Some(want)), "reason {rc:#x}");
        }
        let mut big = BytesMut::from(&[0x30, 0xff, 0xff, 0x7f][..]);
        assert_eq!(
            read(&mut big, Some(Version::V311), 1 << 20),
            Err(Bad::TooLarge)
        );
        let mqisdp = b"\x10\x0f\0\x06MQIsdp\x03\x02\0\x3c\0\x01x";
        let mut v31 = BytesMut::from(&mqisdp[..]);
        assert!(matches!(read(&mut v31, None, 1 << 20), Err(Bad::Level(_))));
        let mut junk = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        assert!(matches!(
            read(&mut junk, None, 1 << 20),
            Err(Bad::Malformed(_))
        ));
    }
}

//! The MQTT 5 properties of a message that the tools send, show and relay: user
//! properties (in order, repeats kept), content type, message expiry, response topic and
//! correlation data (MQTT 5 §3.3.2.3). Encoded once into the bytes of a PUBLISH's
//! property list, so that a run's flags cost nothing per message.

use bytes::{BufMut, Bytes, BytesMut};

/// The property identifiers (MQTT 5 §2.2.2.2).
const MESSAGE_EXPIRY: u8 = 0x02;
const CONTENT_TYPE: u8 = 0x03;
const RESPONSE_TOPIC: u8 = 0x08;
const CORRELATION_DATA: u8 = 0x09;
const USER_PROPERTY: u8 = 0x26;

/// The properties of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    pub user: Vec<(String, String)>,
    pub content_type: Option<String>,
    /// Seconds the broker may keep the message for subscribers that are not there yet.
    pub message_expiry: Option<u32>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
}

impl Properties {
    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
            && self.content_type.is_none()
            && self.message_expiry.is_none()
            && self.response_topic.is_none()
            && self.correlation_data.is_none()
    }

    /// The property list's bytes, without its length (which the PUBLISH writes): empty
    /// when there is none. Strings and binary data longer than 65,535 bytes cannot be
    /// written; [`Properties::check`] finds them first.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        if let Some(secs) = self.message_expiry {
            out.put_u8(MESSAGE_EXPIRY);
            out.put_u32(secs);
        }
        if let Some(t) = &self.content_type {
            put_field(&mut out, CONTENT_TYPE, t.as_bytes());
        }
        if let Some(t) = &self.response_topic {
            put_field(&mut out, RESPONSE_TOPIC, t.as_bytes());
        }
        if let Some(d) = &self.correlation_data {
            put_field(&mut out, CORRELATION_DATA, d);
        }
        for (k, v) in &self.user {
            put_field(&mut out, USER_PROPERTY, k.as_bytes());
            out.put_u16(v.len() as u16);
            out.put_slice(v.as_bytes());
        }
        out.freeze()
    }

    /// Why these properties cannot be sent, if they cannot: a string or the data longer
    /// than MQTT's 65,535 bytes, a response topic that is empty or has a wildcard.
    pub fn check(&self) -> Result<(), String> {
        let long = |what: &str, len: usize| match len > usize::from(u16::MAX) {
            true => Err(format!("the {what} is longer than 65535 bytes")),
            false => Ok(()),
        };
        for (k, v) in &self.user {
            long("user property's key", k.len())?;
            long("user property's value", v.len())?;
        }
        if let Some(t) = &self.content_type {
            long("content type", t.len())?;
        }
        if let Some(d) = &self.correlation_data {
            long("correlation data", d.len())?;
        }
        if let Some(t) = &self.response_topic {
            long("response topic", t.len())?;
            if t.is_empty() || t.contains(['+', '#']) {
                return Err(format!(
                    "the response topic {t:?} is not a topic to publish to (empty, or with a wildcard)"
                ));
            }
        }
        Ok(())
    }

    /// What a received PUBLISH carried, from rumqttc's properties; None when it carried
    /// none of these.
    pub fn received(p: rumqttc::v5::mqttbytes::v5::PublishProperties) -> Option<Box<Properties>> {
        let props = Properties {
            user: p.user_properties,
            content_type: p.content_type,
            message_expiry: p.message_expiry_interval,
            response_topic: p.response_topic,
            correlation_data: p.correlation_data,
        };
        (!props.is_empty()).then(|| Box::new(props))
    }
}

/// A property with a two-byte length and its bytes (UTF-8 string or binary data).
fn put_field(out: &mut BytesMut, id: u8, bytes: &[u8]) {
    out.put_u8(id);
    out.put_u16(bytes.len() as u16);
    out.put_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_rumqttc_decodes_in_order_with_repeats() {
        let props = Properties {
            user: vec![
                ("k".into(), "1".into()),
                ("k".into(), "2".into()),
                ("é".into(), "".into()),
            ],
            content_type: Some("text/plain".into()),
            message_expiry: Some(60),
            response_topic: Some("replies/alice".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\xffid")),
        };
        let mut packet = BytesMut::new();
        let flags = super::super::PubFlags {
            qos: 1,
            pkid: 7,
            ..Default::default()
        };
        let encoded = props.encode();
        super::super::encode_publish(
            super::super::Version::V5,
            &mut packet,
            b"t",
            b"hi",
            &encoded,
            flags,
        );
        let size = super::super::publish_size(super::super::Version::V5, 1, 2, encoded.len(), 1);
        assert_eq!(packet.len(), size);
        let decoded = super::super::decode(super::super::Version::V5, &mut packet, 1 << 20);
        let Ok(Some(super::super::Inbound::Publish(d))) = decoded else {
            panic!("not a PUBLISH: {decoded:?}")
        };
        assert_eq!(&d.payload[..], b"hi");
        assert_eq!(*d.properties.expect("properties"), props);
    }

    #[test]
    fn none_is_empty_and_encodes_to_nothing() {
        assert!(Properties::default().is_empty());
        assert!(Properties::default().encode().is_empty());
    }

    #[test]
    fn what_cannot_be_sent_is_found_before() {
        let long = "x".repeat(65_536);
        let cases = [
            Properties {
                user: vec![(long.clone(), "v".into())],
                ..Default::default()
            },
            Properties {
                content_type: Some(long),
                ..Default::default()
            },
            Properties {
                response_topic: Some("a/+".into()),
                ..Default::default()
            },
            Properties {
                response_topic: Some(String::new()),
                ..Default::default()
            },
        ];
        for p in cases {
            assert!(p.check().is_err(), "{p:?}");
        }
    }
}

//! The protocol's numbers by name, as the engine writes them: the first byte of each
//! packet it sends, and the reason codes each packet may carry (MQTT 5 §2.1.2, §2.4;
//! MQTT 3.1.1 §3.2.2.3, §3.9.3). The engine speaks these names, never a bare number (0x90
//! is a SUBACK and also "topic name invalid"), and a code a packet cannot carry cannot be
//! written into it: each packet has its own type, mapped to the wire with no catch-all.
//! DISCONNECT's reasons are rumqttc's `DisconnectReasonCode`, whose discriminants are the
//! codes.

use rumqttc::v5::mqttbytes::v5::ConnectReturnCode;

/// The first byte (type and required flags) of a packet the engine writes or reads by hand.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    ConnAck = 0x20,
    /// PUBLISH, before its flags (DUP, QoS, RETAIN).
    Publish = 0x30,
    PubAck = 0x40,
    PubRec = 0x50,
    /// PUBREL has the fixed flags 0b0010.
    PubRel = 0x62,
    PubComp = 0x70,
    SubAck = 0x90,
    UnsubAck = 0xB0,
    PingResp = 0xD0,
    Disconnect = 0xE0,
}

/// Why the engine refuses a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// MQTT 3.1.1: an empty client id that asks for a session.
    ClientIdNotValid,
    /// MQTT 5: an authentication method, which this broker does not offer.
    BadAuthenticationMethod,
    /// A will topic that no PUBLISH could have.
    WillTopicInvalid,
}

impl Refusal {
    /// The MQTT 5 CONNACK reason code.
    pub fn v5(self) -> ConnectReturnCode {
        match self {
            Refusal::ClientIdNotValid => ConnectReturnCode::ClientIdentifierNotValid,
            Refusal::BadAuthenticationMethod => ConnectReturnCode::BadAuthenticationMethod,
            Refusal::WillTopicInvalid => ConnectReturnCode::TopicNameInvalid,
        }
    }

    /// The MQTT 3.1.1 CONNACK return code, where 3.1.1 has one: none for a bad will
    /// topic (the connection just closes).
    pub fn v311(self) -> Option<u8> {
        match self {
            Refusal::ClientIdNotValid => Some(2),
            // 3.1.1 clients cannot send an authentication method.
            Refusal::BadAuthenticationMethod => Some(5),
            Refusal::WillTopicInvalid => None,
        }
    }

    /// The code as a number, for the log.
    pub fn code(self) -> u8 {
        match self {
            Refusal::ClientIdNotValid => 0x85,
            Refusal::BadAuthenticationMethod => 0x8C,
            Refusal::WillTopicInvalid => 0x90,
        }
    }
}

/// A SUBACK code that refuses a filter (MQTT 3.1.1 knows only 0x80, `Unspecified`); a
/// granted one is the QoS, 0 to 2.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubRefusal {
    Unspecified = 0x80,
    TopicFilterInvalid = 0x8F,
    QuotaExceeded = 0x97,
    SharedSubscriptionsNotSupported = 0x9E,
}

/// An UNSUBACK code (MQTT 5 only; 3.1.1's UNSUBACK has none).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubscribed {
    Success = 0x00,
    NoSubscriptionExisted = 0x11,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_code_in_both_versions() {
        for r in [
            Refusal::ClientIdNotValid,
            Refusal::BadAuthenticationMethod,
            Refusal::WillTopicInvalid,
        ] {
            let mut b = bytes::BytesMut::new();
            let ack = rumqttc::v5::mqttbytes::v5::ConnAck {
                session_present: false,
                code: r.v5(),
                properties: None,
            };
            ack.write(&mut b).expect("a CONNACK");
            assert_eq!(b[3], r.code(), "{r:?}");
        }
        assert_eq!(Refusal::ClientIdNotValid.v311(), Some(2));
    }
}

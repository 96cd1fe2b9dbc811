//! The protocol's numbers by name, as the engine writes them: the first byte of each
//! packet it sends, and the reason codes each packet may carry (MQTT 5 §2.1.2, §2.4;
//! MQTT 3.1.1 §3.2.2.3, §3.9.3). The engine speaks these names, never a bare number (0x90
//! is a SUBACK and also "topic name invalid"), and a code a packet cannot carry cannot be
//! written into it: each packet has its own type, mapped to the wire with no catch-all.
//! DISCONNECT's reasons are rumqttc's `DisconnectReasonCode`, whose discriminants are the
//! codes.

use rumqttc::v5::mqttbytes::v5::ConnectReturnCode;

use crate::mqtt::wire::Version;

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
pub enum ConnectRefusal {
    /// MQTT 3.1.1: an empty client id that asks for a session.
    ClientIdNotValid,
    /// MQTT 5: an authentication method, which this broker does not offer.
    BadAuthenticationMethod,
    /// A will topic that no PUBLISH could have.
    WillTopicInvalid,
    /// As many clients are connected as `--max-connections` allows.
    TooManyConnections,
    /// A username the password file lacks, or the wrong password (`--password-file`).
    BadUsernameOrPassword,
    /// No username where one is needed, or a will the ACL does not let the client write.
    NotAuthorized,
}

impl ConnectRefusal {
    /// The MQTT 5 CONNACK reason code.
    pub fn v5(self) -> ConnectReturnCode {
        match self {
            ConnectRefusal::ClientIdNotValid => ConnectReturnCode::ClientIdentifierNotValid,
            ConnectRefusal::BadAuthenticationMethod => ConnectReturnCode::BadAuthenticationMethod,
            ConnectRefusal::WillTopicInvalid => ConnectReturnCode::TopicNameInvalid,
            ConnectRefusal::TooManyConnections => ConnectReturnCode::QuotaExceeded,
            ConnectRefusal::BadUsernameOrPassword => ConnectReturnCode::BadUserNamePassword,
            ConnectRefusal::NotAuthorized => ConnectReturnCode::NotAuthorized,
        }
    }

    /// The MQTT 3.1.1 CONNACK return code, where 3.1.1 has one: none for a bad will
    /// topic (the connection just closes).
    pub fn v311(self) -> Option<u8> {
        match self {
            ConnectRefusal::ClientIdNotValid => Some(2),
            // "Server unavailable": the one 3.1.1 has for a full server.
            ConnectRefusal::TooManyConnections => Some(3),
            ConnectRefusal::BadUsernameOrPassword => Some(4),
            ConnectRefusal::NotAuthorized => Some(5),
            // Only MQTT 5 has authentication methods, and 3.1.1 no code for either.
            ConnectRefusal::BadAuthenticationMethod | ConnectRefusal::WillTopicInvalid => None,
        }
    }

    /// The code as a number, for the log.
    pub fn code(self) -> u8 {
        match self {
            ConnectRefusal::ClientIdNotValid => 0x85,
            ConnectRefusal::BadAuthenticationMethod => 0x8C,
            ConnectRefusal::WillTopicInvalid => 0x90,
            ConnectRefusal::TooManyConnections => 0x97,
            ConnectRefusal::BadUsernameOrPassword => 0x86,
            ConnectRefusal::NotAuthorized => 0x87,
        }
    }
}

/// A SUBACK code: the QoS granted, or why a filter is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubAckCode {
    /// QoS 0, 1 or 2 (higher asks are granted 2).
    Granted(u8),
    Refused(SubRefusal),
}

impl SubAckCode {
    /// The code on the wire for a client of `v` (MQTT 3.1.1 knows only 0x80 for a
    /// refusal).
    pub fn byte(self, v: Version) -> u8 {
        match (self, v) {
            (SubAckCode::Granted(qos), _) => qos.min(2),
            (SubAckCode::Refused(why), Version::V5) => why as u8,
            (SubAckCode::Refused(_), Version::V311) => SubRefusal::Unspecified as u8,
        }
    }
}

/// Why a SUBACK refuses a filter.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubRefusal {
    Unspecified = 0x80,
    /// The ACL lets the client read nothing the filter matches (`--acl-file`).
    NotAuthorized = 0x87,
    TopicFilterInvalid = 0x8F,
    QuotaExceeded = 0x97,
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
            ConnectRefusal::ClientIdNotValid,
            ConnectRefusal::BadAuthenticationMethod,
            ConnectRefusal::WillTopicInvalid,
            ConnectRefusal::TooManyConnections,
            ConnectRefusal::BadUsernameOrPassword,
            ConnectRefusal::NotAuthorized,
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
        assert_eq!(ConnectRefusal::ClientIdNotValid.v311(), Some(2));
        assert_eq!(ConnectRefusal::BadUsernameOrPassword.v311(), Some(4));
        assert_eq!(ConnectRefusal::NotAuthorized.v311(), Some(5));
        assert_eq!(
            ConnectRefusal::WillTopicInvalid.v311(),
            None,
            "the connection just closes"
        );
    }
}

//! The connection as the state machines see it: its sending side — what the broker allows
//! (protocol version, its CONNACK) and the buffer packets are appended to — and why it
//! ended ([`LinkError`]). No I/O: the
//! driver hands a [`Tx`] to a state machine, then writes the buffer to the socket
//! ([`crate::mqtt::link::Link::tx`]); tests hand it a [`Peer`] and decode what was queued.

use std::io;

use bytes::BytesMut;

use crate::mqtt::wire::{self, ConnAckInfo, Version, WireError};

/// Why a connection ended.
#[derive(Debug)]
pub enum LinkError {
    /// The broker closed the connection.
    Closed,
    /// The broker sent DISCONNECT (MQTT 5 reason code, 0 under 3.1.1).
    Disconnected(u8),
    Io(io::Error),
    /// No PINGRESP within a keep-alive interval.
    NoPingResp,
    Wire(WireError),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Closed => f.write_str("the broker closed the connection"),
            LinkError::Disconnected(r) => write!(
                f,
                "the broker disconnected: {} ({r:#04x})",
                wire::reason_text(*r)
            ),
            LinkError::Io(e) => write!(f, "{e}"),
            LinkError::NoPingResp => f.write_str("the broker stopped answering keep-alive pings"),
            LinkError::Wire(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for LinkError {
    fn from(e: io::Error) -> Self {
        LinkError::Io(e)
    }
}

/// Where packets for the broker are queued, with what the broker said it accepts.
pub struct Tx<'a> {
    pub version: Version,
    pub connack: &'a ConnAckInfo,
    pub buf: &'a mut BytesMut,
}

impl Tx<'_> {
    /// Bytes queued and not yet written to the socket.
    pub fn unsent(&self) -> usize {
        self.buf.len()
    }
}

/// A broker's side of a connection for socket-free tests: what a state machine queued
/// for it, decoded.
#[cfg(test)]
pub(crate) struct Peer {
    pub version: Version,
    pub connack: ConnAckInfo,
    pub buf: BytesMut,
}

#[cfg(test)]
impl Peer {
    /// A connection whose CONNACK said `receive_max` and `session_present`.
    pub fn new(version: Version, receive_max: Option<u16>, session_present: bool) -> Peer {
        let connack = ConnAckInfo {
            receive_max,
            session_present,
            ..ConnAckInfo::default()
        };
        Peer {
            version,
            connack,
            buf: BytesMut::new(),
        }
    }

    pub fn tx(&mut self) -> Tx<'_> {
        Tx {
            version: self.version,
            connack: &self.connack,
            buf: &mut self.buf,
        }
    }

    /// Every packet queued since the last call, decoded as the broker would.
    pub fn received(&mut self) -> Vec<crate::mqtt::wire::Inbound> {
        let mut buf = self.buf.split();
        let mut out = Vec::new();
        let max = crate::mqtt::wire::MAX_PACKET;
        while let Some(p) = crate::mqtt::wire::decode(self.version, &mut buf, max).expect("decode")
        {
            out.push(p);
        }
        out
    }
}

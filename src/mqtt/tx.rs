//! The sending side of a connection as the state machines see it: what the broker allows
//! (protocol version, its CONNACK) and the buffer packets are appended to. No I/O: the
//! driver hands a [`Tx`] to a state machine, then writes the buffer to the socket
//! ([`crate::mqtt::link::Link::tx`]); tests hand it a [`Peer`] and decode what was queued.

use bytes::BytesMut;

use crate::mqtt::wire::{ConnAckInfo, Version};

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

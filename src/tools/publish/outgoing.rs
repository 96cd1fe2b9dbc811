//! One message chat-pub is to publish, as its input thread hands it over and the state
//! machine keeps it until the broker acknowledged it: a leaf, so that the state machine
//! does not import the input thread.

use bytes::Bytes;

/// One message ready to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Its line number on stdin (or position among `-m` messages), for error reports.
    pub line: u64,
    pub topic: Bytes,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// Its MQTT 5 properties, encoded ([`Properties::encode`](crate::mqtt::wire::Properties::encode));
    /// empty for none. Shared by every message of a run that sets them by flags.
    pub properties: Bytes,
}

/// Which line a message came from, as reports name it: `line N` (or `message N` for
/// `-m`), and line 0 is the dialect's notice at start, sent before any.
#[derive(Debug, Clone, Copy)]
pub struct LineNo(pub u64);

impl std::fmt::Display for LineNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => f.write_str("the notice at start"),
            n => write!(f, "line {n}"),
        }
    }
}

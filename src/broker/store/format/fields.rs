//! A record's payload, the part of the store format inside a frame (`format`): its tag
//! byte and its fields, written ([`write`]) and read ([`read`]). The module doc of
//! `format` says how each kind of field is written.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::Clock;
use crate::broker::engine::codec::{Message, Props};
use crate::broker::engine::{Record, SubOpts, Version};

/// Appends the payload of `rec`.
pub(super) fn write(rec: &Record, clock: &Clock, out: &mut Vec<u8>) {
    Writer { out, clock }.record(rec);
}

/// The record of a whole payload, or what is wrong with it.
pub(super) fn read(payload: &[u8], clock: &Clock) -> Result<Record, String> {
    Reader {
        bytes: payload,
        clock,
    }
    .record()
}

/// The tag byte of each kind of record. None is 0, so that zeros (the blocks a power loss
/// can leave at the end of a file) never read as a record.
pub(super) mod tag {
    pub const MESSAGE: u8 = 1;
    pub const RETAIN: u8 = 2;
    pub const SESSION: u8 = 3;
    pub const AWAY: u8 = 4;
    pub const END: u8 = 5;
    pub const SUBSCRIBE: u8 = 6;
    pub const UNSUBSCRIBE: u8 = 7;
    pub const QUEUED: u8 = 8;
    pub const SENT: u8 = 9;
    pub const RELEASED: u8 = 10;
    pub const DONE: u8 = 11;
    pub const QOS2_IN: u8 = 12;
    pub const WILL: u8 = 13;
    pub const WILL_DONE: u8 = 14;
    pub const SNAPSHOT_END: u8 = 15;
    pub const USER: u8 = 16;
}

/// Writes a record's payload.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    clock: &'a Clock,
}

impl Writer<'_> {
    fn record(&mut self, rec: &Record) {
        match rec {
            Record::Message { id, msg } => {
                self.head(tag::MESSAGE, None);
                self.var(*id);
                self.message(msg);
            }
            Record::Retain { topic, id } => {
                self.head(tag::RETAIN, None);
                self.str(topic);
                self.opt(id.as_ref(), |w, id| w.var(*id));
            }
            Record::Session {
                client,
                version,
                expiry,
            } => {
                self.head(tag::SESSION, Some(client));
                self.out.push(match version {
                    Version::V311 => 4,
                    Version::V5 => 5,
                });
                self.out.extend_from_slice(&expiry.to_le_bytes());
            }
            Record::User { client, user } => {
                self.head(tag::USER, Some(client));
                self.opt(user.as_deref(), |w, u| w.str(u));
            }
            Record::Away { client, expires } => {
                self.head(tag::AWAY, Some(client));
                self.opt(expires.as_ref(), |w, at| w.time(*at));
            }
            Record::End { client } => self.head(tag::END, Some(client)),
            Record::Subscribe {
                client,
                filter,
                opts,
            } => {
                self.head(tag::SUBSCRIBE, Some(client));
                self.str(filter);
                self.out.push(opts.qos);
                self.bool(opts.no_local);
                self.bool(opts.keep_retain);
                self.opt(opts.id.as_ref(), |w, id| w.var(*id as u64));
            }
            Record::Unsubscribe { client, filter } => {
                self.head(tag::UNSUBSCRIBE, Some(client));
                self.str(filter);
            }
            Record::Queued {
                client,
                seq,
                msg,
                qos,
                retain,
                sub_ids,
                share,
            } => {
                self.head(tag::QUEUED, Some(client));
                self.var(*seq);
                self.var(*msg);
                self.out.push(*qos);
                self.bool(*retain);
                self.list(sub_ids, |w, id| w.var(*id as u64));
                self.opt(share.as_ref(), |w, s| w.str(s));
            }
            Record::Sent { client, seq, pkid } => {
                self.head(tag::SENT, Some(client));
                self.var(*seq);
                self.out.extend_from_slice(&pkid.to_le_bytes());
            }
            Record::Released { client, seq } => {
                self.head(tag::RELEASED, Some(client));
                self.var(*seq);
            }
            Record::Done { client, seq } => {
                self.head(tag::DONE, Some(client));
                self.var(*seq);
            }
            Record::Qos2In { client, pkid, held } => {
                self.head(tag::QOS2_IN, Some(client));
                self.out.extend_from_slice(&pkid.to_le_bytes());
                self.bool(*held);
            }
            Record::Will { client, at, msg } => {
                self.head(tag::WILL, Some(client));
                self.time(*at);
                self.var(*msg);
            }
            Record::WillDone { client } => self.head(tag::WILL_DONE, Some(client)),
            Record::SnapshotEnd => self.head(tag::SNAPSHOT_END, None),
        }
    }

    /// The tag, and the client id of the records that have one.
    fn head(&mut self, tag: u8, client: Option<&Arc<str>>) {
        self.out.push(tag);
        if let Some(client) = client {
            self.str(client);
        }
    }

    fn message(&mut self, m: &Message) {
        self.str(&m.topic);
        self.bytes(&m.payload);
        self.out.push(m.qos);
        self.bool(m.retain);
        self.opt(m.expires.as_ref(), |w, at| w.time(*at));
        self.opt(m.props.as_deref(), Writer::props);
    }

    fn props(&mut self, p: &Props) {
        self.opt(p.payload_format_indicator.as_ref(), |w, b| w.out.push(*b));
        let le32 = |w: &mut Writer, n: &u32| w.out.extend_from_slice(&n.to_le_bytes());
        self.opt(p.message_expiry_interval.as_ref(), le32);
        let le16 = |w: &mut Writer, n: &u16| w.out.extend_from_slice(&n.to_le_bytes());
        self.opt(p.topic_alias.as_ref(), le16);
        self.opt(p.response_topic.as_deref(), Writer::str);
        self.opt(p.correlation_data.as_deref(), Writer::bytes);
        self.list(&p.user_properties, |w, (k, v)| {
            w.str(k);
            w.str(v);
        });
        self.list(&p.subscription_identifiers, |w, id| w.var(*id as u64));
        self.opt(p.content_type.as_deref(), Writer::str);
    }

    /// A LEB128 varint: seven bits a byte, the lowest first, the top bit set on all but
    /// the last.
    fn var(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.out.push(n as u8 | 0x80);
            n >>= 7;
        }
        self.out.push(n as u8);
    }

    fn bool(&mut self, b: bool) {
        self.out.push(u8::from(b));
    }

    fn bytes(&mut self, b: &[u8]) {
        self.var(b.len() as u64);
        self.out.extend_from_slice(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn time(&mut self, at: Instant) {
        let ms = self.clock.to_unix_ms(at);
        self.out.extend_from_slice(&ms.to_le_bytes());
    }

    fn opt<T: ?Sized>(&mut self, v: Option<&T>, put: impl FnOnce(&mut Self, &T)) {
        self.bool(v.is_some());
        if let Some(v) = v {
            put(self, v);
        }
    }

    fn list<T>(&mut self, items: &[T], mut put: impl FnMut(&mut Self, &T)) {
        self.var(items.len() as u64);
        for item in items {
            put(self, item);
        }
    }
}

/// Reads a record's payload; every fault is a sentence saying what was wrong.
struct Reader<'a> {
    bytes: &'a [u8],
    clock: &'a Clock,
}

impl<'a> Reader<'a> {
    fn record(mut self) -> Result<Record, String> {
        let rec = match self.u8()? {
            tag::MESSAGE => {
                let id = self.var()?;
                let msg = Arc::new(self.message(id)?);
                Record::Message { id, msg }
            }
            tag::RETAIN => Record::Retain {
                topic: self.string()?,
                id: self.opt(Self::var)?,
            },
            tag::SESSION => Record::Session {
                client: self.client()?,
                version: match self.u8()? {
                    4 => Version::V311,
                    5 => Version::V5,
                    v => return Err(format!("protocol level {v}")),
                },
                expiry: self.u32()?,
            },
            tag::USER => Record::User {
                client: self.client()?,
                user: self.opt(Self::string)?.map(Arc::from),
            },
            tag::AWAY => Record::Away {
                client: self.client()?,
                expires: self.opt(Self::time)?,
            },
            tag::END => Record::End {
                client: self.client()?,
            },
            tag::SUBSCRIBE => Record::Subscribe {
                client: self.client()?,
                filter: self.string()?,
                opts: SubOpts {
                    qos: self.qos()?,
                    no_local: self.bool()?,
                    keep_retain: self.bool()?,
                    id: self.opt(Self::usize)?,
                },
            },
            tag::UNSUBSCRIBE => Record::Unsubscribe {
                client: self.client()?,
                filter: self.string()?,
            },
            tag::QUEUED => Record::Queued {
                client: self.client()?,
                seq: self.var()?,
                msg: self.var()?,
                qos: self.qos()?,
                retain: self.bool()?,
                sub_ids: self.list(Self::usize)?,
                share: self.opt(Self::client)?,
            },
            tag::SENT => Record::Sent {
                client: self.client()?,
                seq: self.var()?,
                pkid: self.u16()?,
            },
            tag::RELEASED => Record::Released {
                client: self.client()?,
                seq: self.var()?,
            },
            tag::DONE => Record::Done {
                client: self.client()?,
                seq: self.var()?,
            },
            tag::QOS2_IN => Record::Qos2In {
                client: self.client()?,
                pkid: self.u16()?,
                held: self.bool()?,
            },
            tag::WILL => Record::Will {
                client: self.client()?,
                at: self.time()?,
                msg: self.var()?,
            },
            tag::WILL_DONE => Record::WillDone {
                client: self.client()?,
            },
            tag::SNAPSHOT_END => Record::SnapshotEnd,
            t => return Err(format!("an unknown kind of record ({t})")),
        };
        match self.bytes.len() {
            0 => Ok(rec),
            n => Err(format!("bytes after its end ({n})")),
        }
    }

    /// A message, whose own id is the record's (it is not written twice).
    fn message(&mut self, id: u64) -> Result<Message, String> {
        Ok(Message {
            topic: self.string()?,
            payload: Bytes::copy_from_slice(self.bytes()?),
            qos: self.qos()?,
            retain: self.bool()?,
            expires: self.opt(Self::time)?,
            props: self.opt(Self::props)?.map(Box::new),
            id,
        })
    }

    fn props(&mut self) -> Result<Props, String> {
        Ok(Props {
            payload_format_indicator: self.opt(Self::u8)?,
            message_expiry_interval: self.opt(Self::u32)?,
            topic_alias: self.opt(Self::u16)?,
            response_topic: self.opt(Self::string)?,
            correlation_data: self.opt(|r| Ok(Bytes::copy_from_slice(r.bytes()?)))?,
            user_properties: self.list(|r| Ok((r.string()?, r.string()?)))?,
            subscription_identifiers: self.list(Self::usize)?,
            content_type: self.opt(Self::string)?,
        })
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let (head, rest) = (self.bytes.split_first_chunk::<N>()).ok_or("it ends early")?;
        self.bytes = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        self.take().map(u8::from_le_bytes)
    }

    fn u16(&mut self) -> Result<u16, String> {
        self.take().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.take().map(u32::from_le_bytes)
    }

    fn qos(&mut self) -> Result<u8, String> {
        match self.u8()? {
            q @ 0..=2 => Ok(q),
            q => Err(format!("QoS {q}")),
        }
    }

    fn bool(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("{b} where a bool (0 or 1) belongs")),
        }
    }

    /// A LEB128 varint (see [`Writer::var`]) of at most 64 bits.
    fn var(&mut self) -> Result<u64, String> {
        let mut n = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if bits << shift >> shift != bits {
                break;
            }
            n |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("a number of more than 64 bits".into())
    }

    fn usize(&mut self) -> Result<usize, String> {
        let n = self.var()?;
        usize::try_from(n).map_err(|_| format!("{n}, too large a number here"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.usize()?;
        if n > self.bytes.len() {
            return Err(format!(
                "a length of {n} with {} bytes left",
                self.bytes.len()
            ));
        }
        let (b, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(b)
    }

    fn string(&mut self) -> Result<String, String> {
        let b = self.bytes()?;
        let s = std::str::from_utf8(b).map_err(|e| format!("a string that is not UTF-8: {e}"))?;
        Ok(s.to_string())
    }

    fn client(&mut self) -> Result<Arc<str>, String> {
        self.string().map(Arc::from)
    }

    fn time(&mut self) -> Result<Instant, String> {
        let ms = self.take().map(i64::from_le_bytes)?;
        Ok(self.clock.instant_of(ms))
    }

    fn opt<T>(
        &mut self,
        get: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match self.bool()? {
            true => get(self).map(Some),
            false => Ok(None),
        }
    }

    /// A list. It grows as its items read rather than by its count: an item in memory can
    /// be many times its bytes.
    fn list<T>(
        &mut self,
        mut get: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let n = self.var()?;
        // Each item takes a byte at least.
        if n > self.bytes.len() as u64 {
            return Err(format!(
                "a list of {n} items with {} bytes left",
                self.bytes.len()
            ));
        }
        let mut items = Vec::new();
        for _ in 0..n {
            items.push(get(self)?);
        }
        Ok(items)
    }
}

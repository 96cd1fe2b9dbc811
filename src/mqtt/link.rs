//! One connection to the broker: one attempt (dial, CONNECT, CONNACK), then keep-alive
//! pings and buffered full-duplex I/O. Whom to try, with which protocol version and when
//! to retry is decided in [`crate::mqtt::dial`] and driven by [`crate::mqtt::connect`].
//!
//! rumqttc's `EventLoop` is deliberately not used: it clears its queue after a clean
//! reconnect, retries without backoff and assigns packet ids itself, so a tool that must
//! not lose a line cannot know which line an acknowledgement is for. Here the owner of a
//! [`Link`] decides every packet id, and [`Link::io`] only moves bytes. `io` is
//! cancel-safe, so the owner can `select!` it against its own inputs.

use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

use crate::mqtt::coalesce::{Coalesce, Reads};
use crate::mqtt::endpoint::Transport;
use crate::mqtt::transport::{self, Dialer};
use crate::mqtt::tx::{LinkError, Tx};
use crate::mqtt::wire::{self, ConnAckInfo, ConnectSpec, Inbound, Peek, Refusal, Version};

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// An established MQTT connection (CONNACK received and accepted).
pub struct Link {
    rd: Reader,
    wr: Writer,
    version: Version,
    rbuf: BytesMut,
    /// Bytes to send; the owner appends packets through [`Link::tx`].
    wbuf: BytesMut,
    max_in: usize,
    keepalive: Duration,
    last_sent: Instant,
    ping_sent: Option<Instant>,
    /// Bytes of an oversized packet still to drop as they arrive.
    skip: usize,
    /// What the broker said in its CONNACK.
    connack: ConnAckInfo,
    coalesce: Option<Coalesce>,
}

/// Read buffer growth step: one read can bring in many small packets at once.
const READ_CHUNK: usize = 64 * 1024;

impl Link {
    /// Waits until bytes arrived (then call [`Link::next_packet`]) or some of `wbuf` was
    /// written; sends keep-alive pings on the way. Cancel-safe.
    pub async fn io(&mut self) -> Result<(), LinkError> {
        loop {
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
                self.rbuf.reserve(READ_CHUNK);
            }
            let timer = self.keepalive_deadline();
            let hold = self.coalesce.as_ref().and_then(Coalesce::deadline);
            tokio::select! {
                r = self.rd.read_buf(&mut self.rbuf) => {
                    return match r? {
                        0 => Err(LinkError::Closed),
                        n => {
                            if let Some(c) = &mut self.coalesce {
                                c.after_read(n);
                            }
                            Ok(())
                        }
                    };
                }
                _ = sleep_until(hold.unwrap_or_else(Instant::now)), if hold.is_some() => {
                    if let Some(c) = &mut self.coalesce {
                        c.expire();
                    }
                }
                r = self.wr.write(&self.wbuf), if !self.wbuf.is_empty() => {
                    let n = r?;
                    if n == 0 {
                        return Err(LinkError::Closed);
                    }
                    self.wbuf.advance(n);
                    self.last_sent = Instant::now();
                    return Ok(());
                }
                _ = sleep_until(timer.unwrap_or_else(Instant::now)), if timer.is_some() => {
                    if self.ping_sent.is_some() {
                        return Err(LinkError::NoPingResp);
                    }
                    wire::encode_ping(&mut self.wbuf);
                    self.ping_sent = Some(Instant::now());
                }
            }
        }
    }

    /// When the keep-alive timer fires: a ping is due, or the answer to one is overdue.
    fn keepalive_deadline(&self) -> Option<Instant> {
        if self.keepalive.is_zero() {
            return None;
        }
        Some(match self.ping_sent {
            Some(sent) => sent + self.keepalive,
            None => self.last_sent + self.keepalive,
        })
    }

    /// The next complete packet received, if any. PINGRESP is handled here.
    pub fn next_packet(&mut self) -> Result<Option<Inbound>, LinkError> {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(self.rbuf.len());
                self.rbuf.advance(n);
                self.skip -= n;
                if self.skip > 0 {
                    return Ok(None);
                }
            }
            match wire::peek_oversized(&self.rbuf, self.max_in) {
                Peek::NeedMore => return Ok(None),
                Peek::Oversized(delivery, size) => {
                    self.skip = size;
                    return Ok(Some(Inbound::Oversized { delivery, size }));
                }
                Peek::Fits => {}
            }
            match wire::decode(self.version, &mut self.rbuf, self.max_in) {
                Ok(Some(Inbound::PingResp)) => self.ping_sent = None,
                Ok(Some(Inbound::Disconnect { reason })) => {
                    return Err(LinkError::Disconnected(reason));
                }
                Ok(p) => return Ok(p),
                Err(e) => return Err(LinkError::Wire(e)),
            }
        }
    }

    /// Queues a PINGREQ now (its answer is awaited like a keep-alive ping's).
    pub fn ping(&mut self) {
        if self.ping_sent.is_none() {
            wire::encode_ping(&mut self.wbuf);
            self.ping_sent = Some(Instant::now());
        }
    }

    /// Wake the reader only once `bytes` are queued, or shortly after (a publisher waiting
    /// for acknowledgements to free its window); 1 for every byte. Nothing with
    /// [`Reads::Eager`].
    pub fn wake_at(&mut self, bytes: usize) {
        if let Some(c) = &mut self.coalesce {
            c.wake_at(bytes);
        }
    }

    /// The protocol version of this connection.
    pub fn version(&self) -> Version {
        self.version
    }

    /// What the broker said in its CONNACK.
    pub fn connack(&self) -> &ConnAckInfo {
        &self.connack
    }

    /// Where the owner queues packets, with what the broker accepts.
    pub fn tx(&mut self) -> Tx<'_> {
        Tx {
            version: self.version,
            connack: &self.connack,
            buf: &mut self.wbuf,
        }
    }

    /// Bytes queued but not yet written to the socket.
    pub fn unsent(&self) -> usize {
        self.wbuf.len()
    }

    /// Writes everything queued, waiting as long as it takes.
    pub async fn flush(&mut self) -> Result<(), LinkError> {
        while !self.wbuf.is_empty() {
            let n = self.wr.write(&self.wbuf).await?;
            if n == 0 {
                return Err(LinkError::Closed);
            }
            self.wbuf.advance(n);
            self.last_sent = Instant::now();
        }
        Ok(())
    }

    /// Sends DISCONNECT and waits until the broker closes the connection, at most until
    /// `deadline`. Returns whether the broker closed it (so it processed all we sent).
    pub async fn disconnect(&mut self, deadline: Instant) -> bool {
        // Wait for no mark below which bytes are held back: this is the last read.
        self.wake_at(1);
        wire::encode_disconnect(&mut self.wbuf);
        let closed = async {
            self.flush().await?;
            let _ = self.wr.shutdown().await;
            let mut sink = [0u8; 4096];
            while self.rd.read(&mut sink).await? > 0 {}
            Ok::<(), LinkError>(())
        };
        matches!(timeout_at(deadline, closed).await, Ok(Ok(())))
    }
}

/// Why one connection attempt failed.
#[derive(Debug)]
pub(crate) enum Attempt {
    Io(io::Error),
    /// A certificate that does not verify, on either side: retrying cannot fix it.
    Certificate(String),
    /// The host name does not exist.
    Unresolved(crate::mqtt::resolve::Unresolved),
    /// The proxy failed or said no.
    Proxy(crate::mqtt::proxy::ProxyError),
    Refused(Refusal),
    /// The broker closed the connection after our CONNECT, before any CONNACK.
    Closed,
    /// The broker did not answer our CONNECT in the time given.
    Unanswered,
    Protocol(String),
    TimedOut,
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attempt::Io(e) => write!(f, "{e}"),
            Attempt::Certificate(why) => f.write_str(why),
            Attempt::Unresolved(u) => write!(f, "{u}"),
            Attempt::Proxy(p) => write!(f, "{p}"),
            Attempt::Refused(r) => write!(f, "connection refused by the broker: {}", r.describe()),
            Attempt::Closed => f.write_str("the broker closed the connection before CONNACK"),
            Attempt::Unanswered => f.write_str("the broker did not answer the CONNECT"),
            Attempt::Protocol(m) => f.write_str(m),
            Attempt::TimedOut => f.write_str("timed out"),
        }
    }
}

impl From<LinkError> for Attempt {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::Io(e) => Attempt::from(e),
            LinkError::Closed => Attempt::Closed,
            other => Attempt::Protocol(other.to_string()),
        }
    }
}

impl From<io::Error> for Attempt {
    fn from(e: io::Error) -> Self {
        if let Some(u) = crate::mqtt::resolve::unresolved(&e) {
            return Attempt::Unresolved(u.clone());
        }
        if let Some(p) = crate::mqtt::proxy::proxy_error(&e) {
            return Attempt::Proxy(p.clone());
        }
        match transport::is_certificate_error(&e) {
            Some(why) => Attempt::Certificate(why),
            None => Attempt::Io(e),
        }
    }
}

/// One connection attempt: dial, send CONNECT, wait for the CONNACK, at most
/// `answer_within` once the CONNECT is sent (the caller bounds the whole attempt).
pub(crate) async fn connect_once(
    dialer: &Dialer,
    version: Version,
    spec: &ConnectSpec,
    max_in: usize,
    reads: Reads,
    answer_within: Option<Duration>,
) -> Result<Link, Attempt> {
    // Read marks (see coalesce): a subscriber tunes its mark by comparing reads with it,
    // and over TLS or WebSocket a read is one record or frame, not what the kernel had
    // queued.
    let marks = match reads {
        _ if !crate::mqtt::coalesce::supported() => None,
        Reads::Eager => None,
        Reads::Stream if dialer.endpoint().transport != Transport::Tcp => None,
        Reads::Stream => Some(true),
        Reads::Told => Some(false),
    };
    let (stream, fd) = dialer.connect(marks.is_some()).await?;
    let (rd, wr) = tokio::io::split(stream);
    let mut link = Link {
        rd: Box::new(rd),
        wr: Box::new(wr),
        version,
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        wbuf: BytesMut::with_capacity(READ_CHUNK),
        max_in,
        keepalive: Duration::from_secs(u64::from(spec.keepalive)),
        last_sent: Instant::now(),
        ping_sent: None,
        skip: 0,
        connack: ConnAckInfo::default(),
        coalesce: fd.zip(marks).map(|(fd, follow)| Coalesce::new(fd, follow)),
    };
    wire::encode_connect(version, spec, &mut link.wbuf);
    link.flush().await?;
    let connack = link.await_connack();
    match answer_within {
        Some(limit) => timeout(limit, connack)
            .await
            .unwrap_or(Err(Attempt::Unanswered))?,
        None => connack.await?,
    }
    Ok(link)
}

impl Link {
    /// Reads until the CONNACK, which must be the first packet.
    async fn await_connack(&mut self) -> Result<(), Attempt> {
        loop {
            match self.next_packet()? {
                Some(Inbound::ConnAck(Ok(info))) => {
                    self.connack = info;
                    return Ok(());
                }
                Some(Inbound::ConnAck(Err(r))) => return Err(Attempt::Refused(r)),
                Some(other) => {
                    return Err(Attempt::Protocol(format!(
                        "expected CONNACK from the broker, got {other:?}"
                    )));
                }
                None => {}
            }
            match self.rd.read_buf(&mut self.rbuf).await {
                Ok(0) => return Err(Attempt::Closed),
                Ok(_) => {}
                // A reset answering the CONNECT is a close too (it may come as an RST).
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(Attempt::Closed);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

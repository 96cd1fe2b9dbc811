//! The connection of a tool's run, as both drivers use it, in the style of rumqttc's
//! `EventLoop::poll`: [`Connection::next_event`] waits for the link's I/O or for the
//! connection being made, and [`Connection::reconnect`] starts the next one after a pause.
//! It is also the one place that says on stderr that a connection was lost or made again.
//!
//! A connection being made owns the [`Connector`] (which keeps what the run learnt: the
//! protocol version, the will, the next node) and hands it back when it is done, so the
//! driver's loop can keep it across turns of `select!` without borrowing.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::error::Error;
use crate::mqtt::connect::Connector;
use crate::mqtt::link::Link;
use crate::mqtt::tx::LinkError;

/// A connection being made, with the connector it gives back.
type Dialing = Pin<Box<dyn Future<Output = (Connector, Result<Link, Error>)>>>;

/// What happened to the connection.
#[derive(Debug)]
pub enum LinkEvent {
    /// A connection was accepted (`first`: the first of the run).
    Connected { first: bool },
    /// The link read or wrote: what it received is in [`Connection::link`].
    Io,
    /// The connection was lost; [`Connection::reconnect`] makes the next.
    Lost(LinkError),
}

/// The link, or the connection being made.
pub struct Connection {
    link: Option<Link>,
    dialing: Option<Dialing>,
    /// The connector while no connection is being made.
    idle: Option<Connector>,
    /// Connections accepted so far.
    accepted: u64,
}

impl Connection {
    /// Starts the first connection, which may take until `deadline`.
    pub fn start(connector: Connector, deadline: Instant) -> Connection {
        Connection {
            link: None,
            dialing: Some(dial(connector, Some(deadline), Duration::ZERO)),
            idle: None,
            accepted: 0,
        }
    }

    /// Waits for what happens next: the link's I/O, or the connection being made. Safe
    /// to cancel (in `select!`): a connection being made goes on at the next call. An
    /// error ends the run: no broker could be reached, or one refused for good.
    pub async fn next_event(&mut self) -> Result<LinkEvent, Error> {
        if let Some(l) = self.link.as_mut() {
            return Ok(match l.io().await {
                Ok(()) => LinkEvent::Io,
                Err(lost) => {
                    self.link = None;
                    LinkEvent::Lost(lost)
                }
            });
        }
        let Some(d) = self.dialing.as_mut() else {
            // Lost, and no next connection asked for: the driver ends the run rather
            // than wait for ever.
            return Err(Error::Failed("no connection is being made".into()));
        };
        let (connector, made) = d.await;
        self.dialing = None;
        let link = made?;
        self.accepted += 1;
        let first = self.accepted == 1;
        if !first {
            let resumed = match link.connack().session_present {
                true => "; session resumed",
                false => "",
            };
            log::warn!("reconnected to {}{resumed}", connector.endpoint());
        }
        self.idle = Some(connector);
        self.link = Some(link);
        Ok(LinkEvent::Connected { first })
    }

    /// The link, while connected.
    pub fn link(&mut self) -> Option<&mut Link> {
        self.link.as_mut()
    }

    /// The link, taken out for the end of the run.
    pub fn take_link(&mut self) -> Option<Link> {
        self.link.take()
    }

    /// The connector, while no connection is being made: what it learnt (the broker of
    /// the last connection, whether the will is accepted), and the will to change.
    pub fn connector(&mut self) -> Option<&mut Connector> {
        self.idle.as_mut()
    }

    /// After [`LinkEvent::Lost`]: says why the connection ended (the one place that
    /// does), unless the tool explained it itself.
    pub fn say_lost(&self, lost: &LinkError) {
        log::warn!("connection lost: {lost}; reconnecting");
    }

    /// After [`LinkEvent::Lost`]: the next connection, to the next broker of the list,
    /// after `pause`.
    pub fn reconnect(&mut self, pause: Duration) {
        if let Some(mut connector) = self.idle.take() {
            connector.lost();
            self.dialing = Some(dial(connector, None, pause));
        }
    }
}

/// Makes a connection after `pause`, until `deadline` (None: for ever).
fn dial(mut connector: Connector, deadline: Option<Instant>, pause: Duration) -> Dialing {
    Box::pin(async move {
        // Not even a zero sleep: tokio's timer would hold the first attempt for up to a
        // tick (a millisecond), which a one-shot publish pays in full.
        if !pause.is_zero() {
            sleep(pause).await;
        }
        let made = connector.establish(deadline).await;
        (connector, made)
    })
}

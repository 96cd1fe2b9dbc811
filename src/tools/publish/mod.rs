//! chat-pub: read lines, publish, track acknowledgements, drain, disconnect.
//!
//! The protocol is decided in [`state::PubState`] (no I/O, time passed in); this driver
//! only waits — for input, the connection, a connection attempt, a signal, the drain
//! deadline — and moves bytes. Every message at QoS 1 or 2 stays in the outbox until the
//! broker acknowledged it; chat-pub picks the packet ids itself, so each acknowledgement
//! names its line, and after a reconnect the outbox sends again, in order, before any
//! newer line.

mod config;
mod drain;
pub mod input;
mod join;
mod outbox;
mod outgoing;
mod state;
mod streak;
#[cfg(test)]
mod testing;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use config::PubConfig;

use crate::cli::{Given, PubArgs};
use crate::error::Error;
use crate::mqtt::connect::Connector;
use crate::mqtt::connection::{Connection, LinkEvent};
use crate::mqtt::link::Link;
use crate::mqtt::tx::LinkError;
use crate::mqtt::wire::Version;
use crate::signals::Signals;
use crate::tool;
use crate::tools::profile;
use input::Control;
use outgoing::Outgoing;
use state::{PubState, Stop};

/// Input batches buffered between the stdin thread and the publisher.
const INPUT_BATCHES: usize = 4;

/// Runs chat-pub to completion.
pub fn run(mut args: PubArgs, given: &Given) -> Result<(), Error> {
    let (common, nick, dialect) = (&mut args.common, &mut args.nick, &mut args.dialect);
    if let Some(settings) = profile::configure(common, nick, dialect, given)? {
        return profile::print(&settings);
    }
    if args.common.fingerprint {
        return crate::tools::identity::print_fingerprint(&args.common);
    }
    let config = PubConfig::new(&args)?;
    let rt = tool::runtime()?;
    let (tx, rx) = mpsc::channel(INPUT_BATCHES);
    let control = Arc::new(Control::default());
    input::spawn(
        config.source,
        config.prep,
        config.rules,
        tx,
        control.clone(),
    )
    .map_err(|e| Error::Failed(format!("cannot start the input thread: {e}")))?;
    let client_id = config.connect.spec.client_id.clone();
    let first = Instant::now() + config.connect_timeout;
    let mut driver = Driver {
        state: PubState::new(client_id, config.presence, config.drain_timeout),
        input: Input { rx, control },
        conn: Connection::start(Connector::new(config.connect), first),
        needs_v5: config.needs_v5,
    };
    let result = rt.block_on(async {
        let mut signals = Signals::install()?;
        let Driver {
            state,
            input,
            conn,
            needs_v5,
        } = &mut driver;
        let r = publish(state, input, conn, *needs_v5, &mut signals).await;
        tool::say_all(driver.state.take_notes());
        r
    });
    let input_failures = driver.input.control.failures.load(Ordering::Relaxed);
    driver.state.outcome(result, input_failures)
}

/// The input thread as the publisher sees it.
struct Input {
    rx: mpsc::Receiver<Vec<Outgoing>>,
    control: Arc<Control>,
}

struct Driver {
    state: PubState,
    input: Input,
    conn: Connection,
    /// The flags set MQTT 5 properties.
    needs_v5: bool,
}

/// The loop: reads input and publishes it while connected, keeps reading (within the
/// memory bound) while (re)connecting, so that end of input always starts the drain.
async fn publish(
    state: &mut PubState,
    input: &mut Input,
    conn: &mut Connection,
    needs_v5: bool,
    signals: &mut Signals,
) -> Result<(), Error> {
    while !ready_to_wait(state, conn.link())? {
        let drain = state.drain_deadline().map(Instant::from_std);
        let want_input = state.wants_input(conn.link().map(|l| l.unsent()));
        tokio::select! {
            biased;
            signal = signals.recv() => {
                if state.signal(signal)? == Stop::StopInput {
                    take_the_rest(state, input).await;
                }
                state.end_of_input(std::time::Instant::now());
            }
            event = conn.next_event() => match event.map_err(|e| state.cannot_reconnect(e))? {
                LinkEvent::Io => {
                    if let Err(lost) = on_packets(state, conn) {
                        lost_connection(state, conn, &lost)?;
                    }
                }
                LinkEvent::Lost(lost) => lost_connection(state, conn, &lost)?,
                LinkEvent::Connected { .. } => {
                    if needs_v5 {
                        mqtt5_only(state, conn)?;
                    }
                    let has_will = conn.connector().is_some_and(|c| c.has_will());
                    if let Some(l) = conn.link() {
                        state.connected(&mut l.tx(), has_will, std::time::Instant::now());
                    }
                }
            },
            batch = input.rx.recv(), if want_input => match batch {
                Some(b) => state.take(b),
                None => state.end_of_input(std::time::Instant::now()),
            },
            _ = sleep_until(drain.unwrap_or_else(Instant::now)), if drain.is_some() => {
                return Err(state.drain_expired());
            }
        }
    }
    if let Some(l) = conn.take_link() {
        finish(state, l, signals).await;
    }
    Ok(())
}

/// The flags' properties cannot go over MQTT 3.1.1: a broker that speaks only that (found
/// by `-V auto`) ends the run before anything is sent there (exit 3), never a message
/// without them.
fn mqtt5_only(state: &PubState, conn: &mut Connection) -> Result<(), Error> {
    let version = conn.link().map(|l| l.version());
    if version != Some(Version::V311) {
        return Ok(());
    }
    let broker = conn
        .connector()
        .map(|c| c.endpoint().to_string())
        .unwrap_or_default();
    Err(state.cannot_reconnect(Error::Unreachable(format!(
        "the broker at {broker} speaks MQTT 3.1.1 only, which cannot carry message \
         properties ({}): nothing is sent without them; use a broker that speaks MQTT 5",
        config::PROPERTY_FLAGS
    ))))
}

/// Sends what the window allows and says what there is to say before the loop waits
/// again; true when the run is over, an error when the drain timed out.
fn ready_to_wait(state: &mut PubState, link: Option<&mut Link>) -> Result<bool, Error> {
    if let Some(l) = link {
        let mark = state.fill(&mut l.tx());
        l.wake_at(mark);
    }
    tool::say_all(state.take_notes());
    if state.done() {
        return Ok(true);
    }
    match state.drain_deadline() {
        Some(d) if std::time::Instant::now() >= d => Err(state.drain_expired()),
        _ => Ok(false),
    }
}

/// Hands every packet the connection brought to the state.
fn on_packets(state: &mut PubState, conn: &mut Connection) -> Result<(), LinkError> {
    if let Some(l) = conn.link() {
        while let Some(p) = l.next_packet()? {
            state.on_packet(p, &mut l.tx());
        }
    }
    Ok(())
}

/// The connection was lost (or its bytes made no sense): the state decides the pause,
/// presence renews the will, and the next connection is made.
fn lost_connection(
    state: &mut PubState,
    conn: &mut Connection,
    lost: &LinkError,
) -> Result<(), Error> {
    conn.take_link();
    let (pause, explained) = state.connection_lost(lost, std::time::Instant::now())?;
    if !explained {
        conn.say_lost(lost);
    }
    if let (Some(will), Some(c)) = (state.renew_presence(SystemTime::now()), conn.connector()) {
        c.set_will_payload(will);
    }
    conn.reconnect(pause);
    Ok(())
}

/// The first signal: stop the input thread and take every batch it has read, until it
/// waits in read(2) or has ended (at most a second).
async fn take_the_rest(state: &mut PubState, input: &mut Input) {
    log::warn!(
        "interrupted: sending what was read, then exiting; waiting up to {}s for the \
         broker's acknowledgements (--drain-timeout); interrupt again to quit now",
        state.drain_timeout().as_secs_f64()
    );
    input.control.stop.store(true, Ordering::Release);
    let give_up = Instant::now() + Duration::from_secs(1);
    loop {
        match input.rx.try_recv() {
            Ok(b) => state.take(b),
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty)
                if input.control.idle.load(Ordering::Acquire) || Instant::now() > give_up =>
            {
                break;
            }
            Err(mpsc::error::TryRecvError::Empty) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// Everything is acknowledged: say goodbye (presence), disconnect, and make sure the
/// broker read it all (which is how QoS 0 messages count as delivered).
async fn finish(state: &mut PubState, mut link: Link, signals: &mut Signals) {
    log::info!("every message acknowledged; disconnecting");
    state.leave(&mut link.tx(), SystemTime::now());
    let deadline = Instant::from_std(state.disconnect_deadline(std::time::Instant::now()));
    state.disconnected(link.disconnect(deadline).await);
    tokio::select! {
        biased;
        signal = signals.recv() => state.late_signal(signal),
        () = std::future::ready(()) => {}
    }
}

//! chat-broker: the engine's driver. It listens (`listen`: MQTT, TLS, WebSocket), lets
//! clients in (`gate`, by `auth`'s rules), reads each client's packets and hands them to
//! the engine (`conn`), and writes what the engine answers (`hub`).
//!
//! The engine (`engine`) decides everything and does no I/O; it sits behind one mutex,
//! which every connection takes once per batch of packets it read. Each connection has a
//! reader and a writer task fed by a channel, so a client that reads slowly never holds up
//! the others. On SIGINT or SIGTERM it stops gracefully (see [`stop`]). With `--data-dir`,
//! the store (`store`) keeps what the engine records of its durable state, and the hub
//! holds back what depends on a record until it is on disk.

mod auth;
mod conn;
mod engine;
#[doc(hidden)]
pub mod fuzzing;
mod gate;
mod hub;
mod listen;
mod passwd;
mod store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_rustls::TlsAcceptor;

use crate::cli::{BrokerArgs, BrokerCommand};
use crate::error::Error;
use crate::signals::Signals;
use engine::{Engine, Limits};
use gate::{AccessFiles, Gate};
use hub::Shared;
use store::Store;

/// Open files kept for other than clients: the listeners, the process's own.
const RESERVED_FILES: u64 = 64;

/// Runs the broker until SIGINT or SIGTERM (or a command, such as `passwd`).
pub fn run(args: BrokerArgs) -> Result<(), Error> {
    if let Some(BrokerCommand::Passwd(p)) = &args.command {
        return passwd::run(p);
    }
    let wanted = listen::wanted(&args)?;
    let tls = listen::tls_config(&args)?;
    let files = AccessFiles::from(&args);
    let origins = Arc::new(listen::Origins::new(&args));
    let (policy, acl) = files.read().map_err(Error::Usage)?;
    listen::check_exposure(&wanted, &args)?;
    // Bind everything before serving: a taken port is exit 3, at once.
    let listeners = (wanted.iter())
        .map(|(addr, kind)| {
            Ok(listen::Listener {
                socket: listen::bind(addr)?,
                kind: *kind,
                tls: tls.clone().map(TlsAcceptor::from),
                identity: args.use_identity_as_username,
                origins: origins.clone(),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let open_files = crate::tool::raise_open_files();
    // One file per client, and a few for the listeners (and the process's own).
    let fit = match open_files {
        0 => usize::MAX,
        n => usize::try_from(n.saturating_sub(RESERVED_FILES).max(1)).unwrap_or(usize::MAX),
    };
    let max_connections =
        (args.max_connections).map_or(fit, |n| usize::try_from(n).unwrap_or(usize::MAX));
    log::info!("open files: up to {open_files}; at most {max_connections} clients at once");
    // A quarter of the memory by default, at least 64 MiB.
    let budget = (args.max_queued_bytes)
        .or_else(|| memory_total().map(|m| (m / 4).max(64 << 20)))
        .map_or(usize::MAX, |b| usize::try_from(b).unwrap_or(usize::MAX));
    log::info!("queues: at most {budget} bytes for all clients together");
    let limits = Limits {
        max_connections,
        max_queued_bytes: budget,
        max_queued: usize::try_from(args.max_queued_messages).unwrap_or(usize::MAX),
        persistent_expiry: args.persistent_client_expiration,
    };
    let mut engine = Engine::with_limits(limits);
    engine.set_acl(acl);
    let store = match &args.data_dir {
        Some(dir) => Some(store::open(dir, &mut engine)?),
        None => None,
    };
    let gate = Gate::new(policy);
    // One thread, as mosquitto: the engine is behind one lock anyway, and the tools of a
    // pipe need the other core. (The store's writer has a thread of its own.)
    crate::tool::runtime()?.block_on(serve(listeners, engine, gate, store, files))
}

/// The machine's memory in bytes (`MemTotal` of /proc/meminfo), if it says.
fn memory_total() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Accepts on every listener until SIGINT or SIGTERM; SIGHUP reads the password and ACL
/// files again.
async fn serve(
    listeners: Vec<listen::Listener>,
    engine: Engine,
    gate: Gate,
    mut store: Option<Store>,
    files: AccessFiles,
) -> Result<(), Error> {
    let journal = store.as_ref().map(Store::journal);
    let shared = Arc::new(Shared::new(engine, journal, gate));
    // A store that cannot be written stops the broker: it must not acknowledge more.
    let (fail, mut failed) = tokio::sync::mpsc::unbounded_channel();
    if let Some(store) = &mut store {
        let sh = shared.clone();
        store.start(
            move |synced| sh.released(synced),
            move |why| drop(fail.send(why)),
        );
    }
    let mut names = Vec::new();
    let mut accepting = Vec::new();
    let pending = Arc::new(tokio::sync::Semaphore::new(listen::MAX_PENDING));
    let counted = Arc::new(listen::Pending::default());
    for l in listeners {
        names.push(l.name()?);
        let loop_ = listen::accept_loop(l, shared.clone(), pending.clone(), counted.clone());
        accepting.push(tokio::spawn(loop_));
    }
    tokio::spawn(clock(shared.clone()));
    let mut signals = Signals::install()?;
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| Error::Failed(format!("cannot handle signals: {e}")))?;
    crate::tool::say(format_args!(
        "listening on {} (MQTT 3.1.1 and 5)",
        names.join(", ")
    ));
    // Stopped on purpose: status 0 (not 130 or 143, as for a tool a signal interrupts).
    let broken = loop {
        tokio::select! {
            _ = signals.recv() => break None,
            why = failed.recv() => break why,
            _ = hangups.recv() => reload(&shared, &files),
        }
    };
    stop(&shared, accepting, &mut signals).await;
    if let Some(store) = &mut store {
        store.close();
    }
    match broken {
        None => Ok(()),
        Some(why) => Err(Error::Failed(why)),
    }
}

/// SIGHUP: the password and ACL files read again. A file that cannot be read or does not
/// parse changes nothing: the broker goes on with what it had, and says why.
fn reload(shared: &Shared, files: &AccessFiles) {
    match files.read() {
        Ok((policy, acl)) => {
            let users = policy.passwords.as_ref().map(|p| {
                let names: std::collections::HashSet<String> =
                    p.users().map(String::from).collect();
                names
            });
            shared.gate.set(policy);
            shared.call(|e| {
                e.set_acl(acl);
                if let Some(users) = &users {
                    e.revoke(|u| users.contains(u), Instant::now());
                }
            });
            log::warn!("SIGHUP: the password and ACL files were read again");
        }
        Err(why) => log::error!("SIGHUP: {why}; going on with the files as they were"),
    }
}

/// How long a stopping broker gives its clients to take what was queued for them.
const FLUSH_ON_STOP: Duration = Duration::from_secs(3);

/// A graceful stop: no new connection is accepted, every client is told (MQTT 5:
/// DISCONNECT 0x8B) and its connection closed once what was queued for it is written, for
/// at most [`FLUSH_ON_STOP`]; a second signal stops at once.
async fn stop(shared: &Shared, accepting: Vec<tokio::task::JoinHandle<()>>, signals: &mut Signals) {
    for a in &accepting {
        a.abort();
    }
    log::info!(
        "stopping: telling the clients, writing what is queued for them (at most {} s)",
        FLUSH_ON_STOP.as_secs()
    );
    shared.shutdown();
    tokio::select! {
        () = shared.flushed() => {}
        () = tokio::time::sleep(FLUSH_ON_STOP) => {
            log::warn!("stopping: some clients did not take what was queued for them in time");
        }
        _ = signals.recv() => log::info!("stopping at once"),
    }
}

/// Gives the engine the time once a second (delayed wills, expired sessions).
async fn clock(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        shared.call(|e| e.tick(Instant::now()));
        shared.compact();
        shared.gate.tidy(Instant::now());
    }
}

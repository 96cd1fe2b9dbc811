//! The broker set-ups a run goes through: chat-broker with its data directory, mosquitto
//! with persistence, or a 3-node NATS cluster, each node behind a fault proxy of its own
//! (the tools only ever see the proxies' loopback ports).
//!
//! The nemesis acts on nodes by number: kill -9 and start again on the same store,
//! SIGSTOP/SIGCONT, and on the NATS cluster partitions between nodes.

use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::ValueEnum;

use crate::nats::{NatsCluster, accepts_connect};
use crate::netns::Lab;
use crate::proc::{Sampler, signal, spawn, which};
use crate::proxy::Proxy;

/// Which broker a run goes through.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum Kind {
    /// chat-broker --data-dir (acknowledges a QoS 1/2 message once it is on disk)
    ChatBroker,
    /// mosquitto with persistence, saved after every change (`autosave_on_changes`)
    Mosquitto,
    /// mosquitto without persistence: what a crash costs without it (for comparison)
    MosquittoVolatile,
    /// three nats-server nodes with JetStream and the MQTT gateway, in network namespaces
    Nats,
}

/// A broker process the harness starts and kills: chat-broker or mosquitto.
struct Single {
    program: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// A running set-up.
pub struct Setup {
    pub kind: Kind,
    dir: PathBuf,
    single: Option<Single>,
    nats: Option<NatsCluster>,
    lab: Option<Arc<Lab>>,
    proxies: Vec<Proxy>,
    sampler: Arc<Sampler>,
    /// Said once at the start: faults that cannot be made here, and why.
    pub notes: Vec<String>,
    /// `--nats-mqtt` settings, for the description.
    nats_mqtt: Vec<String>,
}

/// How long a node may take to serve again after a restart.
const RESTART_DEADLINE: Duration = Duration::from_secs(60);

impl Setup {
    /// Starts the brokers of `kind`, keeping their stores and logs in `dir`.
    pub fn start(
        kind: Kind,
        dir: &Path,
        bins: &Path,
        nats_mqtt: &[String],
        sampler: Arc<Sampler>,
    ) -> io::Result<Setup> {
        let mut setup = Setup {
            kind,
            dir: dir.to_path_buf(),
            single: None,
            nats: None,
            lab: None,
            proxies: Vec::new(),
            sampler,
            notes: Vec::new(),
            nats_mqtt: nats_mqtt.to_vec(),
        };
        match kind {
            Kind::ChatBroker | Kind::Mosquitto | Kind::MosquittoVolatile => {
                let program = match kind {
                    Kind::ChatBroker => bins.join("chat-broker"),
                    _ => which("mosquitto").ok_or_else(|| not_found("mosquitto"))?,
                };
                if !program.is_file() {
                    return Err(not_found(&program.display().to_string()));
                }
                setup.single = Some(Single {
                    program,
                    port: free_port()?,
                    child: None,
                });
                setup.restart(0)?;
                let target = SocketAddr::from(([127, 0, 0, 1], setup.port(0)));
                setup.proxies.push(Proxy::start(target)?);
            }
            Kind::Nats => {
                which("nats-server").ok_or_else(|| not_found("nats-server"))?;
                Lab::cleanup_stale();
                match Lab::create(3) {
                    Ok(lab) => setup.lab = Some(Arc::new(lab)),
                    Err(e) => setup.notes.push(format!(
                        "no network namespaces here ({e}): the nodes run on loopback, \
                         without partitions"
                    )),
                }
                let cluster = NatsCluster::start(setup.lab.clone(), dir, &mqtt_extra(nats_mqtt))?;
                for i in 0..3 {
                    setup.proxies.push(Proxy::start(cluster.mqtt_addr(i))?);
                    if let Some(pid) = cluster.pid(i) {
                        setup.sampler.watch(&format!("nats n{i}"), pid as u32);
                    }
                }
                setup.nats = Some(cluster);
            }
        }
        Ok(setup)
    }

    /// What the set-up is, for the report.
    pub fn describe(&self) -> String {
        let settings = self.nats_mqtt.iter().map(|s| format!(", {s}"));
        let nats = settings.collect::<String>();
        match self.kind {
            Kind::ChatBroker => "chat-broker --data-dir".into(),
            Kind::Mosquitto => "mosquitto, persistence (autosave_on_changes, 1)".into(),
            Kind::MosquittoVolatile => "mosquitto, no persistence".into(),
            Kind::Nats if self.lab.is_some() => {
                format!("NATS cluster of 3 (JetStream R3{nats}), a network namespace each")
            }
            Kind::Nats => format!("NATS cluster of 3 (JetStream R3{nats}), on loopback"),
        }
    }

    /// How many nodes there are.
    pub fn nodes(&self) -> usize {
        self.proxies.len().max(1)
    }

    /// The URLs the tools connect to: one proxy per node.
    pub fn client_urls(&self) -> Vec<String> {
        let ports = self.proxies.iter().map(Proxy::port);
        ports.map(|p| format!("mqtt://127.0.0.1:{p}")).collect()
    }

    pub fn proxy(&self, i: usize) -> &Proxy {
        &self.proxies[i]
    }

    /// Capture files the proxies could not make or write.
    pub fn record_errors(&self) -> u64 {
        self.proxies.iter().map(Proxy::record_errors).sum()
    }

    /// Whether nodes can be cut off from each other.
    pub fn can_partition(&self) -> bool {
        self.lab.is_some()
    }

    fn port(&self, i: usize) -> u16 {
        match &self.single {
            Some(s) => s.port,
            None => self.nats.as_ref().map_or(0, |c| c.mqtt_addr(i).port()),
        }
    }

    /// Node `i`'s process id, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        match (&self.single, &self.nats) {
            (Some(s), _) => s.child.as_ref().map(Child::id),
            (_, Some(c)) => c.pid(i).map(|p| p as u32),
            _ => None,
        }
    }

    /// Whether node `i` is running (killed ones are not, paused ones are). A node that
    /// ended by itself is reaped here, so that it is started again.
    pub fn running(&mut self, i: usize) -> bool {
        if let Some(s) = &mut self.single
            && let Some(child) = &mut s.child
            && !matches!(child.try_wait(), Ok(None))
        {
            s.child = None;
        }
        if let Some(c) = &mut self.nats {
            c.reap(i);
        }
        self.pid(i).is_some()
    }

    /// Ends node `i` as a crash would: SIGKILL, no goodbye.
    pub fn kill(&mut self, i: usize) {
        if let Some(s) = &mut self.single {
            if let Some(mut child) = s.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        } else if let Some(c) = &mut self.nats {
            c.kill(i);
        }
    }

    /// Starts node `i` again on its store (a running one is left alone). A single broker
    /// is waited for until it listens (milliseconds); a NATS node serves only once it has
    /// caught up with the cluster, which [`Setup::serving`] tells without holding the
    /// set-up.
    pub fn restart(&mut self, i: usize) -> io::Result<()> {
        if self.running(i) {
            return Ok(());
        }
        if let Some(c) = &mut self.nats {
            c.restart(i)?;
            if let Some(pid) = c.pid(i) {
                self.sampler.watch(&format!("nats n{i}"), pid as u32);
            }
            return Ok(());
        }
        let kind = self.kind;
        let dir = self.dir.clone();
        let s = self.single.as_mut().expect("a single broker");
        // The port it had may have been taken meanwhile: then another, and the proxy
        // follows.
        for attempt in 0..5 {
            if attempt > 0 {
                s.port = free_port()?;
            }
            let mut cmd = broker_command(kind, &s.program, &dir, s.port)?;
            let mut child = spawn(&mut cmd)?;
            if wait_listening(&mut child, s.port) {
                let role = match kind {
                    Kind::ChatBroker => "chat-broker",
                    _ => "mosquitto",
                };
                self.sampler.watch(role, child.id());
                s.child = Some(child);
                let target = SocketAddr::from(([127, 0, 0, 1], s.port));
                if let Some(p) = self.proxies.first() {
                    p.retarget(target);
                }
                return Ok(());
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(io::Error::other(format!(
            "the broker does not start again; its log is in {}",
            dir.display()
        )))
    }

    /// Where to ask whether node `i` serves MQTT again after a restart: None for a single
    /// broker, which serves once it listens.
    pub fn serving_probe(&self, i: usize) -> Option<SocketAddr> {
        self.nats.as_ref().map(|c| c.mqtt_addr(i))
    }

    /// Stops node `i` (SIGSTOP); returns the pid to resume.
    pub fn pause(&self, i: usize) -> Option<u32> {
        let pid = self.pid(i)?;
        signal(pid, libc::SIGSTOP);
        Some(pid)
    }

    /// Resumes a paused process, if it is still node `i`'s.
    pub fn resume(&self, i: usize, pid: u32) {
        if self.pid(i) == Some(pid) {
            signal(pid, libc::SIGCONT);
        }
    }

    /// Cuts node `isolated` off from the other nodes (clients still reach it).
    pub fn partition(&self, isolated: usize) -> io::Result<()> {
        let lab = self
            .lab
            .as_ref()
            .ok_or_else(|| io::Error::other("no lab"))?;
        let rest: Vec<usize> = (0..self.nodes()).filter(|&j| j != isolated).collect();
        lab.partition(&[vec![isolated], rest])
    }

    /// Ends every partition.
    pub fn heal(&self) -> io::Result<()> {
        match &self.lab {
            Some(lab) => lab.heal(),
            None => Ok(()),
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        // Paused processes do not die of SIGKILL before they are continued on some
        // kernels' reapers; continue them first.
        for i in 0..self.nodes() {
            if let Some(pid) = self.pid(i) {
                signal(pid, libc::SIGCONT);
            }
            self.kill(i);
        }
    }
}

/// `--nats-mqtt` settings as lines of the `mqtt` block.
fn mqtt_extra(settings: &[String]) -> String {
    settings.iter().map(|s| format!("  {s}\n")).collect()
}

/// Waits until the node behind `probe` accepts an MQTT CONNECT, or the restart deadline
/// passes; false then. Takes no lock: the probe was read from the set-up before.
pub fn wait_serving(probe: Option<SocketAddr>) -> bool {
    let Some(addr) = probe else { return true };
    let deadline = Instant::now() + RESTART_DEADLINE;
    while Instant::now() < deadline {
        if accepts_connect(addr, Duration::from_secs(5)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// The command that starts the broker of `kind` on `port` with its store in `dir`.
fn broker_command(kind: Kind, program: &Path, dir: &Path, port: u16) -> io::Result<Command> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("broker.log"))?;
    let mut cmd = Command::new(program);
    match kind {
        Kind::ChatBroker => {
            cmd.arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--data-dir")
                .arg(dir.join("store"));
        }
        _ => {
            // max_queued_messages: the default 1000 drops messages for a subscriber
            // that is away, silently; the harness would count them as lost. `user root`:
            // started as root, mosquitto runs as user mosquitto otherwise, which cannot
            // write its persistence file here (it has no effect for other users).
            let persistence = if kind == Kind::Mosquitto {
                format!(
                    "persistence true\npersistence_location {}/\n\
                     autosave_on_changes true\nautosave_interval 1\n",
                    dir.display()
                )
            } else {
                "persistence false\n".to_string()
            };
            let conf = dir.join("mosquitto.conf");
            let text = format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n{persistence}\
                 max_queued_messages 10000000\nset_tcp_nodelay true\nlog_dest stderr\n\
                 log_type error\nlog_type warning\nlog_type notice\n"
            );
            fs::write(&conf, text)?;
            cmd.arg("-c").arg(conf);
        }
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    Ok(cmd)
}

/// Waits until `child` listens on `port`; false when it exits first (port taken) or takes
/// longer than the restart deadline.
fn wait_listening(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + RESTART_DEADLINE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// A free loopback port (bind-and-close: another process may take it before the broker
/// binds it, which `restart` handles).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn not_found(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{what} not found"))
}

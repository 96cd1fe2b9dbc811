//! A 3-node NATS cluster serving MQTT 3.1.1 for fault injection: each node in its own host
//! namespace of a [`Lab`] (so partitions cut its routes), or on 127.0.0.1 with free ports
//! where namespaces are refused (kill, restart and pause still work there).
//!
//! Modelled on tests/common/nats.rs: `stream_replicas: 3` so the MQTT streams keep a
//! quorum when any one node dies (NATS may pick R2 and then refuse every CONNECT). Unlike
//! the tests, `ack_wait` stays at its default (30 s): with 5 s, NATS 2.9.10 lost
//! acknowledged QoS 1 messages to subscribers even without any fault (RELIABILITY.md).
//! Here the JetStream store is on disk under the caller's directory and survives
//! [`NatsCluster::restart`], and each node has a monitoring port. A blackholed route is
//! noticed by missed pings only, and NATS skips its ping while the route saw recent
//! (outbound) traffic, so even with `ping_interval` 1 s a partitioned node kept its routes
//! for 33–74 s; the kernel's `tcp_retries2` is left alone, so this is what a partition
//! is. The MQTT port opens seconds before it serves, so readiness is a CONNECT answered
//! by an accepting CONNACK. Children are started by [`crate::proc::spawn`], so that they
//! die with the harness.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::netns::Lab;

/// How many nodes a cluster has.
pub const NODES: usize = 3;

/// NATS `ping_interval` (default 2 min), with `ping_max: 2`.
pub const PING_INTERVAL: &str = "1s";

/// Where one node listens: its ip and client, route, MQTT and monitoring ports.
#[derive(Debug, Clone, Copy)]
struct Addrs {
    ip: Ipv4Addr,
    ports: [u16; 4],
}

const CLIENT: usize = 0;
const ROUTE: usize = 1;
const MQTT: usize = 2;
const HTTP: usize = 3;

/// One nats-server; `child` is None once killed.
struct Node {
    addrs: Addrs,
    conf: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A running 3-node NATS cluster with MQTT; every node is killed on drop. Holds the lab
/// (if any) so that the lab outlives its servers.
pub struct NatsCluster {
    lab: Option<Arc<Lab>>,
    nodes: Vec<Node>,
}

impl NatsCluster {
    /// Starts the cluster, in `lab`'s hosts 0..3 (fixed ports 4222/6222/1883/8222 on each
    /// host's ip) or on 127.0.0.1 with free ports, and returns once every node answers an
    /// MQTT CONNECT (60 s at most). Configs, logs (`nats{i}.log`, appended) and stores
    /// (`nats{i}/jetstream`, emptied first) live in `dir`, which must exist.
    pub fn start(lab: Option<Arc<Lab>>, dir: &Path, mqtt_extra: &str) -> io::Result<NatsCluster> {
        if lab.as_ref().is_some_and(|l| l.len() < NODES) {
            return Err(io::Error::other(format!("NATS needs {NODES} lab hosts")));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        // A free port picked by bind-and-close can be taken before nats binds it: that
        // node exits, and the cluster starts again on new ports (routes name them all).
        loop {
            let addrs: Vec<Addrs> = match &lab {
                Some(lab) => (0..NODES).map(|i| fixed(lab.host_ip(i))).collect(),
                None => free_addrs()?,
            };
            let nodes = (0..NODES).map(|i| prepare(dir, i, &addrs, mqtt_extra));
            let nodes = nodes.collect::<io::Result<_>>()?;
            let mut cluster = NatsCluster {
                lab: lab.clone(),
                nodes,
            };
            for i in 0..NODES {
                cluster.restart(i)?;
            }
            let down = (0..NODES).find(|&i| !cluster.wait_serving(i, deadline));
            let Some(i) = down else { return Ok(cluster) };
            let exited = cluster.nodes[i].child.as_mut().map(|c| c.try_wait());
            let port_taken = lab.is_none() && matches!(exited, Some(Ok(Some(_))));
            if !port_taken || Instant::now() >= deadline {
                let tail = cluster.log_tail(i, 20);
                let msg = format!("NATS node {i} does not serve MQTT; its log ends:\n{tail}");
                return Err(io::Error::new(io::ErrorKind::TimedOut, msg));
            }
        }
    }

    /// Node `i`'s MQTT listener.
    pub fn mqtt_addr(&self, i: usize) -> SocketAddr {
        let a = self.nodes[i].addrs;
        SocketAddr::from((a.ip, a.ports[MQTT]))
    }

    /// Node `i`'s process id while it runs (the nats-server itself, also in a lab).
    pub fn pid(&self, i: usize) -> Option<i32> {
        self.nodes[i].child.as_ref().map(|c| c.id() as i32)
    }

    /// Forgets node `i`'s process if it ended by itself.
    pub fn reap(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(child) = &mut node.child
            && !matches!(child.try_wait(), Ok(None))
        {
            node.child = None;
        }
    }

    /// Kills node `i` with SIGKILL (no goodbye to clients or peers) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again with the same config and store (killing it first if it
    /// runs); does not wait for it to serve (see [`NatsCluster::wait_serving`]).
    pub fn restart(&mut self, i: usize) -> io::Result<()> {
        self.kill(i);
        let node = &self.nodes[i];
        let mut log = std::fs::File::options();
        let log = log
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| ctx(e, &node.log, "open"))?;
        let program = nats_program();
        let mut cmd = match &self.lab {
            Some(lab) => lab.command(i, program),
            None => Command::new(program),
        };
        cmd.arg("-c").arg(&node.conf);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        let what = format!("start {cmd:?}");
        let failed = |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
        self.nodes[i].child = Some(crate::proc::spawn(&mut cmd).map_err(failed)?);
        Ok(())
    }

    /// Waits until node `i` accepts an MQTT CONNECT, up to `deadline`; false if it does
    /// not by then, or is not running.
    pub fn wait_serving(&mut self, i: usize, deadline: Instant) -> bool {
        loop {
            let state = self.nodes[i].child.as_mut().map(Child::try_wait);
            if !matches!(state, Some(Ok(None))) {
                return false; // killed or exited
            }
            let left = deadline.saturating_duration_since(Instant::now());
            // A CONNECT that comes before JetStream is ready is answered by a close
            // after a 4 s timeout: one try may take that long.
            if accepts_connect(self.mqtt_addr(i), left.min(Duration::from_secs(10))) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last `lines` lines of node `i`'s log (kept across kills and restarts).
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Four distinct free 127.0.0.1 ports per node (every socket is held until all are
/// picked, so none is handed out twice).
fn free_addrs() -> io::Result<Vec<Addrs>> {
    let mut ports = [0; 4 * NODES];
    let held: Vec<TcpListener> = (0..4 * NODES)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<io::Result<_>>()?;
    for (port, l) in ports.iter_mut().zip(&held) {
        *port = l.local_addr()?.port();
    }
    let node = |p: &[u16]| Addrs {
        ip: Ipv4Addr::LOCALHOST,
        ports: [p[0], p[1], p[2], p[3]],
    };
    Ok(ports.chunks(4).map(node).collect())
}

/// Where node `i` listens in a lab: fixed ports on its host's ip.
fn fixed(ip: Ipv4Addr) -> Addrs {
    let ports = [4222, 6222, 1883, 8222];
    Addrs { ip, ports }
}

/// Writes node `i`'s config (emptying its store) and names its log.
fn prepare(dir: &Path, i: usize, all: &[Addrs], mqtt_extra: &str) -> io::Result<Node> {
    let store = dir.join(format!("nats{i}"));
    if store.exists() {
        std::fs::remove_dir_all(&store).map_err(|e| ctx(e, &store, "remove"))?;
    }
    let conf = dir.join(format!("nats{i}.conf"));
    let text = config(i, all, &store.join("jetstream"), mqtt_extra);
    std::fs::write(&conf, text).map_err(|e| ctx(e, &conf, "write"))?;
    let (addrs, log) = (all[i], dir.join(format!("nats{i}.log")));
    let child = None;
    Ok(Node {
        addrs,
        conf,
        log,
        child,
    })
}

/// Node `i`'s config: routes to every other node, JetStream in `store`.
/// Node `i`'s configuration; `mqtt_extra` are more lines of its `mqtt` block.
fn config(i: usize, all: &[Addrs], store: &Path, mqtt_extra: &str) -> String {
    let me = all[i];
    let routes: Vec<String> = (0..all.len())
        .filter(|&j| j != i)
        .map(|j| format!("    \"nats-route://{}:{}\"", all[j].ip, all[j].ports[ROUTE]))
        .collect();
    format!(
        "server_name: \"n{i}\"\n\
         listen: \"{ip}:{}\"\n\
         http: \"{ip}:{}\"\n\
         ping_interval: \"{PING_INTERVAL}\"\n\
         ping_max: 2\n\
         jetstream {{\n  store_dir: \"{}\"\n}}\n\
         cluster {{\n  name: \"mqttchat\"\n  listen: \"{ip}:{}\"\n  routes: [\n{}\n  ]\n}}\n\
         mqtt {{\n  listen: \"{ip}:{}\"\n  stream_replicas: 3\n{mqtt_extra}}}\n",
        me.ports[CLIENT],
        me.ports[HTTP],
        store.display(),
        me.ports[ROUTE],
        routes.join("\n"),
        me.ports[MQTT],
        ip = me.ip,
    )
}

/// nats-server by full path where Debian installs it, else from PATH.
fn nats_program() -> &'static str {
    let debian = "/usr/sbin/nats-server";
    Some(debian)
        .filter(|p| Path::new(p).exists())
        .unwrap_or("nats-server")
}

fn ctx(e: io::Error, path: &Path, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Whether the MQTT server at `addr` accepts a 3.1.1 CONNECT (clean session, unique
/// client id) with CONNACK return code 0 within `wait`. Sends DISCONNECT afterwards.
pub fn accepts_connect(addr: SocketAddr, wait: Duration) -> bool {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let id = format!("chaos-{}-{n}", std::process::id());
    let wait = wait.max(Duration::from_millis(10));
    let deadline = Instant::now() + wait;
    let try_once = || -> io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, wait)?;
        let left = deadline.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        s.set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
        // CONNECT: MQTT level 4, clean session, keep-alive 60 s; the id keeps it < 128 bytes.
        let mut packet = b"\x10?\0\x04MQTT\x04\x02\0\x3c\0?".to_vec();
        (packet[1], packet[13]) = (12 + id.len() as u8, id.len() as u8);
        s.write_all(&[&packet, id.as_bytes()].concat())?;
        let mut connack = [0u8; 4];
        s.read_exact(&mut connack)?;
        let ok = connack == [0x20, 2, 0, 0];
        let _ = s.write_all(&[0xe0, 0]);
        Ok(ok)
    };
    try_once().unwrap_or(false)
}

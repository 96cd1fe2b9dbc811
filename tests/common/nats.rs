//! A NATS cluster with its MQTT gateway, started by the test: N `nats-server` processes on
//! free 127.0.0.1 ports, each with its own scratch directory (config, log, JetStream
//! store; in memory where the system has /dev/shm), routed to each other, and each
//! serving MQTT 3.1.1 (NATS speaks no MQTT 5).
//!
//! NATS keeps MQTT sessions, retained messages and QoS 1 messages in JetStream streams,
//! so its MQTT port only serves once JetStream has elected a meta leader and created
//! those streams, seconds after the port is open: [`NatsCluster::start`] returns once
//! every node answers a CONNECT with an accepting CONNACK.
//!
//! Like mosquitto, nats-server is required where CI is set ([`have_nats`]) and skipped
//! elsewhere when it is not installed.

use std::cell::Cell;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{TempDir, accepts_connect, free_port, wait_for_port, wait_until};

/// Whether tests that need nats-server can run; false means "skip". Panics when it is
/// missing but required (CI), as [`super::have_mosquitto`] does.
pub fn have_nats() -> bool {
    super::have_program("nats-server", "apt-get install -y nats-server")
}

/// The three ports of one node.
#[derive(Debug, Clone, Copy)]
struct Ports {
    client: u16,
    route: u16,
    mqtt: u16,
}

/// One nats-server of the cluster.
struct Node {
    dir: TempDir,
    ports: Ports,
    /// None once killed or stopped.
    child: Option<Child>,
}

/// One cluster at a time in the test binary (every integration test runs in it): a node is
/// a JetStream server, CI has two cores, and the failover tests' timings were measured
/// with one cluster running.
static TURN: Mutex<()> = Mutex::new(());

/// A running NATS cluster; every node is killed on drop.
pub struct NatsCluster {
    nodes: Vec<Node>,
    /// Released after the nodes are killed (fields drop after `Drop::drop`).
    _turn: MutexGuard<'static, ()>,
}

impl NatsCluster {
    /// Starts `n` nodes and waits (60 s at most) until every one serves MQTT.
    pub fn start(n: usize) -> NatsCluster {
        assert!(n >= 1, "a cluster of {n} nodes");
        // A test that failed while holding the turn poisons it; the next may go on.
        let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let dirs: Vec<TempDir> = (0..n)
            .map(|i| TempDir::in_memory(&format!("nats{i}")))
            .collect();
        for _ in 0..20 {
            let ports = distinct_ports(n);
            let mut children: Vec<Child> = dirs
                .iter()
                .enumerate()
                .map(|(i, dir)| start_node(dir, i, &ports))
                .collect();
            // A port picked by bind-and-close may be taken before nats-server binds it:
            // then that node exits (or never listens) and the whole cluster starts again
            // on new ports, as the routes name every node's port.
            let all_listen = children.iter_mut().zip(&ports).all(|(child, p)| {
                [p.client, p.route, p.mqtt]
                    .iter()
                    .all(|&port| wait_for_port(port, child))
            });
            if all_listen {
                let nodes = dirs
                    .into_iter()
                    .zip(children)
                    .zip(&ports)
                    .map(|((dir, child), &ports)| Node {
                        dir,
                        ports,
                        child: Some(child),
                    })
                    .collect();
                let cluster = NatsCluster { nodes, _turn: turn };
                cluster.wait_until_serving();
                return cluster;
            }
            for mut child in children {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let logs: Vec<String> = dirs.iter().map(read_log).collect();
        panic!("the NATS cluster did not start; logs:\n{}", logs.join("\n"));
    }

    /// Waits until every running node accepts an MQTT CONNECT.
    fn wait_until_serving(&self) {
        let start = Instant::now();
        let serving = Cell::new(0);
        wait_until(
            "every NATS node serves MQTT",
            || {
                // NATS answers a CONNECT that comes too early after a 4 s JetStream
                // timeout, by closing: each try may take that long.
                while let Some(node) = self.nodes.get(serving.get()) {
                    if !accepts_connect(node.ports.mqtt, Duration::from_secs(10)) {
                        return false;
                    }
                    serving.set(serving.get() + 1);
                }
                true
            },
            || {
                let i = serving.get();
                format!("NATS node {i} does not; its log:\n{}", self.log(i))
            },
        );
        eprintln!(
            "NATS cluster of {} serves MQTT after {:.1} s",
            self.nodes.len(),
            start.elapsed().as_secs_f64()
        );
    }

    /// How many nodes the cluster was started with.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// `mqtt://127.0.0.1:PORT` of node `i`'s MQTT listener.
    pub fn url(&self, i: usize) -> String {
        format!("mqtt://127.0.0.1:{}", self.nodes[i].ports.mqtt)
    }

    /// The MQTT URLs of every node, in order.
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.url(i)).collect()
    }

    /// Kills node `i` (SIGKILL: no goodbye to its clients or peers) and waits until it is
    /// gone.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Node `i`'s log so far (kept after it was killed).
    pub fn log(&self, i: usize) -> String {
        read_log(&self.nodes[i].dir)
    }

    /// The end of every node's log, for a failure message.
    pub fn logs_tail(&self, lines: usize) -> String {
        (0..self.nodes.len())
            .map(|i| {
                let log = self.log(i);
                let all: Vec<&str> = log.lines().collect();
                let tail = all[all.len().saturating_sub(lines)..].join("\n");
                format!("--- NATS node {i}:\n{tail}\n")
            })
            .collect()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Three ports per node, all different (bind-and-close can hand out a port twice).
fn distinct_ports(n: usize) -> Vec<Ports> {
    loop {
        let all: Vec<u16> = (0..3 * n).map(|_| free_port()).collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() == all.len() {
            return all
                .chunks(3)
                .map(|p| Ports {
                    client: p[0],
                    route: p[1],
                    mqtt: p[2],
                })
                .collect();
        }
    }
}

/// Writes node `i`'s config (routes to every other node) and starts it, logging to
/// `nats.log` in its directory. A store left by an earlier attempt is removed: it names
/// peers on other ports.
fn start_node(dir: &TempDir, i: usize, ports: &[Ports]) -> Child {
    let store = dir.path().join("jetstream");
    let _ = std::fs::remove_dir_all(&store);
    let me = ports[i];
    let n = ports.len();
    let cluster = if n > 1 {
        let routes: Vec<String> = ports
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, p)| format!("    \"nats-route://127.0.0.1:{}\"", p.route))
            .collect();
        format!(
            "cluster {{\n  name: \"mqttchat\"\n  listen: \"127.0.0.1:{}\"\n  routes: [\n{}\n  ]\n}}\n",
            me.route,
            routes.join("\n")
        )
    } else {
        String::new()
    };
    // stream_replicas: NATS picks the replica count of its MQTT streams from the peers it
    // knows when the first MQTT client comes, and with 3 nodes starting together that was
    // seen to be 2 — an R2 stream has no quorum once one node is killed, and every
    // CONNECT then fails with "JetStream system temporarily unavailable". With every
    // node a replica, any single node can die.
    //
    // ack_wait stays at its default (30 s): NATS redelivers the QoS 1 messages a session
    // had not acknowledged when its node died only after it, but with 5 s NATS 2.9.10
    // lost acknowledged messages to subscribers even without any fault (examples/chaos,
    // RELIABILITY.md), which made "loses nothing" tests fail now and then.
    let config = format!(
        "server_name: \"n{i}\"\n\
         listen: \"127.0.0.1:{}\"\n\
         jetstream {{\n  store_dir: \"{}\"\n}}\n\
         {cluster}\
         mqtt {{\n  listen: \"127.0.0.1:{}\"\n  stream_replicas: {}\n}}\n",
        me.client,
        store.display(),
        me.mqtt,
        n.min(3),
    );
    let conf = dir.path().join("nats.conf");
    std::fs::write(&conf, config).expect("write nats.conf");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("nats.log"))
        .expect("log file");
    Command::new("nats-server")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start nats-server")
}

fn read_log(dir: &TempDir) -> String {
    std::fs::read_to_string(dir.path().join("nats.log")).unwrap_or_default()
}

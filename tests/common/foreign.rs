//! Optional brokers that are neither mosquitto nor ours: aedes (Node.js), amqtt (Python)
//! and RabbitMQ's MQTT plugin (Erlang), each started by the test on free 127.0.0.1
//! ports when installed, and killed on drop. None of them is ever required, not even in
//! CI: a missing one skips with a line on stderr. tests/README.md has the install
//! commands; an environment variable points at an install elsewhere.
//!
//! RabbitMQ runs as a private node: its own epmd on a free loopback port (never the
//! system's 4369), its node name, HOME, database, logs, config and plugin list in the
//! broker's scratch directory, Erlang distribution on loopback only. Its processes
//! (epmd, the start script, beam) share one process group, killed as a whole.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{
    DEADLINE, TempDir, accepts_connect, free_port, holds_within, wait_for_port, wait_until,
};

/// Where the install commands of tests/README.md put the brokers.
const INSTALL_ROOT: &str = "/opt/mqttchat-brokers";

/// A running optional broker.
pub struct ForeignBroker {
    name: String,
    port: u16,
    child: Child,
    /// RabbitMQ: the process group of epmd, the start script and beam, and epmd (its
    /// leader), killed and reaped on drop.
    group: Option<(u32, Child)>,
    /// Its config and log, removed on drop.
    _dir: TempDir,
}

impl ForeignBroker {
    /// `mqtt://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Which broker and version, e.g. `aedes 1.2.0`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ForeignBroker {
    fn drop(&mut self) {
        if let Some((pgid, epmd)) = &mut self.group {
            // SAFETY: kill has no memory-safety preconditions; a negative pid names the
            // group, which only holds processes this helper started.
            unsafe { libc::kill(-(*pgid as libc::pid_t), libc::SIGKILL) };
            let _ = epmd.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Says why a test is skipped and returns None.
fn skip(what: &str) -> Option<ForeignBroker> {
    eprintln!("skipped: {what} is not installed (see tests/README.md)");
    None
}

/// The path in `var`, or the default install location.
fn location(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(INSTALL_ROOT).join(default))
}

/// A log file in `dir` for a broker's stdout and stderr both.
fn log_file(dir: &TempDir) -> (std::fs::File, std::fs::File) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("broker.log"))
        .expect("log file");
    let log2 = log.try_clone().expect("clone log file");
    (log, log2)
}

// ---------------------------------------------------------------------------------------
// aedes
// ---------------------------------------------------------------------------------------

/// aedes served by tests/brokers/aedes.mjs, from the npm install in `$MQTTCHAT_AEDES`
/// (default /opt/mqttchat-brokers/aedes); None (skip) when node or aedes is missing.
pub fn aedes() -> Option<ForeignBroker> {
    let install = location("MQTTCHAT_AEDES", "aedes");
    if !install.join("node_modules/aedes/package.json").exists() || !runs("node", "--version") {
        return skip("aedes");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/brokers/aedes.mjs");
    let dir = TempDir::new("aedes");
    let (out, err) = log_file(&dir);
    // Port 0: the script says which port it got, so there is no race for one.
    let mut child = Command::new("node")
        .arg(&script)
        .arg(&install)
        .arg("0")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start node");
    let log = || std::fs::read_to_string(dir.path().join("broker.log")).unwrap_or_default();
    let (mut listening, mut exited) = (None, None);
    wait_until(
        "aedes says where it listens",
        || {
            listening = log().lines().find_map(|l| {
                let (name, port) = l.split_once(" listening on 127.0.0.1:")?;
                Some((name.to_string(), port.trim().parse::<u16>().ok()?))
            });
            exited = child.try_wait().ok().flatten();
            listening.is_some() || exited.is_some()
        },
        log,
    );
    let Some((name, port)) = listening else {
        panic!("aedes exited ({exited:?}) at start:\n{}", log());
    };
    Some(ForeignBroker {
        name,
        port,
        child,
        group: None,
        _dir: dir,
    })
}

// ---------------------------------------------------------------------------------------
// amqtt
// ---------------------------------------------------------------------------------------

/// The `amqtt` broker command at `$MQTTCHAT_AMQTT` (default: the venv in
/// /opt/mqttchat-brokers/amqtt); None (skip) when it does not run.
pub fn amqtt() -> Option<ForeignBroker> {
    let exe = location("MQTTCHAT_AMQTT", "amqtt/bin/amqtt");
    let Some(version) = output_of(Command::new(&exe).arg("--version")) else {
        return skip("amqtt");
    };
    let name = format!("amqtt {}", version.trim());
    let dir = TempDir::new("amqtt");
    for _ in 0..20 {
        let port = free_port();
        let conf = dir.path().join("amqtt.yaml");
        // Anonymous clients allowed; the other default plugins ($SYS topics, packet
        // logging) left out.
        std::fs::write(
            &conf,
            format!(
                "listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{port}\n\
                 plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    \
                 allow_anonymous: true\n"
            ),
        )
        .expect("write amqtt.yaml");
        let (out, err) = log_file(&dir);
        let mut child = Command::new(&exe)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start amqtt");
        if wait_for_port(port, &mut child) {
            return Some(ForeignBroker {
                name,
                port,
                child,
                group: None,
                _dir: dir,
            });
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!(
        "amqtt did not start:\n{}",
        std::fs::read_to_string(dir.path().join("broker.log")).unwrap_or_default()
    );
}

// ---------------------------------------------------------------------------------------
// RabbitMQ
// ---------------------------------------------------------------------------------------

/// A private RabbitMQ node with the MQTT plugin, from the start script at
/// `$MQTTCHAT_RABBITMQ` (default: Debian's /usr/lib/rabbitmq/bin/rabbitmq-server; not
/// /usr/sbin/rabbitmq-server, which switches to the rabbitmq user and the system's
/// files). None (skip) when it or epmd is missing.
pub fn rabbitmq() -> Option<ForeignBroker> {
    let script = std::env::var_os("MQTTCHAT_RABBITMQ")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/rabbitmq/bin/rabbitmq-server"));
    if !script.exists() || !runs("epmd", "-help") {
        return skip("RabbitMQ");
    }
    let name = rabbitmq_version(&script)
        .map(|v| format!("RabbitMQ {v}"))
        .unwrap_or_else(|| "RabbitMQ".to_string());
    let dir = TempDir::new("rabbitmq");
    for _ in 0..10 {
        if let Some((child, group, port)) = start_rabbitmq(&script, &dir) {
            return Some(ForeignBroker {
                name,
                port,
                child,
                group: Some(group),
                _dir: dir,
            });
        }
    }
    panic!(
        "RabbitMQ did not start:\n{}",
        std::fs::read_to_string(dir.path().join("broker.log")).unwrap_or_default()
    );
}

/// One attempt on fresh ports: epmd, then the node in epmd's process group. Returns the
/// start script's process, (the group, epmd) and the MQTT port; None (everything
/// killed) when a port was taken meanwhile or the node did not come up.
fn start_rabbitmq(script: &Path, dir: &TempDir) -> Option<(Child, (u32, Child), u16)> {
    use std::os::unix::process::CommandExt;

    static N: AtomicU64 = AtomicU64::new(0);
    let (epmd_port, dist_port, mqtt_port) = (free_port(), free_port(), free_port());
    let (out, err) = log_file(dir);
    let mut epmd = Command::new("epmd")
        .args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start epmd");
    let pgid = epmd.id();
    let kill_group = |epmd: &mut Child| {
        // SAFETY: see ForeignBroker::drop.
        unsafe { libc::kill(-(pgid as libc::pid_t), libc::SIGKILL) };
        let _ = epmd.wait();
    };
    if !wait_for_port(epmd_port, &mut epmd) {
        kill_group(&mut epmd);
        return None;
    }

    let base = dir
        .path()
        .join(format!("node{}", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(base.join("home")).expect("create RabbitMQ dirs");
    let conf = base.join("rabbitmq.conf");
    std::fs::write(
        &conf,
        format!(
            "listeners.tcp = none\n\
             mqtt.listeners.tcp.default = 127.0.0.1:{mqtt_port}\n\
             mqtt.allow_anonymous = true\n\
             log.console = true\n\
             log.console.level = info\n\
             log.file = false\n"
        ),
    )
    .expect("write rabbitmq.conf");
    let plugins = base.join("enabled_plugins");
    std::fs::write(&plugins, "[rabbitmq_mqtt].\n").expect("write enabled_plugins");
    let env_conf = base.join("rabbitmq-env.conf");
    std::fs::write(&env_conf, "").expect("write rabbitmq-env.conf");
    let node = format!("mqttchat-{}-{}@localhost", std::process::id(), pgid);
    let (out, err) = log_file(dir);
    let mut cmd = Command::new(script);
    cmd.env("HOME", base.join("home"))
        .env("ERL_EPMD_PORT", epmd_port.to_string())
        .env("RABBITMQ_NODENAME", &node)
        .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
        .env("RABBITMQ_DIST_PORT", dist_port.to_string())
        .env("RABBITMQ_MNESIA_BASE", base.join("mnesia"))
        .env("RABBITMQ_LOG_BASE", base.join("log"))
        .env("RABBITMQ_CONFIG_FILE", &conf)
        .env(
            "RABBITMQ_ADVANCED_CONFIG_FILE",
            base.join("advanced.config"),
        )
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", &plugins)
        .env("RABBITMQ_CONF_ENV_FILE", &env_conf)
        .env("RABBITMQ_PID_FILE", base.join("rabbitmq.pid"))
        // Distribution on loopback only, and no epmd of Erlang's own choosing.
        .env(
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
            "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false",
        )
        .process_group(pgid as i32)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut child = cmd.spawn().expect("start rabbitmq-server");

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], mqtt_port));
    let mut exited = false;
    let serving = holds_within(DEADLINE, || {
        // beam, not the script, holds the listener: any process of the group will do
        // (the group is ours, so the listener is too).
        let ours = group_pids(pgid)
            .into_iter()
            .any(|pid| super::listens(pid, addr));
        if ours && accepts_connect(mqtt_port, Duration::from_secs(5)) {
            return true;
        }
        exited = matches!(child.try_wait(), Ok(Some(_)));
        exited
    });
    if serving && !exited {
        return Some((child, (pgid, epmd), mqtt_port));
    }
    kill_group(&mut epmd);
    let _ = child.wait();
    None
}

/// The version in the name of the rabbitmq_server-X.Y.Z directory beside the script
/// (Debian: /usr/lib/rabbitmq/lib/rabbitmq_server-3.10.8).
fn rabbitmq_version(script: &Path) -> Option<String> {
    let lib = script.parent()?.parent()?.join("lib");
    std::fs::read_dir(lib).ok()?.find_map(|e| {
        let name = e.ok()?.file_name().into_string().ok()?;
        name.strip_prefix("rabbitmq_server-").map(str::to_owned)
    })
}

/// The processes in process group `pgid` (from /proc).
fn group_pids(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.parse::<u32>().ok())
        .filter(|pid| {
            // /proc/PID/stat: pid (comm) state ppid pgrp …; comm may hold spaces.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = &s[s.rfind(')')? + 1..];
                    rest.split_whitespace().nth(2)?.parse::<u32>().ok()
                })
                == Some(pgid)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------

/// Whether `cmd ARG` can be run at all (its exit status does not matter).
fn runs(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// What `cmd` prints on stdout when it succeeds.
fn output_of(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

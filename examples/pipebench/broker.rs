//! The harness's own mosquitto (or another broker) on a free loopback port, and a minimal
//! MQTT 3.1.1 publisher for the retained markers that tell when a subscriber is ready.
//! With `--tls` both listen with the run's certificate and the markers go over TLS too.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::proc::{Proc, which};
use crate::tls::Pki;

pub const HOST: &str = "127.0.0.1";

pub struct Broker {
    /// The program's file name.
    pub name: String,
    pub port: u16,
    pub log: PathBuf,
    proc: Proc,
}

impl Broker {
    pub fn pid(&self) -> i32 {
        self.proc.pid
    }
}

/// The configuration, and why each line is there.
fn config(port: u16, pki: Option<&Pki>) -> String {
    let tls = pki.map_or_else(String::new, |p| {
        format!(
            "cafile {}\ncertfile {}\nkeyfile {}\n",
            p.ca.display(),
            p.cert.display(),
            p.key.display()
        )
    });
    format!(
        "listener {port} {HOST}\n\
         {tls}\
         allow_anonymous true\n\
         persistence false\n\
         # The default (1000) drops messages to a subscriber that falls behind,\n\
         # at QoS 0 and QoS 1 alike: that would be counted against the subscriber.\n\
         max_queued_messages 10000000\n\
         # Without it, Nagle's algorithm on the broker-to-subscriber leg adds\n\
         # delayed-ACK stalls (~40 ms) that would be blamed on the subscriber.\n\
         set_tcp_nodelay true\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n"
    )
}

/// `{port}`, and with `--tls` `{certfile}`, `{keyfile}` and `{cafile}`, in a word of
/// `--broker-cmd`.
fn fill(word: &str, port: u16, pki: Option<&Pki>) -> io::Result<String> {
    let word = word.replace("{port}", &port.to_string());
    let files = ["{certfile}", "{keyfile}", "{cafile}"];
    match pki {
        Some(p) => Ok(word
            .replace("{certfile}", &p.cert.display().to_string())
            .replace("{keyfile}", &p.key.display().to_string())
            .replace("{cafile}", &p.ca.display().to_string())),
        None if files.iter().any(|f| word.contains(f)) => Err(io::Error::other(format!(
            "--broker-cmd: {word} needs --tls (the certificate is made for the run)"
        ))),
        None => Ok(word),
    }
}

/// Starts mosquitto in `dir`, or `command` (words split at spaces, placeholders filled in:
/// [`fill`]), with a TLS listener when `pki` is given, and returns once it accepts
/// connections.
pub fn start(dir: &Path, command: Option<&str>, pki: Option<&Pki>) -> io::Result<Broker> {
    // The kernel picks a free port; it stays free for the moment the broker needs.
    let port = TcpListener::bind((HOST, 0))?.local_addr()?.port();
    let log = dir.join(match command {
        Some(_) => "broker.log",
        None => "mosquitto.log",
    });
    let mut cmd = match command {
        Some(line) => {
            let words = (line.split_whitespace())
                .map(|w| fill(w, port, pki))
                .collect::<io::Result<Vec<String>>>()?;
            let (exe, args) = words
                .split_first()
                .ok_or_else(|| io::Error::other("--broker-cmd is empty"))?;
            let mut cmd = Command::new(exe);
            cmd.args(args);
            cmd
        }
        None => {
            let exe = which("mosquitto").ok_or_else(|| {
                io::Error::other(
                    "mosquitto not found (apt-get install -y mosquitto mosquitto-clients)",
                )
            })?;
            let conf = dir.join("mosquitto.conf");
            fs::write(&conf, config(port, pki))?;
            let mut cmd = Command::new(exe);
            cmd.arg("-c").arg(&conf);
            cmd
        }
    };
    let name = Path::new(cmd.get_program())
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    cmd.stderr(File::create(&log)?);
    let mut proc = Proc::spawn(&mut cmd)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((HOST, port)).is_err() {
        // Waiting for an exit doubles as the pause between attempts.
        let tick = Instant::now() + Duration::from_millis(20);
        if proc.wait_until(tick).is_some() || Instant::now() > deadline {
            let said = fs::read_to_string(&log).unwrap_or_default();
            return Err(io::Error::other(format!(
                "{name} did not start on port {port}: {}",
                said.trim()
            )));
        }
    }
    Ok(Broker {
        name,
        port,
        log,
        proc,
    })
}

/// `mosquitto -h` says its version on the first line.
pub fn mosquitto_version() -> String {
    which("mosquitto")
        .and_then(|exe| Command::new(exe).arg("-h").output().ok())
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines()
                .find(|l| l.contains("version"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".into())
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let digit = (len % 128) as u8;
        len /= 128;
        out.push(if len > 0 { digit | 0x80 } else { digit });
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn mqtt_str(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// Publishes one retained QoS 1 message (an empty one clears the topic) and returns
/// once the broker acknowledged it; over TLS when `pki` is given.
pub fn publish_retained(
    port: u16,
    pki: Option<&Pki>,
    topic: &str,
    payload: &[u8],
) -> io::Result<()> {
    let tcp = TcpStream::connect((HOST, port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    tcp.set_nodelay(true)?;
    match pki {
        None => exchange(&mut { tcp }, topic, payload),
        Some(pki) => {
            let mut s = pki.connect(tcp)?;
            exchange(&mut s, topic, payload)?;
            s.conn.send_close_notify();
            let _ = s.conn.complete_io(&mut s.sock);
            Ok(())
        }
    }
}

/// CONNECT, the retained PUBLISH, its PUBACK, DISCONNECT.
fn exchange(s: &mut impl ReadWrite, topic: &str, payload: &[u8]) -> io::Result<()> {
    let mut connect = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30];
    mqtt_str(
        format!("bench-marker-{}", std::process::id()).as_bytes(),
        &mut connect,
    );
    s.write_all(&packet(0x10, &connect))?;
    let mut connack = [0; 4];
    s.read_exact(&mut connack)?;
    if connack[0] != 0x20 || connack[3] != 0 {
        return Err(io::Error::other(format!("CONNECT refused: {connack:?}")));
    }
    let mut publish = Vec::new();
    mqtt_str(topic.as_bytes(), &mut publish);
    publish.extend_from_slice(&[0, 1]);
    publish.extend_from_slice(payload);
    s.write_all(&packet(0x33, &publish))?; // PUBLISH, QoS 1, retain
    let mut puback = [0; 4];
    s.read_exact(&mut puback)?;
    if puback[0] != 0x40 {
        return Err(io::Error::other("no PUBACK for the marker"));
    }
    s.write_all(&[0xe0, 0])?; // DISCONNECT
    s.flush()
}

/// A byte stream: TCP, or TLS over it.
trait ReadWrite: Read + Write {}

impl<T: Read + Write> ReadWrite for T {}

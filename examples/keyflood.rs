//! A flood of new rooms in an encrypted room: chat-sub follows `room/#` and a named room
//! (`named`, its key derived at start) with the room secret, while a stranger publishes
//! `--topics` messages, each on a new topic under `room/`, of well-formed ciphertext
//! (sealed with another secret: each costs chat-sub a key derivation, within its budget,
//! and then does not open). Meanwhile `--probes` messages sealed with the room's secret
//! go to the named room, one every `--every` ms, and the time from writing each to its
//! line on chat-sub's stdout is measured: median and max. Once chat-sub is idle again
//! (its CPU time still for a second), its resident memory (VmRSS) and peak (VmHWM).
//!
//!     cargo build --release --bins --examples
//!     target/release/examples/keyflood
//!     target/release/examples/keyflood --bin-dir /tmp/old-build   # another chat-sub
//!
//! chat-broker (from `--bin-dir`, default: the directory of this example's parent, i.e.
//! target/release) listens on a free loopback port. The stranger and the prober are plain
//! MQTT 3.1.1 connections of this program, at QoS 1; chat-sub subscribes at QoS 1, so the
//! broker's window of unacknowledged messages is part of what is measured.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use mqttchat::room::seal::{RoomKey, RoomSecret, seal};

/// Times a named encrypted room's messages during a flood of new rooms.
#[derive(Parser)]
#[command(name = "keyflood")]
struct Args {
    /// Where chat-sub and chat-broker are (default: target/release)
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// New topics in the flood, one message each
    #[arg(long, default_value_t = 2000)]
    topics: usize,
    /// Messages to the named room during the flood
    #[arg(long, default_value_t = 10)]
    probes: usize,
    /// Milliseconds between probes
    #[arg(long, default_value_t = 100)]
    every: u64,
}

const SECRET: &str = "keyflood-members-secret-5fQ2";
const STRANGER: &str = "keyflood-stranger-secret-8kW1";
const NAMED: &str = "named";

/// MQTT's remaining length: 7 bits a byte, low bits first, the high bit for "more".
fn varint(mut len: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        out.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            return;
        }
    }
}

fn mqtt_str(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    varint(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// PUBLISH at QoS 1.
fn publish(topic: &str, pkid: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(topic.len() + payload.len() + 4);
    mqtt_str(topic.as_bytes(), &mut body);
    body.extend_from_slice(&pkid.to_be_bytes());
    body.extend_from_slice(payload);
    packet(0x32, &body)
}

/// A connection of this program (MQTT 3.1.1, clean session) whose acknowledgements are
/// read and dropped by a thread of its own.
fn client(port: u16, id: &str) -> io::Result<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    let mut body = b"\0\x04MQTT\x04\x02\0\x3c".to_vec();
    mqtt_str(id.as_bytes(), &mut body);
    s.write_all(&packet(0x10, &body))?;
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack)?;
    if connack[0] != 0x20 || connack[3] != 0 {
        return Err(io::Error::other(format!(
            "{id}: CONNACK refused: {connack:?}"
        )));
    }
    let mut reader = s.try_clone()?;
    std::thread::spawn(move || io::copy(&mut reader, &mut io::sink()));
    Ok(s)
}

/// A free port on loopback (the kernel's pick; it stays free for the moment needed).
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// Kills and reaps a child when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A field of /proc/PID/status in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User and system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Waits until the process's CPU time stood still for `quiet`; false after `limit`.
fn wait_idle(pid: u32, quiet: Duration, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    let (mut last, mut since) = (cpu_ticks(pid), Instant::now());
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        let now = cpu_ticks(pid);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= quiet {
            return true;
        }
    }
    false
}

fn secret_file(dir: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("secret");
    std::fs::write(&path, format!("{SECRET}\n"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(path)
}

/// An envelope chat-pub would send, sealed for `topic`.
fn sealed(key: &RoomKey, topic: &str, id: &str, text: &str) -> Vec<u8> {
    let env = format!(
        r#"{{"id":"{id}","from":"keyflood","ts":"2026-01-01T00:00:00.000Z","text":"{text}"}}"#
    );
    seal(key, topic, env.as_bytes()).expect("the OS random source")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn run(a: Args) -> Result<(), String> {
    let bin = match &a.bin_dir {
        Some(d) => d.clone(),
        None => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let examples = exe.parent().ok_or("no directory")?;
            examples
                .parent()
                .ok_or("no target directory")?
                .to_path_buf()
        }
    };
    let e = |e: io::Error| e.to_string();
    let dir = std::env::temp_dir().join(format!("keyflood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(e)?;
    let secret = secret_file(&dir).map_err(e)?;
    let port = free_port().map_err(e)?;
    let _broker = Reaped(
        Command::new(bin.join("chat-broker"))
            .args(["-l", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("{}: {err}", bin.join("chat-broker").display()))?,
    );
    let end = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > end {
            return Err("chat-broker does not listen".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("mqtt://127.0.0.1:{port}");
    let mut sub = Reaped(
        Command::new(bin.join("chat-sub"))
            .args([
                "-b",
                &url,
                "--no-config",
                "--json",
                "--no-presence",
                "-q",
                "1",
            ])
            .arg("--room-secret-file")
            .arg(&secret)
            .args(["room/#", NAMED])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("{}: {err}", bin.join("chat-sub").display()))?,
    );
    let pid = sub.0.id();
    // Each printed probe: (its number, when it was read).
    let (seen, lines) = mpsc::channel::<(usize, Instant)>();
    let stdout = sub.0.stdout.take().ok_or("no stdout")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let at = Instant::now();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if let Some(n) = v["text"].as_str().and_then(|t| t.strip_prefix("probe ")) {
                let _ = seen.send((n.parse().unwrap_or(usize::MAX), at));
            }
        }
    });
    let members = RoomSecret::new(SECRET.as_bytes().to_vec())?;
    let named = RoomKey::derive(&members, NAMED);
    let mut prober = client(port, "keyflood-prober").map_err(e)?;
    // Ready: a probe 0 sent until one prints (chat-sub subscribes after connecting).
    let end = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        let p = publish(NAMED, 1, &sealed(&named, NAMED, "ready", "probe 0"));
        prober.write_all(&p).map_err(e)?;
        if let Ok((0, _)) = lines.recv_timeout(Duration::from_millis(200)) {
            break true;
        }
        if Instant::now() > end {
            break false;
        }
    };
    if !ready {
        return Err("chat-sub printed nothing in 20 s".into());
    }
    let base = status_kib(pid, "VmRSS:").unwrap_or(0);
    // The flood: well-formed ciphertext of another secret on new topics, all at once.
    let stranger = RoomSecret::new(STRANGER.as_bytes().to_vec())?;
    let junk_key = RoomKey::derive(&stranger, "room/stranger");
    let mut flood = Vec::new();
    for i in 0..a.topics {
        let topic = format!("room/flood-{i}");
        let payload = sealed(&junk_key, &topic, &format!("junk-{i}"), "junk");
        flood.extend(publish(&topic, (i % 65_000) as u16 + 1, &payload));
    }
    let mut stranger_conn = client(port, "keyflood-stranger").map_err(e)?;
    let flooded = Instant::now();
    stranger_conn.write_all(&flood).map_err(e)?;
    // The probes, each sealed beforehand so that only the sending is timed.
    let probes: Vec<Vec<u8>> = (1..=a.probes)
        .map(|n| {
            publish(
                NAMED,
                n as u16 + 1,
                &sealed(&named, NAMED, &format!("p{n}"), &format!("probe {n}")),
            )
        })
        .collect();
    let mut sent = Vec::new();
    for p in &probes {
        sent.push(Instant::now());
        prober.write_all(p).map_err(e)?;
        std::thread::sleep(Duration::from_millis(a.every));
    }
    let mut took = vec![None; a.probes + 1];
    let end = Instant::now() + Duration::from_secs(120);
    while took[1..].iter().any(Option::is_none) && Instant::now() < end {
        if let Ok((n, at)) = lines.recv_timeout(Duration::from_millis(500))
            && (1..=a.probes).contains(&n)
        {
            took[n] = Some(at.saturating_duration_since(sent[n - 1]));
        }
    }
    let mut times: Vec<Duration> = took[1..].iter().flatten().copied().collect();
    if times.len() < a.probes {
        return Err(format!(
            "only {} of {} probes printed",
            times.len(),
            a.probes
        ));
    }
    times.sort();
    let idle = wait_idle(pid, Duration::from_secs(1), Duration::from_secs(120));
    let idle_after = flooded.elapsed();
    let rss = status_kib(pid, "VmRSS:").unwrap_or(0);
    let hwm = status_kib(pid, "VmHWM:").unwrap_or(0);
    let _ = sub.0.kill();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{} new topics, {} probes on the named room every {} ms",
        a.topics, a.probes, a.every
    );
    println!(
        "probe to print: median {:.1} ms, max {:.1} ms",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
    println!(
        "chat-sub RSS: {:.1} MiB before the flood, {:.1} MiB once idle again ({:.1} s after \
         it began{}), peak {:.1} MiB",
        base as f64 / 1024.0,
        rss as f64 / 1024.0,
        idle_after.as_secs_f64(),
        if idle { "" } else { ", still busy" },
        hwm as f64 / 1024.0
    );
    Ok(())
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("keyflood: {e}");
        std::process::exit(1);
    }
}

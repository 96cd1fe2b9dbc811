//! Logins: `--connections` clients CONNECT (MQTT 3.1.1) with a username and a password,
//! at most `--parallel` at a time, and the time until every CONNACK came back accepting
//! is measured. What it weighs is the broker's password check: a `$7$` hash from
//! mosquitto_passwd is PBKDF2-SHA512 (101 iterations by default), paid again on every
//! login, as neither chat-broker nor mosquitto caches a verdict.
//!
//! Client i logs in as `--user-prefix`i with the password `--password-prefix`i. The same
//! tool writes those pairs, for mosquitto_passwd to hash in place:
//!
//!     cargo build --release --examples
//!     target/release/examples/logins --write-plain /tmp/users --connections 1000
//!     mosquitto_passwd -U /tmp/users
//!     target/release/chat-broker -l 127.0.0.1:1890 --password-file /tmp/users &
//!     target/release/examples/logins --port 1890 --connections 1000 --pid $!
//!
//! Each client's connection stays open until every login is judged (a crowd logging in,
//! not a stream of short visits), then all of them send DISCONNECT. A CONNACK that
//! refuses, a closed connection or no answer within `--timeout` is a failure: the tool
//! says so and exits 1. With `--pid`, the broker's CPU time (user + system, all its
//! threads) over the logins is printed too.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Times many password logins to an MQTT broker on 127.0.0.1.
#[derive(Parser)]
#[command(name = "logins")]
struct Args {
    /// The broker's port on 127.0.0.1 (loopback only)
    #[arg(long, required_unless_present = "write_plain")]
    port: Option<u16>,
    /// Clients, each logging in once
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Most logins waiting for their CONNACK at once
    #[arg(long, default_value_t = 50)]
    parallel: usize,
    /// Client i's username is this followed by i
    #[arg(long, default_value = "user")]
    user_prefix: String,
    /// Client i's password is this followed by i
    #[arg(long, default_value = "pass")]
    password_prefix: String,
    /// The broker's process id: its CPU time over the logins is printed
    #[arg(long)]
    pid: Option<u32>,
    /// Seconds a login may wait for its CONNACK
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Write USER:PASSWORD lines for every client into FILE (for `mosquitto_passwd -U
    /// FILE`, which hashes them in place) and exit
    #[arg(long, value_name = "FILE")]
    write_plain: Option<PathBuf>,
}

/// A UTF-8 string after its u16 length.
fn mqtt_str(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// CONNECT: MQTT 3.1.1, clean session, keep-alive 60 s, username and password.
fn connect_packet(id: &str, user: &str, password: &str) -> Vec<u8> {
    let mut body = b"\0\x04MQTT\x04".to_vec();
    body.extend_from_slice(&[0x80 | 0x40 | 0x02, 0, 60]);
    mqtt_str(id, &mut body);
    mqtt_str(user, &mut body);
    mqtt_str(password, &mut body);
    let mut out = vec![0x10];
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        out.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(&body);
    out
}

/// How one login ended.
enum Outcome {
    /// Accepted, after this long, with its connection still open.
    Accepted(Duration, TcpStream),
    /// Refused with this CONNACK return code.
    Refused(u8),
    Failed(String),
}

/// Client `i` connects and logs in; a slot of `slots` is held until its CONNACK.
async fn login(i: usize, a: Arc<Args>, slots: Arc<Semaphore>) -> Outcome {
    let _slot = slots.acquire().await.expect("never closed");
    let t0 = Instant::now();
    let attempt = async {
        let mut s = TcpStream::connect(("127.0.0.1", a.port.expect("a port"))).await?;
        s.set_nodelay(true)?;
        let id = format!("login-{}-{i}", std::process::id());
        let user = format!("{}{i}", a.user_prefix);
        let password = format!("{}{i}", a.password_prefix);
        s.write_all(&connect_packet(&id, &user, &password)).await?;
        let mut connack = [0u8; 4];
        s.read_exact(&mut connack).await?;
        Ok::<_, io::Error>((connack, s))
    };
    match tokio::time::timeout(Duration::from_secs(a.timeout), attempt).await {
        Err(_) => Outcome::Failed("no CONNACK in time".into()),
        Ok(Err(e)) => Outcome::Failed(e.to_string()),
        Ok(Ok((c, _))) if c[..2] != [0x20, 2] => Outcome::Failed(format!("not a CONNACK: {c:?}")),
        Ok(Ok((c, _))) if c[3] != 0 => Outcome::Refused(c[3]),
        Ok(Ok((_, s))) => Outcome::Accepted(t0.elapsed(), s),
    }
}

/// The process's CPU time so far (user + system, every thread), from /proc.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command's closing parenthesis start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks as f64 / per_second as f64)
}

/// The value at `p` percent of sorted durations (nearest rank), in ms.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

async fn run(a: Args) -> Result<(), String> {
    let a = Arc::new(a);
    let slots = Arc::new(Semaphore::new(a.parallel.max(1)));
    let cpu0 = a.pid.and_then(cpu_seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..a.connections)
        .map(|i| tokio::spawn(login(i, a.clone(), slots.clone())))
        .collect();
    let (mut times, mut open, mut refused, mut failed) = (Vec::new(), Vec::new(), 0, Vec::new());
    for t in tasks {
        match t.await.map_err(|e| e.to_string())? {
            Outcome::Accepted(took, s) => {
                times.push(took);
                open.push(s);
            }
            Outcome::Refused(code) => {
                refused += 1;
                failed.push(format!("refused with return code {code}"));
            }
            Outcome::Failed(why) => failed.push(why),
        }
    }
    let all = start.elapsed();
    let cpu = a
        .pid
        .and_then(cpu_seconds)
        .zip(cpu0)
        .map(|(c1, c0)| c1 - c0);
    for s in &mut open {
        let _ = s.write_all(&[0xe0, 0]).await; // DISCONNECT
    }
    drop(open);
    times.sort_unstable();
    let ok = times.len();
    let mut line = format!(
        "logins {} accepted {ok} in {:.3} s ({:.0}/s; refused {refused}, failed {})",
        a.connections,
        all.as_secs_f64(),
        ok as f64 / all.as_secs_f64(),
        failed.len() - refused,
    );
    if ok > 0 {
        line += &format!(
            " per login p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
            percentile_ms(&times, 50.0),
            percentile_ms(&times, 99.0),
            percentile_ms(&times, 100.0)
        );
    }
    if let Some(cpu) = cpu {
        line += &format!(" broker CPU {cpu:.2} s");
    }
    println!("{line}");
    match failed.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} of {} logins failed; the first: {first}",
            failed.len(),
            a.connections
        )),
    }
}

fn main() {
    let args = Args::parse();
    if let Some(path) = &args.write_plain {
        let text: String = (0..args.connections)
            .map(|i| format!("{}{i}:{}{i}\n", args.user_prefix, args.password_prefix))
            .collect();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("logins: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
        return;
    }
    mqttchat::tool::raise_open_files();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("logins: {e}");
        std::process::exit(1);
    }
}

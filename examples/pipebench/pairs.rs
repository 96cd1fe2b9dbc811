//! The publisher/subscriber pairs compared, and the commands each one runs.
//!
//! A publisher reads lines on stdin and publishes each as one message, and exits once
//! all are sent (QoS 0) or acknowledged (QoS 1 and 2). A subscriber prints each
//! message as one line, retained ones included, and exits after `count` messages.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use clap::ValueEnum;

use crate::Ctx;
use crate::Scenario;
use crate::broker::HOST;

/// The encrypted pair's room secret.
const ROOM_SECRET: &str = "q0mZ8cS3v2bUe9hXfLr7PaN4tWy1KjGd6oEiHs5RpBc=";

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum Pair {
    /// chat-pub | chat-sub (release build)
    Chat,
    /// chat-pub | chat-sub from --baseline DIR (another build, e.g. before a change)
    ChatBaseline,
    /// chat-pub | chat-sub in an encrypted room (CHAT_ROOM_SECRET set on both)
    ChatSealed,
    /// mosquitto_pub -l | mosquitto_sub
    Mosquitto,
    /// mosquitto_pub -l fed by split in 60,000-line chunks | mosquitto_sub
    MosquittoSplit,
    /// bench/paho_pub.py | bench/paho_sub.py (python3 with paho-mqtt 2.x)
    Paho,
}

fn command<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd
}

fn paho_script(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench");
    dir.join(name).display().to_string()
}

impl Pair {
    pub fn name(self) -> &'static str {
        match self {
            Pair::Chat => "chat",
            Pair::ChatBaseline => "chat-baseline",
            Pair::ChatSealed => "chat-sealed",
            Pair::Mosquitto => "mosquitto",
            Pair::MosquittoSplit => "mosquitto-split",
            Pair::Paho => "paho",
        }
    }

    /// Where a chat pair's binaries are.
    fn chat_dir(self, ctx: &Ctx) -> &Path {
        match (self, &ctx.args.baseline) {
            (Pair::ChatBaseline, Some(dir)) => dir,
            _ => &ctx.args.chat_dir,
        }
    }

    /// The encrypted pair's secret, in the environment (a random key, as users are told
    /// to make: `openssl rand -base64 32`).
    fn room(self, mut cmd: Command) -> Command {
        if self == Pair::ChatSealed {
            cmd.env("CHAT_ROOM_SECRET", ROOM_SECRET);
        }
        cmd
    }

    /// A payload published by the harness itself (the readiness marker), as the pair's
    /// subscriber can read it: sealed for the encrypted pair.
    pub fn harness_payload(self, topic: &str, payload: &[u8]) -> Vec<u8> {
        if self != Pair::ChatSealed {
            return payload.to_vec();
        }
        let secret = mqttchat::room::seal::RoomSecret::new(ROOM_SECRET.as_bytes().to_vec())
            .expect("a valid secret");
        let key = mqttchat::room::seal::RoomKey::derive(&secret, topic);
        let sealed =
            mqttchat::room::seal::seal(&key, topic, payload).expect("the OS random source");
        // Argon2's 19 MiB, freed, would stay in the harness's heap and be counted in the
        // peak RSS of every child forked from it (see proc.rs): give them back.
        // SAFETY: malloc_trim only returns free memory to the system.
        unsafe {
            libc::malloc_trim(0);
        }
        sealed
    }

    /// Whether the pair takes part in `scenario` at `qos`.
    ///
    /// mosquitto_pub -l at QoS 1 and 2 stops after about 65,535 lines and still exits 0
    /// (its message ids wrap around), so the plain pair loses most of a 100,000-line
    /// run. The split pair is the reference there: each 60,000-line chunk gets its own
    /// mosquitto_pub. At QoS 0 the chunks' connections overlap and their messages
    /// interleave, and with fewer lines (latency, one-shot) it is the plain pair again,
    /// so it runs in the QoS 1 and 2 throughput runs only.
    pub fn takes_part(self, scenario: Scenario, qos: u8) -> bool {
        self != Pair::MosquittoSplit || (scenario == Scenario::Throughput && qos > 0)
    }

    /// The chat tools' broker URL and TLS flags: `-b mqtt://…`, or with `--tls`
    /// `-b mqtts://… --cafile CA`.
    fn chat_broker(ctx: &Ctx, port: u16) -> Vec<String> {
        match &ctx.pki {
            None => vec!["-b".into(), format!("mqtt://{HOST}:{port}")],
            Some(pki) => vec![
                "-b".into(),
                format!("mqtts://{HOST}:{port}"),
                "--cafile".into(),
                pki.ca.display().to_string(),
            ],
        }
    }

    /// mosquitto_pub's and mosquitto_sub's broker flags: `-h … -p …`, and with `--tls`
    /// `--cafile CA`.
    fn mosquitto_broker(ctx: &Ctx, port: u16) -> Vec<String> {
        let mut flags = vec!["-h".into(), HOST.into(), "-p".into(), port.to_string()];
        if let Some(pki) = &ctx.pki {
            flags.extend(["--cafile".into(), pki.ca.display().to_string()]);
        }
        flags
    }

    /// The publisher, through the broker on `port`; its stdin is set by the caller.
    pub fn publisher(self, ctx: &Ctx, port: u16, topic: &str, qos: u8) -> Command {
        let q = qos.to_string();
        match self {
            Pair::Chat | Pair::ChatBaseline | Pair::ChatSealed => {
                let exe = self.chat_dir(ctx).join("chat-pub");
                let mut cmd = command(exe, &Self::chat_broker(ctx, port));
                cmd.args(["-q", &q, topic]);
                self.room(cmd)
            }
            Pair::Mosquitto => {
                let mut cmd = command("mosquitto_pub", &Self::mosquitto_broker(ctx, port));
                cmd.args(["-t", topic, "-q", &q, "-l"]);
                cmd
            }
            Pair::MosquittoSplit => {
                let broker = Self::mosquitto_broker(ctx, port).join(" ");
                let each = format!("mosquitto_pub {broker} -t {topic} -q {q} -l");
                let mut cmd = command("split", &["-l", "60000", "--filter", &each]);
                cmd.env("SHELL", "/bin/sh");
                cmd
            }
            Pair::Paho => command(
                "python3",
                &[
                    &paho_script("paho_pub.py"),
                    "-H",
                    HOST,
                    "-p",
                    &port.to_string(),
                    "-t",
                    topic,
                    "-q",
                    &q,
                ],
            ),
        }
    }

    /// The subscriber, through the broker on `port`, which exits after `count` messages.
    pub fn subscriber(self, ctx: &Ctx, port: u16, topic: &str, qos: u8, count: u32) -> Command {
        let (q, n) = (qos.to_string(), count.to_string());
        match self {
            Pair::Chat | Pair::ChatBaseline | Pair::ChatSealed => {
                let exe = self.chat_dir(ctx).join("chat-sub");
                let mut cmd = command(exe, &Self::chat_broker(ctx, port));
                cmd.args(["-q", &q, "-n", &n]);
                let mut cmd = self.room(cmd);
                if ctx.args.session {
                    cmd.args(["--session", &session_name(topic)]);
                }
                cmd.arg(topic);
                cmd
            }
            Pair::Mosquitto | Pair::MosquittoSplit => {
                let mut cmd = command("mosquitto_sub", &Self::mosquitto_broker(ctx, port));
                cmd.args(["-t", topic, "-q", &q, "-C", &n]);
                if ctx.args.session {
                    cmd.args(["-c", "-i", &session_name(topic)]);
                }
                cmd
            }
            Pair::Paho => {
                let (script, port) = (paho_script("paho_sub.py"), port.to_string());
                let args = [
                    &script, "-H", HOST, "-p", &port, "-t", topic, "-q", &q, "-C", &n,
                ];
                command("python3", &args)
            }
        }
    }

    /// A publisher for one message: `echo TEXT | PUB`, except for mosquitto_pub, whose
    /// `-l` waits ~200 ms after end of input, so its own one-message form `-m TEXT` is
    /// used. Returns the command and what to write to its stdin.
    pub fn one_message(
        self,
        ctx: &Ctx,
        port: u16,
        topic: &str,
        qos: u8,
        text: &str,
    ) -> (Command, String) {
        match self {
            Pair::Mosquitto | Pair::MosquittoSplit => {
                let mut cmd = command("mosquitto_pub", &Self::mosquitto_broker(ctx, port));
                cmd.args(["-t", topic, "-q", &qos.to_string(), "-m", text]);
                (cmd, String::new())
            }
            _ => (self.publisher(ctx, port, topic, qos), format!("{text}\n")),
        }
    }

    /// How the pair is run, for the notes under the table.
    pub fn describe(self) -> &'static str {
        match self {
            Pair::Chat => "`chat-pub -b URL -q Q TOPIC` and `chat-sub -b URL -q Q -n N TOPIC`",
            Pair::ChatBaseline => "the same, with the binaries of `--baseline DIR`",
            Pair::ChatSealed => {
                "the chat pair in an encrypted room (`CHAT_ROOM_SECRET` set on both)"
            }
            Pair::Mosquitto => {
                "`mosquitto_pub -t TOPIC -q Q -l` (one-shot: `-m TEXT`) and \
                 `mosquitto_sub -t TOPIC -q Q -C N`"
            }
            Pair::MosquittoSplit => {
                "`split -l 60000 --filter 'mosquitto_pub … -l'` (a new connection per \
                 60,000 lines) and `mosquitto_sub`; QoS ≥ 1 throughput only"
            }
            Pair::Paho => {
                "`bench/paho_pub.py` (at most 1,000 messages in flight) and \
                 `bench/paho_sub.py` (flushes stdout per message)"
            }
        }
    }
}

/// The persistent session of a subscriber with `--session`: one per run (its topic).
fn session_name(topic: &str) -> String {
    topic.replace('/', "-")
}

//! Roff shared by chat-pub(1) and chat-sub(1): what is true of both tools is written
//! once. A page's text refers to a piece with a line `@NAME@`, which [`expand`] replaces.

/// A DESCRIPTION paragraph: the protocol versions and the transports.
const PROTOCOL: &str = r##".PP
MQTT 5 is the default protocol; \fB\-V 3\fR selects MQTT 3.1.1 for brokers that do not
speak 5. Connections are plain TCP (\fBmqtt://\fR), TLS (\fBmqtts://\fR), WebSocket
(\fBws://\fR) or WebSocket over TLS (\fBwss://\fR); see SECURITY.
"##;

/// The PRESENCE section: the topic rule and what each tool does.
const PRESENCE: &str = r##".SH PRESENCE
While \fBchat\-pub\fR \fITOPIC\fR reads lines from standard input as chat (not with
\fB\-m\fR, \fB\-\-raw\fR, \fB\-\-json\fR or \fB\-\-no\-presence\fR), its nick is online in
\fITOPIC\fR. Presence lives beside the room, under a topic derived from it:
.PP
.RS 4
.nf
mqttchat\-presence/\fITOPIC\fR/\fICLIENT\-ID\fR
.fi
.RE
.PP
where \fICLIENT\-ID\fR is chat\-pub's client id with \fB/\fR, \fB+\fR, \fB#\fR, \fB%\fR and control
characters written as \fB%\fR\fIXX\fR (so any id is one topic level). Presence is keyed by
client id: the same nick twice is two presences. On connecting (and on every reconnect)
chat\-pub publishes a retained join there, \fB{"event":"join","from":\fR\fINICK\fR\fB,"ts":\fR\fITIME\fR\fB}\fR,
and registers an empty retained message as its will. Leaving (end of input, a signal)
publishes the empty retained message itself; dying without a goodbye (kill \-9, a pulled
cable) makes the broker publish the will, once it misses about one and a half keep\-alive
intervals (\fB\-k\fR, 30 s by default; mosquitto 2.0 checks keep\-alives only every few
seconds, so a short \fB\-k\fR can take up to about 5 s longer there). Either way subscribers
see a leave, and no retained state is left behind.
.PP
A subscriber of \fITOPIC\fR, or of \fITOPIC\fB/#\fR, sees chat only. chat\-sub follows the
presence of every \fITOPIC\fR it subscribes to, by the filter
\fBmqttchat\-presence/\fR\fITOPIC\fR\fB/+\fR (\fBmqttchat\-presence/\fR\fITOPIC\fR when
\fITOPIC\fR ends in \fB#\fR), so wildcards work for presence too. It shows joins and
leaves that happen while it runs, as text lines \fIHH\fR:\fIMM\fR:\fISS\fR \fB* bob
joined\fR and \fB* bob left\fR, and as JSON objects
\fB{"event":"join"|"leave","from":\fR\fINICK\fR\fB,"topic":\fR\fITOPIC\fR\fB,"ts":\fR\fITIME\fR\fB}\fR
(not with \fB\-\-raw\fR or \fB\-\-format\fR, which print messages only). Presence that was
already retained when chat\-sub subscribed is not news and is not shown as a join; its
leave is shown later with the right nick. Presence lines do not count for \fB\-\-count\fR.
\fB\-\-no\-presence\fR does not follow presence at all. A broker that refuses the presence
subscription gets a warning on standard error, not a failure.
.PP
\fBchat\-sub \-\-who\fR \fITOPIC\fR prints who is online and exits: the retained presence
state, read until nothing new arrived for 0.5 seconds (MQTT has no end\-of\-retained
marker), one nick per line sorted by room and nick (\fB[\fR\fIroom\fR\fB] \fR in front when the
topic is shown), or JSON objects with \fB"event":"online"\fR.
"##;

/// The SECURITY section: TLS, certificates, credentials.
const SECURITY: &str = r##".SH SECURITY
With \fBmqtts://\fR and \fBwss://\fR the broker's certificate is checked against the
system's trust store (the certificates in /etc/ssl/certs), or against the PEM bundle of
\fB\-\-cafile\fR, and against the host name of the URL. A broker that requires client
certificates gets the one of \fB\-\-cert\fR and \fB\-\-key\fR (PEM; the key as PKCS#8,
PKCS#1 or SEC1). TLS is rustls with the ring cryptography.
.PP
A certificate problem is not retried: an unknown certificate authority, a certificate
for another host name, an expired certificate, or a client certificate the broker
refuses or needs ends the run at once with exit status 3 and a message that names the
problem. \fB\-\-insecure\fR skips the checks of the broker's certificate (the connection is
still encrypted, but anyone in between can read and change it) and says so on standard
error every time.
.PP
TLS options with a plain \fBmqtt://\fR or \fBws://\fR URL are a usage error: unlike
mosquitto's clients, chat\-pub and chat\-sub never fall back to sending credentials in
clear. So are a certificate, key or password file that cannot be read, \fB\-\-cert\fR
without \fB\-\-key\fR, and a password without a user name.
.PP
The user name comes from \fB\-u\fR or \fBCHAT_USERNAME\fR; the password from the first
line of \fB\-\-password\-file\fR (its line end removed), else from \fBCHAT_PASSWORD\fR. It
is never a plain flag, since any user of the machine can read the command line of a
running program, and it never appears in a message or a log line, at any \fB\-v\fR level.
An empty password is sent as no password. Credentials the broker refuses end the run at
once with exit status 4.
.PP
Public brokers are public: on the broker the original MQTTChat used,
\fBbroker.hivemq.com\fR (ports 1883 for mqtt://, 8883 for mqtts://, 8884 for wss://),
anybody can subscribe to \fB#\fR and read every room, and anybody can publish under any
nick (the nick is not authentication). Use it for public chat only.
"##;

/// The EXIT STATUS entry of status 3.
const EXIT_UNREACHABLE: &str = r##".TP
.B 3
The broker could not be reached within \fB\-\-connect\-timeout\fR, it does not accept the
MQTT version (try \fB\-V 3\fR), or a certificate did not verify (at once, see SECURITY).
"##;

/// The ENVIRONMENT entries of CHAT_BROKER and the credentials.
const ENV_BROKER: &str = r##".TP
.B CHAT_BROKER
The broker URL when \fB\-b\fR is not given.
.TP
.B CHAT_USERNAME
The user name when \fB\-u\fR is not given.
.TP
.B CHAT_PASSWORD
The password when \fB\-\-password\-file\fR is not given (see SECURITY).
"##;

/// The ENVIRONMENT entry of RUST_LOG.
const ENV_RUST_LOG: &str = r##".TP
.B RUST_LOG
What is logged on standard error, in env_logger's syntax; it overrides \fB\-v\fR. For
example \fBRUST_LOG=mqttchat=debug\fR.
"##;

/// The first example: a chat in two terminals.
const EXAMPLE_CHAT: &str = r##"A chat: read the room in one terminal, type in another.
.PP
.RS 4
.nf
chat\-sub lobby
chat\-pub \-\-nick alice lobby
.fi
.RE
"##;

/// Examples: TLS, credentials, the public broker.
const EXAMPLE_SECURE: &str = r##".PP
A broker with TLS, a private CA and a password (kept in a file only you can read):
.PP
.RS 4
.nf
chat\-sub \-b mqtts://mqtt.example.com \-\-cafile ca.pem \e
    \-u alice \-\-password\-file ~/.config/mqttchat/password lobby
.fi
.RE
.PP
The public HiveMQ broker the original MQTTChat used, over WebSocket and TLS (every room
there is world\-readable):
.PP
.RS 4
.nf
chat\-sub \-b wss://broker.hivemq.com:8884/mqtt mqttchat/lobby
.fi
.RE
"##;

/// An example: a relay between two brokers.
const EXAMPLE_RELAY: &str = r##".PP
Relay every chat topic from one broker to another, keeping senders, times and ids:
.PP
.RS 4
.nf
chat\-sub \-b mqtt://a \-\-json \*(Aqchat/#\*(Aq | chat\-pub \-b mqtt://b \-\-json
.fi
.RE
"##;

/// The end of SEE ALSO, after the other tool.
const SEE_ALSO: &str = r##".BR mosquitto_pub (1),
.BR mosquitto_sub (1),
.BR jq (1)
"##;

/// The pieces by name.
const PIECES: [(&str, &str); 10] = [
    ("PRESENCE", PRESENCE),
    ("EXAMPLE_SECURE", EXAMPLE_SECURE),
    ("PROTOCOL", PROTOCOL),
    ("SECURITY", SECURITY),
    ("EXIT_UNREACHABLE", EXIT_UNREACHABLE),
    ("ENV_BROKER", ENV_BROKER),
    ("ENV_RUST_LOG", ENV_RUST_LOG),
    ("EXAMPLE_CHAT", EXAMPLE_CHAT),
    ("EXAMPLE_RELAY", EXAMPLE_RELAY),
    ("SEE_ALSO", SEE_ALSO),
];

/// Replaces every line `@NAME@` of a page's text by the shared piece NAME.
pub fn expand(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.lines() {
        match line.strip_prefix('@').and_then(|l| l.strip_suffix('@')) {
            Some(name) => match PIECES.iter().find(|(n, _)| *n == name) {
                Some((_, piece)) => out.push_str(piece),
                None => panic!("tests/man: no shared piece @{name}@"),
            },
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

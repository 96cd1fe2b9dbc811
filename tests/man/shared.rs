//! Roff shared by chat-pub(1) and chat-sub(1): what is true of both tools is written
//! once. A page's text refers to a piece with a line `@NAME@`, which [`expand`] replaces.

/// A DESCRIPTION paragraph: the protocol versions and the transports.
const PROTOCOL: &str = r##".PP
MQTT 5 is the default protocol; \fB\-V 3\fR selects MQTT 3.1.1 for brokers that do not
speak 5. This version connects over plain TCP only: \fBmqtts://\fR, \fBws://\fR and
\fBwss://\fR URLs are recognised but refused as not yet supported (exit status 2).
"##;

/// The EXIT STATUS entry of status 3.
const EXIT_UNREACHABLE: &str = r##".TP
.B 3
The broker could not be reached within \fB\-\-connect\-timeout\fR, or it does not accept
the MQTT version (try \fB\-V 3\fR).
"##;

/// The ENVIRONMENT entry of CHAT_BROKER.
const ENV_BROKER: &str = r##".TP
.B CHAT_BROKER
The broker URL when \fB\-b\fR is not given.
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
const PIECES: [(&str, &str); 7] = [
    ("PROTOCOL", PROTOCOL),
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

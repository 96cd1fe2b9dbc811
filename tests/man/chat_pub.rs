//! The hand-written parts of chat-pub(1), in roff. Every statement here describes what
//! src/ does; when the code changes, change this text and regenerate (see tests/man.rs).
//!
//! A line `@NAME@` stands for a piece of roff shared with the other page, in
//! tests/man/shared.rs.
//!
//! Roff reminders: write `\-` for a dash and `\e` for a backslash, `\*(Aq` for a quote in
//! a command (a bare `'` is typeset as a curly quote), and never start a text line with
//! `.` or `'`.

/// Appended to the DESCRIPTION generated from the clap definitions.
pub const DESCRIPTION: &str = r##".PP
\fBchat\-pub\fR reads standard input line by line and publishes each line as one message
as soon as it is read: typing in a terminal works, nothing waits for the end of input.
With \fB\-m\fR it publishes the given texts instead and does not read standard input.
When input ends, it waits for the broker's acknowledgements (see \fBDELIVERY\fR),
disconnects and exits.
.PP
\fITOPIC\fR is checked before connecting: an empty topic, one that contains NUL or a
wildcard (\fB+\fR or \fB#\fR), or one longer than 65535 bytes is a usage error.
@PROTOCOL@
Diagnostics and logs go to standard error, as \fBchat\-pub:\fR followed by the message.
"##;

/// The sections after OPTIONS.
pub const SECTIONS: &str = r##".SH INPUT
A line ends at a newline (\fB\en\fR). Each line goes through these rules:
.IP \(bu 2
A trailing carriage return (\fB\er\fR) is removed, so a file with CRLF line ends sends
the same text as one with LF. With \fB\-\-raw\fR it is kept.
.IP \(bu 2
An empty line (also one that held only \fB\er\fR) is skipped, unless
\fB\-\-keep\-empty\fR is given. Skipped lines still count in line numbers.
.IP \(bu 2
The last line is sent even if it does not end with a newline.
.IP \(bu 2
A line longer than \fB\-\-max\-size\fR bytes is never held in memory: it is reported by
its line number and skipped up to the next newline. A message that grows beyond
\fB\-\-max\-size\fR when it is wrapped in its envelope (and, in an encrypted room, signed
and encrypted: see ENCRYPTION) is reported the same way.
.IP \(bu 2
Without \fB\-\-raw\fR a line must be valid UTF\-8; a line that is not is reported with
the offset of its first bad byte and skipped. \fB\-\-raw\fR sends any bytes.
.PP
Each problem is one message on standard error that names the line (or, with \fB\-m\fR,
the message) and why, for example
.PP
.RS 4
.nf
chat\-pub: line 3: invalid UTF\-8 at byte 0 (use \-\-raw to send bytes as they are); not sent
.fi
.RE
.PP
The other lines are still published, and the exit status is 1.
.PP
With \fB\-\-raw \-\-keep\-empty\fR every line is published with its bytes as they are;
only the newline that ends it is removed.
.SH THE ENVELOPE
Unless \fB\-\-raw\fR is given, each message is a one\-line UTF\-8 JSON object, the
\fIenvelope\fR (one line, wrapped here):
.PP
.RS 4
.nf
{"id":"6f1c0e4b9a2d4f7e8c3b1a0d9e8f7a6b","from":"alice",
 "ts":"2026\-11\-26T12:01:02.123Z","text":"hello"}
.fi
.RE
.TP
.B id
Unique per message: 128 bits from the operating system's random source, as 32 hex
digits.
.TP
.B from
The sender's nick: \fB\-\-nick\fR, else \fBCHAT_NICK\fR, else \fBUSER\fR, else
\fBanonymous\fR (an empty nick also becomes \fBanonymous\fR). The nick is
self\-asserted, like an IRC nick; it is not authentication.
.TP
.B ts
When chat\-pub read the line: RFC 3339, UTC, with milliseconds.
.TP
.B text
The line.
.PP
Control characters, DEL, the C1 controls, the bidi controls and U+2028/U+2029 in these
strings are written as JSON escapes (\fB\eu001b\fR), so an envelope is safe to print on a
terminal. Readers ignore keys they do not know. A payload that is not a JSON object with
a string \fBtext\fR is a \fIraw\fR message, which \fBchat\-sub\fR shows as text with no
sender: so messages from \fBmosquitto_pub \-m hi\fR appear in \fBchat\-sub\fR, and
\fBmosquitto_sub\fR shows chat\-pub's envelopes as readable JSON. \fB\-\-raw\fR
publishes raw messages.
.SH JSON INPUT
With \fB\-\-json\fR each input line (or each \fB\-m\fR \fITEXT\fR) is a JSON object, as
\fBchat\-sub \-\-json\fR prints them:
.TP
.B text
Required: the message, a string.
.TP
.B topic
The topic of this message, instead of \fITOPIC\fR. A line with no \fBtopic\fR when no
\fITOPIC\fR was given, or with a wildcard in \fBtopic\fR, is an error for that line.
.TP
.BR from ", " ts ", " id
Kept as given, so that a relay keeps the sender, the time and the identity of each
message; absent (or null) ones are filled in as usual.
.TP
.BR qos ", " retain
Override \fB\-q\fR and \fB\-r\fR for this message.
.TP
.B payload_base64
The exact bytes of a raw message (below).
.TP
.B encrypted
\fBtrue\fR: an encrypted message that \fBchat\-sub \-\-json\fR could not open; the bytes of
\fBpayload_base64\fR are published unchanged (see ENCRYPTION), and \fBtext\fR may be null.
.TP
.B properties
MQTT 5 properties of this message, as \fBchat\-sub \-\-json\fR prints them: \fBuser\fR
([key, value] pairs, in order), \fBcontent_type\fR, \fBmessage_expiry\fR,
\fBresponse_topic\fR, \fBcorrelation_data\fR or \fBcorrelation_data_base64\fR. They are
sent with those of the flags (see MESSAGE PROPERTIES): the line's user properties first,
then the flags'; the line's other properties win over the flags'.
.PP
Other keys are ignored. Every line that \fBchat\-sub \-\-json\fR prints is valid input.
Objects with an \fBevent\fR key are skipped silently. A raw message stays raw: a line
whose \fBfrom\fR, \fBts\fR and \fBid\fR are all null is published as its bytes (the
decoded \fBpayload_base64\fR when present, else \fBtext\fR), not wrapped in an envelope.
A line that is not a JSON object with a string \fBtext\fR, or whose \fBqos\fR is not 0, 1
or 2, is reported by its line number and skipped.
.SH MESSAGE PROPERTIES
\fB\-\-user\-property\fR, \fB\-\-content\-type\fR, \fB\-\-message\-expiry\fR,
\fB\-\-response\-topic\fR and \fB\-\-correlation\-data\fR set MQTT 5 properties on every
message, as mosquitto_pub's \fB\-D publish\fR does; \fBchat\-sub \-\-json\fR shows them,
and a relay (\fBchat\-sub \-\-json | chat\-pub \-\-json\fR) carries them over. They travel
beside the payload, so they are not encrypted in an encrypted room, and the presence
announcements do not carry them.
.PP
MQTT 3.1.1 has no properties, and chat\-pub never sends a message without the properties
it was given:
.IP \(bu 2
with \fB\-V 3\fR, a property flag is a usage error (exit status 2);
.IP \(bu 2
with \fB\-V auto\fR, a broker that speaks MQTT 3.1.1 only (NATS, RabbitMQ, aedes, amqtt)
ends the run when it answers, before anything is sent (exit status 3);
.IP \(bu 2
a \fB\-\-json\fR line whose own \fBproperties\fR cannot be sent there is reported by its
line number and not sent; to relay such lines to an MQTT 3.1.1 broker, take the
properties out first, for example with \fBjq \-c \-\-unbuffered \(aqdel(.properties)\(aq\fR.
.SH DELIVERY
At QoS 1 and 2 (1 is the default) every message is kept until the broker acknowledged
it: PUBACK at QoS 1, PUBREC then PUBCOMP at QoS 2. When input ends, chat\-pub waits for
the missing acknowledgements for at most \fB\-\-drain\-timeout\fR seconds (default 30),
then disconnects cleanly. It exits 0 only if the broker acknowledged every message; if
acknowledgements are still missing when the drain timeout ends, it says how many on
standard error and exits 1.
.PP
At QoS 0 there are no acknowledgements. chat\-pub exits 0 only after every message was
written and the broker closed the connection after chat\-pub's DISCONNECT, which shows
that the broker read all of it. A connection that ends any other way is reported with the
number of QoS 0 messages that may not have arrived, and the exit status is 1.
.PP
Lines keep their order. The number of messages in flight (sent, not yet acknowledged) is
limited: under MQTT 5 by the broker's Receive Maximum (and at most 1024); under MQTT
3.1.1 to 1024, and to 20 at QoS 2, because mosquitto's default
\fBmax_inflight_messages\fR of 20 silently drops further incoming QoS 2 messages; and to
16 MiB of payload. When the limit is reached chat\-pub stops reading standard input until
acknowledgements arrive, so a faster writer is held back by the pipe: memory stays
bounded and no line is dropped. While the limit holds it back, chat\-pub (on Linux)
waits for half of the messages in flight to be acknowledged (or about two milliseconds)
before it sends more, rather than waking for each acknowledgement: each wake\-up costs
the broker time.
.PP
Under MQTT 5 the broker answers each QoS 1 and 2 message with a reason code. A refusal
(reason code 0x80 or more, for example 0x87 not authorized) is reported on standard
error with the line number and the reason; the other lines are still delivered. Under
MQTT 3.1.1 there are no reason codes: a broker may drop a refused message silently
(mosquitto does so for a topic its ACL denies), and chat\-pub cannot know.
.PP
Under MQTT 5 a broker may announce a maximum packet size: a message bigger than that is
reported by its line number and skipped. A broker that announces a maximum QoS below the
one asked for gets the messages at its maximum QoS.
.PP
When the connection is lost, chat\-pub says so on standard error and reconnects (to the
next broker of the list, see BROKERS), pausing between attempts from 100 ms, doubling,
up to 2 s. Until input ends it keeps trying; after that, until the drain timeout.
Meanwhile it goes on reading standard input, up to 256 KiB of messages, so that the end
of input starts the drain timeout whether a broker is reachable or not: when it ends,
chat\-pub says how many messages were not acknowledged and exits 1 (130 or 143 after a
signal). Before the first connection \fB\-\-connect\-timeout\fR is the only limit (exit
status 3 when no broker answers in time); for input that ended before it, the drain
timeout starts once connected. Messages not yet acknowledged are sent again, in their
order, before any newer line, and no more at once than the new broker's Receive
Maximum allows (the rest follow as acknowledgements come). A message sent again may reach subscribers twice
(delivery at QoS 1 and 2 is at least once). QoS 0 messages sent on the lost connection
are counted as possibly lost. When an MQTT 5 broker says that another client connected
with the same client id (\fB\-i\fR), chat\-pub does not take the connection back: it
says so, with the count of messages not acknowledged, and exits with status 1.
.PP
Some brokers close the connection instead of refusing a message: mosquitto under MQTT
3.1.1 for a message over its \fBmax_packet_size\fR, chat\-broker for one over 16 MiB,
NATS for a QoS 2 message or a topic it refuses (with \fB.\fR or a space). MQTT 3.1.1
gives no reason. When the connection is lost three times in a row with no
acknowledgement in between, the second and third time within 1.5 seconds of connecting
(a message the broker refuses is the first one sent again, and kills the connection as
soon as it arrives; a cluster that is electing new leaders after a node died closes
connections only after seconds), the oldest unacknowledged message is taken for the cause: it
is reported by its line number, with the possible causes (too large, a QoS the broker
does not support, a topic it refuses, not authorized), and given up, and the others are
delivered. The pause before reconnecting grows
in the same way during such a streak, so a broker that drops every connection at once
is not hammered.
@BROKERS@
@PRESENCE@
@SECURITY@
@ENCRYPTION@
.SS In chat\-pub
With the secret, every payload chat\-pub publishes is signed with your identity and
encrypted for its topic, in format version 2: envelopes, \fB\-\-raw\fR lines (even one
that looks encrypted already), \fB\-\-json\fR lines (each with the key of its own topic),
\fB\-m\fR messages, and the presence join, will and goodbye. The lines read together (up
to 32) are signed as one batch, under one signature (see Format). The key is derived,
and the batch signed, on the input thread, before the first message of a topic goes out.
The one exception is a \fB\-\-json\fR line that \fBchat\-sub \-\-json\fR printed for an
encrypted message it could not open (\fB"encrypted":true\fR and \fBpayload_base64\fR):
its payload is published unchanged, its signature with it, so a relay passes an encrypted
room through and readers still see each member's own key. Without a secret it must be a
well\-formed encrypted payload; with one, it must open with the key of its topic (nothing
goes out in clear that looks encrypted; a topic met for the first time costs a key
derivation, about 20 ms); else the line is a per\-line error. The presence goodbye, and
the will, are sealed leave records (see Format). \fB\-\-max\-size\fR applies to the
encrypted payload as if it had the largest signature block chat\-pub writes (258 bytes,
a path of 5 hashes), whatever the batch: 12 + \(lc4(\fIn\fR + 298)/3\(rc bytes for
\fIn\fR bytes of record, about 4\fIn\fR/3 + 410.
.PP
Your identity is \fI$XDG_DATA_HOME/mqttchat/identity\fR, or the file of
\fB\-\-identity\-file\fR; the first run with a room secret makes the default one and
says so on standard error (see DIAGNOSTICS). \fB\-\-fingerprint\fR prints its
fingerprint, which the other members compare with what they see and accept with
\fBchat\-sub \-\-trust\fR: see IDENTITIES in chat\-sub(1). Without a room secret chat\-pub
signs nothing and reads no identity (but for \fB\-\-fingerprint\fR).
@DIALECT@
.SH EXIT STATUS
.TP
.B 0
Every message was delivered: acknowledged by the broker at QoS 1 and 2; written, then
followed by a clean disconnect, at QoS 0.
.TP
.B 1
chat\-pub ran, but something failed: a line was not sent (not UTF\-8, not valid JSON,
too long, refused by the broker), acknowledgements were still missing at the end of
\fB\-\-drain\-timeout\fR, or QoS 0 messages may have been lost with a connection.
.TP
.B 2
Usage error: a bad flag, URL or topic, a room secret that cannot be read or is too
short (see ENCRYPTION), or an identity file that cannot be read or is not an Ed25519
private key in PEM (see IDENTITIES in chat\-sub(1)). Nothing was sent.
@EXIT_UNREACHABLE@
.TP
.B 4
The broker or the proxy refused: the proxy the credentials; the broker the connection (credentials, not authorized, or the client id), or,
under MQTT 5, a message
(reason code 0x87, not authorized).
.TP
.B 130, 143
Stopped by SIGINT or SIGTERM. The first signal stops reading: chat\-pub sends every line
it has read and waits for their acknowledgements, within \fB\-\-drain\-timeout\fR; an
unfinished last line (no newline yet) is dropped, as a terminal drops the line being typed
on Ctrl\-C. A second signal, or the end of the drain timeout, ends the wait at once, and
chat\-pub says how many messages were not acknowledged.
.PP
When failures of several kinds happen in one run, 4 wins over 1: a refusal is the thing
to fix first. A signal wins over both.
@DIAGNOSTICS@
.TP
\fBline \fR\fIN\fB: \fR\fIWHY\fR
A line that was not sent, and why (see INPUT and DELIVERY); an \fB\-m\fR text that cannot
be made into a message is \fBmessage \fR\fIN\fR, and once sent it is \fBline \fR\fIN\fR
too. With \fB\-\-dialect mqttchat\-py\fR the notice sent at start is
\fBthe notice at start\fR.
.TP
\fBmade your identity \fR\fIPATH\fB (fingerprint \fR\fIFINGERPRINT\fB); members check it with \-\-fingerprint\fR
The first run with a room secret (or \fB\-\-fingerprint\fR) made your identity (see
IDENTITIES in chat\-sub(1)). Give \fIFINGERPRINT\fR to the other members by a way you
trust.
.TP
\fByour identity \fR\fIPATH\fB can be read by group or others; keep it private (chmod 600)\fR
Others could sign as you. A warning (\fB\-\-identity\-file \fR\fIPATH\fR\fB ...\fR for that
file); the run goes on.
.TP
\fBinterrupted: sending what was read, then exiting; waiting up to \fR\fISECS\fBs for the broker\*(Aqs acknowledgements (\-\-drain\-timeout); interrupt again to quit now\fR
The first SIGINT or SIGTERM while reading (see EXIT STATUS).
.SH ENVIRONMENT
@ENV_BROKER@
.TP
.B CHAT_NICK
The nick when \fB\-\-nick\fR is not given.
.TP
.B USER
The nick when neither \fB\-\-nick\fR nor \fBCHAT_NICK\fR is given.
@ENV_PROFILE@
@ENV_RUST_LOG@
@FILES@
.SH EXAMPLES
@EXAMPLE_CHAT@
.PP
Send the errors of a growing log as they are written (\fBgrep\fR must not buffer its
output in a pipe):
.PP
.RS 4
.nf
tail \-F build.log | grep \-\-line\-buffered ERROR | chat\-pub ops/alerts
.fi
.RE
.PP
One message, retained, so that later subscribers get it too; the exit status says
whether the broker has it:
.PP
.RS 4
.nf
chat\-pub \-r \-m \*(Aqdeploy at 14:00\*(Aq ops/status || echo failed >&2
.fi
.RE
@EXAMPLE_RELAY@
@EXAMPLE_SECURE@
.PP
In an encrypted room: your fingerprint, to read out to the other members (it makes your
identity if you have none yet), then the room:
.PP
.RS 4
.nf
chat\-pub \-\-fingerprint
chat\-pub \-\-room\-secret\-file ~/.config/mqttchat/team.secret team/x
.fi
.RE
.PP
Publish to a topic chosen per line with \fBjq\fR (\fB\-\-unbuffered\fR, so that jq
passes each line on at once):
.PP
.RS 4
.nf
chat\-sub \-\-json \*(Aqsensors/#\*(Aq |
  jq \-c \-\-unbuffered \*(Aq{topic: ("alerts/" + .topic), text}\*(Aq |
  chat\-pub \-\-json
.fi
.RE
.PP
With mosquitto's clients: \fBmosquitto_sub\fR prints the envelopes, and a chat\-pub
that reads from \fBmosquitto_sub\fR wraps each plain message in an envelope.
.PP
.RS 4
.nf
mosquitto_sub \-t lobby
mosquitto_sub \-t sensors/temp | chat\-pub \-\-nick thermometer lobby
.fi
.RE
.SH SEE ALSO
.BR chat\-sub (1),
@SEE_ALSO@
"##;

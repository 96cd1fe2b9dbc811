//! Roff shared by chat-pub(1) and chat-sub(1), continued: how the tools talk to the
//! original MQTTChat (`--dialect`), and the messages met when connecting (DIAGNOSTICS).
//! Each piece is named in [`super::shared`]'s list; a page refers to it as `@NAME@`.

/// THE ORIGINAL MQTTCHAT: `--dialect mqttchat-py` on both tools (src/room/dialect.rs).
pub const DIALECT: &str = r##".SH THE ORIGINAL MQTTCHAT
mqttchat descends from MQTTChat, a small Python program (paho\-mqtt on the public HiveMQ
broker) whose rooms still exist. Its payloads are not envelopes: it publishes each line
as \fINAME\fB,\fR\fITEXT\fR, and when it starts the notice
\fBnoticia,\fR\fINAME\fR\fB entrou neste tópico\fR ("entered this topic").
\fB\-\-dialect mqttchat\-py\fR makes both tools speak that; the default,
\fB\-\-dialect mqttchat\fR, is the envelope.
.PP
chat\-pub publishes each line as \fINICK\fB,\fR\fILINE\fR, and when it starts, before any
line, the notice, at the QoS of the lines and not retained (not with
\fB\-\-no\-presence\fR, nor without \fITOPIC\fR). With \fB\-\-json\fR, a line's \fBfrom\fR
(else the nick) and \fBtext\fR are sent as \fIFROM\fB,\fR\fITEXT\fR; \fBts\fR and \fBid\fR
have no place in the dialect. A nick with a comma cannot be carried: a usage error for
\fB\-\-nick\fR, a per\-line error for a \fBfrom\fR. Presence (see PRESENCE) is announced
as usual, beside the room, where the original does not look.
.PP
chat\-sub reads each payload as usual first: an envelope is an envelope, and a payload
that is not UTF\-8 is raw. A UTF\-8 payload \fINAME\fB,\fR\fITEXT\fR whose \fINAME\fR is not
empty is a message from \fINAME\fR (white space around \fINAME\fR and \fITEXT\fR is
dropped, as the original drops it): \fIHH\fR:\fIMM\fR:\fISS NAME\fR\fB: \fR\fITEXT\fR in text
(the time it was received), \fBfrom\fR and \fBtext\fR in \fB\-\-json\fR with \fBts\fR and
\fBid\fR null, \fB{from}\fR and \fB{text}\fR in a template; \fB\-\-ignore\fR and
\fB\-\-hide\-own\fR apply to \fINAME\fR. A payload \fBnoticia,\fR\fITEXT\fR is a notice,
shown as a join is: \fIHH\fR:\fIMM\fR:\fISS\fR \fB* \fR\fITEXT\fR in text, and in
\fB\-\-json\fR
.PP
.RS 4
.nf
{"event":"notice","topic":"sala","text":"seeduser entrou neste tópico",
 "ts":"2026\-11\-26T12:01:02.125Z"}
.fi
.RE
.PP
(one line; \fBts\fR is when it was received; \fBchat\-pub \-\-json\fR skips it). A template
prints no notices, \fB\-\-count\fR does not count them, and \fB\-\-no\-presence\fR hides
them. A raw message of another client that has a comma reads as \fINAME\fB,\fR\fITEXT\fR
too, as the original reads it.
.PP
The original cannot decrypt: the dialect with a room secret is a usage error (exit status
2), and so is \fB\-\-raw\fR, which sends and prints payloads as they are.
"##;

/// The DIAGNOSTICS entries of connecting, shared by both tools.
pub const DIAGNOSTICS: &str = r##".SH DIAGNOSTICS
Every message on standard error starts with the tool's name and a colon. These are the
ones met when a broker cannot be reached:
.TP
\fBstill trying to reach \fR\fIURL\fB: \fR\fIREASON\fB; giving up after \fR\fISECS\fBs (\-\-connect\-timeout)\fR
The first connection is still being tried after a second; said once, with the reason of
the last failed attempt (\fBno answer yet\fR while the first attempt goes on), and the tool
goes on trying. With several brokers: \fBstill trying to reach any of the \fR\fIN\fB
brokers: last: \fR\fIURL\fB: \fR\fIREASON\fR... A broker that answers within the second,
or a \fB\-\-connect\-timeout\fR of 2 seconds or less, costs a script nothing on standard
error. \fISECS\fR is \fB\-\-connect\-timeout\fR with one decimal: \fB10.0s\fR.
.TP
\fBcannot reach the broker at \fR\fIURL\fB within \fR\fISECS\fBs: \fR\fIREASON\fR
The first connection did not succeed within \fB\-\-connect\-timeout\fR, \fISECS\fR (exit
status 3).
With several brokers: \fBcannot reach any of the \fR\fIN\fB brokers within \fR\fISECS\fBs
(last: \fR\fIURL\fB: \fR\fIREASON\fB)\fR. When the connection was refused, \fIREASON\fR ends
with
.RS
.PP
\fB: nothing listens on \fR\fIHOST\fB:\fR\fIPORT\fB; is a broker running there?
(chat\-broker listens on 127.0.0.1:1883 only, unless started with \-\-listen)\fR
.PP
No broker runs on that port, or it listens on another address: a chat\-broker that other
machines are to reach is started with \fB\-\-listen 0.0.0.0:1883\fR.
.RE
.TP
\fBcannot resolve the host name \*(Aq\fR\fIHOST\fB\*(Aq: \fR\fIWHY\fB (\fR\fIURL\fB); check the name given with \-b or CHAT_BROKER\fR
The name does not exist: said at once, with exit status 3, since waiting would not make
it exist (names under \fB.invalid\fR never do). With several brokers, such a broker is
passed over until a connection is made (\fB...; trying the other brokers\fR), and only
when no name resolves does the run end: \fBcannot resolve the host name of any of the
\fR\fIN\fB brokers (last: ...)\fR.
A resolver that cannot answer for now (no network yet) is retried like a broker that is
down; so is a name that stops resolving after the first connection.
"##;

//! The hand-written parts of chat-broker(1), in roff. Every statement here describes what
//! src/broker.rs does; when the code changes, change this text and regenerate (see
//! tests/man.rs). Roff reminders are at the top of tests/man/chat_sub.rs.

/// Appended to the DESCRIPTION generated from the clap definitions.
pub const DESCRIPTION: &str = r##".PP
\fBchat\-broker\fR listens on 127.0.0.1:1883 unless \fB\-\-listen\fR says otherwise, so
by default only programs on this machine can reach it. At start it prints one line on
standard error saying where it listens, for example
.PP
.RS 4
.nf
chat\-broker: listening on 127.0.0.1:1883 (MQTT 3.1.1 and 5)
.fi
.RE
.PP
and then runs until it receives SIGINT or SIGTERM. Every address serves MQTT 3.1.1
clients (such as mosquitto_pub and mosquitto_sub, whose default is 3.1.1) and MQTT 5
clients (such as chat\-pub and chat\-sub, whose default is 5) alike.
.PP
It supports what chat needs: QoS 0, 1 and 2, retained messages, and persistent sessions
(clean session off under MQTT 3.1.1, a session expiry interval under MQTT 5), which keep
QoS 1 and 2 messages for a subscriber while it is away. Sessions and retained messages
live in memory only: they are gone when the broker stops.
.SH HOW IT WORKS
The engine is rumqttd, the broker of the rumqtt project. rumqttd serves one protocol
version per listener, so chat\-broker puts a small front on each \fB\-\-listen\fR
address: it reads the protocol level from a client's CONNECT packet and connects the
client to rumqttd's listener for that version on a loopback port of its own. A client
that sends no CONNECT within 10 seconds is disconnected.
.SH LIMITS
.IP \(bu 2
A message may be at most 16 MiB. The engine does not announce this limit; it closes the
connection of a client that sends a bigger message (chat\-pub reports such a line and gives
it up after three tries).
.IP \(bu 2
Messages are kept in memory, in a log per subscription filter of at most 8 segments of
64 MiB.
.IP \(bu 2
At most 10,000 connections, and as many as open files allow: each client holds three
file descriptors (its connection, and both ends of the hop from the front that reads the
protocol version to the engine). chat\-broker raises its soft limit of open files to the
hard limit at start, as servers do (\fB\-v\fR says how many clients that makes); a hard
limit of 1024 holds about 340 clients; 30,100 or more hold the 10,000 (\fBulimit \-Hn\fR
shows it).
.IP \(bu 2
Client ids that contain \fB+\fR, \fB#\fR, \fB/\fR or \fB$\fR are refused (CONNACK "client
identifier not valid", 0x85 under MQTT 5, 0x02 under 3.1.1): the engine cannot take them.
chat\-pub and chat\-sub stop at once with exit status 4 when their \fB\-i\fR or
\fB\-\-session\fR is refused.
.IP \(bu 2
No authentication, no TLS, no WebSocket listener and no \fB$SYS\fR topics. Anyone who
can reach an address can publish and subscribe to everything: listen on a LAN address
(such as 0.0.0.0) only on a network you trust.
.IP \(bu 2
The engine delivers every message at the QoS of the subscription, even when it was
published at a lower one; the MQTT specification says the lower of the two, as
mosquitto does.
.SH WHEN TO USE ANOTHER BROKER
chat\-broker is for a machine or a LAN that has no broker, and for tests. It is not a
production broker. For one machine serving many users, use mosquitto; to scale beyond
one machine, use a clustered broker such as EMQX, HiveMQ or VerneMQ. chat\-pub and
chat\-sub speak plain MQTT, so only their \fB\-\-broker\fR changes.
"##;

/// The sections after OPTIONS.
pub const SECTIONS: &str = r##".SH EXIT STATUS
.TP
.B 0
Stopped by SIGINT or SIGTERM: a server stopped on purpose.
.TP
.B 2
Usage error: a bad flag, or an address that is not \fIHOST\fR:\fIPORT\fR (or whose
name does not resolve).
.TP
.B 3
It cannot listen: the port is in use, the address is not on this machine, or a port
below 1024 needs privileges; or the engine did not start.
.SH ENVIRONMENT
.TP
.B RUST_LOG
What is logged on standard error, in env_logger's syntax; it overrides \fB\-v\fR. The
engine logs under \fBrumqttd\fR, for example \fBRUST_LOG=mqttchat=info,rumqttd=debug\fR.
.SH EXAMPLES
A chat on this machine, in three terminals:
.PP
.RS 4
.nf
chat\-broker
chat\-sub lobby
chat\-pub \-\-nick alice lobby
.fi
.RE
.PP
Serve the LAN as well as this machine, and log connections:
.PP
.RS 4
.nf
chat\-broker \-v \-\-listen 0.0.0.0:1883
.fi
.RE
.PP
Let the system pick a free port (the start line says which):
.PP
.RS 4
.nf
chat\-broker \-\-listen 127.0.0.1:0
.fi
.RE
.SH SEE ALSO
.BR chat\-pub (1),
.BR chat\-sub (1),
.BR mosquitto (8)
"##;

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
live in memory, and are gone when the broker stops, unless \fB\-\-data\-dir\fR keeps
them on disk too (see STORE).
.SH HOW IT WORKS
chat\-broker is its own MQTT broker, written for this project: one thread serves every
connection (as mosquitto does), each client costs one file descriptor and a few
kilobytes, and a message to a room is held once, however many members it goes to. A client
that sends no CONNECT within 10 seconds is disconnected, and one that is silent for one
and a half times its keep\-alive is taken as gone (its will is sent).
.PP
What it keeps for MQTT clients: wills (under MQTT 5 with their delay), retained messages
(an empty one deletes the topic's), sessions by client id (a second connection with the
same id takes the session over; under MQTT 5 the first is told so with DISCONNECT 0x8E),
subscription options of MQTT 5 (no local, retain as published, retain handling,
subscription identifiers), topic aliases from clients (up to 64), and message expiry
intervals (a message that waited is sent with what is left of its interval, and not at
all, nor kept retained, once it ended). A message goes to a
subscriber at the lower of the two QoS, once even when several of its filters match it.
At most 1000 QoS 1 and 2 messages are in flight to a client at a time (fewer if its
receive maximum says so); the rest wait in its session. QoS 0 messages are not kept for
a client that is away, as with mosquitto's defaults.
.SS Shared subscriptions
A subscription to \fB$share/\fR\fIGROUP\fR\fB/\fR\fIFILTER\fR, under MQTT 5 and 3.1.1 alike,
makes the client a member of the group \fIGROUP\fR: each message that matches
\fIFILTER\fR goes to one member only, in turn, as with mosquitto; a pool of workers
(bots, loggers, bridges) splits a room's messages this way:
.PP
.RS 4
.nf
chat\-sub \-q 1 \-\-json \*(Aq$share/loggers/chat/#\*(Aq >> part\-1.jsonl   # on each worker
.fi
.RE
.PP
A member that is connected is preferred, so a member that went away has its turns go to
the others. What a member that went away had not received (queued, or in flight without
its acknowledgement; a QoS 2 message it had acknowledged with PUBREC stays with it) goes
to another member of the group, one that is connected if there is one; with no other
member it stays in its session, if the session lives on. A shared subscription gets no
retained messages when it is made (MQTT 5 §4.8.2), and No Local on one is a protocol
error (the client is disconnected, 0x82). A message that matches a client's own
subscription and a shared one reaches it once for each. MQTT 5 clients are told in the
CONNACK that shared subscriptions are available.
.SH STORE
With \fB\-\-data\-dir\fR \fIDIR\fR, chat\-broker keeps on disk what it would otherwise
lose with the process, through a restart, \fBkill \-9\fR and power loss:
.IP \(bu 2
retained messages;
.IP \(bu 2
sessions that outlive their connection (MQTT 3.1.1 without clean session, MQTT 5 with a
session expiry): their subscriptions, the QoS 1 and 2 messages queued for them or in
flight (sent again when the client is back, as duplicates with the same packet id), and
their QoS 2 state (packet ids received and not yet released, messages whose PUBREC came);
.IP \(bu 2
wills waiting out their delay;
.IP \(bu 2
the expiry of each message and session, as wall\-clock time: a session or message whose
time ran out while the broker was down is gone after the restart, and a will whose delay
ended meanwhile is sent at once.
.PP
Not kept: sessions that end with their connection, and QoS 0 messages, which are not
queued for an absent client either. The expiry of a session that never ends
(\fB\-\-persistent\-client\-expiration\fR) counts again from the restart.
.PP
\fBWhat an acknowledgement promises.\fR A QoS 1 or 2 message that a kept session or the
retained messages take is written and synced (\fBfdatasync\fR(2)) before its PUBACK or
PUBREC goes out: a publisher's acknowledgement, and so chat\-pub's exit status 0, means
that the message is on the broker's disk. One sync covers every change that came while
the previous sync ran (group commit), so a stream costs one sync per batch, not one per
message. Nothing that depends on a change leaves the broker before the change is on
disk. After a crash a QoS 1 message may be delivered twice, as MQTT allows (chat\-sub
prints it once); an acknowledged one is never lost. A message whose subscribers all have
sessions that end with their connection touches no disk.
.PP
\fBThe files.\fR \fIDIR\fR\fB/store\fR holds a snapshot of what is kept, then a log of
every change since, each record with its length and a CRC\-32 checksum. Once the log
outgrows 64 MiB and twice the snapshot, a new snapshot is written to
\fIDIR\fR\fB/store.new\fR, synced, and renamed over \fIDIR\fR\fB/store\fR; while it is
written (a quarter of a second for a million queued messages) the broker answers nobody. Each
start reads the file, replays it, and writes a new snapshot the same way: about 2 seconds
with 1,000,000 queued messages. \fIDIR\fR\fB/lock\fR keeps a second chat\-broker off the
directory. \fIDIR\fR is created (mode 0700) if it is missing.
.PP
\fBDamage.\fR A record cut short or garbled within the last 64 MiB of the file (more
than the broker ever writes between two syncs) is a write that a crash interrupted: it
was never acknowledged, and it is cut off, with a warning. Any other record that cannot
be read, or a file that is not a chat\-broker store, stops the start with exit status 1
and a message that names the file and the byte: chat\-broker never starts empty in place
of what it kept. To start afresh anyway, move the file away (and keep it).
.SH STOPPING
On SIGINT or SIGTERM chat\-broker stops gracefully:
.IP 1. 4
it accepts no new connection;
.IP 2. 4
it tells every MQTT 5 client with DISCONNECT 0x8B ("server shutting down"; chat\-pub and
chat\-sub say so on standard error and try to reconnect), and closes the connection of
every MQTT 3.1.1 client, which has no such packet;
.IP 3. 4
it writes what was queued for each client first, for at most 3 seconds in all (a second
signal stops at once);
.IP 4. 4
with \fB\-\-data\-dir\fR, it syncs the store;
.IP 5. 4
it exits with status 0.
.PP
Wills are published: a stop closes each connection without a DISCONNECT from the client,
which is when MQTT says a will is sent. So a chat\-pub's presence shows it offline, as it
would have if its own connection had dropped. A will with a delay (MQTT 5) waits for it:
with \fB\-\-data\-dir\fR in the store, and it is sent after the restart once the delay is
over; without, it is lost with the process if the delay is not over.
.SH LIMITS
.IP \(bu 2
A message may be at most 16 MiB. MQTT 5 clients are told so in the CONNACK (chat\-pub
then reports a bigger line and skips it); the connection of a client that sends a bigger
packet is closed (chat\-pub, under MQTT 3.1.1, reports such a line and gives it up after
three tries).
.IP \(bu 2
Messages are kept in memory: up to \fB\-\-max\-queued\-messages\fR (1,000,000) QoS 1 and 2
messages queued per session, and what a connected client has not read yet. Beyond that
number, new messages for that session are dropped and the oldest kept, so that the client
reads an unbroken stretch when it is back; the drops are counted and the log says how
many when the client reconnects or leaves. The publisher is not told: its message was
accepted and reached every other subscriber (its PUBACK is a success).
.IP \(bu 2
All queues together hold at most \fB\-\-max\-queued\-bytes\fR (by default a quarter of the
machine's memory, at least 64 MiB), counting 64 bytes for each queued message and its
topic and payload once, however many sessions queue it (it is held once). Beyond
it, QoS 0 messages are dropped first, and counted in the log; QoS 1 and 2 messages are
refused, never taken and then lost: an MQTT 5 publisher gets reason 0x97 "quota exceeded"
in its PUBACK or PUBREC (chat\-pub reports the line and exits 1), an MQTT 3.1.1
publisher, whose protocol has no such answer, has its connection closed, and its client
sends the message again when it is back. What each connected client has not read yet is
bounded on its own (below).
.IP \(bu 2
A session that would never end (MQTT 3.1.1 without clean session, MQTT 5 with a session
expiry of 0xFFFFFFFF) is kept for ever, as mosquitto does, unless
\fB\-\-persistent\-client\-expiration\fR \fITIME\fR is given: then it is forgotten once its
client was away that long. MQTT 5 sessions with an expiry of their own end with it. When
more than 64 MiB wait to be written to a client (it stopped reading, or reads far slower
than others publish), QoS 0 messages to it are dropped, and the log counts them, as
mosquitto does; beyond 128 MiB its connection is closed and its will sent. QoS 1 and 2
messages wait in its session instead.
.IP \(bu 2
A client may hold up to 10,000 subscriptions (SUBACK 0x97 "quota exceeded" beyond, 0x80
under 3.1.1). MQTT 3.1 and other protocol levels get CONNACK return code 1.
.IP \(bu 2
A CONNECT may be at most 1 MiB. A will whose topic is empty or holds a wildcard is
refused (CONNACK 0x90 under MQTT 5; under 3.1.1 the connection is closed).
.IP \(bu 2
Connections: at most \fB\-\-max\-connections\fR clients at once; by default as many as
open files allow, less 64 kept for the listeners and the process itself, one file
descriptor each. chat\-broker raises its soft limit of open files to the hard limit at
start, as servers do (\fB\-v\fR says how many clients that makes); \fBulimit \-Hn\fR shows
the hard limit, often 1024 or 524288. A client beyond the limit is refused in its
CONNACK: 0x97 "quota exceeded" under MQTT 5, return code 3 "server unavailable" under
3.1.1 (chat\-pub and chat\-sub try again until \fB\-\-connect\-timeout\fR). A client that
takes over its own session does not count twice. 10,000 clients in one room take about
50 MiB.
.IP \(bu 2
No \fB$SYS\fR topics, no MQTT 5 enhanced authentication (a CONNECT with an
authentication method is refused, 0x8C) and no bridges.
.SH ON A NETWORK
On loopback (127.0.0.1, ::1) and without the flags below, every client may connect,
publish and subscribe, as before. Listening anywhere else takes a decision, as with
mosquitto 2.0: chat\-broker refuses to start (exit 2) on an address that is not loopback
unless clients must log in there (\fB\-\-password\-file\fR, or a TLS listener with
\fB\-\-require\-certificate\fR and \fB\-\-use\-identity\-as\-username\fR: a client
certificate alone, with the username the client says, proves no name), or
\fB\-\-allow\-anonymous\fR says that anyone who can reach the port may use the broker;
then it says so on standard error at start.
.SS Passwords
\fB\-\-password\-file\fR \fIFILE\fR takes mosquitto_passwd's format, one
\fIUSER\fR\fB:\fR\fIHASH\fR line per user: \fB$7$\fR (PBKDF2\-SHA512, mosquitto 2.0's) and
\fB$6$\fR (salted SHA\-512, older mosquitto). A file made by \fBmosquitto_passwd \-c\fR
\fIFILE\fR \fIUSER\fR works as it is, and \fBchat\-broker passwd\fR \fIFILE\fR \fIUSER\fR
makes or changes one without mosquitto (\fB\-D\fR deletes the user):
.PP
.RS 4
.nf
chat\-broker passwd ~/.config/chat\-broker/users alice     # asks twice, no echo
printf \*(Aq%s\\n\*(Aq "$PASS" | chat\-broker passwd users bob    # from a script
.fi
.RE
.PP
A client logs in with its CONNECT's username and password (chat\-pub and chat\-sub:
\fB\-u\fR and \fB\-\-password\-file\fR). A username the file lacks or a wrong password is
refused with CONNACK "bad username or password" (MQTT 5: 0x86; 3.1.1: return code 4), a
client without a username with "not authorized" (0x87; 5) unless
\fB\-\-allow\-anonymous\fR; chat\-pub and chat\-sub exit 4 on either. Passwords are
compared in constant time, and a username the file lacks costs the same work as one it
has. Each check runs off the thread that serves the clients: a slow hash (many
iterations) slows that login only. Logins from one address (an IPv6 address as itself)
are checked at most four at a time, and one at a time once it has failed. A failed
login's refusal is held back: 0.25 s after the first failure from its address, doubling
with each, at most 1.5 s (less than clients wait for an answer); meanwhile further logins
from that address wait. Once the refusal is out, the next login from there is checked at
once, so a user who mistyped gets in as soon as the password is right. Logins from
elsewhere wait for nothing. Failures are counted until the address was quiet for a
quarter of an hour (a success does not reset them, and costs nothing: only failures are
held). Nothing is cached: each login pays its hash, as
with mosquitto. Without \fB\-\-password\-file\fR a username is believed as sent (it
names the client's ACL rules). Neither passwords nor hashes are ever logged.
.SS Access control
\fB\-\-acl\-file\fR \fIFILE\fR takes mosquitto's acl_file format. Lines starting with
\fB#\fR are comments. \fBuser\fR \fINAME\fR starts the rules of that user; \fBtopic\fR
[\fBread\fR|\fBwrite\fR|\fBreadwrite\fR|\fBdeny\fR] \fIFILTER\fR grants (by default
readwrite) or denies a filter; rules before the first \fBuser\fR line are for clients
without a username; \fBpattern\fR [\fIACCESS\fR] \fIFILTER\fR applies to every client, with
\fB%u\fR replaced by its username and \fB%c\fR by its client id (a pattern never grants
anything to a client whose username or client id holds \fB+\fR, \fB#\fR or \fB/\fR). A
deny that matches wins over any grant; what no rule grants is denied.
.IP \(bu 2
PUBLISH needs write access to its topic. A refused one is answered, under MQTT 5, with
reason 0x87 "not authorized" in its PUBACK or PUBREC (chat\-pub reports the line and
exits 4); under 3.1.1, which has no such answer, it is acknowledged and dropped, as
mosquitto does. Either way it is logged (\fB\-v\fR) and reaches nobody. A will needs write
access to its topic too, or the CONNECT is refused (0x87; 5).
.IP \(bu 2
SUBSCRIBE is refused (0x87 in the SUBACK; 0x80 under 3.1.1) when the client may read
nothing its filter matches; chat\-sub then names the filter and exits 4. A filter that
matches more than the client may read is accepted (as mosquitto accepts every
subscription), and each message is checked before it goes to the client: it gets only
what it may read. Retained messages are checked the same way.
.IP \(bu 2
A session (connected or kept while its client is away) belongs to the user who logged in
to it: a login as another user with its client id is refused ("not authorized": 0x87; 5),
so nobody can take over, or end, someone else's session; a user's login under the
client id of an anonymous client's session starts it afresh. While its client is away
a session reads by its user's rules (with \fB\-\-data\-dir\fR, across restarts).
.PP
SIGHUP reads \fB\-\-password\-file\fR and \fB\-\-acl\-file\fR again: logins after it, and
every PUBLISH, SUBSCRIBE and message routed after it, follow the new files; a client
logged in as a user the new password file lacks is disconnected (MQTT 5: DISCONNECT
0x87), others stay connected. Messages queued for a session before the SIGHUP were
judged by the rules of then. A file that cannot be read or does not parse changes nothing
(the broker logs why and goes on with what it had). A file that is wrong at start stops
the start (exit 2), naming the file and the line; the message never quotes a hash.
.PP
A file that gives each user their rooms, and the presence of those rooms only (presence
topics are \fBmqttchat\-presence/\fR\fIROOM\fR\fB/\fR\fICLIENT\-ID\fR, see chat\-pub(1)):
.PP
.RS 4
.nf
# alice and bob share a room; carol has one of her own.
user alice
topic readwrite rooms/alice\-bob
topic readwrite mqttchat\-presence/rooms/alice\-bob/#

user bob
topic readwrite rooms/alice\-bob
topic readwrite mqttchat\-presence/rooms/alice\-bob/#

user carol
topic readwrite rooms/carol
topic readwrite mqttchat\-presence/rooms/carol/#

# Everyone may also use a room named after themselves.
pattern readwrite rooms/%u
pattern readwrite mqttchat\-presence/rooms/%u/#
.fi
.RE
.PP
With it, \fBchat\-sub \-u bob \-\-password\-file\fR ... \fBrooms/alice\-bob\fR reads the
room and its joins and leaves; \fBchat\-sub \-u bob\fR ... \fBrooms/carol\fR is refused
(exit 4), and \fBchat\-sub \-u bob\fR ... \fB\*(Aqrooms/#\*(Aq\fR gets bob\*(Aqs rooms only.
.SS TLS
\fB\-\-tls\-listen\fR \fIADDR\fR serves MQTT over TLS (1.2 and 1.3, rustls with the ring
provider) with the certificate chain of \fB\-\-certfile\fR and the key of
\fB\-\-keyfile\fR (PEM). Clients connect with \fB\-b mqtts://\fR\fIHOST\fR\fB:\fR\fIPORT\fR
(mosquitto_sub: \fB\-p\fR \fIPORT\fR \fB\-\-cafile\fR \fICA\fR). With \fB\-\-cafile\fR
\fICA\fR, a client that presents a certificate must present one \fICA\fR signed; with
\fB\-\-require\-certificate\fR too, a client without one is refused in the handshake
(mutual TLS). \fB\-\-use\-identity\-as\-username\fR makes the first common name of a
client certificate's subject the client's username, as mosquitto's
use_identity_as_username does: no password is asked, and the ACL's \fBuser\fR rules of
that name apply. The files are read at start; a new certificate needs a restart.
.SS WebSocket
\fB\-\-ws\-listen\fR \fIADDR\fR serves MQTT over WebSocket, on any path, confirming the
subprotocol \fBmqtt\fR (or \fBmqttv3.1\fR) that browsers' MQTT libraries offer; chat\-pub
and chat\-sub connect with \fB\-b ws://\fR\fIHOST\fR\fB:\fR\fIPORT\fR. With \fB\-\-certfile\fR
and \fB\-\-keyfile\fR it is WebSocket over TLS (\fBwss://\fR), with the same client
certificate rules as \fB\-\-tls\-listen\fR. A browser lets any page open a WebSocket to
any address, loopback included, and names the page in its Origin header: where clients
may connect without a password, a handshake with an Origin that \fB\-\-ws\-origin\fR does
not list is refused (HTTP 403), so a page from anywhere cannot use a broker meant for
this machine or a LAN. Logins by client certificate count as without a password here: a
browser presents its user's certificate for any page. Messages are at most 16 MiB, as packets are.
.SS Before the login
At most 1024 connections at once may be between their accept and their login judged
(TLS and WebSocket handshakes, 10 s at most each; a CONNECT, 10 s; a login waiting its
turn); further ones wait in the system's backlog. Of those, at most 64 from one address
(loopback aside): more from there are closed at once. A CONNECT may be at most 1 MiB.
.PP
A password file on a listener that is neither TLS nor loopback is warned of at start:
the passwords cross the network in clear text.
.SS Several listeners
\fB\-\-listen\fR, \fB\-\-tls\-listen\fR and \fB\-\-ws\-listen\fR may each be given several
times, and together: every listener is in front of the same engine, so retained
messages, sessions, subscriptions and the ACL are the same whichever way a client comes
in. Without \fB\-\-listen\fR, plain MQTT is served on 127.0.0.1:1883 only when no other
listener is asked for. The start line names each, for example \fBlistening on
127.0.0.1:1883, mqtts://0.0.0.0:8883, wss://0.0.0.0:8081 (MQTT 3.1.1 and 5)\fR.
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
.B 1
The store (\fB\-\-data\-dir\fR) cannot be read, made or written, or another chat\-broker
uses its directory.
.TP
.B 2
Usage error: a bad flag, or an address that is not \fIHOST\fR:\fIPORT\fR (or whose
name does not resolve); an address that is not loopback without
\fB\-\-password\-file\fR or \fB\-\-allow\-anonymous\fR; a password file, ACL file,
certificate or key that cannot be read or does not parse. For \fBchat\-broker passwd\fR:
a bad username, passwords that differ, an empty password.
.TP
.B 3
It cannot listen: the port is in use, the address is not on this machine, or a port
below 1024 needs privileges.
.SH DIAGNOSTICS
Every message on standard error starts with \fBchat\-broker:\fR.
.TP
\fBlistening on \fR\fIADDR\fR[\fB, \fR\fIADDR\fR...]\fB (MQTT 3.1.1 and 5)\fR
Once every address is listened on (with port 0, the port the system picked).
.TP
\fBcannot listen on \fR\fIADDR\fB: Address already in use (os error 98): another program listens there, usually a broker (chat\-broker or mosquitto): the clients can use it as it is (\-b \fR\fIADDR\fB), or give this broker another port (\-\-listen \fR\fIADDR2\fB)\fR
Exit status 3. Often a chat\-broker or a mosquitto started earlier (Debian's mosquitto
package starts one on port 1883): chat\-pub and chat\-sub can use that one as it is.
Otherwise \fIADDR2\fR is the next port. For an address that is not this machine's, the
message says so (\fB0.0.0.0\fR listens on all of them), and for a port below 1024,
that it needs root.
.TP
\fBnot listening on \fR\fIADDR\fR\fB without \-\-password\-file: anyone who can reach it could publish and subscribe. Give \-\-password\-file FILE (`chat\-broker passwd FILE USER` makes one), or \-\-allow\-anonymous on a network you trust\fR
Exit status 2 (see ON A NETWORK).
.TP
\fBwarning: \-\-allow\-anonymous: anyone who reaches \fR\fIADDR\fR\fB may publish and subscribe\fR
At start, for each address that is not loopback and lets anyone in.
.TP
\fB\-\-password\-file \fR\fIFILE\fR\fB: line \fR\fIN\fR\fB: \fR\fIWHY\fR, \fB\-\-acl\-file \fR\fIFILE\fR\fB: line \fR\fIN\fR\fB: \fR\fIWHY\fR
Exit status 2 at start; after SIGHUP, an error in the log, and the broker goes on with
the file as it was.
.TP
\fIPEER\fR\fB: login as \fR\fIUSER\fR\fB refused: bad username or password\fR
A warning (shown without \fB\-v\fR): a failed login, and from where.
.TP
\fBinvalid \-\-listen address \*(Aq:1883\*(Aq: give the host too: 127.0.0.1:1883 (this machine only) or 0.0.0.0:1883 (every network interface)\fR
Exit status 2: a port alone (\fB:1883\fR or \fB1883\fR) does not say which machines may
connect, so chat\-broker asks rather than guesses.
.TP
\fBthe store \fR\fIDIR\fR\fB/store cannot be read: byte \fR\fIN\fR\fB: \fR\fIWHY\fR\fB. chat\-broker does not start without what it kept. To start with an empty store, move the file away (keep it: it may hold messages and sessions someone wants back)\fR
Exit status 1: the file is damaged before its last write, or is not a chat\-broker store
(see STORE).
.TP
\fIDIR\fR\fB/store: its last \fR\fIN\fR\fB bytes were a write that a crash cut short (never acknowledged): cut off\fR
A warning at start, after a crash or a power loss; what came before is all there.
.TP
\fBanother chat\-broker uses the data directory \fR\fIDIR\fR\fB (it holds \fR\fIDIR\fR\fB/lock)\fR
Exit status 1.
.TP
\fBcannot write the store \fR\fIDIR\fR\fB/store: \fR\fIWHY\fR
Exit status 1: the disk is full or failing. The broker stops (as on SIGTERM) rather than
acknowledge messages it cannot keep.
.SH ENVIRONMENT
.TP
.B RUST_LOG
What is logged on standard error, in env_logger's syntax; it overrides \fB\-v\fR, for
example \fBRUST_LOG=mqttchat::broker::engine=debug\fR.
.SH FILES
.TP
\fIDIR\fR\fB/store\fR
With \fB\-\-data\-dir\fR \fIDIR\fR: the store, a snapshot and the log after it (see STORE).
.TP
\fIDIR\fR\fB/store.new\fR
A snapshot being written; renamed over \fBstore\fR once it is synced.
.TP
\fIDIR\fR\fB/lock\fR
Locked (\fBflock\fR(2)) while a chat\-broker uses \fIDIR\fR.
.TP
\fIFILE\fR\fB.lock\fR
Locked while \fBchat\-broker passwd\fR changes \fIFILE\fR, so that two at once lose
nothing. The new \fIFILE\fR keeps the old one's mode and owner (a new one is readable
by its owner only); one that others may read is warned of.
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
Serve the LAN as well as this machine, to those with a password, and log connections:
.PP
.RS 4
.nf
chat\-broker passwd users alice
chat\-broker \-v \-\-listen 0.0.0.0:1883 \-\-password\-file users
chat\-sub \-b lan\-host \-u alice \-\-password\-file ~/.alice\-pass lobby    # elsewhere
.fi
.RE
.PP
A LAN you trust, without passwords:
.PP
.RS 4
.nf
chat\-broker \-\-listen 0.0.0.0:1883 \-\-allow\-anonymous
.fi
.RE
.PP
TLS and WebSocket over TLS beside plain MQTT for this machine, with passwords and rooms
per user (\fBkill \-HUP\fR after editing either file):
.PP
.RS 4
.nf
chat\-broker \-\-listen 127.0.0.1:1883 \-\-tls\-listen 0.0.0.0:8883 \\
    \-\-ws\-listen 0.0.0.0:8081 \-\-certfile cert.pem \-\-keyfile key.pem \\
    \-\-password\-file users \-\-acl\-file rooms.acl
chat\-pub \-b mqtts://broker.lan:8883 \-u alice \-\-password\-file ~/.alice\-pass lobby
.fi
.RE
.PP
Keep retained messages and sessions across restarts:
.PP
.RS 4
.nf
chat\-broker \-\-data\-dir ~/.local/share/chat\-broker
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
.BR mosquitto (8),
.BR mosquitto_passwd (1),
.BR mosquitto.conf (5)
"##;

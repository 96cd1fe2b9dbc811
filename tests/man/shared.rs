//! Roff shared by chat-pub(1) and chat-sub(1): what is true of both tools is written
//! once. A page's text refers to a piece with a line `@NAME@`, which [`expand`] replaces.

/// A DESCRIPTION paragraph: the protocol versions and the transports.
const PROTOCOL: &str = r##".PP
By default (\fB\-V auto\fR) MQTT 5 is offered, and a broker that speaks only MQTT 3.1.1 is
spoken to in 3.1.1; \fB\-b\fR may name several brokers, the nodes of a cluster (see
BROKERS). Connections are plain TCP (\fBmqtt://\fR), TLS (\fBmqtts://\fR), WebSocket
(\fBws://\fR) or WebSocket over TLS (\fBwss://\fR); see SECURITY.
"##;

/// The BROKERS section: several brokers, version negotiation, the brokers tested.
const BROKERS: &str = r##".SH BROKERS
.SS Several brokers
\fB\-b\fR may be given more than once, and one \fB\-b\fR or \fBCHAT_BROKER\fR may hold
several URLs separated by commas or spaces: the nodes of one cluster, or a broker and its
standby. Every URL is checked before anything is sent (a bad one is a usage error).
Schemes may be mixed; the TLS options apply to every \fBmqtts://\fR and \fBwss://\fR URL,
and are a usage error when no URL is encrypted.
.PP
The first broker of the list that accepts the connection is used, and with several
brokers standard error says which. A failed attempt moves on to the next URL at once;
after a round in which every broker failed, the tool pauses (100 ms, doubling, up to
2 s) before the next round. Each attempt takes at most \fB\-\-connect\-timeout\fR divided
by the number of brokers (but at least a second), so that a node that swallows packets
does not use up the time of the others. When a connection is lost, the next attempt goes
to the next broker of the list, round robin, and standard error names the broker
reconnected to. chat\-pub sends what was not acknowledged again there, in order; chat\-sub
subscribes again, or with \fB\-\-session\fR resumes its session on whichever node has it
(a clustered broker such as NATS keeps sessions on every node). A message that arrives
twice this way is printed once (see De\-duplication in chat\-sub(1)).
.SS Through a proxy
\fB\-\-proxy \fR\fIURL\fR (or \fBCHAT_PROXY\fR, or the \fBproxy\fR key of the config file)
reaches every broker of the list through a proxy, as mosquitto's \fB\-\-proxy\fR does:
a corporate proxy, \fBssh \-D\fR, or Tor. \fIURL\fR is
\fISCHEME\fB://\fR[\fIUSER\fB:\fIPASSWORD\fB@\fR]\fIHOST\fR[\fB:\fIPORT\fR]:
.TP
.B socks5://
SOCKS5 (RFC 1928); the broker's name is resolved here and the proxy is given its
address. Port 1080 by default.
.TP
.B socks5h://
SOCKS5; the proxy resolves the broker's name (what \fBssh \-D\fR and Tor want, so that
no name is looked up outside the tunnel). Port 1080 by default.
.TP
.B http://
An HTTP proxy's CONNECT tunnel (RFC 9110), with basic authentication when a user is
given. Port 8080 by default.
.PP
A user name and password in the URL are the SOCKS5 login (RFC 1929) or the basic
authentication; \fB%\fR\fIXX\fR escapes in them are decoded, for a \fB@\fR or \fB:\fR.
Every transport goes through the tunnel: \fBmqtts://\fR and \fBwss://\fR run TLS end to
end with the broker, and its certificate is checked against the broker's name, not the
proxy's. An empty \fIURL\fR means no proxy (to override a profile). The password is never
printed: messages show the URL without it. Given with \fB\-\-proxy\fR, a password can be
read by every user of the machine in the process list, and the tool says so: put it in
\fBCHAT_PROXY\fR or in the config file (see FILES).
.PP
When the proxy says no, the tool exits with the proxy's own reason: the SOCKS5 reply by
its name and number (for example \fBconnection refused (SOCKS5 reply 5)\fR) or the HTTP
status line. A broker the proxy cannot reach is tried again until
\fB\-\-connect\-timeout\fR, as a broker that is down is (exit status 3); a proxy whose
rules forbid the broker (SOCKS5 reply 2, HTTP 403), a proxy host that does not exist or
something that is not a proxy ends the run at once (exit status 3); a proxy that refuses
the credentials, or wants some and none were given, ends it at once with exit status 4.
.SS Protocol version
\fB\-V auto\fR (the default) offers MQTT 5. A broker that does not speak it answers with
an MQTT 3.1.1 CONNACK "unacceptable protocol version" (NATS, aedes), an MQTT 5 CONNACK
0x84, closes the connection before any CONNACK (RabbitMQ), or does not answer at all
(amqtt; after 2 seconds of silence). The tool then connects again at once with MQTT
3.1.1, and keeps 3.1.1 for the rest of the run, reconnects and other brokers included;
\fB\-v\fR says so. After a close or silence, 3.1.1 is only on trial: if that attempt
fails too, the broker was in trouble rather than old, and MQTT 5 is offered again; and
once a broker has accepted MQTT 5, only an explicit refusal of it leads to 3.1.1. That
costs one more connection to such a broker at start, and nothing with a broker that
speaks MQTT 5.
Output (\fB\-\-json\fR included) and exit statuses are the same under both versions;
what differs is what the broker can say: MQTT 3.1.1 has no reason codes for refused
messages, no Receive Maximum and no maximum packet size.
.PP
\fB\-V 5\fR and \fB\-V 3\fR are strict: a broker that refuses the version ends the run at
once with exit status 3 and a hint. For a strict \fB\-V 5\fR, two connections in a row
closed before any CONNACK count as such a refusal too, until MQTT 5 was accepted once in
the run: after that, a close before any CONNACK is a broker in trouble (one restarting
behind a proxy or load balancer that accepts connections and closes them), and is retried
like any lost connection, under every \fB\-V\fR.
.SS Tested brokers
chat\-pub and chat\-sub were tested, with \fB\-V auto\fR, against these brokers; what each
supports was measured with raw packets and mosquitto's clients:
.TP
mosquitto 2.0.11, chat\-broker
MQTT 5 and 3.1.1; QoS 0, 1 and 2; retained messages, also to wildcard subscriptions;
persistent sessions.
.TP
NATS 2.9.10 (MQTT gateway, 3\-node cluster)
MQTT 3.1.1 only (it answers MQTT 5 with "unacceptable protocol version"). A QoS 2
publish closes the connection (chat\-pub reports the line after three tries: use
\fB\-q 1\fR). Retained messages and sessions are kept across nodes, and a session
resumes on any node. Topics (and so client ids in presence topics, which are encoded)
must not contain \fB.\fR or spaces. After a node dies, the others take seconds to
elect new leaders, and publishing is slow meanwhile.
.TP
RabbitMQ 3.10.8 (rabbitmq_mqtt)
MQTT 3.1.1 only (it closes the connection on MQTT 5). QoS 2 is downgraded to 1.
Retained messages are kept per node and are not delivered to wildcard subscriptions,
and presence is read through one, so \fB\-\-who\fR sees nobody there and joins that
happened before chat\-sub started are not known.
.TP
aedes 1.2.0, amqtt 0.12.1
MQTT 3.1.1 only (aedes refuses MQTT 5; amqtt does not answer it, so \fB\-V auto\fR
waits 2 seconds). QoS 0 to 2; retained messages, also to wildcard subscriptions.
amqtt keeps no messages for an offline anonymous session.
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
where \fICLIENT\-ID\fR is chat\-pub's client id with every byte other than ASCII letters,
digits, \fB_\fR and \fB\-\fR written as \fB%\fR\fIXX\fR (\fBalice.laptop\fR becomes
\fBalice%2Elaptop\fR): any id is then one topic level that every broker accepts (NATS
refuses \fB.\fR and spaces in topics). \fITOPIC\fR may have several levels, so a reader
takes as the room everything between the first \fB/\fR and the last \fB/\fR of a presence
topic, and as the client id its last level, decoded: \fBmqttchat\-presence/a/b/c%2E1\fR
is client \fBc.1\fR in room \fBa/b\fR. Presence is keyed by client id: the same nick twice
is two presences. On connecting (and on every reconnect)
chat\-pub publishes a retained join there, \fB{"event":"join","from":\fR\fINICK\fR\fB,"ts":\fR\fITIME\fR\fB}\fR,
and registers its will: an empty retained message, or in an encrypted room a sealed leave
record, retained (see ENCRYPTION). Leaving (end of input, a signal) publishes the empty
retained message itself (in an encrypted room after a sealed leave record, not retained);
dying without a goodbye (kill \-9, a pulled cable) makes the broker publish the will, once
it misses about one and a half keep\-alive intervals (\fB\-k\fR, 30 s by default;
mosquitto 2.0 checks keep\-alives only every few seconds, so a short \fB\-k\fR can take up
to about 5 s longer there). Either way subscribers see a leave. A goodbye leaves no
retained state behind, and neither does the will outside an encrypted room; in one, the
sealed will stays retained on the presence topic (see Presence in ENCRYPTION).
.PP
A broker may refuse presence. When it refuses the connection in a way the will may have
caused (an MQTT 5 reason code about the will's topic, QoS, retain flag or payload, "not
authorized", or an MQTT 3.1.1 broker that says "not authorized" or closes the connection),
chat\-pub connects once more without the will, and if that is accepted, the will was
the cause. Once a connection with the will was accepted, a later close before any CONNACK
is taken for a broker in trouble, not a refusal of the will. The join is published at QoS 1, and lines are sent only once the broker
acknowledged it: a refusal (MQTT 5) or a connection closed before the acknowledgement
means the broker refuses the join. Either way chat\-pub says so once on standard error
and goes on without presence. Under MQTT 3.1.1 a broker may drop a refused join
silently (mosquitto does, for a topic its ACL denies).
.PP
A subscriber of \fITOPIC\fR, or of \fITOPIC\fB/#\fR, sees chat only. chat\-sub follows the
presence of every \fITOPIC\fR it subscribes to, by the filter
\fBmqttchat\-presence/\fR\fITOPIC\fR\fB/+\fR (\fBmqttchat\-presence/\fR\fITOPIC\fR when
\fITOPIC\fR ends in \fB#\fR), so wildcards work for presence too. It shows joins and
leaves that happen while it runs, as text lines \fIHH\fR:\fIMM\fR:\fISS\fR \fB* bob
joined\fR and \fB* bob left\fR, and as JSON objects
\fB{"event":"join"|"leave","from":\fR\fINICK\fR\fB,"topic":\fR\fITOPIC\fR\fB,"ts":\fR\fITIME\fR\fB}\fR
(not with \fB\-\-raw\fR or \fB\-\-format\fR, which print messages only). In an encrypted
room a text line has a mark after the nick when the record's key is not verified
(\fB* bob [new key 3f9a1c2b4d5e6f70...] joined\fR), and a JSON object has the keys
\fBverified\fR, \fBfingerprint\fR, \fBkey_changed\fR and \fBnew_key\fR of messages: see
IDENTITIES in chat\-sub(1). Presence that was
already retained when chat\-sub subscribed is not news and is not shown as a join; its
leave is shown later with the right nick. Presence lines do not count for \fB\-\-count\fR.
\fB\-\-no\-presence\fR does not follow presence at all. A broker that refuses the presence
subscription gets a warning on standard error, not a failure.
.PP
\fBchat\-sub \-\-who\fR \fITOPIC\fR prints who is online and exits: the retained presence
state, read until nothing new arrived for 0.5 seconds (MQTT has no end\-of\-retained
marker), one nick per line sorted by room and nick (\fB[\fR\fIroom\fR\fB] \fR in front when the
topic is shown; in an encrypted room followed by the fingerprint of the join's key, and a
mark when it is not verified: see IDENTITIES in chat\-sub(1)), or JSON objects with
\fB"event":"online"\fR.
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
nick (the nick is not authentication). Use it for public chat only, or encrypt the room
(see ENCRYPTION).
"##;

/// The ENCRYPTION section: what an encrypted room protects, what it does not, and the
/// format, precisely enough for another implementation.
const ENCRYPTION: &str = r##".SH ENCRYPTION
With \fB\-\-room\-secret\-file\fR \fIPATH\fR (or the secret itself in
\fBCHAT_ROOM_SECRET\fR), a room is encrypted end to end: its members share a secret, out
of band, and chat\-pub encrypts everything it publishes with a key derived from the secret
and the topic, and signs it with the member's own identity (see IDENTITIES in
chat\-sub(1)); chat\-sub checks the encryption and the signature, decrypts, and marks what
is not signed with the key it knows for the nick. The broker, and anybody else who
subscribes, sees only opaque lines. Make a secret with
.PP
.RS 4
.nf
openssl rand \-base64 32 > ~/.config/mqttchat/team.secret
chmod 600 ~/.config/mqttchat/team.secret
.fi
.RE
.PP
The secret is the file's first line without its line end (\fB\en\fR or \fB\er\en\fR), used
as it is (a base64 key is not decoded; no other trimming): 16 to 4096 bytes. A file that
cannot be read, a directory, or a secret too short or too long is a usage error (exit
status 2) before anything is sent; so is a \fBCHAT_ROOM_SECRET\fR that is set but empty (a
secret that failed to arrive must not turn into plain text), or that holds a line end
(\fB\en\fR or \fB\er\fR): the variable is the secret, all of it, and has no first line. A
file that group or others
may read gets a warning, as ssh gives for keys. The flag wins over the variable; prefer
the file: a variable is inherited by every program the shell starts, and readable in
/proc by the same user. The secret is never a plain flag (any user of the machine can
read a command line), never logged at any \fB\-v\fR level, and never in a message. With a
secret the tools write no core dump and cannot be traced by other processes of the user,
and they wipe the copies of the secret and of the keys they hold when done (not the
environment variable, nor copies the cryptography libraries leave on the stack).
.SS What is protected
Everything a member publishes on the room's topic: the whole envelope (text, nick, time and
id), \fB\-\-raw\fR and \fB\-\-json\fR lines, and the presence records (so nicks do not leak
through \fBmqttchat\-presence/\fR topics). Its authenticity: a payload that was not
encrypted with the room's secret for this very topic (plain text, another secret, a
ciphertext changed, cut short, or copied from another topic) is never printed as a message
of the room. And who said it: every record carries its member's public key and a
signature over it, inside the encryption, so that a member cannot speak as another
without chat\-sub saying so (see IDENTITIES in chat\-sub(1)).
.SS What is not protected
.IP \(bu 2
What MQTT must route: topic names, client ids (also in presence topics), sizes and timing.
A message's size is exact: a payload of format version 2 is
12 + \(lc4(\fIn\fR + 138 + 32\fId\fR)/3\(rc bytes for a record of \fIn\fR bytes signed with
a path of \fId\fR hashes (0 for a record signed alone, at most 5: see Format).
.IP \(bu 2
Members from each other, in part. Any member can read everything, and can still publish
under any nick, but not unmarked: chat\-sub pins the key it first sees for a nick in a
room, and marks every record of that nick signed with another key as \fBKEY CHANGED\fR.
That is trust on first use: a member who speaks first under a nick that a reader never
saw in that room gets the nick pinned to its own key there, and the real owner then shows
as \fBKEY CHANGED\fR. Compare fingerprints out of band (\fBchat\-pub \-\-fingerprint\fR)
and accept the right one with \fBchat\-sub \-\-trust\fR. Pins are per room, the room being
the exact topic, but a nick pinned in \fBteam/x\fR is expected with the same key in
\fBteam/y\fR (another key there is a changed key, and is not pinned). Records of format version 1 are not signed,
and show as \fB[unsigned]\fR, or as \fB[UNSIGNED \(em not verified]\fR under a nick that
has a pinned key. Nicks that look alike (another normalisation, homoglyphs) are
different nicks: only the first record of each is marked.
.IP \(bu 2
The past, once the secret leaks: there is no forward secrecy. Whoever recorded the room's
traffic and later learns the secret reads all of it. Change the secret (a new file for
every member) when a member leaves.
.IP \(bu 2
A weak passphrase: one captured message lets anybody try passphrases offline, at about
20 ms per guess per core. Use a random secret, as above.
.IP \(bu 2
Replays, and the broker's own choices: anybody can publish a captured message again,
retained even, and a broker may drop, delay or reorder messages. chat\-sub prints a
message once per run (same envelope id, or same nonce: see De\-duplication in
chat\-sub(1); an encrypted message takes two of the 10,000 places, so the window is
about 5,000 messages); a later run prints a replayed message again, with its original
time (\fBts\fR in \fB\-\-json\fR) and its original signature.
.IP \(bu 2
Presence, fully. Joins and leaves are signed and encrypted records with a time (see
Format), and chat\-sub takes one only when it is news. But anybody can delete a member's
retained join (an empty retained message), or publish a captured join again, retained,
which later subscribers take until the member's next goodbye; and every member can write
any client's presence topic, signed with its own key (and marked as any record is).
Presence is a hint, not a proof. A member who dies leaves its sealed will retained on its
presence topic, where a later run with the same client id (\fB\-i\fR) replaces it.
.IP \(bu 2
Rooms not met yet, under a wildcard: a stranger who floods a wildcard subscription with
well\-formed junk on new topics makes chat\-sub throttle new keys (see chat\-sub(1)), so a
message on a room it has not opened a message of yet may not be shown, and the new
rooms it does open are printed later. Rooms named without wildcards, and rooms whose key
opened a message, are not affected: they are printed at once.
.IP \(bu 2
Relays. One that reads the room with the secret and publishes without it publishes the
room in clear: that is what it was told to do. One that reads and publishes with the
secret (\fBchat\-sub \-\-json | chat\-pub \-\-json\fR) signs every message again, with its
own key: readers see the relay's key under every nick (\fBKEY CHANGED\fR, or a new key).
To keep the members' signatures, relay the ciphertext: \fBchat\-sub\fR without the secret
prints \fB"encrypted":true\fR objects, which \fBchat\-pub \-\-json\fR publishes unchanged
(on the same topic: the topic is part of the additional data and of what is signed).
.SS Format
An implementation that follows this can chat in the same rooms. chat\-pub writes format
version 2; chat\-sub reads versions 1 and 2. Both versions use the same key and the same
payload layout; they differ in their prefix and their plaintext.
.TP
.B Key
\fIK\fR = Argon2id (RFC 9106: version 0x13, memory 19456 KiB, 2 passes, 1 lane, 32\-byte
output) of password = the secret's bytes and salt = the ASCII bytes
\fBmqttchat room key v1\fR, a zero byte, then the room's topic in UTF\-8, exactly as
published (no normalisation; for a presence record, the room it announces); Argon2's
optional secret value and associated data are empty. Each room has its own key; a tool
derives it once per topic and run (about 20 ms and 19 MiB of memory, given back
to the system afterwards).
.TP
.B Payload
The ASCII bytes \fBmqttchat:e1:\fR (version 1) or \fBmqttchat:e2:\fR (version 2),
followed by base64 (RFC 4648 standard alphabet, no padding, no line breaks; trailing bits
zero) of \fIN\fR || \fIC\fR || \fIT\fR: \fIN\fR is a fresh 24\-byte nonce from the
operating system's random source for every payload, \fIC\fR the ciphertext (as long as
the plaintext) and \fIT\fR its 16\-byte Poly1305 tag, which follows it:
\fIC\fR || \fIT\fR = XChaCha20\-Poly1305(\fIK\fR, \fIN\fR, plaintext, \fIAD\fR), the AEAD
of draft\-irtf\-cfrg\-xchacha (in libsodium,
crypto_aead_\:xchacha20poly1305_\:ietf).
\fIAD\fR = the same prefix (\fBmqttchat:e1:\fR or \fBmqttchat:e2:\fR) followed by the
topic the payload is published on, in UTF\-8: a ciphertext copied to another topic, or
relabelled with another version, does not open.
.TP
.B Plaintext, version 1
The record itself, unsigned: what a member would publish without a secret (the JSON
envelope, a raw line) or a presence record (below).
.TP
.B Plaintext, version 2
A signature block, then the record:
.RS
.PP
.nf
depth (1 byte, 0 to 8) || path (1 byte)
  || public key (32 bytes) || signature (64 bytes)
  || depth sibling hashes (32 bytes each, leaf level first)
  || record
.fi
.RE
.IP
\fIleaf\fR = SHA\-256(0x00 || \fBmqttchat:e2:\fR || u32(\fIroom\fR) || \fIroom\fR ||
u32(\fItopic\fR) || \fItopic\fR || \fIrecord\fR), where u32(\fIx\fR) is the length of
\fIx\fR in bytes as 4 bytes big\-endian, \fIroom\fR the room's topic in UTF\-8 (for a
presence record, the room it announces) and \fItopic\fR the topic the payload is
published on (the room, or the presence topic). The record holds the nick, time, id and
text, so all of them are signed, with the format version and the topics.
.IP
Going up from \fIh\fR = \fIleaf\fR, for each sibling hash \fIs\fR in turn (\fIi\fR = 0 to
\fIdepth\fR \- 1): when bit \fIi\fR of \fIpath\fR is set (bit 0 is the least significant),
the sibling is on the left and \fIh\fR = SHA\-256(0x01 || \fIs\fR || \fIh\fR); else
\fIh\fR = SHA\-256(0x01 || \fIh\fR || \fIs\fR). The root is the last \fIh\fR: with depth
0, the leaf. The bits of \fIpath\fR above \fIdepth\fR are zero.
.IP
\fIsignature\fR = Ed25519 (RFC 8032, pure Ed25519) with the member's identity over the
49 bytes \fBmqttchat:e2:root\fR, a zero byte, then the root; \fIpublic key\fR is the
identity's 32\-byte public key. A reader checks the signature strictly, as
ed25519\-dalek's \fBverify_strict\fR does: \fIS\fR < \fIL\fR, \fIR\fR and the public key
not of small order, the cofactorless equation, and \fIR\fR compared as encoded bytes; the
public key's 32 bytes are hashed as they are sent.
A payload that opens but whose block is malformed (shorter than its depth says, a depth
above 8, path bits set above the depth) or whose signature does not check is not a
record of the room (kind \fBbad\-signature\fR in chat\-sub(1)).
.IP
chat\-pub signs the records it seals at once (the lines it read together, up to 32) as
one batch: their leaves, in order, are paired from the left level by level (a last
node without a pair goes up as it is) up to one root, signed once; each record carries
its own path, so that it is checked alone. A record signed alone, such as every presence
record, has depth 0. Readers take depths up to 8 (a batch of 256).
.TP
.B Fingerprint
A member's fingerprint is the lowercase hex of SHA\-256 of its 32\-byte public key: 64
digits, what \fB\-\-fingerprint\fR prints and members compare out of band.
.TP
.B Presence
A join record \fB{"event":"join","from":\fINICK\fB,"ts":\fITIME\fB}\fR on
\fBmqttchat\-presence/\fIROOM\fB/\fICLIENT\fR is sealed with the key of \fIROOM\fR, and
in version 2 signed with \fIroom\fR = \fIROOM\fR; its \fIAD\fR (and in version 2 its
\fItopic\fR) is the whole presence topic, so it cannot pass for another client's or
another room's. \fIROOM\fR is everything between the first \fB/\fR and the last \fB/\fR
of the presence topic, and \fICLIENT\fR, the last level, the client id, percent\-encoded
(see PRESENCE): \fBmqttchat\-presence/a/b/c%2E1\fR announces client \fBc.1\fR in room
\fBa/b\fR. The join is published retained at QoS 1 when a connection is made. The will is
the leave record \fB{"event":"leave","from":\fINICK\fB,"ts":\fITIME\fB}\fR with the
join's \fITIME\fR, sealed the same way (retained, QoS 1). Each connection gets a new join
and will, with a \fITIME\fR later than the last one's. The clean goodbye is a leave
record with a later time still, not retained, followed by the empty retained message that
clears the join. \fITIME\fR is RFC 3339 (chat\-pub writes UTC with milliseconds). A reader
ignores empty payloads, records without a valid \fITIME\fR or more than 5 minutes ahead
of its clock, records whose \fBfrom\fR is not a string, and events other than join and
leave (a record without \fBevent\fR is a join); it takes a record only when
(\fITIME\fR, leave) is later than that of the last record it took for the presence topic
from the same signer (unsigned records count as one signer), \fITIME\fR compared to the
millisecond and a leave winning over a join of the same time. A record signed by another
key than the join it would replace or end (or unsigned, after a signed join) changes
nothing and is shown as a changed key (or \fB[UNSIGNED \(em not verified]\fR) under the
join's nick; a leave is shown under the nick of the join it ends, with that join's mark,
and a leave on a presence topic with no join seen is not shown.
.TP
.B Versions
A payload that starts with \fBmqttchat:e\fR but with neither \fBmqttchat:e1:\fR nor
\fBmqttchat:e2:\fR is an encrypted payload of another version, which this one does not
open (kind \fBunknown\-version\fR; without the secret it shows as text: only well\-formed
payloads of versions 1 and 2 show as encrypted). Records of members whose chat\-pub still
writes version 1 open, marked \fB[unsigned]\fR (\fB[UNSIGNED \(em not verified]\fR under
a nick that signs elsewhere); a reader that knows only version 1 does
not open version 2. A later version (key rotation) gets its own prefix.
"##;

/// The EXIT STATUS entry of status 3.
const EXIT_UNREACHABLE: &str = r##".TP
.B 3
The broker (with several, none of them) could not be reached within
\fB\-\-connect\-timeout\fR, it does not accept the MQTT version that \fB\-V\fR insists on
(at once; the message says what to try), its host name does not exist (at once; with
several, none of them; see DIAGNOSTICS), a certificate did not verify (at once, see
SECURITY), or the proxy refused the connection (see Through a proxy in BROKERS).
"##;

/// The ENVIRONMENT entries of CHAT_BROKER and the credentials.
const ENV_BROKER: &str = r##".TP
.B CHAT_BROKER
The broker URL when \fB\-b\fR is not given, or several, separated by commas or spaces
(see BROKERS).
.TP
.B CHAT_PROXY
The proxy URL when \fB\-\-proxy\fR is not given (see Through a proxy in BROKERS); the
place for one with a password.
.TP
.B CHAT_USERNAME
The user name when \fB\-u\fR is not given.
.TP
.B CHAT_PASSWORD
The password when \fB\-\-password\-file\fR is not given (see SECURITY).
.TP
.B CHAT_ROOM_SECRET
The room secret itself when \fB\-\-room\-secret\-file\fR is not given (see
ENCRYPTION): the secret, all of it. Set but empty, or holding a line end (\fB\en\fR or
\fB\er\fR), it is a usage error.
"##;

/// The FILES section: the config file and its profiles.
const FILES: &str = r##".SH FILES
.TP
.I $XDG_CONFIG_HOME/mqttchat/config.toml
The config file (\fI~/.config/mqttchat/config.toml\fR when \fBXDG_CONFIG_HOME\fR is
not set), in TOML. It is optional: without it nothing changes. \fB\-\-config \fR\fIFILE\fR
reads another file instead, \fB\-\-no\-config\fR none.
.PP
Keys at the top of the file apply to every run. A \fB[profile.\fR\fINAME\fR\fB]\fR table
applies over them with \fB\-\-profile \fR\fINAME\fR or \fBCHAT_PROFILE=\fR\fINAME\fR. A
flag wins over the environment, the environment over the profile, the profile over the
top level, and the top level over the built\-in default.
.PP
The keys, with the flag each stands for:
.RS 4
.TP
\fBbroker\fR (\fB\-b\fR)
One URL, or a list of them, the nodes of a cluster tried in turn as with \fB\-b\fR given
several times: \fBbroker = ["mqtt://n1:1883", "mqtt://n2:1883"]\fR.
.TP
\fBversion\fR (\fB\-V\fR), \fBqos\fR (\fB\-q\fR), \fBconnect_timeout\fR (seconds), \fBkeep_alive\fR (seconds)
As the flags take them: \fBversion = "5"\fR or \fBversion = 5\fR.
.TP
\fBnick\fR, \fBdialect\fR
Your nick, and the \fB\-\-dialect\fR.
.TP
\fBusername\fR (\fB\-u\fR), \fBpassword_file\fR, \fBpassword\fR
The login. \fBpassword\fR holds the password itself; a file that holds one and that the
group or others can read gets a warning, as ssh gives for a private key: \fBchmod 600\fR
it. \fBpassword_file\fR is the better choice.
.TP
\fBcafile\fR, \fBcert\fR, \fBkey\fR, \fBinsecure\fR
TLS, as \fB\-\-cafile\fR, \fB\-\-cert\fR, \fB\-\-key\fR and \fB\-\-insecure\fR.
.TP
\fBproxy\fR (\fB\-\-proxy\fR)
The proxy URL, with its login if it wants one (the file then holds a password, as
above); \fBproxy = ""\fR in a profile turns off a proxy of the top level.
.TP
\fBroom_secret_file\fR
The file of the room secret (see ENCRYPTION).
.RE
.PP
A path may start with \fI~/\fR, the home directory; a relative path is relative to the
directory of the config file. A file with a syntax error, a key that is not one of these,
a value a flag would not take, or a \fB\-\-profile\fR that the file does not have, is a
usage error (exit status 2): the message names the file, the line and the key, or lists
the profiles there are. Every profile is checked, not only the one in use.
\fB\-v\fR says which file and profile a run used; \fB\-\-show\-config\fR prints the
effective settings and where each came from, and never a secret.
.PP
A file with three profiles: a broker on the home LAN, a work cluster with TLS and a
password, and a public broker with a room secret.
.PP
.RS 4
.nf
nick = "alice"

[profile.home]
broker = "mqtt://192.168.1.10:1883"

[profile.work]
broker = ["mqtts://mq1.corp.example:8883", "mqtts://mq2.corp.example:8883"]
cafile = "corp\-ca.pem"
username = "alice"
password_file = "~/.config/mqttchat/work.pass"
qos = 1

[profile.public]
broker = "mqtts://broker.hivemq.com:8883"
room_secret_file = "~/.config/mqttchat/friends.secret"
.fi
.RE
.PP
Then \fBchat\-sub \-\-profile work ops\fR, or \fBexport CHAT_PROFILE=work\fR once.
.TP
.I $XDG_DATA_HOME/mqttchat/identity
Your identity in encrypted rooms (\fI~/.local/share/mqttchat/identity\fR when
\fBXDG_DATA_HOME\fR is not set): an Ed25519 private key in PEM (PKCS#8), as
\fBopenssl genpkey \-algorithm ed25519\fR writes it. chat\-pub makes it, mode 600 in a
folder of mode 700, the first time it runs with a room secret, and so does
\fB\-\-fingerprint\fR; \fB\-\-identity\-file\fR names another.
Keep it private: whoever has it signs as you. See IDENTITIES in chat\-sub(1).
.TP
.I $XDG_DATA_HOME/mqttchat/known_members
The keys chat\-sub pinned, one pin per line:
\fIROOM\fR \fINICK\fR \fIFINGERPRINT\fR, separated by single spaces, where \fB%\fR,
space and the control characters (U+0000 to U+001F, DEL) of \fIROOM\fR and \fINICK\fR
are written \fB%\fR\fIXX\fR (\fBteam/x bob%20b 3f9a...\fR: 64 hex digits). Blank lines
and lines that start with \fB#\fR are ignored, and a later line for the same room and
nick wins. chat\-sub reads the file when it starts with a room secret, appends the keys it pins (the file
made mode 600, its folder 700), and \fBchat\-sub \-\-trust\fR appends the key it accepts;
a line that is not a pin gets a warning with its line number and is skipped, and a file
that cannot be read is a usage error (exit status 2). Delete a line to forget a key.
Without \fBHOME\fR and \fBXDG_DATA_HOME\fR, pins last for the run only. See IDENTITIES in
chat\-sub(1).
"##;

/// The ENVIRONMENT entries of the config file.
const ENV_PROFILE: &str = r##".TP
.B CHAT_PROFILE
The profile of the config file when \fB\-\-profile\fR is not given (see FILES).
.TP
.B XDG_CONFIG_HOME
The directory of \fImqttchat/config.toml\fR; \fI~/.config\fR when not set or empty.
.TP
.B XDG_DATA_HOME
The directory of \fImqttchat/identity\fR and \fImqttchat/known_members\fR (see FILES);
\fI~/.local/share\fR when not set or empty.
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
const PIECES: [(&str, &str); 16] = [
    ("FILES", FILES),
    ("ENV_PROFILE", ENV_PROFILE),
    ("DIALECT", super::original::DIALECT),
    ("DIAGNOSTICS", super::original::DIAGNOSTICS),
    ("ENCRYPTION", ENCRYPTION),
    ("BROKERS", BROKERS),
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

//! The hand-written parts of chat-sub(1), in roff. Every statement here describes what
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
\fBchat\-sub\fR subscribes to every \fITOPIC\fR at the QoS of \fB\-q\fR (default 1) and
prints one line per message on standard output, until \fB\-\-count\fR messages were
printed, \fB\-\-timeout\fR ends, standard output is closed, or it is interrupted. Each
\fITOPIC\fR is checked before connecting: an empty one, one that contains NUL, or one
where \fB+\fR is not a whole level or \fB#\fR not the whole last level is a usage error.
@PROTOCOL@
Diagnostics and logs go to standard error, as \fBchat\-sub:\fR followed by the message;
standard output carries messages only.
"##;

/// The sections after OPTIONS.
pub const SECTIONS: &str = r##".SH OUTPUT
By default each message is one line of text:
.PP
.RS 4
.nf
\fIHH\fR:\fIMM\fR:\fISS\fR \fIfrom\fR: \fItext\fR
.fi
.RE
.PP
A raw message (a payload that is not an envelope, such as one sent by
\fBmosquitto_pub\fR) has no sender and is shown as \fIHH\fR:\fIMM\fR:\fISS\fR
\fItext\fR. When any \fITOPIC\fR has a wildcard or several are given, each line starts
with the message's topic in brackets: \fB[\fR\fItopic\fR\fB]\fR followed by a space. The
time is the local time (see \fBTZ\fR) of the envelope's \fBts\fR, or of when the message
was received when it has no valid \fBts\fR. A payload that is not valid UTF\-8 is shown
with U+FFFD replacement characters. In an encrypted room a mark follows the nick (or
comes before the text of a raw message) when the message is not signed with the key
chat\-sub knows for the nick: \fIHH\fR:\fIMM\fR:\fISS\fR \fIfrom\fR \fB[new key\fR
\fI...\fR\fB]:\fR \fItext\fR (see IDENTITIES).
.PP
Text output is safe on a terminal. These characters of topic, nick and text are shown
escaped, so that one message is exactly one line and no message can move the cursor,
change the terminal's title, or reorder or hide text:
.IP \(bu 2
newline and carriage return, as \fB\en\fR and \fB\er\fR;
.IP \(bu 2
the other C0 controls (U+0000 to U+001F) except tab, and DEL (U+007F), as
\fB\ex\fR\fIHH\fR, for example \fB\ex1b\fR for ESC;
.IP \(bu 2
the C1 controls (U+0080 to U+009F), the bidi controls U+061C, U+200E, U+200F,
U+202A to U+202E and U+2066 to U+2069, and the separators U+2028 and U+2029, as
\fB\eu{\fR\fIhex\fR\fB}\fR, for example \fB\eu{202e}\fR.
.PP
Tab is printed as it is. Backslashes are \fInot\fR doubled, so text output is ambiguous:
a message that contains a backslash followed by \fBn\fR looks like one that contains a
newline. When the difference matters, use \fB\-\-json\fR.
.PP
\fB\-\-raw\fR prints each payload's bytes exactly as they are, followed by a newline: no
decoding and no escaping, so a payload may span several lines and act on a terminal.
.SH JSON FORMAT
With \fB\-\-json\fR each message is one JSON object on one line (wrapped here), with
these keys in this order:
.PP
.RS 4
.nf
{"topic":"lobby","from":"alice","text":"hello","ts":"2026\-11\-26T12:01:02.123Z",
 "id":"6f1c0e4b9a2d4f7e8c3b1a0d9e8f7a6b","qos":1,"retain":false,
 "received":"2026\-11\-26T12:01:02.125Z"}
.fi
.RE
.TP
.B topic
The topic the message was published to.
.TP
.BR from ", " ts ", " id
The envelope's sender, time (as sent) and id; \fBnull\fR for a raw message, and for an
envelope key that is not a string.
.TP
.B text
The message. For a payload that is not valid UTF\-8, with U+FFFD replacement characters.
.TP
.B qos
The QoS the message was delivered at (at most \fB\-q\fR).
.TP
.B retain
\fBtrue\fR when the broker delivered the message because it was retained.
.TP
.B received
When chat\-sub received it: RFC 3339, UTC, with milliseconds.
.TP
.B payload_base64
Present only when the payload is not valid UTF\-8, or is encrypted: its exact bytes in
base64, so nothing is lost.
.TP
.B properties
Present only when the message has MQTT 5 properties (only an MQTT 5 connection carries
them), after \fBreceived\fR:
.RS 4
.nf
"properties":{"user":[["app","ci"],["tag","a"],["tag","b"]],
 "content_type":"text/plain","message_expiry":60,
 "response_topic":"replies/alice","correlation_data":"req\-7"}
.fi
.RE
.IP
each member only when the message has it: \fBuser\fR, the user properties as
[key, value] pairs in the order sent, repeats kept; \fBcontent_type\fR;
\fBmessage_expiry\fR, the seconds left as the broker forwarded it; \fBresponse_topic\fR;
\fBcorrelation_data\fR, or \fBcorrelation_data_base64\fR (its exact bytes in base64)
when the data is not UTF\-8. \fBchat\-pub \-\-json\fR sends them on.
.TP
.B encrypted
Present (\fBtrue\fR) only for an encrypted message chat\-sub has no secret for; its
\fBtext\fR is \fBnull\fR (see ENCRYPTION).
.TP
.BR verified ", " fingerprint ", " key_changed ", " new_key
Present only in an encrypted room (with its secret), after the keys above and before
\fBpayload_base64\fR: \fBverified\fR, \fBtrue\fR when the message is signed with the key
pinned for its nick, else \fBfalse\fR; \fBfingerprint\fR, the signer's fingerprint (64 hex
digits; absent for an unsigned message of format version 1); \fBkey_changed\fR
(\fBtrue\fR) when the key is not the one pinned for the nick, and \fBnew_key\fR
(\fBtrue\fR) when it was pinned by this message (see IDENTITIES). Joins, leaves and
\fB\-\-who\fR objects have them too.
.PP
Text output never shows properties. Every line is valid JSON. Strings escape the control characters as JSON requires
(\fB\en\fR, \fB\er\fR, \fB\et\fR, the others as \fB\eu\fR\fIXXXX\fR), and also DEL,
the C1 controls, the bidi controls and U+2028/U+2029 as \fB\eu\fR\fIXXXX\fR: the same
JSON value, but safe to print on a terminal. Each line is valid input for
\fBchat\-pub \-\-json\fR, which makes a relay (see \fBEXAMPLES\fR).
.SH FORMAT TEMPLATES
\fB\-F\fR \fITEMPLATE\fR prints each message as \fITEMPLATE\fR followed by a newline,
with these placeholders replaced:
.TP 12
.B {topic}
the topic
.TP
.B {from}
the sender's nick (empty for a raw message)
.TP
.B {text}
the message
.TP
.B {time}
the local \fIHH\fR:\fIMM\fR:\fISS\fR of the text output
.TP
.B {ts}
the envelope's \fBts\fR as sent (empty for a raw message)
.TP
.B {received}
when chat\-sub received the message: RFC 3339, UTC, with milliseconds
.TP
.B {id}
the envelope's id (empty for a raw message)
.TP
.B {qos}
0, 1 or 2
.TP
.B {retain}
\fBtrue\fR or \fBfalse\fR
.TP
.B {fingerprint}
in an encrypted room, the signer's fingerprint, 64 hex digits (empty for an unsigned
message, and outside an encrypted room)
.TP
.B {verified}
in an encrypted room, \fBtrue\fR when the message is signed with the key pinned for its
nick, else \fBfalse\fR (empty outside an encrypted room; see IDENTITIES)
.TP
.B {content_type}
the MQTT 5 content type (empty when there is none)
.TP
.BI {user: KEY }
the MQTT 5 user property \fIKEY\fR (empty when there is none); when the key is repeated,
its values in order, joined by \fB, \fR
.PP
\fB{{\fR and \fB}}\fR are literal braces; \fB\et\fR, \fB\en\fR and \fB\e\e\fR are a tab,
a newline and a backslash; any other backslash is printed as it is. An unknown
placeholder or a lone \fB}\fR is a usage error. The values of \fB{topic}\fR,
\fB{from}\fR, \fB{text}\fR, \fB{ts}\fR, \fB{id}\fR and of the properties are escaped as
in text output.
.SH BUFFERING
Standard output is written in blocks, not line by line: chat\-sub writes once per batch
of messages that arrived together. A single message reaches a pipe at once, so
\fBchat\-sub t | grep x\fR shows each message promptly, while a burst of messages is
written in large blocks. QoS 1 and 2 messages are acknowledged to the broker only after
they were written, except in an encrypted room those of a topic whose key is being
derived (see ENCRYPTION): they are acknowledged when they arrive, so that they do not fill
the broker's window of unacknowledged messages (20 with mosquitto) and hold up the other
topics, and written when the key is ready.
.PP
While messages stream in fast (more than 8 KiB within a millisecond), chat\-sub asks
the kernel (Linux, plain \fBmqtt://\fR connections) to wake it only when several
kilobytes are waiting (\fBSO_RCVLOWAT\fR), not for every message: each wake\-up costs
the broker time, and on a small machine the broker is what limits the whole pipe. The
last messages of a burst then wait at most about two milliseconds. Messages that arrive
one by one, as people type or a log grows, are read and printed at once.
.PP
When the reader of standard output goes away (\fBchat\-sub t | head \-n 1\fR), chat\-sub
ends quietly with status 0, at once, even if no further message arrives.
.SH RECONNECTION AND SESSIONS
When the connection is lost, chat\-sub says so on standard error, reconnects (to the
next broker of the list, see BROKERS) and subscribes again. It keeps trying for as long as it runs, like \fBtail \-F\fR, pausing
between attempts from 100 ms, doubling, up to 2 s; connections that the broker keeps
closing right away are retried with the same growing pauses.
.PP
Without \fB\-\-session\fR the session is not kept: messages published while chat\-sub
was disconnected are not delivered to it (they are missed, not hidden: the gap is
between the "connection lost" and "reconnected" lines on standard error). With
\fB\-\-session\fR \fINAME\fR the client id is \fINAME\fR, the session is persistent
(clean session off; under MQTT 5 a session expiry of 7 days), and the broker keeps the
subscription and the QoS 1 and 2 messages published while chat\-sub is away, for this
run's reconnects and for a later run with the same \fINAME\fR. Subscribe with
\fB\-q 1\fR (the default) or 2: brokers do not keep QoS 0 messages.
.PP
When another client connects with the same \fINAME\fR, it takes the session over, and
chat\-sub says so and exits with status 1 rather than take it back (which would knock
the other off in turn, for ever). An MQTT 5 broker may say so (DISCONNECT with reason
0x8E). mosquitto 2.0 and chat\-broker do not: they just close the old connection. So
chat\-sub also takes it as a takeover when the broker closes its resumed session three
times in a row, each time within 10 seconds and before any message arrived (a lost link
breaks with an error or a timeout instead). The two clients may trade the session a
couple of times, within about a second, before the first one gives up.
.SS De\-duplication
Delivery at QoS 1 and 2 is at least once: a publisher sends again what was not
acknowledged before a reconnect, and a broker sends a session's unacknowledged messages
again. chat\-sub prints such a message once: it remembers the envelope ids of the last
10,000 messages it printed, and for retained messages without an id their topic and
payload, so a retained message is printed once per run, not again after each
resubscription. Raw messages (no envelope, not retained) have no id and are always
printed, except encrypted ones: with the secret they are also known by their nonce
(each message has its own), without it by their topic and bytes, so a replayed raw
message is printed once too.
The memory is bounded by that window: a repeat that arrives after 10,000 newer
messages is printed again. The ids are hashed with a key chosen at random per run, so a
publisher cannot make other senders' messages look like repeats.
.PP
Under MQTT 5 chat\-sub tells the broker its \fB\-\-max\-size\fR, and the broker does not
send it bigger messages. MQTT 3.1.1 has no way to say so: chat\-sub skips a bigger
message itself, acknowledges it so that it is not sent again, and says so on standard
error.
@BROKERS@
@PRESENCE@
@SECURITY@
@ENCRYPTION@
.SS In chat\-sub
With the secret, chat\-sub decrypts each message of its topics and prints it as it would
print it unencrypted: text, \fB\-\-json\fR, \fB\-\-format\fR, \fB\-\-raw\fR (the decrypted
bytes), joins, leaves and \fB\-\-who\fR, with the marks of IDENTITIES for what is not
signed with the key it knows for the nick. The keys of the topics named without wildcards are
derived before connecting and kept; under a wildcard, the key of each topic is derived the
first time a message arrives on it (256 are kept; those that opened a message go last).
A key is derived apart from the rest of chat\-sub's work, on a thread of its own: the
messages of a topic whose key is being derived wait for it and are printed when it is
ready, in the order they arrived, while the topics whose key is at hand (named ones, and
those met before) are printed at once. So the order is kept within each topic, not
across topics. Messages that wait are acknowledged to the broker when they arrive, not
once written (see BUFFERING). Each new key costs about 20 ms, so at most 64 are derived
at once and then 8 a second: a stranger who floods a wildcard with well\-formed junk on
new topics cannot stall chat\-sub, but a message on a new topic beyond that pace is not
shown (kind \fBthrottled\fR); so are those of a wildcard meeting more than 64 rooms at
once, and those that find no room to wait (1024 messages or 16 MiB per topic, 8192 or
64 MiB in all). \fB\-\-who\fR waits for the presence records whose key is being
derived. A payload that does not open is not printed: the first of each kind is
reported on standard error,
.PP
.RS 4
.nf
chat\-sub: not shown: a message on \*(Aqteam/x\*(Aq is not encrypted; more like it are
only counted
.fi
.RE
.PP
and when chat\-sub exits it says how many there were of each kind (\fBplain\fR,
\fBforged\fR: another secret, another topic, or changed; \fBmalformed\fR;
\fBunknown\-version\fR; \fBthrottled\fR; \fBbad\-signature\fR: opened, but not signed
right, see IDENTITIES). With \fB\-\-json\fR each such message (not a presence record) is
also a line without text (\fBchat\-pub \-\-json\fR skips it), such as
.PP
.RS 4
.nf
{"event":"rejected","topic":"team/x","reason":"forged","qos":1,
 "retain":false,"received":"2026\-11\-26T12:01:02.125Z"}
.fi
.RE
.PP
(one line). They do not count for \fB\-\-count\fR and do not change the exit status: a
stranger cannot make a member's chat\-sub fail.
.PP
Without the secret, an encrypted message is shown as \fIHH\fR:\fIMM\fR:\fISS\fR
\fB[encrypted]\fR (and \fB{text}\fR is \fB[encrypted]\fR), never as its ciphertext; in
\fB\-\-json\fR its \fBtext\fR is \fBnull\fR, \fBencrypted\fR is \fBtrue\fR and
\fBpayload_base64\fR holds the payload exactly, so that a relay without the secret passes
it on unchanged. Encrypted joins and their leaves are not shown.
.SH IDENTITIES
In an encrypted room every member has an identity, an Ed25519 key pair, and chat\-pub
signs everything it publishes there with it (format version 2, see Format in
ENCRYPTION). The secret shows that a record comes from a member of the room; the
signature shows which member, as far as the reader knows the member's key.
.SS Your identity
chat\-pub's first run with a room secret makes your identity,
\fI$XDG_DATA_HOME/mqttchat/identity\fR (\fI~/.local/share/mqttchat/identity\fR when
\fBXDG_DATA_HOME\fR is not set or empty): an Ed25519 private key in PEM (PKCS#8), as
\fBopenssl genpkey \-algorithm ed25519\fR writes it, mode 600 in a folder of mode 700.
It says so on standard error, \fBmade your identity\fR \fIPATH\fR
\fB(fingerprint\fR \fIFINGERPRINT\fB); members check it with \-\-fingerprint\fR. Two runs that make it at once agree on one. \fB\-\-identity\-file\fR \fIPATH\fR
signs as the identity in \fIPATH\fR instead, which must exist
(\fBopenssl genpkey \-algorithm ed25519 \-out\fR \fIPATH\fR makes one); the file must hold
the key as OpenSSL writes it (a PKCS#8 file that also holds the public key is refused). A
file that cannot be read or is not such a key is a usage error (exit status 2), the
default one too; a file that group or others can read gets a warning. Whoever has the
file signs as you: keep it private, and copy it to sign as the same member on another
machine. A new identity is a new key: it shows as \fBKEY CHANGED\fR to every member who
pinned the old one, until they accept it.
.PP
\fB\-\-fingerprint\fR (chat\-pub or chat\-sub) prints the fingerprint of your identity
(of \fB\-\-identity\-file\fR's, or of the default one, made if there is none yet) and
exits: 64 lowercase hex digits, the SHA\-256 of the 32\-byte public key. chat\-sub needs
no identity to read a room; its \fB\-\-identity\-file\fR serves \fB\-\-fingerprint\fR and
\fB\-\-hide\-own\fR (see below).
.SS Pinned keys
chat\-sub remembers the key each nick was first seen with in each room, as ssh remembers
a host's key, in \fI$XDG_DATA_HOME/mqttchat/known_members\fR (see FILES), and judges each
record it opens against it. The room is the exact topic (for a presence record, the room
it announces): \fBalice\fR in \fBteam/x\fR and \fBalice\fR in \fBteam/y\fR are two pins,
and a wildcard subscription pins per topic. A nick pinned in some room keeps its key in
the rooms it has not spoken in yet: first seen in \fBteam/y\fR with the key it has in
\fBteam/x\fR, it is verified (and pinned there too); with another key, it is a changed
key (and not pinned). Only records that are shown pin a key: retained presence learnt
silently when chat\-sub subscribes pins nothing. A run appends a first\-seen pin only if
the file has none for that room and nick by then (another run's, or one accepted with
\fB\-\-trust\fR while it ran). Characters that show as nothing (Unicode's default ignorable
code points: zero\-width spaces and joiners, variation selectors, fillers, tags, the
soft hyphen) are written as \fB\eu{...}\fR in nicks, so that \fBalice\fR and an invisible variant look different.
Text output marks, after the nick, what is not verified:
.TP
(no mark)
Signed with the key pinned for the nick in the room: verified.
.TP
.B [new key 3f9a1c2b4d5e6f70...]
The first record seen from the nick in the room: its key is pinned now, and marked this
once, with the first 16 hex digits of its fingerprint.
.TP
.B [KEY CHANGED 0b7e5d13c2a49f86... \(em not verified]
Signed with a key other than the one pinned for the nick: on every such record (in bold
red when nicks are coloured), until you accept the key with \fB\-\-trust\fR. The pin
stays, so records signed with the pinned key are still verified.
.TP
.B [unsigned]
A record of format version 1, which carries no signature: on every one.
.TP
.B [UNSIGNED \(em not verified]
A record of format version 1 under a nick that has a pinned key (in any room): a member
who signs does not send unsigned records, so this is as loud as a changed key.
.TP
.B [key 3f9a1c2b4d5e6f70...]
A signed raw message, which has no nick to pin the key to: in front of its text, whose
signer it names, unverified.
.PP
In the marks the fingerprint is cut after 16 hex digits by an ellipsis, U+2026 (written
\fB...\fR here), and the dash is an em dash, U+2014. For example:
.PP
.RS 4
.nf
12:01:02 * bob [new key 3f9a1c2b4d5e6f70...] joined
12:01:04 bob: hello
12:01:09 alice [KEY CHANGED 0b7e5d13c2a49f86... \(em not verified]: hi
12:01:12 carol [unsigned]: hi
12:01:15 [key 3f9a1c2b4d5e6f70...] build 1.4 passed
.fi
.RE
.PP
Joins and leaves are marked the same way. With \fB\-\-json\fR, messages and
\fBjoin\fR, \fBleave\fR and \fBonline\fR objects of an encrypted room end with
\fB\%"verified":true\fR or \fBfalse\fR (true only with the pinned key), then
\fB\%"fingerprint"\fR (64 hex digits; not for an unsigned record), then
\fB\%"key_changed":true\fR for a changed key, \fB\%"new_key":true\fR for a first\-seen
one, or \fB\%"unsigned":true\fR for a record of version 1;
a message that is not UTF\-8 has \fBpayload_base64\fR after them. \fB\-\-format\fR has
\fB\%{fingerprint}\fR and \fB\%{verified}\fR. \fB\-\-raw\fR, and a \fB\-\-format\fR
without \fB\%{verified}\fR, cannot show marks: what they would say goes to standard error
instead, as
\fBchat\-sub: a message on \*(Aq\fR\fITOPIC\fR\fB\*(Aq from \*(Aq\fR\fINICK\fR\fB\*(Aq is
signed with a key other than its nick\*(Aqs (\fR\fIFINGERPRINT\fR\fB): KEY CHANGED, not
verified\fR, for every such message (a new key, once; an unsigned message, once per run).
\fB\-\-who\fR prints each nick with the whole
fingerprint of its join's key, then \fB[KEY CHANGED \(em not verified]\fR, \fB[new key]\fR
or, for a version 1 join (which has no fingerprint), \fB[unsigned]\fR or \fB[UNSIGNED \(em
not verified]\fR when so:
.PP
.RS 4
.nf
bob 3f9a1c2b4d5e6f70a1b2c3d4e5f60718293a4b5c6d7e8f90123456789abcdef0
.fi
.RE
.SS Accepting a key
A changed key may be a member's new identity, or a member speaking as another. Ask the
nick's owner, by a way you trust (in person, on a call), for what \fBchat\-pub
\-\-fingerprint\fR prints; if it is the fingerprint of \fB\-\-json\fR, \fB{fingerprint}\fR
or \fB\-\-who\fR, accept it:
.PP
.RS 4
.nf
chat\-sub \-\-trust alice \e
  0b7e5d13c2a49f865e4d3c2b1a09887766554433221100ffeeddccbbaa998877 \e
  team/x
.fi
.RE
.PP
\fB\-\-trust\fR \fINICK\fR \fIFINGERPRINT\fR \fIROOM\fR appends the pin to known_members,
says so on standard error (\fB\*(Aqalice\*(Aq in \*(Aqteam/x\*(Aq is now known by the
key\fR \fIFINGERPRINT\fR) and exits 0, without connecting. \fIFINGERPRINT\fR is 64 hex
digits, in either case (colons and spaces between them are ignored); anything else is a
usage error. \fIROOM\fR is the exact topic. It takes effect in the runs of chat\-sub
started afterwards: a running one keeps the pins it read.
.PP
Trust on first use has its limit: a member who speaks first under a nick you never saw
in a room gets that nick pinned to its own key, and the real owner then shows as
\fBKEY CHANGED\fR. Compare the whole fingerprints (\fB\-\-who\fR, \fB\-\-json\fR,
\fB\-\-fingerprint\fR; the 16 digits of a mark are only a hint) out of band before you rely
on a nick, and \fB\-\-trust\fR the right one.
.PP
Presence is judged per client: a join or leave on a client's presence topic signed by
another key than the join it would replace or end changes nothing (the member stays
online, in \fB\-\-who\fR too) and is shown as \fBKEY CHANGED\fR under the nick of that
join; the freshness of presence records (see PRESENCE) is kept per signer, so a record
dated ahead by another member does not make the owner's records old news.
With \fB\-\-hide\-own\fR, only the messages your identity signed are hidden (chat\-sub
reads your identity, as chat\-pub does, from \fB\-\-identity\-file\fR or the default
one): another member's message under your nick is shown, marked.
A signed message is known by its envelope id and its signer: another member's record
that copies an id is not taken for a repeat of the owner's (it is shown, marked), while
the owner's own message delivered again is printed once.
.SS Bad signatures
A record of version 2 that opens with the room's secret but whose signature does not
check (or whose signature block is malformed) was forged or changed by someone who has
the secret. It is not shown; the first is reported on standard error,
.PP
.RS 4
.nf
chat\-sub: not shown: a message on \*(Aqteam/x\*(Aq opens with the room\*(Aqs
secret but its signature does not check (forged or changed by
someone who has the secret); more like it are only counted
.fi
.RE
.PP
(one line), the summary at exit counts them as \fBbad\-signature\fR, and with
\fB\-\-json\fR a message is a line
\fB\%{"event":"rejected",...,"reason":"bad\-signature",...}\fR.
@DIALECT@
.SH EXIT STATUS
.TP
.B 0
Stopped by \fB\-\-count\fR, by \fB\-\-timeout\fR (when there was no \fB\-\-count\fR to
reach), or because standard output was closed; or \fB\-\-fingerprint\fR printed the
fingerprint, or \fB\-\-trust\fR saved the pin.
.TP
.B 1
chat\-sub ran, but something failed: \fB\-\-count\fR was not reached by
\fB\-\-timeout\fR, its \fB\-\-session\fR was taken over by another client, or standard
output could not be written; or \fB\-\-trust\fR could not write known_members, or
\fB\-\-fingerprint\fR could not write a new identity.
.TP
.B 2
Usage error: a bad flag, URL, topic filter or \fB\-F\fR template, a room secret that
cannot be read or is too short (see ENCRYPTION), a known_members file that cannot be
read, an identity file that cannot be read or is not an Ed25519 private key in PEM
(\fB\-\-fingerprint\fR), or a \fB\-\-trust\fR fingerprint that is not 64 hex digits (see
IDENTITIES). Nothing was received.
@EXIT_UNREACHABLE@
.TP
.B 4
The broker or the proxy refused: the proxy the credentials; the broker the connection (credentials, not authorized, or the client id), or a
subscription.
.TP
.B 130, 143
Stopped by SIGINT or SIGTERM. Everything received was printed (output is flushed after
each batch), then chat\-sub disconnected.
@DIAGNOSTICS@
.TP
\fBnobody is online in \fR\fIROOM\fR
\fB\-\-who\fR found nobody online (\fIROOM\fR: the \fITOPIC\fRs, separated by commas).
Standard output stays empty, for scripts, and the exit status is 0.
.TP
\fBnot shown: a message on \*(Aq\fR\fITOPIC\fB\*(Aq \fR\fIWHY\fB; more like it are only counted\fR
In an encrypted room, the first payload of a kind that did not open, or whose signature
does not check (\fBa presence announcement\fR instead of \fBa message\fR for presence):
see In chat\-sub in ENCRYPTION, and Bad signatures in IDENTITIES.
.TP
\fIN\fB payload(s) not shown: not sealed with the room\*(Aqs secret\fR[\fB, or not signed right\fR]\fB (\fR\fIN KIND\fR, ...\fB)\fR
At exit, in an encrypted room: how many payloads were not shown, by kind.
.TP
\fB\*(Aq\fR\fINICK\fB\*(Aq in \*(Aq\fR\fIROOM\fB\*(Aq is now known by the key \fR\fIFINGERPRINT\fR
\fB\-\-trust\fR saved the pin (see IDENTITIES).
.TP
\fBno HOME or XDG_DATA_HOME: the keys seen are not remembered after this run\fR
In an encrypted room, without a place for known_members: the pins last for the run.
.SH ENVIRONMENT
@ENV_BROKER@
.TP
.B TZ
The time zone of \fIHH\fR:\fIMM\fR:\fISS\fR in text output and \fB{time}\fR, for example
\fBTZ=UTC\fR. The \fBts\fR and \fBreceived\fR values are always UTC.
@ENV_RUST_LOG@
.TP
.B NO_COLOR
When set and not empty, \fB\-\-color auto\fR (the default) colours nothing.
.TP
.B CHAT_NICK, USER
Your nick for \fB\-\-hide\-own\fR when \fB\-\-nick\fR is not given (in this order).
@ENV_PROFILE@
@FILES@
.SH COLOUR
With \fB\-\-color always\fR, or \fB\-\-color auto\fR when standard output is a terminal and
\fBNO_COLOR\fR is not set, nicks in text output are coloured: each nick always gets the same
of twelve colours (a hash of its bytes), so a conversation is easy to follow. Only the nick
is coloured, after escaping, and a \fB[KEY CHANGED\fR ...\fB]\fR mark is bold red (see
IDENTITIES); \fB\-\-json\fR, \fB\-\-raw\fR and \fB\-\-format\fR never are.
.SH EXAMPLES
@EXAMPLE_CHAT@
.PP
Everything under \fBchat/\fR, each line prefixed by its topic:
.PP
.RS 4
.nf
chat\-sub \*(Aqchat/#\*(Aq
.fi
.RE
.PP
Only the texts that \fBci\fR sent; only the lines that mention a deploy:
.PP
.RS 4
.nf
chat\-sub \-\-json \*(Aqops/#\*(Aq | jq \-r \*(Aqselect(.from=="ci") | .text\*(Aq
chat\-sub ops/alerts | grep \-\-line\-buffered \-i deploy
.fi
.RE
.PP
Wait up to a minute for one new (not retained) message; the status is 1 if none came:
.PP
.RS 4
.nf
chat\-sub \-R \-n 1 \-W 60 builds/done
.fi
.RE
.PP
A log file with tab\-separated UTC times, topics, senders and texts:
.PP
.RS 4
.nf
chat\-sub \-F \*(Aq{received}\et{topic}\et{from}\et{text}\*(Aq \*(Aq#\*(Aq >> mqtt.log
.fi
.RE
@EXAMPLE_RELAY@
.PP
The same relay for an encrypted room, run without its secret: the ciphertext passes
through as it is, signatures included, so readers on \fBb\fR see each member's own key
(see ENCRYPTION):
.PP
.RS 4
.nf
chat\-sub \-b mqtt://a \-\-json team/x | chat\-pub \-b mqtt://b \-\-json
.fi
.RE
.PP
An encrypted room, who is in it with which key, and a key accepted after checking it
with its owner, who read out what \fBchat\-pub \-\-fingerprint\fR printed:
.PP
.RS 4
.nf
chat\-sub \-\-room\-secret\-file ~/.config/mqttchat/team.secret team/x
chat\-sub \-\-room\-secret\-file ~/.config/mqttchat/team.secret \e
  \-\-who team/x
chat\-sub \-\-trust alice \e
  0b7e5d13c2a49f865e4d3c2b1a09887766554433221100ffeeddccbbaa998877 \e
  team/x
.fi
.RE
@EXAMPLE_SECURE@
.PP
With mosquitto's clients: what \fBmosquitto_pub\fR sends is a raw message, and
\fBchat\-sub lobby\fR prints it without a sender, as \fB12:01:02 hello from mosquitto\fR.
.PP
.RS 4
.nf
mosquitto_pub \-t lobby \-m \*(Aqhello from mosquitto\*(Aq
.fi
.RE
.SH SEE ALSO
.BR chat\-pub (1),
@SEE_ALSO@
"##;

//! Signed identities in encrypted rooms (IDENTITIES in chat-sub(1)): each member signs
//! with an Ed25519 identity of their own; readers pin nick → key per room on first use
//! and mark what is not verified — a first-seen key once, a changed key on every line
//! until `--trust` accepts it — in text and in `--json`. Three members, each with their
//! own identity file; carol speaks as alice and as bob, and every attempt is marked.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::common::*;

const SECRET: &str = "the identities test room's secret";
/// The identity of seed 0, 1, …, 31 (written by OpenSSL), and its fingerprint.
const PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n\
                   -----END PRIVATE KEY-----\n";
const PEM_FINGERPRINT: &str = "56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c";

/// A scratch folder with the room's secret, a data folder (XDG_DATA_HOME) for the
/// reader, and each member's identity.
struct Room {
    dir: TempDir,
    secret: String,
}

impl Room {
    fn new() -> Room {
        let dir = TempDir::new("identities");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, SECRET).expect("secret");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let secret = secret.to_str().expect("UTF-8").to_owned();
        Room { dir, secret }
    }

    /// A member's identity file, made by `chat-pub --fingerprint` in a data folder of
    /// their own: (its path, its fingerprint).
    fn identity(&self, who: &str) -> (String, String) {
        let data = self.dir.path().join(format!("data-{who}"));
        let out = fingerprint_in("chat-pub", &data);
        out.expect_code(0);
        let path = data.join("mqttchat/identity");
        (
            path.to_str().expect("UTF-8").to_owned(),
            out.stdout_str().trim().to_owned(),
        )
    }

    /// `chat-pub --identity-file ID --nick NICK -m TEXT ROOM`, run to success.
    fn say(&self, broker: &Broker, id: &str, nick: &str, topic: &str, text: &str) {
        let args = ["--room-secret-file", &self.secret, "--identity-file", id];
        let args = [&args[..], &["--nick", nick, "-m", text, topic]].concat();
        run(&mut chat_pub(broker, &args), b"").expect_code(0);
    }

    /// The reader's data folder (its pins), the same in each of its runs.
    fn reader(&self, broker: &Broker, args: &[&str]) -> Proc {
        let mut c = chat_sub(
            broker,
            &[&["--room-secret-file", &self.secret], args].concat(),
        );
        c.env("XDG_DATA_HOME", self.dir.path().join("data-reader"));
        watch(c)
    }
}

/// `TOOL --fingerprint` with the data folder `data`.
fn fingerprint_in(tool_name: &str, data: &std::path::Path) -> Finished {
    run(
        tool(tool_name)
            .arg("--fingerprint")
            .env("XDG_DATA_HOME", data),
        b"",
    )
}

/// (from, text, verified, fingerprint, key_changed, new_key) of a `--json` message.
fn row(v: &Value) -> (String, String, bool, String, bool, bool) {
    (
        v["from"].as_str().unwrap_or("").to_owned(),
        v["text"].as_str().unwrap_or("").to_owned(),
        v["verified"]
            .as_bool()
            .unwrap_or_else(|| panic!("no verified: {v}")),
        v["fingerprint"].as_str().unwrap_or("").to_owned(),
        v["key_changed"].as_bool().unwrap_or(false),
        v["new_key"].as_bool().unwrap_or(false),
    )
}

each_broker! {
    /// alice and bob speak, then carol (a member: she has the secret) speaks as alice and
    /// as bob, twice each: every forged line is marked, in `--json` and in text, until the
    /// reader accepts carol's key for alice with `--trust`.
    fn three_members_and_every_forgery_is_marked(broker) {
        let room = Room::new();
        let topic = unique_topic("identities");
        let (alice, a) = room.identity("alice");
        let (bob, b) = room.identity("bob");
        let (carol, c) = room.identity("carol");
        assert!(a != b && b != c && a != c && a.len() == 64);

        let json = room.reader(broker, &["--json", &topic]);
        let text = room.reader(broker, &[&topic]);
        room.say(broker, &alice, "alice", &topic, "a1");
        room.say(broker, &bob, "bob", &topic, "b1");
        room.say(broker, &alice, "alice", &topic, "a2");
        for n in 1..=2 {
            room.say(broker, &carol, "alice", &topic, &format!("forged as alice {n}"));
            room.say(broker, &carol, "bob", &topic, &format!("forged as bob {n}"));
        }
        room.say(broker, &carol, "carol", &topic, "c1");
        let rows: Vec<_> = json_lines(&json.wait_lines(8)).iter().map(row).collect();
        let r = |from: &str, text: &str, verified, fp: &str, changed, new| {
            (from.to_owned(), text.to_owned(), verified, fp.to_owned(), changed, new)
        };
        assert_eq!(
            rows,
            [
                r("alice", "a1", false, &a, false, true),
                r("bob", "b1", false, &b, false, true),
                r("alice", "a2", true, &a, false, false),
                r("alice", "forged as alice 1", false, &c, true, false),
                r("bob", "forged as bob 1", false, &c, true, false),
                r("alice", "forged as alice 2", false, &c, true, false),
                r("bob", "forged as bob 2", false, &c, true, false),
                r("carol", "c1", false, &c, false, true),
            ]
        );
        let lines: Vec<String> = text.wait_lines(8).iter().map(|l| after_clock(l).to_owned()).collect();
        let short = |fp: &str| format!("{}…", &fp[..16]);
        assert_eq!(
            lines,
            [
                format!("alice [new key {}]: a1", short(&a)),
                format!("bob [new key {}]: b1", short(&b)),
                "alice: a2".to_owned(),
                format!("alice [KEY CHANGED {} — not verified]: forged as alice 1", short(&c)),
                format!("bob [KEY CHANGED {} — not verified]: forged as bob 1", short(&c)),
                format!("alice [KEY CHANGED {} — not verified]: forged as alice 2", short(&c)),
                format!("bob [KEY CHANGED {} — not verified]: forged as bob 2", short(&c)),
                format!("carol [new key {}]: c1", short(&c)),
            ]
        );
        drop((json, text));

        // The pins outlive the run: a new reader verifies alice at once, and still marks
        // carol's key under bob's nick; once the reader trusts carol's key for alice,
        // alice's own key is the changed one.
        let json = room.reader(broker, &["--json", &topic]);
        room.say(broker, &alice, "alice", &topic, "a3");
        room.say(broker, &carol, "bob", &topic, "forged as bob 3");
        let trust = run(
            tool("chat-sub")
                .args(["--trust", "alice", &c.to_uppercase(), &topic])
                .env("XDG_DATA_HOME", room.dir.path().join("data-reader")),
            b"",
        );
        trust.expect_code(0);
        assert!(trust.stderr.contains("is now known by the key"), "{}", trust.stderr);
        let rows: Vec<_> = json_lines(&json.wait_lines(2)).iter().map(row).collect();
        assert_eq!(
            rows,
            [
                r("alice", "a3", true, &a, false, false),
                r("bob", "forged as bob 3", false, &c, true, false),
            ]
        );
        drop(json);
        let json = room.reader(broker, &["--json", &topic]);
        room.say(broker, &carol, "alice", &topic, "carol is alice now");
        room.say(broker, &alice, "alice", &topic, "a4");
        let rows: Vec<_> = json_lines(&json.wait_lines(2)).iter().map(row).collect();
        assert_eq!(
            rows,
            [
                r("alice", "carol is alice now", true, &c, false, false),
                r("alice", "a4", false, &a, true, false),
            ]
        );
    }

    /// `--hide-own` hides the lines your identity signed, not another member's lines
    /// under your nick.
    fn hide_own_hides_only_what_you_signed(broker) {
        let room = Room::new();
        let topic = unique_topic("identities-own");
        let (me, _) = room.identity("me");
        let (carol, c) = room.identity("carol");
        let mut reader = chat_sub(broker, &["--room-secret-file", &room.secret]);
        reader.args(["--json", "--hide-own", "--nick", "me", "--identity-file", &me, "-n", "2", &topic]);
        reader.env("XDG_DATA_HOME", room.dir.path().join("data-reader"));
        let reader = watch(reader);
        room.say(broker, &me, "me", &topic, "mine");
        room.say(broker, &carol, "me", &topic, "not mine");
        room.say(broker, &carol, "carol", &topic, "end");
        let out = reader.finish();
        out.expect_code(0);
        let rows: Vec<_> = json_lines(&out.lines()).iter().map(row).collect();
        assert_eq!(
            rows,
            [
                ("me".to_owned(), "not mine".to_owned(), false, c.clone(), false, true),
                ("carol".to_owned(), "end".to_owned(), false, c.clone(), false, true),
            ]
        );
    }

    /// `--raw` cannot show marks: a forged line is told on stderr, every time.
    fn raw_output_tells_forgeries_on_stderr(broker) {
        let room = Room::new();
        let topic = unique_topic("identities-raw");
        let (alice, _) = room.identity("alice");
        let (carol, c) = room.identity("carol");
        let reader = room.reader(broker, &["--raw", "-n", "3", &topic]);
        room.say(broker, &alice, "alice", &topic, "a1");
        room.say(broker, &carol, "alice", &topic, "forged 1");
        room.say(broker, &carol, "alice", &topic, "forged 2");
        let out = reader.finish();
        out.expect_code(0);
        let told = out.stderr.lines().filter(|l| l.contains("KEY CHANGED")).collect::<Vec<_>>();
        assert_eq!(told.len(), 2, "{}", out.stderr);
        assert!(told.iter().all(|l| l.contains(&c) && l.contains("from 'alice'")), "{}", out.stderr);
    }

    /// A member's join is signed (its fingerprint in `--json`), and `--who` lists the
    /// fingerprint of each member online.
    fn presence_is_signed_and_who_lists_fingerprints(broker) {
        let room = Room::new();
        let topic = unique_topic("identities-who");
        let (alice, a) = room.identity("alice");
        let json = room.reader(broker, &["--json", &topic]);
        let mut member = tool("chat-pub");
        member.args(["-b", &broker.url(), "--nick", "alice"]);
        member.args(["--room-secret-file", &room.secret, "--identity-file", &alice, &topic]);
        let member = Proc::spawn(&mut member);
        let joined = json_lines(&json.wait_lines(1));
        assert_eq!(
            (joined[0]["event"].as_str(), joined[0]["fingerprint"].as_str()),
            (Some("join"), Some(a.as_str())),
            "{}",
            joined[0]
        );
        let mut who = chat_sub(broker, &["--room-secret-file", &room.secret, "--who", &topic]);
        who.env("XDG_DATA_HOME", room.dir.path().join("data-reader"));
        let who = run(&mut who, b"");
        who.expect_code(0);
        assert_eq!(who.stdout_str(), format!("alice {a}\n"), "{}", who.stderr);
        drop(member);
    }
}

/// `--fingerprint` makes the default identity once (0600 in a 0700 folder) and prints
/// the same fingerprint after; `--identity-file` reads an OpenSSL key; a bad one is a
/// usage error naming the file.
#[test]
fn fingerprints_and_identity_files() {
    let dir = TempDir::new("identity-files");
    let data = dir.path().join("data");
    let first = fingerprint_in("chat-pub", &data);
    first.expect_code(0);
    let fp = first.stdout_str().trim().to_owned();
    assert!(
        fp.len() == 64 && fp.bytes().all(|b| b.is_ascii_hexdigit()),
        "{fp}"
    );
    assert!(
        first.stderr.contains("made your identity"),
        "{}",
        first.stderr
    );
    let file = data.join("mqttchat/identity");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!((mode(&file), mode(&data.join("mqttchat"))), (0o600, 0o700));
    let again = fingerprint_in("chat-sub", &data);
    again.expect_code(0);
    assert_eq!(
        (again.stdout_str().trim(), again.stderr.as_str()),
        (fp.as_str(), "")
    );

    let openssl = dir.path().join("openssl.pem");
    std::fs::write(&openssl, PEM).expect("write");
    std::fs::set_permissions(&openssl, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let given = run(
        tool("chat-pub")
            .args(["--fingerprint", "--identity-file"])
            .arg(&openssl),
        b"",
    );
    given.expect_code(0);
    assert_eq!(given.stdout_str().trim(), PEM_FINGERPRINT);

    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a key\n").expect("write");
    let out = run(
        tool("chat-pub")
            .args(["--fingerprint", "--identity-file"])
            .arg(&bad),
        b"",
    );
    out.expect_code(2);
    assert!(
        out.stderr.contains("bad.pem") && out.stderr.contains("Ed25519"),
        "{}",
        out.stderr
    );
    let missing = run(
        tool("chat-pub").args(["--fingerprint", "--identity-file", "/nonexistent/id"]),
        b"",
    );
    missing.expect_code(2);
    let trust = run(
        tool("chat-sub").args(["--trust", "alice", "12ab", "room"]),
        b"",
    );
    trust.expect_code(2);
    assert!(
        trust.stderr.contains("not a fingerprint"),
        "{}",
        trust.stderr
    );
}

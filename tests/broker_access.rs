//! chat-broker's network security, with real peers: the safe default off loopback,
//! password files (its own `passwd` command's, mosquitto_passwd's, SIGHUP), ACLs in
//! mosquitto's acl_file format, TLS with client certificates and identities, WebSocket
//! listeners, several listeners before one engine, and no password in any output.
//! mosquitto_passwd, mosquitto_pub and mosquitto_sub are peers where installed.

#![cfg(feature = "broker")]

use std::process::Command;

use crate::authorization::{ACL, THREE_LINES};
use crate::common::*;

/// What chat-broker logs when SIGHUP read its files again.
const RELOADED: &str = "SIGHUP: the password and ACL files were read again";

// ---------------------------------------------------------------------------------------
// 1. The safe default off loopback
// ---------------------------------------------------------------------------------------

/// On 0.0.0.0, a listener of any kind without `--password-file` or `--allow-anonymous`
/// is refused at start (exit 2, naming both), a TLS listener that requires client
/// certificates too, unless their names are the usernames (`--use-identity-as-username`).
#[test]
fn off_loopback_it_wants_a_password_file_or_allow_anonymous() {
    let pki = Pki::new();
    let (cert, key, ca) = (s(&pki.server_cert), s(&pki.server_key), s(&pki.ca));
    let tls = ["--certfile", &cert, "--keyfile", &key];
    let mutual = [&["--tls-listen", "0.0.0.0:0"][..], &tls, &["--cafile", &ca]].concat();
    let mutual = [&mutual[..], &["--require-certificate"]].concat();
    let cases: [Vec<&str>; 4] = [
        vec!["--listen", "0.0.0.0:0"],
        vec!["--listen", "127.0.0.1:0", "--ws-listen", "0.0.0.0:0"],
        [&["--tls-listen", "0.0.0.0:0"][..], &tls].concat(),
        mutual.clone(),
    ];
    for args in cases {
        let out = run(&mut chat_broker(&args), b"");
        out.expect_code(2);
        for needle in ["0.0.0.0:0", "--password-file", "--allow-anonymous"] {
            assert!(out.stderr.contains(needle), "{args:?}:\n{}", out.stderr);
        }
        assert!(!out.stderr.contains(": listening on"), "{}", out.stderr);
    }
    let p = start_chat_broker(&[&mutual[..], &["--use-identity-as-username"]].concat());
    assert!(!p.stderr().contains("anyone"), "{}", p.stderr());
}

/// `--allow-anonymous` on 0.0.0.0 starts, says on stderr what it means, and serves
/// anyone (reached at 127.0.0.1), beside a password file too (anonymous clients get in
/// there as well); loopback without flags says nothing of the kind.
#[test]
fn allow_anonymous_off_loopback_warns_and_serves_anyone() {
    let users = Users::new(&[("alice", PASSWORD)]);
    let flags = ["--listen", "0.0.0.0:0", "--allow-anonymous"];
    for extra in [vec![], users.flags(None)] {
        let p = start_chat_broker(&[&flags[..], &strs(&extra)].concat());
        let stderr = p.stderr();
        let warning = stderr
            .lines()
            .find(|l| l.contains("warning: --allow-anonymous"));
        let warning = warning.unwrap_or_else(|| panic!("{extra:?}: no warning:\n{stderr}"));
        assert!(warning.contains("anyone who reaches 0.0.0.0:"), "{stderr}");
        assert!(warning.ends_with("may publish and subscribe"), "{stderr}");
        let url = format!("mqtt://127.0.0.1:{}", port_of(&stderr, "0.0.0.0"));
        round_trip(&url, &[]);
    }
    let quiet = Broker::embedded();
    assert!(!quiet.log().contains("anyone"), "{}", quiet.log());
}

/// With `--password-file` on 0.0.0.0 it starts without a warning, refuses anonymous
/// clients and lets the file's users in.
#[test]
fn a_password_file_guards_a_listener_off_loopback() {
    let users = Users::new(&[("alice", PASSWORD)]);
    let flags = with(&users.flags(None), &["--listen", "0.0.0.0:0"]);
    let p = start_chat_broker(&strs(&flags));
    assert!(!p.stderr().contains("anyone who"), "{}", p.stderr());
    // Plain MQTT off loopback: the passwords cross the network readable, and it says so.
    assert!(
        p.stderr()
            .contains("passwords cross the network in clear text"),
        "{}",
        p.stderr()
    );
    let url = format!("mqtt://127.0.0.1:{}", port_of(&p.stderr(), "0.0.0.0"));
    login_refused(&url, &[], "not authorized");
    round_trip(&url, &users.login("alice", PASSWORD));
}

// ---------------------------------------------------------------------------------------
// 2. Password files
// ---------------------------------------------------------------------------------------

/// `chat-broker passwd FILE USER` reads the password from stdin: it adds users, changes
/// one's password (the other lines stay as they were), deletes one with -D; the file is
/// its owner's only and in mosquitto's `$7$` format; the password is in no output. The
/// broker then lets in exactly who the file says, with the password it says.
#[test]
fn chat_broker_passwd_adds_changes_and_deletes_users() {
    use std::os::unix::fs::PermissionsExt;
    let users = Users::new(&[("alice", PASSWORD), ("bob", BOB_PASSWORD)]);
    let file = &users.passwd;
    let read = || std::fs::read_to_string(file).expect("password file");
    let before = read();
    let lines: Vec<&str> = before.lines().collect();
    assert_eq!(lines.len(), 2, "{before}");
    assert!(lines[0].starts_with("alice:$7$101$"), "{before}");
    assert!(lines[1].starts_with("bob:$7$101$"), "{before}");
    let mode = std::fs::metadata(file).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let changed = passwd(file, "alice", &[], &format!("{WRONG_PASSWORD}\n"));
    changed.expect_code(0);
    let text = format!("{}{}", changed.stdout_str(), changed.stderr);
    assert!(!text.contains(WRONG_PASSWORD), "{text}");
    let after = read();
    assert_eq!(after.lines().nth(1), Some(lines[1]), "bob's line:\n{after}");
    assert_ne!(after.lines().next(), Some(lines[0]), "{after}");
    passwd(file, "bob", &["-D"], "").expect_code(0);
    assert_eq!(read().lines().count(), 1, "{}", read());
    let again = passwd(file, "bob", &["-D"], "");
    again.expect_code(2);
    assert!(again.stderr.contains("no user bob"), "{}", again.stderr);
    passwd(file, "carol", &[], "\n").expect_code(2);
    assert!(!read().contains("carol"), "an empty password:\n{}", read());

    let broker = Broker::embedded_with(&strs(&users.flags(None)));
    round_trip(&broker.url(), &users.login("alice", WRONG_PASSWORD));
    for (who, password) in [("alice", PASSWORD), ("bob", BOB_PASSWORD)] {
        login_refused(&broker.url(), &users.login(who, password), "bad user name");
    }
}

/// Wrong passwords and unknown users are refused in the CONNACK (MQTT 5: 0x86, 3.1.1:
/// 4), and both tools end at once with exit 4; after those failures, the right password
/// still gets in (the failures slow the next logins down, but lock nobody out: given
/// time, here an hour's --connect-timeout, it gets in).
#[test]
fn wrong_credentials_are_refused_and_the_right_ones_still_get_in() {
    let users = Users::new(&[("alice", PASSWORD)]);
    let broker = Broker::embedded_with(&strs(&users.flags(None)));
    let wrong = users.login("alice", WRONG_PASSWORD);
    for (version, code) in [("5", "(0x86)"), ("3", "(0x04)")] {
        for (name, cmd) in each_tool(&broker.url(), &strs(&with(&wrong, &["-V", version]))) {
            let what = format!("{name} -V {version} wrong password");
            let needles = ["refused the connection", "bad user name or password", code];
            fails_fast(&what, cmd, 4, &needles);
        }
    }
    let mallory = users.login("mallory", PASSWORD);
    login_refused(&broker.url(), &mallory, "bad user name or password (0x86)");
    let alice = users.login("alice", PASSWORD);
    round_trip(
        &broker.url(),
        &with(&alice, &["--connect-timeout", LONG_CONNECT_TIMEOUT]),
    );
}

/// After five failed logins from one address (a user's typos), the right password gets
/// in with the tools' default options (`-V auto`, `--connect-timeout 10`).
#[test]
fn a_right_login_after_five_failures_gets_in_with_default_options() {
    let users = Users::new(&[("alice", PASSWORD)]);
    let broker = Broker::embedded_with(&strs(&users.flags(None)));
    for _ in 0..5 {
        login_refused(
            &broker.url(),
            &users.login("alice", WRONG_PASSWORD),
            "bad user",
        );
    }
    let mut alice = client(
        "chat-pub",
        &broker.url(),
        &strs(&users.login("alice", PASSWORD)),
    );
    run(alice.args(["-m", "x", "chat/t"]), b"").expect_code(0);
}

/// With a password file, a client without a username is refused ("not authorized":
/// MQTT 5 0x87, 3.1.1 5), unless `--allow-anonymous`; then it gets in, but a wrong
/// password is still refused.
#[test]
fn anonymous_clients_need_allow_anonymous_beside_a_password_file() {
    let users = Users::new(&[("alice", PASSWORD)]);
    let closed = Broker::embedded_with(&strs(&users.flags(None)));
    for (version, code) in [("5", "(0x87)"), ("3", "(0x05)")] {
        for (name, cmd) in each_tool(&closed.url(), &["-V", version]) {
            let what = format!("{name} -V {version} anonymous");
            let needles = ["refused the connection", "not authorized", code];
            fails_fast(&what, cmd, 4, &needles);
        }
    }
    let open = Broker::embedded_with(&strs(&with(&users.flags(None), &["--allow-anonymous"])));
    round_trip(&open.url(), &[]);
    let wrong = users.login("alice", WRONG_PASSWORD);
    login_refused(&open.url(), &wrong, "bad user name or password");
}

/// A password file made by mosquitto_passwd (`$7$`) works as it is, and so does a `$6$`
/// line as mosquitto 1.x wrote them (checked against mosquitto itself where installed).
#[test]
fn mosquitto_passwd_files_work_as_they_are() {
    if !have_program("mosquitto_passwd", "apt-get install -y mosquitto") {
        return;
    }
    let users = Users::new(&[]);
    let file = s(&users.passwd);
    must_run(Command::new("mosquitto_passwd").args(["-c", "-b", &file, "alice", PASSWORD]));
    let text = std::fs::read_to_string(&users.passwd).expect("passwd")
        + &sha512_line("bob", BOB_PASSWORD, b"mqttchat-6-s");
    readable_file(&users.passwd, &text);
    assert!(
        text.starts_with("alice:$7$") && text.contains("\nbob:$6$"),
        "{text}"
    );
    let mut brokers = vec![Broker::embedded_with(&["--password-file", &file])];
    if have_mosquitto() {
        let conf = format!("allow_anonymous false\npassword_file {file}\n");
        brokers.push(Broker::mosquitto_with(&conf));
    }
    for broker in &brokers {
        round_trip(&broker.url(), &users.login("alice", PASSWORD));
        round_trip(&broker.url(), &users.login("bob", BOB_PASSWORD));
        login_refused(&broker.url(), &users.login("bob", PASSWORD), "");
    }
}

/// And the other way: mosquitto reads a file `chat-broker passwd` made.
#[test]
fn mosquitto_reads_files_made_by_chat_broker_passwd() {
    if !have_mosquitto() {
        return;
    }
    let users = Users::new(&[("alice", PASSWORD)]);
    let text = std::fs::read_to_string(&users.passwd).expect("passwd");
    let copy = users.file("passwd-for-mosquitto", &text);
    let conf = format!("allow_anonymous false\npassword_file {}\n", s(&copy));
    let broker = Broker::mosquitto_with(&conf);
    round_trip(&broker.url(), &users.login("alice", PASSWORD));
}

/// SIGHUP reads the password file again: a user added meanwhile gets in, one deleted
/// does not; a file that cannot be read then changes nothing (the broker says why).
#[test]
fn sighup_reads_the_password_file_again() {
    let users = Users::new(&[("alice", PASSWORD)]);
    let broker = Broker::embedded_with(&strs(&users.flags(None)));
    let url = broker.url();
    let alice = users.login("alice", PASSWORD);
    let bob = users.login("bob", BOB_PASSWORD);
    login_refused(&url, &bob, "bad user name or password");
    users.add("bob", BOB_PASSWORD);
    passwd(&users.passwd, "alice", &["-D"], "").expect_code(0);
    login_refused(&url, &bob, "bad user name or password");
    broker.signal(libc::SIGHUP);
    broker.wait_log(RELOADED);
    round_trip(&url, &bob);
    login_refused(&url, &alice, "bad user name or password");
    std::fs::remove_file(&users.passwd).expect("rm");
    broker.signal(libc::SIGHUP);
    broker.wait_log("going on with the files as they were");
    round_trip(&url, &bob);
}

// ---------------------------------------------------------------------------------------
// 3. ACLs
// ---------------------------------------------------------------------------------------

/// tests/authorization.rs's run against chat-broker: alice's chat-pub --json sends
/// [`THREE_LINES`] (line 2 to chat/no/…, which [`ACL`] does not grant her) at MQTT
/// `version` while watcher reads chat/#. Line 2 comes before line 3 on one connection:
/// had the broker taken it, watcher would have had it before line 3.
fn three_lines(version: &str) -> (Finished, Vec<String>) {
    let users = Users::new(&[("alice", PASSWORD), ("watcher", WATCHER_PASSWORD)]);
    let broker = Broker::embedded_with(&strs(&users.flags(Some(ACL))));
    let watcher = users.login("watcher", WATCHER_PASSWORD);
    let watcher = with(
        &watcher,
        &["-v", "-n", "2", "-F", "{topic} {text}", "chat/#"],
    );
    let watcher = Proc::spawn(&mut client("chat-sub", &broker.url(), &strs(&watcher)));
    watcher.wait_stderr("subscribed to");
    let alice = with(&users.login("alice", PASSWORD), &["-V", version, "--json"]);
    let mut alice = client("chat-pub", &broker.url(), &strs(&alice));
    let published = run(&mut alice, THREE_LINES);
    let received = watcher.finish();
    received.expect_code(0);
    (published, received.lines())
}

/// Under MQTT 5 the refused line gets PUBACK 0x87: chat-pub reports it and exits 4.
#[test]
fn acl_refused_publish_is_reported_per_line_under_mqtt5() {
    let (published, received) = three_lines("5");
    published.expect_code(4);
    let stderr = &published.stderr;
    let refused = "line 2: refused by the broker: not authorized (0x87)";
    assert!(stderr.contains(refused), "{stderr}");
    assert!(
        !stderr.contains("line 1:") && !stderr.contains("line 3:"),
        "{stderr}"
    );
    assert_eq!(received, ["chat/ok/a one", "chat/ok/c three"]);
}

/// Under MQTT 3.1.1 the refused line is acknowledged and dropped, as mosquitto does.
#[test]
fn acl_refused_publish_is_dropped_under_mqtt311() {
    let (published, received) = three_lines("3");
    published.expect_code(0);
    assert!(
        !published.stderr.contains("refused"),
        "{}",
        published.stderr
    );
    assert_eq!(received, ["chat/ok/a one", "chat/ok/c three"]);
}

/// A SUBSCRIBE whose filter can read nothing gets a failure in its SUBACK (MQTT 5 0x87,
/// 3.1.1 0x80): chat-sub ends at once with exit 4, naming the filter, even beside an
/// allowed filter; the allowed filter alone works.
#[test]
fn acl_refused_subscription_exits_4_naming_the_filter() {
    let users = Users::new(&[("alice", PASSWORD)]);
    let broker = Broker::embedded_with(&strs(&users.flags(Some(ACL))));
    let alice = users.login("alice", PASSWORD);
    let both: &[&str] = &["chat/ok/x", "chat/no/#"];
    let cases: [(&str, &[&str], &str, &str); 4] = [
        ("5", &["chat/no/x"], "chat/no/x", "not authorized (0x87)"),
        ("5", both, "chat/no/#", "not authorized (0x87)"),
        ("3", &["chat/no/x"], "chat/no/x", "(0x80)"),
        ("3", both, "chat/no/#", "(0x80)"),
    ];
    for (version, filters, refused, reason) in cases {
        let mut cmd = client("chat-sub", &broker.url(), &strs(&alice));
        cmd.args(["-V", version]).args(filters);
        let what = format!("chat-sub -V {version} {filters:?}");
        let named = format!("refused the subscription to '{refused}'");
        fails_fast(&what, cmd, 4, &[&named, reason]);
    }
    let mut sub = client("chat-sub", &broker.url(), &strs(&alice));
    run(sub.args(["-W", "0.2", "chat/ok/x"]), b"").expect_code(0);
}

/// A subscription that may read part of what it matches gets only that part: alice
/// subscribes to rooms/# but may read rooms/alice/# only, less rooms/alice/secret
/// (`deny`). bob sends a message to each, the allowed one last, on one connection:
/// alice receives that one, so she would have had the others before it. The same goes
/// for retained messages, which her SUBSCRIBE would have brought before any live one.
/// Usernames are believed here (no password file).
#[test]
fn acl_partly_readable_subscription_gets_only_the_allowed_topics() {
    let acl = "user alice\ntopic read rooms/alice/#\ntopic deny rooms/alice/secret\n\n\
               user bob\ntopic write rooms/#\n";
    let users = Users::new(&[]);
    let broker = Broker::embedded_with(&["--acl-file", &s(&users.file("acl", acl))]);
    let input = json_input(&[
        ("rooms/bob/x", "for bob"),
        ("rooms/alice/secret", "secret"),
        ("rooms/alice/x", "for alice"),
    ]);
    let retained = json_input(&[("rooms/bob/r", "kept"), ("rooms/alice/secret", "kept")]);
    run(
        &mut chat_pub(&broker, &["-u", "bob", "-r", "--json"]),
        &retained,
    )
    .expect_code(0);
    for version in ["5", "3"] {
        let args = ["-u", "alice", "-V", version, "-F", "{topic} {text}"];
        let alice = Proc::subscriber(&broker, &[&args[..], &["rooms/#"]].concat());
        run(&mut chat_pub(&broker, &["-u", "bob", "--json"]), &input).expect_code(0);
        assert_eq!(
            alice.wait_lines(1),
            ["rooms/alice/x for alice"],
            "-V {version}"
        );
    }
}

/// `pattern` rules put in each client's username (%u) and client id (%c): alice may
/// write rooms/alice/# and status/<her client id>, nobody else's.
#[test]
fn acl_patterns_put_in_the_username_and_the_client_id() {
    let acl = "pattern readwrite rooms/%u/#\npattern write status/%c\n\n\
               user watcher\ntopic read rooms/#\ntopic read status/#\n";
    let users = Users::new(&[]);
    let broker = Broker::embedded_with(&["--acl-file", &s(&users.file("acl", acl))]);
    let format = ["-F", "{topic} {text}"];
    let args = [
        &["-u", "watcher", "-n", "3"],
        &format[..],
        &["rooms/#", "status/#"],
    ];
    let watcher = Proc::subscriber(&broker, &args.concat());
    let input = json_input(&[
        ("rooms/alice/a", "one"),
        ("rooms/bob/b", "two"),
        ("status/alice-laptop", "three"),
        ("status/bob-laptop", "four"),
        ("rooms/alice/c", "five"),
    ]);
    let args = ["-u", "alice", "-i", "alice-laptop", "-V", "5", "--json"];
    let published = run(&mut chat_pub(&broker, &args), &input);
    published.expect_code(4);
    for n in [2, 4] {
        let refused = format!("line {n}: refused by the broker: not authorized (0x87)");
        assert!(published.stderr.contains(&refused), "{}", published.stderr);
    }
    let received = watcher.finish();
    received.expect_code(0);
    let want = [
        "rooms/alice/a one",
        "status/alice-laptop three",
        "rooms/alice/c five",
    ];
    assert_eq!(received.lines(), want);
}

/// Rules before the first `user` line are for anonymous clients (here beside a password
/// file, with --allow-anonymous): they may read public/#, and nothing else.
#[test]
fn acl_rules_before_the_first_user_are_for_anonymous_clients() {
    let acl = "topic read public/#\n\nuser alice\ntopic readwrite public/#\n";
    let users = Users::new(&[("alice", PASSWORD)]);
    let flags = with(&users.flags(Some(acl)), &["--allow-anonymous"]);
    let broker = Broker::embedded_with(&strs(&flags));
    let alice = users.login("alice", PASSWORD);
    one_message_on(&broker.url(), "public/news", &[], &strs(&alice));
    publish_refused(&broker.url(), &[], "public/news");
    let sub = client(
        "chat-sub",
        &broker.url(),
        &["-V", "5", "-W", "30", "private/x"],
    );
    let refused = "refused the subscription to 'private/x'";
    fails_fast("anonymous chat-sub private/x", sub, 4, &[refused]);
}

/// SIGHUP reads the ACL again: what alice was refused, she may do after.
#[test]
fn sighup_reads_the_acl_again() {
    let users = Users::new(&[]);
    let before = "user alice\ntopic write rooms/alice/#\n\nuser watcher\ntopic read rooms/#\n";
    let acl = users.file("acl", before);
    let broker = Broker::embedded_with(&["--acl-file", &s(&acl)]);
    publish_refused(&broker.url(), &["-u", "alice"], "rooms/bob/x");
    readable_file(&acl, &before.replace("rooms/alice/#", "rooms/#"));
    broker.signal(libc::SIGHUP);
    broker.wait_log(RELOADED);
    one_message_on(
        &broker.url(),
        "rooms/bob/x",
        &["-u", "watcher"],
        &["-u", "alice"],
    );
}

/// mosquitto's own clients meet the same ACL and passwords: a publish refused under MQTT
/// 5 shows "RC:135" in mosquitto_pub -d and never reaches mosquitto_sub, which gets the
/// allowed one after it; a subscription that can read nothing is denied; a wrong
/// password is refused (mosquitto_pub exits with the CONNACK's reason, 0x86).
#[test]
fn mosquitto_clients_meet_the_acl_and_the_passwords() {
    if !have_mosquitto_clients() {
        return;
    }
    let users = Users::new(&[("alice", PASSWORD), ("watcher", WATCHER_PASSWORD)]);
    let broker = Broker::embedded_with(&strs(&users.flags(Some(ACL))));
    let m = |tool: &str, login: &[&str], args: &[&str]| {
        mosquitto_client(tool, broker.port, &[login, args].concat())
    };
    let alice = ["-u", "alice", "-P", PASSWORD, "-V", "mqttv5"];
    let watcher = ["-u", "watcher", "-P", WATCHER_PASSWORD, "-V", "5"];
    // A retained probe says when mosquitto_sub has subscribed (its -d output stays in
    // its buffer until it exits).
    let probe = ["-r", "-t", "chat/ok/probe", "-m", "probe"];
    run(&mut m("mosquitto_pub", &alice, &probe), b"").expect_code(0);
    let sub = ["-v", "-C", "2", "-W", "60", "-t", "chat/#"];
    let sub = Proc::spawn(&mut m("mosquitto_sub", &watcher, &sub));
    sub.wait_stdout("chat/ok/probe probe\n");
    let qos1 = |topic: &str, text: &str| {
        let args = ["-q", "1", "-d", "-t", topic, "-m", text];
        run(&mut m("mosquitto_pub", &alice, &args), b"").stdout_str()
    };
    let denied = qos1("chat/no/x", "no");
    assert!(
        denied.contains("received PUBACK (Mid: 1, RC:135)"),
        "{denied}"
    );
    let allowed = qos1("chat/ok/x", "yes");
    assert!(
        allowed.contains("received PUBACK (Mid: 1, RC:"),
        "{allowed}"
    );
    assert!(!allowed.contains("RC:135"), "{allowed}");
    let got = sub.finish();
    let want = ["chat/ok/probe probe", "chat/ok/x yes"];
    assert_eq!(got.expect_code(0).lines(), want, "{got:?}");

    let nothing = run(
        &mut m("mosquitto_sub", &alice, &["-t", "chat/no/#", "-W", "30"]),
        b"",
    );
    let denied = "All subscription requests were denied";
    assert!(nothing.stderr.contains(denied), "{nothing:?}");
    let wrong = ["-u", "alice", "-P", WRONG_PASSWORD, "-V", "5"];
    let wrong = run(
        &mut m("mosquitto_pub", &wrong, &["-t", "t", "-m", "x"]),
        b"",
    );
    assert!(
        wrong
            .stderr
            .contains("Connection error: Bad User Name or Password"),
        "{wrong:?}"
    );
    assert_eq!(wrong.code(), Some(0x86), "{wrong:?}");
}

/// A file that gives each user their rooms and the presence of those rooms only: bob's
/// watcher of rooms/# sees alice join the shared room, not her own room (which she
/// joined first, as her own watcher saw); --who lists her where bob may look, and is
/// refused where he may not.
#[test]
fn acl_gives_each_user_their_rooms_and_their_presence() {
    let mut acl = String::new();
    for user in ["alice", "bob"] {
        acl += &format!(
            "user {user}\ntopic readwrite rooms/{user}/#\n\
             topic readwrite mqttchat-presence/rooms/{user}/#\n\
             topic readwrite rooms/shared\ntopic readwrite mqttchat-presence/rooms/shared/#\n\n"
        );
    }
    let users = Users::new(&[("alice", PASSWORD), ("bob", BOB_PASSWORD)]);
    let broker = Broker::embedded_with(&strs(&users.flags(Some(&acl))));
    let alice = users.login("alice", PASSWORD);
    let bob = users.login("bob", BOB_PASSWORD);
    let url = broker.url();
    let watch_as = |login: &[String], room: &str| {
        watch(client(
            "chat-sub",
            &url,
            &strs(&with(login, &["--json", room])),
        ))
    };
    let bobs_view = watch_as(&bob, "rooms/#");
    let alices_view = watch_as(&alice, "rooms/alice/lobby");
    let member = |room: &str| {
        let args = with(&alice, &["--nick", "alice", room]);
        Proc::spawn(&mut client("chat-pub", &url, &strs(&args)))
    };
    let _lobby = member("rooms/alice/lobby");
    let joined = wait_shorts(&alices_view, 1);
    assert_eq!(joined, [ev("join", "alice", "rooms/alice/lobby")]);
    let mut shared = member("rooms/shared");
    assert_eq!(
        wait_shorts(&bobs_view, 1),
        [ev("join", "alice", "rooms/shared")]
    );
    shared.write(b"hello bob\n");
    assert_eq!(wait_shorts(&bobs_view, 2)[1], "alice: hello bob");

    let who = |login: &[String], room: &str| {
        let args = with(
            login,
            &["--who", room, "--connect-timeout", LONG_CONNECT_TIMEOUT],
        );
        run(&mut client("chat-sub", &url, &strs(&args)), b"")
    };
    let lobby = who(&alice, "rooms/alice/lobby");
    assert_eq!(lobby.expect_code(0).stdout_str(), "alice\n");
    assert_eq!(
        who(&bob, "rooms/shared").expect_code(0).stdout_str(),
        "alice\n"
    );
    let refused = who(&bob, "rooms/alice/lobby");
    refused.expect_code(4);
    let filter = "refused the subscription to 'mqttchat-presence/rooms/alice/lobby/+'";
    assert!(refused.stderr.contains(filter), "{}", refused.stderr);
}

// ---------------------------------------------------------------------------------------
// 4. TLS
// ---------------------------------------------------------------------------------------

/// `--tls-listen` serves mqtts:// beside the plain listener: with --cafile both tools
/// trust it, and with another CA they refuse it at once (exit 3).
#[test]
fn tls_listener_round_trip() {
    let pki = Pki::new();
    let broker = chat_broker_with_cert(&pki, &["--tls-listen", "127.0.0.1:0"]);
    let url = broker.url_of("mqtts");
    round_trip(&url, &with(&[], &["--cafile", &s(&pki.ca)]));
    for (name, cmd) in each_tool(&url, &["--cafile", &s(&pki.other_ca)]) {
        fails_fast(name, cmd, 3, &["unknown certificate authority"]);
    }
}

/// With `--cafile CA --require-certificate`, a client with a certificate CA signed gets
/// in; one without a certificate, or with an expired one, does not (exit 3, at once,
/// saying which). With `--cafile`
/// alone a certificate is optional, but must be valid if presented.
#[test]
fn mutual_tls_requires_a_client_certificate() {
    let pki = Pki::new();
    let ca = s(&pki.ca);
    let (cert, key) = (s(&pki.client_cert), s(&pki.client_key));
    let (old_cert, old_key) = (s(&pki.expired_client_cert), s(&pki.expired_client_key));
    let with_cert = with(&[], &["--cafile", &ca, "--cert", &cert, "--key", &key]);
    let expired = ["--cafile", &ca, "--cert", &old_cert, "--key", &old_key];
    let broker = chat_broker_with_cert(&pki, &strs(&mutual_tls(&ca)));
    let url = broker.url_of("mqtts");
    let (no_cert, old) = (
        "the broker requires a client certificate",
        "rejected the client certificate: it has expired",
    );
    round_trip(&url, &with_cert);
    tls_refused(&url, &["--cafile", &ca], no_cert);
    tls_refused(&url, &expired, old);
    let optional = chat_broker_with_cert(&pki, &["--tls-listen", "127.0.0.1:0", "--cafile", &ca]);
    let url = optional.url_of("mqtts");
    let sub = client("chat-sub", &url, &["--cafile", &ca]);
    one_message(sub, client("chat-pub", &url, &strs(&with_cert)));
    tls_refused(&url, &expired, old);
}

/// `--use-identity-as-username`: the certificate's common name is the username the ACL
/// knows. alice's certificate (CN=alice) may write rooms/alice/x, not rooms/bob/x, even
/// with `-u bob`; no password is asked of her though the broker has a password file
/// without her; a certificate without a common name is refused.
#[test]
fn identity_as_username_gives_the_certificate_its_acl() {
    let pki = Pki::new();
    let ca = s(&pki.ca);
    let acl = "user alice\ntopic readwrite rooms/alice/#\n\nuser watcher\ntopic read rooms/#\n";
    let users = Users::new(&[("bob", BOB_PASSWORD)]);
    let flags = [users.flags(Some(acl)), mutual_tls(&ca)].concat();
    let flags = with(&flags, &["--use-identity-as-username"]);
    let broker = chat_broker_with_cert(&pki, &strs(&flags));
    let url = broker.url_of("mqtts");
    let cert_args = |(cert, key): (std::path::PathBuf, std::path::PathBuf)| {
        with(
            &[],
            &["--cafile", &ca, "--cert", &s(&cert), "--key", &s(&key)],
        )
    };
    let alice = cert_args((pki.client_cert.clone(), pki.client_key.clone()));
    let watcher = cert_args(pki.client_for(Some("watcher")));
    let watcher = with(
        &watcher,
        &["-v", "-n", "1", "-F", "{topic} {text}", "rooms/#"],
    );
    let watcher = Proc::spawn(&mut client("chat-sub", &url, &strs(&watcher)));
    watcher.wait_stderr("subscribed to");
    let input = json_input(&[("rooms/bob/x", "as bob"), ("rooms/alice/x", "as alice")]);
    let args = with(&alice, &["-u", "bob", "-V", "5", "--json"]);
    let published = run(&mut client("chat-pub", &url, &strs(&args)), &input);
    published.expect_code(4);
    let refused = "line 1: refused by the broker: not authorized (0x87)";
    assert!(published.stderr.contains(refused), "{}", published.stderr);
    let received = watcher.finish();
    received.expect_code(0);
    assert_eq!(received.lines(), ["rooms/alice/x as alice"]);
    login_refused(&url, &cert_args(pki.client_for(None)), "not authorized");
}

/// mosquitto_sub and mosquitto_pub with --cafile, --cert and --key talk through
/// chat-broker's TLS listener, which requires their certificate; without one,
/// mosquitto_pub fails.
#[test]
fn mosquitto_clients_over_the_tls_listener() {
    if !have_mosquitto_clients() {
        return;
    }
    let pki = Pki::new();
    let ca = s(&pki.ca);
    let broker = chat_broker_with_cert(&pki, &strs(&mutual_tls(&ca)));
    let url = broker.url_of("mqtts");
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let (cert, key) = (s(&pki.client_cert), s(&pki.client_key));
    let tls = [
        "--cafile", &ca, "--cert", &cert, "--key", &key, "-t", "tls/t",
    ];
    let args = [&tls[..], &["-r", "-m", "over tls"]].concat();
    run(&mut mosquitto_client("mosquitto_pub", port, &args), b"").expect_code(0);
    let args = [&tls[..], &["-C", "1", "-W", "60"]].concat();
    let got = run(&mut mosquitto_client("mosquitto_sub", port, &args), b"");
    assert_eq!(got.expect_code(0).stdout_str(), "over tls\n");
    let args = ["--cafile", &ca, "-t", "tls/t", "-m", "x"];
    let out = run(&mut mosquitto_client("mosquitto_pub", port, &args), b"");
    assert!(!out.status.success(), "{out:?}");
}

// ---------------------------------------------------------------------------------------
// 5. WebSocket
// ---------------------------------------------------------------------------------------

/// `--ws-listen` serves ws:// on any path.
#[test]
fn websocket_listener_round_trip() {
    let broker = Broker::embedded_with(&["--ws-listen", "127.0.0.1:0"]);
    for path in ["", "/mqtt", "/chat/ws"] {
        round_trip(&format!("{}{path}", broker.url_of("ws")), &[]);
    }
}

/// The status line of a WebSocket handshake to `url` (ws://HOST:PORT) that says it comes
/// from the web page `origin` (None: from no page, as the tools).
fn ws_handshake_status(url: &str, origin: Option<&str>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let addr = url.trim_start_matches("ws://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request = format!(
        "GET /mqtt HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: mqtt\r\n{origin}\r\n"
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("read");
    line.trim_end().to_string()
}

/// A web page (a handshake with an Origin) may not use a broker that lets anyone in,
/// unless --ws-origin lists its origin; with a password file it may (it must log in).
#[test]
fn web_pages_need_ws_origin_where_no_password_is_needed() {
    let open = Broker::embedded_with(&["--ws-listen", "127.0.0.1:0"]);
    let url = open.url_of("ws");
    assert!(ws_handshake_status(&url, None).contains(" 101 "));
    let page = Some("http://evil.example");
    assert!(ws_handshake_status(&url, page).contains(" 403 "));
    let listed = [
        "--ws-listen",
        "127.0.0.1:0",
        "--ws-origin",
        "http://localhost:8080",
    ];
    let listed = Broker::embedded_with(&listed);
    let url = listed.url_of("ws");
    assert!(ws_handshake_status(&url, Some("http://localhost:8080")).contains(" 101 "));
    assert!(ws_handshake_status(&url, page).contains(" 403 "));
    let users = Users::new(&[("alice", PASSWORD)]);
    let file = users.flags(None);
    let flags = [&strs(&file)[..], &["--ws-listen", "127.0.0.1:0"]].concat();
    let guarded = Broker::embedded_with(&flags);
    assert!(ws_handshake_status(&guarded.url_of("ws"), page).contains(" 101 "));
}

/// With a certificate it is wss://, trusted with --cafile, refused with another CA.
#[test]
fn secure_websocket_listener_round_trip() {
    let pki = Pki::new();
    let broker = chat_broker_with_cert(&pki, &["--ws-listen", "127.0.0.1:0"]);
    let url = broker.url_of("wss");
    round_trip(&url, &with(&[], &["--cafile", &s(&pki.ca)]));
    for (name, cmd) in each_tool(&url, &["--cafile", &s(&pki.other_ca)]) {
        fails_fast(name, cmd, 3, &["unknown certificate authority"]);
    }
}

// ---------------------------------------------------------------------------------------
// 6. Several listeners, one engine
// ---------------------------------------------------------------------------------------

/// Every listener (two plain, two TLS, one wss) serves one engine: a retained message
/// published over plain TCP is received over wss, a message published over wss reaches
/// a TLS subscriber, one over TLS reaches the second plain listener's subscriber.
#[test]
fn every_listener_serves_one_engine() {
    let pki = Pki::new();
    let flags = ["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"];
    let more = ["--tls-listen", "127.0.0.1:0", "--ws-listen", "127.0.0.1:0"];
    let broker = chat_broker_with_cert(&pki, &[&flags[..], &more].concat());
    let log = broker.log();
    let urls = listener_urls(&log);
    let schemes: Vec<&str> = urls.iter().filter_map(|u| u.split(':').next()).collect();
    assert_eq!(schemes, ["mqtt", "mqtt", "mqtts", "mqtts", "wss"], "{log}");
    let ca = ["--cafile", &s(&pki.ca)];
    let args = |i: usize| -> &[&str] { if i < 2 { &[] } else { &ca } };
    let topic = unique_topic("listeners");
    run(
        &mut client("chat-pub", &urls[0], &["-r", "-m", "kept", &topic]),
        b"",
    )
    .expect_code(0);
    let mut reader = client("chat-sub", &urls[4], &ca);
    let retained = run(reader.args(["-n", "1", "-F", "{text}", &topic]), b"");
    assert_eq!(retained.expect_code(0).stdout_str(), "kept\n");
    for (from, to) in [(4, 2), (3, 1)] {
        let sub = client("chat-sub", &urls[to], args(to));
        one_message(sub, client("chat-pub", &urls[from], args(from)));
    }
}

// ---------------------------------------------------------------------------------------
// 7. No password in any output
// ---------------------------------------------------------------------------------------

/// No password appears in the broker's stderr at -vvv, nor in the clients' output at
/// -vvv, on success or failure, over mqtt, mqtts and wss; nor in the broker's with
/// RUST_LOG=trace, which turns on every dependency's logs (a WebSocket library logs
/// every frame, and the first is CONNECT, password included).
#[test]
fn no_password_in_any_output() {
    let pki = Pki::new();
    let ca = s(&pki.ca);
    let users = Users::new(&[("alice", PASSWORD)]);
    let listeners = [
        "-vv",
        "--tls-listen",
        "127.0.0.1:0",
        "--ws-listen",
        "127.0.0.1:0",
    ];
    let broker = chat_broker_with_cert(&pki, &strs(&with(&users.flags(None), &listeners)));
    let urls = [broker.url(), broker.url_of("mqtts"), broker.url_of("wss")];
    let mut found = logins(&users, &urls, &ca, broker.port);
    found.extend(leaks("chat-broker -vvv", &broker.log()));

    let mut traced = chat_broker(&["--listen", "127.0.0.1:0", "--ws-listen", "127.0.0.1:0"]);
    traced.args(users.flags(None)).env("RUST_LOG", "trace");
    let traced = Proc::spawn(&mut traced);
    traced.wait_stderr(LISTENING);
    let port = port_of(&traced.stderr(), "127.0.0.1");
    found.extend(logins(&users, &listener_urls(&traced.stderr()), &ca, port));
    found.extend(leaks("chat-broker RUST_LOG=trace", &traced.stderr()));
    assert!(
        found.is_empty(),
        "passwords in the output:\n{}",
        found.join("\n")
    );
}

//! Authorization: what mosquitto's ACLs (and its dynamic-security plugin) refuse, and
//! what the tools make of a refused publish (per line under MQTT 5, silently dropped
//! under 3.1.1) and a refused subscription (exit 4, naming the filter).

use crate::common::*;

/// alice may publish to chat/ok/# only; watcher reads all of chat/#.
pub(crate) const ACL: &str =
    "user alice\ntopic readwrite chat/ok/#\n\nuser watcher\ntopic read chat/#\n";

/// Three lines for chat-pub --json: allowed, refused (chat/no/…), allowed.
pub(crate) const THREE_LINES: &[u8] = b"{\"topic\":\"chat/ok/a\",\"text\":\"one\"}\n\
    {\"topic\":\"chat/no/b\",\"text\":\"two\"}\n\
    {\"topic\":\"chat/ok/c\",\"text\":\"three\"}\n";

/// Runs alice's chat-pub --json on [`THREE_LINES`] at MQTT `version` while watcher
/// (allowed to read everything under chat/) listens; returns chat-pub's output and
/// what watcher received. Line 2 comes before line 3 on one connection, so when
/// watcher has line 3 it would have had line 2 too, had the broker accepted it.
fn publish_three_lines(
    broker: &Broker,
    accounts: &Accounts,
    version: &str,
) -> (Finished, Vec<String>) {
    let watcher_pw = accounts.password_file("watcher", WATCHER_PASSWORD);
    let alice_pw = accounts.password_file("alice", PASSWORD);
    let mut watcher = client(
        "chat-sub",
        &broker.url(),
        &["-u", "watcher", "--password-file", &watcher_pw],
    );
    watcher.args(["-v", "-n", "2", "-F", "{topic} {text}", "chat/#"]);
    let watcher = Proc::spawn(&mut watcher);
    watcher.wait_stderr("subscribed to");
    let mut alice = client(
        "chat-pub",
        &broker.url(),
        &[
            "-V",
            version,
            "-u",
            "alice",
            "--password-file",
            &alice_pw,
            "--json",
        ],
    );
    let published = run(&mut alice, THREE_LINES);
    let received = watcher.finish();
    received.expect_code(0);
    (published, received.lines())
}

/// Under MQTT 5 mosquitto answers a publish its ACL refuses with PUBACK reason 0x87:
/// chat-pub reports that line, delivers the others, and exits 4.
#[test]
fn refused_publish_is_reported_per_line_under_mqtt5() {
    if !have_mosquitto() {
        return;
    }
    let accounts = Accounts::new(Some(ACL));
    let broker = auth_broker(&accounts);
    let (published, received) = publish_three_lines(&broker, &accounts, "5");
    published.expect_code(4);
    assert!(
        published
            .stderr
            .contains("line 2: refused by the broker: not authorized (0x87)"),
        "{}",
        published.stderr
    );
    for line in ["line 1:", "line 3:"] {
        assert!(!published.stderr.contains(line), "{}", published.stderr);
    }
    assert_eq!(received, ["chat/ok/a one", "chat/ok/c three"]);
}

/// The limitation the man page states: under MQTT 3.1.1 there is no way to refuse a
/// publish (PUBACK has no reason code), so mosquitto acknowledges it and drops it.
/// chat-pub cannot know, and exits 0; the line is lost all the same.
#[test]
fn refused_publish_is_dropped_silently_under_mqtt311() {
    if !have_mosquitto() {
        return;
    }
    let accounts = Accounts::new(Some(ACL));
    let broker = auth_broker(&accounts);
    let (published, received) = publish_three_lines(&broker, &accounts, "3");
    published.expect_code(0);
    assert!(
        !published.stderr.contains("refused"),
        "{}",
        published.stderr
    );
    assert_eq!(
        received,
        ["chat/ok/a one", "chat/ok/c three"],
        "line 2 was dropped"
    );
}

/// A SUBACK that refuses a filter ends chat-sub at once with exit 4, naming the filter
/// (MQTT 5: 0x87 not authorized; 3.1.1: 0x80 failure); allowed filters still work.
#[test]
fn refused_subscription_exits_4_naming_the_filter() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("dynsec");
    let Some(broker) = dynsec_broker(&dir, PASSWORD) else {
        return;
    };
    let pw = readable_file(&dir.path().join("pw"), PASSWORD);
    let login = ["-u", "alice", "--password-file", &s(&pw)];
    let cases: [(&str, &[&str], &str, &str); 4] = [
        ("5", &["chat/no/x"], "chat/no/x", "not authorized (0x87)"),
        (
            "5",
            &["chat/ok/x", "chat/no/#"],
            "chat/no/#",
            "not authorized (0x87)",
        ),
        ("3", &["chat/no/x"], "chat/no/x", "(0x80)"),
        ("3", &["chat/ok/x", "chat/no/#"], "chat/no/#", "(0x80)"),
    ];
    for (version, filters, refused, reason) in cases {
        let mut cmd = client("chat-sub", &broker.url(), &login);
        cmd.args(["-V", version]).args(filters);
        fails_fast(
            &format!("chat-sub -V {version} {filters:?}"),
            cmd,
            4,
            &[&format!("refused the subscription to '{refused}'"), reason],
        );
    }
    // The allowed filter alone works: this broker is not refusing everything.
    let mut sub = client("chat-sub", &broker.url(), &login);
    sub.args(["-W", "0.2", "chat/ok/x"]);
    run(&mut sub, b"").expect_code(0);
}

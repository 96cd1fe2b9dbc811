//! Round trips through a real mosquitto: what chat-pub reads is what chat-sub prints,
//! in order, at once, under MQTT 3.1.1 and 5.

use crate::common::*;

/// Lines with the characters that break naive JSON or line handling.
const TRICKY: [&str; 5] = [
    "hello",
    "quotes \" and backslash \\ and tab\there",
    "ünïcödé ✓ 🎉",
    "{\"looks\":\"like json\"}",
    "  leading and trailing spaces  ",
];

fn round_trip(broker: &Broker, version: &str) {
    let topic = unique_topic("roundtrip");
    let sub = Proc::subscriber(broker, &["-V", version, "--json", "-n", "5", &topic]);
    let input = TRICKY.join("\n") + "\n";
    run(
        &mut chat_pub(broker, &["-V", version, "--nick", "alice", &topic]),
        input.as_bytes(),
    )
    .expect_code(0);
    let out = sub.finish();
    out.expect_code(0);
    let msgs = json_lines(&out.lines());
    assert_eq!(msgs.len(), 5, "{}", out.stdout_str());
    for (m, want) in msgs.iter().zip(TRICKY) {
        assert_eq!(m["text"], want);
        assert_eq!(m["from"], "alice");
        assert_eq!(m["topic"], topic.as_str());
        assert_eq!(m["qos"], 1);
        assert_eq!(m["retain"], false);
        let id = m["id"].as_str().expect("id is a string");
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        for key in ["ts", "received"] {
            let ts = m[key].as_str().expect("timestamp string");
            assert!(ts.len() == 24 && ts.ends_with('Z'), "{key}: {ts}");
        }
    }
}

each_broker! {
    fn round_trip_mqtt5(broker) {
        round_trip(broker, "5");
    }

    fn round_trip_mqtt311(broker) {
        round_trip(broker, "3");
    }
}

each_broker! {
    fn mixed_versions_interoperate(broker) {
        let topic = unique_topic("mixed");
        let sub = Proc::subscriber(
            broker,
            &["-V", "3", "-F", "{from}|{text}", "-n", "1", &topic],
        );
        run(
            &mut chat_pub(
                broker,
                &["-V", "5", "--nick", "v5", "-m", "across", &topic],
            ),
            b"",
        )
        .expect_code(0);
        assert_eq!(sub.finish().expect_code(0).lines(), ["v5|across"]);
    }
}

each_broker! {
    fn each_line_is_published_as_soon_as_it_is_read(broker) {
        let topic = unique_topic("interactive");
        let sub = Proc::subscriber(broker, &["-F", "{text}", &topic]);
        let mut publisher = Proc::spawn(&mut chat_pub(broker, &[&topic]));
        for (i, word) in ["one", "two", "three"].iter().enumerate() {
            publisher.write(format!("{word}\n").as_bytes());
            // The line arrives while chat-pub is still reading stdin (no EOF yet).
            let lines = sub.wait_lines(i + 1);
            assert_eq!(lines[i], *word);
            assert!(!publisher.exited(), "chat-pub exited before EOF");
        }
        publisher.finish().expect_code(0);
    }
}

each_broker! {
    fn stdin_rules(broker) {
        let topic = unique_topic("stdin");
        let sub = Proc::subscriber(broker, &["-F", "[{text}]", "-n", "4", &topic]);
        // CRLF ends are stripped, empty lines skipped, and the last line needs no newline.
        run(
            &mut chat_pub(broker, &[&topic]),
            b"crlf\r\n\n\r\n  \nno newline at end",
        )
        .expect_code(0);
        // The third message is "  " (not empty); the fourth comes from the next run.
        run(&mut chat_pub(broker, &["--keep-empty", &topic]), b"\n").expect_code(0);
        assert_eq!(
            sub.finish().expect_code(0).lines(),
            ["[crlf]", "[  ]", "[no newline at end]", "[]"]
        );
    }
}

each_broker! {
    fn empty_input_sends_nothing_and_succeeds(broker) {
        let topic = unique_topic("empty");
        let sub = Proc::subscriber(broker, &["-F", "{text}", &topic]);
        run(&mut chat_pub(broker, &[&topic]), b"").expect_code(0);
        run(&mut chat_pub(broker, &[&topic]), b"\n\n\n").expect_code(0);
        // A marker published afterwards is the first thing the subscriber sees.
        run(&mut chat_pub(broker, &["-m", "marker", &topic]), b"").expect_code(0);
        assert_eq!(sub.wait_lines(1), ["marker"]);
    }
}

each_broker! {
    fn messages_from_arguments_do_not_read_stdin(broker) {
        let topic = unique_topic("args");
        let sub = Proc::subscriber(broker, &["-F", "<{text}>", "-n", "3", &topic]);
        // stdin is left open: chat-pub must not wait for it.
        let mut p = Proc::spawn(&mut chat_pub(
            broker,
            &["-m", "first", "-m", "", "-m", "third", &topic],
        ));
        p.write(b"not this\n");
        let f = p.finish();
        f.expect_code(0);
        assert_eq!(
            sub.finish().expect_code(0).lines(),
            ["<first>", "<>", "<third>"]
        );
    }
}

each_broker! {
    fn nick_comes_from_flag_env_user_or_anonymous(broker) {
        let topic = unique_topic("nick");
        let sub = Proc::subscriber(broker, &["-F", "{from}", "-n", "5", &topic]);
        let send = |cmd: &mut std::process::Command| run(cmd, b"x\n").expect_code(0).code();
        send(chat_pub(broker, &["--nick", "flag", &topic]).env("CHAT_NICK", "env"));
        send(chat_pub(broker, &[&topic]).env("CHAT_NICK", "env"));
        send(chat_pub(broker, &[&topic]).env("USER", "user"));
        send(chat_pub(broker, &[&topic]).env_remove("USER"));
        // An empty nick is no nick: the next source applies.
        send(
            chat_pub(broker, &[&topic])
                .env("CHAT_NICK", "")
                .env("USER", "fallback"),
        );
        assert_eq!(
            sub.finish().expect_code(0).lines(),
            ["flag", "env", "user", "anonymous", "fallback"]
        );
    }
}

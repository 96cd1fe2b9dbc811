//! Other MQTT clients as peers: mosquitto_pub's raw payloads show up in chat-sub,
//! mosquitto_sub sees chat-pub's envelopes as JSON, --raw is byte-exact both ways, and a
//! chat-sub --json | chat-pub --json relay between two brokers keeps every field.
//!
//! Each test runs against both test brokers (`each_broker!`) and needs the real
//! mosquitto_pub and mosquitto_sub: without them it is skipped (unless CI requires them).

use std::process::{Command, Stdio};

use crate::common::*;

/// `mosquitto_pub -p PORT -t TOPIC ARGS…`, run to success.
fn mosquitto_pub(broker: &Broker, topic: &str, args: &[&str], stdin: &[u8]) {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &broker.port.to_string(),
        "-t",
        topic,
    ])
    .args(args);
    run(&mut cmd, stdin).expect_code(0);
}

fn decode_base64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
}

each_broker! {
    fn mosquitto_pub_payloads_are_raw_messages(broker) {
        if !have_mosquitto_clients() {
            return;
        }
        let topic = unique_topic("rawin");
        let sub = Proc::subscriber(broker, &["--json", "-n", "3", &topic]);
        mosquitto_pub(broker, &topic, &["-m", "hi from mosquitto"], b"");
        // Not UTF-8: the exact bytes come back in payload_base64.
        let binary = b"\x00\xff\xfe bin \x1b[0m\n";
        mosquitto_pub(broker, &topic, &["-s"], binary);
        // JSON that is not an envelope (no string "text") is raw too.
        mosquitto_pub(broker, &topic, &["-V", "311", "-m", "{\"temp\":21.5}"], b"");
        let out = sub.finish();
        let msgs = json_lines(&out.expect_code(0).lines());
        assert_eq!(msgs[0]["text"], "hi from mosquitto");
        for m in &msgs {
            for key in ["from", "ts", "id"] {
                assert!(m[key].is_null(), "{key} should be null: {m}");
            }
        }
        assert!(msgs[0].get("payload_base64").is_none(), "{}", msgs[0]);
        assert_eq!(
            decode_base64(msgs[1]["payload_base64"].as_str().unwrap()),
            binary
        );
        assert!(msgs[1]["text"].as_str().unwrap().contains('\u{fffd}'));
        assert_eq!(msgs[2]["text"], "{\"temp\":21.5}");
    }
}

each_broker! {
    fn mosquitto_sub_receives_envelopes_as_json(broker) {
        if !have_mosquitto_clients() {
            return;
        }
        let topic = unique_topic("envout");
        // Readiness without our own tool: a retained probe mosquitto_sub prints first.
        mosquitto_pub(broker, &topic, &["-r", "-m", "probe"], b"");
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args(["-p", &broker.port.to_string(), "-t", &topic, "-C", "2"]);
        let sub = Proc::spawn(&mut cmd);
        assert_eq!(sub.wait_lines(1), ["probe"]);
        run(
            &mut chat_pub(
                broker,
                &["--nick", "bob", "-m", "to mosquitto \"q\"", &topic],
            ),
            b"",
        )
        .expect_code(0);
        let out = sub.finish();
        let lines = out.expect_code(0).lines();
        let env: serde_json::Value = serde_json::from_str(&lines[1]).expect("envelope is JSON");
        assert_eq!(env["text"], "to mosquitto \"q\"");
        assert_eq!(env["from"], "bob");
        let keys: Vec<&String> = env.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4, "{env}");
        mosquitto_pub(broker, &topic, &["-r", "-n"], b""); // clear the probe
    }
}

each_broker! {
    fn raw_mode_is_byte_exact_both_ways(broker) {
        if !have_mosquitto_clients() {
            return;
        }
        let topic = unique_topic("rawexact");
        let sub = Proc::subscriber(broker, &["--raw", "-n", "3", &topic]);
        // Lines with CR, NUL, invalid UTF-8 and ESC; --raw keeps the trailing \r.
        let input: &[u8] = b"crlf kept\r\n\x00nul\xff\xfe\x1b[31m\n\nlast";
        run(
            &mut chat_pub(broker, &["--raw", "--keep-empty", &topic]),
            input,
        )
        .expect_code(0);
        let out = sub.finish();
        assert_eq!(
            out.expect_code(0).stdout,
            b"crlf kept\r\n\x00nul\xff\xfe\x1b[31m\n\n".to_vec(),
            "{:?}",
            out.stdout_str()
        );
        // mosquitto_sub sees the same bytes.
        mosquitto_pub(broker, &topic, &["-r", "-m", "probe"], b"");
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args([
            "-p",
            &broker.port.to_string(),
            "-t",
            &topic,
            "-C",
            "2",
            "-N",
        ]);
        let sub = Proc::spawn(&mut cmd);
        sub.wait_bytes(5);
        run(&mut chat_pub(broker, &["--raw", &topic]), b"\x01\xff\r\n").expect_code(0);
        assert_eq!(
            sub.finish().expect_code(0).stdout,
            b"probe\x01\xff\r".to_vec()
        );
        mosquitto_pub(broker, &topic, &["-r", "-n"], b"");
    }
}

each_broker! {
    /// chat-sub --json on broker A piped into chat-pub --json on broker B: topic, id, from,
    /// ts and text arrive unchanged, raw messages stay raw and binary stays exact.
    fn relay_between_two_brokers_keeps_identity(broker) {
        if !have_mosquitto_clients() {
            return;
        }
        let a = broker;
        let b = &broker.another(); // the far side of the relay, of the same kind
        let base = unique_topic("relay");
        let filter = format!("{base}/#");
        let direct = Proc::subscriber(a, &["--json", "-n", "4", &filter]);
        let far = Proc::subscriber(b, &["--json", "-n", "4", &filter]);

        let mut relay_sub = chat_sub(a, &["-v", "--json", "-n", "4", &filter]);
        let mut relay_sub = relay_sub
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let relay_out = relay_sub.stdout.take().unwrap();
        let relay_pub =
            Proc::spawn_with_stdin(&mut chat_pub(b, &["--json"]), Stdio::from(relay_out));
        // Wait for the relay's subscription before publishing on A.
        let mut err = String::new();
        let mut stderr = std::io::BufReader::new(relay_sub.stderr.take().unwrap());
        while !err.contains("subscribed to") {
            let n = std::io::BufRead::read_line(&mut stderr, &mut err).unwrap();
            assert!(n > 0, "relay chat-sub ended: {err}");
        }

        run(
            &mut chat_pub(a, &["--nick", "alice", &format!("{base}/x")]),
            b"one\ntwo \xc3\xa9\n",
        )
        .expect_code(0);
        mosquitto_pub(a, &format!("{base}/y"), &["-m", "raw text"], b"");
        mosquitto_pub(a, &format!("{base}/z"), &["-s"], b"\xff\x00bin");

        let want = json_lines(&direct.finish().expect_code(0).lines());
        let got = json_lines(&far.finish().expect_code(0).lines());
        assert!(relay_sub.wait().unwrap().success());
        relay_pub.finish().expect_code(0);
        assert_eq!(got.len(), 4);
        for (g, w) in got.iter().zip(&want) {
            for key in ["topic", "id", "from", "ts", "text", "payload_base64"] {
                assert_eq!(g.get(key), w.get(key), "{key}: relayed {g} vs direct {w}");
            }
        }
        assert!(got[2]["from"].is_null() && got[3]["from"].is_null());
    }
}

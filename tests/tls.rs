//! Secure transports and identities (SPEC §3): TLS with the system trust store or
//! --cafile, client certificates, --insecure, WebSocket (ws:// and wss://), credentials,
//! and what happens when any of them is wrong. mosquitto only: the embedded broker has
//! no TLS, WebSocket or authentication.

mod common;

use common::*;

/// mosquitto with a TLS listener as its main port (`require_certificate` as given).
fn tls_broker(
    pki: &Pki,
    require_cert: bool,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Broker {
    Broker::mosquitto_with(&format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {require_cert}\n",
        s(&pki.ca),
        s(cert),
        s(key)
    ))
}

#[test]
fn tls_round_trip_with_cafile() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let broker = tls_broker(&pki, false, &pki.server_cert, &pki.server_key);
    let topic = unique_topic("tls");
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("mqtts://{host}:{}", broker.port);
        let mut sub = tool("chat-sub");
        sub.args([
            "-b",
            &url,
            "--cafile",
            &s(&pki.ca),
            "-v",
            "-F",
            "{text}",
            "-n",
            "1",
            &topic,
        ]);
        let sub = Proc::spawn(&mut sub);
        sub.wait_stderr("subscribed to");
        let out = run(
            tool("chat-pub").args(["-b", &url, "--cafile", &s(&pki.ca), "-m", "secret", &topic]),
            b"",
        );
        out.expect_code(0);
        assert_eq!(sub.finish().expect_code(0).lines(), ["secret"]);
    }
}

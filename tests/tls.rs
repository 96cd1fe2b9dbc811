//! Secure transports and identities (SPEC §3): TLS with the system trust store or
//! --cafile, client certificates, --insecure, WebSocket (ws:// and wss://), credentials,
//! authorization, and what happens when any of them is wrong. mosquitto only: the
//! embedded broker has no TLS, WebSocket or authentication. Every broker here is
//! configured by its test.
//!
//! Failures that retrying cannot fix must end at once: those tests give
//! `--connect-timeout 30` and require the exit well within 10 s.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A tool's command with `-b URL` and `args`, nothing else.
fn client(name: &str, url: &str, args: &[&str]) -> Command {
    let mut c = tool(name);
    c.arg("-b").arg(url).args(args);
    c
}

/// Both tools, ready to run against `url` with `args` on a topic: chat-pub sends one
/// message with `-m` (so it never waits for stdin), chat-sub just subscribes.
fn each_tool(url: &str, args: &[&str]) -> [(&'static str, Command); 2] {
    ["chat-pub", "chat-sub"].map(|name| {
        let mut c = client(name, url, args);
        if name == "chat-pub" {
            c.args(["-m", "hello"]);
        }
        c.arg("chat/t");
        (name, c)
    })
}

/// Runs `cmd` (with `--connect-timeout 30` added) and requires it to exit with `code`
/// well before that timeout, with every `needle` in its stderr. Returns its output.
#[track_caller]
fn fails_fast(what: &str, mut cmd: Command, code: i32, needles: &[&str]) -> Finished {
    cmd.args(["--connect-timeout", "30"]);
    let started = Instant::now();
    let out = run(&mut cmd, b"");
    let took = started.elapsed();
    assert_eq!(
        out.code(),
        Some(code),
        "{what}: expected exit {code} after {took:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.stdout_str(),
        out.stderr
    );
    assert!(
        took < Duration::from_secs(10),
        "{what}: took {took:?}: it retried instead of ending at once\n--- stderr:\n{}",
        out.stderr
    );
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "{what}: stderr does not say {needle:?}:\n{}",
            out.stderr
        );
    }
    let last = out.stderr.trim_end().lines().last().unwrap_or_default();
    eprintln!("{what}: exit {code} in {took:?}: {last}");
    out
}

/// One message from `publisher` to `subscriber`, both already given `-b` and their
/// options: the subscriber (`-v -n 1 -F {text}` added) is started and waited for until
/// it subscribed, then the publisher sends a unique text with `-m`. Both must exit 0
/// and the text must arrive. Returns (chat-pub's, chat-sub's) output.
#[track_caller]
fn round_trip(mut subscriber: Command, mut publisher: Command) -> (Finished, Finished) {
    let topic = unique_topic("secure");
    let text = format!("text for {topic}");
    subscriber.args(["-v", "-n", "1", "-F", "{text}", &topic]);
    let sub = Proc::spawn(&mut subscriber);
    sub.wait_stderr("subscribed to");
    let published = run(publisher.args(["-m", &text, &topic]), b"");
    published.expect_code(0);
    let received = sub.finish();
    received.expect_code(0);
    assert_eq!(received.lines(), [text], "chat-sub printed");
    (published, received)
}

/// mosquitto with a TLS listener as its main port (`require_certificate` as given).
fn tls_broker(pki: &Pki, require_cert: bool, cert: &Path, key: &Path) -> Broker {
    Broker::mosquitto_with(&format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {require_cert}\n",
        s(&pki.ca),
        s(cert),
        s(key)
    ))
}

fn mqtts(broker: &Broker) -> String {
    format!("mqtts://localhost:{}", broker.port)
}

// ---------------------------------------------------------------------------------------
// 1. TLS: trust, client certificates and their key formats
// ---------------------------------------------------------------------------------------

#[test]
fn tls_round_trip_with_cafile() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let broker = tls_broker(&pki, false, &pki.server_cert, &pki.server_key);
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("mqtts://{host}:{}", broker.port);
        let ca = ["--cafile", &s(&pki.ca)];
        round_trip(client("chat-sub", &url, &ca), client("chat-pub", &url, &ca));
    }
}

/// A list of brokers may mix schemes: the TLS options apply to its TLS URLs. The first
/// (plain) broker is down, so both tools connect to the TLS one, with `--cafile`.
#[test]
fn tls_options_apply_to_the_tls_urls_of_a_mixed_list() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let broker = tls_broker(&pki, false, &pki.server_cert, &pki.server_key);
    let list = format!("mqtt://127.0.0.1:1,{}", mqtts(&broker));
    let ca = ["--cafile", &s(&pki.ca)];
    let (published, _) = round_trip(
        client("chat-sub", &list, &ca),
        client("chat-pub", &list, &ca),
    );
    let connected = format!("connected to {}", mqtts(&broker));
    assert!(
        published.stderr.contains(&connected),
        "{}",
        published.stderr
    );
}

/// Without --cafile the system's trust store decides: our test CA is not in it, so the
/// broker's certificate is refused (exit 3, at once, naming an unknown CA). And the
/// store really is the system's: pointing rustls-native-certs at our CA with
/// SSL_CERT_FILE (which it honours like OpenSSL does) makes the same broker trusted.
#[test]
fn system_trust_store_is_the_default() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let broker = tls_broker(&pki, false, &pki.server_cert, &pki.server_key);
    let url = mqtts(&broker);
    for (name, mut cmd) in each_tool(&url, &[]) {
        cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
        fails_fast(
            &format!("{name} without --cafile"),
            cmd,
            3,
            &["unknown certificate authority", "--cafile"],
        );
    }
    let with_env = |name| {
        let mut c = client(name, &url, &[]);
        c.env("SSL_CERT_FILE", &pki.ca).env_remove("SSL_CERT_DIR");
        c
    };
    round_trip(with_env("chat-sub"), with_env("chat-pub"));
}

/// A broker that requires a client certificate accepts ours, with the key in each PEM
/// form the man page promises: PKCS#8 (`PRIVATE KEY`, rcgen's), SEC1 (`EC PRIVATE KEY`),
/// and PKCS#1 (`RSA PRIVATE KEY`, made with the openssl binary when it is installed).
#[test]
fn client_certificate_with_pkcs8_key() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let pem = std::fs::read_to_string(&pki.client_key).expect("client key");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    client_cert_round_trip(&pki, &pki.client_cert, &pki.client_key);
}

#[test]
fn client_certificate_with_sec1_key() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let pem = std::fs::read_to_string(&pki.client_key).expect("client key");
    let pkcs8 = pem_decode(&pem, "PRIVATE KEY");
    // As OpenSSL writes it (RFC 5915: with the curve), and as the bare PKCS#8 content.
    for (file, with_curve) in [("sec1.key", true), ("sec1-bare.key", false)] {
        let sec1 = pem_encode("EC PRIVATE KEY", &sec1_from_pkcs8(&pkcs8, with_curve));
        if with_curve && installed("openssl") {
            // The DER walker's output is what OpenSSL makes of the same key.
            let out = Command::new("openssl")
                .args(["ec", "-in", &s(&pki.client_key)])
                .output()
                .expect("openssl ec");
            assert_eq!(String::from_utf8_lossy(&out.stdout), sec1, "openssl ec");
        }
        let key = pki.path(file);
        std::fs::write(&key, sec1).expect("write key");
        client_cert_round_trip(&pki, &pki.client_cert, &key);
    }
}

#[test]
fn client_certificate_with_pkcs1_rsa_key() {
    if !have_mosquitto() {
        return;
    }
    if !installed("openssl") {
        eprintln!("skipped: openssl is not installed (it makes the RSA key)");
        return;
    }
    let pki = Pki::new();
    let (key, csr, cert) = (
        pki.path("rsa.key"),
        pki.path("rsa.csr"),
        pki.path("rsa.pem"),
    );
    // Extensions make it an X.509 v3 certificate (rustls refuses v1 ones).
    let ext = pki.path("rsa.ext");
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .expect("write");
    // OpenSSL 3 writes PKCS#8 unless told -traditional; 1.1 knows no -traditional but
    // writes PKCS#1 anyway.
    let traditional = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out", &s(&key), "2048"])
        .output()
        .expect("openssl genrsa");
    if !traditional.status.success() {
        must_run(Command::new("openssl").args(["genrsa", "-out", &s(&key), "2048"]));
    }
    let pem = std::fs::read_to_string(&key).expect("rsa key");
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{pem}");
    must_run(Command::new("openssl").args([
        "req",
        "-new",
        "-key",
        &s(&key),
        "-subj",
        "/CN=rsa-alice",
        "-out",
        &s(&csr),
    ]));
    must_run(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&pki.ca),
        "-CAkey",
        &s(&pki.ca_key),
        "-extfile",
        &s(&ext),
        "-set_serial",
        "7",
        "-days",
        "2",
        "-out",
        &s(&cert),
    ]));
    client_cert_round_trip(&pki, &cert, &key);
}

/// Round trip through a broker with `require_certificate true`, both tools presenting
/// `cert` and `key`.
fn client_cert_round_trip(pki: &Pki, cert: &Path, key: &Path) {
    let broker = tls_broker(pki, true, &pki.server_cert, &pki.server_key);
    let url = mqtts(&broker);
    let args = [
        "--cafile",
        &s(&pki.ca),
        "--cert",
        &s(cert),
        "--key",
        &s(key),
    ];
    round_trip(
        client("chat-sub", &url, &args),
        client("chat-pub", &url, &args),
    );
}

/// The DER inside a PEM block labelled `label`.
fn pem_decode(pem: &str, label: &str) -> Vec<u8> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = pem
        .split_once(&begin)
        .and_then(|(_, rest)| rest.split_once(&end))
        .unwrap_or_else(|| panic!("no {label} block in:\n{pem}"))
        .0;
    let b64: String = body.split_whitespace().collect();
    BASE64.decode(b64).expect("PEM base64")
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// One DER element.
#[derive(Clone, Copy)]
struct Der<'a> {
    tag: u8,
    /// Tag, length and content: the element as it is encoded.
    whole: &'a [u8],
    content: &'a [u8],
}

/// The DER element at the start of `der`, and what follows it.
fn der_next(der: &[u8]) -> (Der<'_>, &[u8]) {
    assert!(der.len() >= 2, "truncated DER");
    let (len, head) = match der[1] {
        n if n < 0x80 => (n as usize, 2),
        n => {
            let bytes = (n & 0x7f) as usize;
            assert!((1..=4).contains(&bytes), "DER length of {bytes} bytes");
            let len = der[2..2 + bytes]
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | b as usize);
            (len, 2 + bytes)
        }
    };
    let end = head + len;
    assert!(der.len() >= end, "truncated DER element");
    let element = Der {
        tag: der[0],
        whole: &der[..end],
        content: &der[head..end],
    };
    (element, &der[end..])
}

/// Every element of a constructed element's content.
fn der_elements(mut content: &[u8]) -> Vec<Der<'_>> {
    let mut all = Vec::new();
    while !content.is_empty() {
        let (element, rest) = der_next(content);
        all.push(element);
        content = rest;
    }
    all
}

fn der_encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// The SEC1 ECPrivateKey inside a PKCS#8 PrivateKeyInfo (RFC 5208: SEQUENCE { version,
/// AlgorithmIdentifier { ecPublicKey, curve }, OCTET STRING { ECPrivateKey } }).
/// `with_curve` adds the `[0]` curve parameters as RFC 5915 and OpenSSL have them (ring's
/// PKCS#8 leaves them out of the inner key, as they are in the AlgorithmIdentifier).
fn sec1_from_pkcs8(pkcs8: &[u8], with_curve: bool) -> Vec<u8> {
    let (info, rest) = der_next(pkcs8);
    assert!(
        info.tag == 0x30 && rest.is_empty(),
        "PKCS#8 is not one SEQUENCE"
    );
    let info = der_elements(info.content);
    assert_eq!(
        info.iter().map(|e| e.tag).collect::<Vec<_>>(),
        [0x02, 0x30, 0x04],
        "PrivateKeyInfo is not version, algorithm, key"
    );
    let algorithm = der_elements(info[1].content);
    assert_eq!(algorithm.len(), 2, "AlgorithmIdentifier without a curve");
    let curve_oid = algorithm[1].whole;
    let (key, _) = der_next(info[2].content);
    assert_eq!(key.tag, 0x30, "ECPrivateKey is not a SEQUENCE");
    let fields = der_elements(key.content);
    assert_eq!(
        fields[0].whole,
        [0x02, 0x01, 0x01],
        "ECPrivateKey version 1"
    );
    assert_eq!(fields[1].tag, 0x04, "ECPrivateKey without its privateKey");
    if !with_curve || fields.iter().any(|f| f.tag == 0xa0) {
        return key.whole.to_vec();
    }
    // version, privateKey, [0] parameters, then the rest ([1] publicKey).
    let mut content = Vec::new();
    content.extend_from_slice(fields[0].whole);
    content.extend_from_slice(fields[1].whole);
    content.extend(der_encode(0xa0, curve_oid));
    for f in &fields[2..] {
        content.extend_from_slice(f.whole);
    }
    der_encode(0x30, &content)
}

// ---------------------------------------------------------------------------------------
// 2. Certificate problems end at once, with exit 3 and a message naming the problem
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_ca_ends_at_once() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let broker = tls_broker(&pki, false, &pki.server_cert, &pki.server_key);
    for (name, cmd) in each_tool(&mqtts(&broker), &["--cafile", &s(&pki.other_ca)]) {
        fails_fast(
            &format!("{name} --cafile other_ca"),
            cmd,
            3,
            &[
                "the broker's certificate does not verify",
                "unknown certificate authority",
            ],
        );
    }
}

#[test]
fn wrong_host_name_ends_at_once() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let broker = tls_broker(&pki, false, &pki.wrong_host_cert, &pki.wrong_host_key);
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("mqtts://{host}:{}", broker.port);
        for (name, cmd) in each_tool(&url, &["--cafile", &s(&pki.ca)]) {
            fails_fast(
                &format!("{name} to {host}, certificate for wrong.example"),
                cmd,
                3,
                &["not valid for this host name"],
            );
        }
    }
}

#[test]
fn expired_client_certificate_ends_at_once() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let broker = tls_broker(&pki, true, &pki.server_cert, &pki.server_key);
    let args = [
        "--cafile",
        &s(&pki.ca),
        "--cert",
        &s(&pki.expired_client_cert),
        "--key",
        &s(&pki.expired_client_key),
    ];
    for (name, cmd) in each_tool(&mqtts(&broker), &args) {
        fails_fast(
            &format!("{name} with an expired client certificate"),
            cmd,
            3,
            &["rejected the client certificate", "expired"],
        );
    }
}

#[test]
fn missing_client_certificate_ends_at_once() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let broker = tls_broker(&pki, true, &pki.server_cert, &pki.server_key);
    for (name, cmd) in each_tool(&mqtts(&broker), &["--cafile", &s(&pki.ca)]) {
        fails_fast(
            &format!("{name} without a client certificate"),
            cmd,
            3,
            &["requires a client certificate", "--cert"],
        );
    }
}

// ---------------------------------------------------------------------------------------
// 3. --insecure
// ---------------------------------------------------------------------------------------

const INSECURE_WARNING: &str = "--insecure: the broker's certificate is not checked";

/// `--insecure` connects to a broker whose certificate is from an unknown CA (no
/// --cafile) and to one whose certificate is for another host, and both tools say so
/// on stderr each run, also at the default verbosity.
#[test]
fn insecure_connects_despite_unknown_ca_and_wrong_host() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let unknown_ca = tls_broker(&pki, false, &pki.server_cert, &pki.server_key);
    let wrong_host = tls_broker(&pki, false, &pki.wrong_host_cert, &pki.wrong_host_key);
    let ca = s(&pki.ca);
    let cases = [
        (mqtts(&unknown_ca), vec!["--insecure"]),
        (mqtts(&wrong_host), vec!["--insecure", "--cafile", &ca]),
    ];
    for (url, args) in &cases {
        let (published, received) = round_trip(
            client("chat-sub", url, args),
            client("chat-pub", url, args), // no -v: the warning is not a verbose log
        );
        for (name, out) in [("chat-pub", &published), ("chat-sub", &received)] {
            assert!(
                out.stderr.contains(INSECURE_WARNING),
                "{name} {args:?} did not warn:\n{}",
                out.stderr
            );
        }
        // chat-sub without -v too: -W ends it with 0 only once it has connected.
        let mut sub = client("chat-sub", url, args);
        sub.args(["-W", "0.2", "chat/t"]);
        let out = run(&mut sub, b"");
        out.expect_code(0);
        assert!(out.stderr.contains(INSECURE_WARNING), "{}", out.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// 4. Usage errors, found before connecting (127.0.0.1:1 would give exit 3)
// ---------------------------------------------------------------------------------------

const NOWHERE: &str = "127.0.0.1:1";

#[test]
fn tls_options_with_a_plain_url_are_usage_errors() {
    let pki = Pki::new();
    let (ca, cert, key) = (s(&pki.ca), s(&pki.client_cert), s(&pki.client_key));
    let options: [&[&str]; 4] = [
        &["--cafile", &ca],
        &["--cert", &cert, "--key", &key],
        &["--insecure"],
        &["--cafile", &ca, "--insecure"],
    ];
    for scheme in ["mqtt", "ws"] {
        let url = format!("{scheme}://{NOWHERE}");
        for args in options {
            for (name, cmd) in each_tool(&url, args) {
                fails_fast(
                    &format!("{name} {url} {args:?}"),
                    cmd,
                    2,
                    &["need an encrypted URL", &format!("not {scheme}://")],
                );
            }
        }
    }
}

#[test]
fn unreadable_files_are_usage_errors() {
    let pki = Pki::new();
    let missing = pki.path("no-such-file.pem");
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").expect("write");
    let (ca, cert, key) = (s(&pki.ca), s(&pki.client_cert), s(&pki.client_key));
    let tls_url = format!("mqtts://{NOWHERE}");
    for bad in [&missing, &garbage] {
        let bad = s(bad);
        let cases: [(&str, Vec<&str>); 3] = [
            ("--cafile", vec!["--cafile", &bad]),
            (
                "--cert",
                vec!["--cafile", &ca, "--cert", &bad, "--key", &key],
            ),
            (
                "--key",
                vec!["--cafile", &ca, "--cert", &cert, "--key", &bad],
            ),
        ];
        for (flag, args) in &cases {
            for (name, cmd) in each_tool(&tls_url, args) {
                fails_fast(
                    &format!("{name} {flag} {bad}"),
                    cmd,
                    2,
                    &[&format!("cannot read {flag} {bad}")],
                );
            }
        }
    }
    // The password file: named in the message, over any transport.
    let args = ["-u", "alice", "--password-file", &s(&missing)];
    for (name, cmd) in each_tool(&format!("mqtt://{NOWHERE}"), &args) {
        fails_fast(
            &format!("{name} --password-file missing"),
            cmd,
            2,
            &[&format!("cannot read --password-file {}", s(&missing))],
        );
    }
}

#[test]
fn cert_and_key_go_together() {
    let pki = Pki::new();
    let url = format!("mqtts://{NOWHERE}");
    let (ca, cert, key) = (s(&pki.ca), s(&pki.client_cert), s(&pki.client_key));
    for args in [
        ["--cafile", &ca, "--cert", &cert],
        ["--cafile", &ca, "--key", &key],
    ] {
        for (name, cmd) in each_tool(&url, &args) {
            fails_fast(
                &format!("{name} {args:?}"),
                cmd,
                2,
                &["--cert and --key go together"],
            );
        }
    }
}

#[test]
fn password_without_user_is_a_usage_error() {
    let dir = TempDir::new("password");
    let file = readable_file(&dir.path().join("pw"), "Pw-9jQ2LmX\n");
    let url = format!("mqtt://{NOWHERE}");
    for (name, mut cmd) in each_tool(&url, &[]) {
        cmd.env("CHAT_PASSWORD", "Pw-9jQ2LmX");
        let out = fails_fast(
            &format!("{name} with CHAT_PASSWORD, no -u"),
            cmd,
            2,
            &["needs a user name"],
        );
        assert!(!out.stderr.contains("Pw-9jQ2LmX"), "{}", out.stderr);
    }
    for (name, cmd) in each_tool(&url, &["--password-file", &s(&file)]) {
        let out = fails_fast(
            &format!("{name} --password-file, no -u"),
            cmd,
            2,
            &["needs a user name"],
        );
        assert!(!out.stderr.contains("Pw-9jQ2LmX"), "{}", out.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// 5. WebSocket
// ---------------------------------------------------------------------------------------

/// mosquitto with a ws:// listener on `ports[1]` and a wss:// one on `ports[2]` (and
/// `extra` config lines after them, which are global options).
fn websocket_broker(pki: &Pki, extra: &str) -> (Broker, Vec<u16>) {
    let (cert, key) = (s(&pki.server_cert), s(&pki.server_key));
    Broker::mosquitto_custom(2, |p| {
        format!(
            "listener {} 127.0.0.1\nprotocol websockets\n\
             listener {} 127.0.0.1\nprotocol websockets\ncertfile {cert}\nkeyfile {key}\n\
             {extra}",
            p[1], p[2]
        )
    })
}

/// A TCP relay in front of a port that records the first line of what each client sent
/// (for WebSocket, the HTTP request line with the path).
struct RequestSpy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl RequestSpy {
    fn start(target: u16) -> RequestSpy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind spy");
        let port = listener.local_addr().expect("spy addr").port();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n") {
                        match conn.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let line = String::from_utf8_lossy(&head).trim_end().to_string();
                    record.lock().unwrap().push(line);
                    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                        return;
                    };
                    if upstream.write_all(&head).is_err() {
                        return;
                    }
                    let (mut c2, mut u2) = (
                        conn.try_clone().expect("clone"),
                        upstream.try_clone().expect("clone"),
                    );
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut u2, &mut c2);
                        let _ = c2.shutdown(std::net::Shutdown::Both);
                    });
                    let _ = std::io::copy(&mut conn, &mut upstream);
                    let _ = upstream.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        RequestSpy { port, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// ws:// with the default path (/mqtt) and with a path of its own: both tools send the
/// path in their HTTP request (seen by a relay) and a message makes the round trip.
#[test]
fn websocket_round_trip_default_and_explicit_path() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let (_broker, ports) = websocket_broker(&pki, "");
    for (path, expected) in [("", "/mqtt"), ("/chat/ws", "/chat/ws")] {
        let spy = RequestSpy::start(ports[1]);
        let url = format!("ws://127.0.0.1:{}{path}", spy.port);
        round_trip(client("chat-sub", &url, &[]), client("chat-pub", &url, &[]));
        let request = format!("GET {expected} HTTP/1.1");
        assert_eq!(spy.seen(), [request.as_str(); 2], "requests through {url}");
    }
}

#[test]
fn secure_websocket_round_trip() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let (_broker, ports) = websocket_broker(&pki, "");
    let ca = ["--cafile", &s(&pki.ca)];
    for path in ["", "/chat/wss"] {
        let url = format!("wss://localhost:{}{path}", ports[2]);
        round_trip(client("chat-sub", &url, &ca), client("chat-pub", &url, &ca));
    }
    // The same certificate checks apply to wss:// as to mqtts://.
    let url = format!("wss://localhost:{}", ports[2]);
    for (name, cmd) in each_tool(&url, &["--cafile", &s(&pki.other_ca)]) {
        fails_fast(
            &format!("{name} wss:// --cafile other_ca"),
            cmd,
            3,
            &["unknown certificate authority"],
        );
    }
}

// ---------------------------------------------------------------------------------------
// 6. Credentials
// ---------------------------------------------------------------------------------------

/// Distinctive passwords, so that finding one in any output means it leaked.
const PASSWORD: &str = "Pw-alice-Zq7xK3vR9mTb";
const WRONG_PASSWORD: &str = "Pw-wrong-Hc4pN8sW2yLd";
const WATCHER_PASSWORD: &str = "Pw-watcher-Fk6tB1qE5uJa";

/// Password (and optionally ACL) files for mosquitto: user `alice` with [`PASSWORD`] and
/// user `watcher` with [`WATCHER_PASSWORD`].
struct Accounts {
    dir: TempDir,
    passwd: PathBuf,
    acl: Option<PathBuf>,
}

impl Accounts {
    fn new(acl: Option<&str>) -> Accounts {
        let dir = TempDir::new("accounts");
        let passwd = dir.path().join("passwd");
        must_run(Command::new("mosquitto_passwd").args([
            "-c",
            "-b",
            &s(&passwd),
            "alice",
            PASSWORD,
        ]));
        must_run(Command::new("mosquitto_passwd").args([
            "-b",
            &s(&passwd),
            "watcher",
            WATCHER_PASSWORD,
        ]));
        let text = std::fs::read_to_string(&passwd).expect("passwd");
        readable_file(&passwd, &text);
        let acl = acl.map(|rules| readable_file(&dir.path().join("acl"), rules));
        Accounts { dir, passwd, acl }
    }

    /// Config lines: no anonymous clients, these passwords (and ACL).
    fn config(&self) -> String {
        let mut c = format!("allow_anonymous false\npassword_file {}\n", s(&self.passwd));
        if let Some(acl) = &self.acl {
            c.push_str(&format!("acl_file {}\n", s(acl)));
        }
        c
    }

    /// A password file with exactly `content`.
    fn password_file(&self, name: &str, content: &str) -> String {
        s(&readable_file(&self.dir.path().join(name), content))
    }
}

fn auth_broker(accounts: &Accounts) -> Broker {
    Broker::mosquitto_with(&accounts.config())
}

#[test]
fn password_file_first_line_without_line_end() {
    if !have_mosquitto() {
        return;
    }
    let accounts = Accounts::new(None);
    let broker = auth_broker(&accounts);
    let url = broker.url();
    for (file, content) in [
        ("lf", format!("{PASSWORD}\n")),
        ("crlf", format!("{PASSWORD}\r\n")),
        ("none", PASSWORD.to_string()),
        ("more", format!("{PASSWORD}\nsecond line\n")),
    ] {
        let path = accounts.password_file(file, &content);
        let args = ["-u", "alice", "--password-file", &path];
        round_trip(
            client("chat-sub", &url, &args),
            client("chat-pub", &url, &args),
        );
    }
}

#[test]
fn credentials_from_the_environment() {
    if !have_mosquitto() {
        return;
    }
    let accounts = Accounts::new(None);
    let broker = auth_broker(&accounts);
    let url = broker.url();
    // CHAT_PASSWORD with -u, then CHAT_USERNAME for -u.
    let with_env = |name, user_flag: bool| {
        let mut c = client(name, &url, &[]);
        if user_flag {
            c.args(["-u", "alice"]);
        } else {
            c.env("CHAT_USERNAME", "alice");
        }
        c.env("CHAT_PASSWORD", PASSWORD);
        c
    };
    round_trip(with_env("chat-sub", true), with_env("chat-pub", true));
    round_trip(with_env("chat-sub", false), with_env("chat-pub", false));
}

#[test]
fn password_file_wins_over_chat_password() {
    if !have_mosquitto() {
        return;
    }
    let accounts = Accounts::new(None);
    let broker = auth_broker(&accounts);
    let url = broker.url();
    let right = accounts.password_file("right", &format!("{PASSWORD}\n"));
    let wrong = accounts.password_file("wrong", &format!("{WRONG_PASSWORD}\n"));
    let cmd = |name, file: &str, env: &str| {
        let mut c = client(name, &url, &["-u", "alice", "--password-file", file]);
        c.env("CHAT_PASSWORD", env);
        c
    };
    // The right file beats a wrong CHAT_PASSWORD …
    round_trip(
        cmd("chat-sub", &right, WRONG_PASSWORD),
        cmd("chat-pub", &right, WRONG_PASSWORD),
    );
    // … and a wrong file beats the right CHAT_PASSWORD.
    for name in ["chat-pub", "chat-sub"] {
        let mut c = cmd(name, &wrong, PASSWORD);
        if name == "chat-pub" {
            c.args(["-m", "x"]);
        }
        c.arg("chat/t");
        fails_fast(
            &format!("{name} wrong file, right env"),
            c,
            4,
            &["refused the connection"],
        );
    }
}

#[test]
fn wrong_password_is_refused_at_once() {
    if !have_mosquitto() {
        return;
    }
    let accounts = Accounts::new(None);
    let broker = auth_broker(&accounts);
    let wrong = accounts.password_file("wrong", WRONG_PASSWORD);
    for version in ["5", "3"] {
        let args = ["-V", version, "-u", "alice", "--password-file", &wrong];
        for (name, cmd) in each_tool(&broker.url(), &args) {
            let out = fails_fast(
                &format!("{name} -V {version} wrong password"),
                cmd,
                4,
                &["refused the connection"],
            );
            // mosquitto says "not authorized" (MQTT 5: 0x87, 3.1.1: 5), others may say
            // "bad user name or password": the broker's reason is passed on.
            assert!(
                out.stderr.contains("not authorized (0x")
                    || out.stderr.contains("bad user name or password (0x"),
                "{}",
                out.stderr
            );
        }
    }
    // An unknown user is refused the same way.
    let right = accounts.password_file("right", PASSWORD);
    let args = ["-u", "mallory", "--password-file", &right];
    for (name, cmd) in each_tool(&broker.url(), &args) {
        fails_fast(
            &format!("{name} unknown user"),
            cmd,
            4,
            &["refused the connection"],
        );
    }
}

#[test]
fn anonymous_client_is_refused_at_once() {
    if !have_mosquitto() {
        return;
    }
    let accounts = Accounts::new(None);
    let broker = auth_broker(&accounts);
    for version in ["5", "3"] {
        for (name, cmd) in each_tool(&broker.url(), &["-V", version]) {
            fails_fast(
                &format!("{name} -V {version} anonymous"),
                cmd,
                4,
                &["refused the connection", "not authorized"],
            );
        }
    }
}

/// Where any of `secrets` appears in a run's output: one entry per stream, with the
/// line that holds it.
fn find_secrets(what: &str, out: &Finished, secrets: &[&str]) -> Vec<String> {
    let stdout = out.stdout_str();
    let mut found = Vec::new();
    for (stream, text) in [("stdout", &stdout), ("stderr", &out.stderr)] {
        if let Some(line) = text.lines().find(|l| secrets.iter().any(|s| l.contains(s))) {
            let line: String = line.chars().take(600).collect();
            found.push(format!("{what}: the password is in {stream}:\n    {line}"));
        }
    }
    found
}

/// The password never appears in any output, at the highest verbosity (-vvv, and
/// RUST_LOG=trace, which also turns on the dependencies' logs), on success and on
/// failure, from the file or from the environment, for both tools, over each of
/// `transports`. Every leak is listed before the test fails.
fn password_never_in_output(transports: &[&str]) {
    let pki = Pki::new();
    let accounts = Accounts::new(None);
    let (broker, ports) = websocket_broker(&pki, &accounts.config());
    let tls = format!(
        "cafile {}\ncertfile {}\nkeyfile {}\n",
        s(&pki.ca),
        s(&pki.server_cert),
        s(&pki.server_key)
    );
    let secure = Broker::mosquitto_with(&format!("{tls}{}", accounts.config()));
    let right = accounts.password_file("right", &format!("{PASSWORD}\n"));
    let wrong = accounts.password_file("wrong", &format!("{WRONG_PASSWORD}\n"));
    let secrets = [PASSWORD, WRONG_PASSWORD];
    let mut leaks = Vec::new();
    for &transport in transports {
        let (url, ca) = match transport {
            "mqtt" => (broker.url(), None),
            "mqtts" => (mqtts(&secure), Some(s(&pki.ca))),
            "ws" => (format!("ws://127.0.0.1:{}", ports[1]), None),
            "wss" => (format!("wss://localhost:{}", ports[2]), Some(s(&pki.ca))),
            other => panic!("unknown transport {other}"),
        };
        for loud in ["-vvv", "RUST_LOG=trace"] {
            let cmd = |name, password_file: Option<&str>, env: Option<&str>| {
                let mut c = client(name, &url, &["-u", "alice"]);
                if let Some(ca) = &ca {
                    c.args(["--cafile", ca]);
                }
                if let Some(f) = password_file {
                    c.args(["--password-file", f]);
                }
                if let Some(p) = env {
                    c.env("CHAT_PASSWORD", p);
                }
                match loud {
                    "-vvv" => c.arg("-vvv"),
                    _ => c.env("RUST_LOG", "trace"),
                };
                c
            };
            let what = format!("{transport} {loud}");
            // Success, the password from the file, then from the environment.
            for (source, file, env) in [("file", Some(&right), None), ("env", None, Some(PASSWORD))]
            {
                let (p, r) = round_trip(
                    cmd("chat-sub", file.map(String::as_str), env),
                    cmd("chat-pub", file.map(String::as_str), env),
                );
                leaks.extend(find_secrets(
                    &format!("{what} chat-pub, {source}"),
                    &p,
                    &secrets,
                ));
                leaks.extend(find_secrets(
                    &format!("{what} chat-sub, {source}"),
                    &r,
                    &secrets,
                ));
            }
            // Failure: refused credentials, from the file and from the environment.
            for name in ["chat-pub", "chat-sub"] {
                for (source, mut c) in [
                    ("file", cmd(name, Some(&wrong), None)),
                    ("env", cmd(name, None, Some(WRONG_PASSWORD))),
                ] {
                    if name == "chat-pub" {
                        c.args(["-m", "x"]);
                    }
                    c.arg("chat/t");
                    let what = format!("{what} {name} refused, {source}");
                    let out = fails_fast(&what, c, 4, &["refused the connection"]);
                    leaks.extend(find_secrets(&what, &out, &secrets));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

#[test]
fn password_never_in_output_over_tcp_and_tls() {
    if !have_mosquitto() {
        return;
    }
    password_never_in_output(&["mqtt", "mqtts"]);
}

/// Also guards against what the dependencies log: tungstenite traces every frame it sends,
/// payload included, and the first one is the CONNECT packet with the password.
#[test]
fn password_never_in_output_over_websocket() {
    if !have_mosquitto() {
        return;
    }
    password_never_in_output(&["ws", "wss"]);
}

// ---------------------------------------------------------------------------------------
// 7. Authorization
// ---------------------------------------------------------------------------------------

/// alice may publish to chat/ok/# only; watcher reads all of chat/#.
const ACL: &str = "user alice\ntopic readwrite chat/ok/#\n\nuser watcher\ntopic read chat/#\n";

/// Three lines for chat-pub --json: allowed, refused (chat/no/…), allowed.
const THREE_LINES: &[u8] = b"{\"topic\":\"chat/ok/a\",\"text\":\"one\"}\n\
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

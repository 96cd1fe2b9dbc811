//! TLS (mqtts:// and, through the same checks, wss://): the system trust store or
//! --cafile, client certificates in every key format the man pages promise, --insecure,
//! certificate problems (which end at once, exit 3, with a message naming the problem)
//! and the TLS options' usage errors. mosquitto only: the embedded broker has no TLS.
//! Every broker here is configured by its test.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::common::*;

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
        one_message(client("chat-sub", &url, &ca), client("chat-pub", &url, &ca));
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
    let (published, _) = one_message(
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
    one_message(with_env("chat-sub"), with_env("chat-pub"));
}

/// A broker that requires a client certificate accepts ours, with the key in each PEM
/// form the man page promises: PKCS#8 (`PRIVATE KEY`, rcgen's), SEC1 (`EC PRIVATE KEY`),
/// and PKCS#1 (`RSA PRIVATE KEY`, made with the openssl binary: required in CI, skipped
/// elsewhere when it is missing).
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
        if with_curve && have_openssl() {
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
    if !have_openssl() {
        return; // it makes the RSA key
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
    one_message(
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
        let (published, received) = one_message(
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

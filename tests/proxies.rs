//! Proxies (`--proxy`, `CHAT_PROXY`, the `proxy` key): real SOCKS5 and HTTP CONNECT
//! servers on loopback carry a chat over every transport and to each node of a failover
//! list; a refusal is exit 3 with the proxy's own reason, refused credentials exit 4, and
//! the proxy password is never printed.

use std::os::unix::fs::PermissionsExt;

use crate::common::*;

/// A password that must never appear in any output.
const SECRET: &str = "pr0xy-s3cret";

/// Output must not show the password, plain or in basic authentication's base64.
#[track_caller]
fn never_shows_the_password(out: &Finished) {
    let text = format!("{}{}", out.stdout_str(), out.stderr);
    assert!(
        !text.contains(SECRET) && !text.contains("cHIweHktczNjcmV0"),
        "the password is shown:\n{text}"
    );
}

each_broker! {
    /// chat-sub through socks5h:// (the proxy resolves "localhost") and chat-pub through
    /// socks5:// from CHAT_PROXY: the line arrives, and both tools' connections go to the
    /// proxy, none to the broker.
    fn socks5_and_socks5h_carry_a_chat(broker) {
        let Some(proxy) = ProxyServer::microsocks(None) else { return };
        let room = unique_topic("socks");
        let url = format!("mqtt://localhost:{}", broker.port);
        let mut sub = tool("chat-sub");
        sub.args(["-b", &url, "--proxy", &proxy.url(Some("socks5h"), None), "-v", &room]);
        let sub = Proc::spawn(&mut sub);
        sub.wait_stderr("subscribed to");
        let mut publish = tool("chat-pub");
        publish.args(["-b", &url, "--nick", "alice", &room]);
        publish.env("CHAT_PROXY", proxy.url(Some("socks5"), None));
        let mut publish = Proc::spawn_with_stdin(&mut publish, std::process::Stdio::piped());
        publish.write(b"through the tunnel\n");
        sub.wait_stdout("alice: through the tunnel");
        for (name, pid) in [("chat-sub", sub.pid()), ("chat-pub", publish.pid())] {
            assert!(connected_to(pid, proxy.port), "{name} is not connected to the proxy");
            assert!(!connected_to(pid, broker.port), "{name} went to the broker directly");
        }
        drop(publish.take_stdin());
        publish.finish().expect_code(0);
    }

    /// HTTP CONNECT with basic authentication (tinyproxy): the right login carries the
    /// chat; none, or a wrong one, exits 4 with the proxy's status line.
    fn http_connect_with_basic_authentication(broker) {
        let Some(proxy) = ProxyServer::tinyproxy(Some(("alice", SECRET)), &[]) else {
            return;
        };
        let login = format!("alice:{SECRET}");
        let with = |args: &[&str], proxy_url: String| {
            let mut c = tool(args[0]);
            c.arg("-b").arg(broker.url()).args(&args[1..]).env("CHAT_PROXY", proxy_url);
            c
        };
        let (published, _) = one_message(
            with(&["chat-sub"], proxy.url(None, Some(&login))),
            with(&["chat-pub"], proxy.url(None, Some(&login))),
        );
        never_shows_the_password(&published);
        let none = fails_fast(
            "no login",
            with(&["chat-pub", "-m", "x", "t"], proxy.url(None, None)),
            4,
            &["wants a user name and a password", "407"],
        );
        never_shows_the_password(&none);
        let wrong = fails_fast(
            "wrong password",
            with(&["chat-sub", "t"], proxy.url(None, Some("alice:wrong"))),
            4,
            &[&format!("through the proxy http://alice@127.0.0.1:{}", proxy.port)],
        );
        assert!(wrong.stderr.contains("refused the user name and password"), "{}", wrong.stderr);
    }

    /// A failover list through one proxy: the first node is down behind it (the proxy
    /// says "connection refused"), the second answers.
    fn each_node_of_a_failover_list_is_reached_through_the_proxy(broker) {
        let Some(proxy) = ProxyServer::microsocks(None) else { return };
        let down = free_port();
        let urls = format!("mqtt://127.0.0.1:{down},{}", broker.url());
        let room = unique_topic("failover");
        let mut publish = tool("chat-pub");
        publish.args(["-b", &urls, "--proxy", &proxy.url(None, None), "-v", "-m", "hi", &room]);
        let out = run(&mut publish, b"");
        out.expect_code(0);
        assert!(
            out.stderr.contains(&format!("connected to {} through the proxy", broker.url())),
            "{}",
            out.stderr
        );
    }
}

/// SOCKS5 with a user name and password (RFC 1929, microsocks): the right login, given
/// in the config file's `proxy` key, carries the chat; a wrong one and none exit 4; the
/// password is shown nowhere, and the file that holds it is warned about.
#[test]
fn socks5_login_from_the_config_file() {
    if !have_mosquitto() {
        return;
    }
    let Some(proxy) = ProxyServer::microsocks(Some(("alice", SECRET))) else {
        return;
    };
    let broker = Broker::start(Kind::Mosquitto);
    let home = TempDir::new("proxy-config");
    let dir = home.path().join("mqttchat");
    std::fs::create_dir_all(&dir).expect("config dir");
    let file = dir.join("config.toml");
    let text = format!(
        "broker = \"{}\"\n[profile.tunnel]\nproxy = \"{}\"\n",
        broker.url(),
        proxy.url(Some("socks5h"), Some(&format!("alice:{SECRET}")))
    );
    std::fs::write(&file, text).expect("write config");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let with = |args: &[&str]| {
        let mut c = tool(args[0]);
        c.env("XDG_CONFIG_HOME", home.path()).args(&args[1..]);
        c
    };
    let (published, received) = one_message(
        with(&["chat-sub", "--profile", "tunnel"]),
        with(&["chat-pub", "--profile", "tunnel"]),
    );
    for out in [&published, &received] {
        never_shows_the_password(out);
        assert!(
            out.stderr.contains("UNPROTECTED CONFIG FILE"),
            "{}",
            out.stderr
        );
    }
    let shown = run(
        &mut with(&["chat-pub", "--profile", "tunnel", "--show-config"]),
        b"",
    );
    shown.expect_code(0);
    never_shows_the_password(&shown);
    let want = format!("proxy = \"socks5h://alice:…@127.0.0.1:{}\"", proxy.port);
    assert!(shown.stdout_str().contains(&want), "{}", shown.stdout_str());

    let wrong = fails_fast(
        "wrong password",
        with(&[
            "chat-pub",
            "--proxy",
            &proxy.url(None, Some("alice:nope")),
            "-m",
            "x",
            "t",
        ]),
        4,
        &["refused the user name and password"],
    );
    never_shows_the_password(&wrong);
    fails_fast(
        "no login",
        with(&["chat-sub", "--proxy", &proxy.url(None, None), "t"]),
        4,
        &["the proxy wants a user name and a password"],
    );
}

/// mqtts:// and wss:// through socks5h://: TLS runs end to end with the broker and is
/// checked against the broker's name (localhost), so a wrong CA still fails at once;
/// ws:// goes through too.
#[test]
fn tls_and_websocket_through_the_proxy() {
    if !have_mosquitto() {
        return;
    }
    let Some(proxy) = ProxyServer::microsocks(None) else {
        return;
    };
    let via = ["--proxy", &proxy.url(Some("socks5h"), None)].map(str::to_string);
    let pki = Pki::new();
    let tls = tls_broker(&pki, false, &pki.server_cert, &pki.server_key);
    let (_ws, ports) = websocket_broker(&pki, "");
    let ca = s(&pki.ca);
    for url in [
        mqtts(&tls),
        format!("ws://localhost:{}", ports[1]),
        format!("wss://localhost:{}", ports[2]),
    ] {
        let mut args: Vec<&str> = via.iter().map(String::as_str).collect();
        if !url.starts_with("ws:") {
            args.extend(["--cafile", &ca]);
        }
        one_message(
            client("chat-sub", &url, &args),
            client("chat-pub", &url, &args),
        );
    }
    let other = s(&pki.other_ca);
    for (name, mut cmd) in each_tool(&mqtts(&tls), &["--cafile", &other]) {
        cmd.args(&via);
        fails_fast(
            &format!("{name} through the proxy, other CA"),
            cmd,
            3,
            &["unknown certificate authority"],
        );
    }
}

/// The proxy's own reasons, exit 3: a broker down behind it (retried until
/// --connect-timeout, then the SOCKS reply named, or the HTTP status line), a proxy whose
/// rules forbid the broker (at once: SOCKS5 reply 2, HTTP 403), a proxy that is not
/// there, and a proxy host that does not exist (at once).
#[test]
fn refusals_are_exit_3_with_the_proxys_reason() {
    let Some(socks) = ProxyServer::microsocks(None) else {
        return;
    };
    let down = free_port();
    let broker_down = format!("mqtt://127.0.0.1:{down}");
    // Through `proxy` to a broker that is down, giving up after a second.
    let attempt = |proxy: &str, says: &[&str]| {
        let args = [
            "-b",
            &broker_down,
            "--proxy",
            proxy,
            "--connect-timeout",
            "1",
        ];
        exits(
            "chat-pub",
            &[&args[..], &["-m", "x", "t"]].concat(),
            None,
            3,
            says,
        )
    };
    let refused = format!(
        "cannot reach the broker at {broker_down} within 1.0s: through the proxy \
         socks5://127.0.0.1:{}: connection refused (SOCKS5 reply 5)",
        socks.port
    );
    let out = attempt(&socks.url(None, None), &[&refused]);
    assert!(!out.stderr.contains("nothing listens"), "{}", out.stderr);
    let nothing = format!("socks5://127.0.0.1:{}", free_port());
    attempt(&nothing, &["cannot reach the proxy"]);

    let mut c = tool("chat-sub");
    c.args([
        "-b",
        &broker_down,
        "--proxy",
        "http://proxy.invalid:3128",
        "t",
    ]);
    fails_fast(
        "a proxy name that does not exist",
        c,
        3,
        &[
            "through the proxy http://proxy.invalid:3128",
            "cannot resolve",
        ],
    );

    if let Some(dante) = ProxyServer::dante(down) {
        let mut c = tool("chat-pub");
        c.args([
            "-b",
            &broker_down,
            "--proxy",
            &dante.url(None, None),
            "-m",
            "x",
            "t",
        ]);
        fails_fast(
            "dante's rules",
            c,
            3,
            &["connection not allowed by ruleset (SOCKS5 reply 2)"],
        );
    }
    if let Some(http) = ProxyServer::tinyproxy(None, &[443]) {
        let mut c = tool("chat-sub");
        c.args(["-b", &broker_down, "--proxy", &http.url(None, None), "t"]);
        fails_fast("tinyproxy's ConnectPort", c, 3, &["403 Access violation"]);
        if let Some(open) = ProxyServer::tinyproxy(None, &[]) {
            attempt(&open.url(None, None), &["500 Unable to connect"]);
        }
    }
}

/// Runs `name ARGS…` (stdin empty), which must exit with `code` and say each of `says` on
/// stderr, the password never; returns its output.
#[track_caller]
fn exits(name: &str, args: &[&str], env: Option<&str>, code: i32, says: &[&str]) -> Finished {
    let mut c = tool(name);
    c.args(args);
    if let Some(url) = env {
        c.env("CHAT_PROXY", url);
    }
    let out = run(&mut c, b"");
    out.expect_code(code);
    never_shows_the_password(&out);
    for said in says {
        assert!(
            out.stderr.contains(said),
            "{args:?}: no {said:?} in:\n{}",
            out.stderr
        );
    }
    out
}

/// A bad proxy URL is a usage error (exit 2) that names where it came from and never
/// echoes the password; a password on the command line is warned about, one in the
/// environment is not; an empty URL is no proxy.
#[test]
fn bad_urls_are_usage_errors_and_passwords_stay_hidden() {
    for (url, says) in [
        ("ftp://h:1", "unknown scheme 'ftp'"),
        ("h:1080", "give the scheme"),
        ("socks5://h:99999", "invalid port"),
        ("socks4://h", "SOCKS4 is not supported"),
    ] {
        let args = ["-b", NOWHERE, "--proxy", url, "-m", "x", "t"];
        exits("chat-pub", &args, None, 2, &["invalid --proxy", says]);
        let args = ["-b", NOWHERE, "t"];
        exits("chat-sub", &args, Some(url), 2, &["invalid CHAT_PROXY"]);
    }
    let url = format!("https://alice:{SECRET}@h");
    let args = ["-b", NOWHERE, "--proxy", &url, "-m", "x", "t"];
    exits("chat-pub", &args, None, 2, &["https://alice:…@h"]);

    // Valid, with a password: the flag warns, the variable does not; both show the URL
    // without it. Nothing listens at the broker: exit 3 after the warning.
    let proxy = format!("socks5://alice:{SECRET}@127.0.0.1:{}", free_port());
    let quick = ["-b", NOWHERE, "--connect-timeout", "0.2", "-m", "x", "t"];
    let warned = "can be read by every user of this machine";
    let with_flag = [&quick[..], &["--proxy", &proxy]].concat();
    exits("chat-pub", &with_flag, None, 3, &[warned]);
    let shown = "through the proxy socks5://alice@127.0.0.1:";
    let out = exits("chat-pub", &quick, Some(&proxy), 3, &[shown]);
    assert!(!out.stderr.contains(warned), "{}", out.stderr);

    // Empty: no proxy at all (the broker's own refusal, not a proxy's).
    let no_proxy = [&quick[..], &["--proxy", ""]].concat();
    exits(
        "chat-pub",
        &no_proxy,
        None,
        3,
        &["nothing listens on 127.0.0.1:1"],
    );
}

//! Credentials: a user name with a password from --password-file or CHAT_PASSWORD (and
//! which wins), refusals that end at once (exit 4), a password without a user name, and
//! no password in any output at any verbosity, over every transport. mosquitto only: the
//! embedded broker has no authentication.

use crate::common::*;

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
        one_message(
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
    one_message(with_env("chat-sub", true), with_env("chat-pub", true));
    one_message(with_env("chat-sub", false), with_env("chat-pub", false));
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
    one_message(
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
                let (p, r) = one_message(
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

//! The config file and its profiles (FILES in the man pages): what a profile sets reaches
//! the broker, flags and the environment win over it, the top level loses to it, every
//! problem of the file is exit 2 naming the file, the line and the key, a password in a
//! file others can read is warned about, and `--show-config` never shows a secret.
//!
//! Each test writes its own file under a temp `XDG_CONFIG_HOME` (the other tests point it
//! at a directory that does not exist).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// A config home with `text` as its config.toml, mode `mode`.
fn config_home(tag: &str, text: &str, mode: u32) -> TempDir {
    let home = TempDir::new(tag);
    let dir = home.path().join("mqttchat");
    std::fs::create_dir_all(&dir).expect("config dir");
    let file = dir.join("config.toml");
    std::fs::write(&file, text).expect("write config");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
    home
}

/// `name ARGS…` reading the config of `home`.
fn with_config(name: &str, home: &Path, args: &[&str]) -> Command {
    let mut c = tool(name);
    c.env("XDG_CONFIG_HOME", home).args(args);
    c
}

/// The value `--show-config` prints for `key`, and where it says it came from.
fn shown(out: &Finished, key: &str) -> (String, String) {
    let text = out.stdout_str();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in --show-config:\n{text}"));
    let (setting, from) = line.split_once(" # ").expect("a source");
    let value = setting.trim_end().trim_start_matches(&format!("{key} = "));
    (value.to_string(), from.to_string())
}

each_broker! {
    /// A profile's broker, nick and QoS reach the broker: no flag names them.
    fn a_profile_is_all_a_run_needs(broker) {
        let room = unique_topic("profile");
        let text = format!(
            "nick = \"top\"\nqos = 0\n\n[profile.lab]\nbroker = \"{}\"\nnick = \"alice\"\nqos = 1\n",
            broker.url()
        );
        let home = config_home("profile-lab", &text, 0o600);
        let sub = Proc::subscriber(broker, &["--json", &room]);
        let mut publish = with_config("chat-pub", home.path(), &["--profile", "lab", "--no-presence"]);
        publish.args(["-m", "from the profile", &room]);
        run(&mut publish, b"").expect_code(0);
        let got = json_lines(&sub.wait_lines(1));
        assert_eq!((&got[0]["from"], &got[0]["qos"]), (&"alice".into(), &1.into()));
    }
}

/// Flags win over the environment, which wins over the profile, which wins over the top
/// level, which wins over the defaults.
#[test]
fn flags_then_environment_then_profile_then_top_level() {
    let text =
        "nick = \"top\"\nqos = 0\nkeep_alive = 11\n\n[profile.p]\nnick = \"prof\"\nqos = 2\n";
    let home = config_home("profile-order", text, 0o600);
    let show = |args: &[&str], env: Option<&str>| {
        let mut c = with_config("chat-pub", home.path(), &["--show-config", "room"]);
        c.args(args);
        if let Some(nick) = env {
            c.env("CHAT_NICK", nick);
        }
        let out = run(&mut c, b"");
        out.expect_code(0);
        out
    };
    let top = show(&[], None);
    assert_eq!(shown(&top, "nick"), ("\"top\"".into(), "top level".into()));
    assert_eq!(shown(&top, "keep_alive"), ("11".into(), "top level".into()));
    assert_eq!(
        shown(&top, "connect_timeout"),
        ("10".into(), "default".into())
    );
    let prof = show(&["--profile", "p"], None);
    assert_eq!(
        shown(&prof, "nick"),
        ("\"prof\"".into(), "profile p".into())
    );
    assert_eq!(shown(&prof, "qos"), ("2".into(), "profile p".into()));
    assert_eq!(
        shown(&prof, "keep_alive"),
        ("11".into(), "top level".into())
    );
    let env = show(&["--profile", "p"], Some("envnick"));
    assert_eq!(
        shown(&env, "nick"),
        ("\"envnick\"".into(), "flag or environment".into())
    );
    let flag = show(
        &["--profile", "p", "--nick", "flagnick", "-q", "1"],
        Some("envnick"),
    );
    assert_eq!(
        shown(&flag, "nick"),
        ("\"flagnick\"".into(), "flag or environment".into())
    );
    assert_eq!(
        shown(&flag, "qos"),
        ("1".into(), "flag or environment".into())
    );
    // CHAT_PROFILE selects the profile too; --no-config reads no file at all.
    let mut by_env = with_config("chat-sub", home.path(), &["--show-config", "room"]);
    let out = run(by_env.env("CHAT_PROFILE", "p"), b"");
    assert_eq!(shown(&out, "nick"), ("\"prof\"".into(), "profile p".into()));
    let none = run(
        &mut with_config(
            "chat-sub",
            home.path(),
            &["--no-config", "--show-config", "room"],
        ),
        b"",
    );
    assert!(
        none.stdout_str().starts_with("# config file: none\n"),
        "{}",
        none.stdout_str()
    );
}

/// Every problem of the file ends the run before anything is sent, with status 2 and a
/// message that names the file, the line and the key.
#[test]
fn a_bad_file_is_a_usage_error_naming_the_file_the_line_and_the_key() {
    let cases = [
        (
            "unknown",
            "nick = \"a\"\nbogus = 1\n",
            "line 2, key 'bogus': unknown key `bogus`",
        ),
        (
            "range",
            "\n[profile.p]\nqos = 7\n",
            "line 3, key 'qos': 7 is not 0, 1 or 2",
        ),
        (
            "version",
            "version = \"4.0\"\n",
            "line 1, key 'version': '4.0' is not an MQTT version",
        ),
        (
            "dialect",
            "dialect = \"klingon\"\n",
            "line 1, key 'dialect'",
        ),
        ("type", "insecure = \"yes\"\n", "line 1, key 'insecure'"),
        ("syntax", "nick = \"unclosed\n", "line 1, key 'nick'"),
    ];
    for (tag, text, said) in cases {
        let home = config_home(&format!("profile-bad-{tag}"), text, 0o600);
        let file = home.path().join("mqttchat/config.toml");
        let out = run(
            &mut with_config("chat-pub", home.path(), &["-m", "x", "room"]),
            b"",
        );
        out.expect_code(2);
        let want = format!("chat-pub: config file {}, {said}", file.display());
        assert!(
            out.stderr.starts_with(&want),
            "{tag}: want {want:?}, got:\n{}",
            out.stderr
        );
    }
}

#[test]
fn an_unknown_profile_or_a_missing_file_is_a_usage_error() {
    let home = config_home("profile-names", "[profile.home]\n[profile.work]\n", 0o600);
    let file = home.path().join("mqttchat/config.toml");
    let out = run(
        &mut with_config("chat-sub", home.path(), &["--profile", "office", "room"]),
        b"",
    );
    out.expect_code(2);
    assert_eq!(
        out.stderr,
        format!(
            "chat-sub: no profile 'office' in the config file {} (it has home, work)\n",
            file.display()
        )
    );
    let missing = home.path().join("elsewhere.toml");
    let missing = missing.to_str().expect("UTF-8");
    let out = run(
        &mut with_config(
            "chat-pub",
            home.path(),
            &["--config", missing, "-m", "x", "r"],
        ),
        b"",
    );
    out.expect_code(2);
    assert!(
        out.stderr
            .contains(&format!("cannot read the config file {missing}")),
        "{}",
        out.stderr
    );
    let out = run(
        tool("chat-pub").args(["--profile", "home", "-m", "x", "r"]),
        b"",
    );
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("--profile (or CHAT_PROFILE) needs a config file"),
        "{}",
        out.stderr
    );
}

/// A password in a file that group or others can read gets ssh's warning; --show-config
/// shows that a password is set, never the password.
#[test]
fn a_password_is_warned_about_and_never_shown() {
    let text = "username = \"alice\"\npassword = \"hunter2-secret\"\n";
    let open = config_home("profile-open", text, 0o644);
    let out = run(
        &mut with_config("chat-pub", open.path(), &["--show-config", "room"]),
        b"",
    );
    out.expect_code(0);
    assert!(
        out.stderr
            .contains("WARNING: UNPROTECTED CONFIG FILE! Permissions 0644"),
        "{}",
        out.stderr
    );
    assert_eq!(
        shown(&out, "password"),
        ("\"(set, not shown)\"".into(), "top level".into())
    );
    let everything = format!("{}{}", out.stdout_str(), out.stderr);
    assert!(!everything.contains("hunter2"), "{everything}");
    let private = config_home("profile-private", text, 0o600);
    let out = run(
        &mut with_config("chat-pub", private.path(), &["-vv", "--show-config", "r"]),
        b"",
    );
    assert!(!out.stderr.contains("UNPROTECTED"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

/// A mistake on a line that holds a secret never shows the secret: a password written
/// without its `=`, unquoted, or a proxy URL whose host was forgotten.
#[test]
fn a_mistake_in_the_file_never_shows_a_secret() {
    for (tag, text) in [
        ("colon", "password: \"hunter2-secret\"\n"),
        ("unquoted", "password = 20242024\n"),
        ("proxy", "proxy = \"socks5://alice:hunter2-secret\"\n"),
        ("no-equals", "proxy \"http://u:hunter2-secret@h\"\n"),
    ] {
        let home = config_home(&format!("profile-secret-{tag}"), text, 0o600);
        let out = run(
            &mut with_config("chat-pub", home.path(), &["-m", "x", "r"]),
            b"",
        );
        out.expect_code(2);
        assert!(out.stderr.contains("line 1"), "{tag}: {}", out.stderr);
        for secret in ["hunter2", "20242024"] {
            assert!(!out.stderr.contains(secret), "{tag}: {}", out.stderr);
        }
    }
}

/// Without a config file, --show-config still tells a flag or variable from a default.
#[test]
fn without_a_file_show_config_tells_given_from_default() {
    let out = run(
        tool("chat-pub").args(["--no-config", "--qos", "2", "--show-config"]),
        b"",
    );
    out.expect_code(0);
    assert_eq!(
        shown(&out, "qos"),
        ("2".into(), "flag or environment".into())
    );
    assert_eq!(shown(&out, "keep_alive"), ("30".into(), "default".into()));
}

/// -v says which file and profile a run used.
#[test]
fn verbose_names_the_file_and_the_profile() {
    let home = config_home("profile-verbose", "[profile.p]\nnick = \"x\"\n", 0o600);
    let file = home.path().join("mqttchat/config.toml");
    let out = run(
        &mut with_config(
            "chat-sub",
            home.path(),
            &["-v", "--profile", "p", "--show-config", "r"],
        ),
        b"",
    );
    out.expect_code(0);
    let said = format!("chat-sub: config file {}, profile p", file.display());
    assert!(out.stderr.contains(&said), "{}", out.stderr);
}

/// mosquitto only (the embedded broker has no authentication): the profile's user name
/// and password log in, a password file relative to the config file's directory too.
#[test]
fn a_profile_logs_in() {
    if !have_mosquitto() {
        return;
    }
    let accounts = Accounts::new(None);
    let broker = Broker::mosquitto_with(&accounts.config());
    let room = unique_topic("profile-login");
    let home = TempDir::new("profile-login");
    let dir = home.path().join("mqttchat");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("pw"), format!("{PASSWORD}\n")).expect("pw");
    let text = format!(
        "broker = \"{url}\"\nusername = \"alice\"\n\n[profile.inline]\npassword = \"{PASSWORD}\"\n\n\
         [profile.file]\npassword_file = \"pw\"\n",
        url = broker.url()
    );
    std::fs::write(dir.join("config.toml"), text).expect("config");
    for profile in ["inline", "file"] {
        let mut c = with_config(
            "chat-pub",
            home.path(),
            &["--profile", profile, "--no-presence"],
        );
        let out = run(c.args(["-m", "hi", &room]), b"");
        out.expect_code(0);
    }
    let mut anonymous = with_config(
        "chat-pub",
        home.path(),
        &["--no-presence", "-m", "hi", &room],
    );
    run(&mut anonymous, b"").expect_code(4);
}

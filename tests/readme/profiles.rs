//! The config file: README's three profiles, written where the tools look, and what each
//! makes of a run.

use super::markdown::{self, Block};
use super::output::{assert_in_order, wait_message};
use super::sandbox::Sandbox;
use std::os::unix::fs::PermissionsExt;

/// Writes README's config-file block to `~/.config/mqttchat/config.toml`, mode 0600.
fn write_config(sb: &Sandbox, block: &Block) {
    let dir = sb.home().join(".config/mqttchat");
    std::fs::create_dir_all(&dir).expect("config dir");
    let path = dir.join("config.toml");
    std::fs::write(&path, block.body.join("\n") + "\n").expect("write config.toml");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// The line of `--show-config` for `key`, without its padding.
fn shown(text: &str, key: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in --show-config:\n{text}"));
    let (setting, from) = line.split_once(" # ").expect("a source");
    format!("{} # {from}", setting.trim_end())
}

/// Each profile of the file, as `--show-config` sees it: its own keys, the top level's
/// nick, paths from the home directory and from the file's directory, no secret.
pub fn config_file(sb: &Sandbox, block: &Block) {
    write_config(sb, block);
    let home = sb.home().display().to_string();
    let cases: [(&str, &[String]); 3] = [
        (
            "home",
            &[
                r#"broker = ["mqtt://192.168.1.10:1883"] # profile home"#.into(),
                r#"nick = "alice" # top level"#.into(),
                "qos = 1 # default".into(),
            ],
        ),
        (
            "work",
            &[
                r#"broker = ["mqtts://mq1.corp.example:8883", "mqtts://mq2.corp.example:8883"] # profile work"#.into(),
                format!(r#"cafile = "{home}/.config/mqttchat/corp-ca.pem" # profile work"#),
                r#"username = "alice" # profile work"#.into(),
                format!(r#"password = "(read from {home}/.config/mqttchat/work.pass)" # profile work"#),
                "qos = 1 # profile work".into(),
            ],
        ),
        (
            "public",
            &[
                r#"broker = ["mqtts://broker.hivemq.com:8883"] # profile public"#.into(),
                format!(r#"room_secret_file = "{home}/.config/mqttchat/friends.secret" # profile public"#),
            ],
        ),
    ];
    for (profile, want) in cases {
        let out = sb.harness("chat-pub", &["--profile", profile, "--show-config"]);
        let text = out.stdout_str();
        for line in want {
            let key = line.split(" = ").next().unwrap_or_default();
            assert_eq!(&shown(&text, key), line, "profile {profile}:\n{text}");
        }
    }
}

/// The home profile carries a chat over the LAN broker; `--nick` wins over the file;
/// `CHAT_PROFILE` selects the work profile for `--show-config`.
pub fn profiles(sb: &Sandbox, block: &Block) {
    write_config(sb, &markdown::block("config-file"));
    let [reader, writer, show] = block.lines();
    let _broker = sb.broker("192.168.1.10:1883");
    let reader = sb.start(reader);
    sb.probe(&[(&reader, "probe-")], |n| {
        sb.chat_pub_m(&format!("probe-{n}"), &["-b", "192.168.1.10", "lobby"])
    });
    sb.run(writer, b"hello\n").expect_code(0);
    wait_message(&reader, "* bob left", &[]);
    assert_in_order(&reader, &["* bob joined", "bob: hello", "* bob left"], &[]);
    let out = sb.run(show, b"");
    out.expect_code(0);
    let text = out.stdout_str();
    assert!(
        text.starts_with("# config file: ")
            && text
                .lines()
                .next()
                .unwrap_or("")
                .ends_with(", profile work"),
        "{text}"
    );
    assert_eq!(shown(&text, "qos"), "qos = 1 # profile work", "{text}");
}

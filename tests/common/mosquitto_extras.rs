//! mosquitto's extras for the tests of credentials and authorization: external programs
//! (mosquitto_ctrl, openssl), files mosquitto can read, user accounts with password and
//! ACL files ([`Accounts`]), and a broker whose authorization is the dynamic-security
//! plugin (the only way to get a SUBACK refusal from mosquitto 2.0.11, whose acl_file
//! grants every subscription and filters on delivery).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Broker, TempDir, have_mosquitto, have_program, installed, s, tools_required};

/// Whether the tests that need the openssl command (to make and check keys) can run;
/// false means "skip", except in CI, where its absence fails them.
pub fn have_openssl() -> bool {
    have_program("openssl", "apt-get install -y openssl")
}

/// Runs a helper program that must succeed.
#[track_caller]
pub fn must_run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes a file mosquitto can read after dropping root to user mosquitto (0644).
pub fn readable_file(path: &Path, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    path.to_path_buf()
}

/// The dynamic-security plugin shipped with mosquitto 2.0, if installed here.
fn dynsec_plugin() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
        "/opt/homebrew/lib",
    ]
    .iter()
    .map(|d| Path::new(d).join("mosquitto_dynamic_security.so"))
    .find(|p| p.exists())
}

/// mosquitto whose authorization is the dynamic-security plugin: user alice (with
/// `password`) may publish and subscribe to chat/ok/# only; anonymous clients are refused.
/// None (skip) without mosquitto, the plugin or mosquitto_ctrl, unless CI requires them.
pub fn dynsec_broker(dir: &TempDir, password: &str) -> Option<Broker> {
    if !have_mosquitto() {
        return None;
    }
    let (Some(plugin), true) = (dynsec_plugin(), installed("mosquitto_ctrl")) else {
        assert!(
            !tools_required(),
            "mosquitto's dynamic-security plugin and mosquitto_ctrl are required here \
             (CI is set): they come with mosquitto 2.0"
        );
        eprintln!("skipped: mosquitto's dynamic-security plugin or mosquitto_ctrl is missing");
        return None;
    };
    let file = dir.path().join("dynsec.json");
    // mosquitto_ctrl hashes the password; the admin role it gives is replaced below.
    let file_arg = file.display().to_string();
    must_run(Command::new("mosquitto_ctrl").args(["dynsec", "init", &file_arg, "alice", password]));
    let text = std::fs::read_to_string(&file).expect("dynsec.json");
    let mut config: serde_json::Value = serde_json::from_str(&text).expect("dynsec.json");
    config["clients"][0]["roles"] = serde_json::json!([{ "rolename": "chat" }]);
    config["roles"] = serde_json::json!([{
        "rolename": "chat",
        "acls": [
            { "acltype": "publishClientSend", "topic": "chat/ok/#", "allow": true },
            { "acltype": "subscribePattern", "topic": "chat/ok/#", "allow": true },
        ]
    }]);
    readable_file(&file, &config.to_string());
    Some(Broker::mosquitto_with(&format!(
        "allow_anonymous false\nplugin {}\nplugin_opt_config_file {}\n",
        plugin.display(),
        file.display()
    )))
}

/// Distinctive passwords, so that finding one in any output means it leaked.
pub const PASSWORD: &str = "Pw-alice-Zq7xK3vR9mTb";
pub const WRONG_PASSWORD: &str = "Pw-wrong-Hc4pN8sW2yLd";
pub const WATCHER_PASSWORD: &str = "Pw-watcher-Fk6tB1qE5uJa";

/// Password (and optionally ACL) files for mosquitto: user `alice` with [`PASSWORD`] and
/// user `watcher` with [`WATCHER_PASSWORD`].
pub struct Accounts {
    dir: TempDir,
    passwd: PathBuf,
    acl: Option<PathBuf>,
}

impl Accounts {
    pub fn new(acl: Option<&str>) -> Accounts {
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
    pub fn config(&self) -> String {
        let mut c = format!("allow_anonymous false\npassword_file {}\n", s(&self.passwd));
        if let Some(acl) = &self.acl {
            c.push_str(&format!("acl_file {}\n", s(acl)));
        }
        c
    }

    /// A password file with exactly `content`.
    pub fn password_file(&self, name: &str, content: &str) -> String {
        s(&readable_file(&self.dir.path().join(name), content))
    }
}

pub fn auth_broker(accounts: &Accounts) -> Broker {
    Broker::mosquitto_with(&accounts.config())
}

//! Real proxy servers on free loopback ports, each with a config of its own: microsocks
//! and Dante (SOCKS5) and tinyproxy (HTTP CONNECT), the Debian packages that `.ci/run`
//! installs. A server that is not installed skips its test, except under CI.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::{TempDir, free_port, have_program, wait_for_port};

/// A proxy server, killed when dropped.
pub struct ProxyServer {
    child: Child,
    pub port: u16,
    scheme: &'static str,
    _dir: Option<TempDir>,
}

/// What to install for the servers.
const INSTALL: &str = "apt-get install -y microsocks dante-server tinyproxy";

/// Starts `make(port)` on free ports until one is listened on by the child.
fn start(
    scheme: &'static str,
    dir: Option<TempDir>,
    mut make: impl FnMut(u16) -> Command,
) -> ProxyServer {
    for _ in 0..5 {
        let port = free_port();
        let mut child = make(port)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the proxy server");
        if wait_for_port(port, &mut child) {
            return ProxyServer {
                child,
                port,
                scheme,
                _dir: dir,
            };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("the {scheme} proxy server did not listen on a free port in 5 tries");
}

impl ProxyServer {
    /// microsocks (SOCKS5), with a user name and password it requires if given.
    pub fn microsocks(login: Option<(&str, &str)>) -> Option<ProxyServer> {
        if !have_program("microsocks", INSTALL) {
            return None;
        }
        Some(start("socks5", None, |port| {
            let mut c = Command::new("microsocks");
            c.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
            if let Some((user, password)) = login {
                c.args(["-u", user, "-P", password]);
            }
            c
        }))
    }

    /// Dante (SOCKS5) that refuses every connection to port `blocked` by its rules
    /// (SOCKS5 reply 2) and carries all others.
    pub fn dante(blocked: u16) -> Option<ProxyServer> {
        if !have_program("danted", INSTALL) {
            return None;
        }
        let dir = TempDir::new("danted");
        let conf = dir.path().join("danted.conf");
        let pid = dir.path().join("danted.pid");
        Some(start("socks5", None, |port| {
            let text = format!(
                "logoutput: stderr\n\
                 internal: 127.0.0.1 port = {port}\n\
                 external: 127.0.0.1\n\
                 socksmethod: none\n\
                 clientmethod: none\n\
                 user.unprivileged: nobody\n\
                 client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
                 socks block {{ from: 0.0.0.0/0 to: 0.0.0.0/0 port = {blocked} }}\n\
                 socks pass {{ from: 0.0.0.0/0 to: 0.0.0.0/0 }}\n"
            );
            std::fs::write(&conf, text).expect("write danted.conf");
            let mut c = Command::new("danted");
            c.arg("-f").arg(&conf).args(["-N", "1"]).arg("-p").arg(&pid);
            c
        }))
        .map(|mut server| {
            server._dir = Some(dir);
            server
        })
    }

    /// tinyproxy (HTTP CONNECT), with basic authentication it requires if given, and
    /// CONNECT allowed to the `ports` only (every port when empty).
    pub fn tinyproxy(login: Option<(&str, &str)>, ports: &[u16]) -> Option<ProxyServer> {
        if !have_program("tinyproxy", INSTALL) {
            return None;
        }
        let dir = TempDir::new("tinyproxy");
        let conf: PathBuf = dir.path().join("tinyproxy.conf");
        let mut server = start("http", None, |port| {
            let mut text = format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 50\nAllow 127.0.0.1\n\
                 LogLevel Warning\n"
            );
            if let Some((user, password)) = login {
                text += &format!("BasicAuth {user} {password}\n");
            }
            for p in ports {
                text += &format!("ConnectPort {p}\n");
            }
            std::fs::write(&conf, text).expect("write tinyproxy.conf");
            let mut c = Command::new("tinyproxy");
            c.arg("-d").arg("-c").arg(&conf);
            c
        });
        server._dir = Some(dir);
        Some(server)
    }

    /// The proxy's URL, with `login` (`user:password`) if given.
    pub fn url(&self, scheme: Option<&str>, login: Option<&str>) -> String {
        let login = login.map(|l| format!("{l}@")).unwrap_or_default();
        let scheme = scheme.unwrap_or(self.scheme);
        format!("{scheme}://{login}127.0.0.1:{}", self.port)
    }
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

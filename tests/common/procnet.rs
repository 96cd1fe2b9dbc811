//! Which process holds a listening TCP socket (Linux, from /proc), for servers the tests
//! start on ports picked by binding port 0 and closing it again: someone else can take
//! such a port before the intended server binds it, and a successful connect then proves
//! nothing. (chat-broker has its own check, `procnet` in src/, for its engine's
//! listeners; the tests do not use the library's.)

use std::net::{IpAddr, SocketAddr};

/// Whether process `pid` holds a socket listening on exactly `addr` (IPv4 or IPv6).
/// On systems without /proc this cannot be checked and the answer is `true`.
pub fn listens(pid: u32, addr: SocketAddr) -> bool {
    let table = match addr.ip() {
        IpAddr::V4(_) => "/proc/net/tcp",
        IpAddr::V6(_) => "/proc/net/tcp6",
    };
    let Ok(text) = std::fs::read_to_string(table) else {
        return true; // no /proc: nothing to check against
    };
    let wanted = hex_addr(addr);
    owns_any(
        pid,
        &listening([text], |local| local.eq_ignore_ascii_case(&wanted)),
    )
}

/// Whether process `pid` holds a socket listening on `port` on any address (IPv4 or IPv6).
pub fn listens_on_port(pid: u32, port: u16) -> bool {
    let suffix = format!(":{port:04X}");
    let tables = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok());
    owns_any(pid, &listening(tables, |local| local.ends_with(&suffix)))
}

/// The inodes of the listening sockets in these /proc/net/tcp tables whose local address
/// `matches`.
fn listening(
    tables: impl IntoIterator<Item = String>,
    matches: impl Fn(&str) -> bool,
) -> Vec<String> {
    tables
        .into_iter()
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                    (f.len() > 9 && f[3] == "0A" && matches(f[1])).then(|| f[9].to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether one of `pid`'s file descriptors is one of these socket inodes.
fn owns_any(pid: u32, inodes: &[String]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| {
            let t = target.to_string_lossy();
            inodes.iter().any(|inode| t == format!("socket:[{inode}]"))
        })
}

/// An address as /proc/net/tcp writes it: the address's bytes as native-endian 32-bit
/// words in hex, a colon, the port in hex.
fn hex_addr(addr: SocketAddr) -> String {
    let words: Vec<u32> = match addr.ip() {
        IpAddr::V4(ip) => vec![u32::from_ne_bytes(ip.octets())],
        IpAddr::V6(ip) => ip
            .octets()
            .chunks(4)
            .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    };
    let ip: String = words.iter().map(|w| format!("{w:08X}")).collect();
    format!("{ip}:{:04X}", addr.port())
}

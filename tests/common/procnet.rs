//! Which process holds a listening TCP socket, for servers the tests start on ports
//! picked by binding port 0 and closing it again: someone else can take such a port
//! before the intended server binds it, and a successful connect then proves nothing.
//! Linux only, from /proc; elsewhere nothing can be checked and the answer is yes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether process `pid` holds a socket listening on `port`, on loopback or on every
/// address (IPv4 or IPv6).
pub fn listens_on_port(pid: u32, port: u16) -> bool {
    let ips = [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    ];
    ips.into_iter()
        .any(|ip| listens(pid, SocketAddr::new(ip, port)))
}

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
    let inodes: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            (f.len() > 9 && f[3] == "0A" && f[1].eq_ignore_ascii_case(&wanted)).then(|| f[9])
        })
        .collect();
    owns_any(pid, &inodes)
}

/// Whether process `pid` holds an established TCP connection to 127.0.0.1:`port`.
pub fn connected_to(pid: u32, port: u16) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/net/tcp") else {
        return true; // no /proc: nothing to check against
    };
    let wanted = hex_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let inodes: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() > 9 && f[3] == "01" && f[2].eq_ignore_ascii_case(&wanted)).then(|| f[9])
        })
        .collect();
    owns_any(pid, &inodes)
}

/// Whether one of `pid`'s file descriptors is one of these socket inodes.
fn owns_any(pid: u32, inodes: &[impl AsRef<str>]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| {
            let t = target.to_string_lossy();
            inodes
                .iter()
                .any(|inode| t == format!("socket:[{}]", inode.as_ref()).as_str())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn finds_our_own_listener_and_not_others() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        assert!(listens(std::process::id(), addr));
        drop(l);
        assert!(!listens(std::process::id(), addr));
    }
}

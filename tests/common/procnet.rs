//! Which process holds a listening TCP socket, for servers the tests start on ports
//! picked by binding port 0 and closing it again: someone else can take such a port
//! before the intended server binds it, and a successful connect then proves nothing.
//! The check itself is the library's (chat-broker asks the same of its engine).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub use mqttchat::procnet::listens;

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

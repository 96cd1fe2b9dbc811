//! WebSocket transports: ws:// with its default path and a path of its own, and wss://
//! with the same certificate checks as mqtts://. mosquitto only (the embedded broker has
//! no WebSocket listener).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::common::*;

/// A TCP relay in front of a port that records the first line of what each client sent
/// (for WebSocket, the HTTP request line with the path).
struct RequestSpy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl RequestSpy {
    fn start(target: u16) -> RequestSpy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind spy");
        let port = listener.local_addr().expect("spy addr").port();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n") {
                        match conn.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let line = String::from_utf8_lossy(&head).trim_end().to_string();
                    record.lock().unwrap().push(line);
                    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                        return;
                    };
                    if upstream.write_all(&head).is_err() {
                        return;
                    }
                    let (mut c2, mut u2) = (
                        conn.try_clone().expect("clone"),
                        upstream.try_clone().expect("clone"),
                    );
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut u2, &mut c2);
                        let _ = c2.shutdown(std::net::Shutdown::Both);
                    });
                    let _ = std::io::copy(&mut conn, &mut upstream);
                    let _ = upstream.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        RequestSpy { port, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// ws:// with the default path (/mqtt) and with a path of its own: both tools send the
/// path in their HTTP request (seen by a relay) and a message makes the round trip.
#[test]
fn websocket_round_trip_default_and_explicit_path() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let (_broker, ports) = websocket_broker(&pki, "");
    for (path, expected) in [("", "/mqtt"), ("/chat/ws", "/chat/ws")] {
        let spy = RequestSpy::start(ports[1]);
        let url = format!("ws://127.0.0.1:{}{path}", spy.port);
        one_message(client("chat-sub", &url, &[]), client("chat-pub", &url, &[]));
        let request = format!("GET {expected} HTTP/1.1");
        assert_eq!(spy.seen(), [request.as_str(); 2], "requests through {url}");
    }
}

#[test]
fn secure_websocket_round_trip() {
    if !have_mosquitto() {
        return;
    }
    let pki = Pki::new();
    let (_broker, ports) = websocket_broker(&pki, "");
    let ca = ["--cafile", &s(&pki.ca)];
    for path in ["", "/chat/wss"] {
        let url = format!("wss://localhost:{}{path}", ports[2]);
        one_message(client("chat-sub", &url, &ca), client("chat-pub", &url, &ca));
    }
    // The same certificate checks apply to wss:// as to mqtts://.
    let url = format!("wss://localhost:{}", ports[2]);
    for (name, cmd) in each_tool(&url, &["--cafile", &s(&pki.other_ca)]) {
        fails_fast(
            &format!("{name} wss:// --cafile other_ca"),
            cmd,
            3,
            &["unknown certificate authority"],
        );
    }
}

//! A TCP proxy owned by the test, between a tool and its broker, that can cut every
//! connection through it at a moment the test chooses (a dropped link, as seen by both
//! ends: no DISCONNECT, just a closed socket).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Broker, DEADLINE};

/// A proxy on a free 127.0.0.1 port in front of a broker.
pub struct Proxy {
    pub port: u16,
    /// Both sockets of every connection accepted so far (closed ones included).
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accepted: Arc<AtomicUsize>,
    cuts: AtomicUsize,
}

impl Proxy {
    /// Starts forwarding 127.0.0.1:PORT to the broker.
    pub fn start(broker: &Broker) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let target = broker.port;
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (c, a) = (conns.clone(), accepted.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue; // broker down: the client sees its connection closed
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                {
                    let mut all = c.lock().unwrap();
                    all.push(client.try_clone().expect("clone"));
                    all.push(upstream.try_clone().expect("clone"));
                }
                pipe(
                    client.try_clone().expect("clone"),
                    upstream.try_clone().expect("clone"),
                );
                pipe(upstream, client);
                a.fetch_add(1, Ordering::SeqCst);
            }
        });
        Proxy {
            port,
            conns,
            accepted,
            cuts: AtomicUsize::new(0),
        }
    }

    /// `mqtt://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Closes every open connection through the proxy, abruptly, on both sides.
    pub fn cut(&self) {
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.cuts.fetch_add(1, Ordering::SeqCst);
    }

    /// How many times [`Proxy::cut`] was called.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }

    /// How many connections were made through the proxy.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` connections were made through the proxy.
    #[track_caller]
    pub fn wait_accepted(&self, n: usize) {
        let end = Instant::now() + DEADLINE;
        while self.accepted() < n {
            assert!(
                Instant::now() < end,
                "only {} connections through the proxy",
                self.accepted()
            );
            std::thread::sleep(std::time::Duration::from_millis(2)); // polling interval
        }
    }
}

/// Copies `from` → `to` on a thread until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

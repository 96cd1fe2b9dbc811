//! A TCP proxy owned by the test, between a tool and its broker, that can cut every
//! connection through it at a moment the test chooses (a dropped link, as seen by both
//! ends: no DISCONNECT, just a closed socket), stop listening for good (a dead cluster
//! node), or stand in for a broker that speaks only MQTT 3.1.1 in front of one that
//! speaks both (what RabbitMQ, NATS, aedes and amqtt do with an MQTT 5 CONNECT).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Broker, wait_until};

/// What the proxy does with a CONNECT: as `mqtt5` says for an MQTT 5 one, and with
/// `close_on_will` it closes every connection whose CONNECT has a will, without an answer
/// (NATS does so for a will topic it refuses).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rule {
    pub mqtt5: Mqtt5,
    pub close_on_will: bool,
}

/// What the proxy does with an MQTT 5 CONNECT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mqtt5 {
    /// Passes it on, like every other byte.
    #[default]
    Pass,
    /// Closes the connection without a CONNACK (RabbitMQ 3.10).
    Close,
    /// Answers with a 3.1.1 CONNACK "unacceptable protocol version" and keeps the
    /// connection open until the client closes it (NATS and aedes close it then).
    Refuse,
    /// Says nothing and keeps the connection open (amqtt 0.12, which reads the CONNECT's
    /// MQTT 5 properties as a client id length and waits for bytes that never come).
    Ignore,
}

/// A proxy on a free 127.0.0.1 port in front of a broker.
pub struct Proxy {
    pub port: u16,
    /// Both sockets of every connection accepted so far (closed ones included).
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accepted: Arc<AtomicUsize>,
    cuts: AtomicUsize,
    /// Set by [`Proxy::shut`]: the listener is closed.
    down: Arc<AtomicBool>,
}

impl Proxy {
    /// Starts forwarding 127.0.0.1:PORT to the broker.
    pub fn start(broker: &Broker) -> Proxy {
        Proxy::with(broker, Mqtt5::Pass)
    }

    /// Starts forwarding 127.0.0.1:PORT to the broker, but MQTT 5 CONNECTs as `mqtt5` says.
    pub fn with(broker: &Broker, mqtt5: Mqtt5) -> Proxy {
        let rule = Rule {
            mqtt5,
            close_on_will: false,
        };
        Proxy::with_rule(broker, rule)
    }

    /// Starts forwarding 127.0.0.1:PORT to the broker, CONNECTs as `rule` says.
    pub fn with_rule(broker: &Broker, rule: Rule) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("proxy addr").port();
        let target = broker.port;
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let (c, a, d) = (conns.clone(), accepted.clone(), down.clone());
        std::thread::spawn(move || {
            while !d.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        a.fetch_add(1, Ordering::SeqCst);
                        let c = c.clone();
                        std::thread::spawn(move || serve(client, target, rule, &c));
                    }
                    // Polling interval of the accept loop (so that `shut` can stop it).
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            // The listener is dropped here: the port refuses connections from now on.
        });
        Proxy {
            port,
            conns,
            accepted,
            cuts: AtomicUsize::new(0),
            down,
        }
    }

    /// Stops listening and cuts every connection: from now on nothing answers on the port,
    /// as with a cluster node that died.
    pub fn shut(&self) {
        self.down.store(true, Ordering::SeqCst);
        let port = self.port;
        wait_until(
            &format!("the proxy on {port} stopped listening"),
            || TcpStream::connect(("127.0.0.1", port)).is_err(),
            String::new,
        );
        self.cut();
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
}

/// One client connection: its CONNECT is read first when MQTT 5 gets special treatment,
/// then bytes flow both ways.
fn serve(mut client: TcpStream, target: u16, rule: Rule, conns: &Mutex<Vec<TcpStream>>) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_nodelay(true);
    conns
        .lock()
        .unwrap()
        .push(client.try_clone().expect("clone"));
    let mut head = Vec::new();
    if rule != Rule::default() {
        let Some((level, flags)) = connect_level_and_flags(&mut client, &mut head) else {
            return;
        };
        let mqtt5 = if level == 5 { rule.mqtt5 } else { Mqtt5::Pass };
        if mqtt5 != Mqtt5::Pass || (rule.close_on_will && flags & 0x04 != 0) {
            if mqtt5 == Mqtt5::Refuse {
                let _ = client.write_all(&[0x20, 2, 0, 1]);
            }
            if matches!(mqtt5, Mqtt5::Refuse | Mqtt5::Ignore) {
                let _ = client.read_to_end(&mut head); // until the client gives up
            }
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    }
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", target)) else {
        let _ = client.shutdown(Shutdown::Both); // broker down: the client sees a close
        return;
    };
    let _ = upstream.set_nodelay(true);
    conns
        .lock()
        .unwrap()
        .push(upstream.try_clone().expect("clone"));
    if upstream.write_all(&head).is_err() {
        return;
    }
    pipe(
        client.try_clone().expect("clone"),
        upstream.try_clone().expect("clone"),
    );
    pipe(upstream, client);
}

/// Reads the start of a CONNECT into `head`, up to its connect flags, and returns its
/// protocol level and flags.
fn connect_level_and_flags(client: &mut TcpStream, head: &mut Vec<u8>) -> Option<(u8, u8)> {
    let mut byte = [0u8; 1];
    loop {
        // type, remaining length (1–4 bytes), protocol name ("MQTT", 6 bytes), level, flags
        let len_bytes = head.iter().skip(1).take_while(|&&b| b & 0x80 != 0).count() + 1;
        if head.len() > len_bytes + 8 {
            return Some((head[len_bytes + 7], head[len_bytes + 8]));
        }
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
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

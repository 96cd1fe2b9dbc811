//! The `--dialect mqttchat-py` example (Chat with MQTTChat users): README's two lines in a
//! room with a member of the original MQTTChat, played by `tests/peers/mqttchat_py.py`
//! (paho-mqtt), as in tests/dialect.rs.

use std::path::PathBuf;
use std::process::Command;

use super::markdown::Block;
use super::output::{assert_in_order, wait_message};
use super::sandbox::Sandbox;
use crate::common::Proc;

pub fn dialect(sb: &Sandbox, block: &Block) {
    let [reader, writer] = block.lines();
    let _broker = sb.broker("127.0.0.1:1883");
    let reader = sb.start(reader);
    sb.probe(&[(&reader, "probe-")], |n| {
        sb.chat_pub_m(&format!("probe-{n}"), &["--raw", "sala"])
    });
    let mut seed = original_member(sb, "seeduser");
    seed.write(b"oi, tudo bem?\n");
    let also = [("the original's member", &seed)];
    wait_message(&reader, "seeduser: oi, tudo bem?", &also);
    sb.run(writer, b"hello from chat-pub\n").expect_code(0);
    wait_message(
        &seed,
        "alice: hello from chat-pub",
        &[("chat-sub", &reader)],
    );
    let also = [("the original's member", &seed)];
    let seen = ["* seeduser entrou neste tópico", "seeduser: oi, tudo bem?"];
    assert_in_order(&reader, &seen, &also);
    let heard = ["alice entrou neste tópico", "alice: hello from chat-pub"];
    assert_in_order(&seed, &heard, &[("chat-sub", &reader)]);
    wait_message(&reader, "alice: hello from chat-pub", &also);
}

/// The original program's member `name` in the room `sala` of the broker on
/// localhost:1883, once subscribed (and announced).
fn original_member(sb: &Sandbox, name: &str) -> Proc {
    let peer: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "peers",
        "mqttchat_py.py",
    ]
    .iter()
    .collect();
    let mut cmd = Command::new("python3");
    cmd.arg(peer)
        .args(["--port", "1883", "--name", name, "sala"]);
    cmd.current_dir(sb.work());
    let p = Proc::spawn(&mut cmd);
    p.wait_stderr("subscribed");
    p
}

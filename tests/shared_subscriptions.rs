//! Shared subscriptions (`$share/GROUP/FILTER`) with chat-sub workers as the group: each
//! message goes to one worker, under MQTT 5 and 3.1.1 alike, and a worker that goes away
//! leaves the rest to the others. Against chat-broker and mosquitto, which serves them
//! the same way.

use std::collections::BTreeSet;

use crate::common::*;

/// The texts a worker printed (`-F {text}`).
fn texts(worker: &Proc) -> Vec<String> {
    String::from_utf8_lossy(&worker.stdout())
        .lines()
        .map(str::to_string)
        .collect()
}

each_broker! {
    fn each_message_goes_to_one_worker_and_a_worker_that_leaves_to_the_others(broker) {
        let room = unique_topic("jobs");
        let group = format!("$share/workers/{room}");
        let mut w5 = Proc::subscriber(broker, &["-V", "5", "-F", "{text}", &group]);
        let w3 = Proc::subscriber(broker, &["-V", "3", "-F", "{text}", &group]);
        let (input, sent) = numbered(1, 40);
        run(&mut chat_pub(broker, &["--nick", "boss", &room]), input.as_bytes()).expect_code(0);
        let mut all = Vec::new();
        wait_until(
            "every job reached a worker",
            || {
                all = [texts(&w5), texts(&w3)].concat();
                all.len() >= sent.len()
            },
            || format!("MQTT 5 worker:\n{:?}\nMQTT 3.1.1 worker:\n{:?}", texts(&w5), texts(&w3)),
        );
        let got: BTreeSet<&String> = all.iter().collect();
        assert_eq!(got.len(), all.len(), "a job went to two workers: {all:?}");
        assert_eq!(got, sent.iter().collect(), "jobs lost or made up");
        assert!(!texts(&w5).is_empty() && !texts(&w3).is_empty(), "one worker got them all");

        // The MQTT 5 worker leaves: every later job goes to the one that is there.
        w5.signal(libc::SIGINT);
        w5.wait_until("the worker left", |p| p.exited());
        let before = texts(&w3).len();
        let (input, later) = numbered(41, 50);
        run(&mut chat_pub(broker, &["--nick", "boss", &room]), input.as_bytes()).expect_code(0);
        let lines = w3.wait_lines(before + later.len());
        assert_eq!(lines[before..], later[..]);
    }
}

//! chat-broker's engine driven by a script of several clients (see
//! `mqttchat::broker::fuzzing::engine` for what it checks).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mqttchat::broker::fuzzing::engine(data));

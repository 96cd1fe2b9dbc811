//! chat-broker's password files, read and changed (see `mqttchat::broker::fuzzing::passwd`
//! for what it checks).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mqttchat::broker::fuzzing::passwd(data));

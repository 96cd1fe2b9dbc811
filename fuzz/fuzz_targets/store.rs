//! chat-broker's store files, whole, cut short and changed, read back into an engine (see
//! `mqttchat::broker::fuzzing::store` for what it checks).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mqttchat::broker::fuzzing::store(data));

//! The codecs of chat-broker and of the tools, both protocol versions, on any bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mqttchat::broker::fuzzing::codec(data));

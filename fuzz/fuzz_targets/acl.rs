//! chat-broker's ACL files and the checks they answer (see
//! `mqttchat::broker::fuzzing::acl` for what it checks).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mqttchat::broker::fuzzing::acl(data));

//! Placeholder.
pub fn acl(_data: &[u8]) {}

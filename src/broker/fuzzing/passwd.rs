//! Placeholder.
pub fn passwd(_data: &[u8]) {}

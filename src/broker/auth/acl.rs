//! Placeholder: being written.
#![allow(dead_code, unused_variables)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}
#[derive(Debug)]
pub struct Acl;
#[derive(Debug)]
pub struct FileError {
    pub line: usize,
    pub why: String,
}
impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.why)
    }
}
impl Acl {
    pub fn parse(text: &str) -> Result<Acl, FileError> {
        Ok(Acl)
    }
    pub fn rules(&self) -> usize {
        0
    }
    pub fn allows(&self, access: Access, user: Option<&str>, client: &str, topic: &str) -> bool {
        true
    }
    pub fn may_subscribe(&self, user: Option<&str>, client: &str, filter: &str) -> bool {
        true
    }
}

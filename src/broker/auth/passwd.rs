//! Placeholder: being written.
#![allow(dead_code, unused_variables)]
#[derive(Debug)]
pub struct Passwords;
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
impl Passwords {
    pub fn parse(text: &str) -> Result<Passwords, FileError> {
        Ok(Passwords)
    }
    pub fn len(&self) -> usize {
        0
    }
    pub fn is_empty(&self) -> bool {
        true
    }
    pub fn check(&self, user: &str, password: &[u8]) -> bool {
        false
    }
}
pub fn hash(password: &[u8]) -> String {
    String::new()
}
pub fn set_user(text: &str, user: &str, password: &[u8]) -> Result<String, FileError> {
    Ok(String::new())
}
pub fn remove_user(text: &str, user: &str) -> Result<Option<String>, FileError> {
    Ok(None)
}

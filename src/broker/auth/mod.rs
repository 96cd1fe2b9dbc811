//! Who may connect, and what they may do: chat-broker's password file (`passwd`), its
//! access control list (`acl`), and the slowing of failed logins (`throttle`). Each is
//! pure: it reads text it is given and answers questions; the driver reads the files
//! (at start and on SIGHUP) and asks.

pub mod acl;
pub mod passwd;

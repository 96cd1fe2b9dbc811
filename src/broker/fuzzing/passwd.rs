//! The `passwd` target: chat-broker's password files (`--password-file`), read, and
//! changed as `chat-broker passwd` changes them.

use crate::broker::auth::passwd::{Passwords, set_user};

/// The password that the target sets.
const PASSWORD: &[u8] = b"fuzz \0\xff password";
/// The most iterations of a user's hash that the target checks a password against; a
/// hash in the input may ask for millions, more than a run should take.
const CHEAP: u32 = 1000;
/// The most users of the input whose hash the target checks a password against.
const CHECKED: usize = 4;

/// The fuzzer's bytes as a password file (as UTF-8, bad bytes replaced): its reading, no
/// panic. When it reads: a wrong password for a few of its users is refused (those whose
/// hash is cheap), and so is one for a user not in it. Then a user's password set
/// ([`set_user`]), a new user's or, when the last byte is odd, the first user's of the
/// file: the new text reads, has the users it had and that user, and the password set is
/// that user's (and no other is); a new user's line is added at the end, every line kept,
/// and a user's line replaced is the one line that changed.
pub fn passwd(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(before) = Passwords::parse(&text) else {
        return;
    };
    for user in before.users().take(CHECKED) {
        if before.cost(user).is_some_and(|n| n <= CHEAP) {
            assert!(!before.check(user, PASSWORD), "a made-up password passed");
        }
    }
    assert!(
        !before.check("fuzz: no such user", b""),
        "an unknown user passed"
    );
    let replace = data.last().is_some_and(|b| b & 1 == 1);
    let user = match before.users().next() {
        Some(first) if replace => first,
        _ => "fuzz",
    };
    let after = match set_user(&text, user, PASSWORD) {
        Ok(after) => after,
        // A user name of the input that the file could not write back.
        Err(e) if e.line == 0 && user != "fuzz" => return,
        Err(e) => panic!("a file that reads refused a change: {e}"),
    };
    let passwords = match Passwords::parse(&after) {
        Ok(p) => p,
        Err(e) => panic!("the changed file does not read: {e}"),
    };
    let added = usize::from(!before.contains(user));
    assert_eq!(
        passwords.len(),
        before.len() + added,
        "users after the change"
    );
    assert!(before.users().all(|u| passwords.contains(u)), "a user lost");
    assert!(
        passwords.check(user, PASSWORD),
        "the password set is not the user's"
    );
    assert!(!passwords.check(user, b"fuzz"), "another password passed");
    if added == 1 {
        assert!(after.starts_with(&*text), "a line changed by an addition");
        assert_eq!(
            after.lines().count(),
            text.lines().count() + 1,
            "lines added"
        );
    } else {
        let (old, new) = (text.split_inclusive('\n'), after.split_inclusive('\n'));
        assert_eq!(
            old.clone().count(),
            new.clone().count(),
            "lines after a change"
        );
        let changed = old.zip(new).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 1, "lines changed by a change of one user");
    }
}

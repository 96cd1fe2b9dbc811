//! The password file: mosquitto_passwd's own output read and checked, our hashes read
//! back, the lines that are skipped and the ones refused (with their line, and never a
//! hash's text in the reason), and `set_user`'s changes, every other byte kept.

use super::*;

/// Lines that mosquitto_passwd 2.0.11 wrote (`mosquitto_passwd -b FILE USER PASSWORD`,
/// carol's with `-H sha512`), and each user's password.
const MOSQUITTO: [(&str, &str); 5] = [
    (
        "alice:$7$101$MXcUEgJyeNm24Rib$8n5VbwfD6nlkYhtzl7eDfqNRHn9TSg1XjAooeRboK72HRQ24evtbUm\
         gtDeeH8J2KtKf3uWMKZf3K0asOaUvVCg==",
        "pass1",
    ),
    (
        "bob:$7$101$iACGnyOmIPP78/Rw$N4PYNC7zQM7EYm4YI8DvdYmmCJKizGzlSrM2rMTfzzYrxFT+aET6wpx\
         qxtcY5QkfI8BqU3dyZqClelhCqJf8+g==",
        "pass word",
    ),
    (
        "carol:$6$ZXj7PAkqdJ3VaUic$wLVfAFHZd5qHh6O3GdVF8MBqINRSv/fFmlHHFne4qmefxfuJMJwlR6y5/\
         55RbXl7wDDKVfEXyU8RmBcvpJL+lw==",
        "pass3",
    ),
    (
        "dave:$7$101$mRdaHqGIKq5vpDwj$40zuYjWo+OU5e9zg7sRktkMiveSsYrpvKLTpzFZvmfTZzsbkHjRv8y\
         QfQJCiE+q2VG9gqr/hYO9dTbpSto/4aA==",
        "",
    ),
    (
        "é ü:$7$101$vwJsylZjiWmBzbfO$aokQtDrBK7bVqov36gOzxkNIwkxHatecmOiLHli4GtRIhpg+AHCvAVs\
         NKxmtnFXTG6w2XrFaSq95y0RB5WiahA==",
        "pässwörd",
    ),
];

/// alice's password `pass1` at 1000 iterations with the salt `0123456789ab`, by Python's
/// `hashlib.pbkdf2_hmac("sha512", ...)`: another implementation, another count.
const PYTHON_1000: &str = "alice:$7$1000$MDEyMzQ1Njc4OWFi$bQrsAgInkzrEIQMQ7VDQUnbThzquJKM12\
                           VtAorLmpVbpt9yLXKpV2gdqPtMbs1e1Gj0MXT/dskwOwvoeA2y32g==";

/// A good salt and hash in base64, for lines that are bad elsewhere.
const SALT_B64: &str = "MXcUEgJyeNm24Rib";
const HASH_B64: &str = "8n5VbwfD6nlkYhtzl7eDfqNRHn9TSg1XjAooeRboK72HRQ24evtbUmgtDeeH8J2KtKf3uWMKZ\
                        f3K0asOaUvVCg==";

/// mosquitto_passwd's lines as one file.
fn mosquitto_file() -> String {
    MOSQUITTO.iter().map(|(l, _)| format!("{l}\n")).collect()
}

/// The error that `text` gives, checked for its line and for quoting no base64 (no run of
/// eight characters of a salt or hash from the text).
fn refused(text: &str, line: usize) -> String {
    let e = match Passwords::parse(text) {
        Ok(p) => panic!("{text:?} read: {p:?}"),
        Err(e) => e,
    };
    assert_eq!(e.line, line, "{text:?}: {e}");
    for field in text.split(['$', ':', '\n']).filter(|f| f.len() >= 8) {
        for i in (0..field.len() - 7).filter(|&i| field.is_char_boundary(i)) {
            let Some(run) = field.get(i..i + 8) else {
                continue;
            };
            if run
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
                && !run.bytes().all(|b| b.is_ascii_lowercase())
            {
                assert!(!e.why.contains(run), "{e} quotes {run:?}");
            }
        }
    }
    e.to_string()
}

#[test]
fn mosquitto_passwds_lines_read_and_check() {
    let p = Passwords::parse(&mosquitto_file()).unwrap();
    assert_eq!(p.len(), 5);
    assert!(!p.is_empty());
    for (line, password) in MOSQUITTO {
        let user = line.split(':').next().unwrap();
        assert!(p.contains(user), "{user}");
        assert!(p.check(user, password.as_bytes()), "{user}");
        assert!(!p.check(user, b"pass2"), "{user}");
        assert!(!p.check(user, format!("{password} ").as_bytes()), "{user}");
    }
    assert!(!p.check("alice", b"pass word"));
    assert!(!p.check("Alice", b"pass1"));
    assert_eq!(p.cost("alice"), Some(101));
    assert_eq!(p.cost("carol"), Some(1));
    assert_eq!(p.cost("zoe"), None);
    let users: Vec<&str> = p.users().collect();
    assert_eq!(users, ["alice", "bob", "carol", "dave", "é ü"]);
}

#[test]
fn a_sha512_hash_is_the_digest_of_the_password_then_the_salt() {
    let p = Passwords::parse(MOSQUITTO[2].0).unwrap();
    let h = &p.users["carol"].hash;
    assert_eq!(h.kind, Kind::Sha512);
    let mut both = b"pass3".to_vec();
    both.extend_from_slice(&h.salt);
    assert_eq!(Sha512::digest(&both)[..], h.hash[..]);
}

#[test]
fn another_iteration_count_reads_and_checks() {
    let p = Passwords::parse(PYTHON_1000).unwrap();
    assert_eq!(p.cost("alice"), Some(1000));
    assert!(p.check("alice", b"pass1"));
    assert!(!p.check("alice", b"pass2"));
}

#[test]
fn a_new_hash_is_pbkdf2_at_101_with_a_fresh_salt() {
    let (a, b) = (try_hash(b"pass1").unwrap(), try_hash(b"pass1").unwrap());
    assert_ne!(a, b, "the same salt twice");
    let fields: Vec<&str> = a.split('$').collect();
    assert_eq!(fields[..3], ["", "7", "101"]);
    assert_eq!((fields[3].len(), fields[4].len()), (16, 88));
    let p = Passwords::parse(&format!("alice:{a}\nbob:{b}\n")).unwrap();
    assert!(p.check("alice", b"pass1") && p.check("bob", b"pass1"));
    assert!(!p.check("alice", b"pass"));
    // The same derivation as mosquitto_passwd's, for its salt.
    let salt: [u8; SALT] = STANDARD.decode(SALT_B64).unwrap().try_into().unwrap();
    let ours = hash_with_salt(b"pass1", &salt);
    assert_eq!(format!("alice:{ours}"), MOSQUITTO[0].0);
}

#[test]
fn a_password_is_any_bytes() {
    for password in [&b""[..], b"\0", b"\0\xff\xfe", b"a\0b", &[0x80; 300]] {
        let text = set_user("", "u", password).unwrap();
        let p = Passwords::parse(&text).unwrap();
        assert!(p.check("u", password), "{password:?}");
        assert!(!p.check("u", &[password, b"x"].concat()), "{password:?}");
    }
    let p = Passwords::parse(&set_user("", "u", b"a\0b").unwrap()).unwrap();
    assert!(!p.check("u", b"a"), "cut at the zero byte");
    // HMAC pads its key with zeros: a password and the same with zeros after it (up to
    // SHA-512's block, 128 bytes) are one key to PBKDF2, as to every PBKDF2-HMAC.
    assert!(p.check("u", b"a\0b\0"));
    assert!(!p.check("u", &[&b"a\0b"[..], &[0; 126]].concat()));
}

#[test]
fn an_unknown_user_is_refused() {
    let p = Passwords::parse(&mosquitto_file()).unwrap();
    for user in ["", "zoe", "alice ", " alice", "alice:"] {
        assert!(!p.check(user, b"pass1"), "{user:?}");
        assert!(!p.check(user, b""), "{user:?}");
    }
    assert!(!Passwords::default().check("alice", b"pass1"));
}

#[test]
fn blank_lines_comments_blanks_and_crlf_are_read_as_mosquitto_reads_them() {
    let [(alice, _), (bob, _), (carol, _), ..] = MOSQUITTO;
    let (a_hash, b_hash) = (&alice[6..], &bob[4..]);
    let text = format!(
        "# users\n\n   \n\t# indented: {a_hash}\n  alice \t:  {a_hash} \r\n#x:y\nbob:{b_hash}\r\n\
         \r\n{carol}"
    );
    let p = Passwords::parse(&text).unwrap();
    assert_eq!(p.len(), 3);
    assert!(p.check("alice", b"pass1") && p.check("bob", b"pass word"));
    assert!(p.check("carol", b"pass3"));
    assert!(!p.contains("#x") && !p.contains(" alice"));
    for empty in ["", "\n", "\r\n\r\n", "# nobody\n", "   \t\n#\n"] {
        assert!(Passwords::parse(empty).unwrap().is_empty(), "{empty:?}");
    }
}

#[test]
fn bad_lines_are_refused_with_their_line_and_no_hash() {
    let ok = MOSQUITTO[0].0;
    let at3 = |bad: &str| refused(&format!("# c\n{ok}\n{bad}\n"), 3);
    assert!(at3("bob").contains("no ':'"));
    assert!(at3(&format!("bob{HASH_B64}")).contains("no ':'"));
    assert!(at3(&format!(":$7$101${SALT_B64}${HASH_B64}")).contains("no user name"));
    assert!(at3(&format!(" \t:$6${SALT_B64}${HASH_B64}")).contains("no user name"));
    let long = "u".repeat(MAX_USER + 1);
    assert!(at3(&format!("{long}:$6${SALT_B64}${HASH_B64}")).contains("65535"));
    assert!(Passwords::parse(&format!("{}:{}", &long[1..], &ok[6..])).is_ok());
    assert_eq!(at3("bob:"), "line 3: user \"bob\": no hash after the ':'");
    assert_eq!(
        at3("bob:  \r"),
        "line 3: user \"bob\": no hash after the ':'"
    );
    for plain in [
        "s3cretPassw0rd",
        "$5$AAAAAAAAAAAA$BBBBBBBBBBBB",
        "$argon2id$v=19$m=4096",
    ] {
        let e = at3(&format!("bob:{plain}"));
        assert!(
            e.contains("user \"bob\": the hash is not $6$ or $7$"),
            "{e}"
        );
    }
    for n in [
        "0",
        "10000001",
        "99999999999",
        "+101",
        "-1",
        " 101",
        "1e3",
        "",
        "x",
    ] {
        let e = at3(&format!("bob:$7${n}${SALT_B64}${HASH_B64}"));
        assert!(e.contains("iteration count"), "{n:?}: {e}");
    }
    assert!(Passwords::parse(&format!("b:$7$10000000${SALT_B64}${HASH_B64}")).is_ok());
    assert!(Passwords::parse(&format!("b:$7$0001${SALT_B64}${HASH_B64}")).is_ok());
    for salt in [
        "AAECAwQFBgcICQo=",
        "AAECAwQFBgcICQoLDA==",
        "MXcUEgJyeNm24Ri",
        "MXcUEgJyeNm24Ri!",
    ] {
        for kind in ["$6$", "$7$101$"] {
            let e = at3(&format!("bob:{kind}{salt}${HASH_B64}"));
            assert!(e.contains("the salt is not 12 bytes"), "{salt}: {e}");
        }
    }
    let short = "A".repeat(84);
    let unpadded = HASH_B64.trim_end_matches('=');
    let bad_char = HASH_B64.replacen('8', "-", 1);
    for hash in [
        &short[..],
        unpadded,
        &bad_char,
        &format!("{HASH_B64}AAAA"),
        "x",
    ] {
        let e = at3(&format!("bob:$7$101${SALT_B64}${hash}"));
        assert!(e.contains("the hash is not 64 bytes"), "{e}");
    }
    for fields in [
        format!("$6${SALT_B64}"),
        format!("$7$101${SALT_B64}"),
        format!("$6${SALT_B64}${HASH_B64}$"),
        format!("$7$101${SALT_B64}${HASH_B64}$x"),
        format!("$7$101${SALT_B64}:{HASH_B64}"),
    ] {
        let e = at3(&format!("bob:{fields}"));
        assert!(e.contains("does not have its fields"), "{e}");
    }
}

#[test]
fn a_user_named_twice_is_refused() {
    let [(alice, _), (bob, _), ..] = MOSQUITTO;
    let e = refused(&format!("{alice}\n{bob}\n\n {alice}\n"), 4);
    assert_eq!(e, "line 4: user \"alice\" is on line 1 already");
}

#[test]
fn errors_read_plainly_and_quote_a_name_escaped_and_short() {
    let e = FileError {
        line: 3,
        why: "why".into(),
    };
    assert_eq!(e.to_string(), "line 3: why");
    let e = FileError {
        line: 0,
        why: "why".into(),
    };
    assert_eq!(e.to_string(), "why");
    assert_eq!(quote("a\u{1b}[2Jb\""), r#""a\u{1b}[2Jb\"""#);
    let long = quote(&"é".repeat(1000));
    assert_eq!(long, format!("\"{}\"...", "é".repeat(QUOTED)));
}

#[test]
fn debug_shows_users_and_no_hash() {
    let p = Passwords::parse(&mosquitto_file()).unwrap();
    let debug = format!("{p:?}");
    assert!(
        debug.contains("alice") && debug.contains("carol"),
        "{debug}"
    );
    assert!(!debug.contains("MXcUEg") && !debug.contains('$'), "{debug}");
    assert!(
        !debug.contains("salt") && !debug.contains("hash"),
        "{debug}"
    );
}

#[test]
fn setting_a_users_password_replaces_their_line_and_keeps_every_other_byte() {
    let [(alice, _), (bob, _), (carol, _), ..] = MOSQUITTO;
    let before = format!(
        "# the users\r\n{alice}\r\n\n  bob :{}  \r\n# end\n{carol}",
        &bob[4..]
    );
    let after = set_user(&before, "bob", b"new").unwrap();
    let lines: Vec<&str> = after.split_inclusive('\n').collect();
    let old: Vec<&str> = before.split_inclusive('\n').collect();
    assert_eq!(lines.len(), old.len());
    for (i, (a, b)) in lines.iter().zip(&old).enumerate() {
        if i != 3 {
            assert_eq!(a, b, "line {}", i + 1);
        }
    }
    assert!(lines[3].starts_with("bob:$7$101$") && lines[3].ends_with("==\r\n"));
    let p = Passwords::parse(&after).unwrap();
    assert!(p.check("bob", b"new") && !p.check("bob", b"pass word"));
    assert!(p.check("alice", b"pass1") && p.check("carol", b"pass3"));
    // The last line, without a newline, stays without one.
    let after = set_user(&before, "carol", b"new").unwrap();
    assert!(after.starts_with(&before[..before.len() - carol.len()]));
    assert!(!after.ends_with('\n'));
    assert!(Passwords::parse(&after).unwrap().check("carol", b"new"));
}

#[test]
fn setting_a_new_users_password_appends_a_line() {
    let alice = MOSQUITTO[0].0;
    for before in [
        String::new(),
        format!("{alice}\n"),
        alice.into(),
        "# c".into(),
    ] {
        let after = set_user(&before, "zoe", b"pw").unwrap();
        assert!(
            after.starts_with(&before) && after.ends_with("==\n"),
            "{after:?}"
        );
        assert_eq!(after.lines().count(), before.lines().count() + 1);
        let p = Passwords::parse(&after).unwrap();
        assert!(p.check("zoe", b"pw"));
        assert_eq!(p.contains("alice"), before.starts_with("alice"));
    }
    let long = "ü".repeat(MAX_USER / 2);
    let p = Passwords::parse(&set_user("", &long, b"pw").unwrap()).unwrap();
    assert!(p.check(&long, b"pw"));
}

#[test]
fn a_user_name_the_file_cannot_hold_is_refused() {
    let long = "u".repeat(MAX_USER + 1);
    let bad = [
        "", "a:b", "a\nb", "a\rb", "a\tb", "a\0b", "\u{7f}", " a", "a ", "\u{b}a", "#a", &long,
    ];
    for user in bad {
        let e = set_user("", user, b"pw").unwrap_err();
        assert_eq!(e.line, 0, "{user:?}");
        assert!(!e.to_string().starts_with("line"), "{e}");
    }
    for user in ["a#", "a b", "é", "$7$", "a/+#"] {
        let p = Passwords::parse(&set_user("", user, b"pw").unwrap()).unwrap();
        assert!(p.check(user, b"pw"), "{user:?}");
    }
}

#[test]
fn a_file_that_does_not_read_is_not_changed() {
    let e = set_user("# c\nalice\n", "bob", b"pw").unwrap_err();
    assert_eq!(e.line, 2);
    let alice = MOSQUITTO[0].0;
    let e = set_user(&format!("{alice}\n{alice}\n"), "alice", b"pw").unwrap_err();
    assert_eq!(e.line, 2);
}

/// The fuzz target holds on a few files, so that it builds and runs in every test run.
#[test]
fn the_fuzz_target_holds_on_simple_files() {
    let alice = MOSQUITTO[0].0;
    let files = [
        String::new(),
        mosquitto_file(),
        format!("{}#\x01", mosquitto_file()),
        format!("# c\r\n{alice}"),
        format!("{alice}\n\x01"),
        format!("\u{1}x:{}\n#\x01", &alice[6..]),
        PYTHON_1000.into(),
        "not a file".into(),
    ];
    for f in files {
        crate::broker::fuzzing::passwd(f.as_bytes());
    }
    crate::broker::fuzzing::passwd(b"\xff\xfe");
}

#[test]
fn remove_user_takes_out_that_line_only() {
    let text = set_user("# users\n", "alice", b"a").unwrap();
    let text = set_user(&format!("{text}\n"), "bob", b"b").unwrap();
    let bob = text.lines().last().unwrap().to_string();
    let out = remove_user(&text, "alice").unwrap().unwrap();
    assert_eq!(out, format!("# users\n\n{bob}\n"));
    let back = Passwords::parse(&out).unwrap();
    assert!(!back.contains("alice") && back.check("bob", b"b"));
    assert_eq!(remove_user(&text, "carol").unwrap(), None);
    assert!(remove_user("no colon here\n", "alice").is_err());
}

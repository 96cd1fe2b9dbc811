//! The ACL file: read as mosquitto 2.0 reads it, checked as it checks (both tried against
//! mosquitto 2.0.11), subscriptions refused only when nothing could be read, filters
//! compared against brute force, and the speed of a large file.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::broker::engine::matches;
use crate::broker::fuzzing::acl::{allows_as_mosquitto, substitute};

use Access::{Read, Write};

fn acl(text: &str) -> Acl {
    Acl::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn error(text: &str) -> FileError {
    Acl::parse(text).expect_err(text)
}

#[test]
fn the_format_reads_as_mosquittos() {
    let a = acl("# Anonymous clients.\n\
         topic read news/#\n\
         \n\
         user alice\n\
         topic readwrite rooms/+/alice\n\
         topic deny rooms/secret/#\n\
         pattern readwrite users/%u/#\n");
    assert_eq!(a.rules(), 4);
    assert!(a.allows(Read, None, "c", "news/today"));
    assert!(!a.allows(Write, None, "c", "news/today"));
    assert!(a.allows(Write, Some("alice"), "c", "rooms/x/alice"));
    assert!(!a.allows(Read, Some("alice"), "c", "rooms/secret/alice"));
    assert!(
        !a.allows(Read, Some("alice"), "c", "news/today"),
        "anonymous only"
    );
    assert!(a.allows(Read, Some("alice"), "c", "users/alice/x"));
    assert!(
        a.allows(Read, Some("bob"), "c", "users/bob"),
        "a pattern for all"
    );
    assert!(
        !a.allows(Read, None, "c", "users//x"),
        "%u needs a username"
    );
}

#[test]
fn words_and_blanks_are_as_in_mosquitto() {
    // One word after `topic` is the filter, with readwrite access.
    let a = acl("topic read\n");
    assert!(a.allows(Read, None, "c", "read") && a.allows(Write, None, "c", "read"));
    // The filter is the rest of the line, blanks trimmed; the access is then needed.
    let a = acl("user  two words \t\ntopic  read   a b/c d \r\n");
    assert!(a.allows(Read, Some("two words"), "c", "a b/c d"));
    assert!(!a.allows(Write, Some("two words"), "c", "a b/c d"));
    // After the access, tabs are blanks too; as the only word, part of the filter.
    let a = acl("topic read \tx\ntopic \ty\n");
    assert!(a.allows(Read, None, "c", "x") && a.allows(Write, None, "c", "\ty"));
    // A name given again adds to its section.
    let a = acl("user bob\ntopic read x\nuser al\ntopic read y\nuser bob\ntopic read z\n");
    assert!(a.allows(Read, Some("bob"), "c", "x") && a.allows(Read, Some("bob"), "c", "z"));
    assert!(!a.allows(Read, Some("bob"), "c", "y"));
    // Comments (also indented, which mosquitto refuses) and blank lines.
    let a = acl("#user bob\n  # topic a\n\t\n\ntopic b\n");
    assert_eq!(a.rules(), 1);
    assert!(a.allows(Read, None, "c", "b"));
    assert!(acl("").rules() == 0 && !acl("").allows(Read, None, "c", "x"));
    // `%u` and `%c` are plain text in a `topic` rule.
    assert!(acl("topic %u/%c\n").allows(Read, None, "c", "%u/%c"));
}

#[test]
fn a_wrong_line_is_an_error_with_its_number() {
    let cases = [
        ("user a\ntopic nope x\n", 2, "unknown access 'nope'"),
        ("topic a b\n", 1, "unknown access 'a'"),
        ("\n\ntopic\n", 3, "'topic' without a topic filter"),
        ("pattern   \n", 1, "'pattern' without a topic filter"),
        ("user\n", 1, "'user' without a name"),
        ("user \t\n", 1, "'user' without a name"),
        ("bogus x\n", 1, "unknown keyword 'bogus'"),
        ("topic\tread\tx\n", 1, "unknown keyword 'topic\tread\tx'"),
        ("Topic x\n", 1, "unknown keyword 'Topic'"),
        ("topic read a/+b\n", 1, "+ must be a whole level"),
        ("topic read a/b+\n", 1, "+ must be a whole level"),
        ("topic a/#/b\n", 1, "# must be the whole last level"),
        ("pattern read %u#\n", 1, "# must be the whole last level"),
        ("topic a\0b\n", 1, "NUL"),
    ];
    for (text, line, why) in cases {
        let e = error(text);
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.why.contains(why), "{text:?}: {e}");
    }
    let long = format!("topic read {}\n", "a".repeat(65_536));
    assert!(error(&long).why.contains("longer than 65,535 bytes"));
    assert!(Acl::parse(&format!("topic read {}\n", "a".repeat(65_535))).is_ok());
    assert_eq!(
        error("topic read x\nuser a\nnope\n").to_string(),
        "line 3: unknown keyword 'nope': give topic, pattern or user"
    );
}

#[test]
fn the_own_section_decides_before_the_patterns() {
    let a = acl("user bob\n\
         topic read secret/x\n\
         topic deny open/closed\n\
         pattern deny secret/#\n\
         pattern read open/#\n");
    // bob's own grant wins over a pattern's denial, as in mosquitto 2.0.11.
    assert!(a.allows(Read, Some("bob"), "c", "secret/x"));
    assert!(!a.allows(Read, Some("al"), "c", "secret/x"));
    // bob's own denial wins over a pattern's grant.
    assert!(!a.allows(Read, Some("bob"), "c", "open/closed"));
    assert!(a.allows(Read, Some("al"), "c", "open/closed"));
    assert!(a.allows(Read, None, "c", "open/x"));
    // A rule that matches but does not give the access lets the patterns decide.
    let a = acl("user bob\ntopic read x/#\npattern write x/%u\n");
    assert!(a.allows(Write, Some("bob"), "c", "x/bob"));
    assert!(!a.allows(Write, Some("bob"), "c", "x/al"));
    // Denials first within a section, wherever they stand.
    let a = acl("user bob\ntopic a/#\ntopic deny a/b\n");
    assert!(!a.allows(Read, Some("bob"), "c", "a/b") && a.allows(Read, Some("bob"), "c", "a/c"));
}

#[test]
fn patterns_put_the_names_in_place() {
    let a = acl("pattern readwrite users/%u/#\n\
         pattern read clients/%c\n\
         pattern read p/x%uy\n\
         pattern read q/%%u\n\
         pattern deny clients/%c/%u\n\
         pattern read clients/%c/+\n");
    let ok = |u: Option<&str>, c, t| a.allows(Read, u, c, t);
    assert!(ok(Some("al"), "c", "users/al") && ok(Some("al"), "c", "users/al/x/y"));
    assert!(!ok(Some("al"), "c", "users/bo/x") && !ok(Some("al"), "c", "users/alx"));
    assert!(ok(None, "c1", "clients/c1") && !ok(None, "c1", "clients/c2"));
    // Within a level (as mosquitto 2.0 does), and `%%u` is `%` and the name.
    assert!(ok(Some("al"), "c", "p/xaly") && !ok(Some("al"), "c", "p/xboy"));
    assert!(ok(Some("al"), "c", "q/%al"));
    // The denial with %u does not apply without a username, but does with one.
    assert!(ok(None, "c1", "clients/c1/x") && !ok(Some("x"), "c1", "clients/c1/x"));
    // A name holding `/` gets nothing from patterns (mosquitto 2.0.11 lets it span
    // levels): client `a/b` would reach into `a`'s `clients/a/...`.
    assert!(!ok(Some("a/b"), "c", "users/a/b/c"));
    assert!(!ok(None, "c1/x", "clients/c1/x"));
    assert!(ok(Some("a"), "c", "users/a/b/c"));
    // An empty name is put in as it is.
    assert!(ok(Some(""), "c", "users//x"));
    // A `$` name makes a `$` filter, which may match `$` topics.
    assert!(ok(Some("x"), "$c", "clients/$c"));
    assert!(acl("pattern read %c/#\n").allows(Read, None, "$c", "$c/x"));
}

#[test]
fn wildcards_in_names_get_nothing_from_patterns() {
    let a = acl("user b+\ntopic read q\npattern read users/%u/#\npattern read all/#\n");
    for (user, client) in [
        (Some("b+"), "c"),
        (Some("#"), "c"),
        (Some("al"), "c+"),
        (None, "#"),
    ] {
        assert!(
            !a.allows(Read, user, client, "all/x"),
            "{user:?} {client:?}"
        );
        assert!(
            !a.may_subscribe(user, client, "all/x"),
            "{user:?} {client:?}"
        );
    }
    // Its own rules still apply (as in mosquitto 2.0.11).
    assert!(a.allows(Read, Some("b+"), "c", "q"));
    assert!(a.allows(Read, Some("al"), "c", "all/x"));
}

#[test]
fn dollar_topics_need_dollar_rules() {
    let a = acl("topic read #\ntopic read +/x\ntopic read $SYS/#\n");
    assert!(a.allows(Read, None, "c", "a/x") && a.allows(Read, None, "c", "$SYS/load"));
    assert!(!a.allows(Read, None, "c", "$other/x"));
    assert!(a.may_subscribe(None, "c", "$SYS/+") && !a.may_subscribe(None, "c", "$other/#"));
    let a = acl("topic deny #\ntopic read $SYS/#\n");
    assert!(a.allows(Read, None, "c", "$SYS/x") && a.may_subscribe(None, "c", "$SYS/#"));
    assert!(!a.may_subscribe(None, "c", "#"));
}

#[test]
fn a_subscription_is_refused_only_when_nothing_could_be_read() {
    let a = acl("user bob\n\
         topic read rooms/+/bob\n\
         topic write out/#\n\
         topic deny rooms/secret/#\n\
         topic read a/#\n\
         pattern deny p/#\n\
         pattern read p/%u/#\n\
         pattern read q/%u/#\n\
         pattern deny q/%c\n");
    let may = |f| a.may_subscribe(Some("bob"), "c", f);
    for f in [
        "rooms/+/bob",
        "rooms/#",
        "#",
        "+/x/+",
        "a",
        "a/#",
        "$share/g/rooms/x/bob",
    ] {
        assert!(may(f), "{f}");
    }
    for f in [
        "rooms/secret/#",
        "rooms/secret/bob",
        "out/#",
        "b/#",
        "$SYS/#",
        "$share/g/out/x",
    ] {
        assert!(!may(f), "{f}");
    }
    // bob's section has no grant there: a pattern denial covering it refuses.
    assert!(!may("p/bob/x") && !may("p/#"));
    // A pattern denial that covers only part of it does not.
    assert!(may("q/#") && may("q/bob/+"));
    assert!(!a.may_subscribe(Some("bob"), "q", "q/bob/+") || may("q/bob/x"));
    // Without any section or pattern that grants read, nothing is allowed.
    assert!(!acl("").may_subscribe(None, "c", "#"));
    assert!(!acl("topic write #\n").may_subscribe(None, "c", "#"));
}

#[test]
fn filters_meet_and_cover_as_expected() {
    let meet = [
        ("a/b", "a/b"),
        ("a/+", "+/b"),
        ("a/#", "a"),
        ("a", "a/#"),
        ("#", "a/b/c"),
        ("+/+", "a/#"),
        ("+", "#"),
        ("$SYS/#", "$SYS/x"),
        ("/#", "/+"),
    ];
    for (a, b) in meet {
        assert!(intersects(a, b) && intersects(b, a), "{a} {b}");
    }
    let apart = [
        ("a/b", "a/c"),
        ("a/+", "a"),
        ("a/+/c", "a/+"),
        ("#", "$SYS/x"),
        ("+/#", "$SYS"),
        ("a/+/#", "a"),
        ("$SYS/+", "+/+"),
        // The empty topic is no topic.
        ("/#", "+"),
    ];
    for (a, b) in apart {
        assert!(!intersects(a, b) && !intersects(b, a), "{a} {b}");
    }
    let covered = [
        ("#", "a/b"),
        ("#", "#"),
        ("+/#", "#"),
        ("a/#", "a"),
        ("a/#", "a/+/c"),
        ("a/+", "a/b"),
        ("+/+", "a/+"),
        ("$SYS/#", "$SYS/+"),
        ("/+/#", "/#"),
    ];
    for (wide, narrow) in covered {
        assert!(covers(wide, narrow), "{wide} covers {narrow}");
    }
    let not = [
        ("+", "#"),
        ("a/+", "a/#"),
        ("a/+/#", "a/#"),
        ("a", "a/#"),
        ("a/b", "a/+"),
        ("#", "$SYS/x"),
        ("+/+", "$SYS/+"),
        ("a/b", "a/b/c"),
    ];
    for (wide, narrow) in not {
        assert!(!covers(wide, narrow), "{wide} does not cover {narrow}");
    }
}

/// Levels filters are made of in the brute-force tests: names, wildcards, `$` and an
/// empty level.
const LEVELS: [&str; 5] = ["a", "b", "$a", "", "+"];

/// Every topic of up to four levels over a, b, c (a name no filter has), $a and an
/// empty level; a topic of one empty level is no topic.
fn all_topics() -> Vec<String> {
    let names = ["a", "b", "c", "$a", ""];
    let mut all: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut last = all.clone();
    for _ in 1..4 {
        last = (last.iter())
            .flat_map(|t| names.iter().map(move |n| format!("{t}/{n}")))
            .collect();
        all.extend(last.iter().cloned());
    }
    all.retain(|t| !t.is_empty());
    all
}

/// A filter of one to three levels of [`LEVELS`], sometimes ending in `#`.
fn filter() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(&LEVELS[..]), 1..=3),
        any::<u8>(),
    )
        .prop_map(|(levels, end)| match end % 3 {
            0 => format!("{}/#", levels.join("/")),
            1 if levels.len() == 1 => "#".into(),
            // One empty level is no filter.
            _ if levels == [""] => "a".into(),
            _ => levels.join("/"),
        })
}

/// A small ACL file: rules for anonymous clients, for `u`, and patterns.
fn small_acl() -> impl Strategy<Value = String> {
    let access = prop::sample::select(&["read ", "write ", "deny ", "", "readwrite "][..]);
    let level = prop::sample::select(&["a", "b", "+", "%u", "%c", "$a", "x%u"][..]);
    let pattern = (prop::collection::vec(level, 1..=3), any::<bool>())
        .prop_map(|(l, hash)| format!("{}{}", l.join("/"), if hash { "/#" } else { "" }));
    let rule = (0..3u8, access, filter(), pattern).prop_map(|(kind, access, f, p)| match kind {
        0 => format!("topic {access}{f}\n"),
        1 => format!("user u\ntopic {access}{f}\n"),
        _ => format!("pattern {access}{p}\n"),
    });
    prop::collection::vec(rule, 0..6).prop_map(|rules| {
        // Anonymous rules first, as the file would have them.
        let (anon, rest): (Vec<_>, Vec<_>) =
            rules.into_iter().partition(|r| r.starts_with("topic"));
        anon.concat() + &rest.concat()
    })
}

/// The names the brute-force tests check with: none, `u` (who has a section), a name
/// with `/`, one with `+`, and the empty one.
const USERS: [Option<&str>; 5] = [None, Some("u"), Some("a/b"), Some("u+"), Some("")];
const CLIENTS: [&str; 3] = ["a", "c", "$a"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn intersects_and_covers_agree_with_brute_force(a in filter(), b in filter()) {
        let topics = all_topics();
        let both = topics.iter().any(|t| matches(&a, t) && matches(&b, t));
        prop_assert_eq!(intersects(&a, &b), both, "{} {}", a, b);
        let all = topics.iter().all(|t| !matches(&b, t) || matches(&a, t));
        prop_assert_eq!(covers(&a, &b), all, "{} covers {}", a, b);
    }

    #[test]
    fn rules_match_as_the_engine_does(f in filter(), t in prop::sample::select(all_topics())) {
        let a = acl(&format!("topic {f}\n"));
        prop_assert_eq!(a.allows(Read, None, "c", &t), matches(&f, &t), "{} {}", f, t);
    }

    #[test]
    fn allows_is_mosquittos_check(text in small_acl()) {
        let a = acl(&text);
        for t in all_topics().iter().step_by(3) {
            for (user, client) in USERS.iter().flat_map(|u| CLIENTS.map(|c| (*u, c))) {
                for access in [Read, Write] {
                    prop_assert_eq!(
                        a.allows(access, user, client, t),
                        allows_as_mosquitto(&a, access, user, client, t),
                        "{:?} {} for {:?} {} in\n{}", access, t, user, client, text
                    );
                }
            }
        }
    }

    #[test]
    fn a_subscription_that_could_read_is_never_refused(text in small_acl(), f in filter()) {
        let a = acl(&text);
        let topics = all_topics();
        for (user, client) in USERS.iter().flat_map(|u| CLIENTS.map(|c| (*u, c))) {
            let readable = topics.iter().find(|t| matches(&f, t) && a.allows(Read, user, client, t));
            if let Some(t) = readable {
                prop_assert!(
                    a.may_subscribe(user, client, &f),
                    "{:?} {} may read {} but not subscribe to {} in\n{}", user, client, t, f, text
                );
            }
        }
    }

    #[test]
    fn one_grant_alone_is_judged_exactly(g in filter(), f in filter()) {
        let a = acl(&format!("topic read {g}\n"));
        let readable = all_topics().iter().any(|t| matches(&f, t) && matches(&g, t));
        prop_assert_eq!(a.may_subscribe(None, "c", &f), readable, "{} for {}", f, g);
    }
}

#[test]
fn substitution_is_mosquittos() {
    let cases = [
        ("a/%u/%c", Some("u"), "c", Some("a/u/c")),
        ("%%u%c%", Some("u"), "c", Some("%uc%")),
        ("x%uy", Some("a/b"), "c", Some("xa/by")),
        ("%c", None, "c", Some("c")),
        ("%u/x", None, "c", None),
    ];
    for (filter, user, client, want) in cases {
        assert_eq!(
            substitute(filter, user, client).as_deref(),
            want,
            "{filter}"
        );
        let rule = Rule::new(Grant::Read, filter, true);
        assert_eq!(
            rule.replaced(Who { user, client }).as_deref(),
            want,
            "{filter}"
        );
    }
}

/// A file of 10,000 rules for 1,000 users, ten each, and a few patterns: of the size
/// `allows` was measured on.
fn large_file() -> String {
    let mut text = String::from("topic read lobby/#\n");
    for u in 0..1000 {
        text += &format!("user user{u}\n");
        for r in 0..4 {
            text += &format!("topic readwrite rooms/room{}/#\n", (u * 7 + r) % 500);
        }
        text += &format!("topic read chat/room{}/+\n", u % 100);
        text += &format!("topic write chat/room{}/user{u}\n", u % 100);
        text += &format!("topic read notices/+/user{u}\n");
        text += &format!("topic deny rooms/room{}/secret/#\n", u % 500);
        text += &format!("topic read $SYS/broker/clients/user{u}\n");
        text += &format!("topic write inbox/user{}\n", (u + 1) % 1000);
    }
    text += "pattern readwrite users/%u/#\npattern read clients/%c/#\npattern deny %u/private/#\n";
    text
}

#[test]
fn a_large_file_reads_fast() {
    let text = large_file();
    let start = Instant::now();
    let a = acl(&text);
    let took = start.elapsed();
    assert_eq!(a.rules(), 10_004);
    assert!(
        took < Duration::from_secs(1),
        "10,004 rules read in {took:?}"
    );
    // A user given again each time, and ten thousand users once: no scan of the users
    // before (mosquitto's once was, which its fuzzing found slow).
    let again: String = (0..10_000)
        .map(|i| format!("user u{}\ntopic t/{i}\n", i % 2))
        .collect();
    let once: String = (0..10_000)
        .map(|i| format!("user u{i}\ntopic t/{i}\n"))
        .collect();
    for text in [again, once] {
        let start = Instant::now();
        assert_eq!(acl(&text).rules(), 10_000);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }
    assert!(a.allows(Read, Some("user7"), "c", "chat/room7/user3"));
    assert!(!a.allows(Read, Some("user7"), "c", "chat/room8/user3"));
}

/// The cost of a check in the large file: a message to a room of 1,000 members, checked
/// for each, and checks of mixed topics (run with `cargo test --release --lib acl_speed
/// -- --ignored --nocapture`).
#[test]
#[ignore]
fn acl_speed() {
    let a = acl(&large_file());
    let users: Vec<String> = (0..1000).map(|u| format!("user{u}")).collect();
    let mixed: Vec<String> = (0..1000)
        .map(|i| match i % 5 {
            0 => format!("chat/room{}/user{i}", i % 100),
            1 => format!("rooms/room{}/x/y", i % 500),
            2 => format!("users/user{i}/inbox"),
            3 => format!("notices/all/user{i}"),
            _ => format!("clients/c{i}/state"),
        })
        .collect();
    for (what, topic) in [("room", Some("chat/room7/user3")), ("mixed", None)] {
        let rounds = 2_000;
        let start = Instant::now();
        let mut allowed = 0usize;
        for round in 0..rounds {
            for (i, user) in users.iter().enumerate() {
                let t = topic.unwrap_or(&mixed[(i + round) % mixed.len()]);
                allowed += usize::from(a.allows(Read, Some(user), "c", t));
            }
        }
        let n = rounds * users.len();
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        println!("{what}: {ns:.0} ns per check ({allowed} of {n} allowed)");
    }
}

//! The `acl` target: chat-broker's ACL files (`--acl-file`), read and asked about the
//! topics, filters and names the bytes give; and the plain twin its answers are held to,
//! mosquitto 2.0's check as mosquitto writes it, which the module's tests use too.

use crate::broker::auth::acl::{Access, Acl, Grant, check_filter, covers, intersects};
use crate::broker::engine::matches;

/// Ends the ACL text and each probe in the fuzzer's bytes (a byte UTF-8 never has).
const SEP: u8 = 0xFF;
/// The most of each kind of probe: enough to meet the rules, few enough to run fast.
const MOST: usize = 24;

/// An ACL file and probes: the bytes up to the first 0xFF are the file, the parts after
/// it probes (names, topics, filters). No panic; an error names a line of the file. A
/// file read answers [`Acl::allows`] as [`allows_as_mosquitto`] does, for every access,
/// name and topic tried (none, the file's users and the probes; the probes and the
/// rules' filters made topics); [`Acl::may_subscribe`] never refuses a filter that
/// matches a topic the client may read (`$share/g/` before it too); and [`intersects`]
/// and [`covers`] hold on every pair of filters tried, as far as the topics tried show.
pub fn acl(data: &[u8]) {
    let mut parts = data.split(|&b| b == SEP);
    let text = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let probes: Vec<String> = (parts.take(8))
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let lines = text.split('\n').count();
    let acl = match Acl::parse(&text) {
        Ok(acl) => acl,
        Err(e) => {
            assert!((1..=lines).contains(&e.line), "{e} of {lines} lines");
            return;
        }
    };
    assert!(
        acl.rules() <= lines,
        "{} rules in {lines} lines",
        acl.rules()
    );
    let mut users: Vec<Option<&str>> = vec![None];
    let named = text.lines().filter_map(|l| l.strip_prefix("user "));
    users.extend(named.map(|n| Some(n.trim())).take(3));
    users.extend(probes.iter().take(2).map(|p| Some(p.as_str())));
    let mut clients = vec!["c"];
    clients.extend(probes.iter().skip(2).take(2).map(String::as_str));
    // The filters tried: the probes and the rules' own.
    let mut filters: Vec<String> = (probes.iter())
        .filter(|p| check_filter(p).is_ok())
        .cloned()
        .collect();
    filters.extend(["#".to_string(), "+/#".to_string()]);
    let rules = acl.own_rules(None).chain(acl.pattern_rules());
    filters.extend(rules.map(|r| r.filter.to_string()));
    for u in users.iter().flatten() {
        filters.extend(acl.own_rules(Some(u)).map(|r| r.filter.to_string()));
    }
    filters.truncate(MOST);
    for &user in &users {
        for &client in &clients {
            check_one(&acl, user, client, &filters, &probes);
        }
    }
    for a in &filters {
        for b in &filters {
            let both = topics_of(&[a.clone(), b.clone()], &probes);
            let met = both.iter().find(|t| matches(a, t) && matches(b, t));
            assert!(
                met.is_none() || intersects(a, b),
                "{a} and {b} both match {met:?}"
            );
            let missed = both.iter().find(|t| matches(b, t) && !matches(a, t));
            assert!(
                missed.is_none() || !covers(a, b),
                "{a} covers {b}, but not {missed:?}"
            );
        }
    }
}

/// The checks of [`acl`] for one client.
fn check_one(acl: &Acl, user: Option<&str>, client: &str, filters: &[String], probes: &[String]) {
    // The rules' filters with the client's names put in, as topics too.
    let mut mine: Vec<String> = filters.to_vec();
    mine.extend((acl.pattern_rules()).filter_map(|r| substitute(&r.filter, user, client)));
    mine.truncate(MOST + 8);
    let topics = topics_of(&mine, probes);
    let mut readable = Vec::new();
    for t in &topics {
        for access in [Access::Read, Access::Write] {
            let fast = acl.allows(access, user, client, t);
            let plain = allows_as_mosquitto(acl, access, user, client, t);
            assert_eq!(
                fast, plain,
                "{access:?} {t:?} for {user:?} {client:?}: allows says {fast}, mosquitto {plain}"
            );
        }
        if acl.allows(Access::Read, user, client, t) {
            readable.push(t);
        }
    }
    for f in mine.iter().filter(|f| check_filter(f).is_ok()) {
        if let Some(t) = readable.iter().find(|t| matches(f, t)) {
            // A filter starting with `$share/` is a shared subscription of what follows
            // GROUP: asked only after `$share/g/`.
            let plain = (!f.starts_with("$share/")).then(|| f.clone());
            for f in plain.into_iter().chain([format!("$share/g/{f}")]) {
                assert!(
                    acl.may_subscribe(user, client, &f),
                    "{user:?} {client:?} may read {t:?} but not subscribe to {f:?}"
                );
            }
        }
    }
}

/// Topics to try: the probes that are topics, and each filter made a topic (`+` as a
/// name, `#` as none and as two levels, a name the filters lack).
fn topics_of(filters: &[String], probes: &[String]) -> Vec<String> {
    let mut topics: Vec<String> = probes.iter().filter(|p| is_topic(p)).cloned().collect();
    for f in filters {
        let levels: Vec<&str> = f.split('/').collect();
        let named = |plus: &str, hash: &[&str]| {
            let mut out: Vec<&str> = Vec::new();
            for l in &levels {
                match *l {
                    "+" => out.push(plus),
                    "#" => out.extend_from_slice(hash),
                    l => out.push(l),
                }
            }
            out.join("/")
        };
        topics.extend([named("x", &[]), named("", &["y", "z"]), named("$q", &["x"])]);
    }
    topics.retain(|t| is_topic(t));
    topics.sort();
    topics.dedup();
    topics.truncate(MOST * 3);
    topics
}

/// Whether `t` may be published to: not empty, no wildcard, no NUL.
fn is_topic(t: &str) -> bool {
    !t.is_empty() && !t.contains(['+', '#', '\0'])
}

/// mosquitto 2.0's check (`mosquitto_acl_check_default`) as mosquitto writes it: the
/// client's own rules, denials first; then, unless its username or client id holds `+`
/// or `#`, the patterns with `%u` and `%c` replaced in a string, denials first; filters
/// matched by the engine's matcher. The slow, plain twin of [`Acl::allows`].
pub(crate) fn allows_as_mosquitto(
    acl: &Acl,
    access: Access,
    user: Option<&str>,
    client: &str,
    topic: &str,
) -> bool {
    let decide = |rules: Vec<(Grant, String)>| {
        if (rules.iter()).any(|(g, f)| *g == Grant::Deny && matches(f, topic)) {
            return Some(false);
        }
        (rules.iter())
            .any(|(g, f)| g.gives(access) && matches(f, topic))
            .then_some(true)
    };
    let own = acl.own_rules(user);
    if let Some(answer) = decide(own.map(|r| (r.grant, r.filter.to_string())).collect()) {
        return answer;
    }
    // mosquitto 2.0 refuses `+` and `#` in the names; we refuse `/` too.
    let unsafe_name = |s: &str| s.contains(['+', '#', '/']);
    if user.is_some_and(unsafe_name) || unsafe_name(client) {
        return false;
    }
    let patterns = acl.pattern_rules();
    let replaced = patterns.filter_map(|r| Some((r.grant, substitute(&r.filter, user, client)?)));
    decide(replaced.collect()) == Some(true)
}

/// mosquitto's substitution: each `%c` (read from the left) the client id, each `%u` the
/// username; None when there is a `%u` and no username (mosquitto skips the rule).
pub(crate) fn substitute(filter: &str, user: Option<&str>, client: &str) -> Option<String> {
    if user.is_none() && filter.contains("%u") {
        return None;
    }
    let mut out = String::with_capacity(filter.len());
    let mut chars = filter.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('%', Some('c')) => out.push_str(client),
            ('%', Some('u')) => out.push_str(user.unwrap_or_default()),
            _ => {
                out.push(c);
                continue;
            }
        }
        chars.next();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    /// The target holds on its seed corpus, so that it builds and holds in every test
    /// run; the fuzzer runs it on many more inputs (fuzz/README.md).
    #[test]
    fn the_acl_target_holds_on_its_seeds() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/acl");
        let mut seeds = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            super::acl(&std::fs::read(entry.unwrap().path()).unwrap());
            seeds += 1;
        }
        assert!(seeds >= 4, "{seeds} seeds in {dir}");
        super::acl(b"");
        super::acl(b"\xff\xff\xff");
    }
}

//! Topic names and filters, checked before anything is sent (a usage error, exit 2).
//!
//! rumqttc rejects `+`/`#` in a topic but accepts an empty one, and the broker's answer
//! to a bad topic is a disconnect that would look like a network problem: so both tools
//! check here and turn a bad topic into a usage error.

use crate::escape::escaped;

/// Longest topic MQTT can carry (a two-byte length prefix).
const MAX_LEN: usize = 65_535;

/// Checks a topic to publish to: non-empty, no NUL, no wildcards.
pub fn check_publish(topic: &str) -> Result<(), String> {
    check_common(topic)?;
    if topic.contains(['+', '#']) {
        return Err(format!(
            "topic '{}' contains a wildcard (+ or #): publish to one topic",
            escaped(topic)
        ));
    }
    Ok(())
}

/// Checks a subscription filter: `+` must be a whole level, `#` the whole last level.
pub fn check_filter(filter: &str) -> Result<(), String> {
    check_common(filter)?;
    // `$share/GROUP/FILTER`: a shared subscription, whose parts are checked on their own.
    if let Some(rest) = filter.strip_prefix("$share/") {
        let (group, inner) = rest.split_once('/').ok_or_else(|| {
            format!(
                "invalid shared subscription '{}': give $share/GROUP/FILTER",
                escaped(filter)
            )
        })?;
        return check_shared(group, inner);
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        let bad_plus = level.contains('+') && *level != "+";
        let bad_hash = level.contains('#') && (*level != "#" || i + 1 != levels.len());
        if bad_plus || bad_hash {
            return Err(format!(
                "invalid topic filter '{}': + must be a whole level and # the whole last \
                 level",
                escaped(filter)
            ));
        }
    }
    Ok(())
}

/// The parts of a shared subscription `$share/GROUP/FILTER`: GROUP is not empty and holds
/// no `+` or `#` (nor `/`, which ends it), FILTER is a valid filter (MQTT 5 §4.8.2).
pub fn check_shared(group: &str, filter: &str) -> Result<(), String> {
    if group.is_empty() || group.contains(['+', '#']) {
        return Err(format!(
            "invalid share name '{}' in a shared subscription: it must not be empty nor \
             hold + or #",
            escaped(group)
        ));
    }
    check_filter(filter)
}

/// Whether a filter can match more than one topic.
pub fn has_wildcard(filter: &str) -> bool {
    filter.contains(['+', '#'])
}

fn check_common(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("the topic is empty".into());
    }
    if topic.contains('\0') {
        return Err("the topic contains a NUL character".into());
    }
    if topic.len() > MAX_LEN {
        return Err(format!("the topic is longer than {MAX_LEN} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_topics() {
        assert!(check_publish("a/b").is_ok());
        assert!(check_publish("/").is_ok());
        for bad in ["", "a/+", "#", "a\0b", "a#"] {
            assert!(check_publish(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn messages_show_topics_escaped() {
        let e = check_publish("a/\u{1b}[2J#").unwrap_err();
        assert!(e.contains("a/\\x1b[2J#") && !e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn filters() {
        for ok in [
            "a",
            "a/+/b",
            "#",
            "a/#",
            "+",
            "+/+",
            "$share/g/a/#",
            "$share/g/+",
        ] {
            assert!(check_filter(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a+",
            "a/#/b",
            "a/b#",
            "x\0",
            "$share/g",
            "$share//a",
            "$share/g+/a",
            "$share/g/a#",
        ] {
            assert!(check_filter(bad).is_err(), "{bad:?}");
        }
    }
}

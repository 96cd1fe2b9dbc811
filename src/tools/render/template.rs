//! `--format` templates: `{placeholder}`s among literal text, parsed once; `{{` and `}}`
//! are braces, `\t`, `\n` and `\\` a tab, a newline and a backslash.

/// One `{placeholder}` of a `--format` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Topic,
    From,
    Text,
    Time,
    Ts,
    Received,
    Id,
    Qos,
    Retain,
    /// `{content_type}`: the MQTT 5 content type.
    ContentType,
    /// `{user:KEY}`: the MQTT 5 user property KEY (its values joined by ", ").
    UserProperty(String),
    /// `{fingerprint}`: in an encrypted room, the signer's fingerprint.
    Fingerprint,
    /// `{verified}`: in an encrypted room, whether the key is the nick's pinned one.
    Verified,
}

/// `{user:KEY}`'s prefix.
const USER_PROPERTY: &str = "user:";

const FIELDS: [(&str, Field); 12] = [
    ("topic", Field::Topic),
    ("from", Field::From),
    ("text", Field::Text),
    ("time", Field::Time),
    ("ts", Field::Ts),
    ("received", Field::Received),
    ("id", Field::Id),
    ("qos", Field::Qos),
    ("retain", Field::Retain),
    ("content_type", Field::ContentType),
    ("fingerprint", Field::Fingerprint),
    ("verified", Field::Verified),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    Field(Field),
}

/// Parses a `--format` template; the error names the problem.
pub fn parse(t: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '}' => return Err("a single '}' in --format (write '}}' for a brace)".into()),
            '\\' => match chars.peek() {
                Some('t') => push_and_skip(&mut lit, &mut chars, '\t'),
                Some('n') => push_and_skip(&mut lit, &mut chars, '\n'),
                Some('\\') => push_and_skip(&mut lit, &mut chars, '\\'),
                _ => lit.push('\\'),
            },
            '{' => {
                let field = placeholder(&mut chars)?;
                if !lit.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Field(field));
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Literal(lit));
    }
    Ok(pieces)
}

fn push_and_skip(lit: &mut String, chars: &mut std::iter::Peekable<std::str::Chars>, c: char) {
    chars.next();
    lit.push(c);
}

/// The field of a `{placeholder}` whose `{` was just read: reads up to its `}`.
fn placeholder(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<Field, String> {
    let mut name = String::new();
    loop {
        match chars.next() {
            Some('}') => break,
            Some(c) => name.push(c),
            None => {
                return Err(format!(
                    "unclosed '{{{name}' in --format (write '{{{{' for a brace)"
                ));
            }
        }
    }
    if let Some(key) = name.strip_prefix(USER_PROPERTY) {
        return Ok(Field::UserProperty(key.to_string()));
    }
    let field = FIELDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| f.clone());
    field.ok_or_else(|| {
        let mut known: Vec<String> = FIELDS.iter().map(|(n, _)| format!("{{{n}}}")).collect();
        known.push(format!("{{{USER_PROPERTY}KEY}}"));
        format!(
            "unknown placeholder {{{name}}} in --format (known: {}; write {{{{ for a brace)",
            known.join(" ")
        )
    })
}

//! The measurement behind src/json.rs: chat-sub `--json` lines written by the JSON writer
//! (through `Renderer`), by serde_json with a terminal-safe `Formatter` (plain, and with a
//! fast path for fragments that need no escape), and by the hand-assembled code the writer
//! replaced; also RFC 3339 timestamps by chrono and by the former civil-date code, and
//! envelopes. Every variant is first checked to write the same bytes as `Renderer`.
//!
//! It is kept here, out of examples/, so that the build does not compile the old code it
//! compares against. To run it (lines per run, runs; medians and minimums are printed):
//!
//!     cp bench/json_lines.rs examples/ && cargo run --release --example json_lines -- 200000 30
//!     rm examples/json_lines.rs

use std::borrow::Cow;
use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant, UNIX_EPOCH};

use base64::Engine;
use mqttchat::envelope::{self, Decoded, needs_escape, push_json_str};
use mqttchat::render::{Delivered, Format, Renderer};
use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

#[derive(Clone, Copy)]
struct Safe;

impl Formatter for Safe {
    #[inline]
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        s: &str,
    ) -> std::io::Result<()> {
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, c) in s.char_indices() {
            if needs_escape(c) {
                w.write_all(&bytes[start..i])?;
                write!(w, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&bytes[start..])
    }

    #[inline]
    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        e: CharEscape,
    ) -> std::io::Result<()> {
        match e {
            CharEscape::Backspace => w.write_all(b"\\u0008"),
            CharEscape::FormFeed => w.write_all(b"\\u000c"),
            e => CompactFormatter.write_char_escape(w, e),
        }
    }
}

/// Like Safe, but skipping quickly what cannot need an escape: serde_json has escaped C0,
/// `"` and `\`; only 0x7f, 0xc2, 0xd8 and 0xe2 begin the other characters of the rule.
#[derive(Clone, Copy)]
struct SafeFast;

impl Formatter for SafeFast {
    #[inline]
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        s: &str,
    ) -> std::io::Result<()> {
        if !s.bytes().any(|b| matches!(b, 0x7f | 0xc2 | 0xd8 | 0xe2)) {
            return w.write_all(s.as_bytes());
        }
        Safe.write_string_fragment(w, s)
    }

    #[inline]
    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        e: CharEscape,
    ) -> std::io::Result<()> {
        Safe.write_char_escape(w, e)
    }
}

#[derive(Serialize)]
struct Line<'a> {
    topic: &'a str,
    from: Option<&'a str>,
    text: &'a str,
    ts: Option<&'a str>,
    id: Option<&'a str>,
    qos: u8,
    retain: bool,
    received: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
}

fn serde_json_line<F: Formatter + Copy>(f: F, out: &mut Vec<u8>, m: &Delivered, d: &Decoded) {
    let topic = String::from_utf8_lossy(m.topic);
    let received = envelope::system_rfc3339(m.received);
    let line = Line {
        topic: &topic,
        from: d.from.as_deref(),
        text: &d.text,
        ts: d.ts.as_deref(),
        id: d.id.as_deref(),
        qos: m.qos,
        retain: m.retain,
        received: &received,
        payload_base64: (!d.utf8)
            .then(|| base64::engine::general_purpose::STANDARD.encode(m.payload)),
    };
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, f);
    let _ = line.serialize(&mut ser);
    out.push(b'\n');
}

/// The old hand-written civil-date formatting (before chrono), for the timestamp figure.
fn old_rfc3339(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// push_json_str as it was before (char by char).
fn old_push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            '\t' => Some(b"\\t"),
            c if needs_escape(c) => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        start = i + c.len_utf8();
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn old_received(t: std::time::SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    old_rfc3339(d.as_secs() as i64, d.subsec_millis())
}

/// The hand-assembled render_json before the writer module (same escapes, same bytes).
fn old_render_json(out: &mut Vec<u8>, m: &Delivered, d: &Decoded) {
    let opt = |out: &mut Vec<u8>, v: &Option<Cow<str>>| match v {
        Some(s) => old_push_json_str(out, s),
        None => out.extend_from_slice(b"null"),
    };
    out.extend_from_slice(b"{\"topic\":");
    old_push_json_str(out, &String::from_utf8_lossy(m.topic));
    out.extend_from_slice(b",\"from\":");
    opt(out, &d.from);
    out.extend_from_slice(b",\"text\":");
    old_push_json_str(out, &d.text);
    out.extend_from_slice(b",\"ts\":");
    opt(out, &d.ts);
    out.extend_from_slice(b",\"id\":");
    opt(out, &d.id);
    let _ = write!(
        out,
        ",\"qos\":{},\"retain\":{},\"received\":\"{}\"",
        m.qos,
        m.retain,
        old_received(m.received)
    );
    if !d.utf8 {
        out.extend_from_slice(b",\"payload_base64\":\"");
        let b64 = base64::engine::general_purpose::STANDARD.encode(m.payload);
        out.extend_from_slice(b64.as_bytes());
        out.push(b'"');
    }
    out.push(b'}');
    out.push(b'\n');
}

/// The same with chrono's timestamp.
fn old_render_json_chrono(out: &mut Vec<u8>, m: &Delivered, d: &Decoded) {
    let opt = |out: &mut Vec<u8>, v: &Option<Cow<str>>| match v {
        Some(s) => old_push_json_str(out, s),
        None => out.extend_from_slice(b"null"),
    };
    out.extend_from_slice(b"{\"topic\":");
    old_push_json_str(out, &String::from_utf8_lossy(m.topic));
    out.extend_from_slice(b",\"from\":");
    opt(out, &d.from);
    out.extend_from_slice(b",\"text\":");
    old_push_json_str(out, &d.text);
    out.extend_from_slice(b",\"ts\":");
    opt(out, &d.ts);
    out.extend_from_slice(b",\"id\":");
    opt(out, &d.id);
    let _ = write!(
        out,
        ",\"qos\":{},\"retain\":{},\"received\":\"{}\"",
        m.qos,
        m.retain,
        envelope::system_rfc3339(m.received)
    );
    if !d.utf8 {
        out.extend_from_slice(b",\"payload_base64\":\"");
        let b64 = base64::engine::general_purpose::STANDARD.encode(m.payload);
        out.extend_from_slice(b64.as_bytes());
        out.push(b'"');
    }
    out.push(b'}');
    out.push(b'\n');
}

/// envelope::encode before the writer module.
fn old_encode(out: &mut Vec<u8>, id: &str, from: &str, ts: &str, text: &str) {
    out.extend_from_slice(b"{\"id\":");
    old_push_json_str(out, id);
    out.extend_from_slice(b",\"from\":");
    old_push_json_str(out, from);
    out.extend_from_slice(b",\"ts\":");
    old_push_json_str(out, ts);
    out.extend_from_slice(b",\"text\":");
    old_push_json_str(out, text);
    out.push(b'}');
}

fn time_encode(n: usize, f: fn(&mut Vec<u8>, &str, &str, &str, &str)) -> Duration {
    let texts: Vec<String> = (1..=1000).map(|i: u32| i.to_string()).collect();
    let id = "0123456789abcdef0123456789abcdef";
    let ts = "2026-11-29T22:00:00.123Z";
    let mut out = Vec::with_capacity(256);
    let start = Instant::now();
    for i in 0..n {
        out.clear();
        f(&mut out, id, "root", ts, &texts[i % texts.len()]);
        black_box(&out);
    }
    start.elapsed()
}

fn payloads() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..10_000u32 {
        let mut p = Vec::new();
        let id = format!("{:032x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15);
        envelope::encode(
            &mut p,
            &id,
            "root",
            "2026-11-29T22:00:00.123Z",
            &(i + 1).to_string(),
        );
        out.push(p);
    }
    out
}

fn time<F: FnMut(&mut Vec<u8>, &Delivered, &Decoded)>(
    n: usize,
    decoded: &[(Vec<u8>, Decoded)],
    mut f: F,
) -> Duration {
    let mut out = Vec::with_capacity(1 << 17);
    let start = Instant::now();
    for i in 0..n {
        let (p, d) = &decoded[i % decoded.len()];
        let m = Delivered {
            topic: b"t",
            payload: p,
            qos: 1,
            retain: false,
            received: UNIX_EPOCH + Duration::from_millis(1_795_694_462_123 + i as u64),
        };
        f(&mut out, &m, d);
        if out.len() > 1 << 16 {
            black_box(&out);
            out.clear();
        }
    }
    black_box(&out);
    start.elapsed()
}

fn check_same() {
    let hostile = [
        "plain",
        "a\"b\\c",
        "\n\r\t\u{8}\u{c}\u{1b}[31m",
        "\u{7f}\u{80}\u{9b}\u{9f}\u{a0}",
        "\u{61c}\u{200e}\u{200f}\u{2028}\u{202e}\u{2066}\u{2069}\u{206a}",
        "é 🎉 \u{feff}",
    ];
    for h in hostile {
        let mut p = Vec::new();
        envelope::encode(&mut p, h, h, h, h);
        for payload in [p.clone(), h.as_bytes().to_vec(), b"\xff\xfe\x1b".to_vec()] {
            let d = envelope::decode(&payload);
            let m = Delivered {
                topic: h.as_bytes(),
                payload: &payload,
                qos: 2,
                retain: true,
                received: UNIX_EPOCH + Duration::from_millis(1_795_694_462_123),
            };
            let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
            Renderer::new(Format::Json, false).render(&mut a, &m, &d);
            serde_json_line(Safe, &mut b, &m, &d);
            serde_json_line(SafeFast, &mut c, &m, &d);
            let mut e = Vec::new();
            old_render_json(&mut e, &m, &d);
            assert_eq!(a, e, "{h:?}");
            let (mut x, mut y) = (Vec::new(), Vec::new());
            envelope::encode(&mut x, h, h, h, h);
            old_encode(&mut y, h, h, h, h);
            assert_eq!(x, y);
            let cut = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
            assert_eq!(cut(&a), cut(&b), "{h:?}");
            assert_eq!(cut(&a), cut(&c), "{h:?}");
        }
        let mut x = Vec::new();
        push_json_str(&mut x, h);
        let mut y = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut y, Safe);
        h.serialize(&mut ser).unwrap();
        assert_eq!(x, y);
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    check_same();
    let raw = payloads();
    let decoded: Vec<(Vec<u8>, Decoded<'static>)> = raw
        .into_iter()
        .map(|p| {
            let leaked: &'static [u8] = Box::leak(p.clone().into_boxed_slice());
            (p, envelope::decode(leaked))
        })
        .collect();
    let mut renderer = Renderer::new(Format::Json, false);
    let rounds: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let mut res: Vec<Vec<f64>> = vec![Vec::new(); 9];
    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    for _ in 0..rounds {
        res[0].push(per(time(n, &decoded, |o, m, d| renderer.render(o, m, d))));
        res[1].push(per(time(n, &decoded, |o, m, d| {
            serde_json_line(Safe, o, m, d)
        })));
        res[2].push(per(time(n, &decoded, |o, m, d| {
            serde_json_line(SafeFast, o, m, d)
        })));
        res[5].push(per(time(n, &decoded, old_render_json)));
        res[6].push(per(time(n, &decoded, old_render_json_chrono)));
        res[7].push(per(time_encode(n, envelope::encode)));
        res[8].push(per(time_encode(n, old_encode)));
        let s = Instant::now();
        for i in 0..n {
            black_box(old_rfc3339(1_795_694_462 + i as i64, (i % 1000) as u32));
        }
        res[3].push(per(s.elapsed()));
        let s = Instant::now();
        for i in 0..n {
            black_box(envelope::rfc3339(
                1_795_694_462 + i as i64,
                (i % 1000) as u32,
            ));
        }
        res[4].push(per(s.elapsed()));
    }
    let names = [
        "writer: Renderer, Format::Json",
        "serde formatter",
        "serde formatter + fast path",
        "rfc3339, civil-date code (before)",
        "rfc3339 chrono",
        "hand-assembled (before)",
        "before, but chrono timestamps",
        "envelope::encode (writer)",
        "envelope::encode (before)",
    ];
    for (name, mut v) in names.iter().zip(res) {
        v.sort_by(f64::total_cmp);
        println!(
            "{name:36} min {:6.1} ns  median {:6.1} ns  (of {rounds} x {n})",
            v[0],
            v[v.len() / 2]
        );
    }
}

//! chat-pub's stdin split into lines: read a chunk at a time, each line handed to the
//! [`Sink`] by the [`LineRules`], a line longer than the limit reported and dropped
//! without being buffered.

use std::io::{ErrorKind, Read};
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::{Control, LineRules, Outgoing, Sink};

/// Reads `r` to the end, splitting lines by the rules and flushing a batch after every
/// read: a line typed in a terminal goes out at once, a fast pipe goes out in blocks.
pub(super) fn read_lines(
    mut r: impl Read,
    rules: LineRules,
    sink: &mut Sink,
    tx: &mpsc::Sender<Vec<Outgoing>>,
) {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut lines = Lines::new(rules);
    loop {
        // After a signal the publisher sends what was read so far, and nothing more is read
        // (an unfinished last line is dropped, as a terminal drops a line on Ctrl-C).
        if sink.control.stop.load(Ordering::Acquire) {
            return;
        }
        let n = match read_chunk(&mut r, &mut chunk, sink.control) {
            Got::Bytes(n) => n,
            Got::Interrupted => continue,
            Got::End => break,
        };
        lines.feed(&chunk[..n], sink);
        let batch = sink.take();
        if !batch.is_empty() && tx.blocking_send(batch).is_err() {
            return; // the publisher stopped; nothing more will be sent
        }
    }
    lines.finish(sink);
}

/// What one read(2) of stdin gave.
enum Got {
    Bytes(usize),
    /// Interrupted by a signal before reading anything: look at `stop`, then read again.
    Interrupted,
    /// End of input, or an error (reported, and counted as a failure).
    End,
}

/// One read into `chunk`, flagged as idle while it waits.
fn read_chunk(r: &mut impl Read, chunk: &mut [u8], control: &Control) -> Got {
    control.idle.store(true, Ordering::Release);
    let read = r.read(chunk);
    control.idle.store(false, Ordering::Release);
    match read {
        Ok(0) => Got::End,
        Ok(n) => Got::Bytes(n),
        Err(e) if e.kind() == ErrorKind::Interrupted => Got::Interrupted,
        Err(e) => {
            crate::tool::say(format_args!("cannot read stdin: {e}"));
            control.failures.fetch_add(1, Ordering::Relaxed);
            Got::End
        }
    }
}

/// Splits what is read into lines, keeping the unfinished last one between reads; a line
/// longer than the limit is reported once and dropped up to its newline, never buffered.
struct Lines {
    rules: LineRules,
    /// The unfinished line so far.
    partial: Vec<u8>,
    /// Whether the current line is over the limit (reported; dropped up to its newline).
    skipping: bool,
    /// The number of lines ended so far.
    no: u64,
}

impl Lines {
    fn new(rules: LineRules) -> Lines {
        Lines {
            rules,
            partial: Vec::new(),
            skipping: false,
            no: 0,
        }
    }

    /// Hands every line that `rest` completes to `sink`.
    fn feed(&mut self, mut rest: &[u8], sink: &mut Sink) {
        while !rest.is_empty() {
            let (segment, ended) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = &rest[segment.len() + usize::from(ended)..];
            self.segment(segment, ended, sink);
        }
    }

    /// A piece of a line, up to its newline when `ended`.
    fn segment(&mut self, segment: &[u8], ended: bool, sink: &mut Sink) {
        let max_line = self.rules.max_line;
        if !self.skipping && self.partial.len() + segment.len() > max_line {
            let why = format!("longer than {max_line} bytes (--max-size)");
            sink.fail(self.no + 1, &why);
            self.skipping = true;
            self.partial.clear();
        }
        if !ended {
            if !self.skipping {
                self.partial.extend_from_slice(segment);
            }
            return;
        }
        self.no += 1;
        if std::mem::take(&mut self.skipping) {
            return;
        }
        if self.partial.is_empty() {
            emit(sink, self.rules, self.no, segment);
        } else {
            self.partial.extend_from_slice(segment);
            emit(sink, self.rules, self.no, &self.partial);
            self.partial.clear();
        }
    }

    /// The last line counts even without a trailing newline.
    fn finish(self, sink: &mut Sink) {
        if !self.partial.is_empty() && !self.skipping {
            emit(sink, self.rules, self.no + 1, &self.partial);
        }
    }
}

fn emit(sink: &mut Sink, rules: LineRules, no: u64, mut line: &[u8]) {
    if !rules.keep_cr {
        line = line.strip_suffix(b"\r").unwrap_or(line);
    }
    if line.is_empty() && !rules.keep_empty {
        return;
    }
    sink.line(no, line);
}

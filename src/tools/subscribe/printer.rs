//! What chat-sub prints, without I/O: messages, joins and leaves, the `--who` roster,
//! rendered into one buffer that the driver writes to stdout after each batch; and the
//! count of printed messages for `--count`.

use crate::room::envelope::Decoded;
use crate::tools::render::{Delivered, Online, PresenceLine, Renderer};

/// The buffer of lines not yet written, and what was printed.
pub struct Printer {
    renderer: Renderer,
    buf: Vec<u8>,
    /// `--count`.
    count: Option<u64>,
    printed: u64,
    /// Whether messages are printed with their marks (not `--raw`, not a `--format`
    /// without `{verified}`): decided once, from the format.
    pub shows_marks: bool,
}

impl Printer {
    pub fn new(renderer: Renderer, count: Option<u64>) -> Printer {
        Printer {
            shows_marks: renderer.shows_marks(),
            renderer,
            buf: Vec::with_capacity(64 * 1024),
            count,
            printed: 0,
        }
    }

    /// Prints a message; true when `--count` is reached. A notice of the original
    /// MQTTChat is shown as an event, like a join: it does not count.
    pub fn message(&mut self, m: &Delivered, d: &Decoded) -> bool {
        if d.notice {
            self.renderer.render_notice(&mut self.buf, m, &d.text);
            return false;
        }
        self.renderer.render(&mut self.buf, m, d);
        self.printed += 1;
        self.count.is_some_and(|n| self.printed >= n)
    }

    /// Marks a payload of an encrypted room that did not open (`--json` only; never
    /// counted).
    pub fn rejected(&mut self, m: &Delivered, reason: &str) {
        self.renderer.render_rejected(&mut self.buf, m, reason);
    }

    /// Prints a join or leave (never counted).
    pub fn presence(&mut self, line: &PresenceLine) {
        self.renderer.render_presence(&mut self.buf, line);
    }

    /// Prints one entry of `--who`.
    pub fn who(&mut self, online: &Online) {
        self.renderer.render_who(&mut self.buf, online);
    }

    /// `--count 0`: there is nothing to wait for.
    pub fn wants_none(&self) -> bool {
        self.count == Some(0)
    }

    /// With `--count N` not reached: (printed, N).
    pub fn shortfall(&self) -> Option<(u64, u64)> {
        self.count
            .filter(|&n| self.printed < n)
            .map(|n| (self.printed, n))
    }

    /// The lines to write.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }
}

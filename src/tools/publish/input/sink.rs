//! Where chat-pub's input thread collects the messages of one read: each line prepared
//! as it comes, bad ones reported, and those of an encrypted room signed together and
//! sealed when the batch is handed over.

use std::sync::atomic::Ordering;

use super::{Control, Outgoing, Prepared, Preparer};

/// The messages of one read, on their way to the publisher.
pub(super) struct Sink<'a> {
    pub(super) prep: &'a mut Preparer,
    pub(super) batch: Vec<Outgoing>,
    /// Which messages of `batch` are still to be signed and sealed.
    pub(super) unsealed: Vec<usize>,
    pub(super) control: &'a Control,
    /// `line` or `message`, as reports name an input.
    pub(super) label: &'static str,
}

impl Sink<'_> {
    pub(super) fn line(&mut self, no: u64, bytes: &[u8]) {
        match self.prep.prepare(no, bytes) {
            Ok(Prepared::Message(m)) => self.batch.push(m),
            Ok(Prepared::ToSeal(m)) => {
                self.unsealed.push(self.batch.len());
                self.batch.push(m);
            }
            Ok(Prepared::Skip) => {}
            Err(why) => self.fail(no, &why),
        }
    }

    pub(super) fn fail(&mut self, no: u64, why: &str) {
        crate::tool::say(format_args!("{} {no}: {why}; not sent", self.label));
        self.control.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The messages read so far, ready to publish: those of an encrypted room signed
    /// together and sealed (if that fails, each is reported and left out).
    pub(super) fn take(&mut self) -> Vec<Outgoing> {
        let mut batch = std::mem::take(&mut self.batch);
        let unsealed = std::mem::take(&mut self.unsealed);
        if unsealed.is_empty() {
            return batch;
        }
        if let Err(why) = self.prep.seal(&mut batch, &unsealed) {
            let mut left_out = Vec::with_capacity(unsealed.len());
            for &i in unsealed.iter().rev() {
                left_out.push(batch.remove(i).line);
            }
            for &no in left_out.iter().rev() {
                self.fail(no, &why);
            }
        }
        batch
    }
}

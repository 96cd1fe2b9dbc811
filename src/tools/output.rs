//! chat-sub's standard output: each batch written with one system call, and a
//! watcher that notices at once when the reader of a pipe goes away.

use std::fs::File;
use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;

use tokio::sync::oneshot;

/// stdout without a buffer of its own: the caller hands over whole batches of lines.
pub struct Output {
    /// fd 1, not closed on drop.
    file: ManuallyDrop<File>,
}

impl Output {
    pub fn stdout() -> Output {
        // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop keeps this
        // File from closing it.
        let file = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
        Output { file }
    }

    /// Writes all of `buf` with as few system calls as the kernel allows, and empties it
    /// (also on failure: what could not be written is not tried again).
    pub fn write(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all(buf);
        buf.clear();
        r
    }
}

/// Resolves when stdout's reader goes away (`chat-sub t | head -n 1`), so chat-sub can
/// end at once instead of at its next write, which may never come.
pub fn watch_stdout() -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("stdout-watch".into())
        .spawn(move || {
            let mut pfd = libc::pollfd {
                fd: 1,
                events: 0,
                revents: 0,
            };
            loop {
                // SAFETY: one valid pollfd, for the duration of the call.
                let r = unsafe { libc::poll(&mut pfd, 1, -1) };
                if r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if r > 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                    let _ = tx.send(());
                    return;
                }
                // POLLNVAL (no stdout at all) or an error: writes will report it. Keep the
                // sender alive, or the receiver would read its drop as "closed".
                loop {
                    std::thread::park();
                }
            }
        });
    if let Err(e) = spawned {
        log::debug!("cannot watch stdout: {e}");
    }
    rx
}

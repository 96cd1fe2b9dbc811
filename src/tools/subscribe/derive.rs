//! chat-sub's thread of key derivations: the keys of new rooms (a wildcard subscription
//! meets one per topic) are derived here, off the I/O thread, so that a flood of new
//! topics holds up no room whose key is at hand. Room names come in over a channel, keys
//! go back over another that the driver's `select!` reads; the state (`subscribe::room`)
//! decides what is derived and parks what waits.
//!
//! Argon2's 19 MiB of work memory is one mapping ([`Memory`]), kept while a burst of
//! derivations runs and wiped and given back to the system as soon as nothing else is
//! asked for: a flood leaves chat-sub as small as it was.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread::JoinHandle;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::room::seal::{Memory, RoomKey, RoomSecret};

/// The thread and its two channels.
pub struct Deriver {
    rooms: Option<mpsc::Sender<String>>,
    keys: UnboundedReceiver<(String, RoomKey)>,
    thread: Option<JoinHandle<()>>,
}

impl Deriver {
    /// Starts the thread, which keeps the secret for the run.
    pub fn start(secret: Arc<RoomSecret>) -> Result<Deriver, std::io::Error> {
        let (rooms, wanted) = mpsc::channel();
        let (done, keys) = unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("room keys".into())
            .spawn(move || derive(&secret, &wanted, &done))?;
        Ok(Deriver {
            rooms: Some(rooms),
            keys,
            thread: Some(thread),
        })
    }

    /// Asks for the key of `room`.
    pub fn want(&self, room: String) {
        // The thread ends only when this sender is dropped (or it panicked: then no key
        // comes, and what waits for one waits until the run ends).
        if let Some(rooms) = &self.rooms {
            let _ = rooms.send(room);
        }
    }

    /// The next key derived: (room, key).
    pub async fn next(&mut self) -> Option<(String, RoomKey)> {
        self.keys.recv().await
    }
}

impl Drop for Deriver {
    /// Ends the thread (after the derivation under way, if any: tens of milliseconds), so
    /// that its copy of the secret and its work memory are wiped before the process ends.
    fn drop(&mut self) {
        self.rooms.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The thread: derives each room asked for, in order, reusing one work memory while more
/// are asked for, and giving it back when none is.
fn derive(
    secret: &RoomSecret,
    wanted: &Receiver<String>,
    done: &UnboundedSender<(String, RoomKey)>,
) {
    let mut memory = Memory::default();
    loop {
        let room = match wanted.try_recv() {
            Ok(room) => room,
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => {
                memory.release();
                match wanted.recv() {
                    Ok(room) => room,
                    Err(_) => return,
                }
            }
        };
        let key = RoomKey::derive_in(secret, &room, &mut memory);
        if done.send((room, key)).is_err() {
            return;
        }
    }
}

//! The defaults of the tools' options, in one leaf module. The help texts (`cli`) state
//! them, and the modules whose behaviour they set use them; both read them here, so that
//! neither imports the other and the help cannot drift from the code. It imports nothing
//! of the crate: every layer may read it.

use std::time::Duration;

/// `-q`: at least once, not mosquitto's 0: chat must not lose lines.
pub const QOS: u8 = 1;

/// chat-broker's `--listen`: this machine only.
pub const LISTEN: &str = "127.0.0.1:1883";

/// chat-pub's `--max-size`: 1 MiB (also the memory one line may take).
pub const PUB_MAX_SIZE: usize = 1 << 20;

/// chat-sub's `--max-size`: the protocol's largest packet, so that nothing is dropped for
/// size. Written out rather than taken from the wire codec, so that this module imports
/// nothing; a test of the codec checks that the two agree.
pub const SUB_MAX_SIZE: usize = 268_435_455 + 5;

/// chat-sub `--session`: how long (seconds) a broker keeps the session after chat-sub
/// disconnects (MQTT 5): a week.
pub const SESSION_EXPIRY: u32 = 7 * 24 * 3600;

/// `--who`: how long no presence message must arrive before the roster counts as
/// complete (MQTT has no end-of-retained marker).
pub const WHO_QUIET: Duration = Duration::from_millis(500);

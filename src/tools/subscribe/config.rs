//! chat-sub's options resolved once into a [`SubConfig`]: the connection, the format,
//! what to show and when to stop. Every problem is a usage error, found before anything
//! is sent.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use super::inbox::Inbox;
use super::members::Members;
use super::printer::Printer;
use super::room::Room;
use super::state::{SubState, Subscriptions};
use super::view::{Mode, View};
use crate::cli::{ColorWhen, SubArgs};
use crate::defaults;
use crate::error::Error;
use crate::mqtt::coalesce::Reads;
use crate::mqtt::connect::ConnectOptions;
use crate::mqtt::topic;
use crate::room::dialect::Dialect;
use crate::room::seal::{Keyring, RoomSecret};
use crate::tools::options;
use crate::tools::render::{Format, Renderer};

/// Everything chat-sub's run needs, resolved from its arguments.
pub struct SubConfig {
    pub connect: ConnectOptions,
    pub connect_timeout: Duration,
    /// `--timeout`, counted from the first connection.
    pub run_for: Option<Duration>,
    /// The state the run starts from.
    pub state: SubState,
    /// The room secret, for the thread that derives new rooms' keys.
    pub secret: Option<Arc<RoomSecret>>,
}

impl SubConfig {
    /// Checks and resolves the arguments.
    pub fn new(args: &SubArgs) -> Result<SubConfig, Error> {
        for t in &args.topics {
            topic::check_filter(t).map_err(Error::Usage)?;
        }
        let format = format(args)?;
        let max_in = args.max_size.unwrap_or(defaults::SUB_MAX_SIZE);
        let mut connect = options::resolve(&args.common, "chat-sub", max_in)?;
        // Under load, fewer wake-ups leave the broker more CPU (see crate::mqtt::coalesce).
        connect.reads = Reads::Stream;
        if let Some(name) = &args.session {
            persistent(&mut connect, name)?;
        }
        let mode = match (args.who, args.no_presence) {
            (true, _) => Mode::Who,
            (false, true) => Mode::Hidden,
            (false, false) => Mode::Shown,
        };
        let hidden = hidden_nicks(args)?;
        let dialect = Dialect::from(args.dialect);
        if dialect != Dialect::Envelope && options::has_room_secret(&args.common) {
            return Err(Error::Usage(crate::room::dialect::WITH_SECRET.into()));
        }
        if dialect != Dialect::Envelope && args.raw {
            return Err(Error::Usage(crate::room::dialect::WITH_RAW.into()));
        }
        let secret = options::room_secret(&args.common)?.map(Arc::new);
        let room = match &secret {
            Some(s) => Some(
                Room::new(Keyring::new(Arc::clone(s)), &args.topics)
                    .with_members(Members::new(super::known::read()?)),
            ),
            None => None,
        };
        let subs = Subscriptions {
            filters: args.topics.clone(),
            qos: args.common.qos,
            no_local: args.hide_own,
        };
        let printer = Printer::new(Renderer::new(format, use_color(args.color)), args.count);
        let mut inbox =
            Inbox::new(hidden.clone(), args.no_retained).with_dialect(dialect, args.no_presence);
        if args.hide_own && secret.is_some() {
            // In an encrypted room, your own lines are those your identity signed.
            let own = options::own_nick(args.nick.as_deref()).unwrap_or_default();
            let fp = crate::tools::identity::load(&args.common)?.fingerprint();
            inbox = inbox.with_own(own, fp.0);
        }
        let state = SubState::new(subs, inbox, View::new(mode, hidden), printer);
        Ok(SubConfig {
            connect,
            connect_timeout: args.common.connect_timeout,
            run_for: args.timeout,
            state: state
                .with_session(args.session.is_some(), max_in)
                .with_room(room),
            secret,
        })
    }
}

/// The output format the flags ask for.
fn format(args: &SubArgs) -> Result<Format, Error> {
    Ok(if args.json {
        Format::Json
    } else if args.raw {
        Format::Raw
    } else if let Some(t) = &args.format {
        Format::template(t).map_err(Error::Usage)?
    } else {
        let prefix = args.topics.len() > 1 || args.topics.iter().any(|t| topic::has_wildcard(t));
        Format::Text {
            topic_prefix: prefix,
        }
    })
}

/// `--session NAME`: a fixed client id and a session the broker keeps.
fn persistent(opts: &mut ConnectOptions, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > 65_535 {
        return Err(Error::Usage(
            "--session needs a name of 1 to 65535 bytes".into(),
        ));
    }
    opts.spec.client_id = name.to_string();
    opts.spec.clean_start = false;
    opts.spec.session_expiry = Some(defaults::SESSION_EXPIRY);
    Ok(())
}

/// `--ignore` nicks, and with `--hide-own` the nick chat-pub would send for this user.
fn hidden_nicks(args: &SubArgs) -> Result<HashSet<String>, Error> {
    let mut hidden: HashSet<String> = args.ignore.iter().cloned().collect();
    if args.hide_own {
        let own = options::own_nick(args.nick.as_deref())
            .ok_or_else(|| Error::Usage("--hide-own needs --nick (or CHAT_NICK)".into()))?;
        hidden.insert(own);
    }
    Ok(hidden)
}

/// Whether to colour nicks: `--color`, and for `auto` a terminal without NO_COLOR.
fn use_color(when: ColorWhen) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

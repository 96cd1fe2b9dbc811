//! chat-pub's options resolved once into a [`PubConfig`]: what the input thread needs,
//! what the connection needs, and the presence to announce. Every problem is a usage
//! error, found before anything is sent.

use std::time::Duration;

use bytes::Bytes;

use crate::cli::PubArgs;
use crate::defaults;
use crate::error::Error;
use crate::mqtt::coalesce::Reads;
use crate::mqtt::connect::ConnectOptions;
use crate::mqtt::dial::VersionChoice;
use crate::mqtt::topic;
use crate::mqtt::wire::{Properties, Version, Will};
use crate::room::dialect::{self, Dialect};
use crate::room::envelope::IdSource;
use crate::room::presence::Announce;
use crate::room::seal::Keyring;
use crate::room::sign::Sealer;
use crate::tools::identity;
use crate::tools::options;
use crate::tools::publish::input::{LineRules, Mode, Preparer, Source};

/// Everything chat-pub's run needs, resolved from its arguments.
pub struct PubConfig {
    pub connect: ConnectOptions,
    pub connect_timeout: Duration,
    pub drain_timeout: Duration,
    /// Where lines come from, how they are split, and what each becomes.
    pub source: Source,
    pub rules: LineRules,
    pub prep: Preparer,
    /// Where the nick is announced as online, if it is (the will is in `connect`).
    pub presence: Option<Announce>,
    /// Whether the flags set MQTT 5 properties (a 3.1.1 connection then ends the run).
    pub needs_v5: bool,
}

impl PubConfig {
    /// Checks and resolves the arguments.
    pub fn new(args: &PubArgs) -> Result<PubConfig, Error> {
        if let Some(t) = &args.topic {
            topic::check_publish(t).map_err(Error::Usage)?;
        }
        let max_size = args.max_size.unwrap_or(defaults::PUB_MAX_SIZE);
        let mut connect = options::resolve(&args.common, "chat-pub", 64 * 1024)?;
        // With a full window, wake for half of it acknowledged, not for each.
        connect.reads = Reads::Told;
        let mode = match (args.raw, args.json) {
            (true, _) => Mode::Raw,
            (_, true) => Mode::Json,
            _ => Mode::Envelope,
        };
        let nick = nick(args.nick.as_deref());
        let dialect = dialect_of(args, &nick)?;
        let properties = properties(args)?;
        let needs_v5 = !properties.is_empty();
        let mut sealer = match options::room_secret(&args.common)? {
            Some(secret) => Some(Sealer::new(
                Keyring::new(secret),
                std::sync::Arc::new(identity::load(&args.common)?),
            )),
            None => None,
        };
        let (notice, presence) =
            announcements(args, mode, &nick, dialect, &mut connect, sealer.as_mut())?;
        Ok(PubConfig {
            connect_timeout: args.common.connect_timeout,
            drain_timeout: args.drain_timeout,
            source: match args.messages.is_empty() {
                true => Source::Stdin,
                false => Source::Args(args.messages.clone()),
            },
            rules: LineRules {
                keep_cr: args.raw,
                keep_empty: args.keep_empty,
                max_line: max_size,
            },
            prep: Preparer {
                mode,
                topic: args
                    .topic
                    .as_ref()
                    .map(|t| Bytes::copy_from_slice(t.as_bytes())),
                qos: args.common.qos,
                retain: args.retain,
                nick,
                max_size,
                ids: IdSource::default(),
                sealer,
                dialect,
                notice,
                encoded: properties.encode(),
                properties,
            },
            presence,
            needs_v5,
            connect,
        })
    }
}

/// The MQTT 5 properties of the flags, checked: they cannot go over MQTT 3.1.1, so `-V 3`
/// with any of them is a usage error.
fn properties(args: &PubArgs) -> Result<Properties, Error> {
    let props = Properties {
        user: args.user_properties.clone(),
        content_type: args.content_type.clone(),
        message_expiry: args.message_expiry,
        response_topic: args.response_topic.clone(),
        correlation_data: (args.correlation_data.clone()).map(Bytes::from),
    };
    props.check().map_err(Error::Usage)?;
    if !props.is_empty() && args.common.mqtt_version == VersionChoice::Only(Version::V311) {
        return Err(Error::Usage(format!(
            "{} need MQTT 5, and -V 3 asks for MQTT 3.1.1, which has no message properties: \
             use -V 5 or -V auto",
            PROPERTY_FLAGS
        )));
    }
    Ok(props)
}

/// The flags that set properties, as messages name them.
pub const PROPERTY_FLAGS: &str =
    "--user-property, --content-type, --message-expiry, --response-topic and --correlation-data";

/// `--dialect`, checked against what the original MQTTChat cannot carry: a room secret,
/// `--raw`, a nick with a comma.
fn dialect_of(args: &PubArgs, nick: &str) -> Result<Dialect, Error> {
    let dialect = Dialect::from(args.dialect);
    if dialect == Dialect::MqttchatPy {
        if options::has_room_secret(&args.common) {
            return Err(Error::Usage(dialect::WITH_SECRET.into()));
        }
        if args.raw {
            return Err(Error::Usage(dialect::WITH_RAW.into()));
        }
        dialect::check_nick(nick).map_err(Error::Usage)?;
    }
    Ok(dialect)
}

/// What chat-pub announces: the original MQTTChat's notice (sent whenever chat-pub
/// starts, as the original does when it starts, with -m and --json too, to TOPIC, unless
/// --no-presence; at the QoS of the lines, not retained), and the nick's presence while
/// it reads a room from stdin.
fn announcements(
    args: &PubArgs,
    mode: Mode,
    nick: &str,
    dialect: Dialect,
    connect: &mut ConnectOptions,
    sealer: Option<&mut Sealer>,
) -> Result<(Option<Bytes>, Option<Announce>), Error> {
    let notice = match (&args.topic, dialect, args.no_presence) {
        (Some(_), Dialect::MqttchatPy, false) => Some(dialect::start_notice(nick).into()),
        _ => None,
    };
    let reading = args.messages.is_empty() && mode == Mode::Envelope && !args.no_presence;
    let presence = match &args.topic {
        Some(room) if reading => Some(announce(room, nick, connect, sealer)?),
        _ => None,
    };
    Ok((notice, presence))
}

/// The nick's presence in `room`: the join to announce (sealed in an encrypted room), and
/// as the connection's will, the goodbye.
fn announce(
    room: &str,
    nick: &str,
    connect: &mut ConnectOptions,
    sealer: Option<&mut Sealer>,
) -> Result<Announce, Error> {
    let mut announce = Announce::new(room, &connect.spec.client_id, nick);
    if let Some(sealer) = sealer {
        (announce.seal_join(sealer, std::time::SystemTime::now())).map_err(Error::Failed)?;
    }
    connect.spec.will = Some(Will {
        topic: String::from_utf8_lossy(announce.topic()).into_owned(),
        payload: announce.will_payload(),
        qos: 1,
        retain: true,
    });
    Ok(announce)
}

/// The envelope's `from`: `--nick`/`$CHAT_NICK`, else `$USER`, else `anonymous`.
fn nick(flag: Option<&str>) -> String {
    options::own_nick(flag).unwrap_or_else(|| "anonymous".to_owned())
}

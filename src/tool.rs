//! What the three tools' `main` functions share: the tool's name on everything it says,
//! logging, the runtime, shell completions, and the end of a run — an [`Error`] turned
//! into one message and an exit status, in one place.

use std::io::Write;
use std::process::ExitCode;
use std::sync::OnceLock;

use crate::error::Error;

static TOOL: OnceLock<&'static str> = OnceLock::new();

/// The running tool's name (`chat-pub`, …), as it prefixes its messages.
pub fn name() -> &'static str {
    TOOL.get().copied().unwrap_or("mqttchat")
}

/// Says `message` on stderr as `tool: message`: the one way the tools report.
pub fn say(message: impl std::fmt::Display) {
    eprintln!("{}: {message}", name());
}

/// Says every note of a state machine, oldest first.
pub fn say_all(notes: Vec<String>) {
    for note in notes {
        say(note);
    }
}

/// Runs a tool: names it, sets up logging at `verbose`, runs `work` and turns its end
/// into the exit status. The message of an error is said here and only here.
pub fn main(tool: &'static str, verbose: u8, work: impl FnOnce() -> Result<(), Error>) -> ExitCode {
    let _ = TOOL.set(tool);
    init_logging(tool, verbose);
    match work() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(m) = e.message() {
                say(m);
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Prints a shell completion script for the tool described by `C` on stdout.
pub fn print_completions<C: clap::CommandFactory>(shell: clap_complete::Shell, name: &str) {
    let mut cmd = C::command();
    clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
}

/// The runtime the tools run on: one thread (the tools' work is I/O, and the second core
/// is better left to the broker and the other tool of the pipe).
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::Failed(format!("cannot start the I/O runtime: {e}")))
}

/// Raises the soft limit of open files to the hard one, as servers do (the soft limit is
/// often 1024); returns the limit in force.
pub fn raise_open_files() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read or write the struct passed, which
    // outlives the calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if limit.rlim_cur < limit.rlim_max && libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    limit.rlim_cur
}

/// Sets up logging on stderr as `tool: message`: warnings by default, `-v` info, `-vv`
/// debug, `-vvv` trace; `RUST_LOG` overrides.
fn init_logging(tool: &'static str, verbose: u8) {
    let filter = match verbose {
        0 => "mqttchat=warn",
        1 => "mqttchat=info",
        2 => "mqttchat=debug",
        _ => "mqttchat=trace",
    };
    let env = env_logger::Env::default().default_filter_or(filter);
    let logger = env_logger::Builder::from_env(env)
        .format(move |f, record| match record.level() {
            log::Level::Error | log::Level::Warn | log::Level::Info => {
                writeln!(f, "{tool}: {}", record.args())
            }
            level => writeln!(
                f,
                "{tool}: {}: {}",
                level.as_str().to_lowercase(),
                record.args()
            ),
        })
        .build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(NoPayloads(logger))).is_ok() {
        log::set_max_level(max);
    }
}

/// The logger, minus the debug and trace records of the WebSocket library: it logs every
/// frame it sends with its bytes, and the first one is CONNECT, password included. No
/// `RUST_LOG` setting may put a password on stderr.
struct NoPayloads(env_logger::Logger);

impl NoPayloads {
    fn allowed(m: &log::Metadata) -> bool {
        let frames = ["tungstenite", "async_tungstenite", "ws_stream_tungstenite"];
        m.level() <= log::Level::Info || !frames.iter().any(|t| m.target().starts_with(t))
    }
}

impl log::Log for NoPayloads {
    fn enabled(&self, m: &log::Metadata) -> bool {
        NoPayloads::allowed(m) && self.0.enabled(m)
    }

    fn log(&self, record: &log::Record) {
        if NoPayloads::allowed(record.metadata()) {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

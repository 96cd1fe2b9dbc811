//! chat-sub: print the messages of MQTT topics as lines. See `man chat-sub`.

use std::process::ExitCode;

use clap::Parser;
use mqttchat::cli::SubArgs;

fn main() -> ExitCode {
    let args = SubArgs::parse();
    if let Some(shell) = args.common.about.completions {
        mqttchat::print_completions::<SubArgs>(shell, "chat-sub");
        return ExitCode::SUCCESS;
    }
    mqttchat::init_logging("chat-sub", args.common.verbose);
    match mqttchat::subscribe::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report("chat-sub");
            ExitCode::from(e.exit_code())
        }
    }
}

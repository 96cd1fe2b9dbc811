//! chat-pub: publish lines from stdin to an MQTT topic. See `man chat-pub`.

use std::process::ExitCode;

use clap::Parser;
use mqttchat::cli::PubArgs;

fn main() -> ExitCode {
    let args = PubArgs::parse();
    if let Some(shell) = args.common.about.completions {
        mqttchat::print_completions::<PubArgs>(shell, "chat-pub");
        return ExitCode::SUCCESS;
    }
    mqttchat::init_logging("chat-pub", args.common.verbose);
    match mqttchat::publish::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report("chat-pub");
            ExitCode::from(e.exit_code())
        }
    }
}

//! chat-broker: a small MQTT broker for a machine or a LAN. See `man chat-broker`.

use std::process::ExitCode;

use clap::Parser;
use mqttchat::cli::BrokerArgs;

fn main() -> ExitCode {
    let args = BrokerArgs::parse();
    if let Some(shell) = args.about.completions {
        mqttchat::print_completions::<BrokerArgs>(shell, "chat-broker");
        return ExitCode::SUCCESS;
    }
    mqttchat::init_logging("chat-broker", args.verbose);
    match mqttchat::broker::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report("chat-broker");
            ExitCode::from(e.exit_code())
        }
    }
}

//! chat-broker: a small MQTT broker for a machine or a LAN. See `man chat-broker`.

use std::process::ExitCode;

use clap::Parser;
use mqttchat::cli::BrokerArgs;

fn main() -> ExitCode {
    let args = BrokerArgs::parse();
    if let Some(shell) = args.about.completions {
        mqttchat::tool::print_completions::<BrokerArgs>(shell, "chat-broker");
        return ExitCode::SUCCESS;
    }
    let verbose = args.verbose;
    mqttchat::tool::main("chat-broker", verbose, || mqttchat::broker::run(args))
}

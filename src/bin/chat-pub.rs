//! chat-pub: publish lines from stdin to an MQTT topic. See `man chat-pub`.

use std::process::ExitCode;

use mqttchat::cli::PubArgs;

fn main() -> ExitCode {
    let (args, given) = mqttchat::cli::parse::<PubArgs>();
    if let Some(shell) = args.common.about.completions {
        mqttchat::tool::print_completions::<PubArgs>(shell, "chat-pub");
        return ExitCode::SUCCESS;
    }
    let verbose = args.common.verbose;
    mqttchat::tool::main("chat-pub", verbose, || {
        mqttchat::tools::publish::run(args, &given)
    })
}

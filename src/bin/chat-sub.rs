//! chat-sub: print the messages of MQTT topics as lines. See `man chat-sub`.

use std::process::ExitCode;

use mqttchat::cli::SubArgs;

fn main() -> ExitCode {
    let (args, given) = mqttchat::cli::parse::<SubArgs>();
    if let Some(shell) = args.common.about.completions {
        mqttchat::tool::print_completions::<SubArgs>(shell, "chat-sub");
        return ExitCode::SUCCESS;
    }
    let verbose = args.common.verbose;
    mqttchat::tool::main("chat-sub", verbose, || {
        mqttchat::tools::subscribe::run(args, &given)
    })
}

//! The `outpost` binary: parses the command line and hands over to the command.
#![forbid(unsafe_code)]

mod api;
mod bench;
mod cli;
mod clock;
mod config;
mod credentials;
mod delivery;
mod model;
mod serve;
mod store;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli: cli::Cli = argh::from_env();
    if cli.version {
        println!("outpost {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let result = match cli.command {
        None | Some(cli::Command::Serve(_)) => {
            let file = match &cli.command {
                Some(cli::Command::Serve(args)) => args.config.clone(),
                _ => None,
            };
            serve::run(file.as_deref()).map_err(|e| e.to_string())
        }
        Some(cli::Command::Bench(args)) => bench::run(args),
        Some(cli::Command::Config(args)) => match config::Config::load(args.config.as_deref()) {
            Ok(config) => {
                for line in config.redacted_lines() {
                    println!("{line}");
                }
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("outpost: {message}");
            ExitCode::FAILURE
        }
    }
}

//! The `outpost` binary: parses the command line and hands over to the command.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use outpost::{cli, commands, serve};

fn main() -> ExitCode {
    let cli = cli::parse();
    if cli.version {
        outpost::output::line(format_args!("outpost {}", env!("CARGO_PKG_VERSION")));
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
        Some(cli::Command::Config(args)) => commands::config(args.config.as_deref()),
        Some(cli::Command::Token(args)) => commands::token(&args.tenant, args.config.as_deref()),
        Some(cli::Command::Backup(args)) => commands::backup(&args.to, args.config.as_deref()),
        Some(cli::Command::Restore(args)) => {
            commands::restore(&args.from, args.replace, args.config.as_deref())
        }
        Some(cli::Command::Check(args)) => {
            commands::check(args.file.as_deref(), args.config.as_deref())
        }
        Some(cli::Command::Compact(args)) => commands::compact(args.config.as_deref()),
        Some(cli::Command::Rekey(args)) => {
            commands::rekey(args.new_secret.as_deref(), args.config.as_deref())
        }
        Some(cli::Command::Audit(args)) => commands::audit(
            &commands::AuditQuery {
                tenant: args.tenant.as_deref(),
                since: args.since.as_deref(),
                limit: args.limit,
            },
            args.config.as_deref(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("outpost: {message}");
            ExitCode::FAILURE
        }
    }
}

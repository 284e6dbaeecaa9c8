//! Command-line interface (argh): `outpost serve`, the operator commands (`config`, `token`,
//! `backup`, `restore`, `check`, `compact`, `rekey`, `audit`) and `outpost --version`. Parsing
//! only.

use std::path::PathBuf;

use argh::FromArgs;

/// Parses the process's arguments as `argh::from_env` does, also taking `-h` for `--help`.
pub fn parse() -> Cli {
    let strings: Vec<String> = std::env::args_os()
        .map(|s| s.to_string_lossy().into_owned())
        .map(|s| if s == "-h" { "--help".to_string() } else { s })
        .collect();
    let program = strings
        .first()
        .and_then(|p| std::path::Path::new(p).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("outpost")
        .to_string();
    let args: Vec<&str> = strings.iter().skip(1).map(String::as_str).collect();
    Cli::from_args(&[&program], &args).unwrap_or_else(|early_exit| {
        std::process::exit(match early_exit.status {
            Ok(()) => {
                crate::output::line(format_args!("{}", early_exit.output));
                0
            }
            Err(()) => {
                eprintln!(
                    "{}\nRun {program} --help for more information.",
                    early_exit.output
                );
                1
            }
        })
    })
}

/// outpost: event and webhook delivery from one binary and one data file. Without a command,
/// `outpost` starts the server, like `outpost serve`.
#[derive(FromArgs, Debug)]
pub struct Cli {
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
    #[argh(subcommand)]
    pub command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Serve(ServeArgs),
    Config(ConfigArgs),
    Token(TokenArgs),
    Backup(BackupArgs),
    Restore(RestoreArgs),
    Check(CheckArgs),
    Compact(CompactArgs),
    Rekey(RekeyArgs),
    Audit(AuditArgs),
}

/// Run the API server and the delivery engine.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "serve")]
pub struct ServeArgs {
    /// configuration file (TOML); default: ./outpost.toml when present
    #[argh(option)]
    pub config: Option<PathBuf>,
}

/// Print the effective configuration, secrets redacted.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "config")]
pub struct ConfigArgs {
    /// configuration file (TOML); default: ./outpost.toml when present
    #[argh(option)]
    pub config: Option<PathBuf>,
}

/// Mint a tenant JWT (24 h) and print it, signed with API_JWT_SECRET or, when that is not
/// configured, with the secret the server generated into DATA_DIR/credentials.env.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "token")]
pub struct TokenArgs {
    /// the tenant id
    #[argh(positional)]
    pub tenant: String,
    /// configuration file (TOML); default: ./outpost.toml when present
    #[argh(option)]
    pub config: Option<PathBuf>,
}

/// Write a consistent backup of the store, also while a server is running on it.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "backup")]
pub struct BackupArgs {
    /// the backup file to create (must not exist)
    #[argh(option)]
    pub to: PathBuf,
    /// configuration file (TOML) naming DATA_DIR; default: ./outpost.toml when present
    #[argh(option)]
    pub config: Option<PathBuf>,
}

/// Install a backup as the store of DATA_DIR (the server must be stopped).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "restore")]
pub struct RestoreArgs {
    /// the backup file to restore
    #[argh(option)]
    pub from: PathBuf,
    /// set an existing store aside (as outpost.redb.before-restore) instead of refusing
    #[argh(switch)]
    pub replace: bool,
    /// configuration file (TOML) naming DATA_DIR; default: ./outpost.toml when present
    #[argh(option)]
    pub config: Option<PathBuf>,
}

/// Check the integrity of a store file that no server has open.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
pub struct CheckArgs {
    /// the store file to check; default: DATA_DIR/outpost.redb
    #[argh(option)]
    pub file: Option<PathBuf>,
    /// configuration file (TOML) naming DATA_DIR; default: ./outpost.toml when present
    #[argh(option)]
    pub config: Option<PathBuf>,
}

/// Shrink the store file of a stopped server to the space its data needs (after a large
/// deletion, such as lowering LOG_RETENTION_TTL_DAYS).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "compact")]
pub struct CompactArgs {
    /// configuration file (TOML) naming DATA_DIR; default: ./outpost.toml when present
    #[argh(option)]
    pub config: Option<PathBuf>,
}

/// Encrypt every destination's secrets in the store of a stopped server under a new
/// AES_ENCRYPTION_SECRET (generated into DATA_DIR/credentials.env unless given).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rekey")]
pub struct RekeyArgs {
    /// the new secret; required when AES_ENCRYPTION_SECRET is configured (then put the same
    /// value in the configuration before starting the server)
    #[argh(option)]
    pub new_secret: Option<String>,
    /// configuration file (TOML) naming DATA_DIR; default: ./outpost.toml when present
    #[argh(option)]
    pub config: Option<PathBuf>,
}

/// Print the audit log of admin changes (DATA_DIR/audit.log and audit.log.1), one JSON entry
/// per line, oldest first.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "audit")]
pub struct AuditArgs {
    /// only entries naming this tenant
    #[argh(option)]
    pub tenant: Option<String>,
    /// only entries at or after this time (RFC 3339, e.g. 2026-01-31T00:00:00Z)
    #[argh(option)]
    pub since: Option<String>,
    /// only the newest N entries
    #[argh(option)]
    pub limit: Option<usize>,
    /// configuration file (TOML) naming DATA_DIR; default: ./outpost.toml when present
    #[argh(option)]
    pub config: Option<PathBuf>,
}

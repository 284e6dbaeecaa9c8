//! Command-line interface (argh): `outpost serve`, the operator commands (`config`, `token`,
//! `backup`, `restore`, `check`), `outpost bench` and `outpost --version`. Parsing only.

use std::path::PathBuf;

use argh::FromArgs;

/// outpost: event and webhook delivery from one binary and one data file.
#[derive(FromArgs, Debug)]
pub struct Cli {
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
    #[argh(subcommand)]
    pub command: Option<Command>,
}

// Built once per run, so the size of the bench flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Serve(ServeArgs),
    Config(ConfigArgs),
    Token(TokenArgs),
    Backup(BackupArgs),
    Restore(RestoreArgs),
    Check(CheckArgs),
    Bench(crate::bench::BenchArgs),
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

/// Mint a tenant JWT (24 h) from the configured API_JWT_SECRET and print it.
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

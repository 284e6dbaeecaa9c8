//! Command-line interface (argh): `outpost serve`, `outpost config`, `outpost bench`,
//! `outpost --version`.

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

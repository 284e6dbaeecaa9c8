//! outpost as a library: the Outpost v1 API and event delivery from one process and one redb
//! file. [`server::start`] runs it on a given listener, configuration and [`clock::Clock`];
//! the `outpost` binary (`main.rs`) only parses the command line and calls in here.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod api;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod delivery;
pub mod disk_budget;
pub mod fuzzing;
pub mod instance;
pub mod liveness;
pub mod logging;
pub mod model;
pub mod notify;
pub mod operator_events;
pub mod output;
pub mod retention;
pub mod serve;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod template;
pub mod time;
pub mod watchdog;

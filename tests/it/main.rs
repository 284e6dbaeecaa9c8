//! Black-box integration tests: every test drives the real `outpost` binary over HTTP on an
//! ephemeral port with a temporary data directory.

mod support;

mod address_policy;
mod alerts;
mod api_fuzz;
mod audit;
mod auth;
mod bad_input;
mod cli;
mod crash_torture;
mod delivery;
mod destinations;
mod disk_budget;
mod disk_full;
mod fidelity;
mod health;
mod limits;
mod metrics_api;
mod operator_log;
mod ops;
mod prometheus;
mod restart;
mod retention;
mod schemas;
mod sdk;
mod sdk_ts;
mod secrets_at_rest;
mod startup;
mod tenants;
mod upgrade;

//! Test support: the real `outpost` binary on an ephemeral port with a temporary data dir, and
//! a small HTTP client over hyper.

pub mod client;
pub mod server;

pub use client::{Api, Reply};
pub use server::{ServerOptions, TestServer};

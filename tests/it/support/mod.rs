//! Test support: the real `outpost` binary on an ephemeral port with a temporary data dir, a
//! small HTTP client over hyper, and a recording webhook receiver.

pub mod client;
pub mod receiver;
pub mod server;

pub use client::Api;
pub use receiver::{Behaviour, ReceivedRequest, Receiver};
pub use server::{ServerOptions, TestServer};

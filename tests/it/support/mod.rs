//! Test support: outpost started in-process through the library (or, where the process is the
//! subject, the real binary as a child) on an ephemeral port with a temporary data dir, a small
//! HTTP client over hyper, and a recording webhook receiver, and a small tmpfs for the out-of-space tests.

pub mod client;
pub mod process;
pub mod receiver;
pub mod server;
pub mod tmpfs;

pub use client::Api;
pub use process::ProcessServer;
pub use receiver::{Behaviour, ReceivedRequest, Receiver};
pub use server::{ServerOptions, TestServer};
pub use tmpfs::Tmpfs;

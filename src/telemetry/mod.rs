//! The server's own instrumentation, exposed at `GET /metrics` in the Prometheus text format:
//! a small registry of relaxed atomics per server ([`Metrics`]), fixed-bucket histograms, the
//! standard `process_*` metrics from `/proc`, and the writer of the text format. No metrics
//! crate: what is needed is a few counters and histograms, and owning them keeps the hot-path
//! cost visible (one relaxed `fetch_add` or three).

pub mod histogram;
pub mod http;
pub mod metrics;
pub mod process;
pub mod scrape;
pub mod text;

pub use http::{RouteLabel, RouteSlot};
pub use metrics::Metrics;
